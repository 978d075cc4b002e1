"""The robot side as franka_ros2 really behaves, around the reality proxy (no ROS here).

What a user's nodes meet on a real FR3 under franka_ros2 (jazzy v3.4.0), ros2_controllers' forward effort
controller (jazzy) and libfranka 0.21, emulated tick by tick at the 1 kHz FCI rate:

- effort_controllers/JointGroupEffortController (forward_controllers_base.cpp): nothing is written before the
  first command, so a real arm floats in place under its own gravity compensation; the proxy holds the pose
  until then (with `identified_links=False` its heavier links would otherwise drop it); the last
  command is re-applied every tick with no timeout; a non-finite
  message is dropped; a command of the wrong length makes `update` return ERROR, the controller_manager
  deactivates the controller, and deactivation writes 0 Nm; an inactive controller ignores its topic.
- franka_hardware limits every 1 ms write to kMaxTorqueRate = 1000 - 1e-3 Nm/s against the last desired
  torque (libfranka `limitRate`, rate_limiting.h): the reality truth's torque_rate_limit.
- The control unit adds gravity compensation for the arm and the *declared* payload (`set_load`); a carried
  payload that differs acts through its weight. Franka identifies its own arm, so by default the control unit
  compensates the proxy's true link weights (`identified_links`) and a zero command floats the arm, as it
  does a real FR3; with `identified_links=False` it compensates only the model's nominal weights and the
  proxy's heavier links pull the arm down at zero torque (the 100 Hz proxy's story).
- Reflexes: an estimated external joint torque or end-effector wrench above the collision thresholds
  (`set_full_collision_behavior` upper thresholds), or a joint velocity outside the FR3's position-dependent
  envelope (libfranka rate_limiting.h, computeUpper/LowerLimitsJointVelocity), stop the arm; every
  controller is deactivated, joint_state_broadcaster included, so states stop and commands are ignored
  until `recover()` (franka: the error_recovery action, set_hardware_component_state active, re-activate).
- `effort` of the joint states is the measured link-side torque tau_J: the applied command plus the
  control unit's gravity compensation (arm and declared payload), with sensor noise.

The external-torque estimate is what franka's model-based estimator attributes to the outside: the joint
torque of the contact forces on the arm, plus every weight the control unit does not compensate (an
undeclared payload; with `identified_links=False` also the mass by which the proxy's links exceed the model).
"""
from __future__ import annotations

import dataclasses
import os
from collections import deque
from dataclasses import dataclass, field

import mujoco
import numpy as np

from ..config import ConfigError
from ..robot import load_robot
from .reality import DEFAULT_REALITY, RealityProfile, RealityProxy, load_reality

TICK = 0.001  # [s] the FCI / controller_manager update period (franka controllers.yaml: update_rate 1000)
MAX_TORQUE_RATE = 1000.0 - 1e-3  # [Nm/s] libfranka kMaxTorqueRate (rate_limiting.h, 0.21.2)
# Upper collision thresholds of franka_example_controllers' default_robot_behavior_utils.hpp (franka_ros2
# v3.4.0); franka_hardware itself sets none, so the robot keeps what it was last given.
DEFAULT_TORQUE_THRESHOLDS = (35.0, 35.0, 32.0, 30.0, 29.0, 27.0, 24.0)  # [Nm]
DEFAULT_FORCE_THRESHOLDS = (40.0, 40.0, 40.0, 35.0, 35.0, 35.0)  # [N, N, N, Nm, Nm, Nm]
GRAVITY = 9.81
FLANGE_BODY = "fr3_hand"  # the payload's frame: the flange (the hand body's origin)
SLOW_LOAD_TICKS = 10  # the payload and link weights' joint torques are refreshed every this many ticks


@dataclass(frozen=True)
class Payload:
    """A load at the flange: mass [kg] and centre of mass [m] in the flange frame (franka `set_load`)."""

    mass: float = 0.0
    center_of_mass: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        com = np.asarray(self.center_of_mass, dtype=float)
        if not (0.0 <= self.mass <= 10.0) or com.shape != (3,) or not np.all(np.isfinite(com)) \
                or np.any(np.abs(com) > 1.0):
            raise ValueError(f"payload needs a mass in [0, 10] kg and a centre of mass of 3 values within 1 m, got "
                             f"{self.mass} kg at {self.center_of_mass}")


