"""Held-out validation of a fit, and the warnings that say when not to trust it.

Consistency of ODR assumes the data come from the simulator family; a real arm's never do. A fit is therefore
checked on whole episodes it never saw:

- open-loop prediction error over 1, 10 and 50 control periods (the recorded actions replayed from a recorded
  state), at the fitted mean, the nominal parameters and the centre of the parameter box, in units of the
  data's spread of s' - s (the unit DROPO's likelihood measures states in);
- one-step Gaussian log-likelihood of the held-out next states: under the fitted distribution (K parameter
  samples) and under the two points, each with the fit's ε;
- two misspecification checks of the one-step residuals at the fitted mean: their mean squared size
  standardised by the fit's noise model (prediction spread + ε; about 1 when the model is calibrated, far
  above when it is overconfident), and the share of their variance that a linear function of (s, a) predicts
  on held-out windows it was not fitted to (about 0 when they are noise; a learned ε absorbs a misfit's size,
  not its structure);
- warnings: a fitted mean at a bound, two parameters that trade against each other (|posterior correlation| >
  0.9, where the fit has a covariance), a fit that predicts held-out episodes worse than the nominal model, a
  residual ratio above 3, residuals more than 30 % predictable from (s, a).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..sim.distributions import Distribution
from .dropo import DropoConfig, state_scale
from .engine import BatchPredictor, gaussian_loglik
from .transitions import Transitions

HORIZONS = (1, 10, 50)
MAX_WINDOWS = 400  # held-out windows per horizon
SAMPLES = 16  # parameter samples for the fitted distribution's likelihood
AT_BOUND = 0.02  # a mean within this fraction of its range from a bound is "at the bound"
CORRELATED = 0.9
MISSPECIFIED = 3.0
STRUCTURED = 0.3
WORSE = 1.05  # a fit's held-out error above this multiple of nominal's is worse than nominal
EXACT = 1e-6  # residual RMS [s'-s spreads] below which a fit reproduces the data


@dataclass
class Validation:
    """The held-out scores of a fit (see the module docstring)."""

    episodes: int
    transitions: int
    error: dict[str, dict[int, float]]  # candidate -> horizon -> RMSE in units of the s'-s spread
    loglik: dict[str, float]  # candidate -> mean one-step log-likelihood per transition
    residual_ratio: float
    residual_structure: float  # share of the residual variance predictable from (s, a); nan if too few
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON/YAML-friendly form (horizons as string keys)."""
        out = asdict(self)
        out["error"] = {name: {str(h): v for h, v in row.items()} for name, row in self.error.items()}
        return out

    def lines(self) -> list[str]:
        """A human-readable summary, one line each."""
        horizons = sorted(next(iter(self.error.values())))
        out = [f"held-out validation on {self.episodes} episodes ({self.transitions} transitions): prediction "
               "error [s'-s spreads] at " + ", ".join(f"{h}" for h in horizons) + " periods"]
        for name, row in self.error.items():
            out.append(f"  {name:12s} " + "  ".join(f"{row[h]:.3g}" for h in horizons)
                       + f"   one-step log-likelihood {self.loglik[name]:.4g}")
        out.append(f"  residuals / noise model: {self.residual_ratio:.2f} (about 1 when calibrated); share of the "
                   f"residuals predictable from (s, a): {self.residual_structure:.2f} (about 0 when they are noise)")
        out += [f"WARNING: {w}" for w in self.warnings]
        return out


def episode_ids(data: Transitions) -> np.ndarray:
    """The episode index of every transition (a new episode after every end)."""
    return np.concatenate([[0], np.cumsum(data.ends[:-1])]).astype(int)


