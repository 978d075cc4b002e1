"""Sharded likelihood benchmark: DROPO's sampled objective on 100k Hopper transitions, in process and on Ray.

Measured in one run, each the second evaluation at one φ (the first allocates batches and starts shards): in process
(all threads of this machine, and one thread), on a local Ray instance with one shard per CPU, and on a two-node Ray
cluster on localhost (`ray start`, one CPU per node, one shard per node). Prints transition-samples per second,
each Ray setting's ratio to in-process, the serial fraction that Amdahl's law gives for it, and what a cluster of
64 cores would reach at the measured per-core throughput.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np

from sim2real_core.cluster import Cluster, localhost_cluster
from sim2real_core.fit import BatchPredictor, DropoConfig, DropoObjective
from sim2real_core.fit.hopper import generate_hopper_data, hopper_space, hopper_system

EPISODES, STEPS = 200, 500  # 100k transitions
SAMPLES = 2  # K: the smallest DROPO allows, so that one evaluation of 100k transitions takes seconds


def _seconds_per_evaluation(objective: DropoObjective, phi: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds of the second evaluation (the first allocates batches and starts shards), and its log-likelihoods."""
    objective.loglik(phi)
    start = time.perf_counter()
    loglik = objective.loglik(phi)
    return time.perf_counter() - start, loglik


def main() -> None:
    """Run the benchmark and print its ratios."""
    system, space = hopper_system(), hopper_space()
    truth = np.array([4.2, 3.3, 2.2, 4.6])
    data = generate_hopper_data(truth, episodes=EPISODES, steps=STEPS, seed=7, space=space, system=system)
    cores = os.cpu_count() or 1
    config = DropoConfig(samples=SAMPLES, transitions=0)
    samples = len(data) * SAMPLES
    print(f"   {len(data)} transitions x K={SAMPLES} samples per evaluation; {cores} cores, load average "
          f"{os.getloadavg()[0]:.2f}")
    phi = DropoObjective(BatchPredictor(system, space), data.subset(np.arange(10)), config).initial(
        truth, config.init_std)
    baseline, expected = _seconds_per_evaluation(DropoObjective(BatchPredictor(system, space), data, config), phi)
    single, _ = _seconds_per_evaluation(DropoObjective(BatchPredictor(system, space, nthread=1), data, config), phi)
    print(f"   in process ({cores} threads): {baseline:.2f} s per evaluation, {samples / baseline / 1e3:.0f}k "
          f"transition-samples/s; one thread: {single:.2f} s, {samples / single / 1e3:.0f}k/s")
    settings = []
    with localhost_cluster(nodes=2, cpus=1) as address, Cluster(address=address) as cluster:
        objective = DropoObjective(BatchPredictor(system, space), data, replace(config, shards=2), cluster=cluster)
        nodes = len(set(objective.sharded.nodes()))
        settings.append((f"2 Ray nodes x 1 CPU, 2 shards on {nodes} nodes", 2,
                         *_seconds_per_evaluation(objective, phi)))
        del objective
    with Cluster(workers=cores) as cluster:
        objective = DropoObjective(BatchPredictor(system, space), data, replace(config, shards=cores),
                                   cluster=cluster)
        settings.insert(0, (f"local Ray, {cores} shards", cores, *_seconds_per_evaluation(objective, phi)))
        del objective
    for name, workers, seconds, loglik in settings:
        speedup = single / seconds  # against one thread in process
        serial = (workers / speedup - 1) / (workers - 1) if workers > 1 else float("nan")
        per_core = samples / seconds / workers
        print(f"   {name}: {seconds:.2f} s per evaluation, {samples / seconds / 1e3:.0f}k transition-samples/s: "
              f"{baseline / seconds:.2f}x in process ({cores} threads), {speedup:.2f}x one thread; serial fraction "
              f"(Amdahl, {workers} workers against one thread) {serial:.2f}; same log-likelihoods as in process: "
              f"{np.array_equal(loglik, expected)}")
        print(f"     a cluster of 64 cores at this per-core rate ({per_core / 1e3:.0f}k/s): "
              f"{64 * per_core / 1e3:.0f}k transition-samples/s, one evaluation of 100k x {SAMPLES} in "
              f"{samples / (64 * per_core):.2f} s (before the driver's serial share)")
