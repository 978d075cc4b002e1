"""Fixtures for node tests: real node processes over real DDS, and an in-test rclpy node to talk to them."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
import rclpy
import yaml
from rclpy.node import Node

from sim2real_core.runner import resolve_executable
from sim2real_core.stack import NodeSpec


class NodeProcessHandle:
    """A node started in its own process; `stop()` sends SIGINT and returns the exit code."""

    def __init__(self, spec: NodeSpec, workdir: Path):
        params = workdir / f"{spec.name}.yaml"
        params.write_text(yaml.safe_dump(spec.params_file_content()))
        self.log_path = workdir / f"{spec.name}.log"
        self._log = open(self.log_path, "w")
        command = [str(resolve_executable(spec.package, spec.executable)), *spec.ros_arguments(params)]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)

    def output(self) -> str:
        """Everything the node printed so far."""
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT the node, wait for it (SIGKILL after `timeout`), return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def launch_node(tmp_path) -> Callable[..., NodeProcessHandle]:
    """Start `sim2real_ros` node executables as processes; all are stopped at teardown."""
    started: list[NodeProcessHandle] = []

    def start(executable: str, name: str | None = None, parameters: dict | None = None,
              remappings: dict | None = None, package: str = "sim2real_ros") -> NodeProcessHandle:
        spec = NodeSpec(name=name or executable, package=package, executable=executable,
                        parameters=parameters or {}, remappings=remappings or {})
        handle = NodeProcessHandle(spec, tmp_path)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def ros_node():
    """An rclpy node inside the test process (a separate process from the nodes under test)."""
    rclpy.init()
    node = Node(f"test_probe_{os.getpid()}")
    yield node
    node.destroy_node()
    rclpy.try_shutdown()


def spin_until(node: Node, condition: Callable[[], bool], timeout: float) -> bool:
    """Spin `node` until `condition()` is true or `timeout` seconds pass; return whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        rclpy.spin_once(node, timeout_sec=0.02)
    return condition()
