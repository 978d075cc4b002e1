"""The policy server's logic without ROS: policy + safety layer per period, latency and period statistics."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..robot import DEFAULT_ROBOT, arm_joint_names, joint_role, load_robot
from .policy_file import Policy, PolicyFileError, load_policy
from .safety import SafetyLayer


def robot_joints_and_period(robot: str | Path = DEFAULT_ROBOT, arm_prefix: str = "",
                            robot_type: str = "") -> tuple[list[str], float]:
    """The arm's joint names (with franka_ros2's arm prefix and robot type) and control period (s)."""
    spec = load_robot(robot)
    return list(arm_joint_names(spec, arm_prefix, robot_type)), spec.control_period


def load_servable_policy(path: str | Path, joint_names: Sequence[str]) -> Policy:
    """Load a policy and check that it can drive this arm over the torque topic.

    Joints match by role (robot type and joint number), so a policy trained on ``fr3_joint1..7`` serves an arm
    launched with ``arm_prefix: left`` (``left_fr3_joint1..7``); a different robot type or order does not.
    Raises PolicyFileError naming the file when it is not a joint_state_v1 policy for these joints.
    """
    policy = load_policy(path)
    if policy.spec.layout != "joint_state_v1":
        raise PolicyFileError(f"{policy.source}: layout {policy.spec.layout} cannot be served on joint states "
                              "(needs joint_state_v1)")
    try:
        same = [joint_role(n) for n in policy.spec.joint_names] == [joint_role(n) for n in joint_names]
    except ValueError as exc:
        raise PolicyFileError(f"{policy.source}: {exc}") from None
    if not same:
        raise PolicyFileError(f"{policy.source}: policy joints {policy.spec.joint_names} differ from the robot's "
                              f"{list(joint_names)} (compared by robot type and joint number)")
    return policy


def check_stamp(stamp: float, previous: float | None, now: float, max_age: float, max_ahead: float) -> str:
    """Why a state stamped `stamp` [s] cannot count as fresh at `now` on the same clock ('' if it can).

    'replayed': not newer than the previous state's stamp (a replay, a reordering, or a second arm's stream);
    'stale': older than `max_age`; 'future': more than `max_ahead` ahead of `now`.
    """
    if previous is not None and stamp <= previous:
        return "replayed"
    if stamp < now - max_age:
        return "stale"
    if stamp > now + max_ahead:
        return "future"
    return ""


class PeriodGate:
    """Acts once per control period on a faster state stream, by the states' stamps (never by counting them).

    franka_ros2 publishes joint states at 1 kHz and may drop single samples; a 100 Hz policy acts on the first
    state whose stamp reaches the next period (half a 1 ms tick early counts), so dropped samples do not
    shift the rate. A gap of more than a period restarts the schedule from that state.
    """

    def __init__(self, period: float, tolerance: float = 5e-4):
        self.period = period
        self.tolerance = tolerance
        self._due: float | None = None
        self.last: float | None = None

    def due(self, stamp: float) -> float | None:
        """Seconds since the last acted state if the state stamped `stamp` should be acted on, else None."""
        if self._due is not None and stamp < self._due - self.tolerance:
            return None
        elapsed = self.period if self.last is None else stamp - self.last
        self._due = self._due + self.period if self._due is not None and stamp < self._due + self.period \
            else stamp + self.period
        self.last = stamp
        return elapsed

    def served_until(self, stamp: float) -> None:
        """A command went out without a state (the stream stalled) for the periods up to `stamp`: their states,
        arriving late, are not acted on again, so one command goes out per period."""
        while self._due is not None and self._due <= stamp:
            self._due += self.period

    def restart(self) -> None:
        """Forget the schedule (after a reset or a reload): the next state is acted on."""
        self._due = self.last = None


# Fresh control periods in a row before a policy's torque goes out and the watchdog arms.
SETTLE_PERIODS = 50


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
        self.settled = 0  # fresh periods since the stream (re)started
        self._missed = 0  # consecutive periods without a fresh state while settling

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
        policy.reset()

    def new_episode(self) -> None:
        """The next command starts an episode: a memory policy forgets what it saw."""
        self.policy.reset()

    def state(self, q: np.ndarray, dq: np.ndarray, stamp: float, received: float) -> None:
        """A new joint state arrived (header `stamp` on the node's clock, `received` on the monotonic clock)."""
        self._state = JointState(q, dq, stamp, received)
        self._fresh = True

    def command(self, now: float, monotonic: float, elapsed: float | None = None) -> np.ndarray:
        """The safe torque command for this period; `now` on the stamps' clock, `monotonic` for compute time.

        Until the state stream has delivered SETTLE_PERIODS fresh periods, zero torque is held; a gap that would
        trip the watchdog (`watchdog_periods` periods without a fresh state) restarts the count, a shorter one
        does not (a stream that is still coming up is not a fault, and one the watchdog tolerates is settled).
        From then on the safety layer's watchdog acts on `watchdog_periods` periods without a fresh state.
        `elapsed`: seconds since the previous command (the rate limit's time base), when known.
        """
        fresh, self._fresh = self._fresh, False
        if self._state is None or self.settled < SETTLE_PERIODS:  # a stream (re)starting starts an episode
            self.policy.reset()
            self._missed = 0 if fresh else self._missed + 1
            if fresh:
                self.settled += 1
            elif self._missed >= self.safety.limits.watchdog_periods:
                self.settled = 0
            return np.zeros(self.safety.limits.size)
        state = self._state
        with np.errstate(all="ignore"):  # non-finite states and outputs are the safety layer's business
            torque = self.policy.torque(state.q, state.dq, self.extra) if fresh else None
            safe = self.safety.filter(torque, state.q, state.dq, fresh=fresh, elapsed=elapsed)
        if fresh:
            self.latency.add(now - state.stamp)
            self.compute.add(monotonic - state.received)
        return safe
