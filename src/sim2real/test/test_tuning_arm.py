"""Tune for return vs DROPO on the FR3 reach task: parametrisation, budget, report files (real MuJoCo, tiny sizes)."""
import argparse
import json

import numpy as np
import pytest

from sim2real.tuning import arm_command
from sim2real.tuning.arm import (
    BASE,
    CONTROL,
    DROPO,
    GROUPS,
    HELDOUT_SEED,
    SELECTED,
    TUNED,
    ArmTuningOptions,
    GroupFactors,
    TargetEpisodes,
    reach_config,
    tune_for_return,
)
from sim2real_core.fit.files import fit_space
from sim2real_core.policy.policy_file import load_policy
from sim2real_core.policy.ppo import PPOConfig
from sim2real_core.policy.tasks import make_task, ppo_defaults
from sim2real_core.policy.training import train_policy
from sim2real_core.sim.distributions import Distribution


@pytest.fixture(scope="module")
def space():
    return fit_space("fr3_reach")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arm") / "base"
    train_policy(make_task("reach"), 2048, folder, reach_config(), progress=False)
    return folder


def test_group_factors_scale_their_groups_and_leave_the_rest_nominal(space):
    factors = GroupFactors(space)
    assert factors.names == ("link_mass", "joint_damping", "joint_friction") and factors.dim == 3
    assert np.allclose(factors.params(np.zeros(3)), space.nominal)
    values = factors.params(np.log([1.5, 3.0, 2.0]))
    for p, value in zip(space, values):
        expected = {"body_mass_scale": 1.5, "dof_damping": 3.0, "dof_frictionloss": 2.0}.get(p.kind, 1.0)
        assert value == pytest.approx(expected * p.nominal), p.name
    # the link mass factor is cut by the space's bounds (scales in [0.6, 1.8]); the others by FACTOR_RANGE
    assert np.allclose(np.exp(factors.bounds), [[0.6, 1.8], [0.25, 6.0], [0.25, 6.0]])
    for corner in (factors.bounds[:, 0], factors.bounds[:, 1]):
        values = factors.params(corner)
        assert np.all(values >= space.low) and np.all(values <= space.high)


