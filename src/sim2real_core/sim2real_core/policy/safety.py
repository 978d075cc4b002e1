"""The safety layer between any policy and the torque topic (pure numpy).

Every command the policy server or the exploration dispatcher publishes goes through `SafetyLayer.filter`,
once per control period. In order it applies:

1. latched fault -> zero torque (until `reset()`);
2. watchdog: no fresh state for `watchdog_periods` periods -> zero torque (the torque returns, rate-limited,
   with the next fresh state); none for `watchdog_latch_periods` -> a latched ``watchdog`` fault;
3. NaN guard: a non-finite value in the state or the command -> zero torque and a latched ``nan`` fault;
4. joint-limit guard: past a soft joint limit, torque driving further out is removed and a spring-damper
   pushes back towards the limit;
5. velocity-envelope guard (robots whose file gives one, e.g. the FR3's reflex bounds): a joint faster than
   `envelope_fraction` of its position-dependent velocity bound loses the torque that drives it faster and
   is damped back towards that fraction of the bound;
6. per-joint torque limits (clip);
7. torque rate limit (Nm/s) against the previously published command.

Every decision is counted in `counters` for /diagnostics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from ..config import ConfigError, OptionModel, config_path, load_config
from ..robot import DEFAULT_ROBOT, VelocityEnvelope, load_robot

COUNTERS = ("periods", "clipped", "rate_limited", "joint_limit", "velocity_envelope", "nan", "watchdog_zero",
            "watchdog", "faulted")


@dataclass(frozen=True)
class SafetyLimits:
    """Limits of one arm. Arrays are per joint, in the robot's joint order.

    Attributes:
        torque: |tau_i| <= torque[i] (Nm).
        rate: |tau_i(t) - tau_i(t - period)| <= rate[i] * period (Nm/s).
        lower, upper: soft joint position limits (rad); the guard acts outside [lower, upper].
        guard_stiffness: push-back stiffness past a soft limit (Nm/rad).
        guard_damping: damping of outward velocity past a soft limit (Nm s/rad).
        watchdog_periods: periods without fresh state before the watchdog zeroes the torque.
        watchdog_latch_periods: periods without fresh state before the zero is latched as a fault
            (None: at once, = watchdog_periods).
        envelope: the robot's position-dependent velocity bounds (None: no envelope guard).
        envelope_fraction: the guard keeps each joint within this fraction of its bound (0 < f <= 1).
        envelope_damping: damping of the velocity beyond that fraction (Nm s/rad).
    """

    torque: np.ndarray
    rate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    guard_stiffness: np.ndarray
    guard_damping: np.ndarray
    watchdog_periods: int = 3
    watchdog_latch_periods: int | None = None
    envelope: VelocityEnvelope | None = None
    envelope_fraction: float = 1.0
    envelope_damping: np.ndarray | float = 0.0

    def __post_init__(self):
        n = len(self.torque)
        for name in ("torque", "rate", "lower", "upper", "guard_stiffness", "guard_damping", "envelope_damping"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape == ():
                value = np.full(n, float(value))
            if value.shape != (n,) or not np.all(np.isfinite(value)):
                raise ValueError(f"safety limit '{name}' must be {n} finite values, got {getattr(self, name)!r}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if np.any(self.torque <= 0) or np.any(self.rate <= 0):
            raise ValueError("safety limits 'torque' and 'rate' must be positive")
        if np.any(self.lower >= self.upper):
            raise ValueError(f"soft joint limits need lower < upper, got {self.lower} and {self.upper}")
        if np.any(self.guard_stiffness < 0) or np.any(self.guard_damping < 0) or np.any(self.envelope_damping < 0):
            raise ValueError("guard_stiffness, guard_damping and envelope_damping must be >= 0")
        if not 0.0 < self.envelope_fraction <= 1.0:
            raise ValueError(f"envelope_fraction must be in (0, 1], got {self.envelope_fraction}")
        if int(self.watchdog_periods) < 1:
            raise ValueError(f"watchdog_periods must be >= 1, got {self.watchdog_periods}")
        latch = self.watchdog_periods if self.watchdog_latch_periods is None else int(self.watchdog_latch_periods)
        object.__setattr__(self, "watchdog_latch_periods", max(latch, int(self.watchdog_periods)))

    @property
    def size(self) -> int:
        """Number of joints."""
        return len(self.torque)


class EnvelopeGuard(OptionModel):
    """The velocity-envelope guard of robots whose file gives an envelope."""

    fraction: float = Field(gt=0.0, le=1.0, description="each joint is kept within this fraction of its bound")
    damping: tuple[NonNegativeFloat, ...] = Field(description="damping of the excess velocity per joint [N*m*s/rad]")


class SafetySettings(OptionModel):
    """config/policy/safety.yaml `safety`: the safety layer's settings (the limits come from the robot file)."""

    torque_rate_limit: PositiveFloat = Field(description="per-joint torque rate limit [N*m/s]")
    soft_limit_margin: NonNegativeFloat = Field(description="soft limits sit this far inside the hard ones [rad]")
    guard_stiffness: tuple[NonNegativeFloat, ...] = Field(description="push-back past a soft limit [N*m/rad]")
    guard_damping: tuple[NonNegativeFloat, ...] = Field(description="outward damping past it [N*m*s/rad]")
    velocity_envelope: EnvelopeGuard | None = Field(None, description="needed for robots whose file gives an "
                                                                     "envelope")
    watchdog_periods: PositiveInt = Field(description="periods without a fresh state before zero torque")
    watchdog_latch_periods: PositiveInt | None = Field(None, description="periods without one before a latched "
                                                                         "fault (default: watchdog_periods)")


