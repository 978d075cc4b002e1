"""`sim2real collect`: exploration episodes on the 1 kHz franka emulation through the hardware collect stack,
started as an operator does, recorded to a bag that converts into 100 Hz transitions."""
import json
import shutil
import subprocess
import sys

import numpy as np

from sim2real_core.data.convert import bag_to_dataset


def test_collection_on_the_franka_emulation_converts_into_transitions_at_the_control_period(tmp_path):
    bag, summary = tmp_path / "bag", tmp_path / "collect.json"
    result = subprocess.run([sys.executable, shutil.which("sim2real"), "collect", "--bag", str(bag),
                             "--episodes", "2", "--episode-steps", "80", "--random-action-prob", "1",
                             "--json", str(summary)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = json.loads(summary.read_text())
    assert len(collected["steps"]) == 2 and collected["robot"] == "franka_proxy"
    # an episode runs its steps, or ends early in a reflex that the operator then recovers from
    for steps, fault in zip(collected["steps"], collected["faults"]):
        assert steps == 80 or fault == "reflex", (steps, fault)

    data = bag_to_dataset(bag)
    counts = data.metadata["counts"]
    assert counts["state_messages"] > 5 * counts["command_messages"], "franka_proxy publishes states at 1 kHz"
    # boundaries are the dispatcher's, not the robot side's start-pose resets
    assert set(np.unique(data.extras["episodes"])) == {0, 1}
    assert len(data.observations) >= 0.8 * sum(collected["steps"])
    episodes, dt = data.extras["episodes"], np.diff(data.extras["timestamps"])
    within = episodes[1:] == episodes[:-1]
    # one control period apart, except across a gap in the 1 kHz stream (the converter starts a new segment,
    # on its own grid, after it)
    one_period = np.isclose(dt[within], 0.01, atol=1e-5)
    assert one_period.mean() > 0.95, dt[within][~one_period]


def test_collect_refuses_an_existing_bag_folder(tmp_path):
    result = subprocess.run([sys.executable, shutil.which("sim2real"), "collect", "--bag", str(tmp_path),
                             "--random-action-prob", "1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "exists" in result.stderr