def test_group_factors_refuse_bad_vectors_and_groups(space):
    factors = GroupFactors(space)
    with pytest.raises(ValueError, match=r"expected 3 log factors \['link_mass', 'joint_damping'"):
        factors.params(np.zeros(2))
    with pytest.raises(ValueError, match="factor link_mass=2.0.* outside its range"):
        factors.params(np.log([2.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="no parameter of kind 'geom_friction'"):
        GroupFactors(space, GROUPS + (("contact", "geom_friction"),))


def test_candidate_distributions(space):
    factors = GroupFactors(space)
    x = np.log([1.2, 2.0, 1.5])
    point = factors.distribution(x)
    assert point.family == "fixed" and np.allclose(point.mean, factors.params(x))
    assert point.provenance["group_factors"]["joint_damping"] == pytest.approx(2.0)
    wide = factors.distribution(x, spread=0.1)
    assert wide.family == "gaussian" and np.allclose(wide.std, 0.1 * np.abs(factors.params(x)))


def test_target_episodes_refuse_an_episode_beyond_the_budget():
    episodes = TargetEpisodes(make_task("reach", "none", reality="fr3_default").make_env, limit=2)
    env = episodes()
    env.reset(seed=0)
    env.reset(seed=1)
    with pytest.raises(RuntimeError, match="budget of 2 exhausted"):
        env.reset(seed=2)
    env.close()
    assert episodes.used == 2


@pytest.mark.slow
@pytest.mark.timeout(1800)  # more than pytest.ini's 600 s under two busy loops
def test_arm_tuning_command_keeps_the_budget_and_writes_the_report(tmp_path, space, base):
    fit = Distribution.gaussian(space, space.nominal * 1.2, std=0.05 * space.nominal + 1e-3, method="dropo")
    fit_path = fit.save(tmp_path / "dropo.yaml")
    parser = argparse.ArgumentParser()
    arm_command.add_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(["--base", str(base), "--dropo", str(fit_path), "--out", str(out), "--quick",
                              "--warm-start", "best", "--population", "3"])  # on a local Ray instance
    assert arm_command.run(args) == 0

    result = json.loads((out / "arm_tuning.json").read_text())
    quick = arm_command.QUICK
    tuning = result["tuning"]
    # the budget: candidates x episodes each, counted from the proxy's resets, never above the DROPO cost
    assert len(tuning["evaluations"]) == quick["budget"] // quick["episodes_per_candidate"]
    assert tuning["target_episodes"] == quick["budget"]
    assert [e["target_episodes_so_far"] for e in tuning["evaluations"]] == [1, 2, 3, 4]
    rows = {row["approach"]: row for row in result["rows"]}
    assert list(rows) == [BASE, CONTROL, SELECTED, DROPO, TUNED]
    assert rows[DROPO]["target_episodes"] == quick["budget"]
    assert rows[TUNED]["target_episodes"] == quick["budget"]
    for row in rows.values():
        assert row["heldout"]["episodes"] == quick["heldout"] and row["heldout"]["success_rate"] is not None
    assert result["heldout_episodes_used"] == 5 * quick["heldout"]
    assert result["settings"]["heldout_seeds"][0] == HELDOUT_SEED > result["settings"]["tuning_seeds"][1]
    # equal fine-tuning per policy: each candidate as many PPO steps as the DROPO policy
    dropo_steps = rows[DROPO]["steps_spent"]
    assert dropo_steps >= quick["steps"]
    assert rows[TUNED]["steps_spent"] == 4 * dropo_steps
    # the control: as many nominal-sim steps on top of the base as the tuned policy's lineage has
    base_steps = rows[BASE]["total_steps"]
    assert rows[CONTROL]["steps_spent"] == rows[TUNED]["total_steps"] - base_steps >= dropo_steps
    assert rows[CONTROL]["total_steps"] == rows[TUNED]["total_steps"]
    # the selection control: the same target episodes and steps as the tuner, nominal sim, PPO seeds differ
    assert rows[SELECTED]["target_episodes"] == quick["budget"]
    assert rows[SELECTED]["steps_spent"] == 4 * dropo_steps
    assert [e["ppo_seed"] for e in result["selection"]["evaluations"]] == [1, 2, 3, 4]
    assert [e["target_episodes_so_far"] for e in result["selection"]["evaluations"]] == [1, 2, 3, 4]
    # warm start: the first generation starts from the base, the second from the first's best candidate
    for first in ("candidate_00", "candidate_01", "candidate_02"):
        assert load_policy(out / "tuning" / first / "policy").spec.training["warm_start"] == str(base)
    best_first = max(tuning["evaluations"][:3], key=lambda e: e["target_return"])["folder"]
    later = load_policy(out / "tuning" / "candidate_03" / "policy").spec.training
    assert later["warm_start"] == f"{best_first}/policy"
    assert result["dropo"]["group_factors"]["link_mass"] == pytest.approx(1.2)
    report = (out / "arm_tuning.md").read_text()
    assert "count towards neither budget" in report and "| tune for return (CMA-ES) | 4 |" in report
    assert (out / "arm_tuning.png").stat().st_size > 10_000


def test_tuning_from_the_base_and_bad_budgets(tmp_path, base):
    with pytest.raises(ValueError, match=r"budget_episodes \(5\) must be a multiple of episodes_per_candidate \(2\)"):
        tune_for_return(base, tmp_path, ArmTuningOptions(budget=5, episodes_per_candidate=2))
    with pytest.raises(ValueError, match="held-out seeds"):
        tune_for_return(base, tmp_path, ArmTuningOptions(budget=4, seed=HELDOUT_SEED))
    config = PPOConfig(**{**ppo_defaults("reach"), "num_envs": 2, "rollout_steps": 256})
    tuning = tune_for_return(base, tmp_path / "run", ArmTuningOptions(budget=2, episodes_per_candidate=1, steps=512),
                             config=config)
    assert tuning.target_episodes == 2 and len(tuning.evaluations) == 2 and tuning.sim_steps == 2 * 512
    for candidate in ("candidate_00", "candidate_01"):
        training = load_policy(tmp_path / "run" / candidate / "policy").spec.training
        assert training["warm_start"] == str(base)  # never from the best candidate
        assert training["steps"] == load_policy(base).spec.training["steps"] + 512
    assert tuning.best.folder.parent.name in ("candidate_00", "candidate_01")
