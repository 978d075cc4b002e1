"""ODR fitting on synthetic Hopper data: engine exactness, recovery, E-DROPO vs DROPO, SysID, bad input."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sim2real_core.fit import (
    BatchPredictor,
    DropoConfig,
    SysIdConfig,
    TransitionError,
    Transitions,
    fit,
    fit_dropo,
    fit_edropo,
    fit_sysid,
    gaussian_loglik,
    reference_predict,
)
from sim2real_core.fit.dropo import state_scale
from sim2real_core.fit.hopper import generate_hopper_data, hopper_space, hopper_system
from sim2real_core.sim.distributions import Distribution, load_distribution
from sim2real_core.sim.parameters import ParameterSpace

TRUTH = np.array([4.2, 3.3, 2.2, 4.6])
FAST = dict(samples=8, transitions=40, linearized_transitions=150, max_evaluations=8, learn_epsilon=False)


@pytest.fixture(scope="module")
def system():
    return hopper_system()


@pytest.fixture(scope="module")
def space():
    return hopper_space()


@pytest.fixture(scope="module")
def data(system, space):
    return generate_hopper_data(TRUTH, episodes=4, steps=100, seed=3, space=space, system=system)


@pytest.fixture(scope="module")
def predictor(system, space):
    return BatchPredictor(system, space, nthread=2)


def test_engine_matches_mjdata_loop(system, space, data, predictor):
    rows = np.array([0, 57, 123, 399])
    params = np.random.default_rng(0).uniform(space.low, space.high, (rows.size, space.dim))
    actions = np.stack([data.actions[rows], data.actions[rows + 1 - (rows == 399)]], axis=1)  # 2-step sequences
    fast = predictor.predict(data.observations[rows], actions, params)
    slow = reference_predict(system, space, data.observations[rows], actions, params)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    # with the true masses the engine reproduces the recorded next states
    truth = np.repeat(TRUTH[None], rows.size, axis=0)
    np.testing.assert_allclose(predictor.predict(data.observations[rows], data.actions[rows], truth),
                               data.next_observations[rows], atol=1e-9)


def test_gaussian_loglik_matches_scipy():
    rng = np.random.default_rng(1)
    pred, target = rng.normal(size=(3, 12, 4)), rng.normal(size=(3, 4))
    for epsilon in (0.1, np.array([0.1, 0.02, 0.3, 1.0])):  # ε·I, and one ε per state dimension
        ours = gaussian_loglik(pred, target, epsilon)
        for n in range(3):
            cov = np.cov(pred[n].T) + np.diag(np.broadcast_to(epsilon, 4))
            assert ours[n] == pytest.approx(multivariate_normal(pred[n].mean(0), cov).logpdf(target[n]), rel=1e-10)


def test_dropo_recovers_masses_and_collapses(system, space, data, predictor, tmp_path):
    result = fit_dropo(system, space, data, DropoConfig(**FAST), predictor=predictor)
    dist = result.distribution
    assert np.linalg.norm(dist.mean - TRUTH) < 0.1
    assert np.all(dist.std < 0.05)  # noise-free data: DROPO's std collapses
    assert dist.method == "dropo" and dist.objective["name"] == "mean_log_likelihood"
    assert dist.provenance["true_parameters"]["torso_mass"] == pytest.approx(4.2)
    assert result.history and all(np.isfinite(h["objective"]) for h in result.history)
    assert result.history[-1]["objective"] >= result.history[0]["objective"]
    loaded = load_distribution(dist.save(tmp_path / "fit.yaml"))
    np.testing.assert_allclose(loaded.mean, dist.mean)
    np.testing.assert_allclose(loaded.std, dist.std)
    assert loaded.method == "dropo"


def test_edropo_keeps_std_above_dropo(system, space, data, predictor):
    dropo = fit_dropo(system, space, data, DropoConfig(**FAST), predictor=predictor).distribution
    edropo = fit_edropo(system, space, data, DropoConfig(**FAST), alpha=0.01, predictor=predictor).distribution
    assert edropo.method == "edropo"
    assert np.all(edropo.std > 2 * dropo.std)
    assert np.linalg.norm(edropo.mean - TRUTH) < 0.3


def test_full_covariance(system, space, data, predictor):
    config = DropoConfig(**FAST, covariance="full", entropy_weight=0.01)
    dist = fit_dropo(system, space, data, config, predictor=predictor).distribution
    assert dist.covariance.shape == (4, 4) and np.all(np.linalg.eigvalsh(dist.covariance) >= 0)
    assert np.linalg.norm(dist.mean - TRUTH) < 0.3


def test_learned_epsilon_tracks_measurement_noise(system, space, data, predictor):
    scale = state_scale(data)
    noisy = Transitions(data.observations, data.actions,
                        data.next_observations + np.random.default_rng(2).normal(size=data.observations.shape)
                        * 0.05 * scale, data.ends)
    config = DropoConfig(**{**FAST, "learn_epsilon": True}, epsilon=1e-1)
    dist = fit_dropo(system, space, noisy, config, predictor=predictor).distribution
    # scaled noise variance 0.05² = 2.5e-3 (the scale itself moves slightly with the noise)
    assert 1e-3 < dist.objective["epsilon"] < 6e-3
    assert np.linalg.norm(dist.mean - TRUTH) < 0.3


def test_epsilon_per_dimension_finds_which_state_dimensions_are_noisy(system, space, data, predictor):
    scale = state_scale(data)
    noisy_dims = np.arange(data.observations.shape[1]) >= data.observations.shape[1] // 2  # the velocities
    noise = np.random.default_rng(2).normal(size=data.observations.shape) * 0.1 * scale * noisy_dims
    noisy = Transitions(data.observations, data.actions, data.next_observations + noise, data.ends)
    config = DropoConfig(**{**FAST, "learn_epsilon": True}, epsilon_per_dimension=True, epsilon=1e-2)
    dist = fit_dropo(system, space, noisy, config, predictor=predictor).distribution
    epsilon = np.array(dist.objective["epsilon"])
    assert epsilon.shape == noisy_dims.shape
    # scaled noise variance 0.1² = 1e-2 where noise was added, far less where it was not
    assert np.all((epsilon[noisy_dims] > 4e-3) & (epsilon[noisy_dims] < 2.5e-2))
    assert np.all(epsilon[~noisy_dims] < 1e-3)
    assert np.linalg.norm(dist.mean - TRUTH) < 0.3
    with pytest.raises(ValueError, match="epsilon_per_dimension needs learn_epsilon"):
        DropoConfig(epsilon_per_dimension=True, learn_epsilon=False)


def test_sysid_point_and_confidence_intervals(system, space, data, predictor):
    result = fit_sysid(system, space, data, SysIdConfig(transitions=100), predictor=predictor)
    dist = result.distribution
    assert np.linalg.norm(dist.mean - TRUTH) < 0.01
    for name, t in zip(space.names, TRUTH):
        low, high = dist.objective["confidence_95"][name]
        assert low <= t <= high and high - low < 1.0
    assert all(v["identifiable"] for v in result.info["identifiability"].values())


def test_multistep_sysid(system, space, data, predictor):
    dist = fit_sysid(system, space, data, SysIdConfig(horizon=3, transitions=60), predictor=predictor).distribution
    assert np.linalg.norm(dist.mean - TRUTH) < 0.01


def test_uniform_baseline_scores_worse(system, space, data, predictor):
    uniform = fit("uniform", system, space, data, config=DropoConfig(**FAST), predictor=predictor).distribution
    assert uniform.family == "uniform"
    np.testing.assert_allclose(uniform.low, space.low)
    dropo = fit_dropo(system, space, data, DropoConfig(**FAST), predictor=predictor).distribution
    assert uniform.objective["value"] < dropo.objective["mean_log_likelihood"]


def test_unobservable_parameter_is_flagged(system):
    """Data from flight (started 1 m up, 30 periods) says nothing about foot-floor friction."""
    rows = [{"name": "torso_mass", "unit": "kg", "nominal": 3.67, "bounds": [1, 10], "kind": "body_mass",
             "element": "torso"},
            {"name": "foot_friction", "unit": "1", "nominal": 2.0, "bounds": [0.5, 3.0], "kind": "geom_friction",
             "element": "foot_geom"}]
    space = ParameterSpace.from_list(rows, name="hopper_friction")
    truth = np.array([4.2, 1.2])
    flight = generate_hopper_data(truth, episodes=4, steps=30, seed=5, space=space, system=system, lift=1.0)
    result = fit_sysid(system, space, flight, SysIdConfig(transitions=100))
    ident = result.info["identifiability"]
    assert ident["torso_mass"]["identifiable"] and not ident["foot_friction"]["identifiable"]
    assert abs(result.distribution.mean[0] - 4.2) < 0.05


def test_edropo_alpha_from_the_data_widens_what_the_data_leave_uncertain(system):
    """α = 1 / transitions: the friction that flight data cannot see gets a wide std, where DROPO's stays where
    it started; the mass the data pin down stays narrow and both means agree."""
    from sim2real_core.fit.methods import edropo_alpha
    rows = [{"name": "torso_mass", "unit": "kg", "nominal": 3.67, "bounds": [1, 10], "kind": "body_mass",
             "element": "torso"},
            {"name": "foot_friction", "unit": "1", "nominal": 2.0, "bounds": [0.5, 3.0], "kind": "geom_friction",
             "element": "foot_geom"}]
    space = ParameterSpace.from_list(rows, name="hopper_friction")
    flight = generate_hopper_data(np.array([4.2, 1.2]), episodes=4, steps=30, seed=5, space=space, system=system,
                                  lift=1.0)
    config = DropoConfig(**{**FAST, "learn_epsilon": True})
    dropo = fit_dropo(system, space, flight, config).distribution
    edropo = fit_edropo(system, space, flight, config).distribution
    assert edropo.objective["alpha"] == pytest.approx(edropo_alpha(flight)) == pytest.approx(1 / 120)
    width = space.high - space.low
    assert edropo.std[1] / width[1] > 0.2 and edropo.std[1] > 5 * dropo.std[1]
    assert edropo.std[0] / width[0] < 0.01 and abs(edropo.mean[0] - dropo.mean[0]) < 0.01 * width[0]


def test_lambda_windows_stay_inside_episodes():
    obs = np.arange(12, dtype=float).reshape(6, 2)
    nxt = obs + 2
    nxt[2] = [99, 99]  # row 3 does not continue row 2
    data = Transitions(obs, np.zeros((6, 1)), nxt)
    assert data.window_starts(2).tolist() == [0, 1, 3, 4]
    assert data.window_starts(3).tolist() == [0, 3]


@pytest.mark.parametrize("change, message", [
    (lambda o, a, n: (o[:, :5], a, n), "next_observations has shape"),
    (lambda o, a, n: (o, a[:-1], n), "actions has"),
    (lambda o, a, n: (o, a, np.where(np.arange(len(n))[:, None] == 7, np.nan, n)), "next_observations row 7"),
    (lambda o, a, n: (o[:0], a[:0], n[:0]), "empty"),
    (lambda o, a, n: (o[:, 0], a, n), "observations has shape"),
])
def test_malformed_data_fails_clearly(data, change, message):
    o, a, n = change(data.observations, data.actions, data.next_observations)
    with pytest.raises(TransitionError, match=message):
        Transitions(o, a, n)


def test_wrong_state_size_for_system(system, space):
    data = Transitions(np.zeros((5, 9)), np.zeros((5, 3)), np.zeros((5, 9)))
    with pytest.raises(ValueError, match="observations of size 11"):
        fit_sysid(system, space, data)


def test_the_engine_reproduces_in_family_data_whose_torque_ramps_outlast_a_period():
    """At 500 N*m/s a command step above 5 N*m takes more than a period to reach: the engine runs the rate limit
    through the commands before each window (sim.parameters.history_depth) and predicts the recorded next states
    exactly."""
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system, generate_fr3_data

    space = fit_space("fr3_reach", ["joint2_damping", "torque_rate_limit", "command_latency"])
    truth = np.array([1.1, 500.0, 0.0025])
    data = generate_fr3_data(space, truth, episodes=3, steps=60, seed=1)
    assert np.abs(np.diff(data.actions, axis=0)).max() > 7.0  # some ramps outlast a period
    predictor = BatchPredictor(fr3_system(), space, nthread=1)
    starts = np.arange(len(data))
    obs, actions, target, previous = data.windows(starts, 1, predictor.depth)
    predicted = predictor.predict(obs, actions, np.repeat(truth[None], len(starts), axis=0), previous)
    np.testing.assert_allclose(predicted, target, rtol=0, atol=1e-9)


def test_noise_parameters_are_rejected(system):
    space = ParameterSpace.from_list([{"name": "position_noise_std", "nominal": 0, "bounds": [0, 0.01],
                                       "kind": "position_noise_std"}])
    with pytest.raises(ValueError, match="noise effects"):
        BatchPredictor(system, space)


def test_windows_carry_the_actions_before_them_within_their_trajectory():
    obs = np.arange(12, dtype=float).reshape(6, 2)
    actions = np.arange(6, dtype=float)[:, None] + 1
    data = Transitions(obs, actions, obs + 2, ends=np.array([0, 0, 1, 0, 0, 1], dtype=bool))
    *_, past = data.windows(np.array([0, 2, 4, 5]), 1, depth=3)
    assert past[..., 0].tolist() == [[0, 0, 0], [2, 1, 0], [4, 0, 0], [5, 4, 0]]


def test_the_engine_applies_whole_period_delays_from_the_actions_before_the_window():
    from sim2real_core.fit.engine import history_depth
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system
    arm, arm_space = fr3_system(), fit_space("fr3_reach", ["joint2_damping", "command_latency", "torque_rate_limit",
                                                           "action_delay"])
    assert history_depth(arm_space) == 1 + 3 + 4  # delays to 3 periods, the period before, the rate limit's preroll
    rng = np.random.default_rng(4)
    params = rng.uniform(arm_space.low, arm_space.high, (8, arm_space.dim))
    params[:, 3] = np.arange(8) % 4
    home = np.concatenate([np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]), np.zeros(7)])
    observations = home + rng.normal(0, 0.05, (8, 14))
    actions, previous = rng.uniform(-5, 5, (8, 3, 7)), rng.uniform(-5, 5, (8, 8, 7))
    fast = BatchPredictor(arm, arm_space, nthread=1).predict(observations, actions, params, previous)
    np.testing.assert_allclose(fast, reference_predict(arm, arm_space, observations, actions, params, previous),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["sysid", "dropo"])
def test_a_whole_period_action_delay_is_found_by_profile(method):
    """Rounded values give gradients nothing to follow; the profile over the delay's values finds it."""
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system, generate_fr3_data

    space = fit_space("fr3_reach", ["joint2_damping", "link4_mass_scale", "action_delay"])
    truth = np.array([1.1, 1.3, 2.0])
    data = generate_fr3_data(space, truth, episodes=4, steps=50, seed=2)
    config = SysIdConfig() if method == "sysid" else DropoConfig(**FAST)
    dist = fit(method, fr3_system(), space, data, config=config).distribution
    profile = dist.provenance["integer_profile"]
    assert profile["pinned"] == {"action_delay": 2.0} and len(profile["residuals"]) == 4
    assert dist.mean[2] == 2.0 and dist.std[2] == 0.0
    np.testing.assert_allclose(dist.mean[:2], truth[:2], atol=0.03 * (space.high - space.low)[:2].max())


