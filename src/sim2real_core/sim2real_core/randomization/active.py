"""Active domain randomization (Mehta et al., CoRL 2019): learn where in the randomization box to train, from how
different the policy's experience there is from its experience in the reference simulator; no target data.

A set of particles, points of the box in bound units [0, 1]^d, proposes the environments of the next episodes. The
policy's transitions in each proposed environment and in the reference (nominal) one train a discriminator
(logistic regression on transition features) to tell them apart; a particle's reward is the mean log-probability
the discriminator gives its transitions of coming from the randomized environment. The particles then take a Stein
variational gradient step (SVGD with an RBF kernel, as the paper's Stein variational policy gradient): toward
higher reward, estimated by antithetic finite differences, and apart from one another, so that they cover every
region where the policy's experience differs instead of collapsing onto one. Training then samples environments
from the particles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.optimize

from ..sim.parameters import ParameterSpace

Rollout = Callable[[np.ndarray], np.ndarray]  # parameters (n, dim) -> transition features (n, transitions, F)


@dataclass(frozen=True)
class ActiveDRConfig:
    """Settings of active domain randomization.

    Args:
      particles: proposals per update.
      step: SVGD step size in bound units.
      temperature: weight of the reward against the kernel's repulsion.
      probe: finite-difference step of the reward gradient, in bound units.
      l2: ridge penalty of the logistic discriminator.
      seed: seed of the initial particles and the finite-difference directions.
    """

    particles: int = 8
    step: float = 0.05
    temperature: float = 1.0
    probe: float = 0.05
    l2: float = 1e-2
    seed: int = 0

    def __post_init__(self):
        if self.particles < 2 or not (self.step > 0 and self.temperature > 0 and 0 < self.probe < 0.5):
            raise ValueError(f"need particles >= 2, step > 0, temperature > 0 and 0 < probe < 0.5; got {self}")


class Discriminator:
    """Logistic regression telling randomized-environment transitions (label 1) from reference ones (label 0)."""

    def __init__(self, features: int, l2: float = 1e-2):
        self.weights = np.zeros(features + 1)
        self.l2 = l2
        self.mean = np.zeros(features)
        self.scale = np.ones(features)

    def _design(self, x: np.ndarray) -> np.ndarray:
        x = (np.asarray(x, dtype=float) - self.mean) / self.scale
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    def fit(self, randomized: np.ndarray, reference: np.ndarray) -> None:
        """Refit on (n, F) randomized and (m, F) reference transitions, warm-started from the last weights."""
        x = np.concatenate([randomized, reference])
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0) + 1e-8
        design, label = self._design(x), np.concatenate([np.ones(len(randomized)), np.zeros(len(reference))])

        def loss(w):
            z = design @ w
            value = np.mean(np.logaddexp(0.0, z) - label * z) + 0.5 * self.l2 * w[:-1] @ w[:-1]
            grad = design.T @ (1.0 / (1.0 + np.exp(-z)) - label) / len(z)
            grad[:-1] += self.l2 * w[:-1]
            return value, grad

        self.weights = scipy.optimize.minimize(loss, self.weights, jac=True, method="L-BFGS-B").x

    def log_randomized(self, x: np.ndarray) -> np.ndarray:
        """log P(randomized | transition) of each row."""
        return -np.logaddexp(0.0, -(self._design(x) @ self.weights))


class ActiveDomainRandomization:
    """Particles over the box of `space` that move toward where the policy's experience differs from the reference
    (see the module docstring).

    Args:
      space: the randomized parameters; the reference environment is at their nominal values.
      rollout: parameters (n, dim) -> the policy's transition features (n, transitions, F) in those environments
        (the caller's simulator and current policy).
      config: particles, step sizes, discriminator penalty, seed.
    """

    def __init__(self, space: ParameterSpace, rollout: Rollout, config: ActiveDRConfig = ActiveDRConfig()):
        self.space, self.rollout, self.config = space, rollout, config
        self.rng = np.random.default_rng(config.seed)
        self.particles = self.rng.uniform(0.0, 1.0, (config.particles, space.dim))
        self.discriminator: Discriminator | None = None
        self.history: list[dict] = []

    def parameters(self, units: np.ndarray) -> np.ndarray:
        """Bound units -> parameter values."""
        return self.space.low + np.clip(units, 0.0, 1.0) * (self.space.high - self.space.low)

    def sample(self, n: int) -> np.ndarray:
        """n environments for training, drawn from the particles, (n, dim) parameter values."""
        return self.parameters(self.particles[self.rng.integers(len(self.particles), size=n)])

    def _rewards(self, units: np.ndarray) -> np.ndarray:
        """Each point's mean log P(randomized) over its transitions."""
        features = self.rollout(self.parameters(units))
        return np.array([self.discriminator.log_randomized(f).mean() for f in features])

    def update(self) -> dict:
        """One round: roll out the particles and the reference, refit the discriminator, move the particles."""
        cfg, (m, d) = self.config, self.particles.shape
        randomized = self.rollout(self.parameters(self.particles))
        reference = self.rollout(self.space.nominal[None])[0]
        if self.discriminator is None:
            self.discriminator = Discriminator(reference.shape[-1], cfg.l2)
        self.discriminator.fit(randomized.reshape(-1, randomized.shape[-1]), reference)
        rewards = np.array([self.discriminator.log_randomized(f).mean() for f in randomized])
        # reward gradients by antithetic finite differences along one random direction per particle
        direction = self.rng.standard_normal((m, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        ahead = self._rewards(np.clip(self.particles + cfg.probe * direction, 0.0, 1.0))
        behind = self._rewards(np.clip(self.particles - cfg.probe * direction, 0.0, 1.0))
        gradient = ((ahead - behind) / (2 * cfg.probe))[:, None] * direction * d
        # SVGD: phi(x_i) = mean_j [k(x_j, x_i) grad_j / T + grad_{x_j} k(x_j, x_i)], RBF kernel, median bandwidth
        difference = self.particles[:, None, :] - self.particles[None, :, :]  # x_j - x_i at [j, i]
        squared = np.sum(difference ** 2, axis=2)
        bandwidth = np.median(squared) / np.log(m + 1) + 1e-8
        kernel = np.exp(-squared / bandwidth)
        repulsion = -2.0 / bandwidth * np.einsum("ji,jik->ik", kernel, difference)
        phi = (kernel.T @ gradient / cfg.temperature + repulsion) / m
        self.particles = np.clip(self.particles + cfg.step * phi, 0.0, 1.0)
        row = {"reward_mean": float(rewards.mean()), "reward_max": float(rewards.max())}
        self.history.append(row)
        return row
