"""Active domain randomization in training: the batched environments draw each episode from the particles of
`ActiveDomainRandomization`, and every few PPO updates the particles move, from the policy as trained so far.

The discriminator's transitions are the policy's joint-state transitions (s, s') in closed loop in simulation
(`rollouts.closed_loop_rollouts`: one BatchSimulator, the policy, its action head and the safety layer), from the
same few start states of the task for every particle and for the reference (nominal) simulator. No target data.
"""
from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from ..policy.policy_file import Policy
from ..sim.distributions import Distribution
from .active import ActiveDomainRandomization, ActiveDRConfig
from .rollouts import RolloutSetup, closed_loop_rollouts


class ActiveCurriculum:
    """Active DR as the training environments' source of parameters (the `curriculum` interface of ADR).

    Args:
      setup: the task's rollout setup (parameter space, keyframe, joints, period, safety limits).
      make_env: creates the task's environment (its resets give the rollouts' start states and inputs).
      config: particles and step sizes.
      every: PPO updates between particle updates.
      episodes, horizon: start states and control periods of each rollout.
    """

    def __init__(self, setup: RolloutSetup, make_env: Callable[[], gym.Env], config: ActiveDRConfig = ActiveDRConfig(),
                 every: int = 5, episodes: int = 2, horizon: int = 50):
        if every < 1 or episodes < 1 or horizon < 2:
            raise ValueError(f"active DR needs every >= 1, episodes >= 1 and horizon >= 2, got {every}, {episodes}, "
                             f"{horizon}")
        self.setup, self.make_env, self.space = setup, make_env, setup.space
        self.every, self.episodes, self.horizon = every, episodes, horizon
        self.active = ActiveDomainRandomization(self.space, self._rollout, config)
        self.policy: Policy | None = None
        self.updates = 0
        self._starts: np.ndarray | None = None

    def start(self, ids: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Parameter vectors (len(ids), dim) for episodes starting in environments `ids`, drawn from the particles
        (with the particles' own generator)."""
        return self.active.sample(len(np.asarray(ids)))

    def finish(self, ids: np.ndarray, performance: np.ndarray) -> None:
        """Episodes ended (active DR does not use their outcome)."""

    def after_update(self, policy: Policy) -> None:
        """A PPO update ended with this policy: every `every` updates, the particles move."""
        self.updates += 1
        if self.updates % self.every:
            return
        self.policy = policy
        if self._starts is None:
            env = self.make_env()
            try:
                self._starts = np.array([env.reset(seed=k)[0] for k in range(self.episodes)])
            finally:
                env.close()
        self.active.update()

    def _rollout(self, parameters: np.ndarray) -> np.ndarray:
        states = closed_loop_rollouts(self.policy, self.setup, parameters, self._starts, self.horizon)
        transitions = np.concatenate([states[:, :, :-1], states[:, :, 1:]], axis=3)
        return transitions.reshape(len(parameters), -1, transitions.shape[-1])

    def distribution(self) -> Distribution:
        """Where training sampled last: a gaussian at the particles' mean with their spread (each std at least 1 %
        of its bound width)."""
        values = self.active.parameters(self.active.particles)
        std = np.maximum(values.std(axis=0), 0.01 * (self.space.high - self.space.low))
        return Distribution.gaussian(self.space, values.mean(axis=0), std=std, method="active")

    def summary(self) -> dict:
        """What training records: the settings, the particle updates and their last rewards."""
        return {"config": dict(vars(self.active.config)), "every": self.every, "particle_updates":
                len(self.active.history), "last": self.active.history[-1] if self.active.history else None}
