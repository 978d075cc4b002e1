"""Where the project's parallel work runs: one place that submits tasks and gathers their results.

`Cluster(workers, address)` is Ray (https://docs.ray.io): a running cluster at `address` (or the RAY_ADDRESS
environment variable; `auto` finds one started on this machine with `ray start`), else a local Ray instance with
`workers` CPUs (default: all of this machine's). `workers=0` keeps everything in this process, one task after the
other, for debugging. Tasks are plain functions of plain arguments; a task whose worker process dies is retried
(Ray's task retries), a task that raises is reported with its error and the others complete, and Ctrl-C cancels
what has not finished. Actors (`Cluster.actors`) hold state between calls, e.g. a shard of transitions that a fit
evaluates its likelihood on (fit.shards).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

RETRIES = 2  # times a task whose worker died is run again


@dataclass(frozen=True)
class Task:
    """One call: `function(*args)`, named for progress and errors, needing `cpus` CPUs."""

    name: str
    function: Callable[..., Any]
    args: tuple = ()
    cpus: float = 1.0


@dataclass
class Outcome:
    """A task's result, or the error that ended it (the traceback's text), and the node it ran on."""

    name: str
    value: Any = None
    error: str | None = None
    node: str = ""

    @property
    def ok(self) -> bool:
        """Whether the task returned."""
        return self.error is None


def _located(function: Callable[..., Any], args: tuple) -> tuple[Any, str]:
    """Run a task where Ray placed it and say which node that was."""
    import ray

    return function(*args), ray.get_runtime_context().get_node_id()


class Cluster:
    """Ray, local or remote, or this process.

    Args:
      workers: CPUs of a local Ray instance (None: all of this machine's); 0: no Ray, tasks run in this process.
      address: a running cluster to join (None: RAY_ADDRESS if set, else a local instance).
      retries: times a task whose worker process died is run again.
    """

    def __init__(self, workers: int | None = None, address: str | None = None, retries: int = RETRIES):
        if workers is not None and workers < 0:
            raise ValueError(f"workers must be >= 0 (0: in this process), got {workers}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.in_process = workers == 0 and self.address is None
        self.retries = retries
        self._started = False
        if self.in_process:
            return
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=workers or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False)
            self._started = True

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect from Ray (stopping a local instance) if this object connected."""
        if self._started:
            import ray

            ray.shutdown()
            self._started = False

    @property
    def nodes(self) -> list[str]:
        """The ids of the cluster's live nodes ('local' in process)."""
        if self.in_process:
            return ["local"]
        import ray

        return [node["NodeID"] for node in ray.nodes() if node["Alive"]]

    @property
    def cpus(self) -> int:
        """CPUs the work can use."""
        if self.in_process:
            return 1
        import ray

        return int(ray.cluster_resources().get("CPU", 1))

    def run(self, tasks: Sequence[Task], progress: Callable[[Outcome, int, int], None] | None = None) -> list[Outcome]:
        """Run every task; returns their outcomes in task order. `progress(outcome, done, total)` follows each."""
        if self.in_process:
            from threadpoolctl import threadpool_limits

            outcomes = []
            for task in tasks:
                try:
                    # BLAS and OpenMP threads as a Ray worker of task.cpus CPUs has them (OMP_NUM_THREADS): their
                    # reductions, and so the results, are the same in process as on the cluster
                    with threadpool_limits(limits=max(1, int(task.cpus))):
                        value = task.function(*task.args)
                    outcome = Outcome(task.name, value, node="local")
                except Exception:  # noqa: BLE001 - reported with the task's name; the others still run
                    outcome = Outcome(task.name, error=traceback.format_exc(), node="local")
                outcomes.append(outcome)
                if progress is not None:
                    progress(outcome, len(outcomes), len(tasks))
            return outcomes
        import ray

        remote = ray.remote(_located)
        refs = [remote.options(num_cpus=task.cpus, max_retries=self.retries, name=task.name).remote(task.function,
                                                                                                   task.args)
                for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        outcomes: list[Outcome | None] = [None] * len(tasks)
        pending = list(refs)
        try:
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                i = index[finished[0]]
                try:
                    value, node = ray.get(finished[0])
                    outcomes[i] = Outcome(tasks[i].name, value, node=node)
                except ray.exceptions.RayError as error:
                    outcomes[i] = Outcome(tasks[i].name, error=str(error))
                if progress is not None:
                    progress(outcomes[i], len(tasks) - len(pending), len(tasks))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return outcomes

    def actors(self, cls: type, arguments: Sequence[tuple], cpus: float = 1.0) -> list:
        """One instance of `cls` per argument tuple, each on a Ray worker (restarted if its process dies), or in this
        process; call them with `Cluster.call`."""
        if self.in_process:
            return [cls(*args) for args in arguments]
        import ray

        remote = ray.remote(cls).options(num_cpus=cpus, max_restarts=self.retries, max_task_retries=self.retries)
        return [remote.remote(*args) for args in arguments]

    def call(self, actors: Sequence, method: str, *args) -> list:
        """`method(*args)` on every actor at once; their results in actor order."""
        if self.in_process:
            return [getattr(actor, method)(*args) for actor in actors]
        import ray

        shared = [ray.put(arg) for arg in args]  # sent once, not once per actor
        return ray.get([getattr(actor, method).remote(*shared) for actor in actors])


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """`--ray-address` and `--workers`, for commands whose work runs on a Cluster."""
    parser.add_argument("--ray-address", help="a running Ray cluster to run on (default: RAY_ADDRESS if set, else a "
                                              "local Ray instance); with several machines, --out must be a folder "
                                              "every node can reach")
    parser.add_argument("--workers", type=int, help="CPUs of the local Ray instance (default: all of this machine's); "
                                                    "0: no Ray, everything in this process one task at a time")


def cluster_from_arguments(args: argparse.Namespace) -> Cluster:
    """The Cluster that --ray-address and --workers name."""
    return Cluster(workers=args.workers, address=args.ray_address)


def failed(outcomes: Sequence[Outcome]) -> str:
    """The errors of the outcomes that failed, one paragraph per task ('' when none did)."""
    return "\n".join(f"{o.name}: {o.error.strip().splitlines()[-1]}" for o in outcomes if not o.ok)


def progress_lines(progress: Callable[[str], None]) -> Callable[[Outcome, int, int], None]:
    """A `Cluster.run` report that passes `progress` one line per ended task: '[done/total] NAME done (SECONDS s)'
    or 'FAILED: the error's last line', seconds counted from this call."""
    started = time.perf_counter()

    def report(outcome: Outcome, done: int, total: int) -> None:
        state = "done" if outcome.ok else f"FAILED: {outcome.error.strip().splitlines()[-1]}"
        progress(f"[{done}/{total}] {outcome.name} {state} ({time.perf_counter() - started:.0f} s)")
    return report


def values(outcomes: Sequence[Outcome]) -> list:
    """The outcomes' values; RuntimeError naming every task that failed (raised after all of them ended)."""
    errors = failed(outcomes)
    if errors:
        raise RuntimeError(f"{sum(not o.ok for o in outcomes)} of {len(outcomes)} tasks failed:\n{errors}")
    return [o.value for o in outcomes]


def _ray_command(*arguments: str, **options) -> subprocess.Popen:
    """The `ray` command of this interpreter's Ray, token authentication off (a localhost cluster)."""
    return subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", *arguments],
                            env=dict(os.environ, RAY_AUTH_MODE="disabled"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options)


@contextlib.contextmanager
def localhost_cluster(nodes: int = 2, cpus: int = 1, timeout: float = 120.0) -> Iterator[str]:
    """A Ray cluster of `nodes` nodes with `cpus` CPUs each on this machine (`ray start --head`, then `ray start
    --address` for the others, each on 127.0.0.1 in a process group of its own); yields its address and stops
    exactly those processes afterwards. Token authentication is off, here and for the clients of this process."""
    import ray

    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    node = ("start", "--block", f"--num-cpus={cpus}", "--disable-usage-stats", "--node-ip-address=127.0.0.1")
    started = [_ray_command(*node, "--head", f"--port={port}", "--include-dashboard=false", start_new_session=True)]
    try:
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"a {nodes}-node Ray cluster did not come up on {address} in {timeout:.0f} s")
            if any(process.poll() is not None for process in started):
                raise RuntimeError(f"a Ray node of the cluster on {address} exited while starting")
            if _ray_command("status", f"--address={address}").wait() == 0:
                if len(started) < nodes:
                    started.append(_ray_command(*node, f"--address={address}", start_new_session=True))
                else:
                    ray.init(address=address, log_to_driver=False)
                    alive = sum(entry["Alive"] for entry in ray.nodes())
                    ray.shutdown()
                    if alive == nodes:
                        break
            time.sleep(1.0)
        yield address
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved
