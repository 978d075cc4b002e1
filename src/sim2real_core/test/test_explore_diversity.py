"""Exploration-set training: the discriminator bonus, its threshold switch, a K=2 training smoke, coverage."""
import argparse
import json

import numpy as np
import pytest
import torch
import yaml

from sim2real_core.explore import train_command
from sim2real_core.explore.coverage import Visits, coverage_measures, cumulative_cells
from sim2real_core.explore.dispatch import load_exploration_policies
from sim2real_core.explore.diversity import (
    Discriminator,
    DiversityBonus,
    DiversityConfig,
    DiversityWrapper,
    distinguishability,
    train_exploration_policies,
)
from sim2real_core.policy.ppo import PPOConfig
from sim2real_core.policy.tasks import make_task

# Tiny networks: one thread avoids oversubscribing a busy 2-core machine (16x slower with two here).
torch.set_num_threads(1)


def blob(center, n=2000, seed=0):
    return np.random.default_rng(seed).normal(center, 0.02, size=(n, 3))


def make_bonus(discriminator, threshold=-10.0, window=4, classes=2, index=1, alpha=1.0):
    return DiversityBonus(discriminator, index=index, classes=classes, alpha=alpha, threshold=threshold,
                          window=window, update_every=10**9)


def test_bonus_is_off_below_the_threshold_and_on_above():
    disc = Discriminator(2, 3, seed=0)
    disc.replace(0, blob([0.3, 0.0, 0.4]))
    disc.add(1, blob([0.5, 0.2, 0.6], seed=1))
    disc.train(2, batches=200, batch_size=128)
    bonus = make_bonus(disc, threshold=-10.0, window=4)
    far = np.array([0.5, 0.2, 0.6])
    for task_return in (-50.0, -40.0, -5.0, -30.0):  # median -35 < -10
        bonus.episode_end(task_return, terminated=False)
    assert not bonus.active and bonus.reward(far) == 0.0
    # Good returns, but the episodes were cut short (velocity reflex): they count as failing.
    for _ in range(4):
        bonus.episode_end(-1.0, terminated=True)
    assert not bonus.active and bonus.reward(far) == 0.0
    for task_return in (-5.0, -8.0, -9.0):  # last four: -1 (cut short), -5, -8, -9 -> median -8.5
        bonus.episode_end(task_return, terminated=False)
    assert bonus.active and bonus.switched_on_at == bonus.steps
    assert bonus.reward(far) > 0.5 * np.log(2)
    bonus.episode_end(-100.0, terminated=True)
    assert bonus.active  # stays on once switched on


def test_distinct_policies_earn_more_bonus_than_identical_ones():
    bonuses = {}
    for case, center in (("distinct", [0.55, 0.25, 0.3]), ("identical", [0.3, 0.0, 0.4])):
        disc = Discriminator(2, 3, seed=0)
        disc.replace(0, blob([0.3, 0.0, 0.4]))
        disc.add(1, blob(center, seed=1))
        disc.train(2, batches=200, batch_size=128)
        bonus = make_bonus(disc, threshold=-np.inf, window=1)
        bonus.episode_end(0.0, terminated=False)
        bonuses[case] = np.mean([bonus.reward(x) for x in blob(center, n=200, seed=2)])
    # Distinguishable: log q ~ 0, bonus ~ log 2. Identical: q ~ 1/2, bonus ~ 0.
    assert bonuses["distinct"] > 0.6 and abs(bonuses["identical"]) < 0.15, bonuses


def test_distinguishability_separates_distinct_from_identical_state_sets():
    config = DiversityConfig(update_batches=20)
    distinct = distinguishability([blob([0.3, 0.0, 0.4]), blob([0.5, 0.2, 0.6], seed=1)], config)
    same = distinguishability([blob([0.3, 0.0, 0.4]), blob([0.3, 0.0, 0.4], seed=1)], config)
    assert distinct > 0.95 and abs(same - 0.5) < 0.1, (distinct, same)


def test_a_single_policy_gets_no_bonus():
    disc = Discriminator(3, 3, seed=0)
    bonus = make_bonus(disc, threshold=-np.inf, window=1, classes=1, index=0)
    bonus.episode_end(0.0, terminated=False)
    assert bonus.active and bonus.reward(np.zeros(3)) == 0.0


