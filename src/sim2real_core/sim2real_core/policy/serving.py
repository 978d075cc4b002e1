"""The policy server's logic without ROS: policy + safety layer per period, latency and period statistics."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..robot import load_robot
from .policy_file import Policy, PolicyFileError, load_policy
from .safety import SafetyLayer


def robot_joints_and_period(robot: str | Path = "fr3") -> tuple[list[str], float]:
    """The robot file's joint order and control period (s)."""
    spec = load_robot(robot)
    return list(spec.joint_names), spec.control_period


def load_servable_policy(path: str | Path, joint_names: Sequence[str]) -> Policy:
    """Load a policy and check that it can drive this arm over the torque topic.

    Raises PolicyFileError naming the file when it is not a joint_state_v1 policy for exactly `joint_names`.
    """
    policy = load_policy(path)
    if policy.spec.layout != "joint_state_v1":
        raise PolicyFileError(f"{policy.source}: layout {policy.spec.layout} cannot be served on joint states "
                              "(needs joint_state_v1)")
    if list(policy.spec.joint_names) != list(joint_names):
        raise PolicyFileError(f"{policy.source}: policy joints {policy.spec.joint_names} differ from the robot's "
                              f"{list(joint_names)}")
    return policy


class WindowStats:
    """Percentiles over the newest `window` samples, plus the all-time maximum and count."""

    def __init__(self, window: int = 10_000):
        self._values: deque[float] = deque(maxlen=window)
        self.count = 0
        self.max = 0.0

    def add(self, value: float) -> None:
        """Record one sample."""
        self._values.append(value)
        self.count += 1
        self.max = max(self.max, value)

    def summary(self, scale: float = 1.0) -> dict[str, float]:
        """p50, p99, max (times `scale`) and count."""
        if not self._values:
            return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "count": 0}
        p50, p99 = np.percentile(np.fromiter(self._values, float), [50, 99])
        return {"p50": p50 * scale, "p99": p99 * scale, "max": self.max * scale, "count": self.count}


class PeriodMonitor:
    """Counts control periods and the ones missed (a callback arriving more than 1.5 periods late)."""

    def __init__(self, period: float):
        self.period = period
        self.periods = 0
        self.missed = 0
        self.intervals = WindowStats()
        self._last: float | None = None

    def tick(self, now: float) -> int:
        """Record a control callback at monotonic time `now`; returns the periods missed since the last one."""
        self.periods += 1
        missed = 0
        if self._last is not None:
            interval = now - self._last
            self.intervals.add(interval)
            if interval > 1.5 * self.period:
                missed = int(round(interval / self.period)) - 1
        self._last = now
        self.missed += missed
        return missed

    def summary(self) -> dict[str, float]:
        """Periods, missed periods and their rate, interval p99/max in ms."""
        interval = self.intervals.summary(1e3)
        total = self.periods + self.missed
        return {"periods": self.periods, "missed_periods": self.missed,
                "missed_rate": self.missed / total if total else 0.0,
                "interval_p99_ms": interval["p99"], "interval_max_ms": interval["max"]}


@dataclass
class JointState:
    """The newest joint state: positions, velocities, its header stamp and its arrival (monotonic) [s]."""

    q: np.ndarray
    dq: np.ndarray
    stamp: float
    received: float


class PolicyRunner:
    """One control period: newest state -> policy torque -> safety layer -> command.

    Args:
        policy: a servable policy (see `load_servable_policy`).
        safety: the arm's safety layer, already built for this control period.
        extra: values of the policy's extra inputs (None: the sidecar defaults).
    """

    def __init__(self, policy: Policy, safety: SafetyLayer, extra: np.ndarray | None = None):
        self.safety = safety
        self.latency = WindowStats()  # header stamp -> command, on the node's clock
        self.compute = WindowStats()  # state callback -> command, monotonic
        self.configure(policy, extra)
        self._state: JointState | None = None
        self._fresh = False

    def configure(self, policy: Policy, extra: np.ndarray | None) -> None:
        """Check, then switch to, a policy (loaded and validated) and extra inputs (None: its defaults).

        Raises PolicyFileError, changing nothing, when the extra inputs do not fit the policy.
        """
        extra = None if extra is None else np.asarray(extra, dtype=float)
        needed = len(policy.extra_defaults())
        if extra is not None and (extra.shape != (needed,) or not np.all(np.isfinite(extra))):
            raise PolicyFileError(f"{policy.source} needs {needed} finite extra inputs "
                                  f"{[e['name'] for e in policy.spec.extra_inputs]}, got {extra.tolist()}")
        self.policy, self.extra = policy, extra

    def state(self, q: np.ndarray, dq: np.ndarray, stamp: float, received: float) -> None:
        """A new joint state arrived (header `stamp` on the node's clock, `received` on the monotonic clock)."""
        self._state = JointState(q, dq, stamp, received)
        self._fresh = True

    def command(self, now: float, monotonic: float) -> np.ndarray:
        """The safe torque command for this period; `now` on the stamps' clock, `monotonic` for compute time."""
        fresh, self._fresh = self._fresh, False
        if self._state is None:  # the watchdog arms with the first state; until then hold zero torque
            return np.zeros(self.safety.limits.size)
        state = self._state
        with np.errstate(all="ignore"):  # non-finite states and outputs are the safety layer's business
            torque = self.policy.torque(state.q, state.dq, self.extra) if fresh else None
            safe = self.safety.filter(torque, state.q, state.dq, fresh=fresh)
        if fresh:
            self.latency.add(now - state.stamp)
            self.compute.add(monotonic - state.received)
        return safe
