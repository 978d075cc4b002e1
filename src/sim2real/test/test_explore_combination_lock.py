"""Combination lock: dynamics, the ζ-greedy success law, and exploration transfer versus direct transfer."""
import numpy as np
import pytest

from sim2real.studies.combination_lock import (
    FAIL,
    CombinationLock,
    TabularLockLearner,
    episode_success_probability,
    exploration_policies,
    lock_study,
    lock_table_markdown,
    optimal_policy,
    plot_lock_study,
    run_episodes,
    shifted_lock,
    sim_coverage,
)


def test_dynamics_advance_fail_absorb_and_reward_only_at_the_end():
    lock = CombinationLock((1, 0, 1))
    assert lock.step(0, 0, 1) == (1, 0.0)
    assert lock.step(0, 0, 0) == (FAIL, 0.0)
    assert lock.step(1, FAIL, 0) == (FAIL, 0.0)  # failure is absorbing, even with the correct action
    assert lock.step(2, 2, 1) == (3, 1.0)
    assert lock.episode_return([1, 0, 1]) == 1.0
    assert lock.episode_return([1, 0, 0]) == 0.0
    assert lock.episode_return([0, 0, 1]) == 0.0
    np.testing.assert_array_equal(optimal_policy(lock), [1, 0, 1])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"code\[1\] = 3"):
        CombinationLock((0, 3), n_actions=2)
    lock = CombinationLock((0, 1))
    with pytest.raises(ValueError, match="state 1 at step 0"):
        lock.step(0, 1, 0)
    with pytest.raises(ValueError, match="mismatch step 5"):
        shifted_lock(lock, [5])
    with pytest.raises(ValueError, match="expected 2 actions"):
        lock.episode_return([0])


def test_shifted_lock_changes_exactly_the_mismatch_steps():
    sim = CombinationLock((0, 1, 2, 0), n_actions=3)
    assert shifted_lock(sim).code == (0, 2, 0, 1)
    assert shifted_lock(sim, [2], offset=2).code == (0, 1, 1, 0)


@pytest.mark.parametrize("horizon", [3, 4])
def test_zeta_greedy_success_law_measured(horizon):
    zeta = 0.5
    sim = CombinationLock(tuple([0] * horizon))
    target = shifted_lock(sim)  # drifted: every step but the first differs
    law = (zeta / 2) ** (horizon - 1) * (1 - zeta / 2)
    assert episode_success_probability(target, optimal_policy(sim), zeta) == pytest.approx(law)
    n = 400_000
    batch = run_episodes(target, optimal_policy(sim), zeta, n, np.random.default_rng(horizon))
    measured = batch.rewards[:, -1].mean()
    assert abs(measured - law) < 4 * np.sqrt(law * (1 - law) / n)


def test_exploration_set_covers_every_sim_state_action_pair():
    sim = CombinationLock((1, 0, 2, 2, 1), n_actions=3)
    policies = exploration_policies(sim)
    assert policies.shape == (5 * 2 + 1, 5)
    assert sim_coverage(sim, policies) == 1.0
    assert sim_coverage(sim, optimal_policy(sim)[None]) == pytest.approx(5 / 15)


def test_learner_solves_from_one_success_and_not_from_failures():
    sim = CombinationLock((0, 0, 0, 0))
    target = shifted_lock(sim)
    rng = np.random.default_rng(0)
    failing = run_episodes(target, np.array([0, 1, 1, 0]), 0.0, 5, rng)
    learner = TabularLockLearner(4, 2, optimal_policy(sim))
    learner.add(failing)
    assert target.episode_return(learner.greedy_policy()) == 0.0
    learner.add(run_episodes(target, np.array(target.code), 0.0, 1, rng))
    assert target.episode_return(learner.greedy_policy()) == 1.0


def test_exploration_transfer_beats_direct_transfer_and_the_gap_grows(tmp_path):
    rows = {r["horizon"]: r for r in lock_study(horizons=(4, 8), seeds=5, budget=100_000)}
    small, large = rows[4], rows[8]
    assert small["explore_solved"] == large["explore_solved"] == 5
    assert large["direct_mean_episodes"] > 100 * large["explore_mean_episodes"]
    gap_small = small["direct_mean_episodes"] / small["explore_mean_episodes"]
    gap_large = large["direct_mean_episodes"] / large["explore_mean_episodes"]
    assert gap_large > 10 * gap_small
    markdown = lock_table_markdown(list(rows.values()))
    assert markdown.count("\n| ") == 2 and "\n| 8 | " in markdown
    assert plot_lock_study(list(rows.values()), tmp_path / "lock.png").stat().st_size > 1000


def test_scattered_mismatches_break_the_coverage_assumption():
    sim = CombinationLock(tuple([0] * 8))
    drifted, scattered = shifted_lock(sim), shifted_lock(sim, [1, 3, 5, 7])
    policies = exploration_policies(sim)
    assert episode_success_probability(drifted, policies, 0.1) > 0.05
    assert episode_success_probability(scattered, policies, 0.1) < 1e-3
