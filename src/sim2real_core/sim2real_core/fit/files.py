"""Fit from files: a dataset file, a parameter space name, settings -> FitResult and the distribution YAML.

Shared by the `sim2real fit` command and the odr_fitter node.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..cluster import Cluster
from ..config import ConfigError
from ..sim.parameters import DYNAMICS_KINDS, ParameterSpace, load_parameter_space
from .dropo import AUTO_TRANSITIONS, FitResult, affordable_transitions, state_scale
from .engine import BatchPredictor, PinnedPredictor, System
from .methods import METHODS, fit
from .options import FitOptions
from .systems import space_system, system_for, system_of
from .transitions import Transitions, from_dataset
from .validation import Validation, judge_fit, split_episodes


@dataclass
class FileFit:
    """What fit_file produced: the result, the data it was fitted on and the predictor (for a report), the YAML
    path, the held-out validation (None when nothing was held out) and the reasons to distrust the fit."""

    result: FitResult
    data: Transitions
    predictor: BatchPredictor
    path: os.PathLike | None
    validation: Validation | None = None
    warnings: list[str] = field(default_factory=list)
    sizing: dict | None = None  # transitions per evaluation chosen from the data (FitOptions.transitions -1)


def fit_space(space: str | os.PathLike, parameters: list[str] | None = None) -> ParameterSpace:
    """The space to fit: the named parameters, or every deterministic dynamics parameter (no noise/delay)."""
    full = load_parameter_space(space)
    if parameters:
        return full.subset(parameters)
    return full.subset([p.name for p in full if p.kind in DYNAMICS_KINDS])


def fit_predictor(system: System, space: str | os.PathLike, fitted: ParameterSpace,
                  nthread: int = 0) -> BatchPredictor | PinnedPredictor:
    """The predictor of a fit of `fitted`, part of the space file `space`: the space's other dynamics parameters are
    held at their nominal values, as the simulators hold them (a torque rate limit a fit leaves out still limits).
    Its `space` lists the fitted parameters in the space file's order."""
    full = load_parameter_space(space)
    names = [p.name for p in full if p.kind in DYNAMICS_KINDS or p.name in fitted.names]
    root = BatchPredictor(system, full.subset(names), nthread=nthread)
    others = {name: full[name].nominal for name in names if name not in fitted.names}
    return PinnedPredictor(root, others) if others else root


def fit_file(data_path: str | os.PathLike, method: str, space: str | os.PathLike, out: str | os.PathLike | None,
             options: FitOptions = FitOptions(), system: str | None = None, parameters: list[str] | None = None,
             progress: Callable[[dict], None] | None = None) -> FileFit:
    """Load a dataset (sim2real_core.data.load_dataset), hold out `options.holdout` of its episodes, fit `method`
    with `options` on the rest, validate the fit on the held-out episodes (fit.validation), write the
    distribution YAML (validation and warnings in its provenance) to `out`.

    The system is `system`, else the space file's `model:` (else the dataset metadata's `robot`) for the
    dataset's state layout (systems.system_of: FR3 data with the puck is fr3_push); `parameters` is the subset
    of the space to fit (default: every model parameter).
    """
    from ..data.dataset import load_dataset

    if method not in METHODS:
        raise ValueError(f"unknown fitting method {method!r}; expected one of {METHODS}")
    dataset = load_dataset(data_path)
    data = from_dataset(dataset)
    fitted = fit_space(space, parameters)
    name = system
    if name is None:
        model = space_system(space) or dataset.metadata.get("robot")
        if model is None:
            raise ConfigError("cannot tell the system: name one, or use a space with 'model:' or a dataset with "
                              "'robot'")
        name = system_of(model, dataset.metadata.get("state_layout"))
    sim = system_for(name)
    check_data(sim, data, fitted, dataset.metadata, where=str(data_path))
    predictor = fit_predictor(sim, space, fitted, nthread=options.threads)
    fitted = predictor.space
    fit_data, held_out = split_episodes(data, options.holdout, options.seed)
    config, sizing = options.method_config(method), None
    sharded = options.shards > 1 and method != "uniform"
    with Cluster(address=options.ray_address or None, workers=None if sharded else 0) as cluster:
        if method in ("dropo", "edropo") and options.transitions == AUTO_TRANSITIONS:
            # the sampled objective's time divides among the shards the cluster can run at once
            parallel = min(options.shards, cluster.cpus) if sharded else 1
            config, sizing = affordable_transitions(predictor, fit_data, config, options.fit_seconds * parallel)
        result = fit(method, sim, fitted, fit_data, config=config, progress=progress, predictor=predictor,
                     cluster=cluster)
    dist = result.distribution
    validation, warnings = judge_fit(predictor, dist, held_out, state_scale(fit_data), options.seed)
    if sizing is not None:
        dist.provenance["transitions_chosen"] = sizing
    path = dist.save(out) if out else None
    return FileFit(result, fit_data, predictor, path, validation, warnings, sizing)


def check_data(system: System, data: Transitions, space: ParameterSpace, metadata: dict,
               where: str = "data") -> None:
    """Refuse data the system cannot have produced, naming the check: a state or action size or layout that
    does not fit, actions beyond the model's actuator ranges, a control period (metadata `control_period`)
    other than the system's, fewer transitions than fitted parameters."""
    try:
        system.check(data.state_dim, data.action_dim, metadata.get("state_layout"))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    model = system.model
    actuators = list(range(model.nu)) if system.actuators is None else list(system.actuators)
    low, high = model.actuator_ctrlrange[actuators, 0], model.actuator_ctrlrange[actuators, 1]
    limited = model.actuator_ctrllimited[actuators].astype(bool)
    tolerance = 1e-6 * np.maximum(np.abs(low), np.abs(high))
    beyond = limited & ((data.actions < low - tolerance) | (data.actions > high + tolerance))
    if beyond.any():
        row, column = np.argwhere(beyond)[0]
        raise ConfigError(f"{where}: action column {column} is {data.actions[row, column]:.6g} at row {row}, beyond "
                          f"the model's actuator range [{low[column]:.6g}, {high[column]:.6g}] "
                          f"({int(beyond.any(axis=1).sum())} rows); the system cannot reproduce such data")
    period = system.frame_skip * model.opt.timestep
    recorded = metadata.get("control_period")
    if recorded is not None and abs(float(recorded) - period) > 1e-6 * period:
        raise ConfigError(f"{where}: recorded at a control period of {float(recorded)} s, but system "
                          f"{system.name!r} steps {period} s per transition; convert the recording at {period} s")
    if len(data) < space.dim:
        raise ConfigError(f"{where}: {len(data)} transitions for {space.dim} fitted parameters; at least one "
                          "transition per parameter is needed")


def physics_overrides(result: FitResult, prefix: str = "physics.") -> dict[str, float]:
    """The fitted means as sim bridge parameters {prefix + name: value}."""
    dist = result.distribution
    return {f"{prefix}{name}": float(v) for name, v in zip(dist.space.names, dist.mean)}
