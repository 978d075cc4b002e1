"""Distributions over a parameter space, and the distribution YAML file of the design brief.

File shape::

    distribution:
      family: gaussian            # fixed | uniform | gaussian
      method: edropo              # how it was made: nominal, dropo, edropo, sysid, uniform, manual, ...
      parameters:
        - {name: link3_mass_scale, unit: "1", kind: body_mass_scale, element: fr3_link3, nominal: 1.0,
           bounds: [0.6, 1.6], mean: 1.12, std: 0.03}
      covariance: [[...]]         # optional, full covariance (gaussian)
      truncation_sigma: 2.0       # gaussian samples stay within mean ± k·std (and always within bounds)
      objective: {name: mean_log_likelihood, value: 12.3}
      provenance: {dataset: data/reach.npz, transitions: 2000}
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.stats

from ..config import ConfigError, OptionModel, load_config, save_yaml
from .parameters import ParameterRow, ParameterSpace

FAMILIES = ("fixed", "uniform", "gaussian")


@dataclass
class Distribution:
    """A distribution p(ξ) over a parameter space.

    family `fixed` uses `mean` only; `uniform` samples the box [low, high]; `gaussian` uses `mean` and
    `covariance`, truncated to the bounds and to ±truncation_sigma standard deviations per parameter.
    """

    space: ParameterSpace
    family: str
    mean: np.ndarray
    covariance: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    truncation_sigma: float | None = 2.0
    method: str = "manual"
    objective: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ConfigError(f"distribution family {self.family!r} unknown; expected one of {FAMILIES}")
        self.mean = np.asarray(self.mean, dtype=float).reshape(-1)
        if self.mean.shape != (self.space.dim,):
            raise ConfigError(f"distribution mean has {self.mean.size} values for {self.space.dim} parameters")
        self.low = self.space.low if self.low is None else np.asarray(self.low, dtype=float)
        self.high = self.space.high if self.high is None else np.asarray(self.high, dtype=float)
        names = np.asarray(self.space.names)
        for what, values in (("mean", self.mean), ("low", self.low), ("high", self.high)):
            bad = ~np.isfinite(values)
            if bad.any():
                raise ConfigError(f"distribution {what} of {names[bad].tolist()} is not finite: {values[bad].tolist()}")
        slack = 1e-9 * (self.space.high - self.space.low)  # a fit's mean at a bound, up to rounding
        outside = (self.mean < self.space.low - slack) | (self.mean > self.space.high + slack)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ConfigError(f"distribution mean of {names[i]} is {self.mean[i]:g}, outside its bounds "
                              f"[{self.space.low[i]:g}, {self.space.high[i]:g}]")
        if self.truncation_sigma is not None and not (self.truncation_sigma > 0 and np.isfinite(self.truncation_sigma)):
            raise ConfigError(f"truncation_sigma must be a positive number or null, got {self.truncation_sigma}")
        if np.any(self.low < self.space.low) or np.any(self.high > self.space.high) or np.any(self.low > self.high):
            raise ConfigError("distribution box must lie within the parameter bounds with low <= high")
        if self.family == "gaussian":
            if self.covariance is None:
                raise ConfigError("a gaussian distribution needs a covariance (or std)")
            cov = np.asarray(self.covariance, dtype=float)
            if not np.all(np.isfinite(cov)):
                raise ConfigError("covariance must be finite")
            if cov.shape != (self.space.dim, self.space.dim) or not np.allclose(cov, cov.T):
                raise ConfigError(f"covariance must be a symmetric {self.space.dim}x{self.space.dim} matrix")
            if np.min(np.linalg.eigvalsh(cov)) < -1e-12:
                raise ConfigError("covariance must be positive semi-definite")
            self.covariance = cov

    @classmethod
    def fixed(cls, space: ParameterSpace, values: np.ndarray | None = None, method: str = "nominal") -> "Distribution":
        """A point mass (the nominal values by default)."""
        return cls(space, "fixed", space.nominal if values is None else space.validate(values), method=method)

    @classmethod
    def uniform(cls, space: ParameterSpace, low=None, high=None, method: str = "uniform") -> "Distribution":
        """The box [low, high] (the parameter bounds by default)."""
        low = space.low if low is None else np.asarray(low, dtype=float)
        high = space.high if high is None else np.asarray(high, dtype=float)
        return cls(space, "uniform", (low + high) / 2, low=low, high=high, method=method)

    @classmethod
    def gaussian(cls, space: ParameterSpace, mean, std=None, covariance=None, truncation_sigma: float | None = 2.0,
                 method: str = "manual", **info) -> "Distribution":
        """N(mean, diag(std²)) or N(mean, covariance), truncated to bounds and ±truncation_sigma·std."""
        if covariance is None:
            std = np.asarray(std, dtype=float).reshape(-1)
            bad = ~((std >= 0) & np.isfinite(std))
            if bad.any() or std.shape != (space.dim,):
                offending = dict(zip(np.asarray(space.names)[bad].tolist(), std[bad].tolist()))
                raise ConfigError(f"std must be {space.dim} finite values >= 0, got {offending or std.tolist()}")
            covariance = np.diag(std ** 2)
        return cls(space, "gaussian", mean, covariance=covariance, truncation_sigma=truncation_sigma,
                   method=method, **info)

    @property
    def std(self) -> np.ndarray:
        """Per-parameter standard deviation of the untruncated family (0 for fixed)."""
        if self.family == "fixed":
            return np.zeros(self.space.dim)
        if self.family == "uniform":
            return (self.high - self.low) / np.sqrt(12.0)
        return np.sqrt(np.diag(self.covariance))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw n parameter vectors, (n, dim), within bounds (integer parameters rounded)."""
        dim = self.space.dim
        if self.family == "fixed":
            return self.space.clip(np.repeat(self.mean[None, :], n, axis=0))
        if self.family == "uniform":
            return self.space.clip(rng.uniform(self.low, self.high, size=(n, dim)))
        # Parameters with zero variance (e.g. those an embedded distribution holds at nominal) stay at the mean.
        active = np.flatnonzero(self.std > 0)
        mean, cov = self.mean[active], self.covariance[np.ix_(active, active)]
        lo, hi = self.low[active], self.high[active]
        if self.truncation_sigma is not None:
            lo = np.maximum(lo, mean - self.truncation_sigma * self.std[active])
            hi = np.minimum(hi, mean + self.truncation_sigma * self.std[active])
        out = np.repeat(self.mean[None, :], n, axis=0)
        if np.count_nonzero(cov - np.diag(np.diag(cov))) == 0:
            # Independent parameters: exact truncated normals by inverse CDF. Rejection from the joint normal
            # accepts almost nothing when several means sit at a bound (each halves the acceptance).
            sd = np.sqrt(np.diag(cov))
            empty = lo >= hi  # a mean outside the box by more than the truncation: the box's nearest value
            draws = scipy.stats.truncnorm.rvs(np.where(empty, -1.0, (lo - mean) / sd),
                                              np.where(empty, 1.0, (hi - mean) / sd), loc=mean, scale=sd,
                                              size=(n, active.size), random_state=rng)
            draws[:, empty] = np.clip(mean, self.low[active], self.high[active])[empty]
            out[:, active] = draws
            return self.space.clip(out)
        todo = np.arange(n)
        for _ in range(100):
            if todo.size == 0:
                break
            draws = rng.multivariate_normal(mean, cov, size=todo.size, method="eigh")
            inside = np.all((draws >= lo) & (draws <= hi), axis=1)
            out[np.ix_(todo[inside], active)] = draws[inside]
            todo = todo[~inside]
        if todo.size:  # the truncation region holds almost no mass: clip what is left
            draws = rng.multivariate_normal(mean, cov, size=todo.size, method="eigh")
            out[np.ix_(todo, active)] = np.clip(draws, lo, hi)
        return self.space.clip(out)

    def embed(self, space: ParameterSpace, values: dict[str, float] | None = None) -> "Distribution":
        """This distribution over a larger space; the parameters it does not cover stay at `values` (default: their
        nominal values)."""
        if self.space.names == space.names:
            return self
        index = np.array([space.index(name) for name in self.space.names])  # KeyError names a missing one
        mean = space.vector(values or {}, fill_nominal=True)
        mean[index] = self.mean
        low, high = mean.copy(), mean.copy()
        low[index], high[index] = self.low, self.high
        covariance = None
        if self.family == "gaussian":
            covariance = np.zeros((space.dim, space.dim))
            covariance[np.ix_(index, index)] = self.covariance
        return Distribution(space, self.family, mean, covariance=covariance, low=low, high=high,
                            truncation_sigma=self.truncation_sigma, method=self.method, objective=self.objective,
                            provenance={**self.provenance, "embedded_from": list(self.space.names)})

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (see module docstring)."""
        rows = self.space.to_list()
        for i, row in enumerate(rows):
            row["mean"] = float(self.mean[i])
            if self.family == "uniform":
                row["low"], row["high"] = float(self.low[i]), float(self.high[i])
            elif self.family == "gaussian":
                row["std"] = float(self.std[i])
        body: dict[str, Any] = {"family": self.family, "method": self.method, "parameter_space": self.space.name,
                                "parameters": rows}
        if self.family == "gaussian":
            if not np.allclose(self.covariance, np.diag(np.diag(self.covariance))):
                body["covariance"] = self.covariance.tolist()
            body["truncation_sigma"] = self.truncation_sigma
        if self.objective:
            body["objective"] = _plain(self.objective)
        if self.provenance:
            body["provenance"] = _plain(self.provenance)
        return {"distribution": body}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the distribution YAML file."""
        return save_yaml(path, self.to_dict())


