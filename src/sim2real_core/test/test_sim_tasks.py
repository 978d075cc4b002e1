"""FR3 gymnasium tasks: registration, spaces, randomization, success criterion, reproducibility."""
import gymnasium as gym
import mujoco
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.sim import tasks
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space


@pytest.mark.parametrize("env_id, obs_size", [(tasks.REACH_ID, 17), (tasks.PUSH_ID, 19)])
def test_registered_envs_have_documented_spaces_and_pass_the_gymnasium_checker(env_id, obs_size):
    env = gym.make(env_id, episode_steps=5, seed=0)
    assert env.observation_space.shape == (obs_size,)
    assert env.action_space.high.tolist() == [87, 87, 87, 87, 12, 12, 12]
    from gymnasium.utils.env_checker import check_env
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert obs.shape == (obs_size,) and set(info) >= {"is_success", "distance", "parameters"}
    for k in range(5):
        obs, reward, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        assert np.isfinite(reward) and not terminated
    assert truncated  # after episode_steps


def test_reset_randomizes_parameters_from_the_distribution_and_seeds_reproduce_episodes():
    dist = Distribution.uniform(load_parameter_space("fr3_reach"))
    env = tasks.FR3ReachEnv(distribution=dist, episode_steps=20)
    draws = np.array([env.reset(seed=s)[1]["parameters"] for s in range(30)])
    assert np.all(draws >= dist.low) and np.all(draws <= dist.high)
    assert np.all(draws.std(axis=0)[:28] > 0)  # every continuous model parameter varies between episodes
    torques = np.random.default_rng(0).uniform(-5, 5, (20, 7))

    def episode(seed):
        obs, _ = env.reset(seed=seed)
        return np.array([obs] + [env.step(u)[0] for u in torques])

    assert np.array_equal(episode(3), episode(3))
    assert not np.allclose(episode(3), episode(4))


def test_reach_success_when_the_end_effector_is_at_the_target():
    env = tasks.FR3ReachEnv(episode_steps=3)
    _, info = env.reset(seed=0, options={"target": [0.3069, 0.0, 0.4869]})  # home pose TCP (start noise moves it)
    assert info["distance"] < 0.1
    env.config = env.config.model_copy(update={"start_noise": 0.0})
    obs, info = env.reset(seed=0, options={"target": [0.3069, 0.0, 0.4869]})
    assert info["is_success"] and info["distance"] < 0.005 and np.allclose(obs[14:], [0.3069, 0.0, 0.4869])
    _, info = env.reset(seed=0, options={"target": [0.5, 0.2, 0.3]})
    assert not info["is_success"]


def test_push_moves_the_puck_when_the_fingers_sweep_through_it_and_scores_the_goal():
    env = tasks.FR3PushEnv(episode_steps=200)
    obs, info = env.reset(seed=0, options={"puck": [0.45, 0.0], "goal": [0.65, 0.0]})
    assert np.allclose(obs[14:16], [0.45, 0.0]) and np.allclose(obs[17:19], [0.65, 0.0])
    assert info["distance"] == pytest.approx(0.2, abs=1e-3)
    # Cartesian impedance on the fingertip, sweeping along +x at table height through the puck
    model, data = env.sim.model, env.sim.data
    jac = np.zeros((3, model.nv))
    for k in range(120):
        target = np.array([0.38 + k * 0.0015, 0.0, 0.02])
        tip = env.sim.site_position()
        mujoco.mj_comPos(model, data)
        mujoco.mj_jacSite(model, data, jac, None, model.site("ee").id)
        J = jac[:, :7]
        force = np.array([400, 400, 1500]) * (target - tip) - 40 * (J @ obs[7:14])
        obs, reward, terminated, truncated, info = env.step(J.T @ force - 2.0 * obs[7:14])
        assert not terminated
    assert obs[14] > 0.47  # the puck was pushed forward
    env.config = tasks.TaskConfig(**{**env.config.__dict__, "success_radius": 1.0})
    assert env.step(np.zeros(7))[4]["is_success"]


def test_bad_options_and_task_files_are_rejected(tmp_path):
    env = tasks.FR3ReachEnv()
    with pytest.raises(ValueError, match=r"options\['target'\] needs 3 values"):
        env.reset(options={"target": [1, 2]})
    assert "parameters" not in tasks.FR3ReachEnv(reality="fr3_default").reset(seed=0)[1]
    with pytest.raises(ValueError, match="reality proxy has fixed hidden parameters"):
        tasks.FR3ReachEnv(distribution=Distribution.fixed(load_parameter_space("fr3_reach")), reality="fr3_default")
    bad = tmp_path / "t.yaml"
    bad.write_text("task: {parameter_space: fr3_reach, episode_steps: 10, keyframe: home, success_radius: 0.1, "
                   "reward: {}, boxes: {target: {low: [0, 0, 0], high: [1, 1]}}}\n")
    with pytest.raises(ConfigError, match=r"t.yaml: task: boxes.target: a box needs low and high of "
                                          r"equal size"):
        tasks.load_task(bad)
    bad.write_text("task: {parameter_space: fr3_reach, episode_steps: 0, keyframe: home, success_radius: 0.1, "
                   "reward: {}, target_low: [0, 0, 0]}\n")
    with pytest.raises(ConfigError, match=r"episode_steps: Input should be greater than 0 .*target_low: Extra"):
        tasks.load_task(bad)
