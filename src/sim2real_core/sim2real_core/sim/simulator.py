"""One MuJoCo simulation of the arm, stepped one control period at a time.

Commands are joint torques WITHOUT gravity (franka_hardware effort semantics): the model compensates
gravity with its nominal masses (see ModelBinding), so mass errors act as they do on a real arm.
Around MuJoCo the simulator applies the parameter space's effects: whole-period action delay, Gaussian
action noise and Gaussian sensor noise on the joint-state observation; within the period, the command latency
(the previous command holds until then) and, before every physics step, the Stribeck friction of the parameters
(sim.parameters.StribeckFriction); measured joint positions carry the encoder offsets of the parameters.

Observation layout "joint_state_v1" (14 values):

    | index | quantity                      | unit  |
    |-------|-------------------------------|-------|
    | 0-6   | joint positions q1..q7        | rad   |
    | 7-13  | joint velocities dq1..dq7     | rad/s |
"""
from __future__ import annotations

import copy
import os
from collections import deque
from dataclasses import dataclass
from typing import Mapping

import mujoco
import numpy as np

from ..config import ConfigError
from ..robot import DEFAULT_ROBOT, RobotSpec, load_robot
from .distributions import Distribution
from .models import load_model
from .parameters import (
    EncoderOffsets,
    ModelBinding,
    ParameterSpace,
    StribeckFriction,
    latency_steps,
    load_parameter_space,
    period_inputs,
    rate_steps,
)

OBSERVATION_LAYOUT = "joint_state_v1"


@dataclass(frozen=True)
class SimState:
    """The full physics state: generalized positions and velocities (all bodies) and time."""

    qpos: np.ndarray
    qvel: np.ndarray
    time: float


def resolve_space(space: ParameterSpace | str | os.PathLike | None) -> ParameterSpace | None:
    """A ParameterSpace, a config/parameter_spaces name or path, or None."""
    if space is None or isinstance(space, ParameterSpace):
        return space
    return load_parameter_space(space)


def joint_indices(model: mujoco.MjModel, joint_names) -> tuple[np.ndarray, np.ndarray]:
    """(qpos addresses, dof addresses) of named 1-dof joints; ConfigError naming a missing joint."""
    qadr, dadr = [], []
    for name in joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ConfigError(f"the model has no joint named {name!r}")
        qadr.append(model.jnt_qposadr[jid])
        dadr.append(model.jnt_dofadr[jid])
    return np.array(qadr), np.array(dadr)


