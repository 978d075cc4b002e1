"""Parameter descriptors, so `ros2 param describe` shows every node parameter's meaning, unit and range."""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor


def described(description: str, read_only: bool = False, low: float | None = None,
              high: float | None = None) -> ParameterDescriptor:
    """A parameter descriptor with a description and, when given, a range (integer if both bounds are)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(low, int) and isinstance(high, int):
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    elif low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return descriptor