def test_fr3_engine_matches_the_simulator():
    """The FR3 fitting system predicts exactly what sim.batch.BatchSimulator steps (same parameters)."""
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system
    from sim2real_core.robot import load_robot
    from sim2real_core.sim.batch import BatchSimulator

    spec, space, system = load_robot(), fit_space("fr3_reach"), fr3_system()
    rng = np.random.default_rng(0)
    params = rng.uniform(space.low, space.high, (4, space.dim))
    sim = BatchSimulator("fr3", space, 4, control_period=spec.control_period, joints=spec.joint_names)
    sim.set_parameters(params)
    sim.reset(keyframe="home")
    obs = np.concatenate([spec.home + rng.normal(0, 0.1, (4, 7)), rng.normal(0, 0.3, (4, 7))], axis=1)
    sim.set_observation_state(obs)
    actions = rng.uniform(-5, 5, (4, 7))
    expected = sim.step(actions, noise=False)
    np.testing.assert_allclose(BatchPredictor(system, space, nthread=1).predict(obs, actions, params), expected,
                               atol=1e-12)


def test_fr3_reach_parameters_recovered():
    """Damping, frictionloss and armature of two joints from 200 random-torque transitions."""
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system, generate_fr3_data

    space = fit_space("fr3_reach", ["joint2_damping", "joint2_frictionloss", "joint4_armature", "link4_mass_scale"])
    truth = np.array([1.1, 0.6, 0.2, 1.3])
    data = generate_fr3_data(space, truth, episodes=4, steps=50, seed=2)
    dist = fit_dropo(fr3_system(), space, data, DropoConfig(**FAST)).distribution
    np.testing.assert_allclose(dist.mean, truth, atol=0.02 * (space.high - space.low).max())


