"""Parallel work on a real two-node Ray cluster on localhost (`ray start --head` and a second `ray start --address`,
each with one CPU), and in process: placement, results equal to in-process ones, failures reported, a killed
worker survived."""
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sim2real_core.cluster import Cluster, Task, localhost_cluster
from sim2real_core.fit import DropoConfig, SysIdConfig, fit
from sim2real_core.fit.hopper import generate_hopper_data, hopper_space, hopper_system

FAST = dict(samples=8, transitions=60, linearized_transitions=150, max_evaluations=8)


@pytest.fixture(scope="module", autouse=True)
def tasks_by_value():
    """The tasks below live in this test module, which Ray's workers cannot import: send them by value."""
    from ray import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def two_nodes():
    """The address of a two-node cluster on this machine, one CPU each."""
    with localhost_cluster(nodes=2, cpus=1) as address:
        yield address


def _where(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def _fails() -> None:
    raise RuntimeError("this grid cell is broken")


def _dies_once(marker: str) -> str:
    """Kills its own worker process on the first attempt; the retry finds the marker and returns."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return f"survived {path.read_text()}"


@pytest.fixture(scope="module")
def hopper():
    system, space = hopper_system(), hopper_space()
    return system, space, generate_hopper_data(np.array([4.2, 3.3, 2.2, 4.6]), episodes=4, steps=60, seed=3,
                                               space=space, system=system)


@pytest.mark.parametrize("method", ["dropo", "sysid"])
def test_in_process_shards_give_the_unsharded_fit(hopper, method):
    system, space, data = hopper
    config = DropoConfig(**FAST) if method == "dropo" else SysIdConfig(transitions=120, max_iterations=6)
    whole = fit(method, system, space, data, config=config).distribution
    sharded = fit(method, system, space, data, config=replace(config, shards=3),
                  cluster=Cluster(workers=0)).distribution
    np.testing.assert_array_equal(sharded.mean, whole.mean)
    np.testing.assert_array_equal(sharded.covariance, whole.covariance)
    assert sharded.provenance["physics_steps"] == whole.provenance["physics_steps"]


def test_in_process_tasks_report_failures_and_finish_the_rest():
    outcomes = Cluster(workers=0).run([Task("a", _where, (0.0,)), Task("b", _fails), Task("c", _where, (0.0,))])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "this grid cell is broken" in outcomes[1].error and outcomes[2].value == "done"


def test_tasks_run_on_both_nodes_failures_are_reported_and_a_killed_worker_is_retried(two_nodes, tmp_path):
    with Cluster(address=two_nodes) as cluster:
        assert len(cluster.nodes) == 2 and cluster.cpus == 2
        tasks = [Task(f"cell{i}", _where, (1.0,)) for i in range(4)] + [Task("broken", _fails),
                                                                       Task("killed", _dies_once,
                                                                            (str(tmp_path / "marker"),))]
        outcomes = cluster.run(tasks)
    assert all(o.ok for o in outcomes[:4]), [o.error for o in outcomes[:4]]
    assert len({o.node for o in outcomes[:4]}) == 2
    assert not outcomes[4].ok and "this grid cell is broken" in outcomes[4].error
    assert outcomes[5].ok and outcomes[5].value.startswith("survived")


def test_fits_sharded_over_both_nodes_equal_the_in_process_fits(two_nodes, hopper):
    system, space, data = hopper
    configs = {"dropo": DropoConfig(**FAST), "sysid": SysIdConfig(transitions=120, max_iterations=6)}
    whole = {method: fit(method, system, space, data, config=config).distribution for method, config in configs.items()}
    with Cluster(address=two_nodes) as cluster:
        results = {method: fit(method, system, space, data, config=replace(config, shards=2), cluster=cluster)
                   for method, config in configs.items()}
    for method, result in results.items():
        np.testing.assert_array_equal(result.distribution.mean, whole[method].mean)
        np.testing.assert_array_equal(result.distribution.covariance, whole[method].covariance)
        assert len(set(result.info["shard_nodes"])) == 2
