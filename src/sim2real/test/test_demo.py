"""`sim2real demo --quick`: the whole pipeline on the reality proxy, over real DDS, end to end."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim2real.pipeline.plan import STAGES, load_plan
from sim2real_core.data.dataset import load_dataset
from sim2real_core.sim.distributions import load_distribution


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 5 minutes on 2 idle cores; more than pytest.ini's 600 s under two busy loops
def test_quick_demo_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, shutil.which("sim2real"), "demo", "--quick", "--progressive", "--survey",
                             "--seeds", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=1700)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plan = load_plan(quick=True, progressive=True, survey=True, seeds=2)
    results = json.loads((out / "results.json").read_text())
    assert set(results["timings_s"]) == set(STAGES) == set(plan.stages)

    # data came from the proxy over ROS: a real bag, converted into transitions of the planned episodes
    data = load_dataset(out / "dataset.npz")
    assert len(data.observations) > 0.8 * plan.stage("collect")["episodes"] * plan.stage("collect")["episode_steps"]
    assert data.metadata["counts"]["episodes"] == plan.stage("collect")["episodes"]

    # every fit wrote a distribution over the planned parameters
    for method in plan.methods:
        dist = load_distribution(out / "fits" / f"{method}.yaml")
        assert dist.method == method and list(dist.space.names) == list(plan.fit_parameters)

    # every training distribution was deployed through policy_server over DDS and scored
    assert set(results["deploy"]) == set(plan.distributions)
    for name, entry in results["deploy"].items():
        ros = entry["over_ros"]
        assert ros["over_ros"] and ros["episodes"] == plan.stage("evaluate")["episodes"]
        assert int(ros["server"]["periods"]) > 0, f"{name}: the policy server published nothing"

    # every policy was fine-tuned from its seed's base policy (the memory row from its own, with memory), for the
    # same number of steps (SimOpt's spread over its iterations); every seed scored
    base_steps = results["base"]["steps"]
    assert [entry["path"] for entry in results["base"]["seeds"]] == [str(out / "policies" / "base" / "policy.yaml"),
                                                                     str(out / "policies" / "seed1" / "base" /
                                                                         "policy.yaml")]
    assert results["memory_base"]["history"] > 0 and results["memory_base"]["steps"] == base_steps
    for name, entry in results["train"].items():
        assert [seed["steps"] - base_steps for seed in entry["seeds"]] == [plan.stage("train")["steps"]] * 2, name
        seed1 = Path(entry["seeds"][1]["path"])
        assert seed1.with_suffix(".safetensors").exists() and (out / "policies" / "seed1" / name) in seed1.parents
        seeds = results["deploy"][name]["in_process_seeds"]
        assert [len(seed["returns"]) for seed in seeds] == [plan.stage("evaluate")["episodes"]] * 2

    # each row's target episodes per seed: the collected ones for a fit, SimOpt's counted ones, none without data
    simopt = plan.stage("survey")["simopt"]
    costs = {name: entry["target_episodes"] for name, entry in results["train"].items()}
    assert costs == {"none": 0, "uniform": 0, "dropo": 3, "edropo": 3, "sysid": 3, "oracle": None, "adr": 0,
                     "active": 0, "memory": 0, "simopt": simopt["iterations"] * simopt["target_episodes"]}
    assert [seed["target_episodes"] for seed in results["train"]["simopt"]["seeds"]] == [costs["simopt"]] * 2
    assert load_distribution(results["train"]["simopt"]["seeds"][1]["distribution"]).space.dim > 0

    # the vision stage scored both locators on the model's look and the proxy's
    vision = results["vision"]
    assert len(vision["errors"]) == plan.stage("survey")["vision"]["seeds"] and not vision["failed"]
    assert set(vision["errors"][0]) == {"model", plan.reality}

    # progressive transfer stayed within its target budget and scored each step
    adapt = results["adapt"]
    assert 0 < adapt["target_steps"] <= plan.stage("progressive")["target_episodes"] * 300
    assert len(adapt["stages"]) == 3

    report = (out / "report.md").read_text()
    assert "## Progressive transfer" in report and "## Across seeds" in report and "## Vision" in report
    for name in plan.distributions:
        assert f"| {name} |" in report
    for figure in ("gap.png", "fitted_marginals.png", "learning_curves.png", "coverage.png", "combination_lock.png"):
        assert (out / "figures" / figure).stat().st_size > 1000, figure
