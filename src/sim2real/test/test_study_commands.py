"""The lock-study, tuning-study and study vision commands write their tables, JSON and plots."""
import argparse
import json

import yaml

from sim2real.pipeline import study_command
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


def test_the_vision_study_scores_both_locators_on_the_model_look_and_each_proxy_look(tmp_path):
    args = parse(study_command, ["vision", "--out", str(tmp_path), "--reality", "fr3_default,fr3_harsh", "--seeds",
                                 "2", "--images", "40", "--test-images", "10", "--epochs", "2", "--workers", "0"])
    assert study_command.run(args) == 0
    results = yaml.safe_load((tmp_path / "vision.yaml").read_text())
    assert not results["failed"] and len(results["errors"]) == 2
    assert set(results["errors"][0]) == {"model", "fr3_default", "fr3_harsh"}
    assert all(len(errors) == 10 and min(errors) >= 0 for seed in results["errors"] for look in seed.values()
               for errors in look.values())
    report = (tmp_path / "vision.md").read_text()
    assert "| fr3_harsh |" in report and "visual DR minus nominal look" in report
