"""The stages of the demo pipeline (see pipeline.demo); each takes the DemoRun and records its results."""
from __future__ import annotations

import json
import subprocess
from dataclasses import replace

import numpy as np

from ..config import ConfigError
from ..data.convert import bag_to_dataset
from ..data.dataset import load_dataset, save_dataset
from ..runner import StackRunner
from ..stack import apply_overrides, load_stack
from .demo import DemoRun, sim2real_command

COLLECT_STACK = "collect_reality"


def explore(run: DemoRun) -> None:
    """Train the exploration policies in simulation under uniform randomization."""
    from ..explore.diversity import DiversityConfig, train_exploration_policies
    from ..policy.ppo import PPOConfig
    from ..policy.tasks import make_task, ppo_defaults

    budget = run.plan.stage("explore")
    task = make_task(run.plan.task, "uniform")
    config = DiversityConfig(k=int(budget["policies"]), steps=int(budget["steps"]))
    result = train_exploration_policies(task, run.out / "explore", config, PPOConfig(**ppo_defaults(run.plan.task)),
                                        progress=False)
    run.results["explore"] = {"policies": [str(p) for p in result.policy_paths], "summary": result.summary}


def collect(run: DemoRun) -> None:
    """Run the reality proxy, the exploration dispatcher and the logger over ROS until the episodes are done."""
    budget = run.plan.stage("collect")
    bag = run.out / "bag"
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


def dataset(run: DemoRun) -> None:
    """Convert the bag into transitions."""
    data = bag_to_dataset(run.out / "bag")
    path = save_dataset(run.out / "dataset.npz", data)
    run.results["dataset"] = {"path": str(path), "transitions": int(len(data.observations)),
                              "counts": data.metadata.get("counts", {})}


def fr3_system(robot: str = "fr3"):
    """The FR3 as a fitting system: joint_state_v1 observations, torque commands straight to the motors."""
    from ..fit.engine import System
    from ..sim.simulator import Simulator, joint_actuators, joint_indices

    sim = Simulator(None, robot=robot)
    if not np.array_equal(joint_actuators(sim.nominal_model, sim.robot.joint_names), np.arange(sim.nominal_model.nu)):
        raise ConfigError(f"robot {robot!r}: the model's actuators must be the arm's motors in joint order")
    qpos, dof = joint_indices(sim.nominal_model, sim.robot.joint_names)
    return System(robot, sim.nominal_model, sim.nsub, tuple(int(i) for i in qpos), tuple(int(i) for i in dof))


def fit(run: DemoRun) -> None:
    """Fit every method of the plan to the dataset; write fits/METHOD.yaml."""
    from ..fit.dropo import DropoConfig
    from ..fit.methods import EDROPO_ALPHA, fit as fit_method
    from ..fit.sysid import SysIdConfig
    from ..fit.transitions import from_dataset
    from ..sim.parameters import load_parameter_space

    budget = run.plan.stage("fit")
    dropo = DropoConfig(**budget.get("dropo", {}))
    data = from_dataset(load_dataset(run.out / "dataset.npz"))
    space = load_parameter_space(run.plan.fit_space).subset(run.plan.fit_parameters)
    system = fr3_system()
    configs = {"dropo": dropo, "edropo": replace(dropo, entropy_weight=budget.get("edropo_alpha", EDROPO_ALPHA)),
               "sysid": SysIdConfig(**budget.get("sysid", {})), "uniform": dropo}
    fits = {}
    for method in run.plan.methods:
        result = fit_method(method, system, space, data, config=configs[method])
        path = result.distribution.save(run.out / "fits" / f"{method}.yaml")
        fits[method] = {"path": str(path), "objective": result.distribution.objective.get("value"),
                        "seconds": result.distribution.provenance.get("seconds")}
        run.log(f"   {method}: objective {fits[method]['objective']:.4g} in {fits[method]['seconds']} s")
    run.results["fit"] = fits


def train(run: DemoRun) -> None:
    """Train one task policy per training distribution."""
    from ..policy.ppo import PPOConfig
    from ..policy.tasks import make_task, ppo_defaults
    from ..policy.training import train_policy

    budget = run.plan.stage("train")
    trained = {}
    for name in run.plan.distributions:
        choice = run.results["fit"][name]["path"] if name in run.plan.methods else name
        if name == "oracle":
            choice = f"oracle:{run.plan.reality}"
        task = make_task(run.plan.task, choice)
        outcome = train_policy(task, int(budget["steps"]), run.out / "policies" / name,
                               PPOConfig(**ppo_defaults(run.plan.task)), progress=False)
        trained[name] = {"path": str(outcome.policy_path), "seconds": round(outcome.seconds, 1),
                         "steps_per_second": round(outcome.steps_per_second, 1)}
        run.log(f"   {name}: {outcome.result.steps} steps in {outcome.seconds:.0f} s")
    run.results["train"] = trained


def deploy(run: DemoRun) -> None:
    """Serve each policy to the reality proxy over DDS (policy_server <-> sim_bridge) and measure it; also run
    the same policy on the proxy in process (returns included), as a cross-check of the ROS path."""
    from ..policy.evaluation import evaluate
    from ..policy.policy_file import load_policy
    from ..policy.tasks import make_task

    budget = run.plan.stage("evaluate")
    episodes = int(budget["episodes"])
    target = make_task(run.plan.task, "none", reality=run.plan.reality)
    evaluations = {}
    for name, entry in run.results["train"].items():
        summary = run.out / "evaluation" / f"{name}.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        command = [*sim2real_command(), "eval", entry["path"], "--target", "reality", "--over-ros",
                   "--reality", run.plan.reality, "--episodes", str(episodes), "--json", str(summary)]
        result = subprocess.run(command, capture_output=True, text=True)
        summary.with_suffix(".log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"over-ROS evaluation of {name} failed (exit {result.returncode}); "
                               f"see {summary.with_suffix('.log')}")
        in_process = evaluate(load_policy(entry["path"]), target.make_env, episodes, seed=1000,
                              safety=target.safety, period=target.control_period)
        evaluations[name] = {"over_ros": json.loads(summary.read_text()), "in_process": in_process.summary()}
        run.log(f"   {name}: success over ROS {evaluations[name]['over_ros']['success_rate']:.2f}, "
                f"in process {in_process.success_rate:.2f} (mean return {in_process.mean_return:.1f})")
    run.results["deploy"] = evaluations


def report(run: DemoRun) -> None:
    """Write report.md and its figures."""
    from .report import write_report

    run.results["report"] = str(write_report(run))
