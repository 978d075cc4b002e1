"""The batched FR3 task environments (sim.vector_tasks) against the single ones, and the vectorised safety layer."""
import gymnasium as gym
import numpy as np
import pytest
import yaml

from sim2real_core.config import config_path
from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.safety import SafetyLayer, VectorSafetyLayer, load_safety_limits
from sim2real_core.policy.tasks import VectorActionMap, make_task, ppo_defaults
from sim2real_core.sim import tasks
from sim2real_core.sim.parameters import load_parameter_space


def still_start_task(tmp_path, name: str) -> str:
    """The task file with no start noise, so that single and batched episodes start alike."""
    config = yaml.safe_load(config_path("tasks", f"{name}.yaml").read_text())
    config["task"]["start_noise"] = 0.0
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def off_nominal_parameters(space_name: str, rows: int) -> np.ndarray:
    """`rows` parameter vectors from nominal towards the bounds, no noise, action delays 0, 1, 2, ..."""
    space = load_parameter_space(space_name)
    fractions = np.linspace(0.0, 0.8, rows)[:, None]
    params = np.where(fractions == 0.0, space.nominal, space.low + fractions * (space.high - space.low))
    for k, parameter in enumerate(space):
        if "noise" in parameter.kind:
            params[:, k] = 0.0
        if parameter.kind == "action_delay":
            params[:, k] = np.minimum(np.arange(rows), parameter.high)
    return params


@pytest.mark.parametrize("env_id, space, layout", [
    (tasks.REACH_ID, "fr3_reach", {"target": [[0.5, 0.1, 0.4], [0.4, -0.2, 0.5], [0.55, 0.2, 0.3]]}),
    (tasks.PUSH_ID, "fr3_push", {"puck": [[0.5, 0.0], [0.45, 0.05], [0.55, -0.05]],
                                 "goal": [[0.65, 0.0], [0.6, 0.1], [0.7, -0.1]]}),
])
def test_batched_environments_step_as_the_single_ones(tmp_path, env_id, space, layout):
    task = still_start_task(tmp_path, "fr3_reach" if env_id == tasks.REACH_ID else "fr3_push")
    params = off_nominal_parameters(space, 3)
    batched = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", task=task)
    obs, info = batched.reset(seed=0, options={"parameters": params, **layout})
    np.testing.assert_allclose(info["parameters"], params)
    singles = [gym.make(env_id, task=task).unwrapped for _ in range(3)]
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(seed=0, options={"parameters": params[i], **{k: v[i] for k, v in layout.items()}})
        np.testing.assert_allclose(single_obs, obs[i], atol=1e-12)
    actions = np.random.default_rng(0).uniform(-3.0, 3.0, (120, 3, 7)).astype(np.float32)
    for step_actions in actions:  # gentle torques: no reflex, so no episode ends before the single ones'
        obs, reward, terminated, truncated, info = batched.step(step_actions)
        for i, env in enumerate(singles):
            single_obs, single_reward, single_terminated, _, single_info = env.step(step_actions[i])
            np.testing.assert_allclose(obs[i], single_obs, atol=1e-9)
            assert reward[i] == pytest.approx(single_reward, abs=1e-9)
            assert terminated[i] == single_terminated and not terminated[i]
            assert info["distance"][i] == pytest.approx(single_info["distance"], abs=1e-12)
    batched.close()


def test_an_ended_episode_restarts_in_the_same_step_with_its_final_observation():
    env = gym.make_vec(tasks.REACH_ID, num_envs=4, vectorization_mode="vector_entry_point", episode_steps=5, seed=3)
    obs, _ = env.reset()
    starts = obs.copy()
    push = np.zeros((4, 7), dtype=np.float32)
    push[0] = env.single_action_space.high  # full torque on the first arm: a velocity reflex ends its episode
    ended_by_reflex = None
    for step in range(1, 6):
        obs, reward, terminated, truncated, info = env.step(push)
        if terminated[0] and ended_by_reflex is None:
            ended_by_reflex = step
            assert info["final_info"]["velocity_limit"][0] and reward[0] < -env.config.reward["velocity_limit"] + 1
            assert np.abs(obs[0, 7:14]).max() < 1e-9 < np.abs(info["final_obs"][0, 7:14]).max()
    assert ended_by_reflex is not None and ended_by_reflex < 5
    assert truncated[1:].all() and not terminated[1:].any()  # the others ran their 5 periods
    assert not np.allclose(obs[1:, 14:], starts[1:, 14:])  # ... and restarted with new targets
    env.close()


