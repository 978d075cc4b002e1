"""command_supervisor: the only publisher on the controller's command topic in a stack that commands the arm.

Commanders (policy_server, exploration_dispatcher) publish on `sim2real/commands`; this node, in its own
process, relays each valid command to `effort_controller/commands` (sim2real_core.policy.supervision holds
the logic). franka_ros2's effort controller holds the last command forever, so this node publishes zero
torque when the commander falls silent for `command_timeout` after a nonzero command, and latches it when
the silence reaches `latch_timeout` (the commander died, hung or was stopped); it latches zero torque at once
when a command has the wrong length, a non-finite value, or exceeds the torque limits, or when a second
commander publishes on its input or another node on the controller's topic; and it publishes zero when it
is stopped itself. Only `~/reset` (std_srvs/Trigger, an operator's call)
clears the latch. /diagnostics reports the state at level ERROR while latched.

Parameters (read-only):
    robot (string, default fr3): robot file (joint count, torque limits, control period).
    command_timeout (double [s], default 2 control periods, in (0, 1]): silence that sends zero torque.
    latch_timeout (double [s], default 10 control periods): silence that latches it. Lockstep stacks, where
        the simulation waits for the commander, may set both longer.
    graph_check_period (double [s], default 0.2): how often the graph is checked for a second publisher.
    diagnostics_period (double [s], default 1.0).
"""
from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sim2real_core.config import ConfigError
from sim2real_core.policy.supervision import (
    DEFAULT_LATCH_PERIODS,
    DEFAULT_TIMEOUT_PERIODS,
    MAX_COMMAND_TIMEOUT,
    CommandSupervisor,
)
from sim2real_core.robot import DEFAULT_ROBOT, load_robot

from . import contract
from .descriptors import described
from .messages import command_msg, diagnostic_array, diagnostic_status, publish_zero_torque
from .node_main import run_node


class CommandSupervisorNode(Node):
    """Relays commands to the controller and latches zero torque when the commander fails (module docstring)."""

    def __init__(self):
        super().__init__("command_supervisor")

        robot = self.declare_parameter("robot", DEFAULT_ROBOT, described("robot file in config/robots", True)).value
        timeout = self.declare_parameter("command_timeout", 0.0, described(
            "[s] silence after a nonzero command that sends zero torque (0: 2 control periods)", True,
            0.0, MAX_COMMAND_TIMEOUT)).value
        latch = self.declare_parameter("latch_timeout", 0.0, described(
            "[s] silence that latches the zero until ~/reset (0: 25 control periods)", True,
            0.0, 10 * MAX_COMMAND_TIMEOUT)).value
        graph_period = self.declare_parameter("graph_check_period", 0.2, described(
            "[s] period of the check for a second publisher", True, 0.01, 10.0)).value
        diagnostics_period = self.declare_parameter("diagnostics_period", 1.0, described(
            "[s] period of /diagnostics", True, 0.01, 60.0)).value
        try:
            spec = load_robot(robot)
            self.supervisor = CommandSupervisor(spec.torque_limits,
                                                timeout or DEFAULT_TIMEOUT_PERIODS * spec.control_period,
                                                latch or max(timeout, DEFAULT_LATCH_PERIODS * spec.control_period))
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        self.hardware_id = spec.name
        self.output = self.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.input = self.create_subscription(Float64MultiArray, contract.SUPERVISED_COMMANDS, self._on_command,
                                              contract.CONTROL_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.silence_timer = self.create_timer(self.supervisor.command_timeout, self._on_silence)
        self.create_timer(graph_period, self._check_graph)
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        self.last_zero_delay_ms = float("nan")  # how late the last silence zero went out after its deadline
        self.get_logger().info(f"relaying {self.input.topic_name} -> {self.output.topic_name}, zero torque after "
                               f"{1e3 * self.supervisor.command_timeout:g} ms of silence, latched after "
                               f"{1e3 * self.supervisor.latch_timeout:g} ms")

    def _on_command(self, msg: Float64MultiArray) -> None:
        was_latched = self.supervisor.fault is not None
        out = self.supervisor.command(msg.data, time.monotonic())
        if out is not None:
            self.output.publish(command_msg(out))
            self.silence_timer.reset()  # (re-)armed: the silence check counts from this command
        if not was_latched and self.supervisor.fault is not None:
            self._report_latch()

    def _on_silence(self) -> None:
        now = time.monotonic()
        deadline = self.supervisor.deadline()
        was_latched = self.supervisor.fault is not None
        zeros = self.supervisor.silence(now)
        if zeros is not None:
            self.output.publish(command_msg(zeros))
            self.last_zero_delay_ms = 1e3 * (now - deadline)
            self.get_logger().warning(f"commander silent: zero torque sent ({self.last_zero_delay_ms:.1f} ms late)",
                                      throttle_duration_sec=1.0)
        if not was_latched and self.supervisor.fault is not None:
            self._report_latch()
        if self.supervisor.deadline() is None:
            self.silence_timer.cancel()  # nothing held: no need to wake up until the next command re-arms it

    def _check_graph(self) -> None:
        if self.supervisor.fault is not None:
            return
        commanders = self.count_publishers(self.input.topic_name)
        feeds = self.count_publishers(self.output.topic_name)
        if commanders > 1:
            zeros = self.supervisor.latch(f"{commanders} commanders publish on {self.input.topic_name}")
        elif feeds > 1:
            zeros = self.supervisor.latch(f"another node publishes on {self.output.topic_name}")
        else:
            return
        self.output.publish(command_msg(zeros))
        self._report_latch()

    def _report_latch(self) -> None:
        self.get_logger().error(f"zero torque latched: {self.supervisor.fault} (call {self.get_name()}/reset)")
        self._publish_diagnostics()

    def _on_reset(self, _request, response):
        fault = self.supervisor.reset()
        response.success = True
        response.message = f"cleared: {fault}" if fault else "nothing was latched"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        fault = self.supervisor.fault
        values = {"fault": fault or "none", "command_timeout_ms": 1e3 * self.supervisor.command_timeout,
                  "zero_delay_ms": self.last_zero_delay_ms,
                  "latch_timeout_ms": 1e3 * self.supervisor.latch_timeout, **self.supervisor.counters}
        level, message = ("error", f"zero torque latched: {fault}") if fault else ("ok", "relaying")
        status = diagnostic_status(f"{self.get_name()}: commands", self.hardware_id, level, message, values)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def stop(self) -> None:
        """On shutdown: leave zero torque on the controller."""
        publish_zero_torque(self.output, self.supervisor.size)


def main() -> None:
    """ros2 run sim2real_ros command_supervisor"""
    sys.exit(run_node(CommandSupervisorNode))
