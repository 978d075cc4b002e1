"""Memory policies: the (state, action) history training appends is the one a loaded policy keeps itself."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from sim2real_core.policy.policy_file import ObservationHistory, PolicyFileError, load_policy, save_policy
from sim2real_core.policy.ppo import ActorCritic
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import PolicyRunner
from sim2real_core.policy.tasks import make_task
from sim2real_core.policy.training import train_policy
from sim2real_core.sim.tasks import load_task

HISTORY = 3
EPISODE_STEPS = load_task("fr3_reach").episode_steps


def test_the_history_keeps_the_newest_pairs_first_and_forgets_per_stream():
    memory = ObservationHistory(2, state_size=2, action_size=1, rows=2)
    memory.push(np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([[0.1], [0.2]]))
    memory.push(np.array([[3.0, 3.0], [4.0, 4.0]]), np.array([[0.3], [0.4]]))
    memory.push(np.array([[5.0, 5.0], [6.0, 6.0]]), np.array([[0.5], [0.6]]))
    assert memory.values().tolist() == [[5.0, 5.0, 0.5, 3.0, 3.0, 0.3], [6.0, 6.0, 0.6, 4.0, 4.0, 0.4]]
    memory.reset(np.array([False, True]))
    assert memory.values()[1].tolist() == [0.0] * 6 and memory.values()[0, 0] == 5.0
    assert memory.width == 6


def memory_policy_file(tmp_path, history=HISTORY):
    """A reach policy with memory and random weights, written and read back like a trained one."""
    task = make_task("reach", "uniform", history=history)
    envs = task.vector(2)
    size = envs.single_observation_space.shape[0]
    envs.close()
    model = ActorCritic(size, 7, (16,), -0.5)
    for parameter in model.actor.parameters():  # weights large enough that the memory changes the action
        torch.nn.init.normal_(parameter, std=0.5)
    rng = np.random.default_rng(0)
    spec = task.spec(rng.normal(0, 0.1, size), rng.uniform(0.5, 2.0, size), 10.0, model.hidden, {})
    return save_policy(tmp_path / "memory", spec, model.actor_weights()), task


def test_a_memory_policy_serves_what_it_was_trained_on_across_episode_boundaries(tmp_path):
    """The batched training environments append each environment's history (VectorHistory); a loaded policy
    keeps its own and forgets it at reset(): the network sees the same inputs, step for step, through an
    episode's end and the next episode's start."""
    sidecar, task = memory_policy_file(tmp_path)
    policy = load_policy(sidecar)
    assert policy.spec.history == HISTORY and policy.spec.input_size == 23 + HISTORY * 21  # 17 + 6 features; 14 + 7
    trained_inputs = task.vector(1)
    plain = replace(task, history=0).vector(1)
    obs, _ = trained_inputs.reset(seed=4)
    raw, _ = plain.reset(seed=4)
    policy.reset()
    clip = policy.spec.obs_clip
    mean, std = np.asarray(policy.spec.obs_mean), np.asarray(policy.spec.obs_std)
    network = load_policy(sidecar)  # the network alone: fed the training environment's inputs directly
    episodes_started = 1
    for _ in range(EPISODE_STEPS + 20):
        served = policy.act(raw[0][:17])  # the raw observation; the policy adds features and memory
        x = np.clip((obs[0] - mean) / std, -clip, clip)
        for w, b in network._layers[:-1]:
            x = np.tanh(x @ w + b)
        w, b = network._layers[-1]
        trained = np.clip(x @ w + b, -1.0, 1.0)
        np.testing.assert_allclose(served, trained, atol=1e-9)
        obs, _, terminated, truncated, _ = trained_inputs.step(trained[None].astype(np.float32))
        raw, _, *_ = plain.step(trained[None].astype(np.float32))
        if terminated[0] or truncated[0]:
            policy.reset()
            episodes_started += 1
            assert np.all(obs[0, 23:] == 0.0)  # a new episode starts without memory
    assert episodes_started == 2


def test_memory_changes_the_action_and_reset_forgets_it(tmp_path):
    sidecar, _ = memory_policy_file(tmp_path)
    policy = load_policy(sidecar)
    obs = np.concatenate([np.zeros(14), [0.5, 0.0, 0.4]])
    first = policy.act(obs)
    later = [policy.act(obs) for _ in range(3)][-1]
    assert not np.allclose(first, later)  # the same observation after a different past
    policy.reset()
    np.testing.assert_array_equal(policy.act(obs), first)
    with pytest.raises(ValueError, match="reset\\(rows=2\\)"):
        policy.act(np.stack([obs, obs]))
    policy.reset(rows=2)
    np.testing.assert_allclose(policy.act(np.stack([obs, obs])), np.stack([first, first]), atol=1e-12)


def test_the_policy_server_starts_each_episode_and_each_policy_without_memory(tmp_path):
    sidecar, _ = memory_policy_file(tmp_path)
    policy = load_policy(sidecar)
    runner = PolicyRunner(policy, SafetyLayer(load_safety_limits("fr3"), 0.01))
    q, dq = np.array(policy.spec.action.center), np.zeros(7)
    expected = policy.torque(q, dq)
    policy.torque(q, dq)
    runner.new_episode()
    np.testing.assert_array_equal(policy.torque(q, dq), expected)
    policy.torque(q, dq)
    runner.configure(policy, None)  # switching (or reloading) a policy starts it afresh
    np.testing.assert_array_equal(policy.torque(q, dq), expected)


def test_bad_memory_sizes_are_refused(tmp_path):
    sidecar, _ = memory_policy_file(tmp_path)
    spec = load_policy(sidecar).spec
    with pytest.raises(ValueError, match="observation.history must be 0..64"):
        replace(spec, history=65)
    with pytest.raises(ValueError, match="observation, features and memory"):
        replace(spec, history=HISTORY + 1)
    with pytest.raises(ValueError, match="history must be 0..64"):
        make_task("reach", history=-1)
    memoryless = replace(spec, history=0, obs_mean=spec.obs_mean[:23], obs_std=spec.obs_std[:23])
    with pytest.raises(PolicyFileError, match="layers.0.weight"):  # a memoryless network under a memory sidecar
        save_policy(tmp_path / "wrong", spec,
                    {name: np.zeros(shape, np.float32) for name, shape in memoryless.layer_shapes().items()})


@pytest.mark.slow
def test_sim2real_train_writes_a_memory_policy_that_fine_tunes_only_with_the_same_memory(tmp_path):
    task = make_task("reach", "uniform", history=2)
    outcome = train_policy(task, 4096, tmp_path / "first", progress=False)
    assert outcome.policy.spec.history == 2
    again = train_policy(task, 2048, tmp_path / "again", progress=False, start=tmp_path / "first")
    assert again.result.steps > outcome.result.steps
    with pytest.raises(ValueError, match="memory of 2 pairs"):
        train_policy(replace(task, history=0), 2048, tmp_path / "no", progress=False, start=tmp_path / "first")