def test_vector_safety_layer_filters_each_arm_as_the_single_layer():
    limits = load_safety_limits("fr3")
    rng = np.random.default_rng(1)
    arms, period = 6, 0.01
    batched = VectorSafetyLayer(limits, period, arms)
    singles = [SafetyLayer(limits, period) for _ in range(arms)]
    span = limits.upper - limits.lower
    for _ in range(30):  # positions past the soft limits, velocities past the envelope, torques past the limits
        q = rng.uniform(limits.lower - 0.1 * span, limits.upper + 0.1 * span, (arms, 7))
        dq = rng.normal(0.0, 2.0, (arms, 7))
        torque = rng.normal(0.0, 60.0, (arms, 7))
        safe, faulted = batched.filter(torque, q, dq)
        assert not faulted.any()
        for i, layer in enumerate(singles):
            np.testing.assert_allclose(safe[i], layer.filter(torque[i], q[i], dq[i]), atol=1e-12)
    assert all(layer.counters["joint_limit"] and layer.counters["velocity_envelope"] for layer in singles)
    torque[2, 3] = np.nan
    safe, faulted = batched.filter(torque, q, dq)
    assert faulted.tolist() == [i == 2 for i in range(arms)] and not safe[2].any() and np.isfinite(safe).all()


def test_training_sees_the_batched_environment_through_head_safety_and_features():
    task = make_task("reach", "uniform")
    envs = task.vector(4)
    assert envs.single_action_space == gym.spaces.Box(-1.0, 1.0, (7,), dtype=np.float32)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (4, 17 + task.features.size)
    assert len({tuple(row) for row in info["parameters"]}) == 4  # parameters drawn per environment
    home = np.asarray(task.head.center)
    _, _, terminated, _, _ = envs.step(np.ones((4, 7), dtype=np.float32))
    # The action head drives towards home + scale; the safety layer's rate limit keeps the first torque small.
    env = envs.unwrapped
    assert isinstance(env.action_map, VectorActionMap)
    first = env.action_map.safety.previous
    assert np.all(np.abs(first) <= load_safety_limits("fr3").rate * 0.01 + 1e-9) and np.abs(first).max() > 0
    assert not terminated.any() and home.shape == (7,)
    envs.close()


def test_ppo_on_the_batched_environments_learns_as_on_the_single_ones():
    """Equal return at equal steps, old path (SyncVectorEnv of single environments) against the batched one.

    Tolerance: at this budget the mean return of one seed spreads by about +-4 between seeds on either path
    (measured over seeds 0-2); a wrong reward or observation in the batched environment moves it by far more.
    """
    task = make_task("reach", "none")
    config = PPOConfig(**{**ppo_defaults("reach"), "num_envs": 8, "rollout_steps": 256, "seed": 0})
    means = []
    for batched in (False, True):
        envs = task.vector(config.num_envs, batched=batched)
        result = train_ppo(envs, 24_576, config, progress=False)
        envs.close()
        means.append(np.mean([value for _, value in result.curve[2:]]))
    assert -100.0 < means[0] < -50.0
    assert abs(means[1] - means[0]) < 12.0, means


def test_noise_follows_the_seed_and_an_autoreset_keeps_the_other_observations():
    space = load_parameter_space("fr3_reach")
    noisy = {name: 0.5 * (space.low[i] + space.high[i]) for i, name in enumerate(space.names) if "noise" in name}
    runs = []
    for _ in range(2):
        env = gym.make_vec(tasks.REACH_ID, num_envs=2, vectorization_mode="vector_entry_point")
        obs, _ = env.reset(seed=7, options={"parameters": noisy})
        push = np.zeros((2, 7), dtype=np.float32)
        push[0] = env.single_action_space.high  # the first arm trips a reflex and restarts; the second goes on
        steps, restarted = [obs], False
        for _ in range(6):
            obs, _, terminated, _, _ = env.step(push)
            steps.append(obs)
            restarted |= bool(terminated[0])
            assert not terminated[1]
            assert np.array_equal(env.unwrapped._obs, obs)  # what the action head reads next is what was returned
        assert restarted
        runs.append(np.array(steps))
        env.close()
    np.testing.assert_array_equal(runs[0], runs[1])
