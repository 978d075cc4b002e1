"""PPO learns Pendulum-v1; the written policy file reproduces the trained behaviour; evaluation statistics."""
import copy
import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

from sim2real_core.policy.evaluation import evaluate, summarise
from sim2real_core.policy.policy_file import ActionHead
from sim2real_core.policy.ppo import (
    ActorCritic,
    NumpyActorCritic,
    PPOConfig,
    RunningMeanStd,
    load_checkpoint,
    save_checkpoint,
    train_ppo,
)
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

    # Fine-tuning starts where the trained policy is, not from scratch: its first episodes already swing up.
    tuned = train_policy(task, 2048, tmp_path / "tuned", config, progress=False, start=tmp_path / "pendulum")
    assert tuned.result.steps == outcome.result.steps + 2048
    # (its first rollout samples exploration noise, so it scores below the deterministic evaluation: -445 here)
    assert tuned.result.curve[0][1] > (trained.mean_return + baseline.mean_return) / 2, tuned.result.curve
    assert tuned.policy.spec.training["warm_start_steps"] == outcome.result.steps
    assert tuned.trained_steps == 2048
    # a task whose action head changed since the policy was trained is refused before any training
    rescaled = replace(task, head=ActionHead(mode="torque", scale=[1.0]))
    with pytest.raises(ValueError, match="cannot fine-tune from .*pendulum: its action head"):
        train_policy(rescaled, 2048, tmp_path / "refused", config, progress=False, start=tmp_path / "pendulum")
    assert not (tmp_path / "refused").exists()


def test_checkpoint_round_trip_keeps_network_and_normalisation(tmp_path):
    result = train_ppo(lambda: TorqueHead(gym.make("Pendulum-v1")), 256,
                       PPOConfig(num_envs=2, rollout_steps=128, hidden=(16, 8)), progress=False)
    loaded = load_checkpoint(save_checkpoint(result, tmp_path / "checkpoint.safetensors"))
    assert loaded.steps == result.steps == 256 and loaded.model.hidden == (16, 8)
    saved, read = result.model.state_dict(), loaded.model.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[k], read[k]) for k in saved)
    np.testing.assert_array_equal(loaded.obs_mean, result.obs_mean)
    assert loaded.return_stats.count == result.return_stats.count
    with pytest.raises(ValueError, match="warm start has 3 observations"):
        train_ppo(lambda: gym.make("MountainCarContinuous-v0"), 10, PPOConfig(num_envs=1), progress=False,
                  start=loaded)
    (tmp_path / "broken.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.safetensors: not a PPO checkpoint"):
        load_checkpoint(tmp_path / "broken.safetensors")


class TorqueHead(gym.ActionWrapper):
    """Pendulum behind Box(-1, 1) actions (what PPO requires)."""

    def __init__(self, env):
        super().__init__(env)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def action(self, action):
        return 2.0 * np.asarray(action, dtype=np.float32)


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


def test_the_policy_file_serves_with_the_observation_clip_it_was_trained_with(tmp_path):
    task = gym_task("Pendulum-v1")
    config = PPOConfig(num_envs=2, rollout_steps=64, obs_clip=0.5, seed=0)
    outcome = train_policy(task, 128, tmp_path / "clipped", config, progress=False)
    assert outcome.policy.spec.obs_clip == 0.5
    # an observation far outside the training statistics gives the action of its clipped, normalised value
    spec = outcome.policy.spec
    far = np.asarray(spec.obs_mean) + 100.0 * np.asarray(spec.obs_std)
    edge = np.asarray(spec.obs_mean) + 0.5 * np.asarray(spec.obs_std)
    np.testing.assert_allclose(outcome.policy.act(far), outcome.policy.act(edge), atol=1e-9)


def torch_mlp(layers, x: torch.Tensor) -> torch.Tensor:
    for i, layer in enumerate(layers):
        x = layer(x)
        x = torch.tanh(x) if i < len(layers) - 1 else x
    return x


def torch_reference(model: ActorCritic, obs, actions, old_log_prob, advantages, returns, config: PPOConfig):
    """PPO's minibatch loss and log-probabilities written with torch autograd, the textbook way."""
    obs, actions, old_log_prob, advantages, returns = (torch.as_tensor(a) for a in
                                                       (obs, actions, old_log_prob, advantages, returns))
    dist = torch.distributions.Normal(torch_mlp(model.actor, obs), model.log_std.exp())
    log_prob = dist.log_prob(actions).sum(-1)
    ratio = (log_prob - old_log_prob).exp()
    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - config.clip, 1 + config.clip) * adv).mean()
    value_loss = (torch_mlp(model.critic, obs).squeeze(-1) - returns).pow(2).mean()
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * dist.entropy().sum(-1).mean()
    return loss, log_prob


def test_numpy_actor_critic_acts_and_steps_as_torch_autograd_and_adam_would():
    """The numpy actor-critic against torch on the same parameters: log-probabilities and values, the loss
    gradient (with clipped and unclipped samples, and an entropy bonus), gradient clipping and Adam's steps."""
    torch.manual_seed(0)
    config = PPOConfig(entropy_coef=0.01, max_grad_norm=0.5, learning_rate=1e-3)
    model = ActorCritic(6, 3, (16, 8), -0.5)
    reference = copy.deepcopy(model)
    learner = NumpyActorCritic(model, config)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 6)).astype(np.float32)
    actions, log_prob, value = learner.act(obs, np.random.default_rng(1))
    with torch.no_grad():
        _, torch_log_prob = torch_reference(reference, obs, actions.astype(np.float32), log_prob, np.zeros(64),
                                            np.zeros(64), config)
        np.testing.assert_allclose(log_prob, torch_log_prob.numpy(), atol=1e-4)
        np.testing.assert_allclose(value, torch_mlp(reference.critic, torch.as_tensor(obs))[:, 0].numpy(), atol=1e-5)
    # the same generator state gives the same actions: the mean plus std-scaled noise
    np.testing.assert_array_equal(learner.act(obs, np.random.default_rng(1))[0], actions)

    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate, eps=1e-5)
    # old log-probabilities far from the current ones, so that both sides of the clip occur
    old = (log_prob + rng.normal(0.0, 0.5, 64)).astype(np.float32)
    batch = (obs, actions.astype(np.float32), old, rng.normal(size=64).astype(np.float32),
             rng.normal(size=64).astype(np.float32))
    ratio = np.exp(learner.loss_gradient(*batch) - old)
    assert np.any(ratio > 1 + config.clip) and np.any(ratio < 1 - config.clip)
    loss, _ = torch_reference(reference, *batch, config)
    loss.backward()
    torch_gradient = np.concatenate([p.grad.numpy().ravel() for p in reference.parameters()])
    np.testing.assert_allclose(learner.gradient, torch_gradient, rtol=1e-4, atol=1e-6)

    for _ in range(3):
        learner.minibatch_step(*batch)
        optimizer.zero_grad()
        torch_reference(reference, *batch, config)[0].backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), config.max_grad_norm)
        optimizer.step()
        for (name, ours), theirs in zip(model.named_parameters(), reference.parameters()):
            np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=2e-6, err_msg=name)
