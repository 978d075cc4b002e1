"""SimOpt's loop on the FR3 reach task against a reality proxy: simulated rollouts reproduce the target's
trajectories best near its truth, and the loop counts its target episodes."""
import numpy as np
import pytest

from sim2real_core.policy.policy_file import load_policy
from sim2real_core.policy.tasks import make_task
from sim2real_core.policy.training import train_policy
from sim2real_core.randomization.rollouts import closed_loop_rollouts
from sim2real_core.randomization.simopt import trajectory_discrepancy
from sim2real_core.randomization.simopt_loop import SimOptLoopConfig, rollout_setup, run_simopt, target_rollouts
from sim2real_core.sim.distributions import Distribution, load_distribution
from sim2real_core.sim.reality import load_reality

PROXY = "fr3_mild"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A briefly trained reach policy (what the loop fine-tunes)."""
    folder = tmp_path_factory.mktemp("base")
    train_policy(make_task("reach", "none"), 4096, folder, progress=False)
    return folder


def test_simulated_rollouts_match_the_target_better_at_its_truth_than_far_from_it(base):
    policy = load_policy(base)
    observed, starts = target_rollouts(policy, "reach", PROXY, episodes=3, horizon=30, seed=5)
    assert observed.shape == (3, 31, 17) and np.allclose(starts, observed[:, 0])
    setup = rollout_setup("reach")
    space = setup.space
    reality = load_reality(PROXY)
    truth = space.vector({k: v for k, v in reality.space.as_dict(reality.truth).items() if k in space.names},
                         fill_nominal=True)
    far = truth.copy()
    for name in space.names:
        if name.endswith("_mass_scale"):
            far[space.index(name)] = space[name].high
        elif name.endswith("_damping"):
            far[space.index(name)] = space[name].high
    simulated = closed_loop_rollouts(policy, setup, np.stack([truth, far]), starts, 30)
    assert simulated.shape == (2, 3, 30, 14)
    target = observed[:, 1:, :14]
    scale = target.reshape(-1, 14).std(axis=0) + 1e-3
    at_truth, far_off = trajectory_discrepancy(simulated, target, scale)
    assert at_truth < 0.5 * far_off, (at_truth, far_off)


def test_the_loop_updates_counts_target_episodes_and_trains_the_final_policy(base, tmp_path):
    space = rollout_setup("reach").space
    config = SimOptLoopConfig(iterations=2, target_episodes=2, horizon=12, steps=1024)
    result = run_simopt("reach", PROXY, Distribution.uniform(space), base, tmp_path, config, progress=lambda _: None)
    assert result["target_episodes"] == 4 and len(result["history"]) == 2
    assert all(entry["effective_samples"] >= 1.0 for entry in result["history"])
    final = load_distribution(result["distribution"])
    assert final.method == "simopt" and final.provenance["target_episodes"] == 4
    assert final.provenance["simopt_iterations"] == 2
    policy = load_policy(result["policy"])
    assert policy.spec.training["distribution"] == result["distribution"]
    added = policy.spec.training["steps"] - load_policy(base).spec.training["steps"]
    assert result["steps"] == policy.spec.training["steps"] and result["fine_tuned_steps"] == added >= 3 * 1024
    assert (tmp_path / "iteration1" / "policy" / "policy.yaml").exists()
