"""Fixtures for node tests: real node processes over real DDS, and an in-test rclpy node to talk to them."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import rclpy
import yaml
from rclpy.node import Node
from rclpy.parameter_client import AsyncParameterClient

from sim2real_ros.runner import node_command
from sim2real_ros.service_calls import answered
from sim2real_ros.stack import NodeSpec


class NodeProcessHandle:
    """A node started in its own process; `stop()` sends SIGINT and returns the exit code."""

    def __init__(self, spec: NodeSpec, workdir: Path):
        params = workdir / f"{spec.name}.yaml"
        params.write_text(yaml.safe_dump(spec.params_file_content()))
        self.log_path = workdir / f"{spec.name}.log"
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(node_command(spec, params), stdout=self._log, stderr=subprocess.STDOUT,
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


ROS_BUILTIN_PARAMETERS = {"use_sim_time", "start_type_description_service"}


def parameter_descriptions(node: Node, target: str, timeout: float = 60.0) -> dict[str, str]:
    """`target` node's own parameters (not rclpy's built-ins) -> their descriptions, read over its parameter
    services as `ros2 param describe` does."""
    client = AsyncParameterClient(node, target)
    deadline = time.monotonic() + timeout
    assert client.wait_for_services(timeout_sec=timeout), f"{target}: parameter services did not come up"
    listed = answered_on(node, client.list_parameters, deadline - time.monotonic(), f"{target}: list_parameters")
    names = [n for n in listed.result.names if n not in ROS_BUILTIN_PARAMETERS]
    described = answered_on(node, lambda: client.describe_parameters(names), deadline - time.monotonic(),
                            f"{target}: describe_parameters")
    return {d.name: d.description for d in described.descriptors}


def answered_on(node: Node, send, timeout: float, what: str):
    """The answer to a repeatable request, spinning `node` and sending it again while unanswered."""
    return answered(send, lambda: rclpy.spin_once(node, timeout_sec=0.02), timeout, what)


class StackProcess:
    """`sim2real up ARGS...` in its own process group, its output collected line by line."""

    def __init__(self, *args: str):
        command = [sys.executable, shutil.which("sim2real"), "up", *args]  # this interpreter: Kilted or Jazzy
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def output(self) -> str:
        """Everything the stack printed so far."""
        return "".join(self.lines)

    def pid_of(self, node: str, timeout: float = 30.0) -> int:
        """The process id of one of the stack's nodes, from the runner's 'started NODE (pid N)' line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                found = re.search(rf"started {node} \(pid (\d+)\)", line)
                if found:
                    return int(found.group(1))
            time.sleep(0.05)
        raise AssertionError(f"{node} did not start:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT the runner (it stops its nodes), wait, return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(timeout=5)
        return self.process.returncode


@pytest.fixture
def up_stack() -> Callable[..., StackProcess]:
    """Start stacks with `sim2real up`, each in its own process group; all are stopped at teardown."""
    started: list[StackProcess] = []

    def start(*args: str) -> StackProcess:
        started.append(StackProcess(*args))
        return started[-1]

    yield start
    for stack in reversed(started):
        stack.stop()
