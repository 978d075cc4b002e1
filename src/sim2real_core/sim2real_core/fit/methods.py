"""The fitting methods behind one call: DROPO, E-DROPO, SysID and the uniform DR baseline.

Each takes a System (model + observation layout), a ParameterSpace and Transitions, and returns a FitResult:
a Distribution with method, objective and provenance filled (write it with `result.distribution.save(path)`),
the objective per optimiser iteration, and diagnostics (including which parameters the data identifies).
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Callable

import numpy as np

from ..cluster import Cluster
from ..config import ConfigError
from ..sim.distributions import Distribution
from ..sim.parameters import ParameterSpace
from .dropo import DropoConfig, DropoObjective, FitResult, linearized_search, optimise, state_scale
from .engine import BatchPredictor, PinnedPredictor, System
from .sysid import PredictionResiduals, SysIdConfig, confidence_std, fit_point, parameter_covariance
from .transitions import Transitions

METHODS = ("dropo", "edropo", "sysid", "uniform")
# Prior std (bound units) for identifiability: the std of the uniform box.
_PRIOR_STD = 1.0 / np.sqrt(12.0)
# A parameter counts as identified when the data shrinks its std below this fraction of the prior's.
IDENTIFIED_RATIO = 1.0 / 3.0
# Integer parameters (an action delay) are profiled: a short SysID per combination of their values.
PROFILE_ITERATIONS = 5
MAX_PROFILE_COMBINATIONS = 64

Progress = Callable[[dict], None]


def identifiability(predictor: BatchPredictor, data: Transitions, point: np.ndarray, scale: np.ndarray,
                    noise_var: float | np.ndarray, horizon: int = 1, transitions: int = 500, seed: int = 0,
                    step: float = 1e-4) -> dict[str, dict]:
    """Which parameters the data pins down near `point`: local Fisher information with a box prior.

    The Jacobian of the scaled λ-step predictions at `point` gives the information JᵀJ/noise_var; adding the
    precision of a Gaussian with the uniform box's std, a parameter's posterior std (bound units) shows how
    much the data narrows it. Ratio ≈ 1: the data does not inform it (not identifiable from this data).

    Returns:
      {name: {posterior_std (parameter units), ratio (to the prior std), identifiable (bool)}}.
    """
    res = PredictionResiduals(predictor, data, scale, horizon, transitions, seed)
    u = (np.asarray(point, float) - predictor.space.low) / res.width
    _, jac = res.jacobian(np.clip(u, 0.0, 1.0), step)
    cov = parameter_covariance(jac, noise_var, res.width, prior_std=_PRIOR_STD)
    std = np.sqrt(np.maximum(np.diag(cov), 0.0))
    ratio = std / (res.width * _PRIOR_STD)
    return {name: {"posterior_std": float(s), "ratio": float(r), "identifiable": bool(r < IDENTIFIED_RATIO)}
            for name, s, r in zip(predictor.space.names, std, ratio)}


def pin_integers(predictor: BatchPredictor, data: Transitions, scale: np.ndarray, horizon: int,
                 seed: int) -> tuple[BatchPredictor | PinnedPredictor, dict]:
    """Choose the integer parameters (whole-period action delay) by profile: for every combination of their values,
    a short SysID of the others (PROFILE_ITERATIONS least-squares iterations on `horizon`-step error) with them
    pinned; the combination with the smallest residual is kept. Gradients cannot move a rounded value, a profile
    can. Returns the predictor over the other parameters (unchanged without integer parameters) and
    {pinned: {name: value}, residuals: [{values, residual}]}."""
    integers = [p for p in predictor.space if p.integer]
    if not integers:
        return predictor, {}
    choices = [range(int(np.ceil(p.low)), int(np.floor(p.high)) + 1) for p in integers]
    combinations = list(itertools.product(*choices))
    if len(combinations) > MAX_PROFILE_COMBINATIONS:
        raise ConfigError(f"integer parameters {[p.name for p in integers]} have {len(combinations)} combinations of "
                          f"values; profiling fits at most {MAX_PROFILE_COMBINATIONS}: narrow their bounds")
    config = SysIdConfig(horizon=horizon, transitions=500, max_iterations=PROFILE_ITERATIONS, seed=seed)
    rows = []
    for values in combinations:
        pinned = {p.name: float(v) for p, v in zip(integers, values)}
        *_, residuals, _ = fit_point(PinnedPredictor(predictor, pinned), data, scale, config)
        rows.append({"values": pinned, "residual": float(residuals @ residuals / residuals.size)})
    best = min(rows, key=lambda row: row["residual"])["values"]
    return PinnedPredictor(predictor, best), {"pinned": best, "residuals": rows}


def _unpin(distribution: Distribution, space: ParameterSpace, profile: dict) -> Distribution:
    """A distribution fitted beside pinned integer parameters, over the whole space (the pinned ones exact)."""
    if not profile:
        return distribution
    whole = distribution.embed(space, profile["pinned"])
    whole.provenance = {key: value for key, value in whole.provenance.items() if key != "embedded_from"}
    whole.provenance["integer_profile"] = profile
    return whole


def _provenance(system: System, data: Transitions, used: int, seconds: float, evaluations: int,
                settings: dict, predictor: BatchPredictor) -> dict:
    meta = data.metadata
    prov = {"dataset": meta.get("source_path", meta.get("source", "arrays")), "system": system.name,
            "transitions": len(data), "transitions_used": int(used), "seconds": round(seconds, 3),
            "objective_evaluations": int(evaluations), "physics_steps": int(predictor.steps), "settings": settings}
    for key in ("robot", "true_parameters", "state_layout", "control_period"):
        if key in meta:
            prov[key] = meta[key]
    return prov


def _prepare(system: System, space: ParameterSpace, data: Transitions, predictor: BatchPredictor | None,
             nthread: int) -> BatchPredictor:
    system.check(data.state_dim, data.action_dim, data.metadata.get("state_layout"))
    if predictor is None:
        return BatchPredictor(system, space, nthread=nthread)
    if predictor.space.names != space.names:
        raise ValueError(f"predictor space {list(predictor.space.names)} differs from {list(space.names)}")
    return predictor


def fit_dropo(system: System, space: ParameterSpace, data: Transitions, config: DropoConfig | None = None,
              progress: Progress | None = None, predictor: BatchPredictor | None = None,
              nthread: int = 0, cluster: Cluster | None = None) -> FitResult:
    """DROPO (entropy_weight 0) or E-DROPO (entropy_weight α > 0) fit of N(μ, Σ).

    Args:
      system, space, data: what to fit, on which model, from which transitions.
      config: fit settings (DropoConfig defaults when None).
      progress: called with each history row {iteration, evaluations, objective, seconds}.
      predictor: a BatchPredictor to reuse (its batches are cached between fits).
      nthread: batch threads (0: all CPUs).
      cluster: where the sampled objective's shards live (config.shards > 1; default: this process).
    Returns:
      FitResult with a gaussian Distribution (method dropo or edropo).
    """
    config = config or DropoConfig()
    start = time.perf_counter()
    whole = space
    predictor = _prepare(system, space, data, predictor, nthread)
    scale = state_scale(data)
    predictor, profile = pin_integers(predictor, data, scale, config.horizon, config.seed)
    space = predictor.space
    history: list[dict] = []
    info: dict = {}
    mean0 = space.nominal
    if config.warm_start:
        warm = SysIdConfig(horizon=config.horizon, transitions=max(config.transitions, 100),
                           max_iterations=10, seed=config.seed)
        mean0, _, _, _, _ = fit_point(predictor, data, scale, warm)
        info["warm_start_mean"] = space.as_dict(mean0)
    objective = DropoObjective(predictor, data, config, scale=scale, cluster=cluster)

    def tick(row):
        row = {**row, "objective": -row["objective"], "phase": "dropo"}
        history.append(row)
        if progress is not None:
            progress(row)

    phi0 = objective.initial(mean0, config.init_std)
    if config.optimizer == "linearized":
        def relay(row):
            history.append(row)
            if progress is not None:
                progress(row)
        phi, _ = linearized_search(objective, data, phi0, relay)
        neg = -objective.value(phi)
    else:
        phi, neg, _ = optimise(lambda p: -objective.value(p), phi0, objective.bounds(), config.optimizer,
                               config.max_evaluations, config.seed, tick)
    mean, cov = objective.distribution(phi)
    _, _, eps = objective.unpack(phi)
    eps = eps.tolist() if isinstance(eps, np.ndarray) else eps
    loglik = float(np.mean(objective.loglik(phi)))
    method = "edropo" if config.entropy_weight > 0 else "dropo"
    info["identifiability"] = identifiability(predictor, data, mean, scale, eps, config.horizon,
                                              config.transitions or len(data), config.seed)
    info["epsilon"] = eps
    settings = dataclasses.asdict(config)
    objective_info = {"name": "mean_log_likelihood" + (" + alpha*entropy" if method == "edropo" else ""),
                      "value": float(-neg), "mean_log_likelihood": loglik, "entropy": objective.entropy(phi),
                      "alpha": config.entropy_weight, "epsilon": eps}
    prov = _provenance(system, data, len(objective.starts), time.perf_counter() - start,
                       objective.evaluations, settings, predictor)
    if objective.sharded is not None:
        prov["physics_steps"] += objective.sharded.steps
        info["shard_nodes"] = prov["shard_nodes"] = objective.sharded.nodes()
    prov["identifiability"] = info["identifiability"]
    if config.covariance == "full":
        dist = Distribution.gaussian(space, mean, covariance=cov, truncation_sigma=config.truncation_sigma,
                                     method=method, objective=objective_info, provenance=prov)
    else:
        dist = Distribution.gaussian(space, mean, std=np.sqrt(np.diag(cov)), truncation_sigma=config.truncation_sigma,
                                     method=method, objective=objective_info, provenance=prov)
    return FitResult(_unpin(dist, whole, profile), history, info)


def edropo_alpha(data: Transitions, horizon: int = 1) -> float:
    """E-DROPO's α chosen from the data: one over its λ-step windows, N. The objective (mean log-likelihood + α·H)
    is then (Σ log-likelihood + H) / N, close to the evidence lower bound of a flat prior over the box: a
    parameter's std settles near its posterior width, narrow where the data pin it down and wide where they leave
    it uncertain (where DROPO's std has nothing to move it)."""
    return 1.0 / max(int(data.window_starts(horizon).size), 1)


def fit_edropo(system: System, space: ParameterSpace, data: Transitions, config: DropoConfig | None = None,
               alpha: float | None = None, **kwargs) -> FitResult:
    """E-DROPO: DROPO with an entropy bonus α·H(N(μ, Σ)); α is the config's entropy_weight when > 0, else
    `alpha`, else chosen from the data (edropo_alpha)."""
    config = config or DropoConfig()
    if config.entropy_weight <= 0:
        chosen = alpha if alpha is not None else edropo_alpha(data, config.horizon)
        config = dataclasses.replace(config, entropy_weight=chosen)
    return fit_dropo(system, space, data, config, **kwargs)


def fit_sysid(system: System, space: ParameterSpace, data: Transitions, config: SysIdConfig | None = None,
              progress: Progress | None = None, predictor: BatchPredictor | None = None,
              nthread: int = 0, cluster: Cluster | None = None) -> FitResult:
    """Least-squares point estimate with 95 % confidence intervals from the Jacobian.

    Returns:
      FitResult with a gaussian Distribution whose covariance is the estimator's, regularised by the box
      prior so that it stays finite (method sysid); the 95 % intervals (clipped to the bounds; the whole
      range where the data does not inform a parameter) and identifiability are in objective and provenance.
    """
    config = config or SysIdConfig()
    start = time.perf_counter()
    whole = space
    predictor = _prepare(system, space, data, predictor, nthread)
    scale = state_scale(data)
    predictor, profile = pin_integers(predictor, data, scale, config.horizon, config.seed)
    space = predictor.space
    history: list[dict] = []

    def tick(row):
        row = {**row, "phase": "sysid"}
        history.append(row)
        if progress is not None:
            progress(row)

    estimate, res, jac, r, _ = fit_point(predictor, data, scale, config, callback=tick, cluster=cluster)
    dof = max(r.size - space.dim, 1)
    noise_var = max(float(r @ r) / dof, config.noise_floor)
    cov = parameter_covariance(jac, noise_var, res.width, prior_std=_PRIOR_STD)
    std = confidence_std(jac, noise_var, res.width)
    ci = {p.name: [float(max(p.low, m - 1.96 * s)), float(min(p.high, m + 1.96 * s))]
          for p, m, s in zip(space, estimate, std)}
    ident = identifiability(predictor, data, estimate, scale, noise_var, config.horizon,
                            config.transitions or len(data), config.seed)
    objective_info = {"name": "mean_squared_scaled_prediction_error", "value": float(r @ r / len(res.starts)),
                      "residual_variance": noise_var, "confidence_95": ci}
    prov = _provenance(system, data, len(res.starts), time.perf_counter() - start, res.evaluations,
                       dataclasses.asdict(config), predictor)
    if res.sharded is not None:
        prov["physics_steps"] += res.sharded.steps
        prov["shard_nodes"] = res.sharded.nodes()
    prov["identifiability"] = ident
    dist = Distribution.gaussian(space, estimate, covariance=cov, truncation_sigma=2.0, method="sysid",
                                 objective=objective_info, provenance=prov)
    info = {"identifiability": ident, "confidence_95": ci}
    if res.sharded is not None:
        info["shard_nodes"] = prov["shard_nodes"]
    return FitResult(_unpin(dist, whole, profile), history, info)


def fit_uniform(system: System, space: ParameterSpace, data: Transitions, config: DropoConfig | None = None,
                progress: Progress | None = None, predictor: BatchPredictor | None = None,
                nthread: int = 0) -> FitResult:
    """The uniform DR baseline: the box of the parameter bounds, scored with the DROPO likelihood."""
    config = config or DropoConfig()
    start = time.perf_counter()
    predictor = _prepare(system, space, data, predictor, nthread)
    objective = DropoObjective(predictor, data, config)
    rng = np.random.default_rng(config.seed)
    xi = rng.uniform(space.low, space.high, size=(objective.k, space.dim))
    loglik = float(np.mean(objective.loglik_of_samples(xi, config.epsilon)))
    row = {"iteration": 1, "evaluations": 1, "objective": loglik, "seconds": time.perf_counter() - start,
           "phase": "uniform"}
    if progress is not None:
        progress(row)
    prov = _provenance(system, data, len(objective.starts), time.perf_counter() - start, 1,
                       dataclasses.asdict(config), predictor)
    dist = Distribution.uniform(space)
    dist.objective = {"name": "mean_log_likelihood", "value": loglik, "epsilon": config.epsilon}
    dist.provenance = prov
    return FitResult(dist, [row], {})


def fit(method: str, system: System, space: ParameterSpace, data: Transitions, **kwargs) -> FitResult:
    """Dispatch to fit_dropo / fit_edropo / fit_sysid / fit_uniform by name (a `cluster` serves the shards of
    DROPO, E-DROPO and SysID; uniform runs in this process)."""
    table = {"dropo": fit_dropo, "edropo": fit_edropo, "sysid": fit_sysid, "uniform": fit_uniform}
    if method not in table:
        raise ValueError(f"unknown fitting method {method!r}; expected one of {METHODS}")
    if method == "uniform":
        kwargs.pop("cluster", None)
    return table[method](system, space, data, **kwargs)