def test_dropo_scores_the_truncated_normal_that_training_samples(system, space, data, predictor):
    """A mean at its lower bound: the fit's K samples and training's draws have the same distribution (one-sided
    truncated normal, mean above the bound), not half the samples clipped onto the bound."""
    from sim2real_core.fit.dropo import DropoObjective

    objective = DropoObjective(predictor, data, DropoConfig(samples=2000, transitions=20, seed=0))
    phi = objective.initial(space.low, 0.2)
    fitted = objective.samples(phi)
    mean, cov = objective.distribution(phi)
    trained = Distribution.gaussian(space, mean, covariance=cov, truncation_sigma=objective.config.truncation_sigma)
    drawn = trained.sample(np.random.default_rng(0), 20000)
    np.testing.assert_allclose(fitted.mean(axis=0), drawn.mean(axis=0), rtol=0.03)
    np.testing.assert_allclose(fitted.std(axis=0), drawn.std(axis=0), rtol=0.05)
    assert np.mean(fitted[:, 0] <= space.low[0] + 1e-12) < 0.01  # no pile-up on the bound


def test_engine_equals_the_reference_loop_on_the_arm_with_stribeck_drag_latency_and_rate_limit():
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system
    arm, arm_space = fr3_system(), fit_space("fr3_reach")
    assert {"dof_stribeck", "stribeck_velocity", "dof_drag", "command_latency",
            "torque_rate_limit"} <= {p.kind for p in arm_space}
    rng = np.random.default_rng(2)
    params = rng.uniform(arm_space.low, arm_space.high, (6, arm_space.dim))
    home = np.concatenate([np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]), np.zeros(7)])
    observations = home + rng.normal(0, 0.05, (6, 14))
    actions, previous = rng.uniform(-5, 5, (6, 3, 7)), rng.uniform(-5, 5, (6, 7))
    predictor = BatchPredictor(arm, arm_space, nthread=1)
    fast = predictor.predict(observations, actions, params, previous)
    np.testing.assert_allclose(fast, reference_predict(arm, arm_space, observations, actions, params, previous),
                               rtol=0, atol=1e-9)
    # the command before the window matters exactly through the latency and the rate limit's start (commands
    # within 0.2 N*m of zero change by less than the slowest limit's 0.5 N*m per physics step)
    assert not np.allclose(fast, predictor.predict(observations, actions, params))
    params[:, arm_space.index("command_latency")] = 0.0
    assert not np.allclose(predictor.predict(observations, actions, params, previous),
                           predictor.predict(observations, actions, params))
    small, small_previous = actions * 0.04, previous * 0.04
    np.testing.assert_allclose(predictor.predict(observations, small, params, small_previous),
                               predictor.predict(observations, small, params), rtol=0, atol=0)


