"""The stages of the demo pipeline (see pipeline.demo); each takes the DemoRun and records its results."""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ..data.convert import bag_to_dataset
from ..data.dataset import load_dataset, save_dataset
from ..runner import StackRunner
from ..stack import apply_overrides, load_stack
from .plan import DemoRun
from .report import write_report

COLLECT_STACK = "collect_reality"


def sim2real_command() -> list[str]:
    """The `sim2real` command as an argv prefix, found on PATH (install/setup.bash puts it there), run by this
    interpreter (so a run from the ROS 2 Jazzy venv stays on Jazzy)."""
    found = shutil.which("sim2real")
    if not found:
        raise ConfigError("the sim2real command is not on PATH: source install/setup.bash")
    return [sys.executable, found]


def _explore(task_name: str, policies: int, steps: int, out: str) -> dict:
    """Train the exploration set (a process-pool worker: plain arguments in, plain results out)."""
    from ..explore.diversity import DiversityConfig, train_exploration_policies
    from ..policy.ppo import PPOConfig
    from ..policy.tasks import make_task, ppo_defaults

    result = train_exploration_policies(make_task(task_name, "uniform"), out, DiversityConfig(k=policies, steps=steps),
                                        PPOConfig(**ppo_defaults(task_name)), progress=False)
    return {"policies": [str(p) for p in result.policy_paths], "summary": result.summary}


def policy_folder(run: DemoRun, name: str, seed: int) -> Path:
    """Where the policy of row `name` (or `base`) trained with `seed` goes: policies/NAME, policies/seedK/NAME."""
    return run.out / "policies" / (name if seed == 0 else f"seed{seed}/{name}")


