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


def test_training_under_active_dr_draws_from_the_particles_and_moves_them_with_the_policy(tmp_path):
    from sim2real_core.policy.ppo import PPOConfig
    from sim2real_core.policy.tasks import make_task, ppo_defaults
    from sim2real_core.policy.training import CURRICULUM_DISTRIBUTION, train_policy
    from sim2real_core.sim.distributions import load_distribution

    task = make_task("reach", "active")
    curriculum = task.curriculum
    curriculum.every, curriculum.horizon = 1, 10
    before = curriculum.active.particles.copy()
    drawn = curriculum.start(np.arange(64))
    particles = curriculum.active.parameters(before)
    assert all(any(np.allclose(row, p) for p in particles) for row in drawn)  # every draw is a particle
    config = PPOConfig(**{**ppo_defaults("reach"), "num_envs": 2, "rollout_steps": 64})
    outcome = train_policy(task, 256, tmp_path / "active", config, progress=False, threads=1)
    assert curriculum.updates == 2 and len(curriculum.active.history) == 2  # one particle update per PPO update
    assert not np.allclose(curriculum.active.particles, before)
    assert outcome.policy.spec.training["distribution"] == "active"
    assert outcome.policy.spec.training["active"]["particle_updates"] == 2
    saved = load_distribution(tmp_path / "active" / CURRICULUM_DISTRIBUTION)
    assert saved.method == "active" and np.allclose(saved.mean, curriculum.active.parameters(
        curriculum.active.particles).mean(axis=0))
