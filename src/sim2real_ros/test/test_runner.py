"""The stack runner with real child processes (small executables in a fake ament prefix)."""
import io
import signal
import stat
import sys
import threading
import time

import pytest

from sim2real_core.config import ConfigError
from sim2real_ros.runner import StackRunner, resolve_executable
from sim2real_ros.stack import NodeSpec, Stack

PROGRAMS = {
    # prints its node name, then waits for SIGINT and exits 0
    "waiter": """
import signal, sys, time
name = [a.split(':=')[1] for a in sys.argv if a.startswith('__node:=')][0]
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
print('ready', name, flush=True)
while True:
    time.sleep(0.05)
""",
    # prints a few lines, then exits 3
    "crasher": """
import sys
print('loading', flush=True)
print('boom: bad configuration', flush=True)
sys.exit(3)
""",
    # ignores SIGINT: the runner must escalate to SIGTERM
    "stubborn": """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print('ready', flush=True)
while True:
    time.sleep(0.05)
""",
}


@pytest.fixture
def prefix(tmp_path, monkeypatch):
    folder = tmp_path / "prefix" / "lib" / "pkg"
    folder.mkdir(parents=True)
    for name, body in PROGRAMS.items():
        path = folder / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "prefix"))
    return tmp_path


def stack(tmp_path, nodes):
    specs = tuple(NodeSpec(package="pkg", parameters={"x": 1} if n["name"] == "a" else {}, **n) for n in nodes)
    return Stack(name="test", description="", nodes=specs, source=tmp_path / "test.launch.py")


def wait_for(out, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in out.getvalue():
            return True
        time.sleep(0.05)
    return False


def test_resolve_executable_reports_searched_prefixes(prefix):
    assert resolve_executable("pkg", "waiter").name == "waiter"
    with pytest.raises(ConfigError, match="not found; searched"):
        resolve_executable("pkg", "missing")


def start_runner(runner):
    """Run the runner in a thread (signal handlers only install in the main thread, so stop by request)."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", runner.run()), daemon=True)
    thread.start()
    return thread, result


def test_two_nodes_start_and_stop_cleanly(prefix):
    out = io.StringIO()
    runner = StackRunner(stack(prefix, [{"name": "a", "executable": "waiter"}, {"name": "b", "executable": "waiter"}]),
                         out=out)
    thread, result = start_runner(runner)
    assert wait_for(out, "[a] ready a") and wait_for(out, "[b] ready b"), out.getvalue()
    runner.request_stop()
    thread.join(15)
    assert result["code"] == 0, out.getvalue()
    assert "a stopped cleanly" in out.getvalue() and "b stopped cleanly" in out.getvalue()


def test_crashing_node_is_reported_with_exit_code_and_last_lines(prefix):
    out = io.StringIO()
    runner = StackRunner(stack(prefix, [{"name": "a", "executable": "waiter"}, {"name": "c", "executable": "crasher"}]),
                         out=out)
    thread, result = start_runner(runner)
    assert wait_for(out, "c died with exit code 3"), out.getvalue()
    assert "[c]     boom: bad configuration" in out.getvalue()
    assert wait_for(out, "[a] ready a")
    runner.request_stop()
    thread.join(15)
    assert result["code"] == 1
    assert runner.failures == [("c", 3)]


def test_required_node_death_stops_the_stack(prefix):
    out = io.StringIO()
    runner = StackRunner(stack(prefix, [{"name": "a", "executable": "waiter"},
                                        {"name": "c", "executable": "crasher", "required": True}]), out=out)
    thread, result = start_runner(runner)
    thread.join(20)
    assert not thread.is_alive() and result["code"] == 1
    assert "c is required: stopping the stack" in out.getvalue()


def test_respawn_restarts_a_dead_node(prefix):
    out = io.StringIO()
    runner = StackRunner(stack(prefix, [{"name": "c", "executable": "crasher", "respawn": True, "respawn_delay": 0.1},
                                        {"name": "a", "executable": "waiter"}]), out=out)
    thread, result = start_runner(runner)
    assert wait_for(out, "started c") and wait_for(out, "c died with exit code 3")
    deadline = time.monotonic() + 10
    while runner.nodes[0].starts < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.request_stop()
    thread.join(15)
    assert runner.nodes[0].starts >= 3


def test_node_ignoring_sigint_is_escalated(prefix):
    out = io.StringIO()
    runner = StackRunner(stack(prefix, [{"name": "s", "executable": "stubborn"}]), out=out, stop_timeout=0.5)
    thread, result = start_runner(runner)
    assert wait_for(out, "[s] ready")
    runner.request_stop()
    thread.join(15)
    assert "escalating" in out.getvalue()
    assert result["code"] == 1  # ended by SIGTERM, which is not a clean exit
    assert runner.failures == [("s", -signal.SIGTERM)]
