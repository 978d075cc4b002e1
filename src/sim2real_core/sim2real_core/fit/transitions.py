"""Transitions for fitting: validated (s, a, s') arrays with episode structure, and λ-step windows.

The library takes plain arrays so it does not depend on any dataset file format; `from_dataset` adapts a
`sim2real_core.data.dataset.TransitionDataset` (or anything with the same attributes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TransitionError(ValueError):
    """Transition arrays are malformed (shapes, non-finite values, empty); the message names the array."""


@dataclass
class Transitions:
    """(s, a, s') rows. `ends[i]` is true when row i+1 does not continue row i's trajectory.

    Attributes:
        observations, next_observations: (N, S) states before and after each transition.
        actions: (N, A) actions held for one control period.
        ends: (N,) bool; episode ends (terminal or timeout). A row whose next_observation differs from the
            following row's observation is also treated as an end.
        metadata: free-form information carried into the distribution's provenance.
        previous_actions: (N, A) the action of the period before each row (what a command latency still
            applies); default: the previous row's action within a trajectory, zeros at its start.
    """

    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    ends: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    previous_actions: np.ndarray | None = None

    def __post_init__(self):
        self.observations = _matrix("observations", self.observations)
        self.next_observations = _matrix("next_observations", self.next_observations)
        self.actions = _matrix("actions", self.actions)
        n = self.observations.shape[0]
        if n == 0:
            raise TransitionError("observations is empty: need at least one transition")
        if self.next_observations.shape != self.observations.shape:
            raise TransitionError(f"next_observations has shape {self.next_observations.shape} but observations "
                                  f"has {self.observations.shape}; they must agree")
        if self.actions.shape[0] != n:
            raise TransitionError(f"actions has {self.actions.shape[0]} rows but observations has {n}")
        ends = np.zeros(n, dtype=bool) if self.ends is None else np.asarray(self.ends)
        if ends.shape != (n,):
            raise TransitionError(f"ends has shape {ends.shape}, expected ({n},)")
        ends = ends.astype(bool)
        ends[-1] = True
        gaps = np.any(np.abs(self.next_observations[:-1] - self.observations[1:]) > 1e-9, axis=1)
        self.ends = ends | np.append(gaps, True)
        if self.previous_actions is None:
            previous = np.zeros_like(self.actions)
            previous[1:] = np.where(self.ends[:-1, None], 0.0, self.actions[:-1])
            self.previous_actions = previous
        else:
            self.previous_actions = _matrix("previous_actions", self.previous_actions)
            if self.previous_actions.shape != self.actions.shape:
                raise TransitionError(f"previous_actions has shape {self.previous_actions.shape} but actions has "
                                      f"{self.actions.shape}; they must agree")

    def __len__(self) -> int:
        return self.observations.shape[0]

    @property
    def state_dim(self) -> int:
        """Observation size S."""
        return self.observations.shape[1]

    @property
    def action_dim(self) -> int:
        """Action size A."""
        return self.actions.shape[1]

    def window_starts(self, horizon: int) -> np.ndarray:
        """Rows t from which `horizon` consecutive transitions stay in one trajectory."""
        if horizon < 1:
            raise ValueError(f"horizon (lambda) must be >= 1, got {horizon}")
        n = len(self)
        if horizon == 1:
            return np.arange(n)
        # a window t..t+h-1 is valid when none of rows t..t+h-2 ends the trajectory
        blocked = np.concatenate([[0], np.cumsum(self.ends.astype(int))])
        starts = np.arange(max(n - horizon + 1, 0))
        ok = blocked[starts + horizon - 1] - blocked[starts] == 0
        return starts[ok]

    def windows(self, starts: np.ndarray, horizon: int,
                depth: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(s_t, [a_t..a_{t+h-1}], s'_{t+h-1}, [a_{t-1}..a_{t-depth}]) for each start: (M, S), (M, h, A), (M, S),
        (M, depth, A); past actions before the trajectory's start are zeros."""
        starts = np.asarray(starts, dtype=int)
        idx = starts[:, None] + np.arange(horizon)[None, :]
        n = len(self)
        begins = np.maximum.accumulate(np.where(np.r_[True, self.ends[:-1]], np.arange(n), 0))
        rows = starts[:, None] - np.arange(depth)[None, :]  # previous_actions[t - k] is a_{t-1-k}
        inside = rows >= begins[starts][:, None]
        past = np.where(inside[:, :, None], self.previous_actions[np.maximum(rows, 0)], 0.0)
        return self.observations[starts], self.actions[idx], self.next_observations[idx[:, -1]], past

    def subset(self, rows: np.ndarray) -> "Transitions":
        """The transitions at `rows` (kept in order; trajectory breaks are recomputed)."""
        rows = np.asarray(rows, dtype=int)
        return Transitions(self.observations[rows], self.actions[rows], self.next_observations[rows],
                           self.ends[rows], dict(self.metadata), self.previous_actions[rows])


def from_dataset(dataset) -> Transitions:
    """Transitions of a TransitionDataset (observations, actions, next_observations, terminals, timeouts)."""
    ends = np.asarray(dataset.terminals, dtype=bool) | np.asarray(dataset.timeouts, dtype=bool)
    return Transitions(dataset.observations, dataset.actions, dataset.next_observations, ends,
                       dict(getattr(dataset, "metadata", {}) or {}))


def _matrix(name: str, values) -> np.ndarray:
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TransitionError(f"{name} is not a numeric array ({exc})") from None
    if values.ndim != 2:
        raise TransitionError(f"{name} has shape {values.shape}, expected (N, dim)")
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise TransitionError(f"{name} row {row} column {col} is {values[row, col]}; values must be finite")
    return values
