"""Distributions over parameter spaces: sampling moments, bounds, truncation and the YAML file."""
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.sim.distributions import Distribution, load_distribution
from sim2real_core.sim.parameters import Parameter, ParameterSpace

N = 40_000


def space():
    return ParameterSpace.from_list([
        {"name": "a", "unit": "kg", "nominal": 1.0, "bounds": [0.0, 10.0], "kind": "body_mass", "element": "b"},
        {"name": "b", "unit": "N*m*s/rad", "nominal": 0.5, "bounds": [0.0, 2.0], "kind": "dof_damping", "element": "j"},
        {"name": "delay", "unit": "control periods", "nominal": 0, "bounds": [0, 3], "kind": "action_delay",
         "integer": True},
    ], name="test")


def test_uniform_sampling_matches_its_moments():
    dist = Distribution.uniform(space(), low=[2.0, 0.5, 0], high=[4.0, 1.5, 3])
    draws = dist.sample(np.random.default_rng(0), N)
    assert np.all(draws >= dist.low) and np.all(draws <= dist.high)
    assert np.allclose(draws[:, :2].mean(0), [3.0, 1.0], atol=0.02)
    assert np.allclose(draws[:, :2].std(0), dist.std[:2], rtol=0.02)
    assert set(np.unique(draws[:, 2])) == {0.0, 1.0, 2.0, 3.0}  # integer parameter rounded


def test_gaussian_full_covariance_sampling_matches_its_moments():
    cov = np.array([[0.04, 0.012, 0.0], [0.012, 0.01, 0.0], [0.0, 0.0, 0.01]])
    dist = Distribution.gaussian(space(), mean=[5.0, 1.0, 1.0], covariance=cov, truncation_sigma=None)
    draws = dist.sample(np.random.default_rng(1), N)
    assert np.allclose(draws[:, :2].mean(0), [5.0, 1.0], atol=0.005)
    assert np.allclose(np.cov(draws[:, :2].T), cov[:2, :2], atol=0.002)
    assert np.corrcoef(draws[:, :2].T)[0, 1] == pytest.approx(0.6, abs=0.02)


def test_truncated_gaussian_stays_within_k_sigma_and_bounds_with_truncated_moments():
    dist = Distribution.gaussian(space(), mean=[1.0, 0.1, 0.0], std=[1.0, 0.2, 0.5], truncation_sigma=2.0)
    draws = dist.sample(np.random.default_rng(2), N)
    assert draws[:, 0].min() >= -1.0 + 1.0 and draws[:, 0].max() <= 3.0  # bound 0 cuts the lower tail
    assert draws[:, 1].min() >= 0.0 and draws[:, 1].max() <= 0.5
    # symmetric truncation at ±2σ keeps the mean and shrinks the std to 0.880σ
    inner = Distribution.gaussian(space(), mean=[5.0, 1.0, 1.0], std=[1.0, 0.2, 0.1], truncation_sigma=2.0)
    d = inner.sample(np.random.default_rng(3), N)
    assert np.all(np.abs(d[:, 0] - 5.0) <= 2.0) and d[:, 0].mean() == pytest.approx(5.0, abs=0.02)
    assert d[:, 0].std() == pytest.approx(0.8796, rel=0.02)


def test_many_means_at_a_bound_give_exact_one_sided_truncated_normals():
    # Nine parameters at their lower bound (fitted dampings often are): rejection from the joint normal would
    # accept 2^-9 of the draws and clip the rest onto the bound.
    wide = ParameterSpace.from_list([{"name": f"d{i}", "unit": "N*m*s/rad", "nominal": 0.5, "bounds": [0.0, 5.0],
                                      "kind": "dof_damping", "element": f"j{i}"} for i in range(9)], name="wide")
    dist = Distribution.gaussian(wide, mean=np.zeros(9), std=np.full(9, 1.0), truncation_sigma=2.0)
    draws = dist.sample(np.random.default_rng(4), N)
    assert draws.min() >= 0.0 and draws.max() <= 2.0
    assert np.mean(draws == 0.0) < 1e-3  # no mass piled on the bound
    # N(0, 1) truncated to [0, 2]: mean (φ(0) - φ(2)) / (Φ(2) - Φ(0)) = 0.7228
    assert np.allclose(draws.mean(0), 0.7228, atol=0.02)


def test_fixed_sampling_repeats_the_value():
    dist = Distribution.fixed(space(), [2.0, 1.0, 2])
    assert np.all(dist.sample(np.random.default_rng(0), 5) == [2.0, 1.0, 2.0])
    assert np.all(Distribution.fixed(space()).sample(np.random.default_rng(0), 2) == space().nominal)
    with pytest.raises(ValueError, match="outside its bounds"):
        Distribution.fixed(space(), [20.0, 1.0, 2])