def test_engine_equals_the_reference_loop_with_stribeck_friction_on_joints_apart():
    """Stribeck friction on joints 2 and 5 only: the kernel updates dofs that are not one run of indices."""
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system
    arm = fr3_system()
    space = fit_space("fr3_reach").subset(["joint2_stribeck", "joint5_stribeck", "stribeck_velocity",
                                           "joint2_frictionloss", "joint5_frictionloss"])
    rng = np.random.default_rng(5)
    params = rng.uniform(space.low, space.high, (4, space.dim))
    params[:, space.index("stribeck_velocity")] = 0.05
    home = np.concatenate([np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]), np.zeros(7)])
    observations = home + rng.normal(0, 0.02, (4, 14))
    actions = rng.uniform(-2, 2, (4, 3, 7))
    fast = BatchPredictor(arm, space, nthread=1).predict(observations, actions, params)
    np.testing.assert_allclose(fast, reference_predict(arm, space, observations, actions, params), rtol=0, atol=1e-9)
    without = params.copy()
    without[:, [space.index("joint2_stribeck"), space.index("joint5_stribeck")]] = 0.0
    assert not np.allclose(fast, BatchPredictor(arm, space, nthread=1).predict(observations, actions, without))


def test_transitions_chosen_from_the_data_are_all_of_them_when_affordable(data, predictor):
    from sim2real_core.fit.dropo import PROBE_TRANSITIONS, affordable_transitions
    config = DropoConfig(**FAST)
    everything, estimate = affordable_transitions(predictor, data, config, seconds=1e6)
    assert everything.transitions == 0 and estimate["transitions"] == estimate["available"] == len(data)
    assert estimate["seconds_per_evaluation_all"] == estimate["seconds_per_evaluation"] > 0
    hurried, estimate = affordable_transitions(predictor, data, config, seconds=1e-9)
    assert hurried.transitions == estimate["transitions"] == min(PROBE_TRANSITIONS, len(data))
