"""Results over several training seeds: means with 95 % intervals across seeds and episodes, and differences.

A policy's score varies with its training seed and with the evaluation episodes. The interval here is a
hierarchical bootstrap: each resample draws the seeds with replacement, then each drawn seed's episodes with
replacement, and takes the mean over seeds of the per-seed episode means. With few seeds the interval is
dominated by the seed draw (3 seeds give 10 distinct seed multisets), which is the honest answer.

Two rows trained with the same seeds (seed k of every row starts from the same base policy) are compared paired
by seed: each resample draws one set of seed indices for both rows. A difference is called significant when
its 95 % interval excludes zero (no correction across several comparisons).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESAMPLES = 10_000


@dataclass(frozen=True)
class SeedEstimate:
    """Mean over seeds of per-seed episode means, its 95 % interval, and the per-seed means."""

    mean: float
    interval: tuple[float, float]
    per_seed: tuple[float, ...]


@dataclass(frozen=True)
class SeedDifference:
    """Mean difference a - b (paired by seed), its 95 % interval, and whether the interval excludes zero."""

    mean: float
    interval: tuple[float, float]

    @property
    def significant(self) -> bool:
        """The 95 % interval excludes zero."""
        return self.interval[0] > 0.0 or self.interval[1] < 0.0


def _episodes(per_seed: Sequence[Sequence[float]], what: str) -> list[np.ndarray]:
    arrays = [np.asarray(values, dtype=float) for values in per_seed]
    if not arrays or any(a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) for a in arrays):
        raise ValueError(f"{what}: expected one non-empty list of finite episode values per seed")
    return arrays


def _resampled_means(arrays: list[np.ndarray], seeds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each resample (row of `seeds`: seed indices), the mean over those seeds of resampled episode means."""
    episode_means = np.empty(seeds.shape)
    for k, values in enumerate(arrays):
        rows, cols = np.nonzero(seeds == k)
        if rows.size:
            draws = rng.integers(0, values.size, (rows.size, values.size))
            episode_means[rows, cols] = values[draws].mean(axis=1)
    return episode_means.mean(axis=1)


def seed_estimate(per_seed: Sequence[Sequence[float]], seed: int = 0) -> SeedEstimate:
    """Mean and hierarchical-bootstrap 95 % interval of episode values (returns, 0/1 successes) per seed."""
    arrays = _episodes(per_seed, "seed_estimate")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, len(arrays), (RESAMPLES, len(arrays)))
    samples = _resampled_means(arrays, seeds, rng)
    per_seed_means = tuple(float(a.mean()) for a in arrays)
    low, high = np.percentile(samples, [2.5, 97.5])
    return SeedEstimate(float(np.mean(per_seed_means)), (float(low), float(high)), per_seed_means)


def seed_difference(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], seed: int = 0) -> SeedDifference:
    """Difference of the seed means of a and b, paired by seed index, with its 95 % bootstrap interval."""
    first, second = _episodes(a, "seed_difference a"), _episodes(b, "seed_difference b")
    if len(first) != len(second):
        raise ValueError(f"seed_difference pairs seeds: got {len(first)} and {len(second)} seeds")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, len(first), (RESAMPLES, len(first)))
    samples = _resampled_means(first, seeds, rng) - _resampled_means(second, seeds, rng)
    low, high = np.percentile(samples, [2.5, 97.5])
    mean = float(np.mean([x.mean() for x in first]) - np.mean([y.mean() for y in second]))
    return SeedDifference(mean, (float(low), float(high)))