def load_safety_limits(robot: str | Path = DEFAULT_ROBOT, safety: str | Path | None = None,
                       **overrides) -> SafetyLimits:
    """The safety limits of a robot: its file's limits plus the safety-layer settings.

    Args:
        robot: robot name in config/robots or a path to a robot YAML (torque and position limits).
        safety: safety settings YAML (default config/policy/safety.yaml, mapping ``safety``: SafetySettings).
        overrides: SafetyLimits fields replacing the files' values (e.g. ``watchdog_periods=2``).
    """
    spec = load_robot(robot)
    safety_path = Path(safety) if safety is not None else config_path("policy", "safety.yaml")
    settings = load_config(safety_path, SafetySettings, "safety")
    margin = settings.soft_limit_margin
    values = dict(torque=spec.torque_limits, rate=settings.torque_rate_limit, lower=spec.position_lower + margin,
                  upper=spec.position_upper - margin, guard_stiffness=settings.guard_stiffness,
                  guard_damping=settings.guard_damping, watchdog_periods=settings.watchdog_periods,
                  watchdog_latch_periods=settings.watchdog_latch_periods)
    if spec.velocity_envelope is not None:
        if settings.velocity_envelope is None:
            raise ConfigError(f"{safety_path}: safety.velocity_envelope is needed: robot {spec.name} has a "
                              "velocity envelope")
        values.update(envelope=spec.velocity_envelope, envelope_fraction=settings.velocity_envelope.fraction,
                      envelope_damping=settings.velocity_envelope.damping)
    values.update(overrides)
    try:
        return SafetyLimits(**values)
    except ValueError as exc:
        raise ConfigError(f"robot {spec.name} with {safety_path}: {exc}") from exc


