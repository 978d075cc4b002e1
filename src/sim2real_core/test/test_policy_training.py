"""PPO learns Pendulum-v1; the written policy file reproduces the trained behaviour; evaluation statistics."""
import json

import gymnasium as gym
import numpy as np
import pytest

from sim2real_core.policy.evaluation import evaluate, summarise
from sim2real_core.policy.ppo import PPOConfig, RunningMeanStd, train_ppo
from sim2real_core.policy.tasks import gym_task
from sim2real_core.policy.training import train_policy


@pytest.mark.slow
def test_ppo_learns_pendulum_and_the_policy_file_reproduces_it(tmp_path):
    task = gym_task("Pendulum-v1")
    config = PPOConfig(num_envs=8, rollout_steps=128, gamma=0.9, learning_rate=1e-3, seed=0)
    outcome = train_policy(task, 40_000, tmp_path / "pendulum", config, progress=False)
    untrained = train_policy(task, 1, tmp_path / "untrained", config, progress=False)
    env = lambda: gym.make("Pendulum-v1")  # noqa: E731
    trained = evaluate(outcome.policy, env, episodes=10, seed=100)
    baseline = evaluate(untrained.policy, env, episodes=10, seed=100)
    # A random/untrained pendulum policy scores about -1200; swinging up and balancing scores above -400.
    assert trained.mean_return > -400 > baseline.mean_return, (trained.summary(), baseline.summary())
    assert trained.return_ci[0] <= trained.mean_return <= trained.return_ci[1]
    assert (tmp_path / "pendulum" / "curve.png").stat().st_size > 0
    curve = json.loads((tmp_path / "pendulum" / "curve.json").read_text())["return"]
    assert curve[-1][1] > curve[0][1]
    assert outcome.policy.spec.training["seed"] == 0 and outcome.policy.spec.layout == "vector_v1"


def test_running_statistics_match_numpy():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 2))
    stats = RunningMeanStd((2,))
    for chunk in np.split(data, 10):
        stats.update(chunk)
    np.testing.assert_allclose(stats.mean, data.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats.std, data.std(0), rtol=1e-3)


def test_success_interval_is_wilson_and_return_interval_brackets_the_mean():
    result = summarise([1.0, 2.0, 3.0, 4.0], [True, True, True, False])
    assert result.success_rate == 0.75
    low, high = result.success_ci
    # Wilson 95 % interval for 3/4 (z = 1.96).
    z, n, p = 1.959964, 4, 0.75
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert low == pytest.approx(centre - half, abs=1e-4) and high == pytest.approx(centre + half, abs=1e-4)
    assert result.return_ci[0] < 2.5 < result.return_ci[1]
    assert summarise([1.0], None).success_rate is None


def test_ppo_refuses_an_unnormalised_action_space():
    with pytest.raises(ValueError, match="Box\\(-1, 1\\)"):
        train_ppo(lambda: gym.make("Pendulum-v1"), 10, PPOConfig(num_envs=1), progress=False)
