"""Node processes that a command starts and drives over DDS (over-ROS evaluation and collection): each with its
parameter file and log in a work folder, checked while it runs, stopped with SIGINT as a launch would."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import yaml

from sim2real_ros.runner import node_command
from sim2real_ros.stack import NodeSpec


def spawn_node(spec: NodeSpec, workdir: Path) -> subprocess.Popen:
    """Start a node executable with its parameters file in `workdir`; output goes to workdir/NAME.log."""
    params = workdir / f"{spec.name}.yaml"
    params.write_text(yaml.safe_dump(spec.params_file_content()))
    log = open(workdir / f"{spec.name}.log", "w")
    return subprocess.Popen(node_command(spec, params), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def check_running(processes: dict[str, subprocess.Popen], workdir: Path) -> None:
    """Raise with the tail of its log when a node process (by node name) has exited."""
    for name, process in processes.items():
        if process.poll() is not None:
            log = workdir / f"{name}.log"
            raise RuntimeError(f"node {name} exited with {process.returncode}; see the logs in {workdir}"
                               + (f"\n{log.read_text()[-2000:]}" if log.exists() else ""))


def stop_nodes(processes: dict[str, subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGINT every node (each publishes its last messages and, the logger, closes its bag), then wait; kill
    those that do not end within `timeout`."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes.values():
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
