"""Fitting objectives evaluated on shards of the transitions, each held by a worker (cluster.Cluster actors).

A shard's windows are sent once, when its actor starts. A DROPO evaluation sends only the K parameter samples and
ε and gathers one log-likelihood per transition; a SysID evaluation sends the parameter vectors of a Jacobian and
gathers each transition's residuals. The samples are common random numbers shared by every transition, so each
transition's value, and the fit, do not depend on how the transitions are sharded.
"""
from __future__ import annotations

import numpy as np

from ..cluster import Cluster
from ..sim.parameters import ParameterSpace
from .engine import BatchPredictor, PinnedPredictor, System, gaussian_loglik


def windows_loglik(predictor: BatchPredictor | PinnedPredictor, observations: np.ndarray, actions: np.ndarray,
                   targets: np.ndarray, previous: np.ndarray, scale: np.ndarray, samples: np.ndarray,
                   epsilon: float | np.ndarray) -> np.ndarray:
    """Per-window log-likelihoods (B,) of the targets under K parameter samples (K, dim), the same K for all."""
    n, k = len(observations), samples.shape[0]
    predicted = predictor.predict(np.repeat(observations, k, axis=0), np.repeat(actions, k, axis=0),
                                  np.tile(samples, (n, 1)), np.repeat(previous, k, axis=0))
    return gaussian_loglik(predicted.reshape(n, k, -1) / scale, targets / scale, epsilon)


def window_residuals(predictor: BatchPredictor | PinnedPredictor, observations: np.ndarray, actions: np.ndarray,
                     targets: np.ndarray, previous: np.ndarray, scale: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Scaled residuals (P, B, S), predicted minus real, of every window under each of P parameter vectors."""
    p, n = params.shape[0], len(observations)
    predicted = predictor.predict(np.tile(observations, (p, 1)), np.tile(actions, (p, 1, 1)),
                                  np.repeat(params, n, axis=0), np.tile(previous, (p, 1, 1)))
    return (predicted.reshape(p, n, -1) - targets[None]) / scale


class WindowShard:
    """One shard of windows (start states, action sequences, targets, previous actions) on its own predictor over
    `space`, with the `pinned` parameters held (fit.methods.pin_integers)."""

    def __init__(self, system: System, space: ParameterSpace, pinned: dict[str, float], observations: np.ndarray,
                 actions: np.ndarray, targets: np.ndarray, previous: np.ndarray, scale: np.ndarray, nthread: int = 1):
        self.predictor = BatchPredictor(system, space, nthread=nthread)
        if pinned:
            self.predictor = PinnedPredictor(self.predictor, pinned)
        self.windows = (observations, actions, targets, previous)
        self.scale = scale

    def loglik(self, samples: np.ndarray, epsilon: float | np.ndarray) -> np.ndarray:
        """Per-window log-likelihoods of this shard."""
        return windows_loglik(self.predictor, *self.windows, self.scale, samples, epsilon)

    def residuals(self, params: np.ndarray) -> np.ndarray:
        """Scaled residuals (P, windows, S) of this shard."""
        return window_residuals(self.predictor, *self.windows, self.scale, params)

    def node(self) -> str:
        """The Ray node this shard lives on ('local' in process)."""
        try:
            import ray

            return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        except ImportError:
            return "local"


class ShardedWindows:
    """The windows split into `shards` contiguous shards on `cluster`'s actors.

    Args:
      cluster: where the shards live.
      shards: number of shards (each one actor, one CPU).
      system, space, pinned: the model, its parameters, and those held at a value (the others are fitted).
      windows: (observations, actions, targets, previous) of every window.
      scale: the state unit of the likelihood.
    """

    def __init__(self, cluster: Cluster, shards: int, system: System, space: ParameterSpace,
                 pinned: dict[str, float], windows: tuple, scale: np.ndarray):
        n = len(windows[0])
        if not 1 <= shards <= n:
            raise ValueError(f"shards must be between 1 and the {n} windows, got {shards}")
        bounds = np.linspace(0, n, shards + 1).astype(int)
        self.cluster = cluster
        self.sizes = np.diff(bounds)
        self.steps = 0  # physics steps the shards took
        self._steps_per_row = windows[1].shape[1] * system.frame_skip  # control periods per window x substeps
        parts = [(system, space, pinned, *(part[lo:hi] for part in windows), scale)
                 for lo, hi in zip(bounds[:-1], bounds[1:])]
        self.actors = cluster.actors(WindowShard, parts)

    def loglik(self, samples: np.ndarray, epsilon: float | np.ndarray) -> np.ndarray:
        """Per-window log-likelihoods (B,), in window order."""
        self.steps += int(self.sizes.sum()) * samples.shape[0] * self._steps_per_row
        return np.concatenate(self.cluster.call(self.actors, "loglik", samples, epsilon))

    def residuals(self, params: np.ndarray) -> np.ndarray:
        """Scaled residuals (P, B, S), in window order."""
        self.steps += int(self.sizes.sum()) * params.shape[0] * self._steps_per_row
        return np.concatenate(self.cluster.call(self.actors, "residuals", params), axis=1)

    @classmethod
    def of(cls, predictor: BatchPredictor | PinnedPredictor, cluster: Cluster | None, shards: int, windows: tuple,
           scale: np.ndarray) -> "ShardedWindows":
        """The windows on `shards` (at most one per window) workers of `cluster` (default: this process), each with
        a predictor like `predictor` (its space and pins)."""
        pinned = predictor.pinned if isinstance(predictor, PinnedPredictor) else {}
        space = predictor.root.space if isinstance(predictor, PinnedPredictor) else predictor.space
        return cls(cluster or Cluster(workers=0), min(shards, len(windows[0])), predictor.system, space, pinned,
                   windows, scale)

    def nodes(self) -> list[str]:
        """The node of every shard."""
        return self.cluster.call(self.actors, "node")
