"""SysID: a point estimate by least squares on λ-step prediction error, with confidence intervals.

Residuals are predicted minus real next states, scaled per dimension like the DROPO likelihood. The Jacobian
is a forward difference whose dim+1 parameter vectors run in one mujoco.batch call; scipy's trust-region
reflective solver handles the bounds. Confidence intervals come from the Jacobian at the solution:
cov = s²·(JᵀJ)⁻¹ with s² the residual variance (floored at `noise_floor`, so that noise-free data does not
claim infinite precision).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize

from ..cluster import Cluster
from .engine import BatchPredictor, PinnedPredictor
from .shards import ShardedWindows, window_residuals
from .transitions import Transitions


@dataclass
class SysIdConfig:
    """Settings of a SysID fit.

    Attributes:
        horizon: λ control periods per prediction (1: one-step error; >1: multi-step).
        transitions: transitions used (a fixed random subsample; 0 = all).
        max_iterations: least-squares iterations (Jacobian evaluations).
        step: finite-difference step in bound units.
        noise_floor: smallest residual variance (scaled units) assumed for the confidence intervals.
        seed: seeds the subsample.
        shards: the residuals' transitions split over this many workers (fit.shards; 0 or 1: this process).
    """

    horizon: int = 1
    transitions: int = 500
    max_iterations: int = 30
    step: float = 1e-4
    noise_floor: float = 1e-3
    seed: int = 0
    shards: int = 0


class PredictionResiduals:
    """Scaled residuals r(u) = (f(ξ(u)) - s') / scale of a subsample, with batched finite-difference Jacobians;
    on `shards` workers of `cluster` when shards > 1."""

    def __init__(self, predictor: BatchPredictor | PinnedPredictor, data: Transitions, scale: np.ndarray,
                 horizon: int, transitions: int, seed: int, shards: int = 0, cluster: Cluster | None = None):
        self.predictor = predictor
        self.space = predictor.space
        self.width = self.space.high - self.space.low
        self.scale = scale
        starts = data.window_starts(horizon)
        if starts.size == 0:
            raise ValueError(f"no run of {horizon} consecutive transitions in the data")
        if transitions and starts.size > transitions:
            starts = np.sort(np.random.default_rng(seed).choice(starts, transitions, replace=False))
        self.starts = starts
        self.obs, self.actions, self.target, self.previous = data.windows(starts, horizon, predictor.depth)
        self.evaluations = 0
        self.sharded = None if shards <= 1 else ShardedWindows.of(
            predictor, cluster, shards, (self.obs, self.actions, self.target, self.previous), scale)

    def params(self, u: np.ndarray) -> np.ndarray:
        """Bound units -> parameter units (clipped to bounds)."""
        return self.space.low + np.clip(u, 0.0, 1.0) * self.width

    def many(self, us: np.ndarray) -> np.ndarray:
        """Residuals for several parameter vectors at once: (P, dim) -> (P, B·S)."""
        p = us.shape[0]
        self.evaluations += p
        if self.sharded is None:
            res = window_residuals(self.predictor, self.obs, self.actions, self.target, self.previous, self.scale,
                                   self.params(us))
        else:
            res = self.sharded.residuals(self.params(us))
        return res.reshape(p, -1)

    def jacobian(self, u: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
        """(residual at u, forward-difference Jacobian (B·S, dim)); steps go inward at the upper bound."""
        h = np.where(u + step <= 1.0, step, -step)
        us = np.vstack([u[None, :], u[None, :] + np.diag(h)])
        res = self.many(us)
        return res[0], ((res[1:] - res[0]) / h[:, None]).T


def fit_point(predictor: BatchPredictor | PinnedPredictor, data: Transitions, scale: np.ndarray, config: SysIdConfig,
              x0: np.ndarray | None = None, callback: Callable[[dict], None] | None = None,
              cluster: Cluster | None = None):
    """Least-squares estimate (residuals on config.shards workers of `cluster` when > 1). Returns (ξ̂, residuals
    object, J at ξ̂ in bound units, r at ξ̂, history)."""
    space = predictor.space
    res = PredictionResiduals(predictor, data, scale, config.horizon, config.transitions, config.seed, config.shards,
                              cluster)
    u0 = np.clip(((space.nominal if x0 is None else x0) - space.low) / res.width, 0.0, 1.0)
    cache: dict = {}
    history: list[dict] = []
    start = time.perf_counter()

    def jac_at(u):
        key = u.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = res.jacobian(u, config.step)
        return cache[key]

    def fun(u):
        r = jac_at(u)[0]
        row = {"iteration": len(history) + 1, "evaluations": res.evaluations,
               "objective": float(0.5 * r @ r / len(res.starts)), "seconds": time.perf_counter() - start}
        history.append(row)
        if callback is not None:
            callback(row)
        return r

    out = scipy.optimize.least_squares(fun, u0, jac=lambda u: jac_at(u)[1], bounds=(0.0, 1.0), method="trf",
                                       max_nfev=config.max_iterations, x_scale="jac")
    r, jac = jac_at(out.x)
    return res.params(out.x), res, jac, r, history


def _information(jac: np.ndarray, noise_var: float | np.ndarray) -> np.ndarray:
    """Fisher information JᵀWJ, W = 1/noise_var (rows of J are B·S with the state dimension fastest; noise_var a
    scalar or one per state dimension)."""
    weights = 1.0 / np.resize(np.asarray(noise_var, float), jac.shape[0])
    return jac.T @ (jac * weights[:, None])


def confidence_std(jac: np.ndarray, noise_var: float, width: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Standard errors sqrt(diag(noise_var·(JᵀJ)⁻¹)) in parameter units; inf where JᵀJ is singular along them."""
    info = _information(jac, noise_var)
    w, v = np.linalg.eigh(info)
    null = w <= rtol * max(w.max(), 1e-300)
    var_u = (v[:, ~null] ** 2) @ (1.0 / w[~null])
    var_u[np.any(v[:, null] ** 2 > 1e-6, axis=1)] = np.inf
    return np.sqrt(var_u) * width


def parameter_covariance(jac: np.ndarray, noise_var: float | np.ndarray, width: np.ndarray,
                         prior_std: float | None = None) -> np.ndarray:
    """Estimator covariance (JᵀWJ)⁻¹, W = 1/noise_var (see `_information`), in parameter units (J in bound units).

    With `prior_std` (bound units) a Gaussian prior regularises directions the data does not inform, so a
    parameter without effect gets the prior's std instead of an infinite or pseudo-inverse (zero) one.
    """
    info = _information(jac, noise_var)
    if prior_std is not None:
        info = info + np.eye(info.shape[0]) / prior_std ** 2
    cov_u = np.linalg.pinv(info, hermitian=True)
    return cov_u * np.outer(width, width)
