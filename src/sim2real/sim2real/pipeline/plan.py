"""The demo's plan (config/pipeline/demo.yaml) and the record of one run (results.json): what the stages, the
report and the command share. The stages themselves are in pipeline.stages, the runner in pipeline.demo."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field, model_validator

from sim2real_core.cluster import Cluster
from sim2real_core.config import ConfigError, OptionModel, config_path, load_config

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
    seeds: int = 1  # PPO seeds per row: seed k's base policy and every row's fine-tuning from it

    def stage(self, name: str) -> dict[str, Any]:
        """The budget of one stage."""
        return dict(self.budget.get(name) or {})

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this plan runs, in order (optional ones only when their budget entry is there)."""
        return tuple(s for s in STAGES if s not in OPTIONAL_STAGES or OPTIONAL_STAGES[s] in self.budget)


class DemoFile(OptionModel):
    """config/pipeline/demo.yaml `demo`: what the demo compares, and the stages' budgets per size."""

    task: str
    reality: str = Field(description="reality profile in config/reality (the proxy's hidden truth)")
    fit_space: str = Field(description="the task's parameter space (config/parameter_spaces)")
    fit_parameters: Literal["model"] | tuple[str, ...] = Field(
        description="the fitted parameters: `model` for every dynamics parameter of fit_space (not noise or "
                    "delay), or names")
    methods: tuple[str, ...] = Field(min_length=1, description="fitting methods")
    distributions: tuple[str, ...] = Field(min_length=1, description="training distributions compared")
    budgets: dict[Literal["full", "quick"], dict[str, dict[str, Any]]]
    progressive: dict[Literal["full", "quick"], dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_distributions(self):
        unknown = [d for d in self.distributions if d not in ("none", "uniform", "adr", "oracle", *self.methods)]
        if unknown:
            raise ValueError(f"distributions {unknown} are neither none/uniform/adr/oracle nor a fit method")
        return self


def load_plan(quick: bool = False, reality: str | None = None, path: str | os.PathLike | None = None,
              progressive: bool = False, robot_side: str = ROBOT_SIDES[0], seeds: int | None = None) -> DemoPlan:
    """Read the demo plan; `reality` replaces the plan's reality profile (e.g. a hidden proxy); `progressive`
    adds the plan's `progressive` budget (the adapt stage); `robot_side` is one of ROBOT_SIDES; `seeds`
    replaces the budget's train.seeds (PPO seeds per row, default 1)."""
    if robot_side not in ROBOT_SIDES:
        raise ValueError(f"robot side must be one of {ROBOT_SIDES}, got {robot_side!r}")
    path = Path(path) if path else config_path(*PLAN_FILE)
    body = load_config(path, DemoFile, "demo")
    name = "quick" if quick else "full"
    if name not in body.budgets or (progressive and name not in body.progressive):
        raise ConfigError(f"{path}: demo.budgets{' and demo.progressive' if progressive else ''} need a {name!r} "
                          "entry")
    budget = dict(body.budgets[name])
    if progressive:
        budget["progressive"] = dict(body.progressive[name])
    seeds = int(dict(budget.get("train") or {}).get("seeds", 1) if seeds is None else seeds)
    if seeds < 1:
        raise ConfigError(f"the demo needs at least one seed per row, got {seeds}")
    return DemoPlan(task=body.task, reality=reality or body.reality, fit_space=body.fit_space,
                    fit_parameters=_fit_parameters(body), methods=body.methods, distributions=body.distributions,
                    budget_name=name, budget=budget, robot_side=robot_side, seeds=seeds)


def _fit_parameters(body: DemoFile) -> tuple[str, ...]:
    """The plan's fit_parameters: names, or `model` for every dynamics parameter of fit_space."""
    from sim2real_core.fit.files import fit_space  # MuJoCo: not on the import path of the command line's start

    chosen = body.fit_parameters
    return fit_space(body.fit_space, None if chosen == "model" else list(chosen)).names


@dataclass
class DemoRun:
    """Progress and results of one run, saved as results.json after every stage."""

    out: Path
    plan: DemoPlan
    log: Callable[[str], None] = print
    cluster: Cluster = field(default_factory=lambda: Cluster(workers=0))  # where the stages' parallel work runs
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
                                             "robot_side": self.plan.robot_side, "seeds": self.plan.seeds},
                                    "timings_s": self.timings, **self.results}, indent=2, default=str))
        return path
