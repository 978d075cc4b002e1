"""Synthetic pushing data for the fr3_push system: the fingers strike the puck, which then slides free.

Each episode starts at the task's `push_ready` keyframe (tool centre point behind the puck, at table height) with
the puck at a random spot in front. A Cartesian impedance on the fingertip (Jacobian transpose, the same law as
the task tests) moves the target through the puck at a random speed and heading, then snaps it back, so the
arm pulls away and the puck slides until friction stops it. Both puck parameters show in the data: the mass in
how the struck puck and the arm share momentum (contact), the friction in the sliding deceleration.
"""
from __future__ import annotations

import copy

import mujoco
import numpy as np

from ..data.layouts import JOINT_STATE_PUCK
from ..robot import load_robot
from ..sim.parameters import ModelBinding, ParameterSpace
from .fr3 import PUCK_JOINT, fr3_system
from .transitions import Transitions

START_KEYFRAME = "push_ready"  # config/tasks/fr3_push.yaml's start: fingertip behind the puck at table height
STIFFNESS = np.array([2000.0, 2000.0, 6000.0])  # N/m, fingertip impedance (x, y, z)
DAMPING = 100.0  # N*s/m on the fingertip's velocity error
JOINT_DAMPING = 2.0  # N*m*s/rad
STRIKE_HEIGHT = 0.02  # m, fingertip target height: the fingers meet the puck (0..0.04 m) side on


def generate_push_data(space: ParameterSpace, truth: np.ndarray, episodes: int = 8, steps: int = 50,
                       seed: int = 0, robot: str = "fr3") -> Transitions:
    """Transitions of the simulated arm striking the puck, with true parameters, in the joint_state_puck_v1 layout.

    Args:
      space, truth: the true parameter vector (model kinds; e.g. puck_mass and puck_friction of fr3_push).
      episodes, steps: strikes and control periods each.
      seed: puck start (x 0.46..0.52 m, y ±0.03 m), strike speed (0.4..0.9 m/s) and heading (±0.15 rad).
    Returns:
      Transitions whose actions are the impedance torques without gravity, held for a control period.
    """
    system = fr3_system(robot, puck=True)
    spec = load_robot(robot)
    model = copy.deepcopy(system.model)
    ModelBinding(space, system.model).apply(model, np.asarray(truth, dtype=float))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    key = model.key(START_KEYFRAME).id
    puck_adr = int(model.joint(PUCK_JOINT).qposadr[0])
    site = model.site(spec.ee_site).id
    arm_dofs = list(system.qvel_index)
    jac = np.zeros((3, model.nv))
    obs = np.empty((episodes, steps + 1, system.state_dim))
    actions = np.empty((episodes, steps, spec.dof))
    for e in range(episodes):
        mujoco.mj_resetDataKeyframe(model, data, key)
        data.qpos[puck_adr:puck_adr + 2] = [rng.uniform(0.46, 0.52), rng.uniform(-0.03, 0.03)]
        mujoco.mj_forward(model, data)
        start = data.site_xpos[site].copy()
        speed, heading = rng.uniform(0.4, 0.9), rng.uniform(-0.15, 0.15)
        direction = np.array([np.cos(heading), np.sin(heading), 0.0])
        # strike until the target is 10 cm past the puck's near edge, then snap back 10 cm behind the start
        reach = data.qpos[puck_adr] - 0.04 - start[0] + 0.10
        for t in range(steps + 1):
            obs[e, t] = system.observe(data.qpos[None, :], data.qvel[None, :])[0]
            if t == steps:
                break
            travel = speed * t * spec.control_period
            striking = travel < reach
            target = start + direction * (travel if striking else -0.1)
            target[2] = STRIKE_HEIGHT
            mujoco.mj_forward(model, data)  # kinematics of the current state (mj_step leaves the previous)
            mujoco.mj_jacSite(model, data, jac, None, site)
            arm_jac = jac[:, arm_dofs]
            dq = data.qvel[arm_dofs]
            velocity = direction * speed if striking else np.zeros(3)
            force = STIFFNESS * (target - data.site_xpos[site]) + DAMPING * (velocity - arm_jac @ dq)
            torque = np.clip(arm_jac.T @ force - JOINT_DAMPING * dq, -spec.torque_limits, spec.torque_limits)
            actions[e, t] = torque
            data.ctrl[list(system.actuators)] = torque
            mujoco.mj_step(model, data, nstep=system.frame_skip)
    ends = np.zeros((episodes, steps), dtype=bool)
    ends[:, -1] = True
    s = system.state_dim
    return Transitions(obs[:, :-1].reshape(-1, s), actions.reshape(-1, spec.dof), obs[:, 1:].reshape(-1, s),
                       ends.reshape(-1),
                       {"robot": robot, "state_layout": JOINT_STATE_PUCK, "source": "generate_push_data",
                        "seed": seed, "true_parameters": space.as_dict(truth)})
