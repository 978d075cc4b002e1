"""Automatic domain randomization widens the range of a parameter the policy handles, not of one it cannot."""
import numpy as np
import pytest

from sim2real_core.randomization.adr import ADRConfig, AutomaticDomainRandomization, Probe
from sim2real_core.sim.parameters import ParameterSpace, load_parameter_space


def space(*names: str) -> ParameterSpace:
    return ParameterSpace.from_list([{"name": name, "nominal": 1.0, "bounds": [0.0, 2.0], "kind": "action_noise_std"}
                                     for name in names])


SPACE = space("handled", "partly")


def run(adr: AutomaticDomainRandomization, succeeds, episodes: int = 6000) -> None:
    """Episodes drawn by ADR whose success (0 or 1, 95 % where `succeeds`) it records."""
    rng = np.random.default_rng(1)
    for _ in range(episodes):
        values, probe = adr.sample()
        assert np.all(values >= adr.low) and np.all(values <= adr.high)
        adr.record(probe, float(succeeds(values) and rng.random() < 0.95))


def test_adr_widens_what_the_policy_handles_as_far_as_it_handles_it():
    adr = AutomaticDomainRandomization(SPACE, ADRConfig(step=0.05, buffer_size=10), seed=0)
    run(adr, lambda values: abs(values[1] - 1.0) <= 0.3)  # `handled` never matters, `partly` within 0.3 of nominal
    widths = adr.widths()
    assert widths["handled"] == pytest.approx(1.0)  # the whole box [0, 2]
    assert 0.2 <= widths["partly"] <= 0.4  # +-0.3 of nominal is 0.3 of the box, give or take a step
    dist = adr.distribution()
    assert dist.family == "uniform" and dist.method == "adr"
    assert np.allclose(dist.low, adr.low) and np.allclose(dist.high, adr.high)
    assert {d["parameter"] for d in adr.decisions} == {"handled", "partly"}


def test_adr_does_not_widen_what_the_policy_cannot_handle():
    adr = AutomaticDomainRandomization(space("not_handled"), ADRConfig(step=0.05, buffer_size=10), seed=0)
    run(adr, lambda values: abs(values[0] - 1.0) <= 0.02)  # fails as soon as it leaves nominal by a step
    assert adr.widths()["not_handled"] <= 0.1  # at most one step out at each edge, then back
    assert any(d["value"] == 1.0 for d in adr.decisions)  # it tried an edge and came back to nominal


def test_an_edge_moves_only_on_a_full_buffer_and_stays_within_bounds():
    adr = AutomaticDomainRandomization(SPACE, ADRConfig(step=0.5, buffer_size=3))
    for _ in range(2):
        adr.record(Probe(0, 1), 1.0)
    assert adr.high[0] == 1.0
    for _ in range(3 * 5):
        adr.record(Probe(0, 1), 1.0)
    assert adr.high[0] == 2.0  # the bound, not beyond
    for _ in range(3 * 5):
        adr.record(Probe(0, 1), 0.0)
    assert adr.high[0] == 1.0  # back to nominal, not below it
    adr.record(None, 0.0)  # an episode that probed no edge changes nothing
    with pytest.raises(ValueError, match="finite"):
        adr.record(Probe(0, 0), float("nan"))
    with pytest.raises(ValueError, match="low_threshold"):
        ADRConfig(low_threshold=0.9, high_threshold=0.8)


def test_batched_training_environments_draw_from_adr_and_report_each_episode_to_it():
    from sim2real_core.sim.vector_tasks import FR3ReachVectorEnv

    reach = load_parameter_space("fr3_reach")

    def grow(seed: int) -> tuple[AutomaticDomainRandomization, np.ndarray]:
        # every episode probes an edge, and any result moves that edge outward: the ranges grow as episodes end
        adr = AutomaticDomainRandomization(reach, ADRConfig(step=0.1, buffer_size=1, low_threshold=-2.0,
                                                            high_threshold=-1.0, boundary_probability=1.0))
        envs = FR3ReachVectorEnv(4, curriculum=adr, episode_steps=3, seed=seed, nthread=1)
        envs.reset()
        np.testing.assert_array_equal(envs.sim.parameters, np.repeat(reach.nominal[None], 4, axis=0))
        for _ in range(3 * 5):
            envs.step(np.zeros((4, 7)))
        envs.close()
        return adr, envs.sim.parameters

    adr, params = grow(seed=0)
    assert len(adr.decisions) == 4 * 5  # five episodes ended in each of the four environments
    assert np.all(params >= adr.low - 1e-12) and np.all(params <= adr.high + 1e-12)
    assert np.any(params != reach.nominal)  # the sixth episodes were drawn from grown ranges
    assert not np.array_equal(grow(seed=1)[1], params)  # the draws follow the environments' seed
    with pytest.raises(ValueError, match="not both"):
        FR3ReachVectorEnv(1, distribution=adr.distribution(), curriculum=adr)


def test_training_under_adr_writes_the_ranges_it_grew(tmp_path):
    from sim2real_core.policy.ppo import PPOConfig
    from sim2real_core.policy.tasks import make_task, ppo_defaults
    from sim2real_core.policy.training import CURRICULUM_DISTRIBUTION, train_policy
    from sim2real_core.sim.distributions import load_distribution

    task = make_task("reach", "adr")
    assert task.curriculum is not None
    with pytest.raises(ValueError, match="takes no distribution"):
        make_task("reach", "adr", reality="fr3_default")
    config = PPOConfig(**{**ppo_defaults("reach"), "num_envs": 2, "rollout_steps": 128})
    outcome = train_policy(task, 512, tmp_path / "adr", config, progress=False, threads=1)
    training = outcome.policy.spec.training
    assert training["distribution"] == "adr" and set(training["adr"]["widths"]) == set(task.curriculum.space.names)
    saved = load_distribution(tmp_path / "adr" / CURRICULUM_DISTRIBUTION)
    assert saved.method == "adr" and np.allclose(saved.low, task.curriculum.low)
