"""Robot facts (joint order, limits, rates, model file) from `config/robots/NAME.yaml`, their one home."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, FiniteFloat, NonNegativeFloat, PositiveFloat, model_validator

from .config import OptionModel, load_config, named_file
from .kinematics import SerialChain

DEFAULT_ROBOT = "fr3"  # config/robots/NAME.yaml of the arm every tool and node drives unless told


@dataclass(frozen=True)
class VelocityEnvelope:
    """A position-dependent joint velocity envelope, as libfranka's rate_limiting.h bounds the FR3's:
    upper(q) = min(v_max, max(0, -a + sqrt(max(0, k (q_upper - q))))) - tolerance, lower(q) mirrored."""

    v_max: np.ndarray
    a: np.ndarray
    k: np.ndarray
    q_lower: np.ndarray
    q_upper: np.ndarray
    tolerance: float

    def limits(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint velocity limits [rad/s] at joint positions q."""
        upper = np.minimum(self.v_max, np.maximum(0.0, -self.a + np.sqrt(
            np.maximum(0.0, self.k * (self.q_upper - q))))) - self.tolerance
        lower = np.maximum(-self.v_max, np.minimum(0.0, self.a - np.sqrt(
            np.maximum(0.0, self.k * (q - self.q_lower))))) + self.tolerance
        return lower, upper


@dataclass(frozen=True)
class RobotSpec:
    """A robot's facts; arrays are in `joint_names` order.

    Attributes:
      name: robot name (``fr3``).
      joint_names: actuated joints, in command and joint-state order.
      torque_limits: |torque| limits [N*m].
      velocity_limits: |velocity| limits [rad/s].
      position_lower, position_upper: joint position limits [rad].
      control_period: policy / dataset control period [s].
      physics_timestep: simulator timestep [s].
      model: MJCF file name in sim2real_core/models.
      home_keyframe: name of the model's home keyframe.
      home: home joint positions [rad].
      ee_site: end-effector site name in the model.
      kinematics: forward kinematics to the end effector (None when the file gives none).
      velocity_envelope: the controller's position-dependent velocity bounds (None when the file gives none).
    """

    name: str
    joint_names: tuple[str, ...]
    torque_limits: np.ndarray
    velocity_limits: np.ndarray
    position_lower: np.ndarray
    position_upper: np.ndarray
    control_period: float
    physics_timestep: float
    model: str
    home_keyframe: str
    home: np.ndarray
    ee_site: str
    kinematics: SerialChain | None = None
    velocity_envelope: VelocityEnvelope | None = None

    @property
    def dof(self) -> int:
        """Number of actuated joints."""
        return len(self.joint_names)


def robot_file(name_or_path: str | os.PathLike) -> Path:
    """A robot name (``fr3``) -> config/robots/fr3.yaml; a YAML path is returned unchanged."""
    return named_file("robots", name_or_path)


FiniteList = tuple[FiniteFloat, ...]


class EnvelopeFile(OptionModel):
    """robot.velocity_envelope: the constants of libfranka's position-dependent velocity bounds."""

    a: FiniteList
    k: FiniteList
    q_lower: FiniteList
    q_upper: FiniteList
    tolerance: NonNegativeFloat


class PositionLimits(OptionModel):
    """robot.position_limits [rad]."""

    lower: FiniteList
    upper: FiniteList


class KinematicsFile(OptionModel):
    """robot.kinematics: modified DH rows (a [m], d [m], alpha [rad]), the flange row and the tool point."""

    dh: tuple[tuple[FiniteFloat, FiniteFloat, FiniteFloat], ...]
    flange: tuple[FiniteFloat, FiniteFloat, FiniteFloat] = (0.0, 0.0, 0.0)
    tool: tuple[FiniteFloat, FiniteFloat, FiniteFloat] = (0.0, 0.0, 0.0)


