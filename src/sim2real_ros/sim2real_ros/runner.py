"""Start the nodes of a stack as separate processes: the `sim2real up` runner.

Stands in for `ros2 launch` where launch_ros is not installed. Each node runs in its own session, its
output is prefixed with its name, a node that dies is reported with its exit code and last log lines
(and restarted if it asks for respawn), and SIGINT/SIGTERM/SIGHUP stop every node cleanly. If the runner
itself dies (SIGKILL), the kernel sends each node SIGINT (PR_SET_PDEATHSIG), so no node is orphaned
still commanding the arm.
"""
from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from sim2real_core.config import ConfigError
from sim2real_ros.stack import NodeSpec, Stack

TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>


def _die_with_parent() -> None:
    """In the child before exec: SIGINT when the runner's thread that started it dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def resolve_executable(package: str, executable: str) -> Path:
    """Find `<prefix>/lib/<package>/<executable>` on AMENT_PREFIX_PATH, as `ros2 run` does."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        candidate = Path(prefix) / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    searched = ", ".join(prefixes) or "(AMENT_PREFIX_PATH is empty: source install/setup.sh)"
    raise ConfigError(f"executable {executable!r} of package {package!r} not found; searched: {searched}")


def node_command(spec: NodeSpec, params_file: str | os.PathLike | None = None) -> list[str]:
    """The argv that runs a node: its installed script with this interpreter (not the script's shebang), so a
    stack started from another environment (e.g. the ROS 2 Jazzy venv of `make test`) runs its nodes there."""
    return [sys.executable, str(resolve_executable(spec.package, spec.executable)), *spec.ros_arguments(params_file)]


@dataclass
class NodeProcess:
    """A running (or finished) node with the tail of its output."""

    spec: NodeSpec
    command: list[str]
    process: subprocess.Popen | None = None
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    starts: int = 0
    reader: threading.Thread | None = None


class StackRunner:
    """Run a stack's nodes until they all end or a stop is requested.

    Args:
      stack: the stack to run.
      out: where prefixed node output and runner messages go.
      respawn: override every node's respawn flag when not None.
      stop_timeout: seconds a node gets after SIGINT before SIGTERM, and again before SIGKILL.
    """

    def __init__(self, stack: Stack, out: TextIO = sys.stdout, respawn: bool | None = None,
                 stop_timeout: float = 5.0):
        self.stack = stack
        self.out = out
        self.respawn = respawn
        self.stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._params_dir = tempfile.TemporaryDirectory(prefix=f"sim2real-{stack.name}-")
        self.nodes = [NodeProcess(spec, self._command(spec)) for spec in stack.nodes]
        self.failures: list[tuple[str, int]] = []

    def _command(self, spec: NodeSpec) -> list[str]:
        params_file = Path(self._params_dir.name) / f"{spec.name}.yaml"
        params_file.write_text(yaml.safe_dump(spec.params_file_content(), sort_keys=False))
        return node_command(spec, params_file)

    def say(self, line: str, name: str = "up") -> None:
        """Print one prefixed line."""
        with self._lock:
            self.out.write(f"[{name}] {line}\n")
            self.out.flush()

    def _pump(self, node: NodeProcess) -> None:
        assert node.process is not None and node.process.stdout is not None
        for raw in node.process.stdout:
            line = raw.rstrip("\n")
            node.tail.append(line)
            self.say(line, node.spec.name)

    def _start(self, node: NodeProcess) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        node.process = subprocess.Popen(
            node.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True, bufsize=1, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        node.starts += 1
        node.reader = threading.Thread(target=self._pump, args=(node,), daemon=True)
        node.reader.start()
        self.say(f"started {node.spec.name} (pid {node.process.pid}): {' '.join(node.command)}")

    def request_stop(self, *_: object) -> None:
        """Ask the runner to stop all nodes (safe to call from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Start every node and supervise them; return 0 if all ended cleanly, 1 otherwise."""
        previous = {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            previous = {sig: signal.signal(sig, self.request_stop)
                        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for node in self.nodes:
                self._start(node)
            self._supervise()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._params_dir.cleanup()
        return 1 if self.failures else 0

    def _supervise(self) -> None:
        while not self._stop.wait(0.1):
            running = 0
            for node in self.nodes:
                if node.process is None:
                    continue
                code = node.process.poll()
                if code is None:
                    running += 1
                    continue
                self._report_exit(node, code)
                if self._stop.is_set():
                    return
                wants_respawn = node.spec.respawn if self.respawn is None else self.respawn
                if wants_respawn:
                    time.sleep(node.spec.respawn_delay)
                    self._start(node)
                    running += 1
                else:
                    node.process = None
                    if node.spec.required:
                        self.say(f"{node.spec.name} is required: stopping the stack")
                        return
            if running == 0:
                self.say("all nodes have ended")
                return

    def _report_exit(self, node: NodeProcess, code: int) -> None:
        if node.reader is not None:
            node.reader.join(timeout=1.0)
        if code == 0:
            self.say(f"{node.spec.name} exited with code 0")
            return
        self.failures.append((node.spec.name, code))
        detail = f"signal {-code}" if code < 0 else f"code {code}"
        self.say(f"{node.spec.name} died with exit {detail}; last output:")
        for line in node.tail:
            self.say(f"    {line}", node.spec.name)

    def _stop_all(self) -> None:
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        if not live:
            return
        self.say(f"stopping {', '.join(n.spec.name for n in live)}")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for node in live:
                if node.process.poll() is None:
                    node.process.send_signal(sig)
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and any(n.process.poll() is None for n in live):
                time.sleep(0.05)
            if all(n.process.poll() is not None for n in live):
                break
            self.say(f"nodes still running after {sig.name}: escalating")
        for node in live:
            code = node.process.wait()
            if node.reader is not None:
                node.reader.join(timeout=1.0)
            if code != 0:
                self._report_exit(node, code)
            else:
                self.say(f"{node.spec.name} stopped cleanly")