@dataclass
class SafetyLayer:
    """Stateful command filter; call `filter` exactly once per control period.

    Args:
        limits: the arm's limits.
        period: control period in seconds (sets the per-period rate limit).
    """

    limits: SafetyLimits
    period: float
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    fault: str | None = None
    _previous: np.ndarray = field(init=False, repr=False)
    _stale: int = field(default=0, init=False, repr=False)
    _step: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if not (self.period > 0 and np.isfinite(self.period)):
            raise ValueError(f"period must be a positive number of seconds, got {self.period}")
        self._previous = np.zeros(self.limits.size)
        self._step = self.limits.rate * self.period

    @property
    def ramp_periods(self) -> int:
        """Periods the rate limit needs to bring the largest allowed torque down to zero."""
        return int(np.ceil(np.max(self.limits.torque / self._step) - 1e-9))

    @property
    def previous(self) -> np.ndarray:
        """The last command this layer let through."""
        return self._previous.copy()

    def reset(self) -> None:
        """Clear a latched fault; the next command starts rate limiting from zero torque."""
        self.fault = None
        self._stale = 0
        self._previous = np.zeros(self.limits.size)

    def filter(self, torque: np.ndarray | None, q: np.ndarray, dq: np.ndarray, fresh: bool = True,
               guard: bool = True, elapsed: float | None = None) -> np.ndarray:
        """The safe command for this period.

        Args:
            torque: the policy's torque (without gravity); None when none was computed this period.
            q, dq: the newest joint positions and velocities.
            fresh: whether a new state arrived since the previous period.
            guard: add the joint-limit guard's push-back (False only to wind the command down to zero torque,
                rate-limited, when commanding ends).
            elapsed: seconds since the previous command went out, when commands are not exactly one period
                apart; the rate limit then allows rate * min(elapsed, period) per call.

        Returns:
            A finite torque vector within every limit (zeros while a fault is latched).
        """
        self.counters["periods"] += 1
        self._stale = 0 if fresh else self._stale + 1
        if self.fault is None and self._stale >= self.limits.watchdog_latch_periods:
            self.trip("watchdog")
        if self.fault is None and self._stale >= self.limits.watchdog_periods:
            self.counters["watchdog_zero"] += 1
            self._previous = np.zeros(self.limits.size)
            return self._previous.copy()
        if self.fault is None:
            n = self.limits.size
            q, dq = np.asarray(q, dtype=float), np.asarray(dq, dtype=float)
            command = self._previous if torque is None else np.asarray(torque, dtype=float)
            if q.shape != (n,) or dq.shape != (n,) or command.shape != (n,):
                raise ValueError(f"safety filter expects {n} values for q, dq and torque, "
                                 f"got shapes {q.shape}, {dq.shape}, {command.shape}")
            # v.v is non-finite iff some value is (or one is beyond ~1e154 Nm, rad: also refused, safely).
            values = np.concatenate((q, dq, command))
            if not math.isfinite(values @ values):
                self.trip("nan")
        if self.fault is not None:
            self.counters["faulted"] += 1
            self._previous = np.zeros(self.limits.size)
            return self._previous.copy()
        if guard:
            command, acted = guard_joint_limits(self.limits, command, q, dq)
            self.counters["joint_limit"] += int(acted)
            if self.limits.envelope is not None:
                command, acted = guard_velocity_envelope(self.limits, command, q, dq)
                self.counters["velocity_envelope"] += int(acted)
        step = self._step if elapsed is None else self.limits.rate * min(max(elapsed, 0.0), self.period)
        clipped, limited = limit_torque(self.limits, command, self._previous, step)
        if (clipped != command).any():
            self.counters["clipped"] += 1
        if (limited != clipped).any():
            self.counters["rate_limited"] += 1
        self._previous = limited
        return limited.copy()

    def trip(self, reason: str) -> None:
        """Latch a fault (zero torque until `reset()`); `reason` names it on /diagnostics."""
        if self.fault is None:
            self.fault = reason
            self.counters[reason] = self.counters.get(reason, 0) + 1

    def diagnostics(self) -> dict[str, object]:
        """Counters and fault state as a flat mapping for /diagnostics."""
        return {"fault": self.fault or "none", **self.counters}


