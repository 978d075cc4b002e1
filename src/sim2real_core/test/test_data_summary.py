"""summarize() of bags and datasets, and the dataset / summary / bag-recover commands end to end."""
import argparse
import json

import numpy as np
import pytest
from data_bag_factory import COMMANDS, EPISODES, STATES, T0, TYPES, control_log, episode

from sim2real_core.data.bagio import BagError, write_bag
from sim2real_core.data.commands import bag_recover, dataset, summary
from sim2real_core.data.dataset import load_dataset
from sim2real_core.data.summary import format_summary, summarize

WITH_EPISODES = {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS], EPISODES: TYPES[EPISODES]}


def _bag(tmp_path):
    messages = [m for m in control_log(n_states=200) if not (m[0] == STATES and 100 <= (m[1] - T0) // 1_000_000 < 120)]
    messages += [(EPISODES, T0, episode("start", 0)), (EPISODES, T0 + 150_000_000, episode("end", 0))]
    return write_bag(tmp_path / "bag", messages, WITH_EPISODES)


def _run(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_bag_summary_counts_rates_gaps_and_episodes(tmp_path):
    info = summarize(_bag(tmp_path))
    assert info["kind"] == "bag" and info["message_count"] == 180 + 20 + 2
    topics = {t["topic"]: t for t in info["topics"]}
    states = topics[STATES]
    assert states["count"] == 180 and states["type"] == TYPES[STATES]
    assert states["gaps"] == 1 and states["max_gap_s"] == pytest.approx(0.021)
    assert topics[COMMANDS]["rate_hz"] == pytest.approx(100.0)
    assert info["episode_events"] == {"start": 1, "end": 1, "other": 0}
    assert info["duration_s"] == pytest.approx(0.1993, abs=1e-4)
    text = format_summary(info)
    assert STATES in text and "1 gaps" in text and "1 start, 1 end" in text


def test_dataset_command_then_summary_command(tmp_path, capsys):
    bag = _bag(tmp_path)
    out = tmp_path / "out" / "d.npz"
    assert _run(dataset, [str(bag), "--out", str(out), "--control-period", "0.01"]) == 0
    data = load_dataset(out)
    assert data.metadata["counts"]["gap_splits"] == 1 and data.metadata["source"]["bag"] == str(bag.resolve())
    assert "transitions:" in capsys.readouterr().out
    assert _run(summary, [str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "dataset" and info["transitions"] == len(data) and info["trajectories"] == 2
    assert info["metadata"]["state_layout"] == "joint_state_v1"


def test_summary_of_npy_directory_and_errors(tmp_path, capsys):
    for name, values in {"observations": np.zeros((3, 2)), "next_observations": np.ones((3, 2)),
                         "actions": np.zeros((3, 1)), "terminals": np.array([0, 0, 1])}.items():
        np.save(tmp_path / f"{name}.npy", values)
    assert _run(summary, [str(tmp_path)]) == 0
    assert "transitions: 3" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no such dataset"):
        _run(summary, [str(tmp_path / "missing")])


def test_bag_recover_command(tmp_path, capsys):
    bag = _bag(tmp_path)
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match="bag-recover"):
        summarize(bag)
    assert _run(bag_recover, [str(bag)]) == 0
    assert "complete, 202 messages" in capsys.readouterr().out
    assert summarize(bag)["message_count"] == 202
