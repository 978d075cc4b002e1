"""Systems by name: which model and observation layout a dataset's transitions belong to.

  hopper  gymnasium's Hopper-v5 (see fit.hopper)
  fr3       the FR3 arm, observation joint_state_v1 (q1..q7, dq1..dq7), action = joint torque without gravity
            (the model's gravcomp compensates at nominal masses), one control period of config/robots/fr3.yaml
  fr3_push  the FR3 arm and the puck, observation joint_state_puck_v1 (joint_state_v1 + the puck's free-joint
            position, quaternion, linear and angular velocity; sim2real_core.data.layouts), same action
"""
from __future__ import annotations

import os

from ..config import ConfigError, load_config, named_file
from ..data.layouts import JOINT_STATE_PUCK
from ..sim.parameters import ParameterSpaceFile
from .engine import System

SYSTEMS = ("hopper", "fr3", "fr3_push")


def system_for(name: str) -> System:
    """A system by name (one of SYSTEMS)."""
    if name == "hopper":
        from .hopper import hopper_system
        return hopper_system()
    if name == "fr3":
        from .fr3 import fr3_system
        return fr3_system()
    if name == "fr3_push":
        from .fr3 import fr3_system
        return fr3_system(puck=True)
    raise ConfigError(f"unknown system {name!r}; expected one of {SYSTEMS}")


def space_system(space: str | os.PathLike) -> str | None:
    """The `model:` a parameter space file names (config/parameter_spaces/NAME.yaml or a path), if any."""
    return load_config(named_file("parameter_spaces", space), ParameterSpaceFile).model


def system_of(model: str, layout: str | None) -> str:
    """The system for a model name (a space's `model:` or a dataset's robot) and a dataset's state layout:
    FR3 data with the puck (joint_state_puck_v1) is `fr3_push`, other data the system named like the model."""
    return "fr3_push" if model == "fr3" and layout == JOINT_STATE_PUCK else model
