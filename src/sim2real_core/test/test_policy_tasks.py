"""Task adapters: FR3 tasks under none/uniform/oracle/file distributions, the action head and safety wrapper."""
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.policy.safety import SafetyLayer
from sim2real_core.policy.tasks import HeadWrapper, make_task
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space


def test_reach_setup_describes_the_fr3_interface():
    task = make_task("reach")
    assert task.layout == "joint_state_v1" and task.joint_names == [f"fr3_joint{i}" for i in range(1, 8)]
    assert task.head.mode == "joint_target_pd" and [e["size"] for e in task.extra_inputs] == [3]
    np.testing.assert_array_equal(task.safety.torque, [87, 87, 87, 87, 12, 12, 12])
    env = task.wrapped()
    obs, info = env.reset(seed=0)
    # joint_state_v1 + target, then the features: end effector position and target relative to it
    assert obs.shape == (23,) and env.action_space.shape == (7,)
    np.testing.assert_array_equal(info["parameters"], load_parameter_space("fr3_reach").nominal)
    obs, *_ = env.step(np.zeros(7, dtype=np.float32))
    ee = env.unwrapped.sim.site_position()
    np.testing.assert_allclose(obs[17:20], ee, atol=1e-9)
    np.testing.assert_allclose(obs[20:23], env.unwrapped.target - ee, atol=1e-9)


@pytest.mark.parametrize("choice", ["uniform", "oracle"])
def test_randomized_tasks_draw_parameters_per_episode(choice):
    task = make_task("reach", choice)
    assert task.provenance["distribution"] == choice
    env = task.wrapped()
    first = env.reset(seed=1)[1]["parameters"]
    second = env.reset()[1]["parameters"]
    nominal = load_parameter_space("fr3_reach").nominal
    assert not np.allclose(first, nominal)
    assert (choice == "uniform") != np.allclose(first, second)  # uniform redraws, oracle is a point mass


def test_a_distribution_file_is_used_and_recorded_with_its_checksum(tmp_path):
    space = load_parameter_space("fr3_reach")
    path = Distribution.uniform(space, low=space.nominal, high=space.nominal + 0.5 * (space.high - space.nominal),
                                method="manual").save(tmp_path / "dist.yaml")
    task = make_task("reach", str(path))
    assert task.provenance["distribution"] == str(path) and len(task.provenance["distribution_sha256"]) == 64
    params = task.wrapped().reset(seed=3)[1]["parameters"]
    assert np.all(params >= space.nominal - 1e-12)


def test_bad_task_and_distribution_choices_are_refused():
    with pytest.raises(ConfigError, match="unknown task 'fly'"):
        make_task("fly")
    with pytest.raises(ValueError, match="none \\| uniform \\| oracle|one of"):
        make_task("reach", "gaussian")
    with pytest.raises(ValueError, match="no simulator parameters"):
        make_task("pendulum", "uniform")
    with pytest.raises(ValueError, match="no reality proxy"):
        make_task("pendulum", reality="fr3_default")
    assert make_task("pendulum").provenance["task"] == "pendulum"


def test_the_wrapper_applies_head_and_safety_like_the_server():
    task = make_task("reach")
    env = HeadWrapper(task.make_env(), task.head, SafetyLayer(task.safety, task.control_period))
    obs, _ = env.reset(seed=0)
    q, dq = obs[:7], obs[7:14]
    wanted = task.head.torque(np.ones(7), q, dq)
    assert np.any(np.abs(wanted) > 10.0)  # far beyond one period's rate limit
    env.step(np.ones(7))
    rate_step = task.safety.rate * task.control_period
    assert env.safety.counters["rate_limited"] == 1
    np.testing.assert_allclose(np.abs(env.safety.previous), np.minimum(np.abs(wanted), rate_step))
