"""The reality proxy: the arm with hidden true parameters and effects outside the simulator family.

The truth lives in `config/reality/NAME.yaml`, read only here (by the sim bridge's `reality` profile):
in-family parameter values (heavier links, more damping and friction than nominal, noise) and unmodelled
effects no parameter space contains: a sub-period command latency, Stribeck plus velocity-squared joint
friction applied per physics step as qfrc_applied, and constant encoder offsets.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from ..config import ConfigError, load_yaml, named_file
from ..robot import DEFAULT_ROBOT
from .parameters import ParameterSpace, load_parameter_space
from .simulator import Simulator

DEFAULT_REALITY = "fr3_default"  # the reality proxy that commands, nodes and the demo use unless told


@dataclass(frozen=True)
class RealityProfile:
    """A reality file's content.

    Attributes:
      robot: robot name.
      space: parameter space the truth is expressed in.
      truth: true parameter vector (in `space` order).
      command_latency: delay of a command within its control period [s].
      stribeck_torque: per-joint breakaway friction near zero speed [N*m].
      stribeck_velocity: Stribeck velocity [rad/s].
      drag: per-joint velocity-squared friction [N*m*s^2/rad^2].
      position_bias: per-joint encoder offsets [rad].
    """

    robot: str
    space: ParameterSpace
    truth: np.ndarray
    command_latency: float
    stribeck_torque: np.ndarray
    stribeck_velocity: float
    drag: np.ndarray
    position_bias: np.ndarray


def reality_file(name_or_path: str | os.PathLike) -> Path:
    """``fr3_default`` -> config/reality/fr3_default.yaml; a YAML path unchanged."""
    return named_file("reality", name_or_path)


def load_reality(name_or_path: str | os.PathLike = DEFAULT_REALITY) -> RealityProfile:
    """Read and check a reality file."""
    path = reality_file(name_or_path)
    body = load_yaml(path).get("reality")
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a 'reality' mapping")
    try:
        space = load_parameter_space(body["parameter_space"])
        truth = space.validate(space.vector(body.get("truth") or {}, fill_nominal=True))
        extra = body.get("unmodelled") or {}
        profile = RealityProfile(
            robot=str(body.get("robot", DEFAULT_ROBOT)), space=space, truth=truth,
            command_latency=float(extra.get("command_latency", 0.0)),
            stribeck_torque=np.asarray(extra.get("stribeck_torque", [0.0] * 7), dtype=float),
            stribeck_velocity=float(extra.get("stribeck_velocity", 0.1)),
            drag=np.asarray(extra.get("drag", [0.0] * 7), dtype=float),
            position_bias=np.asarray(extra.get("position_bias", [0.0] * 7), dtype=float))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise ConfigError(f"{path}: {exc}") from None
        raise ConfigError(f"{path}: malformed reality entry ({exc})") from None
    for name in ("stribeck_torque", "drag", "position_bias"):
        value = getattr(profile, name)
        if value.shape != (7,) or not np.all(np.isfinite(value)):
            raise ConfigError(f"{path}: unmodelled.{name} needs 7 finite values, got {value.tolist()}")
    if profile.command_latency < 0 or profile.stribeck_velocity <= 0:
        raise ConfigError(f"{path}: command_latency must be >= 0 and stribeck_velocity > 0")
    return profile


class RealityProxy(Simulator):
    """The "real" arm: a Simulator at the hidden truth plus effects outside the simulator family.

    Args:
      profile: reality file name (config/reality) or path, or a loaded RealityProfile.
      seed: seed of the noise generator.
      control_period: seconds per step(); default: the robot's.
    """

    def __init__(self, profile: str | os.PathLike | RealityProfile = DEFAULT_REALITY, seed: int | None = None,
                 control_period: float | None = None):
        self.profile = profile if isinstance(profile, RealityProfile) else load_reality(profile)
        self.joint_load = np.zeros(7)  # further joint torques applied per physics step [N*m] (e.g. a payload)
        super().__init__(self.profile.space, robot=self.profile.robot, control_period=control_period, seed=seed)
        if self.profile.command_latency >= self.control_period:
            raise ConfigError(f"command_latency {self.profile.command_latency} s must be shorter than the control "
                              f"period {self.control_period} s")
        self._latency_steps = int(round(self.profile.command_latency / self.model.opt.timestep))
        self.set_parameters(self.profile.truth)
        self.reset()

    def friction(self, velocity: np.ndarray) -> np.ndarray:
        """Unmodelled joint friction torque [N*m] at joint velocities [rad/s] (opposes motion)."""
        p = self.profile
        hump = p.stribeck_torque * np.exp(-(velocity / p.stribeck_velocity) ** 2) * np.tanh(velocity / 1e-3)
        return -(hump + p.drag * velocity * np.abs(velocity))

    def _advance(self, previous: np.ndarray, applied: np.ndarray) -> None:
        model, data, dadr = self.model, self.data, self.dof_index
        for k in range(self.nsub):
            data.ctrl[self._act] = previous if k < self._latency_steps else applied
            data.qfrc_applied[dadr] = self.friction(data.qvel[dadr]) + self.joint_load
            mujoco.mj_step(model, data)

    def _measure(self) -> np.ndarray:
        obs = super()._measure()
        obs[: self.robot.dof] += self.profile.position_bias
        return obs
