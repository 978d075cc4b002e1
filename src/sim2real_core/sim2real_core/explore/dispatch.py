"""Running exploration policies on the target, one episode at a time (pure logic, no ROS).

Following Wagenmaker et al. 2024 (arXiv 2410.20254), data on the target is collected by a *set* of
exploration policies learned in simulation: each episode runs one policy drawn uniformly at random, and every
control step is replaced with probability `random_action_prob` by a random torque, uniform within
`random_torque_fraction` of the robot's torque limits. Every command, policy or random, passes through the
same `SafetyLayer` as the policy server, so a non-finite or oversized torque never reaches the arm.

An episode is driven by the caller (the exploration_dispatcher node, or a test)::

    dispatcher.start_episode()              -> the "start" event
    while not dispatcher.episode_finished:
        tau = dispatcher.command(q, dq)     # one per received joint state
    while not dispatcher.stopped:
        tau = dispatcher.stop_command(q, dq)  # rate-limited ramp to zero torque
    dispatcher.end_episode()                -> the "end" event
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..policy.policy_file import SIDECAR, Policy, PolicyFileError
from ..policy.safety import SafetyLayer
from ..policy.serving import load_servable_policy


class TorqueSource(Protocol):
    """Anything that maps a joint state (and extra inputs) to torque without gravity (`policy_file.Policy`)."""

    def torque(self, q: np.ndarray, dq: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class DispatchConfig:
    """How exploration data is collected.

    Attributes:
        episodes: number of episodes to run.
        episode_steps: control steps per episode.
        random_action_prob: per-step probability of replacing the policy's torque by a random one.
        random_torque_fraction: random torques are uniform in [-f, f] * the torque limits.
        seed: seed of the policy draws and random torques.
        extra_low, extra_high: when given, the policies' extra inputs (e.g. the reach target) are drawn per
            episode uniformly from this box; empty: the policies' defaults.
    """

    episodes: int = 10
    episode_steps: int = 500
    random_action_prob: float = 0.2
    random_torque_fraction: float = 0.1
    seed: int = 0
    extra_low: tuple[float, ...] = ()
    extra_high: tuple[float, ...] = ()

    def __post_init__(self):
        low, high = np.asarray(self.extra_low, dtype=float), np.asarray(self.extra_high, dtype=float)
        if low.shape != high.shape or np.any(low > high) or not np.all(np.isfinite(low)) \
                or not np.all(np.isfinite(high)):
            raise ValueError(f"extra_low and extra_high must be finite boxes of equal size with low <= high, got "
                             f"{list(self.extra_low)} and {list(self.extra_high)}")
        if int(self.episodes) < 1 or int(self.episode_steps) < 1:
            raise ValueError(f"episodes and episode_steps must be >= 1, got {self.episodes} and "
                             f"{self.episode_steps}")
        if not 0.0 <= self.random_action_prob <= 1.0:
            raise ValueError(f"random_action_prob must be in [0, 1], got {self.random_action_prob}")
        if not 0.0 <= self.random_torque_fraction <= 1.0:
            raise ValueError(f"random_torque_fraction must be in [0, 1], got {self.random_torque_fraction}")


@dataclass
class EpisodeRecord:
    """Bookkeeping of one episode."""

    episode: int
    policy: int
    steps: int = 0
    random_steps: int = 0
    stop_steps: int = 0
    fault: str | None = None
    extra: np.ndarray | None = None  # the episode's extra inputs (None: the policies' defaults)
    counters: dict[str, int] = field(default_factory=dict)  # safety counters at the start of the episode


class Dispatcher:
    """Per-episode policy draws, per-step random-action mixing, all through one safety layer.

    Args:
        policies: the exploration policies (at least one, unless random_action_prob is 1).
        safety: the safety layer every command passes through (reset at each episode start).
        config: episodes, steps, mixing.
        names: a label per policy for the episode events (default "0", "1", ...).
    """

    def __init__(self, policies: Sequence[TorqueSource], safety: SafetyLayer, config: DispatchConfig,
                 names: Sequence[str] | None = None):
        if not policies and config.random_action_prob < 1.0:
            raise ValueError("the dispatcher needs at least one policy unless random_action_prob is 1")
        self.policies = list(policies)
        for index, policy in enumerate(self.policies):
            defaults = getattr(policy, "extra_defaults", None)
            if config.extra_low and callable(defaults) and len(defaults()) != len(config.extra_low):
                raise ValueError(f"policy {index} takes {len(defaults())} extra inputs, the extra-input box has "
                                 f"{len(config.extra_low)}")
        self.names = [str(i) for i in range(len(self.policies))] if names is None else list(map(str, names))
        if len(self.names) != len(self.policies):
            raise ValueError(f"{len(self.names)} names for {len(self.policies)} policies")
        self.safety = safety
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.records: list[EpisodeRecord] = []
        self._running = False
        self._stopped = True

    @property
    def current(self) -> EpisodeRecord | None:
        """The episode started last (running or ended), or None before the first."""
        return self.records[-1] if self.records else None

    @property
    def running(self) -> bool:
        """Whether an episode was started and not yet ended."""
        return self._running

    @property
    def done(self) -> bool:
        """Whether every episode has run and ended."""
        return len(self.records) >= self.config.episodes and not self._running

    @property
    def episode_finished(self) -> bool:
        """Whether the running episode has had all its control steps."""
        return self._running and self.records[-1].steps >= self.config.episode_steps

    @property
    def stopped(self) -> bool:
        """Whether the last published command was zero torque (so the arm can be left alone)."""
        return self._stopped

    def start_episode(self) -> dict[str, object]:
        """Draw the episode's policy, reset the safety layer and return the "start" event."""
        if self._running:
            raise RuntimeError(f"episode {self.records[-1].episode} is still running")
        if self.done:
            raise RuntimeError(f"all {self.config.episodes} episodes have run")
        policy = int(self.rng.integers(len(self.policies))) if self.policies else -1
        extra = (self.rng.uniform(self.config.extra_low, self.config.extra_high) if self.config.extra_low
                 else None)
        self.safety.reset()
        self.records.append(EpisodeRecord(episode=len(self.records), policy=policy, extra=extra,
                                          counters=dict(self.safety.counters)))
        self._running = True
        return self._event("start")

    def command(self, q: np.ndarray, dq: np.ndarray, fresh: bool = True, elapsed: float | None = None) -> np.ndarray:
        """The safe torque for one control step of the running episode.

        Args:
            q, dq: the newest joint positions and velocities.
            fresh: whether this state is new since the previous step (False lets the watchdog count).
            elapsed: seconds since the previous command, when not exactly one period (the rate limit's base).

        Returns:
            The torque to publish (finite, within every limit; zeros once the safety layer has faulted).
        """
        record = self._require_running()
        if record.steps >= self.config.episode_steps:
            raise RuntimeError(f"episode {record.episode} already has its {self.config.episode_steps} steps")
        limits = self.safety.limits.torque
        if not self.policies or self.rng.random() < self.config.random_action_prob:
            wanted = self.rng.uniform(-1.0, 1.0, limits.shape) * self.config.random_torque_fraction * limits
            record.random_steps += 1
        else:
            wanted = self._policy_torque(self.policies[record.policy], q, dq, record.extra)
        record.steps += 1
        return self._publishable(wanted, q, dq, fresh, elapsed=elapsed)

    def stop_command(self, q: np.ndarray, dq: np.ndarray, fresh: bool = True,
                     elapsed: float | None = None) -> np.ndarray:
        """One step of the ramp to zero torque after the episode's last step (rate-limited, guarded).

        The stop is over at zero torque. After the longest possible ramp, a command that is still not zero is the
        joint-limit guard holding a sagging arm; it is then wound down to zero as well (rate-limited), so the
        arm is always left with zero torque (an effort controller holds the last command) within two ramps.
        """
        record = self._require_running()
        record.stop_steps += 1
        guard = record.stop_steps <= self.safety.ramp_periods
        return self._publishable(np.zeros(self.safety.limits.size), q, dq, fresh, guard=guard, elapsed=elapsed)

    def missed_period(self, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
        """A control period without a fresh joint state: the safety layer's watchdog counts it.

        Returns the command to repeat (the previous one, or zeros once the watchdog has tripped).
        """
        self._require_running()
        return self._publishable(None, q, dq, fresh=False)

    def end_episode(self) -> dict[str, object]:
        """Close the running episode and return the "end" event."""
        self._require_running()
        self._running = False
        return self._event("end")

    def _require_running(self) -> EpisodeRecord:
        if not self._running:
            raise RuntimeError("no episode is running (call start_episode first)")
        return self.records[-1]

    def _publishable(self, wanted: np.ndarray | None, q: np.ndarray, dq: np.ndarray, fresh: bool,
                     guard: bool = True, elapsed: float | None = None) -> np.ndarray:
        safe = self.safety.filter(wanted, q, dq, fresh=fresh, guard=guard, elapsed=elapsed)
        if self.safety.fault is not None and self.records[-1].fault is None:
            self.records[-1].fault = self.safety.fault
        self._stopped = not np.any(safe)
        return safe

    @staticmethod
    def _policy_torque(policy: TorqueSource, q: np.ndarray, dq: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        try:
            return np.asarray(policy.torque(np.asarray(q, dtype=float), np.asarray(dq, dtype=float), extra),
                              dtype=float)
        except (ValueError, FloatingPointError):
            # An unusable output counts as non-finite: the safety layer zeroes it and latches a fault.
            return np.full(len(q), np.nan)

    def _event(self, kind: str) -> dict[str, object]:
        record = self.records[-1]
        event: dict[str, object] = {
            "event": kind, "episode": record.episode, "episodes": self.config.episodes, "policy": record.policy,
            "policy_name": self.names[record.policy] if record.policy >= 0 else "random",
        }
        if record.extra is not None:
            event["extra_inputs"] = [float(v) for v in record.extra]
        if kind == "end":
            counters = {k: v - record.counters.get(k, 0) for k, v in self.safety.counters.items()}
            event.update(steps=record.steps, random_steps=record.random_steps, stop_steps=record.stop_steps,
                         fault=record.fault or "none", safety=counters)
        return event


def resolve_policy_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Policy folders from a list of policy folders/sidecars or of folders holding policy folders.

    A folder without its own sidecar stands for every subfolder that has one, in name order (the layout
    `sim2real explore-train --out DIR` writes).
    """
    resolved: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir() and not (path / SIDECAR).is_file():
            found = sorted(p.parent for p in path.glob(f"*/{SIDECAR}"))
            if not found:
                raise PolicyFileError(f"{path} holds neither {SIDECAR} nor policy folders with one")
            resolved.extend(found)
        else:
            resolved.append(path)
    return resolved


def task_box(spec: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``TASK.BOX`` (e.g. ``fr3_reach.target``) -> that box of config/tasks/TASK.yaml as (low, high)."""
    from ..sim.tasks import load_task

    task, dot, box = spec.partition(".")
    if not dot or not task or not box:
        raise ValueError(f"a task box is named TASK.BOX, e.g. fr3_reach.target; got {spec!r}")
    boxes = load_task(task).boxes
    if box not in boxes:
        raise ValueError(f"task {task} has no box {box!r}; it has {sorted(boxes)}")
    return boxes[box].low, boxes[box].high


def load_exploration_policies(paths: Sequence[str | os.PathLike], joint_names: Sequence[str]) -> list[Policy]:
    """Load policies (see `resolve_policy_paths`), each checked to be servable on exactly `joint_names`."""
    return [load_servable_policy(path, joint_names) for path in resolve_policy_paths(paths)]