def split_episodes(data: Transitions, fraction: float, seed: int = 0) -> tuple[Transitions, Transitions | None]:
    """(fit data, held-out data): round(fraction x episodes) whole episodes, chosen at random, held out (at least
    one when fraction > 0 and there are two episodes or more; None when nothing is held out)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout must be a fraction in [0, 1), got {fraction}")
    ids = episode_ids(data)
    episodes = int(ids[-1]) + 1
    held = 0 if fraction == 0.0 or episodes < 2 else min(episodes - 1, max(1, round(fraction * episodes)))
    if held == 0:
        return data, None
    chosen = np.random.default_rng(seed).permutation(episodes)[:held]
    mask = np.isin(ids, chosen)
    held_out = data.subset(np.flatnonzero(mask))
    held_out.metadata = {**held_out.metadata, "held_out_episodes": sorted(int(e) for e in chosen)}
    return data.subset(np.flatnonzero(~mask)), held_out


def residual_structure(residuals: np.ndarray, inputs: np.ndarray) -> float:
    """Share of the variance of `residuals` (M, S) that a linear function of `inputs` (M, D) predicts on the half
    of the rows it was not fitted to (2-fold); nan when there are too few rows for the regressors."""
    m = len(residuals)
    design = np.hstack([inputs, np.ones((m, 1))])
    if m < 4 * design.shape[1]:
        return float("nan")
    folds = np.arange(m) % 2 == 0
    predicted = np.empty_like(residuals)
    for train in (folds, ~folds):
        coef, *_ = np.linalg.lstsq(design[train], residuals[train], rcond=None)
        predicted[~train] = design[~train] @ coef
    total = np.sum((residuals - residuals.mean(axis=0)) ** 2)
    return float(1.0 - np.sum((residuals - predicted) ** 2) / total) if total > 0 else float("nan")


def _windows(data: Transitions, horizon: int, rng: np.random.Generator, depth: int):
    starts = data.window_starts(horizon)
    if starts.size > MAX_WINDOWS:
        starts = np.sort(rng.choice(starts, MAX_WINDOWS, replace=False))
    return data.windows(starts, horizon, depth) if starts.size else None


def validate_fit(predictor: BatchPredictor, distribution: Distribution, held_out: Transitions,
                 scale: np.ndarray | None = None, horizons=HORIZONS, seed: int = 0) -> Validation:
    """Score `distribution` (fitted over predictor.space) on held-out transitions; see the module docstring.

    scale: the state unit (default: the held-out data's spread of s' - s).
    """
    space = distribution.space
    scale = state_scale(held_out) if scale is None else scale
    epsilon = np.asarray(distribution.objective.get("epsilon", DropoConfig.epsilon), dtype=float)
    rng = np.random.default_rng(seed)
    points = {"fit": distribution.mean, "nominal": space.nominal, "box centre": 0.5 * (space.low + space.high)}
    error = {name: {} for name in points}
    for horizon in horizons:
        windows = _windows(held_out, horizon, rng, predictor.depth)
        if windows is None:
            continue
        start, actions, target, previous = windows
        for name, point in points.items():
            predicted = predictor.predict(start, actions, np.repeat(point[None, :], len(start), axis=0), previous)
            error[name][horizon] = float(np.sqrt(np.mean(((predicted - target) / scale) ** 2)))
    start, actions, target, previous = _windows(held_out, 1, rng, predictor.depth)
    m = len(start)
    samples = distribution.sample(rng, SAMPLES)
    candidates = {"fit": samples, **{name: np.repeat(points[name][None, :], SAMPLES, axis=0)
                                     for name in ("nominal", "box centre")}}
    loglik, residual_ratio = {}, float("nan")
    for name, params in candidates.items():
        predicted = predictor.predict(np.repeat(start, SAMPLES, axis=0), np.repeat(actions, SAMPLES, axis=0),
                                      np.tile(params, (m, 1)), np.repeat(previous, SAMPLES, axis=0)
                                      ).reshape(m, SAMPLES, -1) / scale
        loglik[name] = float(np.mean(gaussian_loglik(predicted, target / scale, epsilon)))
        if name == "fit":
            variance = predicted.var(axis=1, ddof=1) + epsilon
            residual_ratio = float(np.mean((target / scale - predicted.mean(axis=1)) ** 2 / variance))
    at_mean = predictor.predict(start, actions, np.repeat(distribution.mean[None, :], m, axis=0), previous)
    residuals = (target - at_mean) / scale
    # residuals at round-off level (a fit that reproduces the data) have no structure worth a warning
    structure = (residual_structure(residuals, np.hstack([start / scale, actions[:, 0]]))
                 if np.sqrt(np.mean(residuals ** 2)) > EXACT else float("nan"))
    result = Validation(episodes=int(episode_ids(held_out)[-1]) + 1, transitions=len(held_out), error=error,
                        loglik=loglik, residual_ratio=residual_ratio, residual_structure=structure)
    result.warnings = fit_warnings(distribution, result)
    return result


def fit_warnings(distribution: Distribution, validation: Validation | None = None) -> list[str]:
    """Reasons to distrust a fit: means at a bound (gaussian and fixed fits), parameters traded against each other
    (fits with a covariance) and, with a validation, held-out predictions worse than nominal and residuals the
    noise model does not explain."""
    space, warnings = distribution.space, []
    position = (distribution.mean - space.low) / (space.high - space.low)
    for p, at in zip(space, position if distribution.family != "uniform" else ()):
        if at < AT_BOUND or at > 1.0 - AT_BOUND:
            side, value = ("lower", p.low) if at < 0.5 else ("upper", p.high)
            unit = "" if p.unit in ("", "1") else f" {p.unit}"
            warnings.append(f"{p.name} sits at its {side} bound ({value:g}{unit}): the data push it beyond "
                            "the range, often an effect outside the simulator family")
    cov = distribution.covariance if distribution.covariance is not None else np.zeros((space.dim, space.dim))
    std = np.sqrt(np.diag(cov))
    if np.count_nonzero(cov - np.diag(np.diag(cov))):
        corr = cov / np.maximum(np.outer(std, std), 1e-300)
        for i, j in zip(*np.triu_indices(space.dim, 1)):
            if abs(corr[i, j]) > CORRELATED:
                warnings.append(f"{space.names[i]} and {space.names[j]} trade against each other (posterior "
                                f"correlation {corr[i, j]:+.2f}): the data fix a combination, not each")
    if validation is not None:
        for horizon, value in validation.error["fit"].items():
            nominal = validation.error["nominal"].get(horizon)
            if nominal is not None and value > WORSE * nominal + EXACT:
                warnings.append(f"the fit predicts held-out episodes worse than the nominal model over {horizon} "
                                f"periods ({value:.3g} against {nominal:.3g})")
        if validation.residual_ratio > MISSPECIFIED:
            warnings.append(f"held-out residuals are {validation.residual_ratio:.1f}x what the fit's noise model "
                            "allows: the fit is overconfident about these data")
        if validation.residual_structure > STRUCTURED:
            warnings.append(f"{validation.residual_structure:.0%} of the held-out residuals' variance is a linear "
                            "function of the state and action: a systematic error the simulator family does not "
                            "model (misspecified)")
    return warnings


def judge_fit(predictor: BatchPredictor, distribution: Distribution, held_out: Transitions | None,
              scale: np.ndarray, seed: int = 0) -> tuple[Validation | None, list[str]]:
    """Validate a fit on the held-out transitions (None: nothing held out) and keep the validation and the
    warnings in its provenance; return both."""
    validation = None if held_out is None else validate_fit(predictor, distribution, held_out, scale, seed=seed)
    warnings = fit_warnings(distribution, validation)
    if validation is not None:
        distribution.provenance["validation"] = validation.to_dict()
    distribution.provenance["warnings"] = warnings
    return validation, warnings