def _plain(value: Any) -> Any:
    """numpy scalars/arrays -> plain Python for YAML."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class DistributionRow(ParameterRow):
    """A parameter of a distribution file with its values: `mean` (and `std`, gaussian; `value` is fixed's older
    name for the mean), or the box `low`/`high` (uniform; default: the bounds)."""

    mean: float | None = None
    std: float | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None


class DistributionBody(OptionModel):
    """The `distribution:` mapping of a distribution file (see the module docstring)."""

    family: Literal[FAMILIES]
    method: str | None = None
    parameter_space: str = ""
    parameters: list[DistributionRow]
    covariance: list[list[float]] | None = None
    truncation_sigma: float | None = 2.0
    objective: dict[str, Any] = {}
    provenance: dict[str, Any] = {}


class DistributionFile(OptionModel):
    """A distribution file."""

    distribution: DistributionBody


def _distribution(body: DistributionBody, where: str) -> Distribution:
    """The Distribution a validated file body describes; ConfigError naming `where` when its values do not make one."""
    rows = body.parameters
    space = ParameterSpace.from_list(rows, name=body.parameter_space, where=f"{where}: parameters")
    family = body.family
    missing = [r.name for r in rows if (r.mean if r.mean is not None else r.value) is None]
    if family == "gaussian" and body.covariance is None:
        missing += [r.name for r in rows if r.std is None]
    try:
        if family != "uniform" and missing:
            raise ConfigError(f"malformed {family} distribution: no mean or std for {sorted(set(missing))}")
        if family == "fixed":
            dist = Distribution.fixed(space, np.array([r.mean if r.mean is not None else r.value for r in rows]))
        elif family == "uniform":
            dist = Distribution.uniform(space, [r.bounds[0] if r.low is None else r.low for r in rows],
                                        [r.bounds[1] if r.high is None else r.high for r in rows])
        else:
            dist = Distribution.gaussian(space, [r.mean for r in rows],
                                         std=None if body.covariance is not None else [r.std for r in rows],
                                         covariance=body.covariance, truncation_sigma=body.truncation_sigma)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    dist.method = body.method or family
    dist.objective = dict(body.objective)
    dist.provenance = dict(body.provenance)
    return dist


def load_distribution(path: str | os.PathLike) -> Distribution:
    """Read a distribution YAML file (ConfigError naming the file and every bad field)."""
    return _distribution(load_config(path, DistributionFile).distribution, str(path))