@dataclass(frozen=True)
class FrankaConfig:
    """The emulated robot's settings.

    Attributes:
      reality: reality file (config/reality name or path): the arm's hidden truth and unmodelled effects.
      carried: the payload the arm really carries.
      declared: the payload the robot was told about (`set_load`); its weight is compensated.
      torque_thresholds: upper collision thresholds on the external joint torque estimate [Nm].
      force_thresholds: upper collision thresholds on the external end-effector wrench [N, Nm].
      effort_noise_std: noise of the measured joint torques [Nm].
      identified_links: the control unit compensates the arm's true link weights (True, as Franka's identified
        model does) or only the model's nominal ones (False).
    """

    reality: str | os.PathLike = DEFAULT_REALITY
    carried: Payload = field(default_factory=Payload)
    declared: Payload = field(default_factory=Payload)
    torque_thresholds: tuple[float, ...] = DEFAULT_TORQUE_THRESHOLDS
    force_thresholds: tuple[float, ...] = DEFAULT_FORCE_THRESHOLDS
    effort_noise_std: float = 0.02
    identified_links: bool = True

    def __post_init__(self):
        for name, size in (("torque_thresholds", 7), ("force_thresholds", 6)):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (size,) or not np.all(np.isfinite(value)) or np.any(value <= 0):
                raise ValueError(f"{name} needs {size} positive values, got {list(getattr(self, name))}")
        if not 0.0 <= self.effort_noise_std < 10.0:
            raise ValueError(f"effort_noise_std must be in [0, 10) Nm, got {self.effort_noise_std}")


def tick_profile(profile: RealityProfile) -> tuple[RealityProfile, int, float]:
    """The reality profile for 1 ms steps, the command delay it implies in ticks, and the torque rate limit [Nm/s].

    At 1 kHz the sub-period command latency and the whole-period action delay of the 100 Hz proxy become one
    delay of whole 1 ms ticks, applied by the emulation's own queue; the truth's torque rate limit (else libfranka's)
    becomes the emulation's own limiter on each write, and the simulator's is lifted to its upper bound, which a
    limited write never reaches.
    """
    kinds = [p.kind for p in profile.space]
    truth = profile.truth.copy()
    ticks = 0
    rate = MAX_TORQUE_RATE
    if "torque_rate_limit" in kinds:
        column = kinds.index("torque_rate_limit")
        rate, truth[column] = truth[column], profile.space.parameters[column].high
    control_period = load_robot(profile.robot).control_period
    for kind, tick_per_unit in (("action_delay", int(round(control_period / TICK))), ("command_latency", 1.0 / TICK)):
        if kind in kinds:
            ticks += int(round(truth[kinds.index(kind)] * tick_per_unit))
            truth[kinds.index(kind)] = 0
    return dataclasses.replace(profile, truth=truth), ticks, float(rate)