def pretrain(run: DemoRun) -> None:
    """Learn in simulation before the target is touched, side by side in two processes: the exploration policies
    (diversity bonus, under uniform randomization) and, per seed, the base policy on the nominal simulator, from
    which every training distribution is fine-tuned in `train`."""
    explore_budget, train_budget = run.plan.stage("explore"), run.plan.stage("train")
    with _process_pool(2) as pool:
        explore = pool.submit(_explore, run.plan.task, int(explore_budget["policies"]), int(explore_budget["steps"]),
                              str(run.out / "explore"))
        bases = [pool.submit(_train_one, run.plan.task, "none", int(train_budget["base_steps"]),
                             str(policy_folder(run, "base", seed)), None, seed) for seed in range(run.plan.seeds)]
        run.results["explore"] = explore.result()
        seeds = [base.result() for base in bases]
    run.results["base"] = {**seeds[0], "seeds": seeds}
    run.log(f"   base policy (nominal sim), {run.plan.seeds} seed(s): {seeds[0]['steps']} steps in "
            f"{seeds[0]['seconds']:.0f} s each; {len(run.results['explore']['policies'])} exploration policies")


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started fresh (spawn: no forked torch or MuJoCo state), at most one per CPU."""
    return ProcessPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1)),
                               mp_context=multiprocessing.get_context("spawn"))


def collect(run: DemoRun) -> None:
    """Run the reality proxy, the exploration dispatcher and the logger over ROS until the episodes are done
    (robot side `franka`: `sim2real collect` on the franka emulation)."""
    budget = run.plan.stage("collect")
    bag = run.out / "bag"
    for index in range(2, 1000):  # never overwrite the bag of an earlier run in the same folder
        if not bag.exists():
            break
        bag = run.out / f"bag_{index}"
    if run.plan.robot_side == "franka":
        _collect_on_franka(run, bag, budget)
        return
    stack = apply_overrides(load_stack(COLLECT_STACK), {
        "sim_bridge": {"reality": run.plan.reality},
        "exploration_dispatcher": {"policies": [str(run.out / "explore")], **budget},
        "transition_logger": {"output": str(bag)},
    })
    with open(run.out / "collect.log", "w") as log:
        code = StackRunner(stack, out=log).run()
    if code != 0:
        raise RuntimeError(f"data collection failed (see {run.out / 'collect.log'})")
    run.results["collect"] = {"bag": str(bag), "stack": COLLECT_STACK, **budget}


def _collect_on_franka(run: DemoRun, bag: Path, budget: dict) -> None:
    summary = run.out / "collect.json"
    command = [*sim2real_command(), "collect", str(run.out / "explore"), "--bag", str(bag), "--reality",
               run.plan.reality, "--episodes", str(budget["episodes"]), "--episode-steps", str(budget["episode_steps"]),
               "--random-action-prob", str(budget["random_action_prob"]), "--json", str(summary),
               "--logs", str(run.out / "collect_logs")]
    with open(run.out / "collect.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"data collection on the franka emulation failed (see {run.out / 'collect.log'})")
    run.results["collect"] = {**json.loads(summary.read_text()), **budget}
    faults = [f for f in run.results["collect"]["faults"] if f]
    run.log(f"   {len(faults)} of {budget['episodes']} episodes ended in a fault ({', '.join(sorted(set(faults)))})"
            if faults else f"   {budget['episodes']} episodes without a fault")


def dataset(run: DemoRun) -> None:
    """Convert the bag into transitions."""
    data = bag_to_dataset(run.results["collect"]["bag"])
    path = save_dataset(run.out / "dataset.npz", data)
    run.results["dataset"] = {"path": str(path), "transitions": int(len(data.observations)),
                              "counts": data.metadata.get("counts", {})}


def fit(run: DemoRun) -> None:
    """Fit every method of the plan to the dataset, less the held-out episodes (fit budget `holdout`, default
    FitOptions'); validate each fit on them; write fits/METHOD.yaml."""
    from ..fit.dropo import DropoConfig, state_scale
    from ..fit.engine import BatchPredictor
    from ..fit.files import check_data, fit_space
    from ..fit.fr3 import fr3_system
    from ..fit.methods import fit as fit_method
    from ..fit.options import FitOptions
    from ..fit.sysid import SysIdConfig
    from ..fit.transitions import from_dataset
    from ..fit.validation import judge_fit, split_episodes

    budget = run.plan.stage("fit")
    dropo = DropoConfig(**budget.get("dropo", {}))
    dataset_file = load_dataset(run.out / "dataset.npz")
    data = from_dataset(dataset_file)
    space = fit_space(run.plan.fit_space, list(run.plan.fit_parameters))
    system = fr3_system()
    check_data(system, data, space, dataset_file.metadata, where=str(run.out / "dataset.npz"))
    fit_data, held_out = split_episodes(data, float(budget.get("holdout", FitOptions().holdout)), dropo.seed)
    predictor = BatchPredictor(system, space)  # shared: its batches are reused across the methods
    configs = {"dropo": dropo, "edropo": replace(dropo, entropy_weight=budget.get("edropo_alpha", 0.0)),
               "sysid": SysIdConfig(**budget.get("sysid", {})), "uniform": dropo}
    fits = {}
    for method in run.plan.methods:
        result = fit_method(method, system, space, fit_data, config=configs[method], predictor=predictor)
        dist = result.distribution
        validation, _ = judge_fit(predictor, dist, held_out, state_scale(fit_data), dropo.seed)
        path = dist.save(run.out / "fits" / f"{method}.yaml")
        fits[method] = {"path": str(path), "objective": dist.objective.get("value"),
                        "seconds": dist.provenance.get("seconds"), "transitions": len(fit_data),
                        "validation": None if validation is None else validation.to_dict(),
                        "warnings": dist.provenance["warnings"]}
        run.log(f"   {method}: objective {fits[method]['objective']:.4g} in {fits[method]['seconds']} s, "
                f"{len(dist.provenance['warnings'])} warnings")
    run.results["fit"] = fits


def _train_one(task_name: str, choice: str, steps: int, out: str, start: str | None, seed: int = 0) -> dict:
    """Train one policy with PPO seed `seed`, from scratch or fine-tuned from the policy folder `start` (a
    process-pool worker)."""
    from ..policy.ppo import PPOConfig
    from ..policy.tasks import make_task, ppo_defaults
    from ..policy.training import train_policy

    outcome = train_policy(make_task(task_name, choice), steps, out,
                           PPOConfig(**{**ppo_defaults(task_name), "seed": seed}), progress=False, start=start,
                           threads=1)  # one simulation thread per worker: the pool has a worker per CPU
    return {"path": str(outcome.policy_path), "steps": outcome.result.steps, "seconds": round(outcome.seconds, 1),
            "steps_per_second": round(outcome.steps_per_second, 1)}


def train(run: DemoRun) -> None:
    """Fine-tune each seed's base policy under each training distribution for the same number of steps (`none`
    goes on under the nominal sim), as many at once as there are CPUs."""
    steps = int(run.plan.stage("train")["steps"])
    bases = [str(Path(entry["path"]).parent) for entry in run.results["base"].get("seeds", [run.results["base"]])]
    if len(bases) < run.plan.seeds:
        raise ValueError(f"{run.plan.seeds} seeds asked for, but the pretrain stage trained {len(bases)} base "
                         "policies: run from --from pretrain")
    choices = {}
    for name in run.plan.distributions:
        if name in run.plan.methods:
            choices[name] = run.results["fit"][name]["path"]
        elif name == "oracle":
            choices[name] = f"oracle:{run.plan.reality}"
        else:
            choices[name] = name
    with _process_pool(len(choices) * run.plan.seeds) as pool:
        futures = {name: [pool.submit(_train_one, run.plan.task, choice, steps, str(policy_folder(run, name, seed)),
                                      bases[seed], seed) for seed in range(run.plan.seeds)]
                   for name, choice in choices.items()}
        trained = {name: [future.result() for future in seeds] for name, seeds in futures.items()}
    for name, seeds in trained.items():
        run.log(f"   {name}: fine-tuned {steps} steps in {seeds[0]['seconds']:.0f} s"
                + (f" (seed 0; {len(seeds)} seeds)" if len(seeds) > 1 else ""))
    run.results["train"] = {name: {**seeds[0], "seeds": seeds} for name, seeds in trained.items()}


def _evaluate_over_ros(run: DemoRun, name: str, policy: str, episodes: int, domain_id: int) -> dict:
    """`sim2real eval --over-ros` of one policy in its own ROS domain (so evaluations can run side by side)."""
    summary = run.out / "evaluation" / f"{name}.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    target = "franka" if run.plan.robot_side == "franka" else "reality"
    command = [*sim2real_command(), "eval", policy, "--target", target, "--over-ros", "--reality",
               run.plan.reality, "--episodes", str(episodes), "--json", str(summary)]
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    summary.with_suffix(".log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"over-ROS evaluation of {name} failed (exit {result.returncode}); "
                           f"see {summary.with_suffix('.log')}")
    return json.loads(summary.read_text())


def deploy(run: DemoRun) -> None:
    """Serve each policy to the reality proxy over DDS (policy_server <-> sim_bridge, or the franka emulation) and
    measure it; also run the same policy on the proxy in process (returns included), as a cross-check of the ROS
    path. The 1 kHz franka emulation needs a core of its own: its evaluations run one at a time."""
    from ..policy.evaluation import evaluate
    from ..policy.policy_file import load_policy
    from ..policy.tasks import make_task

    budget = run.plan.stage("evaluate")
    episodes = int(budget["episodes"])
    local_episodes = int(budget.get("in_process_episodes", episodes))
    base_domain = int(os.environ.get("ROS_DOMAIN_ID", "0"))
    trained = run.results["train"]
    workers = 1 if run.plan.robot_side == "franka" else os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        over_ros = {name: pool.submit(_evaluate_over_ros, run, name, entry["path"], episodes,
                                      (base_domain + 1 + i) % 101)
                    for i, (name, entry) in enumerate(trained.items())}
        if run.plan.robot_side == "franka":  # nothing else runs beside the emulation's 1 kHz loop
            for future in over_ros.values():
                future.result()
        target = make_task(run.plan.task, "none", reality=run.plan.reality)
        evaluations = {}
        for name, entry in trained.items():
            seeds = [evaluate(load_policy(seed_entry["path"]), target.make_env, local_episodes, seed=1000,
                              safety=target.safety, period=target.control_period)
                     for seed_entry in entry.get("seeds", [entry])]
            in_process = seeds[0]
            evaluations[name] = {"over_ros": over_ros[name].result(), "in_process": in_process.summary(),
                                 "in_process_seeds": [{"returns": r.returns, "successes": r.successes} for r in seeds]}
            run.log(f"   {name}: success over ROS {evaluations[name]['over_ros']['success_rate']:.2f}, "
                    f"in process {in_process.success_rate:.2f} (mean return {in_process.mean_return:.1f})"
                    + (f"; over {len(seeds)} seeds {np.mean([r.success_rate for r in seeds]):.2f}"
                       if len(seeds) > 1 else ""))
    run.results["deploy"] = evaluations


def adapt(run: DemoRun) -> None:
    """Progressive transfer's last step: PPO fine-tunes the `from` policy on the target itself, within a budget of
    target steps; then each step (nominal base, fitted DR, target fine-tune) is scored on the same held-out
    target episodes as `deploy`'s in-process evaluation."""
    from ..policy.evaluation import evaluate
    from ..policy.policy_file import load_policy
    from ..policy.ppo import PPOConfig
    from ..policy.tasks import make_task, ppo_defaults
    from ..policy.training import train_policy

    budget = run.plan.stage("progressive")
    source = str(budget["from"])
    if source not in run.results["train"]:
        raise ValueError(f"progressive.from is {source!r}; trained distributions: {sorted(run.results['train'])}")
    target = make_task(run.plan.task, "none", reality=run.plan.reality)
    probe = target.make_env()
    episode_steps = probe.unwrapped.episode_steps
    probe.close()
    config = PPOConfig(**ppo_defaults(run.plan.task))
    rollout = config.num_envs * config.rollout_steps
    allowed = int(budget["target_episodes"]) * episode_steps
    steps = allowed // rollout * rollout  # PPO trains whole rollouts: never more target steps than the budget
    if steps < rollout:
        raise ValueError(f"progressive.target_episodes={budget['target_episodes']} allows {allowed} target steps, "
                         f"fewer than one PPO rollout ({rollout})")
    from_folder = Path(run.results["train"][source]["path"]).parent
    outcome = train_policy(target, steps, run.out / "policies" / "adapted", config, progress=False, start=from_folder)
    episodes = int(run.plan.stage("evaluate").get("in_process_episodes", run.plan.stage("evaluate")["episodes"]))

    def held_out(path) -> dict:
        return evaluate(load_policy(path), target.make_env, episodes, seed=1000, safety=target.safety,
                        period=target.control_period).summary()

    run.results["adapt"] = {
        "from": source, "target_steps": steps, "target_episodes": steps / episode_steps,
        "stages": {"nominal sim (base)": held_out(run.results["base"]["path"]),
                   f"fitted DR ({source})": run.results["deploy"][source]["in_process"],
                   "fine-tuned on the target": held_out(outcome.policy_path)},
        "path": str(outcome.policy_path)}
    for name, entry in run.results["adapt"]["stages"].items():
        run.log(f"   {name}: success {entry['success_rate']:.2f}, mean return {entry['mean_return']:.1f}")


def report(run: DemoRun) -> None:
    """Write report.md and its figures."""

    run.results["report"] = str(write_report(run))
