"""The stages of the demo pipeline (see pipeline.demo); each takes the DemoRun and records its results."""
from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from sim2real.pipeline.plan import MEMORY_ROW, SIMOPT_ROW, DemoRun, memory_pairs
from sim2real.pipeline.report import write_report
from sim2real_core.cluster import Task, values
from sim2real_core.data.convert import bag_to_dataset
from sim2real_core.data.dataset import load_dataset, save_dataset
from sim2real_ros.domains import claim_ros_domains, release_ros_domains
from sim2real_ros.runner import StackRunner
from sim2real_ros.stack import apply_overrides, load_stack

COLLECT_STACK = "collect_reality"


@contextlib.contextmanager
def ros_domain(domain_id: int) -> Iterator[None]:
    """This process in ROS domain `domain_id`, limited to this host, while the block runs (the node processes it
    starts inherit it), so that stacks can run side by side."""
    saved = {name: os.environ.get(name) for name in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _explore(task_name: str, policies: int, steps: int, out: str) -> dict:
    """Train the exploration set (a cluster task: plain arguments in, plain results out)."""
    from sim2real_core.explore.diversity import DiversityConfig, train_exploration_policies
    from sim2real_core.policy.ppo import PPOConfig
    from sim2real_core.policy.tasks import make_task, ppo_defaults

    result = train_exploration_policies(make_task(task_name, "uniform"), out, DiversityConfig(k=policies, steps=steps),
                                        PPOConfig(**ppo_defaults(task_name)), progress=False)
    return {"policies": [str(p) for p in result.policy_paths], "summary": result.summary}


def policy_folder(run: DemoRun, name: str, seed: int) -> Path:
    """Where the policy of row `name` (or `base`) trained with `seed` goes: policies/NAME, policies/seedK/NAME."""
    return run.out / "policies" / (name if seed == 0 else f"seed{seed}/{name}")


def pretrain(run: DemoRun) -> None:
    """Learn in simulation before the target is touched, side by side on the cluster: the exploration policies
    (diversity bonus, under uniform randomization) and, per seed, the base policy on the nominal simulator, from
    which every training distribution is fine-tuned in `train`."""
    explore_budget, train_budget = run.plan.stage("explore"), run.plan.stage("train")
    tasks = [Task("explore", _explore, (run.plan.task, int(explore_budget["policies"]), int(explore_budget["steps"]),
                                        str(run.out / "explore")))]
    tasks += [Task(f"base seed {seed}", train_one, (run.plan.task, "none", int(train_budget["base_steps"]),
                                                     str(policy_folder(run, "base", seed)), None, seed))
              for seed in range(run.plan.seeds)]
    memory = memory_history(run)
    if memory:
        tasks += [Task(f"memory base seed {seed}", train_one, (run.plan.task, "none", int(train_budget["base_steps"]),
                                                                str(policy_folder(run, "base-memory", seed)), None,
                                                                seed, memory))
                  for seed in range(run.plan.seeds)]
    explore, *bases = values(run.cluster.run(tasks))
    seeds, memory_seeds = bases[:run.plan.seeds], bases[run.plan.seeds:]
    run.results["explore"] = explore
    run.results["base"] = {**seeds[0], "seeds": seeds}
    if memory_seeds:
        run.results["memory_base"] = {**memory_seeds[0], "seeds": memory_seeds, "history": memory}
    run.log(f"   base policy (nominal sim), {run.plan.seeds} seed(s): {seeds[0]['steps']} steps in "
            f"{seeds[0]['seconds']:.0f} s each{'; the same with memory' if memory_seeds else ''}; "
            f"{len(run.results['explore']['policies'])} exploration policies")


def memory_history(run: DemoRun) -> int:
    """The memory row's (joint state, action) pairs of memory; 0 without the row."""
    return memory_pairs(run.plan.task, run.plan.distributions)



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
    from sim2real_ros.collect_over_ros import collect_over_ros

    result = collect_over_ros([str(run.out / "explore")], bag, int(budget["episodes"]), int(budget["episode_steps"]),
                              float(budget["random_action_prob"]), reality=run.plan.reality,
                              workdir=run.out / "collect_logs")
    run.results["collect"] = {**result.summary(), **budget}
    faults = [f for f in run.results["collect"]["faults"] if f]
    run.log(f"   {len(faults)} of {budget['episodes']} episodes ended in a fault ({', '.join(sorted(set(faults)))})"
            if faults else f"   {budget['episodes']} episodes without a fault")


def dataset(run: DemoRun) -> None:
    """Convert the bag into transitions."""
    data = bag_to_dataset(run.results["collect"]["bag"])
    path = save_dataset(run.out / "dataset.npz", data)
    run.results["dataset"] = {"path": str(path), "transitions": int(len(data.observations)),
                              "counts": data.metadata.get("counts", {})}


def fit_configs(budget: dict) -> dict:
    """Each method's settings from a demo budget's `fit` stage: DROPO's, E-DROPO's (DROPO's with `edropo_alpha`, else
    α from the data), SysID's; uniform is scored with DROPO's."""
    from sim2real_core.fit.dropo import DropoConfig
    from sim2real_core.fit.sysid import SysIdConfig

    dropo = DropoConfig(**budget.get("dropo", {}))
    return {"dropo": dropo, "edropo": replace(dropo, entropy_weight=budget.get("edropo_alpha", 0.0)),
            "sysid": SysIdConfig(**budget.get("sysid", {})), "uniform": dropo}


def fit(run: DemoRun) -> None:
    """Fit every method of the plan to the dataset, less the held-out episodes (fit budget `holdout`, default
    FitOptions'); validate each fit on them; write fits/METHOD.yaml."""
    from sim2real_core.fit.dropo import state_scale
    from sim2real_core.fit.engine import BatchPredictor
    from sim2real_core.fit.files import check_data, fit_space
    from sim2real_core.fit.fr3 import fr3_system
    from sim2real_core.fit.methods import fit as fit_method
    from sim2real_core.fit.options import FitOptions
    from sim2real_core.fit.transitions import from_dataset
    from sim2real_core.fit.validation import judge_fit, split_episodes

    budget = run.plan.stage("fit")
    configs = fit_configs(budget)
    dropo = configs["dropo"]
    dataset_file = load_dataset(run.out / "dataset.npz")
    data = from_dataset(dataset_file)
    space = fit_space(run.plan.fit_space, list(run.plan.fit_parameters))
    system = fr3_system()
    check_data(system, data, space, dataset_file.metadata, where=str(run.out / "dataset.npz"))
    fit_data, held_out = split_episodes(data, float(budget.get("holdout", FitOptions().holdout)), dropo.seed)
    predictor = BatchPredictor(system, space)  # shared: its batches are reused across the methods
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


def train_one(task_name: str, choice: str, steps: int, out: str, start: str | None, seed: int = 0,
              history: int = 0) -> dict:
    """Train one policy with PPO seed `seed` (with `history` pairs of memory), from scratch or fine-tuned from the
    policy folder `start` (a cluster task)."""
    from sim2real_core.policy.ppo import PPOConfig
    from sim2real_core.policy.tasks import make_task, ppo_defaults
    from sim2real_core.policy.training import train_policy

    outcome = train_policy(make_task(task_name, choice, history=history), steps, out,
                           PPOConfig(**{**ppo_defaults(task_name), "seed": seed}), progress=False, start=start,
                           threads=1)  # one simulation thread per task: a task holds one CPU of the cluster
    return {"path": str(outcome.policy_path), "steps": outcome.result.steps, "seconds": round(outcome.seconds, 1),
            "steps_per_second": round(outcome.steps_per_second, 1)}


def simopt_one(task_name: str, reality: str, steps: int, out: str, start: str, seed: int, budget: dict) -> dict:
    """SimOpt's loop from the parameter box and the policy folder `start`, its `steps` PPO steps split evenly over
    the iterations and the final fine-tune (a cluster task)."""
    from sim2real_core.randomization.simopt import SimOptConfig
    from sim2real_core.randomization.simopt_loop import SimOptLoopConfig, run_simopt

    config = SimOptLoopConfig(iterations=int(budget["iterations"]), target_episodes=int(budget["target_episodes"]),
                              horizon=int(budget["horizon"]), steps=steps // (int(budget["iterations"]) + 1),
                              update=SimOptConfig(samples=int(budget["samples"])), seed=seed)
    result = run_simopt(task_name, reality, None, start, out, config, progress=lambda line: None, threads=1)
    return {"path": result["policy"], "steps": result["steps"], "seconds": result["seconds"],
            "steps_per_second": round(result["fine_tuned_steps"] / result["seconds"], 1),
            "target_episodes": result["target_episodes"], "distribution": result["distribution"]}


def target_episodes(run: DemoRun, name: str) -> int | None:
    """The target (proxy) episodes row `name` consumed per seed: the collected episodes for a fit, the loop's for
    SimOpt, none for the rows without target data (`uniform` too: the data only score its box); None for the oracle,
    which reads the hidden truth instead."""
    if name in run.plan.methods and name != "uniform":
        return int(run.plan.stage("collect")["episodes"])
    if name == "oracle":
        return None
    if name == SIMOPT_ROW:
        simopt = run.plan.stage("survey")["simopt"]
        return int(simopt["iterations"]) * int(simopt["target_episodes"])
    return 0


def train(run: DemoRun) -> None:
    """Fine-tune each seed's base policy under each training distribution for the same number of steps (`none`
    goes on under the nominal sim; the memory row from its own base, under the box; SimOpt's loop spends the same
    steps), as many at once as the cluster has CPUs."""
    steps = int(run.plan.stage("train")["steps"])
    memory = memory_history(run)
    bases = {"": run.results["base"], **({MEMORY_ROW: run.results.get("memory_base", {})} if memory else {})}
    bases = {key: [str(Path(e["path"]).parent) for e in entry.get("seeds", [])] for key, entry in bases.items()}
    for key, folders in bases.items():
        if len(folders) < run.plan.seeds:
            raise ValueError(f"{run.plan.seeds} seeds asked for, but the pretrain stage trained {len(folders)} "
                             f"{key + ' ' if key else ''}base policies: run from --from pretrain")
    tasks, names = [], []
    for name in run.plan.distributions:
        for seed in range(run.plan.seeds):
            folder, label = str(policy_folder(run, name, seed)), f"{name} seed {seed}"
            if name == SIMOPT_ROW:
                budget = run.plan.stage("survey")["simopt"]
                task = Task(label, simopt_one, (run.plan.task, run.plan.reality, steps, folder, bases[""][seed], seed,
                                                budget))
            elif name == MEMORY_ROW:
                task = Task(label, train_one, (run.plan.task, "uniform", steps, folder, bases[MEMORY_ROW][seed], seed,
                                               memory))
            else:
                choice = (run.results["fit"][name]["path"] if name in run.plan.methods else
                          f"oracle:{run.plan.reality}" if name == "oracle" else name)
                task = Task(label, train_one, (run.plan.task, choice, steps, folder, bases[""][seed], seed))
            tasks.append(task)
            names.append(name)
    results = values(run.cluster.run(tasks))
    trained = {name: [value for row, value in zip(names, results) if row == name] for name in run.plan.distributions}
    for name, seeds in trained.items():
        run.log(f"   {name}: fine-tuned {steps} steps in {seeds[0]['seconds']:.0f} s"
                + (f" (seed 0; {len(seeds)} seeds)" if len(seeds) > 1 else ""))
    run.results["train"] = {name: {**seeds[0], "seeds": seeds, "target_episodes": target_episodes(run, name)}
                            for name, seeds in trained.items()}


def _evaluate_over_ros(out: str, name: str, policy: str, target: str, reality: str, episodes: int,
                       domain_id: int) -> dict:
    """One policy served over DDS in its own ROS domain (so evaluations can run side by side), on `target`
    (reality: the 100 Hz proxy; franka: its emulation); the nodes' parameter files and logs go to
    out/evaluation/NAME (a cluster task)."""
    from sim2real_ros.eval_over_ros import evaluate_over_ros

    with ros_domain(domain_id):
        result = evaluate_over_ros(policy, target, episodes, reality=reality, workdir=Path(out) / "evaluation" / name)
    return {"policy": policy, "target": target, "over_ros": True, **result.summary()}


def deploy(run: DemoRun) -> None:
    """Serve each policy to the reality proxy over DDS (policy_server <-> sim_bridge, or the franka emulation) and
    measure it; also run the same policy on the proxy in process (returns included), as a cross-check of the ROS
    path. The 1 kHz franka emulation needs a core of its own: its evaluations run one at a time."""
    budget = run.plan.stage("evaluate")
    episodes = int(budget["episodes"])
    local_episodes = int(budget.get("in_process_episodes", episodes))
    trained = run.results["train"]
    target = "franka" if run.plan.robot_side == "franka" else "reality"
    domains = claim_ros_domains(len(trained), avoid=(int(os.environ.get("ROS_DOMAIN_ID", "0")),))
    over_ros = [Task(f"{name} over ROS", _evaluate_over_ros, (str(run.out), name, entry["path"], target,
                                                             run.plan.reality, episodes, domain))
                for domain, (name, entry) in zip(domains, trained.items())]
    cells = [(name, k) for name, entry in trained.items() for k in range(len(entry.get("seeds", [entry])))]
    in_process = [Task(f"{name} seed {k} in process", evaluate_in_process,
                       (run.plan.task, run.plan.reality, trained[name].get("seeds", [trained[name]])[k]["path"],
                        local_episodes)) for name, k in cells]
    try:
        if run.plan.robot_side == "franka":  # nothing else runs beside the emulation's 1 kHz loop: one at a time
            outcomes = [run.cluster.run([task])[0] for task in over_ros] + run.cluster.run(in_process)
        else:
            outcomes = run.cluster.run(over_ros + in_process)
    finally:
        release_ros_domains(domains)
    results = values(outcomes)
    ros = dict(zip(trained, results[:len(over_ros)]))
    evaluations = {}
    for name in trained:
        seeds = [value for (row, _), value in zip(cells, results[len(over_ros):]) if row == name]
        local = seeds[0]["summary"]
        evaluations[name] = {"over_ros": ros[name], "in_process": local, "in_process_seeds": [
            {"returns": r["returns"], "successes": r["successes"]} for r in seeds]}
        run.log(f"   {name}: success over ROS {ros[name]['success_rate']:.2f}, in process {local['success_rate']:.2f} "
                f"(mean return {local['mean_return']:.1f})"
                + (f"; over {len(seeds)} seeds {np.mean([r['summary']['success_rate'] for r in seeds]):.2f}"
                   if len(seeds) > 1 else ""))
    run.results["deploy"] = evaluations


def evaluate_in_process(task_name: str, reality: str, policy: str, episodes: int) -> dict:
    """One policy on the proxy in process (held-out seeds from 1000): its summary, returns and successes."""
    from sim2real_core.policy.evaluation import evaluate
    from sim2real_core.policy.policy_file import load_policy
    from sim2real_core.policy.tasks import make_task

    target = make_task(task_name, "none", reality=reality)
    result = evaluate(load_policy(policy), target.make_env, episodes, seed=1000, safety=target.safety,
                      period=target.control_period)
    return {"summary": result.summary(), "returns": result.returns, "successes": result.successes}


def adapt(run: DemoRun) -> None:
    """Progressive transfer's last step: PPO fine-tunes the `from` policy on the target itself, within a budget of
    target steps; then each step (nominal base, fitted DR, target fine-tune) is scored on the same held-out
    target episodes as `deploy`'s in-process evaluation."""
    from sim2real_core.policy.evaluation import evaluate
    from sim2real_core.policy.policy_file import load_policy
    from sim2real_core.policy.ppo import PPOConfig
    from sim2real_core.policy.tasks import make_task, ppo_defaults
    from sim2real_core.policy.training import train_policy

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


def vision(run: DemoRun) -> None:
    """The camera's vision component (studies.puck_vision): the puck located from images by locators trained with
    and without visual randomization, scored on the proxy's hidden look and the model's: vision/vision.md."""
    from sim2real.studies.puck_vision import run_vision_study

    budget = run.plan.stage("survey")["vision"]
    results = run_vision_study(run.out / "vision", [run.plan.reality], cluster=run.cluster, progress=run.log,
                               **{key: int(budget[key]) for key in ("seeds", "images", "test_images", "epochs")})
    run.results["vision"] = {"report": str(run.out / "vision" / "vision.md"), **results}


def report(run: DemoRun) -> None:
    """Write report.md and its figures."""

    run.results["report"] = str(write_report(run))
