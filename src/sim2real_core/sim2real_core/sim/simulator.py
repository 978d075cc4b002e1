"""One MuJoCo simulation of the arm, stepped one control period at a time: the kernel (`sim.batch.BatchSimulator`)
with one simulation, plus the single arm's conveniences (a command history, a readable MjData, site and body poses).

Commands are joint torques WITHOUT gravity (franka_hardware effort semantics): the model compensates
gravity with its nominal masses (see ModelBinding), so mass errors act as they do on a real arm.
Around MuJoCo the kernel applies the parameter space's effects: whole-period action delay, Gaussian
action noise and Gaussian sensor noise on the joint-state observation; within the period, the command latency
(the previous command holds until then), the torque rate limit and, before every physics step, the Stribeck
friction of the parameters (sim.parameters.StribeckFriction); measured joint positions carry the encoder offsets
of the parameters.

Observation layout "joint_state_v1" (14 values):

    | index | quantity                      | unit  |
    |-------|-------------------------------|-------|
    | 0-6   | joint positions q1..q7        | rad   |
    | 7-13  | joint velocities dq1..dq7     | rad/s |
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Mapping

import mujoco
import numpy as np

from ..robot import DEFAULT_ROBOT, RobotSpec, load_robot
from .batch import BatchSimulator
from .distributions import Distribution
from .models import load_model
from .parameters import ParameterSpace

OBSERVATION_LAYOUT = "joint_state_v1"


@dataclass(frozen=True)
class SimState:
    """The full physics state: generalized positions and velocities (all bodies) and time."""

    qpos: np.ndarray
    qvel: np.ndarray
    time: float


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
        self.control_period = float(control_period or self.robot.control_period)
        self.kernel = BatchSimulator(load_model(model if model is not None else self.robot.model), space, 1,
                                     control_period=self.control_period, joints=self.robot.joint_names, nthread=1,
                                     seed=seed, persistent=True)
        self.nominal_model = self.kernel.nominal_model
        self.space = self.kernel.space
        self.nsub = self.kernel.nstep
        self.qpos_index, self.dof_index = self.kernel.qpos_index, self.kernel.dof_index
        self.model = self.kernel.batch.get_model(0)
        self._data = mujoco.MjData(self.model)
        self._data_current = False
        self._home = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, self.robot.home_keyframe)
        self._ee = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, self.robot.ee_site)
        self.parameters = self.space.nominal if self.space is not None else np.zeros(0)
        self.effects = {"position_noise_std": 0.0, "velocity_noise_std": 0.0, "action_noise_std": 0.0,
                        "action_delay": 0.0}
        self._past: deque = deque(maxlen=1)  # the commands of the periods before, most recent first
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
        self.kernel.set_parameters(vector)
        self.kernel.batch.get_model(0, self.model)
        self.parameters = vector.copy()
        self.effects = self.kernel.binding.effects(vector)
        self._past = deque(self._past, maxlen=self.kernel.max_delay + 1)  # commands in flight stay in flight
        return self.parameters

    def sample_parameters(self, distribution: Distribution, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw one parameter vector from `distribution` (over this simulator's space) and set it."""
        if self.space is None or distribution.space.names != self.space.names:
            raise ValueError(f"distribution over {list(distribution.space.names)} does not match the simulator's "
                             f"space {self.space and list(self.space.names)}")
        return self.set_parameters(distribution.sample(rng or self.rng, 1)[0])

    def set_model_field(self, name: str, index, values) -> None:
        """Write entries of a model field (an MjModel name, e.g. 'body_gravcomp') in this simulation; a later
        set_parameters rewrites the entries its parameters bind."""
        self.kernel.batch.expand(name)[0, index] = values
        self.kernel.batch.get_model(0, self.model)

    @property
    def rng(self) -> np.random.Generator:
        """The noise generator (action and sensor noise)."""
        return self.kernel.rng

    @property
    def joint_load(self) -> np.ndarray:
        """Further joint torques during each period [N*m] (a payload); zeros unless set."""
        return self.kernel.joint_load[0]

    @joint_load.setter
    def joint_load(self, torques: np.ndarray) -> None:
        self.kernel.joint_load[0] = torques

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
            self.kernel.rng = np.random.default_rng(seed)
        key = self._home if keyframe is None else mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, keyframe)
        if keyframe is not None and key < 0:
            raise ValueError(f"the model has no keyframe named {keyframe!r}")
        self.kernel.reset(keyframe=int(key))
        if qpos is not None or qvel is not None:
            self.kernel.set_state(self._checked(qpos, self.qpos_index, self.model.nq, "qpos"),
                                  self._checked(qvel, self.dof_index, self.model.nv, "qvel"))
            self.kernel.forward()
        return self._restart()

    @staticmethod
    def _checked(values, arm_index: np.ndarray, size: int, what: str) -> np.ndarray | None:
        if values is None:
            return None
        values = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what} has non-finite values: {values.tolist()}")
        if values.shape not in ((arm_index.size,), (size,)):
            raise ValueError(f"{what} needs {arm_index.size} joint values or {size} model values, "
                             f"got shape {values.shape}")
        return values[None]

    def _restart(self) -> np.ndarray:
        """After a state write: no pending commands, a fresh measurement."""
        self._past.clear()
        self._data_current = False
        self._obs = self.kernel.observation()[0]
        return self._obs.copy()

    def state(self) -> SimState:
        """A copy of the full physics state."""
        qpos, qvel = self.kernel.state()
        return SimState(qpos[0], qvel[0], self.time)

    def set_state(self, state: SimState) -> np.ndarray:
        """Restore a full physics state (pending delayed actions are cleared); returns the observation."""
        self.kernel.set_state(state.qpos[None], state.qvel[None], time=state.time)
        self.kernel.forward()
        return self._restart()

    def stop(self) -> None:
        """Zero every velocity: the arm held where it is (pending commands stay)."""
        self.kernel.set_state(qvel=np.zeros((1, self.model.nv)))
        self._data_current = False

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
        past = np.array(self._past)[None] if self._past and self.kernel.needs_past else None
        self._obs = self.kernel.step(command[None], past_actions=past)[0]
        self._past.appendleft(command)
        self._data_current = False
        return self._obs.copy()

    # -- readings ----------------------------------------------------------------------------------
    @property
    def data(self) -> mujoco.MjData:
        """The simulation's MjData as of the last step, reset or state write (contacts, derived quantities).
        For reading: writes to it do not reach the simulation."""
        if not self._data_current:
            self.kernel.batch.get_data(0, self._data)
            self._data_current = True
        return self._data

    @property
    def applied(self) -> np.ndarray:
        """The torque of the last period after delay, noise and the torque limits (before the rate limit)."""
        return self.kernel.applied[0]

    @property
    def observation(self) -> np.ndarray:
        """The last measured joint_state_v1 observation (with sensor noise)."""
        return self._obs.copy()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free (q, dq) of the arm joints."""
        qpos, qvel = self.kernel.state()
        return qpos[0, self.qpos_index], qvel[0, self.dof_index]

    def efforts(self) -> np.ndarray:
        """Measured joint torques [N*m]: the applied torque (after the rate limit) plus the gravity compensation."""
        data = self.data
        return data.ctrl[self.kernel.actuator_index] + data.qfrc_gravcomp[self.dof_index]

    @property
    def time(self) -> float:
        """Simulated time [s]."""
        return float(self.kernel.simulated_time()[0])

    def site_position(self, name: str | None = None) -> np.ndarray:
        """World position of a site (the end effector by default) at the current state."""
        data = self.data
        mujoco.mj_kinematics(self.model, data)
        site = self._ee if name is None else self.model.site(name).id
        return data.site_xpos[site].copy()

    def body_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion w-x-y-z) of a body at the current state."""
        data = self.data
        mujoco.mj_kinematics(self.model, data)
        body = self.model.body(name).id
        return data.xpos[body].copy(), data.xquat[body].copy()
