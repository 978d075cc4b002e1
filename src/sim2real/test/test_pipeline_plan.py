"""The demo plan: budgets, optional stages, resuming, and refusal of a start stage the plan does not run."""
import json

import pytest

from sim2real.pipeline.demo import run_demo
from sim2real.pipeline.plan import STAGES, SURVEY_ROWS, DemoRun, load_plan


def test_the_adapt_stage_runs_only_with_progressive_and_the_vision_stage_only_with_the_survey():
    plain, progressive = load_plan(quick=True), load_plan(quick=True, progressive=True)
    both = load_plan(quick=True, progressive=True, survey=True)
    assert "adapt" not in plain.stages and "vision" not in progressive.stages and both.stages == STAGES
    assert both.distributions == plain.distributions + SURVEY_ROWS and progressive.distributions == plain.distributions
    assert both.stage("survey")["simopt"]["target_episodes"] > 0
    assert progressive.stage("progressive")["from"] in progressive.distributions
    full = load_plan(progressive=True)
    assert full.stage("train")["base_steps"] > 0 and full.stage("train")["steps"] > 0
    assert full.stage("progressive")["target_episodes"] > progressive.stage("progressive")["target_episodes"]


def test_starting_at_a_stage_outside_the_plan_is_refused(tmp_path):
    with pytest.raises(ValueError, match="stage 'adapt' is not part of this plan"):
        run_demo(tmp_path, quick=True, start="adapt")
    with pytest.raises(ValueError, match="unknown stage 'explore'"):
        run_demo(tmp_path, quick=True, start="explore")


def test_resuming_keeps_earlier_stages_and_drops_the_rerun_ones(tmp_path):
    earlier = {"plan": {}, "timings_s": {"fit": 1.0, "train": 2.0, "adapt": 3.0},
               "fit": {"dropo": "a"}, "train": {"none": "b"}, "deploy": {"none": "c"}, "adapt": {"from": "dropo"}}
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    run = DemoRun(out=tmp_path, plan=load_plan(quick=True))  # no adapt stage: its old table must not survive
    run.resume("train")
    assert run.results == {"fit": {"dropo": "a"}} and run.timings == {"fit": 1.0}
    with pytest.raises(FileNotFoundError, match="results.json from an earlier run is missing"):
        DemoRun(out=tmp_path / "empty", plan=run.plan).resume("fit")


def test_a_bad_plan_names_the_file_and_the_field(tmp_path):
    import yaml

    from sim2real_core.config import ConfigError, config_path

    body = yaml.safe_load(config_path("pipeline", "demo.yaml").read_text())
    body["demo"]["distributions"].append("guided")
    body["demo"]["budgets"]["fast"] = {}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=r"demo.yaml: demo: budgets.fast.\[key\]: Input should be 'full' or 'quick'"):
        load_plan(path=path)
    del body["demo"]["budgets"]["fast"]
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=r"distributions \['guided'\] are neither one of none/uniform/adr/active/"):
        load_plan(path=path)
    body["demo"]["distributions"].remove("guided")
    body["demo"]["survey"]["quick"]["rows"] = ["simopt", "curiosity"]
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=r"survey.quick.rows.1: Input should be 'adr', 'active', 'memory' or"):
        load_plan(path=path, quick=True, survey=True)
