"""SimOpt on the Hopper: a mis-set mean moves toward the truth from the policy's target rollouts."""
import numpy as np
import pytest

from sim2real_core.fit.hopper import BENCHMARK_MASSES, hopper_space, hopper_system
from sim2real_core.randomization.simopt import SimOptConfig, reps_weights, simopt_step, trajectory_discrepancy
from sim2real_core.sim.batch import BatchSimulator
from sim2real_core.sim.distributions import Distribution

EPISODES, STEPS = 4, 40


def policy(observations: np.ndarray, t: int) -> np.ndarray:
    """A PD on the three joint angles toward a slow swing (closed loop: it acts on what it observes)."""
    target = 0.3 * np.sin(0.15 * t + np.arange(3))
    return np.clip(2.0 * (target - observations[:, 2:5]) - 0.2 * observations[:, 8:11], -1.0, 1.0)


@pytest.fixture(scope="module")
def hopper():
    system, space = hopper_system(), hopper_space()
    rng = np.random.default_rng(0)
    starts = (system.model.qpos0 + rng.uniform(-0.005, 0.005, (EPISODES, system.model.nq)),
              rng.uniform(-0.005, 0.005, (EPISODES, system.model.nv)))

    def rollout(params: np.ndarray) -> np.ndarray:
        k = len(params)
        sim = BatchSimulator(system.model, space, k * EPISODES, nstep=system.frame_skip)
        sim.set_parameters(np.repeat(params, EPISODES, axis=0))
        sim.set_state(np.tile(starts[0], (k, 1)), np.tile(starts[1], (k, 1)))
        observed = np.empty((k * EPISODES, STEPS, system.state_dim))
        for t in range(STEPS):
            observed[:, t] = system.observe(*sim.state())
            sim.step(policy(observed[:, t], t), noise=False)
        return observed.reshape(k, EPISODES, STEPS, -1)

    return space, rollout


@pytest.mark.parametrize("truth", BENCHMARK_MASSES)
def test_simopt_moves_a_mis_set_mean_toward_the_truth(hopper, truth):
    space, rollout = hopper
    truth = np.array(truth)
    target = rollout(truth[None])[0]
    scale = target.reshape(-1, target.shape[-1]).std(axis=0) + 1e-3
    dist = Distribution.gaussian(space, space.nominal, std=np.full(space.dim, 0.5))
    start = np.linalg.norm(dist.mean - truth)
    history = []
    for iteration in range(12):
        dist, info = simopt_step(dist, rollout, target, scale, SimOptConfig(samples=32, kl_bound=0.3), iteration)
        history.append(info["discrepancy_weighted"])
    # 12 seeds x these three truths ended at 0.08-0.60 of the starting error (not all masses show in 40 steps)
    assert np.linalg.norm(dist.mean - truth) < 0.75 * start
    assert history[-1] < 0.5 * history[0]
    assert dist.method == "simopt" and dist.provenance["target_episodes"] == 12 * EPISODES
    assert dist.provenance["simopt_iterations"] == 12


def test_reps_weights_favour_low_costs_within_the_bound():
    costs = np.array([0.0, 1.0, 2.0, 10.0])
    tight, loose = reps_weights(costs, 0.01), reps_weights(costs, 5.0)
    assert np.isclose(tight.sum(), 1.0) and np.all(np.diff(tight) < 0)
    def kl(w):  # divergence of the reweighted samples from the sampling distribution (uniform over them)
        w = w[w > 0]
        return float(np.sum(w * np.log(w * len(costs))))

    assert kl(tight) <= 0.011 and 0.5 < kl(loose) <= np.log(len(costs))
    with pytest.raises(ValueError, match="finite"):
        reps_weights(np.array([0.0, np.nan]), 1.0)


def test_the_discrepancy_is_weighted_l1_plus_l2_in_units_of_the_scale():
    target = np.zeros((1, 2, 2))
    simulated = np.full((3, 1, 2, 2), 2.0) * np.arange(3)[:, None, None, None]
    d = trajectory_discrepancy(simulated, target, np.array([1.0, 2.0]), l1_weight=1.0, l2_weight=0.5)
    # per sample k: differences (2k, k) at two steps -> L1 2*(3k), L2 2*(4k^2 + k^2)
    np.testing.assert_allclose(d, [6 * k + 0.5 * 10 * k ** 2 for k in range(3)])
    with pytest.raises(ValueError, match="do not match"):
        trajectory_discrepancy(simulated[:, :, :1], target, np.ones(2))
