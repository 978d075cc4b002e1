"""Pushing data for the fr3_push system: the fingers strike the puck, which then slides free.

`StrikeController` is a Cartesian impedance on the fingertip (Jacobian transpose, the law of the task tests)
computed from measured joint states with the nominal kinematics: its target runs through the puck at a given
speed and heading, then stops, so the arm brakes harder than friction brakes the puck, which slides on. Both
puck parameters show in such data: the mass in how the struck puck and the arm share momentum (contact), the
friction in the sliding deceleration. `generate_push_data` records strikes of the simulated arm at known
parameters in the joint_state_puck_v1 layout.
"""
from __future__ import annotations

import copy

import mujoco
import numpy as np

from ..data.layouts import JOINT_STATE_PUCK
from ..robot import DEFAULT_ROBOT, load_robot
from ..sim.parameters import ModelBinding, ParameterSpace
from .fr3 import PUCK_JOINT, fr3_system
from .transitions import Transitions

START_KEYFRAME = "push_ready"  # config/tasks/fr3_push.yaml's start: fingertip behind the puck at table height
STIFFNESS = np.array([2000.0, 2000.0, 6000.0])  # N/m, fingertip impedance (x, y, z)
DAMPING = 100.0  # N*s/m on the fingertip's velocity error
JOINT_DAMPING = 2.0  # N*m*s/rad
STRIKE_HEIGHT = 0.02  # m, fingertip target height: the fingers meet the puck (0..0.04 m) side on
PUCK_RADIUS = 0.04  # m (models/fr3.xml)


class StrikeController:
    """Joint torques (without gravity) that strike a puck with the fingertip, from measured (q, dq).

    Args:
      robot: config/robots name (kinematics, fingertip site, torque limits, control period).
    """

    def __init__(self, robot: str = DEFAULT_ROBOT):
        system = fr3_system(robot)
        self.spec = load_robot(robot)
        self.model = system.model
        self.data = mujoco.MjData(self.model)
        self.qpos_index, self.dof_index = list(system.qpos_index), list(system.qvel_index)
        self.site = self.model.site(self.spec.ee_site).id
        self._jac = np.zeros((3, self.model.nv))
        self.start_tip = np.zeros(3)
        self.direction = np.array([1.0, 0.0, 0.0])
        self.speed = 0.0
        self.reach = 0.0

    def _tip(self, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.data.qpos[self.qpos_index] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_jacSite(self.model, self.data, self._jac, None, self.site)
        return self.data.site_xpos[self.site].copy(), self._jac[:, self.dof_index].copy()

    def start(self, q: np.ndarray, puck_xy: np.ndarray, speed: float, heading: float,
              follow_through: float = 0.10) -> None:
        """Begin a strike from joint positions q at a puck at puck_xy [m]: target speed [m/s], heading [rad]
        from +x; the target stops `follow_through` [m] past the puck's near edge."""
        self.start_tip, _ = self._tip(np.asarray(q, float), np.zeros(len(self.dof_index)))
        self.direction = np.array([np.cos(heading), np.sin(heading), 0.0])
        self.speed = float(speed)
        self.reach = float(puck_xy[0]) - PUCK_RADIUS - self.start_tip[0] + follow_through

    def torque(self, q: np.ndarray, dq: np.ndarray, t: float) -> np.ndarray:
        """The torque at time t [s] after start() for measured joint positions q and velocities dq."""
        tip, jac = self._tip(np.asarray(q, float), np.asarray(dq, float))
        travel = self.speed * t
        striking = travel < self.reach
        target = self.start_tip + self.direction * min(travel, self.reach)
        target[2] = STRIKE_HEIGHT
        velocity = self.direction * self.speed if striking else np.zeros(3)
        force = STIFFNESS * (target - tip) + DAMPING * (velocity - jac @ dq)
        return np.clip(jac.T @ force - JOINT_DAMPING * dq, -self.spec.torque_limits, self.spec.torque_limits)


def generate_push_data(space: ParameterSpace, truth: np.ndarray, episodes: int = 8, steps: int = 50,
                       seed: int = 0, robot: str = DEFAULT_ROBOT) -> Transitions:
    """Transitions of the simulated arm striking the puck, with true parameters, in the joint_state_puck_v1 layout.

    Args:
      space, truth: the true parameter vector (model kinds; e.g. puck_mass and puck_friction of fr3_push).
      episodes, steps: strikes and control periods each, from the push_ready keyframe.
      seed: puck start (x 0.46..0.52 m, y ±0.03 m), strike speed (0.4..0.8 m/s) and heading (±0.15 rad).
    Returns:
      Transitions whose actions are the StrikeController's torques, held for a control period.
    """
    system = fr3_system(robot, puck=True)
    model = copy.deepcopy(system.model)
    ModelBinding(space, system.model).apply(model, np.asarray(truth, dtype=float))
    data = mujoco.MjData(model)
    controller = StrikeController(robot)
    rng = np.random.default_rng(seed)
    puck_adr = int(model.joint(PUCK_JOINT).qposadr[0])
    arm_q, arm_dq = list(system.qpos_index), list(system.qvel_index)
    obs = np.empty((episodes, steps + 1, system.state_dim))
    actions = np.empty((episodes, steps, len(arm_q)))
    for e in range(episodes):
        mujoco.mj_resetDataKeyframe(model, data, model.key(START_KEYFRAME).id)
        data.qpos[puck_adr:puck_adr + 2] = [rng.uniform(0.46, 0.52), rng.uniform(-0.03, 0.03)]
        controller.start(data.qpos[arm_q], data.qpos[puck_adr:puck_adr + 2], rng.uniform(0.4, 0.8),
                         rng.uniform(-0.15, 0.15))
        for t in range(steps + 1):
            obs[e, t] = system.observe(data.qpos[None, :], data.qvel[None, :])[0]
            if t == steps:
                break
            actions[e, t] = controller.torque(data.qpos[arm_q], data.qvel[arm_dq], t * system.frame_skip *
                                              model.opt.timestep)
            data.ctrl[list(system.actuators)] = actions[e, t]
            mujoco.mj_step(model, data, nstep=system.frame_skip)
    ends = np.zeros((episodes, steps), dtype=bool)
    ends[:, -1] = True
    s = system.state_dim
    return Transitions(obs[:, :-1].reshape(-1, s), actions.reshape(-1, len(arm_q)), obs[:, 1:].reshape(-1, s),
                       ends.reshape(-1),
                       {"robot": robot, "state_layout": JOINT_STATE_PUCK, "source": "generate_push_data",
                        "seed": seed, "true_parameters": space.as_dict(truth)})
