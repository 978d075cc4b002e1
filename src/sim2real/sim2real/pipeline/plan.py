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
STAGES = ("pretrain", "collect", "dataset", "fit", "train", "deploy", "adapt", "vision", "report")
OPTIONAL_STAGES = {"adapt": "progressive", "vision": "survey"}  # stage -> the budget entry that switches it on
UNFITTED_ROWS = ("none", "uniform", "adr", "active", "memory", "oracle")  # rows trained without a fit
MEMORY_ROW = "memory"  # a memory policy under the parameter box, from its own base policies with the same memory
SIMOPT_ROW = "simopt"  # SimOpt's loop from the parameter box, on counted target episodes
SURVEY_ROWS = ("adr", "active", MEMORY_ROW, SIMOPT_ROW)  # the guided and memory rows `--survey` may add
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


class SimOptBudget(OptionModel):
    """The SimOpt row's loop: its PPO steps are the train stage's, split evenly over the iterations and the final
    fine-tune."""

    iterations: int = Field(ge=1, description="distribution updates")
    target_episodes: int = Field(ge=1, description="target (proxy) episodes per update, per seed")
    horizon: int = Field(ge=1, description="control periods of each target episode compared")
    samples: int = Field(ge=2, description="parameter samples per update")


class VisionBudget(OptionModel):
    """The vision stage: studies.puck_vision on the plan's reality proxy."""

    seeds: int = Field(ge=1)
    images: int = Field(ge=1, description="training images per locator")
    test_images: int = Field(ge=1, description="held-out images per look")
    epochs: int = Field(ge=1)


class SurveyBudget(OptionModel):
    """`sim2real demo --survey`: the survey's rows beside the plan's, and the camera's vision stage."""

    rows: tuple[Literal[SURVEY_ROWS], ...] = Field(min_length=1, description="rows added to the plan's")
    simopt: SimOptBudget
    vision: VisionBudget


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
    survey: dict[Literal["full", "quick"], SurveyBudget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_distributions(self):
        unknown = [d for d in self.distributions if d not in (*UNFITTED_ROWS, *self.methods)]
        if unknown:
            raise ValueError(f"distributions {unknown} are neither one of {'/'.join(UNFITTED_ROWS)} nor a fit method")
        return self


def load_plan(quick: bool = False, reality: str | None = None, path: str | os.PathLike | None = None,
              progressive: bool = False, robot_side: str = ROBOT_SIDES[0], seeds: int | None = None,
              survey: bool = False) -> DemoPlan:
    """Read the demo plan; `reality` replaces the plan's reality profile (e.g. a hidden proxy); `progressive`
    adds the plan's `progressive` budget (the adapt stage); `survey` its `survey` budget (the survey's rows and the
    vision stage); `robot_side` is one of ROBOT_SIDES; `seeds` replaces the budget's train.seeds (PPO seeds per
    row, default 1)."""
    if robot_side not in ROBOT_SIDES:
        raise ValueError(f"robot side must be one of {ROBOT_SIDES}, got {robot_side!r}")
    path = Path(path) if path else config_path(*PLAN_FILE)
    body = load_config(path, DemoFile, "demo")
    name = "quick" if quick else "full"
    entries = {"budgets": body.budgets, "progressive": body.progressive if progressive else None,
               "survey": body.survey if survey else None}
    missing = [key for key, entry in entries.items() if entry is not None and name not in entry]
    if missing:
        raise ConfigError(f"{path}: {' and '.join(f'demo.{key}' for key in missing)} need a {name!r} entry")
    budget = dict(body.budgets[name])
    distributions = body.distributions
    if progressive:
        budget["progressive"] = dict(body.progressive[name])
    if survey:
        budget["survey"] = body.survey[name].model_dump()
        distributions += tuple(row for row in body.survey[name].rows if row not in distributions)
    seeds = int(dict(budget.get("train") or {}).get("seeds", 1) if seeds is None else seeds)
    if seeds < 1:
        raise ConfigError(f"the demo needs at least one seed per row, got {seeds}")
    return DemoPlan(task=body.task, reality=reality or body.reality, fit_space=body.fit_space,
                    fit_parameters=_fit_parameters(body), methods=body.methods, distributions=distributions,
                    budget_name=name, budget=budget, robot_side=robot_side, seeds=seeds)


def memory_pairs(task: str, rows) -> int:
    """The (joint state, action) pairs of memory of the memory row (the task's memory_history) when `rows` has it,
    else 0."""
    from sim2real_core.policy.tasks import task_defaults  # torch and MuJoCo: not on the command line's start

    return task_defaults(task).memory_history if MEMORY_ROW in rows else 0


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
                                             "robot_side": self.plan.robot_side, "seeds": self.plan.seeds,
                                             "stages": list(self.plan.stages)},
                                    "timings_s": self.timings, **self.results}, indent=2, default=str))
        return path
