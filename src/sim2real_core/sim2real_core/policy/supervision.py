"""The command supervisor's logic (no ROS): the last line between a commander and a torque-holding controller.

franka_ros2's effort controller re-applies the last command every 1 ms with no timeout, so a commander that
dies, hangs or stops mid-motion would leave its torque on the arm. The supervisor relays each command it
receives on its own topic to the controller and

- sends zero torque when the commander falls silent for `command_timeout` after a nonzero command (a
  commander that ends on zero torque has stopped cleanly, nothing is sent);
- latches that zero when the silence reaches `latch_timeout`: a commander that was stopped, hung or died
  does not resume without an operator's `reset()`; a shorter gap (a scheduling hiccup of a loaded machine)
  had its zero and the commander's next command is relayed again;
- latches zero torque at once on a command of the wrong length, with a non-finite value or beyond the
  torque limits, and when told that a second commander or a second controller feed exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Silence after a nonzero command that sends zero torque, in control periods. A commander that dies did so
# up to one period after its last command, so the zero follows its death within 1 to 2 periods.
DEFAULT_TIMEOUT_PERIODS = 2.0
# Silence that latches the zero, in control periods: long enough that the scheduling gaps of a healthy
# commander on a loaded machine only cost a zero, short enough that a stopped commander never resumes.
DEFAULT_LATCH_PERIODS = 25.0
MAX_COMMAND_TIMEOUT = 1.0  # [s] longer would leave a dead commander's torque on the arm for too long


@dataclass
class CommandSupervisor:
    """Validates and relays commands; decides when zero torque is sent and when it is latched.

    Args:
        torque_limits: |torque| limits per joint [N*m]; a command beyond them is refused.
        command_timeout: seconds of silence after a nonzero command before zero torque is sent.
        latch_timeout: seconds of silence before that zero is latched (>= command_timeout).
    """

    torque_limits: np.ndarray
    command_timeout: float
    latch_timeout: float
    fault: str | None = None
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("relayed", "refused", "zeroed", "latched_commands"), 0))
    _last_nonzero: bool = field(default=False, init=False)
    _last_time: float | None = field(default=None, init=False)
    _zeroed: bool = field(default=False, init=False)

    def __post_init__(self):
        self.torque_limits = np.asarray(self.torque_limits, dtype=float)
        if not 0 < self.command_timeout <= MAX_COMMAND_TIMEOUT:
            raise ValueError(f"command_timeout must be in (0, {MAX_COMMAND_TIMEOUT:g}] s, got {self.command_timeout}")
        if not self.command_timeout <= self.latch_timeout <= 10 * MAX_COMMAND_TIMEOUT:
            raise ValueError(f"latch_timeout must be in [command_timeout, {10 * MAX_COMMAND_TIMEOUT:g}] s, got "
                             f"{self.latch_timeout}")

    @property
    def size(self) -> int:
        """Number of joints."""
        return self.torque_limits.size

    def command(self, values, now: float) -> np.ndarray | None:
        """A commander's message at monotonic time `now`: the torque to relay, or None when nothing goes out.

        A refused command latches the fault and returns zeros (published once, so the arm is released).
        """
        if self.fault is None and self._zeroed and now - self._last_time >= self.latch_timeout:
            self._latch_silence(now)
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
        self._zeroed = False
        return values

    def silence(self, now: float) -> np.ndarray | None:
        """Check the commander's silence at `now`: zeros to publish when it has just passed command_timeout.

        Past latch_timeout the zero is latched (nothing more to publish; `fault` says why).
        """
        if self.fault is not None or not self._last_nonzero or self._last_time is None:
            return None
        quiet = now - self._last_time
        if self._zeroed:
            if quiet >= self.latch_timeout * (1 - 1e-6):
                self._latch_silence(now)
            return None
        if quiet < self.command_timeout * (1 - 1e-6):
            return None
        self._zeroed = True
        self.counters["zeroed"] += 1
        return np.zeros(self.size)

    def _latch_silence(self, now: float) -> None:
        self.latch(f"commander silent for {1e3 * (now - self._last_time):.0f} ms after a nonzero command")

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
        self._last_nonzero, self._last_time, self._zeroed = False, None, False
        return fault

    def deadline(self) -> float | None:
        """Monotonic time of the next silence check that would act (None: nothing is held or pending)."""
        if self.fault is not None or not self._last_nonzero or self._last_time is None:
            return None
        return self._last_time + (self.latch_timeout if self._zeroed else self.command_timeout)
