"""Task adapters: a gymnasium environment plus how its policy file describes observations and actions.

Training sees every environment through `HeadWrapper`, whose action space is Box(-1, 1): the wrapper turns
the network's action into the environment's torque with the same `ActionHead` the policy file stores, so
what was trained is exactly what `Policy.torque` (and so the policy server) computes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from .policy_file import ActionHead, PolicySpec


class HeadWrapper(gym.Wrapper):
    """Box(-1, 1) actions -> the wrapped environment's torque through an `ActionHead`.

    For joint_target_pd heads, q and dq are read from the newest observation (joint_state_v1: [q, dq, ...]).
    """

    def __init__(self, env: gym.Env, head: ActionHead):
        super().__init__(env)
        self.head = head
        self.action_space = gym.spaces.Box(-1.0, 1.0, (head.size,), dtype=np.float32)
        self._obs = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action):
        n = self.head.size
        q, dq = (self._obs[:n], self._obs[n:2 * n]) if self.head.mode == "joint_target_pd" else (None, None)
        torque = self.head.torque(np.asarray(action, dtype=float), q, dq).astype(self.env.action_space.dtype)
        obs, reward, terminated, truncated, info = self.env.step(torque)
        self._obs = obs
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class TaskSetup:
    """Everything the trainer and the policy file need to know about one task."""

    name: str
    make_env: Callable[[], gym.Env]  # the raw environment (torque actions)
    layout: str
    head: ActionHead
    joint_names: list[str] = field(default_factory=list)
    extra_inputs: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # env id, distribution, ...

    def wrapped(self) -> gym.Env:
        """A fresh environment behind the action head (Box(-1, 1) actions)."""
        return HeadWrapper(self.make_env(), self.head)

    def spec(self, obs_mean, obs_std, hidden, training: dict[str, Any]) -> PolicySpec:
        """The policy-file description of a policy trained on this task."""
        return PolicySpec(layout=self.layout, obs_size=len(obs_mean), obs_mean=[float(v) for v in obs_mean],
                          obs_std=[float(v) for v in obs_std], hidden=list(hidden), action=self.head,
                          joint_names=list(self.joint_names), extra_inputs=list(self.extra_inputs),
                          training={**self.provenance, **training})


def gym_task(env_id: str, **kwargs) -> TaskSetup:
    """A builtin gymnasium task with a symmetric Box action (e.g. Pendulum-v1): vector_v1, torque head."""
    probe = gym.make(env_id, **kwargs)
    space = probe.action_space
    probe.close()
    if not isinstance(space, gym.spaces.Box) or not np.allclose(space.low, -space.high):
        raise ValueError(f"{env_id}: needs a symmetric Box action space, got {space}")
    head = ActionHead(mode="torque", scale=[float(v) for v in space.high])
    return TaskSetup(name=env_id, make_env=lambda: gym.make(env_id, **kwargs), layout="vector_v1", head=head,
                     provenance={"env_id": env_id, "distribution": "none"})
