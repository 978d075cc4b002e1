"""`sim2real fit` and `sim2real fit-study` end to end on small synthetic Hopper data."""
import subprocess
import sys

import numpy as np
import pytest

from sim2real_core.data.dataset import TransitionDataset, save_dataset
from sim2real_core.fit.hopper import generate_hopper_data
from sim2real_core.fit.study import run_study
from sim2real_core.sim.distributions import load_distribution

TRUTH = [4.2, 3.3, 2.2, 4.6]


def _sim2real(*args):
    return subprocess.run([sys.executable, "-m", "sim2real_ros.cli", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def dataset_path(tmp_path_factory):
    data = generate_hopper_data(TRUTH, episodes=3, steps=80, seed=4)
    ends = data.ends.copy()
    ds = TransitionDataset(data.observations, data.actions, data.next_observations, np.zeros(len(data), bool), ends,
                           metadata={"robot": "hopper", "true_parameters": data.metadata["true_parameters"]})
    return save_dataset(tmp_path_factory.mktemp("fit") / "hopper.npz", ds)


@pytest.mark.parametrize("method", ["dropo", "sysid", "uniform"])
def test_fit_command_writes_distribution_and_report(dataset_path, tmp_path, method):
    out = tmp_path / "fit.yaml"
    proc = _sim2real("fit", str(dataset_path), "--method", method, "--space", "hopper", "--out", str(out),
                     "--report", str(tmp_path / "report"), "--samples", "8", "--transitions", "40",
                     "--budget", "5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    dist = load_distribution(out)
    assert dist.method == method
    assert dist.provenance["transitions"] == 240
    if method != "uniform":
        assert np.linalg.norm(dist.mean - TRUTH) < 0.1
    if method == "dropo":  # epsilon is learned by default, from its start value
        assert dist.provenance["settings"]["learn_epsilon"] is True
    for name in ("summary.md", "marginals.png", "objective.png", "prediction.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "| torso_mass | kg |" in (tmp_path / "report" / "summary.md").read_text()


def test_fit_command_rejects_bad_inputs(dataset_path, tmp_path):
    proc = _sim2real("fit", str(tmp_path / "missing.npz"), "--space", "hopper", "--out", str(tmp_path / "x.yaml"))
    assert proc.returncode == 2 and "missing.npz" in proc.stderr
    proc = _sim2real("fit", str(dataset_path), "--space", "fr3_reach", "--out", str(tmp_path / "x.yaml"), "--quiet")
    assert proc.returncode == 2 and "observations of size 14" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.slow
def test_study_quick(tmp_path):
    results = run_study(tmp_path, quick=True, progress=lambda *_: None)
    errors = [row["mean_error"] for row in results["consistency"]]
    assert errors[-1] < errors[0]
    col = results["collapse"]
    assert all(col["edropo_std"][n] > col["dropo_std"][n] for n in ("leg_mass", "foot_mass"))
    flight, ground = results["coverage"]["flight"], results["coverage"]["ground"]
    assert not flight["dropo_identifiability"]["foot_friction"]["identifiable"]
    assert ground["dropo_identifiability"]["foot_friction"]["identifiable"]
    assert abs(ground["dropo_mean"]["foot_friction"] - 1.2) < 0.05
    ci = flight["sysid_confidence_95"]["foot_friction"]
    assert ci[1] - ci[0] > 1.0  # SysID's interval is wide where the data says nothing
    assert (tmp_path / "study.md").exists() and (tmp_path / "consistency.png").exists()