def test_wrapper_adds_the_bonus_to_the_fr3_reach_reward():
    task = make_task("reach", "none")
    disc = Discriminator(2, 3, seed=0)
    disc.replace(0, blob([2.0, 2.0, 2.0]))  # policy 0 "lives" far outside the workspace
    bonus = DiversityBonus(disc, index=1, classes=2, alpha=0.5, threshold=-np.inf, window=1, update_every=64,
                           update_batches=50, batch_size=64)
    env = DiversityWrapper(task.wrapped(), bonus, "ee")
    env.reset(seed=0)
    rewards = []
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        assert reward == pytest.approx(info["task_reward"] + info["diversity_bonus"])
        rewards.append(info["diversity_bonus"])
        if terminated or truncated:
            env.reset()
    assert bonus.steps == 200 and len(disc.buffers[1]) == 200
    assert rewards[0] == 0.0  # off until an episode reached the threshold
    env.unwrapped.episode_steps = 1  # end the episode now: the threshold (-inf) is reached
    env.step(np.zeros(7, dtype=np.float32))
    assert bonus.active
    _, _, _, _, info = env.step(np.zeros(7, dtype=np.float32))
    assert info["diversity_bonus"] > 0.25  # near 0.5 * log 2 for states that are clearly policy 1's


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="k must be"):
        DiversityConfig(k=0)
    with pytest.raises(ValueError, match="features"):
        DiversityConfig(features="pixels")
    with pytest.raises(ValueError, match="alpha"):
        DiversityConfig(alpha=-1.0)
    with pytest.raises(ValueError, match="need an FR3 task"):
        train_exploration_policies(make_task("pendulum"), "unused", DiversityConfig(k=1, steps=1))


def test_coverage_measures_count_cells_and_entropy():
    ee = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.11, 0.01, 0.01], [0.31, 0.01, 0.01]])
    visits = Visits(ee, np.zeros((4, 2)))
    measures = coverage_measures(visits, 0.05, np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert measures["ee_cells"] == 3 and measures["states"] == 4
    p = np.array([2, 1, 1]) / 4
    assert measures["ee_entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert measures["joint_entropy"] == 0.0  # every q in one bin
    np.testing.assert_array_equal(cumulative_cells(ee, 0.05), [1, 1, 2, 3])
    region = (np.array([0.1, 0.0, 0.0]), np.array([0.2, 0.05, 0.05]))
    assert coverage_measures(visits, 0.05, -np.ones(2), np.ones(2), region)["task_cells"] == 1


def test_explore_train_command_writes_a_loadable_exploration_set(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--k", "2", "--steps", "256", "--envs", "1",
                              "--threshold=-1e9", "--coverage-episodes", "1", "--no-progress"])
    assert train_command.run(args) == 0
    policies = load_exploration_policies([tmp_path], [f"fr3_joint{i}" for i in range(1, 8)])
    assert len(policies) == 2
    for i, policy in enumerate(policies):
        sidecar = yaml.safe_load((tmp_path / f"explore_{i}" / "policy.yaml").read_text())
        assert sidecar["training"]["description"] == f"exploration policy {i} of 2"
        assert sidecar["training"]["distribution"] == "uniform"
        assert np.all(np.isfinite(policy.torque(policy.spec.obs_mean[:7], np.zeros(7))))
    summary = json.loads((tmp_path / "exploration.json").read_text())
    assert [p["index"] for p in summary["policies"]] == [0, 1] and 0 <= summary["distinguishability"] <= 1
    coverage = json.loads((tmp_path / "coverage.json").read_text())
    assert len(coverage["schemes"]) == 3 and all(s["states"] > 0 and "task_cells" in s
                                                 for s in coverage["schemes"].values())
    assert (tmp_path / "coverage.png").stat().st_size > 10_000
    assert "coverage plot" in capsys.readouterr().out


def test_training_is_reproducible_for_a_seed(tmp_path):
    task = make_task("reach", "uniform")
    config = DiversityConfig(k=2, steps=256, threshold=-1e9, window=1, update_every=64, reference_episodes=1)
    ppo = PPOConfig(num_envs=1, rollout_steps=256, epochs=2, hidden=(16,))
    digests = []
    for run in ("a", "b"):
        trained = train_exploration_policies(task, tmp_path / run, config, ppo, progress=False)
        digests.append([yaml.safe_load((p / "policy.yaml").read_text())["sha256"] for p in trained.policy_paths])
    assert digests[0] == digests[1] and digests[0][0] != digests[0][1]
