"""The lock-study and tuning-study commands write their tables, JSON and plots."""
import argparse
import json

from sim2real.studies import lock_command
from sim2real.tuning import commands as tuning_commands


def parse(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


def test_lock_study_command_writes_table_json_and_plot(tmp_path):
    args = parse(lock_command, ["--out", str(tmp_path), "--horizons", "4", "6", "--seeds", "2"])
    assert lock_command.run(args) == 0
    rows = json.loads((tmp_path / "lock_study.json").read_text())
    assert [r["horizon"] for r in rows] == [4, 6]
    assert "| 6 |" in (tmp_path / "lock_study.md").read_text()
    assert (tmp_path / "lock_study.png").stat().st_size > 1000


def test_tuning_study_command_writes_tables_json_and_plots(tmp_path):
    args = parse(tuning_commands, ["--out", str(tmp_path), "--seeds", "1", "--mdp-iterations", "3",
                                   "--lqr-iterations", "3", "--cmaes-budget", "8", "--workers", "0"])
    assert tuning_commands.run(args) == 0
    studies = json.loads((tmp_path / "tuning_study.json").read_text())
    assert set(studies) == {"mdp", "lqr", "lqr_cmaes", "accuracy_vs_performance"}
    assert len(studies["accuracy_vs_performance"]) == 2  # one real MDP, two sim families
    assert len(studies["lqr_cmaes"]["runs"][0]["history"]) == 9  # start + 8 target evaluations
    assert len(studies["mdp"]["runs"][0]["history"]) == 4
    report = (tmp_path / "tuning_study.md").read_text()
    assert report.count("| mean |") == 3
    for name in ("mdp", "lqr", "lqr_cmaes"):
        assert (tmp_path / f"tuning_{name}.png").stat().st_size > 1000
