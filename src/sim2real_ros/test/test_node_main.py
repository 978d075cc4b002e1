"""run_node: a signal that lands while a callback publishes still gives a clean exit and closes the node."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

# A node whose timer publishes every 0.2 ms, so SIGTERM nearly always lands inside `publish`, which then fails
# with "publisher's context is invalid". Before run_node handled that race, most runs exited 1.
NODE = """
import sys
from rclpy.node import Node
from std_msgs.msg import Float64
from sim2real_ros.node_main import run_node

class Busy(Node):
    def __init__(self):
        super().__init__("busy_publisher")
        self.publisher = self.create_publisher(Float64, "busy", 10)
        self.create_timer(0.0002, lambda: self.publisher.publish(Float64(data=1.0)))
        print("ready", flush=True)

    def close(self):
        print("closed", flush=True)

sys.exit(run_node(Busy))
"""


def test_sigterm_during_a_publishing_callback_exits_zero_after_close():
    for _ in range(5):
        process = subprocess.Popen([sys.executable, "-c", NODE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        output = process.stdout.read()
        assert process.wait(15) == 0, output
        assert "closed" in output
