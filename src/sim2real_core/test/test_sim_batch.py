"""The batched simulator equals the single one, handles delays, and runs other models (Hopper)."""
import numpy as np
import pytest

from sim2real_core.robot import load_robot
from sim2real_core.sim.batch import BatchSimulator
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space
from sim2real_core.sim.simulator import Simulator

JOINTS = load_robot("fr3").joint_names


def test_batch_step_equals_single_simulator_step_per_parameter_sample():
    space = load_parameter_space("fr3_push")
    rng = np.random.default_rng(0)
    params = Distribution.uniform(space).sample(rng, 6)
    for kind in ("position_noise_std", "velocity_noise_std", "action_noise_std", "action_delay"):
        params[:, space.index(kind)] = 0.0
    batch = BatchSimulator("fr3", space, 6, control_period=0.01, joints=JOINTS, nthread=1)
    batch.set_parameters(params)
    batch.reset("home")
    start = np.concatenate([load_robot("fr3").home + 0.1, np.full(7, 0.2)])
    batch.set_observation_state(np.repeat(start[None], 6, axis=0))
    torques = rng.uniform(-10, 10, (6, 7))
    predicted = batch.step(torques)
    single = Simulator(space, seed=0)
    for i in range(6):
        single.set_parameters(params[i])
        single.reset(qpos=start[:7], qvel=start[7:])
        assert np.allclose(single.step(torques[i]), predicted[i], atol=1e-10)
    qpos, _ = batch.state()
    assert qpos.shape == (6, single.model.nq)


def test_batch_delay_uses_past_actions_and_noise_matches_its_std():
    space = load_parameter_space("fr3_reach")
    n = 400
    values = np.repeat(space.nominal[None], n, axis=0)
    values[:, space.index("action_delay")] = np.arange(n) % 2
    values[:, space.index("position_noise_std")] = 0.002
    batch = BatchSimulator("fr3", space, n, control_period=0.01, joints=JOINTS, seed=1)
    batch.set_parameters(values)
    batch.reset("home")
    now, before = np.zeros((n, 7)), np.zeros((n, 1, 7))
    before[:, 0, 6] = 5.0  # the previous period pushed joint 7; delayed simulations apply it now
    obs = batch.step(now, past_actions=before, noise=False)
    assert np.all(obs[1::2, 13] > 0.1) and np.allclose(obs[0::2, 13], 0.0, atol=1e-9)
    noisy = batch.observation()
    assert np.std(noisy[:, :7] - obs[:, :7]) == pytest.approx(0.002, rel=0.05)


def test_batch_runs_the_hopper_with_actuator_controls():
    space = load_parameter_space("hopper")
    batch = BatchSimulator("hopper", space, 3, nstep=4, nthread=1)
    batch.set_parameters(np.array([space.nominal, space.nominal, space.nominal * 1.5]))
    batch.reset()
    obs = batch.step(np.tile([0.5, -0.5, 0.2], (3, 1)))
    assert obs.shape == (3, batch.nominal_model.nq + batch.nominal_model.nv) and batch.nu == 3
    assert np.allclose(obs[0], obs[1]) and not np.allclose(obs[0], obs[2])
    with pytest.raises(ValueError, match="6 model values"):
        batch.set_state(qpos=np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"actions need shape \(3, 3\)"):
        batch.step(np.zeros((2, 3)))