class FrankaEmulation:
    """An FR3 under franka_ros2 with an effort controller, stepped one 1 ms tick at a time.

    Args:
      config: robot settings (reality, payloads, collision thresholds).
      seed: seed of the noise generators.
      keyframe: start pose (model keyframe name; default the robot's home).
    """

    def __init__(self, config: FrankaConfig = FrankaConfig(), seed: int | None = None, keyframe: str | None = None):
        self.config = config
        try:
            profile, self.delay_ticks, self.max_torque_rate = tick_profile(load_reality(config.reality))
            self.sim = RealityProxy(profile, seed=seed, control_period=TICK)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        self.robot = self.sim.robot
        if config.identified_links:  # the control unit's model is the arm's: every link weight compensated
            self.sim.set_model_field("body_gravcomp", self.sim.model.body_gravcomp > 0, 1.0)
        if self.robot.velocity_envelope is None:
            raise ValueError(f"robot {self.robot.name}: its file gives no velocity_envelope (the reflex bounds)")
        self._envelope = self.robot.velocity_envelope
        self.keyframe = keyframe
        self.rng = np.random.default_rng(None if seed is None else seed + 1)
        model = self.sim.model
        self._flange = model.body(FLANGE_BODY).id
        self._ee = model.site(self.robot.ee_site).id
        first = model.body(self.robot.joint_names[0].replace("joint", "link")).id
        self._arm_bodies = {b for b in range(model.nbody) if self._in_subtree(b, first)}
        self._torque_thresholds = np.asarray(config.torque_thresholds, dtype=float)
        self._force_thresholds = np.asarray(config.force_thresholds, dtype=float)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))
        self.counters = {"ticks": 0, "commands": 0, "dropped_nonfinite": 0, "ignored_inactive": 0, "reflexes": 0,
                         "controller_errors": 0, "recoveries": 0}
        self.reset()

    def _in_subtree(self, body: int, root: int) -> bool:
        while body > 0:
            if body == root:
                return True
            body = int(self.sim.model.body_parentid[body])
        return False

    # -- the robot's modes -------------------------------------------------------------------------
    def reset(self) -> None:
        """Put the arm at its start pose, hardware active, effort controller active and never commanded."""
        self.sim.reset(keyframe=self.keyframe)
        self.hardware_active = True
        self.controller_active = True
        self.reflex = ""
        self.controller_error = ""
        self.desired: np.ndarray | None = None  # the effort controller's stored command (None: none yet)
        self.last_desired = np.zeros(self.robot.dof)  # tau_J_d: the last rate-limited desired torque
        self._queue = deque(np.zeros(self.robot.dof) for _ in range(self.delay_ticks))
        self.external_torque = np.zeros(self.robot.dof)
        self.external_wrench = np.zeros(6)
        self._load_age = 0  # ticks since the weights' joint torques were computed
        self._measure()

    @property
    def robot_mode(self) -> str:
        """franka's robot mode as the state broadcaster would report it: reflex, move or idle."""
        if not self.hardware_active:
            return "reflex"
        return "move" if self.controller_active and self.desired is not None else "idle"

    @property
    def publishing(self) -> bool:
        """Whether joint states are published (joint_state_broadcaster active)."""
        return self.hardware_active

    def recover(self) -> str:
        """franka's recovery: error_recovery, hardware component active, controllers re-activated.

        The re-activated effort controller holds nothing until its next command. Returns what was recovered.
        """
        what = self.reflex or self.controller_error
        if not what:
            return ""
        self.hardware_active = self.controller_active = True
        self.reflex = self.controller_error = ""
        self.desired = None
        self.last_desired = np.zeros(self.robot.dof)
        self._queue = deque(np.zeros(self.robot.dof) for _ in range(self.delay_ticks))
        self.sim.stop()
        self.counters["recoveries"] += 1
        return what

    # -- the effort controller -----------------------------------------------------------------------
    def command(self, values) -> str:
        """A message on the effort controller's topic; returns '' or what happened to it."""
        values = np.asarray(values, dtype=float).ravel()
        if not (self.hardware_active and self.controller_active):
            self.counters["ignored_inactive"] += 1
            return "ignored: " + ("the robot is in reflex mode" if not self.hardware_active
                                  else "effort_controller is inactive")
        if values.size != self.robot.dof:
            self.counters["controller_errors"] += 1
            self.controller_active = False
            self.desired = np.zeros(self.robot.dof)  # deactivation writes 0 Nm
            self.controller_error = (f"effort_controller: command size ({values.size}) does not match number of "
                                     f"interfaces ({self.robot.dof}); controller deactivated")
            return self.controller_error
        if not np.all(np.isfinite(values)):
            self.counters["dropped_nonfinite"] += 1
            return "dropped: non-finite value"
        self.counters["commands"] += 1
        self.desired = values
        return ""

    # -- one 1 ms tick -------------------------------------------------------------------------------
    def tick(self) -> str:
        """Advance 1 ms; returns the reflex that stopped the arm in this tick, else ''."""
        if not self.hardware_active:
            return ""
        self.counters["ticks"] += 1
        if self.desired is None:  # never commanded: the arm floats where it is (see the module docstring)
            return ""
        target = self.desired
        step = self.max_torque_rate * TICK
        self.last_desired = self.last_desired + np.clip(target - self.last_desired, -step, step)
        self._queue.append(self.last_desired)
        self.sim.step(self._queue.popleft())
        self._measure()
        reason = self._check_reflexes()
        if reason:
            self.hardware_active = self.controller_active = False
            self.reflex = reason
            self.desired = None
            self.sim.stop()  # the arm stops and is held
            self.counters["reflexes"] += 1
        return reason

    def _payload_torque(self, payload: Payload) -> np.ndarray:
        """Joint torques of the payload's weight [Nm] at the current pose."""
        if payload.mass == 0.0:
            return np.zeros(self.robot.dof)
        model, data = self.sim.model, self.sim.data
        point = data.xpos[self._flange] + data.xmat[self._flange].reshape(3, 3) @ np.asarray(payload.center_of_mass)
        mujoco.mj_jac(model, data, self._jacp, None, point, self._flange)
        return self._jacp[:, self.sim.dof_index].T @ np.array([0.0, 0.0, -payload.mass * GRAVITY])

    def _update_load(self) -> None:
        carried = self._payload_torque(self.config.carried)
        self._declared_compensation = -self._payload_torque(self.config.declared)
        self.sim.joint_load = carried + self._declared_compensation
        self._undeclared = carried + self._declared_compensation

    def _contact_load(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint torques and the end-effector wrench of the contact forces acting on the arm."""
        model, data = self.sim.model, self.sim.data
        torque, wrench = np.zeros(self.robot.dof), np.zeros(6)
        force6 = np.zeros(6)
        ee = data.site_xpos[self._ee]
        for i in range(data.ncon):
            contact = data.contact[i]
            body1, body2 = model.geom_bodyid[contact.geom1], model.geom_bodyid[contact.geom2]
            on1, on2 = body1 in self._arm_bodies, body2 in self._arm_bodies
            if on1 == on2:
                continue
            mujoco.mj_contactForce(model, data, i, force6)
            world = contact.frame.reshape(3, 3).T @ force6[:3]  # force of geom1 on geom2, world frame
            body, force = (body2, world) if on2 else (body1, -world)
            mujoco.mj_jac(model, data, self._jacp, self._jacr, contact.pos, body)
            torque += self._jacp[:, self.sim.dof_index].T @ force
            wrench[:3] += force
            wrench[3:] += np.cross(contact.pos - ee, force)
        return torque, wrench

    def _unbalanced_gravity(self) -> np.ndarray:
        """Joint torques of the weight the control unit does not compensate (the links' mass beyond the model's)."""
        model, data = self.sim.model, self.sim.data
        torque = np.zeros(self.robot.dof)
        for body in self._arm_bodies:
            excess = model.body_mass[body] * (1.0 - model.body_gravcomp[body])
            if excess > 1e-9:
                mujoco.mj_jac(model, data, self._jacp, None, data.xipos[body], body)
                torque += self._jacp[:, self.sim.dof_index].T @ np.array([0.0, 0.0, -excess * GRAVITY])
        return torque

    def _measure(self) -> None:
        if self._load_age % SLOW_LOAD_TICKS == 0:  # weights move with the pose only: 100 Hz suffices
            self._update_load()
            self._gravity_excess = self._unbalanced_gravity()
        self._load_age += 1
        contact_torque, self.external_wrench = self._contact_load()
        self.external_torque = contact_torque + self._undeclared + self._gravity_excess
        noise = self.rng.normal(0.0, self.config.effort_noise_std, self.robot.dof) \
            if self.config.effort_noise_std > 0 else 0.0
        gravity = self.sim.data.qfrc_gravcomp[self.sim.dof_index]
        self.tau_j = self.sim.applied + gravity + self._declared_compensation + noise

    def _check_reflexes(self) -> str:
        over = np.abs(self.external_torque) > self._torque_thresholds
        if over.any():
            return (f"joint collision: external torque {np.round(self.external_torque, 1).tolist()} Nm above "
                    f"the thresholds at joints {(np.flatnonzero(over) + 1).tolist()}")
        over = np.abs(self.external_wrench) > self._force_thresholds
        if over.any():
            return (f"cartesian collision: external wrench {np.round(self.external_wrench, 1).tolist()} above "
                    f"the thresholds at axes {[('x', 'y', 'z', 'rx', 'ry', 'rz')[i] for i in np.flatnonzero(over)]}")
        q, dq = self.sim.joint_state()
        lower, upper = self._envelope.limits(q)
        outside = (dq > upper) | (dq < lower)
        if outside.any():
            return (f"joint velocity violation at joints {(np.flatnonzero(outside) + 1).tolist()}: "
                    f"{np.round(dq, 3).tolist()} rad/s outside the position-dependent limits")
        return ""

    # -- readings ----------------------------------------------------------------------------------
    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Measured (position, velocity, tau_J) in joint order, as joint_state_broadcaster publishes them."""
        obs = self.sim.observation
        n = self.robot.dof
        return obs[:n], obs[n:], self.tau_j.copy()
