"""The studies' grids on a real two-node Ray cluster on localhost (one CPU per node) give the in-process results."""
import pytest

from sim2real_core.cluster import Cluster, localhost_cluster


@pytest.fixture(scope="module")
def two_nodes():
    """The address of a two-node cluster on this machine, one CPU each."""
    with localhost_cluster(nodes=2, cpus=1) as address:
        yield address


def test_a_transfer_grid_on_both_nodes_equals_the_grid_in_process(two_nodes, tmp_path):
    from sim2real.pipeline.transfer import run_transfer_study
    from sim2real_core.policy.policy_file import load_policy

    grid = dict(proxies=["fr3_mild"], distributions=("none", "sysid", "adr", "memory"), seeds=2, quick=True,
                progress=lambda _: None)
    local = run_transfer_study(tmp_path / "local", cluster=Cluster(workers=0), **grid)
    with Cluster(address=two_nodes) as cluster:
        spread = run_transfer_study(tmp_path / "ray", cluster=cluster, **grid)
    assert not local["failed"] and not spread["failed"]
    rows, local_rows = spread["rows"]["fr3_mild"], local["rows"]["fr3_mild"]
    assert {name: len(seeds) for name, seeds in rows.items()} == {"none": 2, "sysid": 2, "adr": 2, "memory": 2}
    memory = load_policy(rows["memory"][0]["path"])  # fine-tuned from its own base, which has the same memory
    assert memory.spec.history == 2 and memory.spec.training["distribution"] == "uniform"
    assert load_policy(rows["none"][0]["path"]).spec.history == 0
    for name in rows:
        assert [seed["returns"] for seed in rows[name]] == [seed["returns"] for seed in local_rows[name]]
    assert len({seed["node"] for seeds in rows.values() for seed in seeds}) == 2
    assert spread["fits"]["fr3_mild"]["sysid"]["error"] == local["fits"]["fr3_mild"]["sysid"]["error"]
    report = (tmp_path / "ray" / "transfer.md").read_text()
    assert "## fr3_mild" in report and "| none | 2 |" in report and "| none | sysid |" in report


def test_the_fit_and_tuning_studies_on_both_nodes_equal_them_in_process(two_nodes, tmp_path):
    from sim2real.studies.fit_consistency import run_study
    from sim2real.tuning.study import lqr_cmaes_study, mdp_study

    quiet = dict(quick=True, progress=lambda _: None)
    local = (run_study(tmp_path / "local", cluster=Cluster(workers=0), **quiet),
             mdp_study(seeds=3, iterations=3, cluster=Cluster(workers=0)),
             lqr_cmaes_study(seeds=3, budget=8, cluster=Cluster(workers=0)))
    with Cluster(address=two_nodes) as cluster:
        spread = (run_study(tmp_path / "ray", cluster=cluster, **quiet),
                  mdp_study(seeds=3, iterations=3, cluster=cluster),
                  lqr_cmaes_study(seeds=3, budget=8, cluster=cluster))
    assert spread == local
    assert len(local[0]["consistency"]) == 2 and set(local[0]["coverage"]) == {"flight", "ground"}


def test_the_fit_and_tuning_commands_run_on_the_cluster_ray_address_names(two_nodes, tmp_path):
    import json
    import subprocess
    import sys

    import numpy as np

    from sim2real_core.data.dataset import TransitionDataset, save_dataset
    from sim2real_core.fit.hopper import generate_hopper_data
    from sim2real_core.sim.distributions import load_distribution

    data = generate_hopper_data([4.2, 3.3, 2.2, 4.6], episodes=3, steps=80, seed=4)
    path = save_dataset(tmp_path / "hopper.npz", TransitionDataset(
        data.observations, data.actions, data.next_observations, np.zeros(len(data), bool), data.ends.copy(),
        metadata={"robot": "hopper"}))

    def sim2real(*args):
        proc = subprocess.run([sys.executable, "-m", "sim2real.cli", *args], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    fit = ["fit", str(path), "--method", "dropo", "--space", "hopper", "--samples", "8", "--transitions", "40",
           "--budget", "5", "--quiet"]
    sim2real(*fit, "--out", str(tmp_path / "here.yaml"))
    sim2real(*fit, "--shards", "2", "--ray-address", two_nodes, "--out", str(tmp_path / "there.yaml"))
    here, there = load_distribution(tmp_path / "here.yaml"), load_distribution(tmp_path / "there.yaml")
    np.testing.assert_array_equal(there.mean, here.mean)  # common random numbers per transition, not per shard
    assert len(set(there.provenance["shard_nodes"])) == 2
    sim2real("tuning-study", "--out", str(tmp_path / "tuning"), "--seeds", "2", "--mdp-iterations", "3",
             "--lqr-iterations", "3", "--cmaes-budget", "8", "--ray-address", two_nodes)
    assert len(json.loads((tmp_path / "tuning" / "tuning_study.json").read_text())["mdp"]["runs"]) == 2
