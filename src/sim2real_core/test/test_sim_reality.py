"""The reality proxy differs measurably from the nominal simulator, and its file is checked."""
from dataclasses import replace

import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.sim.reality import RealityProxy, load_reality
from sim2real_core.sim.simulator import Simulator


def rollout(sim, torques, seed=0):
    sim.reset(seed=seed)
    return np.array([sim.step(u) for u in torques])


@pytest.mark.parametrize("profile", ["fr3_default", "fr3_harsh", "fr3_mild"])  # every profile shipped in config/reality
def test_reality_and_nominal_trajectories_differ_for_the_same_torques(profile):
    torques = np.random.default_rng(0).uniform(-1, 1, (100, 7)) * [8, 8, 8, 8, 1.5, 1.5, 1.5]
    real = rollout(RealityProxy(profile), torques)
    nominal = rollout(Simulator("fr3_push"), torques)
    gap = np.abs(real[:, :7] - nominal[:, :7]).max()
    noise = 0.001  # far above the proxy's position noise (0.2 mrad) and encoder offsets (up to 1 mrad)
    assert gap > 50 * noise
    # the truth is in-family plus an unmodelled torque ripple: the simulator at the true parameters comes much
    # closer, but not all the way
    at_truth = Simulator("fr3_push")
    at_truth.set_parameters(load_reality(profile).truth)
    residual = np.abs(real[:, :7] - rollout(at_truth, torques)[:, :7]).max()
    assert 1e-4 < residual < gap / 2


@pytest.mark.parametrize("profile", ["fr3_default", "fr3_harsh", "fr3_mild"])
def test_without_its_unmodelled_effects_the_proxy_is_the_simulator_at_the_truth(profile):
    """Every friction effect of the proxies (dry, viscous, Stribeck, velocity-squared), their command latency and
    encoder offsets are in the family."""
    torques = np.random.default_rng(1).uniform(-1, 1, (100, 7)) * [8, 8, 8, 8, 1.5, 1.5, 1.5]
    truth = load_reality(profile)
    in_family = RealityProxy(replace(truth, torque_ripple=np.zeros(7)))
    at_truth = Simulator("fr3_push")
    at_truth.set_parameters(truth.truth)
    assert np.array_equal(rollout(in_family, torques), rollout(at_truth, torques))


def test_latency_holds_the_previous_command():
    # a command that arrives `latency` into the period acts for only the rest of it (a push below the 1 N*m per
    # physics step the torque rate limit allows)
    push = np.array([0, 0, 0, 0, 0, 0, 0.9])
    speeds = []
    for latency in (0.0, 0.005):
        delayed = RealityProxy("fr3_default")
        delayed.set_parameters({**delayed.space.as_dict(delayed.parameters), "velocity_noise_std": 0.0,
                                "action_noise_std": 0.0, "joint7_frictionloss": 0.0, "joint7_damping": 0.0,
                                "joint7_stribeck": 0.0, "joint7_drag": 0.0, "command_latency": latency})
        delayed.reset(seed=0)
        speeds.append([delayed.step(push)[13], delayed.step(push)[13]])
    (v1, v2), (d1, d2) = speeds
    assert d1 == pytest.approx(v1 / 2, rel=0.1)  # half a period of torque in the first period
    assert d2 - d1 == pytest.approx(v2 - v1, rel=0.05)  # then the full torque every period


def test_bad_reality_files_are_rejected_naming_the_problem(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("reality: {parameter_space: fr3_push, truth: {link3_mass_scale: 9.0}}\n")
    with pytest.raises(ConfigError, match="link3_mass_scale=9.0"):
        load_reality(bad)
    bad.write_text("reality: {parameter_space: fr3_push, unmodelled: {torque_ripple: [1, 2]}}\n")
    with pytest.raises(ConfigError, match=r"r.yaml: reality: unmodelled.torque_ripple: Tuple should have at least 7"):
        load_reality(bad)
    bad.write_text("reality: {parameter_space: fr3_push, truth: {nope: 1}}\n")
    with pytest.raises(ConfigError, match="unknown parameters"):
        load_reality(bad)
    bad.write_text("reality: {parameter_space: fr3_push, unmodelled: {latency: 0.001}}\n")  # a misspelt effect
    with pytest.raises(ConfigError, match=r"unmodelled.latency: Extra inputs are not permitted"):
        load_reality(bad)


def test_a_controller_tuned_on_the_nominal_sim_misses_on_reality():
    """Joint PD without gravity model, as a nominal-trained policy: accurate in sim, sagging on the proxy."""
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    target = home + np.array([0.3, 0.3, -0.2, 0.3, 0.2, -0.2, 0.3])
    kp, kd = np.array([40, 40, 40, 40, 8, 8, 8.0]), np.array([6, 6, 6, 6, 1, 1, 1.0])

    def final_error(sim):
        obs = sim.reset(seed=0)
        for _ in range(300):
            obs = sim.step(kp * (target - obs[:7]) - kd * obs[7:])
        return np.abs(obs[:7] - target).max()

    nominal, real = final_error(Simulator("fr3_push")), final_error(RealityProxy("fr3_default"))
    assert nominal < 0.02 and real > 0.08 and real > 5 * nominal


def test_the_torque_ripple_is_periodic_in_position_and_bounded_by_its_amplitude():
    proxy = RealityProxy("fr3_default")
    q = np.random.default_rng(0).uniform(-2, 2, 7)
    amplitude = proxy.profile.torque_ripple
    assert np.all(np.abs(proxy.ripple(q)) <= amplitude)
    np.testing.assert_allclose(proxy.ripple(q + proxy.profile.ripple_period), proxy.ripple(q), atol=1e-9)
    assert not np.allclose(proxy.ripple(q + proxy.profile.ripple_period / 4), proxy.ripple(q))