def joint_actuators(model: mujoco.MjModel, joint_names) -> np.ndarray:
    """Index of the actuator driving each named joint."""
    out = []
    for name in joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        hits = np.flatnonzero((model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
                              & (model.actuator_trnid[:, 0] == jid))
        if hits.size != 1:
            raise ConfigError(f"joint {name!r} needs exactly one actuator, the model has {hits.size}")
        out.append(hits[0])
    return np.array(out)


class Simulator:
    """The arm in MuJoCo with named parameters, stepped one control period per command.

    Args:
      space: parameter space (object, name in config/parameter_spaces, or path); None: the nominal model only.
      robot: robot name or RobotSpec (joint order, limits, control period, model file).
      model: model override (name, path or MjModel); default: the robot's model.
      control_period: seconds per step(); default: the robot's. Must be a multiple of the model timestep.
      seed: seed of the noise generator (reset(seed=...) reseeds).
    """

    def __init__(self, space: ParameterSpace | str | None = None, robot: RobotSpec | str = DEFAULT_ROBOT,
                 model: str | mujoco.MjModel | None = None, control_period: float | None = None,
                 seed: int | None = None):
        self.robot = robot if isinstance(robot, RobotSpec) else load_robot(robot)
        self.nominal_model = load_model(model if model is not None else self.robot.model)
        self.model = copy.copy(self.nominal_model)
        self.data = mujoco.MjData(self.model)
        self.control_period = float(control_period or self.robot.control_period)
        ratio = self.control_period / self.model.opt.timestep
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ConfigError(f"control_period {self.control_period} s is not a whole multiple of the model "
                              f"timestep {self.model.opt.timestep} s")
        self.nsub = int(round(ratio))
        self.space = resolve_space(space)
        self.binding = ModelBinding(self.space, self.nominal_model) if self.space is not None else None
        self.stribeck = StribeckFriction(self.space, self.nominal_model) if self.space is not None else None
        self.encoders = EncoderOffsets(self.space, self.nominal_model) if self.space is not None else None
        self._offsets = np.zeros(self.nominal_model.nq)  # measured - true position of every qpos entry
        self._coulomb = self._breakaway = self._stribeck_velocity = None  # set with Stribeck parameters only
        self._latency = 0.0  # command latency [physics steps]
        self._rate_step = np.full(1, np.inf)  # largest applied-torque change per physics step [N*m]
        self.joint_load = np.zeros(self.robot.dof)  # further joint torques during each period [N*m] (a payload)
        self.qpos_index, self.dof_index = joint_indices(self.model, self.robot.joint_names)
        self._act = joint_actuators(self.model, self.robot.joint_names)
        self._limits = self.robot.torque_limits
        self._home = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, self.robot.home_keyframe)
        self._ee = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, self.robot.ee_site)
        self.rng = np.random.default_rng(seed)
        self.parameters = self.space.nominal if self.space is not None else np.zeros(0)
        self.effects = {"position_noise_std": 0.0, "velocity_noise_std": 0.0, "action_noise_std": 0.0,
                        "action_delay": 0.0}
        self._queue: deque = deque()
        self.applied = np.zeros(self.robot.dof)
        self._obs = np.zeros(2 * self.robot.dof)
        if self.space is not None:
            self.set_parameters(self.parameters)
        self.reset()

    # -- parameters --------------------------------------------------------------------------------
    def set_parameters(self, values: np.ndarray | Mapping[str, float]) -> np.ndarray:
        """Set every parameter (vector in space order, or {name: value} with the rest nominal).

        Raises ValueError naming a parameter out of its bounds. Returns the vector set.
        """
        if self.space is None:
            raise ValueError("this simulator has no parameter space")
        vector = (self.space.vector(values, fill_nominal=True) if isinstance(values, Mapping)
                  else np.asarray(values, dtype=float))
        vector = self.space.validate(vector)
        latency = float(latency_steps(self.space, vector, self.model.opt.timestep, self.nsub)[0])
        if self._coulomb is not None:  # the Coulomb levels under the last physics step's Stribeck friction
            self.model.dof_frictionloss[self.stribeck.dofs] = self._coulomb
        self.binding.apply(self.model, vector)
        if self.stribeck.active(vector):
            self._coulomb = self.model.dof_frictionloss[self.stribeck.dofs].copy()
            self._breakaway = self.stribeck.breakaway(vector)[0]
            self._stribeck_velocity = self.stribeck.velocity(vector)
        else:
            self._coulomb = None
        self._latency = latency
        self._rate_step = rate_steps(self.space, vector, self.model.opt.timestep)
        self._offsets = self.encoders.qpos_offsets(vector)[0]
        self.parameters = vector.copy()
        self.effects = self.binding.effects(vector)
        self._reset_queue()
        return self.parameters

    def sample_parameters(self, distribution: Distribution, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw one parameter vector from `distribution` (over this simulator's space) and set it."""
        if self.space is None or distribution.space.names != self.space.names:
            raise ValueError(f"distribution over {list(distribution.space.names)} does not match the simulator's "
                             f"space {self.space and list(self.space.names)}")
        return self.set_parameters(distribution.sample(rng or self.rng, 1)[0])

    # -- state -------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, keyframe: str | None = None, qpos: np.ndarray | None = None,
              qvel: np.ndarray | None = None) -> np.ndarray:
        """Reset to a keyframe (the robot's home by default), then override joint or full state.

        Args:
          seed: reseeds the noise generator, so the same seed reproduces the trajectory exactly.
          keyframe: keyframe name.
          qpos, qvel: arm joint values (robot.dof) or full vectors (model nq / nv).
        Returns:
          the observation (joint_state_v1).
        """
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        key = self._home if keyframe is None else mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, keyframe)
        if keyframe is not None and key < 0:
            raise ValueError(f"the model has no keyframe named {keyframe!r}")
        if key >= 0:
            mujoco.mj_resetDataKeyframe(self.model, self.data, key)
        else:
            mujoco.mj_resetData(self.model, self.data)
        if qpos is not None:
            self._write(self.data.qpos, self.qpos_index, qpos, "qpos")
        if qvel is not None:
            self._write(self.data.qvel, self.dof_index, qvel, "qvel")
        mujoco.mj_forward(self.model, self.data)
        self._reset_queue()
        self.applied = np.zeros(self.robot.dof)
        self._obs = self._measure()
        return self._obs.copy()

    def _write(self, target: np.ndarray, arm_index: np.ndarray, values, what: str) -> None:
        values = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} has non-finite values: {values.tolist()}")
        if values.shape == (arm_index.size,):
            target[arm_index] = values
        elif values.shape == target.shape:
            target[:] = values
        else:
            raise ValueError(f"{what} needs {arm_index.size} joint values or {target.size} model values, "
                             f"got shape {values.shape}")

    def state(self) -> SimState:
        """A copy of the full physics state."""
        return SimState(self.data.qpos.copy(), self.data.qvel.copy(), float(self.data.time))

    def set_state(self, state: SimState) -> np.ndarray:
        """Restore a full physics state (pending delayed actions are cleared); returns the observation."""
        self.data.qpos[:] = state.qpos
        self.data.qvel[:] = state.qvel
        self.data.time = state.time
        self.data.qacc_warmstart[:] = 0
        mujoco.mj_forward(self.model, self.data)
        self._reset_queue()
        self._obs = self._measure()
        return self._obs.copy()

    # -- stepping ----------------------------------------------------------------------------------
    def step(self, torque: np.ndarray) -> np.ndarray:
        """Apply a torque command (without gravity, N*m, joint order) for one control period.

        The applied torque is the command delayed by `action_delay` periods, plus action noise, clipped to
        the torque limits, reached within the torque rate limit (from the torque applied last). Raises ValueError
        on a command of the wrong shape or with non-finite values. Returns the observation (joint_state_v1) at the
        end of the period.
        """
        command = np.asarray(torque, dtype=float)
        if command.shape != (self.robot.dof,) or not np.all(np.isfinite(command)):
            raise ValueError(f"torque command needs {self.robot.dof} finite values, got {np.ravel(command).tolist()}")
        self._queue.append(command)
        applied = self._queue.popleft()
        if self.effects["action_noise_std"] > 0:
            applied = applied + self.rng.normal(0.0, self.effects["action_noise_std"], self.robot.dof)
        applied = np.minimum(np.maximum(applied, -self._limits), self._limits)
        self._advance(self.applied, applied)
        self.applied = applied
        self._obs = self._measure()
        return self._obs.copy()

    def _advance(self, previous: np.ndarray, applied: np.ndarray) -> None:
        """Run the physics substeps of one control period with `applied` torques (`previous` during the latency),
        each physics step's torque within the rate limit of the one before."""
        self.data.qfrc_applied[self.dof_index] = self.joint_load
        torque = self.data.ctrl[self._act]
        jump = np.max(np.abs(applied - torque))
        if self._latency:  # the targets move from `previous` to `applied` within the period
            jump = max(jump, np.max(np.abs(previous - torque)), np.max(np.abs(applied - previous)))
        limited = bool(jump > self._rate_step[0])
        if not (limited or self._stepwise()):
            self.data.ctrl[self._act] = applied
            mujoco.mj_step(self.model, self.data, nstep=self.nsub)
            return
        for inputs in period_inputs(torque[None, :], applied[None, :], previous[None, :] if self._latency else None,
                                    np.array([self._latency]), self._rate_step if limited else None, self.nsub):
            self.data.ctrl[self._act] = inputs[0]
            self._physics_step()

    def _stepwise(self) -> bool:
        """Whether each physics step needs an update from the state before it (friction, latency)."""
        return self._coulomb is not None or bool(self._latency)

    def _physics_step(self) -> None:
        """One physics step, with the Stribeck friction of the velocity at its start."""
        if self._coulomb is not None:
            velocity = self.data.qvel[self.stribeck.dofs][None, :]
            self.model.dof_frictionloss[self.stribeck.dofs] = StribeckFriction.level(
                self._coulomb[None, :], self._breakaway[None, :], self._stribeck_velocity, velocity)[0]
        mujoco.mj_step(self.model, self.data)

    def _reset_queue(self) -> None:
        delay = int(self.effects["action_delay"])
        self._queue = deque(np.zeros(self.robot.dof) for _ in range(delay))

    def _measure(self) -> np.ndarray:
        obs = np.concatenate([self.data.qpos[self.qpos_index] + self._offsets[self.qpos_index],
                              self.data.qvel[self.dof_index]])
        pos_std, vel_std = self.effects["position_noise_std"], self.effects["velocity_noise_std"]
        if pos_std > 0 or vel_std > 0:
            n = self.robot.dof
            obs += self.rng.normal(0.0, 1.0, 2 * n) * np.repeat([pos_std, vel_std], n)
        return obs

    # -- readings ----------------------------------------------------------------------------------
    @property
    def observation(self) -> np.ndarray:
        """The last measured joint_state_v1 observation (with sensor noise)."""
        return self._obs.copy()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free (q, dq) of the arm joints."""
        return self.data.qpos[self.qpos_index].copy(), self.data.qvel[self.dof_index].copy()

    def efforts(self) -> np.ndarray:
        """Measured joint torques [N*m]: the applied torque (after the rate limit) plus the gravity compensation."""
        return self.data.ctrl[self._act] + self.data.qfrc_gravcomp[self.dof_index]

    @property
    def time(self) -> float:
        """Simulated time [s]."""
        return float(self.data.time)

    def site_position(self, name: str | None = None) -> np.ndarray:
        """World position of a site (the end effector by default) at the current state."""
        mujoco.mj_kinematics(self.model, self.data)
        site = self._ee if name is None else self.model.site(name).id
        return self.data.site_xpos[site].copy()

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion w-x-y-z) of a body at the current state."""
        mujoco.mj_kinematics(self.model, self.data)
        body = self.model.body(name).id
        return self.data.xpos[body].copy(), self.data.xquat[body].copy()
