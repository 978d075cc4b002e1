"""Held-out validation of fits and the warnings that say when not to trust them (fit.validation)."""
import numpy as np
import pytest

from sim2real_core.data.dataset import TransitionDataset, save_dataset
from sim2real_core.fit.files import fit_file
from sim2real_core.fit.hopper import generate_hopper_data, hopper_space
from sim2real_core.fit.options import FitOptions
from sim2real_core.fit.validation import episode_ids, fit_warnings, split_episodes
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import ParameterSpace

TRUTH = [4.2, 3.3, 2.2, 4.6]
OPTIONS = FitOptions(samples=8, transitions=100, budget=10)


def hopper_file(tmp_path, space=None, action_noise=0.0):
    data = generate_hopper_data(TRUTH, episodes=5, steps=100, seed=4, space=space, action_noise=action_noise)
    dataset = TransitionDataset(data.observations, data.actions, data.next_observations, np.zeros(len(data), bool),
                                data.ends, metadata={"robot": "hopper"})
    return save_dataset(tmp_path / "hopper.npz", dataset)


def test_episodes_are_held_out_whole():
    data = generate_hopper_data(TRUTH, episodes=5, steps=20, seed=0)
    fit_part, held_out = split_episodes(data, 0.4, seed=1)
    assert len(fit_part) == 60 and len(held_out) == 40 and held_out.ends.sum() == 2 and episode_ids(held_out)[-1] == 1
    assert len(held_out.metadata["held_out_episodes"]) == 2
    assert split_episodes(data, 0.0)[1] is None and split_episodes(data.subset(np.arange(20)), 0.5)[1] is None
    assert len(split_episodes(data, 0.01)[1]) == 20  # at least one episode once something is asked for
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        split_episodes(data, 1.0)


def test_a_fit_inside_the_family_beats_nominal_on_held_out_episodes_without_warnings(tmp_path):
    done = fit_file(hopper_file(tmp_path, action_noise=0.01), "dropo", "hopper", None, OPTIONS)
    validation = done.validation
    assert validation.episodes == 1 and validation.transitions == 100 and len(done.data) == 400
    for horizon in (1, 10, 50):
        assert validation.error["fit"][horizon] < validation.error["nominal"][horizon] / 2
    assert validation.loglik["fit"] > validation.loglik["nominal"]
    assert 0.3 < validation.residual_ratio < 3.0 and validation.residual_structure < 0.3
    assert done.warnings == [] and done.result.distribution.provenance["warnings"] == []


def test_data_from_another_mass_convention_is_flagged_as_misspecified(tmp_path):
    """Masses changed with their inertia (body_mass_inertia), fitted with masses alone (the hopper space)."""
    rows = hopper_space().to_list()
    for row in rows:
        row["kind"] = "body_mass_inertia"
    done = fit_file(hopper_file(tmp_path, space=ParameterSpace.from_list(rows)), "dropo", "hopper", None, OPTIONS)
    assert done.validation.residual_structure > 0.5
    assert any("linear function of the state and action" in w and "misspecified" in w for w in done.warnings)
    assert done.result.distribution.provenance["validation"]["residual_structure"] > 0.5


def test_means_at_a_bound_and_traded_parameters_are_named():
    space = hopper_space()
    at_bound = Distribution.gaussian(space, [1.0, 4.0, 3.0, 9.99], std=[0.1] * 4)
    warnings = fit_warnings(at_bound)
    assert [w.split(" sits")[0] for w in warnings] == ["torso_mass", "foot_mass"]
    assert "lower bound (1 kg)" in warnings[0] and "upper bound (10 kg)" in warnings[1]
    cov = np.diag([0.04, 0.04, 0.04, 0.04])
    cov[1, 2] = cov[2, 1] = -0.039
    traded = fit_warnings(Distribution.gaussian(space, [4.0, 4.0, 3.0, 5.0], covariance=cov))
    assert traded == ["thigh_mass and leg_mass trade against each other (posterior correlation -0.97): the data "
                      "fix a combination, not each"]
