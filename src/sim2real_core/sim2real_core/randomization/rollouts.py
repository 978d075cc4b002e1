"""Closed-loop rollouts of a policy in simulation under many parameter vectors at once (SimOpt's and active DR's
simulated experience): one BatchSimulator, the policy with its action head, and the safety layer, vectorised."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..policy.policy_file import Policy
from ..policy.safety import SafetyLimits, VectorSafetyLayer
from ..sim.batch import BatchSimulator
from ..sim.parameters import ParameterSpace


@dataclass(frozen=True)
class RolloutSetup:
    """What a closed-loop rollout of an FR3 task needs.

    Attributes:
      space: the task's parameter space.
      keyframe: its start keyframe (the state the start observations overwrite the arm joints of).
      joint_names: the arm's joints, in observation order.
      control_period: seconds per step.
      safety: the arm's safety limits, applied every period as served.
    """

    space: ParameterSpace
    keyframe: str
    joint_names: tuple[str, ...]
    control_period: float
    safety: SafetyLimits


def closed_loop_rollouts(policy: Policy, setup: RolloutSetup, parameters: np.ndarray, starts: np.ndarray,
                         horizon: int) -> np.ndarray:
    """The policy in simulation under each parameter vector (K, dim), from each start observation (E, obs_size:
    measured joint state, then the task inputs): (K, E, horizon, 2 x joints) joint states, noise-free."""
    k, episodes, n = len(parameters), len(starts), len(setup.joint_names)
    sims = BatchSimulator("fr3", setup.space, k * episodes, control_period=setup.control_period,
                          joints=setup.joint_names)
    sims.set_parameters(np.repeat(parameters, episodes, axis=0))
    sims.reset(setup.keyframe)
    starts = np.tile(starts, (k, 1))
    sims.set_observation_state(starts[:, :2 * n])
    sims.forward()
    inputs = starts[:, 2 * n:]
    safety = VectorSafetyLayer(setup.safety, setup.control_period, k * episodes)
    space = setup.space
    depth = int(space.high[space.index("action_delay")]) + 1 if "action_delay" in space.names else 1
    past = np.zeros((k * episodes, depth, n))
    policy.reset(rows=k * episodes)
    obs = sims.observation(noise=False)
    out = np.empty((k * episodes, horizon, 2 * n))
    for t in range(horizon):
        q, dq = obs[:, :n], obs[:, n:]
        torque, _ = safety.filter(policy.spec.action.torque(policy.act(np.concatenate([obs, inputs], axis=1)), q, dq),
                                  q, dq)
        obs = sims.step(torque, past_actions=past, noise=False)
        past = np.concatenate([torque[:, None], past[:, :-1]], axis=1)
        out[:, t] = obs
    return out.reshape(k, episodes, horizon, 2 * n)
