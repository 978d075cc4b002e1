"""DROPO and E-DROPO: fit N(μ, Σ) over simulator parameters by maximising the likelihood of real transitions.

For each real transition (s, a, s') the simulator is reset to s, a is applied for λ control periods under K
parameter samples ξ_k ~ N(μ, Σ) (truncated), a Gaussian is fitted to the K predicted next states (+ ε·I), and
the real s' is scored; the objective is the mean log-likelihood (Tiboni et al. 2023). E-DROPO adds α·H(N(μ, Σ))
so that Σ does not collapse (Fickinger et al. 2025).

Speed: the K samples are common random numbers, ξ_k = μ + L z_k with fixed truncated standard-normal draws
z_k (antithetic pairs; with a diagonal Σ mapped by inverse CDF onto the normal truncated at the bounds, which
is what training samples) and a fixed subsample of transitions, so the objective is a deterministic, smooth
function of φ = (μ, L); all B·K simulations of one evaluation run in one mujoco.batch call. The default search
("linearized") maximises the same objective for the simulator linearised around μ (closed form: predicted
mean f(μ0) + J (μ - μ0), covariance J Σ Jᵀ, which is what the K-sample Gaussian fit estimates), with analytic
gradients, re-linearises a few times ((dim+1)·B simulations each), and polishes on the sampled objective with
a small Nelder-Mead budget; the sampled objective decides every accepted step. Parameters are optimised in
units of their bounds (u = (ξ - low) / (high - low)); states are scaled per dimension by the spread of s' - s
in the data, so ε is a variance in those units. The entropy is also measured in bound units.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import scipy.optimize
from scipy.special import ndtr, ndtri

from ..cluster import Cluster
from ..sim.distributions import Distribution
from .engine import BatchPredictor, PinnedPredictor
from .shards import ShardedWindows, windows_loglik
from .transitions import Transitions

_LOG_SIGMA_RANGE = (np.log(1e-4), np.log(0.5))
_LOG_EPS_RANGE = (np.log(1e-6), np.log(1.0))
OPTIMIZERS = ("linearized", "lbfgsb", "nelder-mead", "cmaes")


@dataclass
class DropoConfig:
    """Settings of a DROPO / E-DROPO fit (defaults: this project's fast settings; DROPO's were K=100, CMA-ES 1000).

    Attributes:
        samples: K parameter samples per transition (rounded up to even: antithetic pairs).
        epsilon: variance added to the predicted-state covariance (scaled state units).
        learn_epsilon: optimise log ε as well (from `epsilon`).
        epsilon_per_dimension: with learn_epsilon, one ε per state dimension (diag(ε) instead of ε·I), so an
            unmodelled effect that spoils the velocities does not also blur the well-predicted positions.
        horizon: λ, control periods simulated from s before comparing with the real state.
        transitions: B transitions per evaluation (a fixed random subsample; 0 = all).
        covariance: "diag" (per-parameter std) or "full".
        entropy_weight: α of E-DROPO (0 = DROPO).
        optimizer: "linearized" (Gauss-Newton-like: maximise the objective of a simulator linearised around μ,
            re-linearise, then polish on the sampled objective with Nelder-Mead), "lbfgsb" (finite-difference
            gradients on the smooth CRN objective), "nelder-mead", "cmaes".
        max_evaluations: sampled-objective evaluations the optimiser may use ("linearized": for the polish).
        linearizations: at most this many re-linearisations ("linearized").
        linearized_transitions: transitions in the linearised objective (a fixed subsample; 0 = all).
        warm_start: start μ from a quick SysID estimate (least squares on one-step error).
        init_std: initial std in bound units.
        truncation_sigma: samples are truncated at ±truncation_sigma std (as the output distribution).
        seed: seeds the subsample and the common random numbers.
        shards: the sampled objective's transitions split over this many workers (fit.shards; 0 or 1: this process).
    """

    samples: int = 16
    epsilon: float = 1e-3
    learn_epsilon: bool = True
    epsilon_per_dimension: bool = False
    horizon: int = 1
    transitions: int = 100
    covariance: str = "diag"
    entropy_weight: float = 0.0
    optimizer: str = "linearized"
    max_evaluations: int = 40
    linearizations: int = 6
    linearized_transitions: int = 1000
    warm_start: bool = True
    init_std: float = 0.02
    truncation_sigma: float = 2.0
    seed: int = 0
    shards: int = 0

    def __post_init__(self):
        if self.samples < 2:
            raise ValueError(f"samples (K) must be >= 2, got {self.samples}")
        if self.shards < 0:
            raise ValueError(f"shards must be >= 0 (0: in this process), got {self.shards}")
        if self.horizon < 1:
            raise ValueError(f"horizon (lambda) must be >= 1, got {self.horizon}")
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {self.epsilon}")
        if self.epsilon_per_dimension and not self.learn_epsilon:
            raise ValueError("epsilon_per_dimension needs learn_epsilon: true")
        if self.covariance not in ("diag", "full"):
            raise ValueError(f"covariance must be 'diag' or 'full', got {self.covariance!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight (alpha) must be >= 0, got {self.entropy_weight}")
        if self.max_evaluations < (0 if self.optimizer == "linearized" else 1):
            raise ValueError(f"max_evaluations must be >= 1 (>= 0 with the linearized optimiser: no polish), "
                             f"got {self.max_evaluations}")


@dataclass
class FitResult:
    """A fitted distribution, the objective per optimiser iteration, and diagnostics."""

    distribution: Distribution
    history: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)


AUTO_TRANSITIONS = -1  # FitOptions.transitions: choose from the data (affordable_transitions)
PROBE_TRANSITIONS = 200  # transitions the cost of an evaluation is measured on


def affordable_transitions(predictor: BatchPredictor, data: Transitions, config: DropoConfig,
                           seconds: float) -> tuple[DropoConfig, dict]:
    """DROPO's transitions per evaluation chosen from the data: all of them when `config.max_evaluations`
    sampled-objective evaluations are estimated to take at most `seconds`, else as many as fit (at least
    PROBE_TRANSITIONS' worth, or all when fewer). Returns the config and the estimate (transitions chosen and
    available, seconds per evaluation of each)."""
    available = int(data.window_starts(config.horizon).size)
    probe = DropoObjective(predictor, data, replace(config, transitions=min(available, PROBE_TRANSITIONS)))
    phi = probe.initial(0.5 * (predictor.space.low + predictor.space.high), config.init_std)
    probe.value(phi)  # the batches of this size exist after the first call
    start = time.perf_counter()
    probe.value(phi)
    per_transition = (time.perf_counter() - start) / len(probe.starts)
    evaluations = max(config.max_evaluations, 1)
    fitting = int(seconds / (evaluations * per_transition))
    chosen = available if fitting >= available else max(min(available, PROBE_TRANSITIONS), fitting)
    estimate = {"transitions": chosen, "available": available, "evaluations": evaluations,
                "seconds_per_evaluation": per_transition * chosen,
                "seconds_per_evaluation_all": per_transition * available}
    return replace(config, transitions=0 if chosen == available else chosen), estimate


def state_scale(data: Transitions) -> np.ndarray:
    """Per-dimension spread of s' - s (floored), the unit the likelihood measures states in."""
    delta = data.next_observations - data.observations
    scale = delta.std(axis=0)
    return np.maximum(scale, 1e-6 + 1e-3 * scale.max())


