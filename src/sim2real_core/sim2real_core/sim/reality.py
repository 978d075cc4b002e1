"""The reality proxy: the arm with hidden true parameters and effects outside the simulator family.

The truth lives in `config/reality/NAME.yaml`, read only here (by the sim bridge's `reality` profile):
in-family parameter values (heavier links; more damping, dry, Stribeck and velocity-squared friction than
nominal; a sub-period command latency; encoder offsets; noise) and an unmodelled effect no parameter space
contains: a torque ripple periodic in each joint's position (as strain-wave gears and motor cogging produce),
applied every physics step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from annotated_types import Len
from pydantic import Field, FiniteFloat, PositiveFloat

from ..config import ConfigError, OptionModel, load_config, named_file
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
      torque_ripple: per-joint ripple amplitude [N*m].
      ripple_period: joint travel per ripple cycle [rad].
      appearance_space, appearance: what the workspace camera sees (sim.camera; None: the model's own look).
    """

    robot: str
    space: ParameterSpace
    truth: np.ndarray
    torque_ripple: np.ndarray
    ripple_period: float
    appearance_space: ParameterSpace | None = None
    appearance: np.ndarray | None = None  # the camera's hidden appearance, in appearance_space order


def reality_file(name_or_path: str | os.PathLike) -> Path:
    """``fr3_default`` -> config/reality/fr3_default.yaml; a YAML path unchanged."""
    return named_file("reality", name_or_path)


JointValues = Annotated[tuple[FiniteFloat, ...], Len(7, 7)]


class Unmodelled(OptionModel):
    """Effects outside every parameter space (defaults: none)."""

    torque_ripple: JointValues = Field((0.0,) * 7, description="amplitude of the position-periodic torque [N*m]")
    ripple_period: PositiveFloat = Field(0.0314, description="joint travel per ripple cycle [rad]")


class RealityAppearance(OptionModel):
    """How the real workspace looks to the camera: values of an appearance space (the rest nominal)."""

    parameter_space: str = "fr3_appearance"
    truth: dict[str, float] = Field(default_factory=dict)


class RealityFile(OptionModel):
    """config/reality/NAME.yaml `reality`: the hidden truth (parameters not named are nominal)."""

    robot: str = DEFAULT_ROBOT
    parameter_space: str
    truth: dict[str, float] = Field(default_factory=dict)
    unmodelled: Unmodelled = Unmodelled()
    appearance: RealityAppearance | None = None


def load_reality(name_or_path: str | os.PathLike = DEFAULT_REALITY) -> RealityProfile:
    """Read and check a reality file."""
    path = reality_file(name_or_path)
    body = load_config(path, RealityFile, "reality")
    space = load_parameter_space(body.parameter_space)
    try:
        truth = space.validate(space.vector(body.truth, fill_nominal=True))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: reality.truth: {exc}") from None
    extra = body.unmodelled
    look_space = look = None
    if body.appearance is not None:
        look_space = load_parameter_space(body.appearance.parameter_space)
        try:
            look = look_space.validate(look_space.vector(body.appearance.truth, fill_nominal=True))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{path}: reality.appearance.truth: {exc}") from None
    return RealityProfile(robot=body.robot, space=space, truth=truth, torque_ripple=np.array(extra.torque_ripple),
                          ripple_period=extra.ripple_period, appearance_space=look_space, appearance=look)


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
        super().__init__(self.profile.space, robot=self.profile.robot, control_period=control_period, seed=seed)
        self.set_parameters(self.profile.truth)
        if np.any(self.profile.torque_ripple):
            self.kernel.position_force = self.ripple
        self.reset()

    def ripple(self, position: np.ndarray) -> np.ndarray:
        """The unmodelled torque ripple [N*m] at joint positions [rad], (..., joints) (each joint with its own
        phase)."""
        phase = np.arange(position.shape[-1], dtype=float)
        return self.profile.torque_ripple * np.sin(2.0 * np.pi * position / self.profile.ripple_period + phase)
