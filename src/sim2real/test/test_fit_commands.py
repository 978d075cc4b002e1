"""`sim2real fit` and `sim2real fit-study` end to end on small synthetic Hopper and push data."""
import subprocess
import sys

import numpy as np
import pytest

from sim2real.studies.fit_consistency import run_study
from sim2real_core.config import ConfigError
from sim2real_core.data.dataset import TransitionDataset, load_dataset, save_dataset
from sim2real_core.data.layouts import JOINT_STATE, JOINT_STATE_PUCK
from sim2real_core.fit import Transitions
from sim2real_core.fit.files import fit_file, fit_space
from sim2real_core.fit.hopper import generate_hopper_data
from sim2real_core.fit.push import generate_push_data
from sim2real_core.sim.distributions import load_distribution

TRUTH = [4.2, 3.3, 2.2, 4.6]


def _sim2real(*args):
    return subprocess.run([sys.executable, "-m", "sim2real.cli", *args], capture_output=True, text=True,
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
    assert dist.provenance["transitions"] == 160  # 1 of the 3 episodes held out for validation
    assert dist.provenance["validation"]["transitions"] == 80
    assert "| fit |" in (tmp_path / "report" / "summary.md").read_text()
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


def test_every_fit_option_is_a_command_line_option_and_reaches_the_method_config():
    import argparse

    from sim2real_core.config import ConfigError, model_from_arguments
    from sim2real_core.fit.commands.fit import add_arguments
    from sim2real_core.fit.dropo import DropoConfig
    from sim2real_core.fit.options import FitOptions
    from sim2real_core.fit.sysid import SysIdConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    assert {"--" + name.replace("_", "-") for name in FitOptions.model_fields} <= flags
    args = parser.parse_args(["d.npz", "--space", "hopper", "--out", "f.yaml", "--no-learn-epsilon", "--samples",
                              "8", "--optimizer", "cmaes", "--alpha", "0.5", "--init-std", "0.1",
                              "--sysid-transitions", "0", "--no-warm-start"])
    options = model_from_arguments(FitOptions, args)
    edropo = options.method_config("edropo")
    assert isinstance(edropo, DropoConfig)
    assert (edropo.learn_epsilon, edropo.samples, edropo.optimizer, edropo.entropy_weight, edropo.init_std,
            edropo.warm_start) == (False, 8, "cmaes", 0.5, 0.1, False)
    assert options.method_config("dropo").entropy_weight == 0.0
    sysid = options.method_config("sysid")
    assert isinstance(sysid, SysIdConfig) and sysid.transitions == 0
    assert FitOptions().method_config("dropo").learn_epsilon  # learned epsilon unless told otherwise
    with pytest.raises(ConfigError, match=r"samples: Input should be greater than or equal to 2 \(got 1\)"):
        model_from_arguments(FitOptions, parser.parse_args(["d", "--space", "s", "--out", "o", "--samples", "1"]))
    with pytest.raises(SystemExit):  # argparse refuses an unknown optimiser by name
        parser.parse_args(["d", "--space", "s", "--out", "o", "--optimizer", "adam"])


def test_strict_bounds_become_the_nearest_inclusive_bounds():
    import math

    from sim2real_core.config import option_bounds
    from sim2real_core.fit.options import FitOptions

    low, high = option_bounds(FitOptions, "epsilon")  # gt=0: the smallest positive float
    assert low == math.nextafter(0.0, 1.0) and high is None
    assert option_bounds(FitOptions, "init_std") == (math.nextafter(0.0, 1.0), 1.0)
    assert option_bounds(FitOptions, "samples") == (2, 100_000)


def test_data_the_system_cannot_have_produced_is_refused_before_fitting(dataset_path, tmp_path):
    data = load_dataset(dataset_path)

    def saved(name, **changes):
        fields = {"observations": data.observations, "actions": data.actions,
                  "next_observations": data.next_observations, "terminals": data.terminals,
                  "timeouts": data.timeouts, "metadata": dict(data.metadata)}
        fields.update(changes)
        return save_dataset(tmp_path / f"{name}.npz", TransitionDataset(**fields))

    too_strong = data.actions.copy()
    too_strong[17, 2] = 3.0  # hopper.xml's actuators take ctrl in [-1, 1]
    proc = _sim2real("fit", str(saved("strong", actions=too_strong)), "--space", "hopper", "--out",
                     str(tmp_path / "x.yaml"), "--quiet")
    assert proc.returncode == 2 and "action column 2 is 3 at row 17, beyond the model's actuator range" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()
    with pytest.raises(ConfigError, match="control period of 0.01 s, but system 'hopper' steps 0.008 s"):
        fit_file(saved("period", metadata={**data.metadata, "control_period": 0.01}), "dropo", "hopper", None)
    few = {name: getattr(data, name)[:3] for name in ("observations", "actions", "next_observations", "terminals",
                                                      "timeouts")}
    with pytest.raises(ConfigError, match="3 transitions for 4 fitted parameters"):
        fit_file(saved("few", **few), "dropo", "hopper", None)


PUCK = ["puck_mass", "puck_friction"]
PUCK_TRUTH = np.array([0.5, 0.7])  # kg, 1; nominal 0.2 kg, 0.4


@pytest.fixture(scope="module")
def push_data():
    return generate_push_data(fit_space("fr3_push", PUCK), PUCK_TRUTH, episodes=8, steps=50, seed=0)


def _push_dataset(data: Transitions, layout: str) -> TransitionDataset:
    return TransitionDataset(data.observations, data.actions, data.next_observations, np.zeros(len(data), bool),
                             data.ends.copy(), metadata={"robot": "fr3", "state_layout": layout})


def test_fit_command_picks_the_push_system_from_the_layout(push_data, tmp_path):
    path = save_dataset(tmp_path / "push.npz", _push_dataset(push_data, JOINT_STATE_PUCK))
    out = tmp_path / "puck.yaml"
    proc = subprocess.run([sys.executable, "-m", "sim2real.cli", "fit", str(path), "--method", "sysid",
                           "--space", "fr3_push", "--parameters", "puck_mass,puck_friction", "--transitions", "40",
                           "--threads", "2", "--holdout", "0", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    dist = load_distribution(out)
    assert list(dist.space.names) == PUCK and dist.provenance["system"] == "fr3_push"
    assert np.all(np.abs(dist.mean - PUCK_TRUTH) < 0.1), dist.mean
    assert "puck_mass" in proc.stdout and "puck_friction" in proc.stdout
    # the same arrays labelled as arm-only data do not fit the push system
    wrong = save_dataset(tmp_path / "wrong.npz", _push_dataset(push_data, JOINT_STATE))
    proc = subprocess.run([sys.executable, "-m", "sim2real.cli", "fit", str(wrong), "--method", "sysid",
                           "--system", "fr3_push", "--space", "fr3_push", "--parameters", "puck_mass",
                           "--out", str(tmp_path / "x.yaml"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "expects state layout 'joint_state_puck_v1'" in proc.stderr
    assert "'joint_state_v1'" in proc.stderr and not (tmp_path / "x.yaml").exists()