def crn_draws(samples: int, dim: int, truncation_sigma: float, seed: int) -> np.ndarray:
    """(K, dim) fixed standard-normal draws truncated at ±truncation_sigma, in antithetic pairs."""
    rng = np.random.default_rng(seed)
    half = (samples + 1) // 2
    out = np.empty((0, dim))
    while out.shape[0] < half:
        z = rng.standard_normal((4 * half, dim))
        out = np.vstack([out, z[np.all(np.abs(z) <= truncation_sigma, axis=1)]])
    out = out[:half]
    return np.vstack([out, -out])


class DropoObjective:
    """The CRN DROPO objective over φ, as a function of a flat vector (to minimise: its negative).

    Args:
      predictor: batched simulator.
      data: real transitions.
      config: fit settings.
      scale: state scale (default: `state_scale(data)`).
      cluster: where the shards of config.shards > 1 live (default: in this process).
    """

    def __init__(self, predictor: BatchPredictor | PinnedPredictor, data: Transitions, config: DropoConfig,
                 scale: np.ndarray | None = None, cluster: Cluster | None = None):
        self.predictor = predictor
        self.space = predictor.space
        self.config = config
        self.dim = self.space.dim
        self.width = self.space.high - self.space.low
        self.scale = state_scale(data) if scale is None else scale
        rng = np.random.default_rng(config.seed)
        starts = data.window_starts(config.horizon)
        if starts.size == 0:
            raise ValueError(f"no run of {config.horizon} consecutive transitions in the data")
        if config.transitions and starts.size > config.transitions:
            starts = np.sort(rng.choice(starts, config.transitions, replace=False))
        self.starts = starts
        self.obs, self.actions, self.target, self.previous = data.windows(starts, config.horizon, predictor.depth)
        self.z = crn_draws(config.samples, self.dim, config.truncation_sigma, config.seed + 1)
        t = config.truncation_sigma  # the same draws as uniforms within the ±t truncation (for the diagonal case)
        self._crn_uniform = (ndtr(self.z) - ndtr(-t)) / (ndtr(t) - ndtr(-t))
        self.k = self.z.shape[0]
        self.sharded = None if config.shards <= 1 else ShardedWindows.of(
            predictor, cluster, config.shards, (self.obs, self.actions, self.target, self.previous), self.scale)
        self.evaluations = 0
        self.tril = np.tril_indices(self.dim, -1)
        # learned log ε entries of φ: none, one, or one per state dimension
        self.epsilon_count = 0 if not config.learn_epsilon else (
            self.target.shape[1] if config.epsilon_per_dimension else 1)

    # --- φ packing: [μ_u (dim), log σ_u (dim), off-diagonal L (full only), log ε (learned: 1 or one per state dim)]
    def initial(self, mean: np.ndarray, std_u: float | np.ndarray) -> np.ndarray:
        """φ for a mean (parameter units) and std (bound units)."""
        mu_u = np.clip((np.asarray(mean, float) - self.space.low) / self.width, 0.0, 1.0)
        parts = [mu_u, np.log(np.broadcast_to(np.asarray(std_u, float), (self.dim,)))]
        if self.config.covariance == "full":
            parts.append(np.zeros(len(self.tril[0])))
        parts.append(np.full(self.epsilon_count, np.log(self.config.epsilon)))
        return np.concatenate(parts)

    def bounds(self) -> list[tuple[float, float]]:
        """Box bounds of φ."""
        b = [(0.0, 1.0)] * self.dim + [_LOG_SIGMA_RANGE] * self.dim
        if self.config.covariance == "full":
            b += [(-0.5, 0.5)] * len(self.tril[0])
        return b + [_LOG_EPS_RANGE] * self.epsilon_count

    def unpack(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | np.ndarray]:
        """φ -> (μ_u, Cholesky factor L_u, ε (a scalar, or (S,) per state dimension))."""
        phi = np.asarray(phi, float)
        d = self.dim
        mu = phi[:d]
        chol = np.diag(np.exp(phi[d:2 * d]))
        i = 2 * d
        if self.config.covariance == "full":
            n = len(self.tril[0])
            chol[self.tril] = phi[i:i + n]
            i += n
        if not self.epsilon_count:
            return mu, chol, self.config.epsilon
        eps = np.exp(phi[i:i + self.epsilon_count])
        return mu, chol, (eps if self.config.epsilon_per_dimension else float(eps[0]))

    def distribution(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """φ -> (mean, covariance) in parameter units."""
        mu_u, chol, _ = self.unpack(phi)
        cov_u = chol @ chol.T
        return self.space.low + mu_u * self.width, cov_u * np.outer(self.width, self.width)

    def samples(self, phi: np.ndarray) -> np.ndarray:
        """The K common-random-number parameter samples for φ, (K, dim).

        Diagonal covariance: the normal truncated at the bounds and at ±truncation_sigma, by inverse CDF of the
        fixed draws (the distribution training samples: `Distribution.sample`); the draws map to themselves where
        no bound binds, and stay smooth in φ. Full covariance: correlated draws, clipped to the bounds."""
        mu_u, chol, _ = self.unpack(phi)
        if self.config.covariance == "full":
            u = mu_u[None, :] + self.z @ chol.T
        else:
            sd = np.diag(chol)
            t = self.config.truncation_sigma
            cdf_lo, cdf_hi = ndtr(np.maximum(-t, -mu_u / sd)), ndtr(np.minimum(t, (1.0 - mu_u) / sd))
            u = mu_u[None, :] + sd[None, :] * ndtri(cdf_lo + self._crn_uniform * (cdf_hi - cdf_lo))
        return self.space.low + np.clip(u, 0.0, 1.0) * self.width

    def loglik(self, phi: np.ndarray) -> np.ndarray:
        """Per-transition log-likelihoods (B,) of the real next states under φ."""
        return self.loglik_of_samples(self.samples(phi), self.unpack(phi)[2])

    def loglik_of_samples(self, xi: np.ndarray, epsilon: float | np.ndarray) -> np.ndarray:
        """Per-transition log-likelihoods (B,) under K given parameter samples (K, dim), the same K for all."""
        if xi.shape != (self.k, self.dim):
            raise ValueError(f"expected ({self.k}, {self.dim}) parameter samples, got {xi.shape}")
        if self.sharded is None:
            return windows_loglik(self.predictor, self.obs, self.actions, self.target, self.previous, self.scale, xi,
                                  epsilon)
        return self.sharded.loglik(xi, epsilon)

    def entropy(self, phi: np.ndarray) -> float:
        """Differential entropy of N(μ_u, Σ_u) (bound units; untruncated)."""
        _, chol, _ = self.unpack(phi)
        return 0.5 * self.dim * (1.0 + np.log(2 * np.pi)) + float(np.sum(np.log(np.abs(np.diag(chol)))))

    def value(self, phi: np.ndarray) -> float:
        """Mean log-likelihood + α·entropy (to maximise)."""
        self.evaluations += 1
        ll = self.loglik(phi)
        return float(np.mean(ll)) + self.config.entropy_weight * self.entropy(phi)


def optimise(fun: Callable[[np.ndarray], float], x0: np.ndarray, bounds, optimizer: str, max_evaluations: int,
             seed: int = 0, callback: Callable[[dict], None] | None = None,
             simplex_scale: float = 0.05) -> tuple[np.ndarray, float, list[dict]]:
    """Minimise `fun` in a box with a budget of evaluations; returns (x, f, history per iteration).

    `simplex_scale` sizes Nelder-Mead's initial simplex (fraction of each bound range).
    History rows are {iteration, evaluations, objective (best so far, as minimised), seconds}.
    """
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    best = {"x": np.clip(x0, lo, hi), "f": np.inf}
    count = [0]
    history: list[dict] = []
    start = time.perf_counter()

    class _Budget(Exception):
        pass

    def wrapped(x):
        if count[0] >= max_evaluations:
            raise _Budget
        x = np.clip(x, lo, hi)
        count[0] += 1
        f = fun(x)
        if not np.isfinite(f):
            f = 1e12
        if f < best["f"]:
            best["x"], best["f"] = x.copy(), f
        return f

    def record(*_):
        row = {"iteration": len(history) + 1, "evaluations": count[0], "objective": float(best["f"]),
               "seconds": time.perf_counter() - start}
        history.append(row)
        if callback is not None:
            callback(row)

    try:
        if optimizer == "lbfgsb":
            step = 1e-3
            scipy.optimize.minimize(wrapped, best["x"], method="L-BFGS-B", bounds=bounds, callback=record,
                                    options={"maxfun": max_evaluations, "eps": step, "maxiter": max_evaluations})
        elif optimizer == "nelder-mead":
            simplex = [best["x"]] + [np.clip(best["x"] + simplex_scale * (hi - lo) * e, lo, hi)
                                     for e in np.eye(len(lo))]
            scipy.optimize.minimize(wrapped, best["x"], method="Nelder-Mead", bounds=bounds, callback=record,
                                    options={"maxfev": max_evaluations, "initial_simplex": np.array(simplex),
                                             "xatol": 1e-4, "fatol": 1e-6})
        else:
            import cmaes

            sigma0 = 0.1 * float(np.min(hi - lo))
            es = cmaes.CMA(mean=best["x"], sigma=sigma0, bounds=np.stack([lo, hi], axis=1), seed=seed)
            while count[0] + es.population_size <= max_evaluations:
                es.tell([(x, wrapped(x)) for x in (es.ask() for _ in range(es.population_size))])
                record()
                if es.should_stop():
                    break
    except _Budget:
        pass
    if not history or history[-1]["evaluations"] != count[0]:
        record()
    return best["x"], best["f"], history


class LinearizedObjective:
    """The DROPO objective of a simulator linearised at μ0: f_n(ξ) ≈ f_n(μ0) + J_n (ξ - μ0).

    Under ξ ~ N(μ, Σ) the predictions are Gaussian with mean f_n(μ0) + J_n (μ - μ0) and covariance
    J_n Σ J_nᵀ, which is what DROPO's Gaussian fit of K samples estimates; adding ε·I gives the likelihood in
    closed form, so the surrogate costs linear algebra only. Same φ packing and units as DropoObjective.
    """

    def __init__(self, packing: DropoObjective, residual: np.ndarray, jacobian: np.ndarray, mu0_u: np.ndarray):
        self.packing = packing
        self.residual = residual          # (B, S) scaled f(μ0) - s'
        self.jacobian = jacobian          # (B, S, dim) scaled, bound units
        self.mu0 = mu0_u

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean log-likelihood + α·entropy of the linearised model, and its gradient in φ."""
        packing = self.packing
        mu_u, chol, eps = packing.unpack(phi)
        r = self.residual + self.jacobian @ (mu_u - self.mu0)    # (B, S)
        a = self.jacobian @ chol                                    # (B, S, dim)
        s = r.shape[1]
        cov = a @ a.transpose(0, 2, 1) + np.diag(np.broadcast_to(eps, (s,)))[None]
        cinv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        w = np.einsum("nij,nj->ni", cinv, r)                        # C⁻¹ r
        ll = -0.5 * (np.einsum("ni,ni->n", r, w) + logdet + s * np.log(2 * np.pi))
        g = 0.5 * (w[:, :, None] * w[:, None, :] - cinv)            # ∂ℓ/∂C
        jt = self.jacobian.transpose(0, 2, 1)
        grad_mu = -np.einsum("nds,ns->d", jt, w) / len(r)
        grad_l = 2.0 * np.mean(jt @ g @ a, axis=0)                  # ∂ℓ/∂L (dim, dim)
        parts = [grad_mu, np.diag(grad_l) * np.diag(chol) + packing.config.entropy_weight]
        if packing.config.covariance == "full":
            parts.append(grad_l[packing.tril])
        if packing.config.epsilon_per_dimension:
            parts.append(np.mean(np.diagonal(g, axis1=1, axis2=2), axis=0) * eps)
        elif packing.config.learn_epsilon:
            parts.append([np.mean(np.trace(g, axis1=1, axis2=2)) * eps])
        value = float(ll.mean()) + packing.config.entropy_weight * packing.entropy(phi)
        return value, np.concatenate(parts)

    def value(self, phi: np.ndarray) -> float:
        """Mean log-likelihood + α·entropy of the linearised model."""
        return self.value_and_grad(phi)[0]


def linearized_search(objective: DropoObjective, data: Transitions, phi0: np.ndarray,
                      callback: Callable[[dict], None] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Maximise DROPO over φ by successive linearisations, then polish on the sampled objective.

    Each linearisation costs (dim+1)·B simulations (one mujoco.batch call); the surrogate is maximised with
    L-BFGS-B inside a trust region around μ0 that grows while the sampled objective improves.

    Returns:
      (φ, history rows {iteration, evaluations, objective (sampled, to maximise), seconds, phase}).
    """
    from .sysid import PredictionResiduals

    config = objective.config
    start = time.perf_counter()
    residuals = PredictionResiduals(objective.predictor, data, objective.scale, config.horizon,
                                    config.linearized_transitions, config.seed + 2)
    history: list[dict] = []

    def record(value: float, phase: str) -> None:
        row = {"iteration": len(history) + 1, "evaluations": objective.evaluations, "objective": value,
               "seconds": time.perf_counter() - start, "phase": phase}
        history.append(row)
        if callback is not None:
            callback(row)

    bounds = objective.bounds()
    phi = np.asarray(phi0, float)
    best = objective.value(phi)
    record(best, "start")
    radius = 0.05
    d = objective.dim
    for _ in range(config.linearizations):
        mu0 = phi[:d].copy()
        r, jac = residuals.jacobian(mu0, 1e-4)
        n = len(residuals.starts)
        surrogate = LinearizedObjective(objective, r.reshape(n, -1), jac.reshape(n, -1, d), mu0)
        box = [(max(lo, m - radius), min(hi, m + radius)) for (lo, hi), m in zip(bounds[:d], mu0)] + bounds[d:]
        out = scipy.optimize.minimize(lambda p: tuple(-v for v in surrogate.value_and_grad(p)), phi, jac=True,
                                      method="L-BFGS-B", bounds=box, options={"maxiter": 500})
        candidate = out.x
        value = objective.value(candidate)
        step = float(np.max(np.abs(candidate[:d] - mu0)))
        if value >= best:
            phi, best = candidate, value
            radius = min(0.5, 2 * radius) if step > 0.5 * radius else radius
            record(best, "linearized")
            if step < 1e-4:
                break
        else:
            radius /= 4
            record(best, "linearized")
            if radius < 1e-4:
                break
    if config.max_evaluations > 1:
        def tick(row):
            record(-row["objective"], "polish")
        polished, neg, _ = optimise(lambda p: -objective.value(p), phi, bounds, "nelder-mead",
                                    config.max_evaluations, config.seed, tick, simplex_scale=0.01)
        if -neg > best:
            phi, best = polished, -neg
    return phi, history
