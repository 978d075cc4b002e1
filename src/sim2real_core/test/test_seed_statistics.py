"""Intervals across training seeds and episodes, and paired differences between rows."""
import numpy as np
import pytest

from sim2real_core.policy.seed_statistics import seed_difference, seed_estimate


def test_the_interval_spans_the_seeds_not_only_the_episodes():
    rng = np.random.default_rng(0)
    # three seeds that learned differently: 90 %, 30 % and 60 % success over 100 episodes each
    seeds = [rng.random(100) < p for p in (0.9, 0.3, 0.6)]
    estimate = seed_estimate(seeds)
    assert estimate.mean == pytest.approx(np.mean([s.mean() for s in seeds]))
    assert estimate.per_seed == tuple(float(s.mean()) for s in seeds)
    pooled_halfwidth = 1.96 * np.sqrt(0.6 * 0.4 / 300)  # what pooling the 300 episodes would claim
    assert estimate.interval[1] - estimate.interval[0] > 4 * pooled_halfwidth
    # 3 seeds: all three draws of the lowest seed have probability 1/27 > 2.5 %, so the bound reaches that seed
    assert min(estimate.per_seed) - 0.05 < estimate.interval[0] < estimate.mean < estimate.interval[1] \
        < max(estimate.per_seed) + 0.05
    # seeds that agree leave only the episode noise
    alike = seed_estimate([rng.random(100) < 0.6 for _ in range(3)])
    assert alike.interval[1] - alike.interval[0] < 0.25


def test_a_difference_shared_by_every_seed_is_significant_when_paired_by_seed():
    rng = np.random.default_rng(1)
    skill = (0.2, 0.5, 0.8, 0.35, 0.65)  # seed k's base policy: rows trained from it share its skill
    better = [rng.random(200) < min(1.0, p + 0.1) for p in skill]
    worse = [rng.random(200) < p for p in skill]
    paired = seed_difference(better, worse)
    assert paired.significant and paired.interval[0] > 0 and paired.mean == pytest.approx(0.1, abs=0.04)
    a, b = seed_estimate(better), seed_estimate(worse)
    assert a.interval[0] < b.interval[1]  # unpaired, the rows' own intervals overlap
    same = seed_difference([rng.random(200) < p for p in skill], [rng.random(200) < p for p in skill])
    assert not same.significant


def test_bad_seed_lists_are_refused():
    with pytest.raises(ValueError, match="seed_estimate: expected one non-empty list"):
        seed_estimate([])
    with pytest.raises(ValueError, match="non-empty list of finite"):
        seed_estimate([[1.0, np.nan]])
    with pytest.raises(ValueError, match="pairs seeds: got 2 and 1"):
        seed_difference([[1.0], [0.0]], [[1.0]])
