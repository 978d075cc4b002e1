"""The single simulator: gravity compensation, parameters, effects, seeded reproducibility."""
import numpy as np
import pytest

from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.simulator import Simulator


@pytest.fixture(scope="module")
def sim():
    return Simulator("fr3_reach", seed=0)


def frictionless(sim, **changes):
    values = {f"joint{j}_{k}": 0.0 for j in range(1, 8) for k in ("damping", "frictionloss")}
    values.update(changes)
    return sim.set_parameters(values)


def test_gravity_compensation_holds_the_nominal_arm_still_without_friction(sim):
    frictionless(sim)
    start = sim.reset(qpos=[0.3, -0.2, 0.4, -1.8, 0.2, 1.9, 0.1])
    for _ in range(200):  # 2 s at zero command
        obs = sim.step(np.zeros(7))
    assert np.abs(obs - start).max() < 1e-6
    assert np.abs(sim.efforts()).max() > 1.0  # the motors do carry the arm's weight


def test_heavier_links_sag_under_nominal_compensation(sim):
    frictionless(sim, link2_mass_scale=1.3, link4_mass_scale=1.3)
    start = sim.reset()
    for _ in range(50):
        obs = sim.step(np.zeros(7))
    assert np.abs(obs[:7] - start[:7]).max() > 0.05


def test_seeded_resets_reproduce_noisy_trajectories_exactly(sim):
    sim.set_parameters({"position_noise_std": 0.001, "velocity_noise_std": 0.01, "action_noise_std": 0.5,
                        "action_delay": 1})
    torques = np.random.default_rng(0).uniform(-3, 3, (30, 7))

    def run(seed):
        return np.array([sim.reset(seed=seed)] + [sim.step(u) for u in torques])

    first, second, other = run(7), run(7), run(8)
    assert np.array_equal(first, second)
    assert not np.allclose(first, other)


def test_action_delay_shifts_the_response_by_whole_periods(sim):
    push = np.array([0, 0, 0, 0, 0, 0, 5.0])

    def response(delay):
        frictionless(sim, action_delay=delay)
        sim.reset()
        return np.array([sim.step(push if k == 0 else np.zeros(7))[13] for k in range(4)])

    undelayed, delayed = response(0), response(2)
    assert undelayed[0] > 0.1 and np.allclose(delayed[:2], 0.0, atol=1e-9)
    assert delayed[2] == pytest.approx(undelayed[0], rel=1e-6)


def test_bad_commands_and_parameters_are_rejected(sim):
    sim.set_parameters(sim.space.nominal)
    sim.reset()
    with pytest.raises(ValueError, match="7 finite values"):
        sim.step(np.full(7, np.nan))
    with pytest.raises(ValueError, match="7 finite values"):
        sim.step(np.zeros(6))
    with pytest.raises(ValueError, match="qpos has non-finite"):
        sim.reset(qpos=[np.nan] * 7)
    with pytest.raises(ValueError, match="link3_mass_scale=5.0"):
        sim.set_parameters({"link3_mass_scale": 5.0})
    big = sim.step(np.full(7, 1e6))  # saturates at the torque limits instead of exploding
    assert np.all(np.isfinite(big)) and np.allclose(np.abs(sim.applied), sim.robot.torque_limits)


def test_sample_parameters_from_a_distribution_and_full_state_round_trip(sim):
    dist = Distribution.uniform(sim.space)
    values = sim.sample_parameters(dist, np.random.default_rng(3))
    assert np.all(values >= sim.space.low) and np.all(values <= sim.space.high)
    sim.set_parameters(sim.space.nominal)
    sim.reset()
    for _ in range(5):
        sim.step(np.ones(7))
    state = sim.state()
    after = [sim.step(np.ones(7)) for _ in range(3)]
    sim.set_state(state)
    again = [sim.step(np.ones(7)) for _ in range(3)]
    assert np.allclose(after, again, atol=1e-9)


def test_the_torque_rate_limit_ramps_each_joints_torque_by_at_most_its_rate_every_physics_step(sim):
    """libfranka's limitRate as the simulator applies it: 1 N*m per 1 ms physics step at 999.999 N*m/s."""
    push = np.array([0, 0, 0, 0, 0, 0, 5.0])

    def first_period(rate, command):
        frictionless(sim, torque_rate_limit=rate)
        sim.reset()
        speed = sim.step(command)[13]
        return speed, sim.efforts() - sim.data.qfrc_gravcomp[sim.dof_index]

    free, _ = first_period(2000.0, push * 0.4)  # 2 N*m per step: never binds on a 2 N*m command
    limited, reached = first_period(999.999, push)
    # torques 1, 2, 3, 4, 5 (less 5e-6 per step), then 5 for six steps: 40 of the 50 N*m*ms of an instant step
    assert limited == pytest.approx(free * 2.5 * 40 / 50, rel=1e-3)
    np.testing.assert_allclose(reached, push, atol=1e-9)
    _, partway = first_period(999.999, push * 3)  # 15 N*m: ten steps reach 10 N*m less 1e-5
    assert partway[6] == pytest.approx(10.0 - 1e-5, abs=1e-9)
