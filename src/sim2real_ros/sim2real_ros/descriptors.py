"""Parameter descriptors, so `ros2 param describe` shows every node parameter's meaning, unit and range."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


def described(description: str, read_only: bool = False, low: float | None = None,
              high: float | None = None) -> ParameterDescriptor:
    """A parameter descriptor with a description and, when given, a range (integer if both bounds are)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(low, int) and isinstance(high, int):
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    elif low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
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
