"""The command supervisor's logic (no ROS): the last line between a commander and a torque-holding controller.

franka_ros2's effort controller re-applies the last command every 1 ms with no timeout, so a commander that
dies, hangs or stops mid-motion would leave its torque on the arm. The supervisor relays each command it
receives on its own topic to the controller and

- latches zero torque when the commander falls silent for longer than `command_timeout` after a nonzero
  command (a commander that ends on zero torque has stopped cleanly, nothing is latched);
- latches zero torque on a command of the wrong length, with a non-finite value or beyond the torque limits;
- latches zero torque when it is told that a second commander or a second controller feed exists;
- stays latched, ignoring every command, until `reset()` (an operator's decision, never automatic).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# How long a commander may stay silent after a nonzero command, in control periods. A commander that dies
# did so up to one period after its last command, so the zero follows its death within 1 to 2 periods.
# Shorter timeouts latched on the scheduling gaps of a healthy policy server on a loaded 2-core machine.
DEFAULT_TIMEOUT_PERIODS = 2.0
MAX_COMMAND_TIMEOUT = 1.0  # [s] longer would leave a dead commander's torque on the arm for too long


@dataclass
class CommandSupervisor:
    """Validates and relays commands; decides when zero torque must be latched.

    Args:
        torque_limits: |torque| limits per joint [N*m]; a command beyond them is refused.
        command_timeout: seconds of silence after a nonzero command before zero torque is latched.
    """

    torque_limits: np.ndarray
    command_timeout: float
    fault: str | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("relayed", "refused", "silences", "latched_commands"), 0))
    _last_nonzero: bool = field(default=False, init=False)
    _last_time: float | None = field(default=None, init=False)

    def __post_init__(self):
        self.torque_limits = np.asarray(self.torque_limits, dtype=float)
        if not 0 < self.command_timeout <= MAX_COMMAND_TIMEOUT:
            raise ValueError(f"command_timeout must be in (0, {MAX_COMMAND_TIMEOUT:g}] s, got {self.command_timeout}")

    @property
    def size(self) -> int:
        """Number of joints."""
        return self.torque_limits.size

    def command(self, values, now: float) -> np.ndarray | None:
        """A commander's message at monotonic time `now`: the torque to relay, or None when nothing goes out.

        A refused command latches the fault and returns zeros (published once, so the arm is released).
        """
        if self.fault is not None:
            self.counters["latched_commands"] += 1
            return None
        values = np.asarray(values, dtype=float).ravel()
        if values.shape != (self.size,):
            return self.latch(f"command with {values.size} values (expected {self.size})")
        if not np.all(np.isfinite(values)):
            return self.latch("command with non-finite values")
        over = np.abs(values) > self.torque_limits
        if over.any():
            return self.latch(f"command beyond the torque limits at joints {(np.flatnonzero(over) + 1).tolist()}")
        self.counters["relayed"] += 1
        self._last_nonzero = bool(np.any(values != 0.0))
        self._last_time = now
        return values

    def silence(self, now: float) -> np.ndarray | None:
        """Called when the timeout may have passed: zeros to publish (and latched) if the commander went silent."""
        if self.fault is not None or not self._last_nonzero or self._last_time is None:
            return None
        if now - self._last_time < self.command_timeout * (1 - 1e-6):
            return None
        self.counters["silences"] += 1
        return self.latch(f"commander silent for {1e3 * (now - self._last_time):.1f} ms after a nonzero command")

    def latch(self, reason: str) -> np.ndarray:
        """Latch zero torque for `reason`; returns the zeros to publish."""
        if self.fault is None:
            self.fault = reason
            self.counters["refused"] += 1
        self._last_nonzero = False
        return np.zeros(self.size)

    def reset(self) -> str | None:
        """Clear the latch (operator action); returns the fault that was latched."""
        fault, self.fault = self.fault, None
        self._last_nonzero, self._last_time = False, None
        return fault

    def deadline(self) -> float | None:
        """Monotonic time at which silence would latch zero torque (None: nothing is held)."""
        if self.fault is not None or not self._last_nonzero or self._last_time is None:
            return None
        return self._last_time + self.command_timeout