@pytest.mark.parametrize("dist", [
    Distribution.fixed(space(), [2.0, 1.0, 2]),
    Distribution.uniform(space(), low=[1.0, 0.0, 0], high=[2.0, 1.0, 2]),
    Distribution.gaussian(space(), mean=[2.0, 1.0, 1.0], std=[0.1, 0.2, 0.3], method="dropo",
                          objective={"name": "mean_log_likelihood", "value": np.float64(1.5)},
                          provenance={"dataset": "d.npz", "transitions": np.int64(10)}),
    Distribution.gaussian(space(), mean=[2.0, 1.0, 1.0], covariance=[[0.04, 0.01, 0], [0.01, 0.04, 0], [0, 0, 0.01]],
                          truncation_sigma=3.0),
])
def test_yaml_round_trip(tmp_path, dist):
    path = dist.save(tmp_path / "dist.yaml")
    back = load_distribution(path)
    assert back.family == dist.family and back.space.names == dist.space.names
    assert np.allclose(back.mean, dist.mean) and np.allclose(back.std, dist.std)
    if dist.family == "gaussian":
        assert np.allclose(back.covariance, dist.covariance) and back.truncation_sigma == dist.truncation_sigma
    if dist.family == "uniform":
        assert np.allclose(back.low, dist.low) and np.allclose(back.high, dist.high)
    assert back.objective == dist.to_dict()["distribution"].get("objective", {})
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert np.allclose(back.sample(rng_a, 10), dist.sample(rng_b, 10))


def test_malformed_distributions_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="symmetric"):
        Distribution.gaussian(space(), mean=[1, 1, 1], covariance=np.ones((2, 2)))
    with pytest.raises(ConfigError, match="3 parameters"):
        Distribution(space(), "fixed", [1.0])
    with pytest.raises(ConfigError, match="within the parameter bounds"):
        Distribution.uniform(space(), low=[-1.0, 0.0, 0], high=[1.0, 1.0, 1])
    bad = tmp_path / "bad.yaml"
    bad.write_text("distribution: {family: gaussian, parameters: [{name: a, nominal: 1, bounds: [0, 2], "
                   "kind: action_noise_std, mean: 1}]}\n")
    with pytest.raises(ConfigError, match=f"{bad}: malformed gaussian"):
        load_distribution(bad)
    bad.write_text("nothing: 1\n")
    with pytest.raises(ConfigError, match=f"{bad}: distribution: Field required; nothing: Extra inputs"):
        load_distribution(bad)


@pytest.mark.parametrize("row, message", [
    ("mean: .nan, std: 0.1", r"mean of \['a'\] is not finite"),
    ("mean: 1, std: -0.1", r"std must be 1 finite values >= 0, got \{'a': -0.1\}"),
    ("mean: 1, std: .inf", r"std must be 1 finite values >= 0"),
    ("mean: 3, std: 0.1", r"mean of a is 3, outside its bounds \[0, 2\]"),
])
def test_a_distribution_file_with_impossible_values_is_refused_by_name(tmp_path, row, message):
    path = tmp_path / "dist.yaml"
    path.write_text("distribution: {family: gaussian, parameters: [{name: a, nominal: 1, bounds: [0, 2], "
                    f"kind: action_noise_std, {row}}}]}}\n")
    with pytest.raises(ConfigError, match=f"{path}: .*{message}"):
        load_distribution(path)


def test_a_fitted_mean_at_its_bound_loads():
    dist = Distribution.gaussian(space(), mean=[10.0 + 1e-12, 2.0, 0], std=[0.1, 0.1, 0.0])
    assert dist.mean[0] > 10.0


def test_embedded_distribution_keeps_other_parameters_nominal_and_sub_moments():
    full = ParameterSpace([Parameter("a", 1.0, 0.0, 2.0, "action_noise_std"),
                           Parameter("b", 0.5, 0.0, 1.0, "position_noise_std"),
                           Parameter("c", 0.2, 0.0, 1.0, "velocity_noise_std")], name="full")
    sub = full.subset(["c", "a"])
    rng = np.random.default_rng(0)
    for dist in (Distribution.gaussian(sub, [0.4, 1.2], std=[0.05, 0.1]),
                 Distribution.uniform(sub, [0.1, 0.5], [0.3, 1.5])):
        embedded = dist.embed(full)
        draws = embedded.sample(rng, 20000)
        assert np.all(draws[:, 1] == 0.5)  # b is not covered: nominal
        sub_draws = dist.sample(rng, 20000)
        assert np.allclose(draws[:, [2, 0]].mean(0), sub_draws.mean(0), atol=0.01)
        assert np.allclose(draws[:, [2, 0]].std(0), sub_draws.std(0), atol=0.01)
    with pytest.raises(KeyError, match="unknown parameter"):
        Distribution.fixed(full).embed(sub)
