"""Parameter descriptors, so `ros2 param describe` shows every node parameter's meaning, unit and range."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from sim2real_core.config import OptionModel, option_bounds, option_choices

INT64_MAX = 2**63 - 1


def described(description: str, read_only: bool = False, low: float | None = None,
              high: float | None = None) -> ParameterDescriptor:
    """A parameter descriptor with a description and, when given, a range (integer if both bounds are; a missing
    bound of a float range is infinite)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(low, int) and isinstance(high, int):
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    elif low is not None or high is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=-math.inf if low is None else float(low), to_value=math.inf if high is None else float(high),
            step=0.0)]
    return descriptor


@dataclass(frozen=True)
class Param:
    """One node parameter: its default (a rclpy Parameter.Type when it has none), meaning, unit and range."""

    name: str
    default: Any
    description: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    read_only: bool = True
    dynamic_typing: bool = False  # e.g. a rate given as 100 or 100.0; the node checks the value

    def descriptor(self) -> ParameterDescriptor:
        """The descriptor `ros2 param describe` shows: the description with its unit, the range."""
        text = f"{self.description} [{self.unit}]" if self.unit else self.description
        descriptor = described(text, self.read_only, self.low, self.high)
        descriptor.dynamic_typing = self.dynamic_typing
        return descriptor


def declare(node: Node, parameters: Iterable[Param]) -> dict[str, Any]:
    """Declare every parameter on `node` with its descriptor; return name -> value (file overrides applied)."""
    return {p.name: node.declare_parameter(p.name, p.default, p.descriptor()).value for p in parameters}


def option_parameters(model: type[OptionModel], read_only: bool = False) -> tuple[Param, ...]:
    """One parameter per field of an option model (sim2real_core.config): its default, description, allowed
    values and range, so the node and the command line offer the same settings."""
    parameters = []
    for name, field in model.model_fields.items():
        low, high = option_bounds(model, name)
        choices = option_choices(model, name)
        text = field.description + (f" (one of {' | '.join(choices)})" if choices else "")
        if field.annotation is int and (low is not None or high is not None):
            low, high = int(-INT64_MAX if low is None else low), int(INT64_MAX if high is None else high)
        elif field.annotation is float and (low is not None or high is not None):
            low, high = float("-inf" if low is None else low), float("inf" if high is None else high)
        else:
            low = high = None
        parameters.append(Param(name, field.default, text, low=low, high=high, read_only=read_only))
    return tuple(parameters)
