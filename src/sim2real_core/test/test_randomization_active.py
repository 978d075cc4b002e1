"""Active domain randomization samples where the policy's experience differs from the reference more often than
uniform randomization does."""
import numpy as np
import pytest

from sim2real_core.randomization.active import ActiveDomainRandomization, ActiveDRConfig, Discriminator
from sim2real_core.sim.parameters import ParameterSpace

SPACE = ParameterSpace.from_list([{"name": name, "nominal": 0.5, "bounds": [0.0, 1.0], "kind": "action_noise_std"}
                                  for name in ("a", "b")])
HARD = 0.7  # above this value of `a` the environment changes what the policy experiences


def rollout(params: np.ndarray, transitions: int = 64, seed: int = 0) -> np.ndarray:
    """Transition features of a policy: noise around 0, shifted when `a` is in the hard region (the further in,
    the more); `b` changes nothing."""
    rng = np.random.default_rng(seed)
    shift = np.maximum(params[:, 0] - HARD, 0.0) * 10.0
    features = rng.standard_normal((len(params), transitions, 3))
    features[:, :, 0] += shift[:, None]
    return features


def test_active_dr_samples_the_hard_region_more_often_than_uniform():
    active = ActiveDomainRandomization(SPACE, rollout, ActiveDRConfig(particles=8, step=0.1, probe=0.2, seed=0))
    for _ in range(60):
        active.update()
    drawn = active.sample(4000)
    share = np.mean(drawn[:, 0] > HARD)
    uniform = 1.0 - HARD  # uniform randomization's share of the hard region
    # five particle seeds gave shares of 0.37-0.62: particles where the policy's experience equals the reference's
    # feel no gradient and stay, the others move in
    assert share > 1.2 * uniform
    assert 0.1 < np.std(drawn[:, 1])  # the particles stay spread along the parameter that changes nothing
    assert active.history[-1]["reward_mean"] > active.history[0]["reward_mean"]


def test_the_discriminator_tells_shifted_transitions_from_reference_ones():
    rng = np.random.default_rng(1)
    reference, shifted = rng.standard_normal((500, 2)), rng.standard_normal((500, 2)) + [2.0, 0.0]
    discriminator = Discriminator(2)
    discriminator.fit(shifted, reference)
    # two classes two standard deviations apart: the best classifier is right about 84 % of the time
    assert np.exp(discriminator.log_randomized(shifted)).mean() > 0.7
    assert np.exp(discriminator.log_randomized(reference)).mean() < 0.3
    with pytest.raises(ValueError, match="particles >= 2"):
        ActiveDRConfig(particles=1)