def guard_joint_limits(limits: SafetyLimits, command: np.ndarray, q: np.ndarray,
                       dq: np.ndarray) -> tuple[np.ndarray, np.ndarray | bool]:
    """Past a soft limit, no torque driving further out, a spring back and damping of outward motion.

    Arrays are (..., n) for one arm or many; returns the guarded command and whether the guard acted (per arm).
    """
    over, under = q > limits.upper, q < limits.lower
    outside = (over | under).any(axis=-1)
    if not outside.any():
        return command, outside
    k, d = limits.guard_stiffness, limits.guard_damping
    pull_down = np.minimum(command, 0.0) - k * (q - limits.upper) - d * np.maximum(dq, 0.0)
    push_up = np.maximum(command, 0.0) + k * (limits.lower - q) - d * np.minimum(dq, 0.0)
    return np.where(over, pull_down, np.where(under, push_up, command)), outside


def guard_velocity_envelope(limits: SafetyLimits, command: np.ndarray, q: np.ndarray,
                            dq: np.ndarray) -> tuple[np.ndarray, np.ndarray | bool]:
    """A joint faster than `envelope_fraction` of its bound loses the torque driving it faster and is damped back.

    Arrays are (..., n); returns the guarded command and whether the guard acted (per arm).
    """
    lower, upper = limits.envelope.limits(q)
    fraction, d = limits.envelope_fraction, limits.envelope_damping
    fast_up, fast_down = dq > fraction * upper, dq < fraction * lower
    fast = (fast_up | fast_down).any(axis=-1)
    if not fast.any():
        return command, fast
    slow_down = np.minimum(command, 0.0) - d * (dq - fraction * upper)
    slow_up = np.maximum(command, 0.0) - d * (dq - fraction * lower)
    return np.where(fast_up, slow_down, np.where(fast_down, slow_up, command)), fast


def limit_torque(limits: SafetyLimits, command: np.ndarray, previous: np.ndarray,
                 step: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(clipped to the torque limits, then rate limited to within `step` of `previous`); arrays (..., n)."""
    clipped = np.minimum(np.maximum(command, -limits.torque), limits.torque)
    return clipped, np.minimum(np.maximum(clipped, previous - step), previous + step)


class VectorSafetyLayer:
    """The safety layer of many arms stepped together (training's batched environments).

    Per arm, as `SafetyLayer.filter` with a fresh state every period: joint-limit and velocity-envelope
    guards, torque clip, rate limit. A non-finite state or command gives that arm zero torque and is
    reported, so its episode ends as a latched fault ends a real one.

    Args:
        limits: the arm's limits.
        period: control period in seconds.
        num: number of arms.
    """

    def __init__(self, limits: SafetyLimits, period: float, num: int):
        if not (period > 0 and np.isfinite(period)):
            raise ValueError(f"period must be a positive number of seconds, got {period}")
        self.limits = limits
        self._step = limits.rate * period
        self.previous = np.zeros((num, limits.size))

    def reset(self, ids: np.ndarray | slice = slice(None)) -> None:
        """Start these arms' rate limiting from zero torque (at their episodes' start)."""
        self.previous[ids] = 0.0

    def filter(self, torque: np.ndarray, q: np.ndarray, dq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(num, n) torques, positions, velocities -> (safe torques, which arms faulted on a non-finite value)."""
        finite = np.isfinite(torque).all(axis=-1) & np.isfinite(q).all(axis=-1) & np.isfinite(dq).all(axis=-1)
        if not finite.all():
            keep = finite[:, None]
            torque, q, dq = (np.where(keep, x, 0.0) for x in (torque, q, dq))
        command, _ = guard_joint_limits(self.limits, torque, q, dq)
        if self.limits.envelope is not None:
            command, _ = guard_velocity_envelope(self.limits, command, q, dq)
        _, limited = limit_torque(self.limits, command, self.previous, self._step)
        limited[~finite] = 0.0
        self.previous = limited
        return limited.copy(), ~finite
