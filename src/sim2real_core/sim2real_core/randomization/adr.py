"""Automatic domain randomization (OpenAI et al., "Solving Rubik's Cube with a Robot Hand", 2019): each
parameter's range starts at its nominal value and grows while the policy performs well at its edge.

Every episode draws each parameter uniformly from its current range, except that with probability
`boundary_probability` one parameter, chosen at random, is set to one of its two edges (a probe). The probe's
performance joins that edge's buffer; when the buffer holds `buffer_size` results, their mean decides: at or above
`high_threshold` the edge moves one step outward, at or below `low_threshold` one step back toward the nominal
value, and the buffer is emptied. No target data is used. The ranges, as a uniform Distribution, are what the
policy is trained under.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..sim.distributions import Distribution
from ..sim.parameters import ParameterSpace

LOW, HIGH = 0, 1  # the two edges of a range


@dataclass(frozen=True)
class Probe:
    """An episode that set parameter `index` to the `edge` (LOW or HIGH) of its range."""

    index: int
    edge: int


@dataclass
class ADRConfig:
    """Settings of automatic domain randomization.

    Args:
      step: how far an edge moves, as a share of the parameter's bound width.
      low_threshold, high_threshold: mean probe performance at or below which an edge moves back, at or above
        which it moves out.
      buffer_size: probe results per edge before a decision.
      boundary_probability: share of episodes that probe an edge.
    """

    step: float = 0.05
    low_threshold: float = 0.2
    high_threshold: float = 0.8
    buffer_size: int = 10
    boundary_probability: float = 0.5

    def __post_init__(self):
        if not 0 < self.step <= 1:
            raise ValueError(f"step must be in (0, 1] of the bound width, got {self.step}")
        if not self.low_threshold < self.high_threshold:
            raise ValueError(f"low_threshold ({self.low_threshold}) must be below high_threshold "
                             f"({self.high_threshold})")
        if self.buffer_size < 1 or not 0 < self.boundary_probability <= 1:
            raise ValueError(f"buffer_size must be >= 1 and boundary_probability in (0, 1], got "
                             f"{self.buffer_size} and {self.boundary_probability}")


@dataclass
class AutomaticDomainRandomization:
    """The ranges of every parameter of `space`, grown and shrunk by probe performance (see the module docstring).

    Args:
      space: the parameters; ranges start at their nominal values and stay within their bounds.
      config: step, thresholds, buffer size and probe share.
      seed: seed of the draws.
    """

    space: ParameterSpace
    config: ADRConfig = field(default_factory=ADRConfig)
    seed: int = 0

    def __post_init__(self):
        self.low = self.space.nominal.copy()
        self.high = self.space.nominal.copy()
        self.rng = np.random.default_rng(self.seed)
        self._buffers: dict[Probe, list[float]] = {}
        self._running: dict[int, Probe | None] = {}  # the probe of each environment's current episode
        self.decisions: list[dict] = []  # every edge move: parameter, edge, mean performance, new value

    def sample(self, rng: np.random.Generator | None = None) -> tuple[np.ndarray, Probe | None]:
        """One episode's parameter vector, and the probe it is (None when it probes no edge), drawn with `rng`
        (default: this object's, from `seed`)."""
        rng = rng or self.rng
        values = rng.uniform(self.low, self.high)
        probe = None
        if rng.random() < self.config.boundary_probability:
            probe = Probe(int(rng.integers(self.space.dim)), int(rng.integers(2)))
            values[probe.index] = (self.low, self.high)[probe.edge][probe.index]
        return self.space.clip(values), probe

    def record(self, probe: Probe | None, performance: float) -> None:
        """The performance of an episode sample() drew; a full edge buffer moves its edge (or not) and empties."""
        if probe is None:
            return
        if not np.isfinite(performance):
            raise ValueError(f"performance must be finite, got {performance}")
        buffer = self._buffers.setdefault(probe, [])
        buffer.append(float(performance))
        if len(buffer) < self.config.buffer_size:
            return
        mean = float(np.mean(buffer))
        buffer.clear()
        i, step = probe.index, self.config.step * (self.space.high[probe.index] - self.space.low[probe.index])
        outward = 1.0 if mean >= self.config.high_threshold else -1.0 if mean <= self.config.low_threshold else 0.0
        if outward == 0.0:
            return
        nominal = self.space.nominal[i]
        if probe.edge == HIGH:
            self.high[i] = float(np.clip(self.high[i] + outward * step, nominal, self.space.high[i]))
        else:
            self.low[i] = float(np.clip(self.low[i] - outward * step, self.space.low[i], nominal))
        self.decisions.append({"parameter": self.space.names[i], "edge": "high" if probe.edge == HIGH else "low",
                               "mean_performance": mean, "value": (self.low, self.high)[probe.edge][i]})

    def start(self, ids: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Parameter vectors (len(ids), dim) for episodes starting in environments `ids`, each drawn by
        sample(rng) (the environments' generator, so that the draws follow their seed); their probes are remembered
        until `finish`."""
        rows = []
        for env in np.asarray(ids, dtype=int).tolist():
            values, self._running[env] = self.sample(rng)
            rows.append(values)
        return np.array(rows).reshape(-1, self.space.dim)

    def finish(self, ids: np.ndarray, performance: np.ndarray) -> None:
        """Record the performance of the episodes that ended in environments `ids` (those `start` began)."""
        for env, value in zip(np.asarray(ids, dtype=int).tolist(), np.asarray(performance, dtype=float).tolist()):
            self.record(self._running.pop(env, None), value)

    def distribution(self) -> Distribution:
        """The current ranges as a uniform distribution (what the policy trains under)."""
        return Distribution.uniform(self.space, self.low, self.high, method="adr")

    def widths(self) -> dict[str, float]:
        """Each range's width as a share of its bound width."""
        return dict(zip(self.space.names, ((self.high - self.low) / (self.space.high - self.space.low)).tolist()))

    def summary(self) -> dict:
        """What training records: the settings, each range's width share, and how many edge moves there were."""
        return {"config": dict(vars(self.config)), "widths": self.widths(), "edge_moves": len(self.decisions)}
