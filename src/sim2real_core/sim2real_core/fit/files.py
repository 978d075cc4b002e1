"""Fit from files: a dataset file, a parameter space name, settings -> FitResult and the distribution YAML.

Shared by the `sim2real fit` command and the odr_fitter node.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..config import ConfigError
from ..sim.parameters import MODEL_KINDS, ParameterSpace, load_parameter_space
from .dropo import FitResult
from .engine import BatchPredictor
from .methods import METHODS, fit
from .options import FitOptions
from .systems import space_system, system_for, system_of
from .transitions import Transitions, from_dataset


@dataclass
class FileFit:
    """What fit_file produced: the result, the data and the predictor (for a report), the YAML path."""

    result: FitResult
    data: Transitions
    predictor: BatchPredictor
    path: os.PathLike | None


def fit_space(space: str | os.PathLike, parameters: list[str] | None = None) -> ParameterSpace:
    """The space to fit: the named parameters, or every parameter that writes the model (no noise/delay)."""
    full = load_parameter_space(space)
    if parameters:
        return full.subset(parameters)
    return full.subset([p.name for p in full if p.kind in MODEL_KINDS])


def fit_file(data_path: str | os.PathLike, method: str, space: str | os.PathLike, out: str | os.PathLike | None,
             options: FitOptions = FitOptions(), system: str | None = None, parameters: list[str] | None = None,
             progress: Callable[[dict], None] | None = None) -> FileFit:
    """Load a dataset (sim2real_core.data.load_dataset), fit `method` with `options`, write the distribution
    YAML to `out`.

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
    predictor = BatchPredictor(sim, fitted, nthread=options.threads)
    result = fit(method, sim, fitted, data, config=options.method_config(method), progress=progress,
                 predictor=predictor)
    path = result.distribution.save(out) if out else None
    return FileFit(result, data, predictor, path)


def physics_overrides(result: FitResult, prefix: str = "physics.") -> dict[str, float]:
    """The fitted means as sim bridge parameters {prefix + name: value}."""
    dist = result.distribution
    return {f"{prefix}{name}": float(v) for name, v in zip(dist.space.names, dist.mean)}
