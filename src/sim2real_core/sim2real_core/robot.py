"""Robot facts (joint order, limits, rates, model file) from `config/robots/NAME.yaml`, their one home."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ConfigError, load_yaml, named_file
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


def load_robot(name_or_path: str | os.PathLike = DEFAULT_ROBOT) -> RobotSpec:
    """Load and check a robot file (every array must have one value per joint)."""
    path = robot_file(name_or_path)
    body = load_yaml(path).get("robot")
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a 'robot' mapping")
    try:
        names = tuple(str(n) for n in body["joint_names"])
        arrays = {key: np.asarray(value, dtype=float) for key, value in (
            ("torque_limits", body["torque_limits"]), ("velocity_limits", body["velocity_limits"]),
            ("position_lower", body["position_limits"]["lower"]),
            ("position_upper", body["position_limits"]["upper"]), ("home", body["home"]))}
        spec = RobotSpec(name=str(body.get("name", path.stem)), joint_names=names,
                         control_period=float(body["control_period"]),
                         physics_timestep=float(body["physics_timestep"]), model=str(body["model"]),
                         home_keyframe=str(body["home_keyframe"]), ee_site=str(body["ee_site"]),
                         kinematics=SerialChain.from_mapping(body["kinematics"]) if "kinematics" in body else None,
                         velocity_envelope=_envelope(body["velocity_envelope"], arrays["velocity_limits"])
                         if "velocity_envelope" in body else None, **arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: robot entry {exc} is missing or malformed") from None
    for key, value in arrays.items():
        if value.shape != (len(names),) or not np.all(np.isfinite(value)):
            raise ConfigError(f"{path}: robot.{key} needs {len(names)} finite values, got {value.tolist()}")
    if spec.kinematics is not None and spec.kinematics.dof != len(names):
        raise ConfigError(f"{path}: robot.kinematics.dh needs {len(names)} rows, got {spec.kinematics.dof}")
    ratio = spec.control_period / spec.physics_timestep
    if spec.physics_timestep <= 0 or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
        raise ConfigError(f"{path}: control_period {spec.control_period} must be a positive whole multiple of "
                          f"physics_timestep {spec.physics_timestep}")
    return spec


def _envelope(body: dict, v_max: np.ndarray) -> VelocityEnvelope:
    values = {key: np.asarray(body[key], dtype=float) for key in ("a", "k", "q_lower", "q_upper")}
    for key, value in values.items():
        if value.shape != v_max.shape or not np.all(np.isfinite(value)):
            raise ValueError(f"velocity_envelope.{key} needs {len(v_max)} finite values, got {body[key]}")
    return VelocityEnvelope(v_max=v_max, tolerance=float(body["tolerance"]), **values)


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
