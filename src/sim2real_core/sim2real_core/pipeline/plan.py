"""The demo's plan (config/pipeline/demo.yaml) and the record of one run (results.json): what the stages, the
report and the command share. The stages themselves are in pipeline.stages, the runner in pipeline.demo."""
from __future__ import annotations

import json
import os
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
    from ..fit.files import fit_space  # MuJoCo: not on the import path of the command line's start

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