class RobotFile(OptionModel):
    """config/robots/NAME.yaml `robot`: every per-joint list has one value per joint name."""

    name: str = ""
    joint_names: tuple[str, ...] = Field(min_length=1)
    torque_limits: FiniteList = Field(description="|torque| limits [N*m], torques without gravity")
    velocity_limits: FiniteList = Field(description="|velocity| limits [rad/s]")
    velocity_envelope: EnvelopeFile | None = None
    position_limits: PositionLimits
    control_period: PositiveFloat = Field(description="policy and dataset control period [s]")
    physics_timestep: PositiveFloat = Field(description="MuJoCo physics timestep [s]")
    model: str = Field(description="MJCF file in sim2real_core/models")
    home_keyframe: str
    home: FiniteList = Field(description="home joint positions [rad]")
    ee_site: str
    kinematics: KinematicsFile | None = None

    @model_validator(mode="after")
    def _consistent(self):
        n = len(self.joint_names)
        per_joint = {"torque_limits": self.torque_limits, "velocity_limits": self.velocity_limits,
                     "position_limits.lower": self.position_limits.lower,
                     "position_limits.upper": self.position_limits.upper, "home": self.home}
        if self.velocity_envelope is not None:
            per_joint.update({f"velocity_envelope.{k}": getattr(self.velocity_envelope, k)
                              for k in ("a", "k", "q_lower", "q_upper")})
        for key, values in per_joint.items():
            if len(values) != n:
                raise ValueError(f"{key} needs {n} values (one per joint), got {list(values)}")
        if self.kinematics is not None and len(self.kinematics.dh) != n:
            raise ValueError(f"kinematics.dh needs {n} rows, got {len(self.kinematics.dh)}")
        ratio = self.control_period / self.physics_timestep
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"control_period {self.control_period} must be a positive whole multiple of "
                             f"physics_timestep {self.physics_timestep}")
        return self


def load_robot(name_or_path: str | os.PathLike = DEFAULT_ROBOT) -> RobotSpec:
    """Load and check a robot file (every array must have one value per joint)."""
    path = robot_file(name_or_path)
    body = load_config(path, RobotFile, "robot")
    v_max = np.array(body.velocity_limits)
    envelope = body.velocity_envelope
    return RobotSpec(
        name=body.name or path.stem, joint_names=body.joint_names, torque_limits=np.array(body.torque_limits),
        velocity_limits=v_max, position_lower=np.array(body.position_limits.lower),
        position_upper=np.array(body.position_limits.upper), control_period=body.control_period,
        physics_timestep=body.physics_timestep, model=body.model, home_keyframe=body.home_keyframe,
        home=np.array(body.home), ee_site=body.ee_site,
        kinematics=SerialChain.from_mapping(body.kinematics.model_dump()) if body.kinematics else None,
        velocity_envelope=None if envelope is None else VelocityEnvelope(
            v_max=v_max, a=np.array(envelope.a), k=np.array(envelope.k), q_lower=np.array(envelope.q_lower),
            q_upper=np.array(envelope.q_upper), tolerance=envelope.tolerance))


JOINT_NAME = re.compile(r"^(?:(?P<prefix>.+)_)?(?P<type>[A-Za-z0-9]+)_joint(?P<index>\d+)$")


def joint_role(name: str) -> tuple[str, int]:
    """franka_description's ``<arm_prefix>_<robot_type>_jointN`` -> (robot_type, N); ValueError otherwise."""
    match = JOINT_NAME.match(name)
    if match is None:
        raise ValueError(f"joint name {name!r} is not <arm_prefix>_<robot_type>_jointN or <robot_type>_jointN")
    return match["type"], int(match["index"])


def arm_joint_names(spec: RobotSpec, arm_prefix: str = "", robot_type: str = "") -> tuple[str, ...]:
    """The arm's joint names as franka_description writes them: ``<arm_prefix>_<robot_type>_jointN``.

    Args:
      spec: the robot (its joint names give the roles jointN and the default robot type).
      arm_prefix: franka_ros2's `arm_prefix` launch argument ('' for none, e.g. ``left``).
      robot_type: ``fr3``, ``fr3v2``...; '' keeps the robot file's.
    """
    if arm_prefix and not re.fullmatch(r"[A-Za-z0-9_]+", arm_prefix):
        raise ValueError(f"arm_prefix must be letters, digits and underscores, got {arm_prefix!r}")
    if robot_type and not re.fullmatch(r"[A-Za-z0-9]+", robot_type):
        raise ValueError(f"robot_type must be letters and digits (fr3, fr3v2), got {robot_type!r}")
    names = []
    for name in spec.joint_names:
        kind, index = joint_role(name)
        names.append(f"{arm_prefix + '_' if arm_prefix else ''}{robot_type or kind}_joint{index}")
    return tuple(names)
