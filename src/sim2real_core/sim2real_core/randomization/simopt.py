"""SimOpt (Chebotar et al., ICRA 2019): adapt a Gaussian over simulator parameters so that a policy's simulated
trajectories match its trajectories on the target.

Each iteration draws K parameter vectors from the current distribution (truncated as training draws them), rolls
the policy out in simulation under each from the target episodes' start states, and scores each vector by the
discrepancy between its observation sequences and the target's: weighted L1 plus L2 norms of the differences
over time and state dimensions, in units of a per-dimension scale (the paper's trajectory discrepancy). The
distribution is then refitted to the samples weighted by exp(-D / eta), with eta chosen so that the weighted
samples stay within a relative-entropy bound of the current distribution (relative entropy policy search, the
optimiser the paper used). The caller trains the policy under each new distribution and collects new target
episodes between iterations; `simopt_step` is one update and counts the target episodes it was given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize

from ..sim.distributions import Distribution

Rollout = Callable[[np.ndarray], np.ndarray]  # parameters (K, dim) -> observations (K, episodes, T, S)


@dataclass(frozen=True)
class SimOptConfig:
    """Settings of a SimOpt update.

    Args:
      samples: parameter vectors drawn per update.
      kl_bound: relative-entropy bound of the reweighting (REPS epsilon).
      l1_weight, l2_weight: weights of the L1 and L2 parts of the trajectory discrepancy.
      min_std: a std, as a share of each parameter's bound width, whose square is added to its variance (the
        distribution never collapses to a point, so later iterations can still move it).
      seed: seed of the parameter draws.
    """

    samples: int = 32
    kl_bound: float = 1.0
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    min_std: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2, got {self.samples}")
        if not self.kl_bound > 0:
            raise ValueError(f"kl_bound must be > 0, got {self.kl_bound}")
        if self.l1_weight < 0 or self.l2_weight < 0 or self.l1_weight + self.l2_weight == 0:
            raise ValueError(f"l1_weight and l2_weight must be >= 0, not both 0; got {self.l1_weight}, "
                             f"{self.l2_weight}")


def trajectory_discrepancy(simulated: np.ndarray, target: np.ndarray, scale: np.ndarray, l1_weight: float = 1.0,
                           l2_weight: float = 1.0) -> np.ndarray:
    """Per parameter sample, the weighted L1 + L2 discrepancy of simulated (K, episodes, T, S) to target
    (episodes, T, S) observation sequences, each state dimension in units of `scale` (S,), summed over episodes
    and time. Returns (K,)."""
    simulated, target = np.asarray(simulated, dtype=float), np.asarray(target, dtype=float)
    if simulated.shape[1:] != target.shape:
        raise ValueError(f"simulated observations {simulated.shape} do not match the target's {target.shape} "
                         "(samples, episodes, steps, state)")
    difference = (simulated - target[None]) / np.asarray(scale, dtype=float)
    return (l1_weight * np.abs(difference).sum(axis=(1, 2, 3))
            + l2_weight * np.square(difference).sum(axis=(1, 2, 3)))


def reps_weights(costs: np.ndarray, kl_bound: float) -> np.ndarray:
    """Normalised weights exp(-c / eta) of samples with costs `costs`, eta minimising the REPS dual
    eta * kl_bound + eta * log mean exp(-(c - min c) / eta), so that the reweighted samples stay within
    `kl_bound` of the sampling distribution."""
    c = np.asarray(costs, dtype=float)
    if not np.all(np.isfinite(c)):
        raise ValueError(f"costs must be finite, got {c.tolist()}")
    advantage = -(c - c.min())
    spread = max(float(np.ptp(c)), 1e-12)

    def dual(log_eta: float) -> float:
        eta = np.exp(log_eta)
        return eta * kl_bound + eta * np.log(np.mean(np.exp(advantage / eta)))

    found = scipy.optimize.minimize_scalar(dual, bounds=(np.log(spread) - 20.0, np.log(spread) + 20.0),
                                           method="bounded")
    weights = np.exp(advantage / np.exp(found.x))
    return weights / weights.sum()


def simopt_step(distribution: Distribution, rollout: Rollout, target: np.ndarray, scale: np.ndarray,
                config: SimOptConfig = SimOptConfig(), iteration: int = 0) -> tuple[Distribution, dict]:
    """One SimOpt update of a gaussian (or uniform, taken as its mean and std) distribution.

    Args:
      distribution: the current distribution over the simulator's parameters.
      rollout: parameters (K, dim) -> the policy's simulated observations (K, episodes, T, S), each episode
        started from the target episode's start state.
      target: the policy's observations on the target (episodes, T, S).
      scale: the unit of each state dimension in the discrepancy (S,).
      config: settings; iteration offsets the draws' seed.
    Returns:
      (the new gaussian distribution, info: the samples' discrepancies, the weights' effective sample size and
      the target episodes used).
    """
    space = distribution.space
    rng = np.random.default_rng(config.seed + iteration)
    samples = distribution.sample(rng, config.samples)
    costs = trajectory_discrepancy(rollout(samples), target, scale, config.l1_weight, config.l2_weight)
    weights = reps_weights(costs, config.kl_bound)
    mean = weights @ samples
    centred = samples - mean
    covariance = (weights[:, None] * centred).T @ centred
    floor = (config.min_std * (space.high - space.low)) ** 2
    # fewer samples than dimensions leave a singular covariance: the floor on the diagonal keeps it positive definite
    covariance = (covariance + covariance.T) / 2.0 + np.diag(floor)
    provenance = {**distribution.provenance, "simopt_iterations": distribution.provenance.get(
        "simopt_iterations", 0) + 1, "target_episodes": distribution.provenance.get("target_episodes", 0)
        + int(np.asarray(target).shape[0])}
    updated = Distribution.gaussian(space, np.clip(mean, space.low, space.high), covariance=covariance,
                                    truncation_sigma=distribution.truncation_sigma or 2.0, method="simopt",
                                    objective={"name": "trajectory_discrepancy", "value": float(weights @ costs)},
                                    provenance=provenance)
    info = {"discrepancy_mean": float(costs.mean()), "discrepancy_best": float(costs.min()),
            "discrepancy_weighted": float(weights @ costs), "effective_samples": float(1.0 / np.sum(weights ** 2)),
            "target_episodes": int(np.asarray(target).shape[0])}
    return updated, info
