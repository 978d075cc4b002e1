"""`sim2real up` on real nodes: two nodes exchange messages over DDS, Ctrl-C ends both with exit 0,
a crashing node is reported with its exit code."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import yaml
from diagnostic_msgs.msg import DiagnosticArray

from conftest import spin_until
from sim2real_core.data.bagio import BagReader

JOINT_STATES = "/franka/joint_states"


def write_stack(folder, bridge_params, bag):
    """A flat launch file of the bridge and the logger, with its parameter file."""
    (folder / "bridge_logger.yaml").write_text(yaml.safe_dump({
        "/**/sim_bridge": {"ros__parameters": bridge_params},
        "/**/transition_logger": {"ros__parameters": {"output": str(bag), "topics": [JOINT_STATES]}}}))
    path = folder / "bridge_logger.launch.py"
    path.write_text('"""bridge + logger"""\n\n\ndef generate_launch_description():\n    return LaunchDescription([\n'
                    f'        DeclareLaunchArgument("parameters", default_value="{folder}/bridge_logger.yaml"),\n'
                    '        Node(package="sim2real_ros", executable="sim_bridge", name="sim_bridge", '
                    'parameters=[parameters]),\n'
                    '        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", '
                    'parameters=[parameters]),\n'
                    "    ])\n")
    return path


class Up:
    """`sim2real up STACK` in a process, its output collected line by line."""

    def __init__(self, stack_path):
        command = [sys.executable, shutil.which("sim2real"), "up", str(stack_path)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def wait_for(self, *texts, timeout=60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(any(t in line for line in self.lines) for t in texts):
                return True
            time.sleep(0.1)
        return False

    def interrupt(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return self.process.returncode, "".join(self.lines)


def test_two_node_stack_exchanges_messages_and_stops_cleanly_on_ctrl_c(tmp_path, ros_node):
    bag = tmp_path / "bag"
    written = {"count": 0}

    def on_diagnostics(msg):  # the logger's own count of what it wrote (discovery may match its reader late)
        for status in msg.status:
            if status.name.startswith("transition_logger"):
                written["count"] = int({v.key: v.value for v in status.values}.get("written", 0))

    ros_node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 100)
    up = Up(write_stack(tmp_path, {"clocking": "realtime"}, bag))
    assert up.wait_for("[sim_bridge]", "[transition_logger] [INFO]"), "".join(up.lines)
    assert up.wait_for(f"recording {JOINT_STATES}"), "".join(up.lines)
    assert spin_until(ros_node, lambda: written["count"] > 60, 60.0), "".join(up.lines)
    code, output = up.interrupt()
    assert code == 0, output
    assert "sim_bridge stopped cleanly" in output and "transition_logger stopped cleanly" in output, output
    with BagReader(bag) as reader:
        states = list(reader.raw_messages([JOINT_STATES]))
    assert len(states) > 50, f"the logger recorded {len(states)} joint states from the bridge\n{output}"


def test_crashing_node_is_reported_with_its_exit_code(tmp_path):
    up = Up(write_stack(tmp_path, {"profile": "no_such_profile"}, tmp_path / "bag"))
    assert up.wait_for("sim_bridge died with exit code 2"), "".join(up.lines)
    code, output = up.interrupt()
    assert "no_such_profile" in output
    assert code == 1


def test_the_nodes_of_a_killed_runner_stop_too(up_stack):
    """SIGKILL of `sim2real up` (no chance to clean up): the kernel signals its nodes, none is orphaned."""
    stack = up_stack("franka_proxy")
    node = stack.pid_of("franka_proxy")
    assert stack.process.poll() is None
    os.kill(stack.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and os.path.exists(f"/proc/{node}") and "zombie" not in open(
            f"/proc/{node}/status").read():
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{node}") or "zombie" in open(f"/proc/{node}/status").read()


def test_sighup_stops_the_stack_cleanly(up_stack):
    stack = up_stack("franka_proxy")
    stack.pid_of("franka_proxy")
    assert spin_free_wait(lambda: "FR3 under franka_ros2" in stack.output(), 60.0), stack.output()
    stack.process.send_signal(signal.SIGHUP)
    assert stack.process.wait(30) == 0, stack.output()
    assert "franka_proxy stopped cleanly" in stack.output()


def spin_free_wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
    return condition()
