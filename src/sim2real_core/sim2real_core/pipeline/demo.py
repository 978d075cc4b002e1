"""The end-to-end sim-to-real pipeline that `sim2real demo` runs on the reality proxy.

Stages (each writes into the output folder, so a failed run leaves everything it made):
  1. pretrain - in simulation, in parallel: K exploration policies (diversity bonus), explore/, and the base
                task policy on the nominal sim, policies/base/
  2. collect  - the reality proxy over ROS, the exploration dispatcher and the logger: bag/ (robot side
                `proxy`: the 100 Hz sim bridge in lockstep; `franka`: the 1 kHz franka_ros2 emulation with the
                hardware collect stack, episodes started as an operator does)
  3. dataset  - bag -> transitions: dataset.npz
  4. fit      - DROPO, E-DROPO, SysID and uniform distributions: fits/METHOD.yaml
  5. train    - the base policy fine-tuned under each training distribution (none, uniform, each fit, oracle)
                for the same number of steps: policies/NAME/
  6. deploy   - each policy served by policy_server to the reality proxy over DDS (robot side `franka`: to the
                franka emulation, behind the command supervisor): evaluation/NAME.json
  7. adapt    - only with --progressive: progressive transfer's last step, the fitted-DR policy fine-tuned on
                the target itself for a budget of target episodes: policies/adapted/
  8. report   - report.md with its PNG figures

ROS is reached only through processes (the stack runner, `sim2real eval --over-ros`), so this module stays
free of rclpy like the rest of the core.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import ConfigError, config_path, load_yaml

PLAN_FILE = ("pipeline", "demo.yaml")
STAGES = ("pretrain", "collect", "dataset", "fit", "train", "deploy", "adapt", "report")
OPTIONAL_STAGES = {"adapt": "progressive"}  # stage -> the budget entry that switches it on
ROBOT_SIDES = ("proxy", "franka")  # the reality proxy's 100 Hz sim bridge, or its franka_ros2 emulation at 1 kHz


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs (config/pipeline/demo.yaml, one budget)."""

    task: str
    reality: str
    fit_space: str
    fit_parameters: tuple[str, ...]
    methods: tuple[str, ...]
    distributions: tuple[str, ...]
    budget_name: str
    budget: dict[str, dict[str, Any]]
    robot_side: str = ROBOT_SIDES[0]

    def stage(self, name: str) -> dict[str, Any]:
        """The budget of one stage."""
        return dict(self.budget.get(name) or {})

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this plan runs, in order (optional ones only when their budget entry is there)."""
        return tuple(s for s in STAGES if s not in OPTIONAL_STAGES or OPTIONAL_STAGES[s] in self.budget)


def load_plan(quick: bool = False, reality: str | None = None, path: str | os.PathLike | None = None,
              progressive: bool = False, robot_side: str = ROBOT_SIDES[0]) -> DemoPlan:
    """Read the demo plan; `reality` replaces the plan's reality profile (e.g. a hidden proxy); `progressive`
    adds the plan's `progressive` budget (the adapt stage); `robot_side` is one of ROBOT_SIDES."""
    if robot_side not in ROBOT_SIDES:
        raise ValueError(f"robot side must be one of {ROBOT_SIDES}, got {robot_side!r}")
    path = Path(path) if path else config_path(*PLAN_FILE)
    body = load_yaml(path).get("demo")
    name = "quick" if quick else "full"
    try:
        budget = dict(body["budgets"][name])
        if progressive:
            budget["progressive"] = dict(body["progressive"][name])
        methods = tuple(body["methods"])
        distributions = tuple(body["distributions"])
        plan = DemoPlan(task=str(body["task"]), reality=str(reality or body["reality"]),
                        fit_space=str(body["fit_space"]), fit_parameters=_fit_parameters(body),
                        methods=methods, distributions=distributions,
                        budget_name=name, budget=dict(budget), robot_side=robot_side)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: malformed demo plan, missing {exc}") from None
    unknown = [d for d in distributions if d not in ("none", "uniform", "oracle", *methods)]
    if unknown:
        raise ConfigError(f"{path}: distributions {unknown} are neither none/uniform/oracle nor a fit method")
    return plan


def _fit_parameters(body: dict) -> tuple[str, ...]:
    """The plan's fit_parameters: a list of names, or `model` for every model-field parameter of fit_space."""
    from ..fit.files import fit_space

    chosen = body["fit_parameters"]
    return fit_space(body["fit_space"], None if chosen == "model" else list(chosen)).names


@dataclass
class DemoRun:
    """Progress and results of one run, saved as results.json after every stage."""

    out: Path
    plan: DemoPlan
    log: Callable[[str], None] = print
    results: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def resume(self, start: str) -> None:
        """Take the results of the stages before `start` from out/results.json of an earlier run; those of `start`
        and later stages are dropped, since they would be stale (also an optional stage this plan skips)."""
        previous = self.out / "results.json"
        if not previous.exists():
            raise FileNotFoundError(f"cannot start at stage {start!r}: {previous} from an earlier run is missing")
        saved = json.loads(previous.read_text())
        saved.pop("plan", None)
        rerun = STAGES[STAGES.index(start):]
        self.timings = {k: v for k, v in saved.pop("timings_s", {}).items() if k not in rerun}
        self.results = {k: v for k, v in saved.items() if k not in rerun}

    def save(self) -> Path:
        """Write results.json."""
        path = self.out / "results.json"
        path.write_text(json.dumps({"plan": {"task": self.plan.task, "reality": self.plan.reality,
                                             "budget": self.plan.budget_name, "fit_space": self.plan.fit_space,
                                             "robot_side": self.plan.robot_side},
                                    "timings_s": self.timings, **self.results}, indent=2, default=str))
        return path


def sim2real_command() -> list[str]:
    """The `sim2real` command as an argv prefix, found on PATH (install/setup.bash puts it there), run by this
    interpreter (so a run from the ROS 2 Jazzy venv stays on Jazzy)."""
    found = shutil.which("sim2real")
    if not found:
        raise ConfigError("the sim2real command is not on PATH: source install/setup.bash")
    return [sys.executable, found]


def run_demo(out: str | os.PathLike, quick: bool = False, reality: str | None = None, start: str = STAGES[0],
             log: Callable[[str], None] = print, progressive: bool = False,
             robot_side: str = ROBOT_SIDES[0]) -> DemoRun:
    """Run the stages into `out` from `start` on (earlier stages' results are read from out/results.json).

    Returns the run; its results are also in out/results.json and the report in out/report.md.
    """
    from . import stages  # heavy imports (torch, MuJoCo) only when the demo runs

    if start not in STAGES:
        raise ValueError(f"unknown stage {start!r}; stages: {', '.join(STAGES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = DemoRun(out=out, plan=load_plan(quick, reality, progressive=progressive, robot_side=robot_side), log=log)
    if start not in run.plan.stages:
        raise ValueError(f"stage {start!r} is not part of this plan (stages: {', '.join(run.plan.stages)})")
    if start != run.plan.stages[0]:
        run.resume(start)
    for name in run.plan.stages[run.plan.stages.index(start):]:
        log(f"== {name} ==")
        began = time.perf_counter()
        getattr(stages, name)(run)
        run.timings[name] = round(time.perf_counter() - began, 1)
        run.save()
        log(f"   {name} done in {run.timings[name]:.1f} s")
    return run
