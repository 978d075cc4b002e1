"""policy_server: serve a policy file on the torque topic through the safety layer.

Subscribes joint states and publishes torque (without gravity): with publish_on_state, right after each
fresh state (lowest latency; the state stream paces the loop) and from the 1/rate_hz timer only while the
stream stalls (holding the last command, then zero torque when the watchdog trips); otherwise every
1/rate_hz s from the timer, on the newest state. On /diagnostics: latency (state header stamp -> command
publish on the node's clock; meaningful when the state publisher stamps with that clock, as franka_ros2
does), compute (joint-state callback -> command publish, monotonic), timer periods and missed periods, the
safety layer's counters and latched fault. The logic lives in sim2real_core.policy.serving; this node only
moves messages, parameters and diagnostics.

Parameters (each with a description and range: `ros2 param describe /policy_server NAME`):
    policy_path (string, required): policy folder or sidecar; `ros2 param set` hot-reloads it atomically
        (loaded and validated first; on failure the old policy stays and the change is rejected with the reason).
    robot (string, default fr3): robot file in config/robots (joint roles, limits, control period).
    arm_prefix, robot_type (string): franka_ros2's joint naming `<arm_prefix>_<robot_type>_jointN`; a policy
        trained on fr3_joint1..7 serves left_fr3_joint1..7 (joints match by role).
    rate_hz (double, default: the policy's trained rate): control rate in (0, 1000]. With 1 kHz joint states
        (franka_ros2) the server acts on the first state of each period by stamp, so dropped samples do not
        change the rate; the safety layer's torque-rate limit applies per actual publish.
    publish_on_state (bool, default true): command on each period's first fresh state instead of on the timer.
    watchdog_periods (int, default from config/policy/safety.yaml, at most 50): periods without a fresh state
        before torque is zeroed and a fault latched (cleared by the ~/reset_fault Trigger service).
    max_state_age, max_state_ahead (double [s]): a state stamped further in the past (default 100 ms) or the
        future (default 5 ms) than this node's clock is not fresh; nor is one not newer than the
        previous state (replayed). franka_ros2 stamps with the controller_manager's ROS time.
    extra_inputs (double[], default: the policy's defaults): the policy's extra inputs, e.g. a reach target;
        settable at run time (validated against the policy's extra inputs).
    diagnostics_period (double, default 1.0): seconds between /diagnostics messages.
Until SETTLE_PERIODS fresh periods have arrived, without a gap the watchdog would act on, the server publishes
nothing (a stream that is still coming up is not a fault, and an effort controller applies nothing before its
first command). A second
publisher on its command topic or a second joint-state source latches zero torque, and so does a reflex
reported by the robot side on /diagnostics (franka_proxy). On shutdown
(Ctrl-C, SIGTERM, SIGHUP) it publishes zero torque.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sim2real_core.config import ConfigError
from sim2real_core.policy.policy_file import PolicyFileError
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import (
    SETTLE_PERIODS,
    PeriodGate,
    PeriodMonitor,
    PolicyRunner,
    check_stamp,
    load_servable_policy,
    robot_joints_and_period,
)
from sim2real_core.robot import DEFAULT_ROBOT

from . import contract
from .descriptors import described
from .messages import (
    MessageError,
    command_msg,
    diagnostic_array,
    diagnostic_status,
    diagnostic_values,
    joint_state_arrays,
    publish_zero_torque,
    stamp_to_seconds,
)
from .node_main import run_node

MAX_RATE_HZ = 1000.0
MAX_WATCHDOG_PERIODS = 50
HOLD_AFTER = 1.25  # state mode: periods without a fresh state before the last command is held from the timer
GRAPH_CHECK_PERIOD = 0.2  # [s] how often the graph is checked for a second commander or state source


class PolicyServer(Node):
    """Policy + safety layer between the joint-state and torque topics."""

    def __init__(self):
        super().__init__("policy_server")
        path = self.declare_parameter("policy_path", "", described("policy folder or its policy.yaml")).value
        robot = self.declare_parameter("robot", DEFAULT_ROBOT, described("robot file in config/robots", True)).value
        arm_prefix = self.declare_parameter("arm_prefix", "", described("franka_ros2 arm_prefix ('' for none)",
                                                                        True)).value
        robot_type = self.declare_parameter("robot_type", "", described("fr3 | fr3v2 ('': the robot file's)",
                                                                        True)).value
        rate_hz = self.declare_parameter("rate_hz", 0.0, described(
            "[Hz] control rate (0: the policy's trained rate)", True, 0.0, MAX_RATE_HZ)).value
        watchdog = self.declare_parameter("watchdog_periods", 0, described(
            "periods without a fresh state before zero torque is latched (0: config/policy/safety.yaml)", True,
            0, MAX_WATCHDOG_PERIODS)).value
        self.max_age = self.declare_parameter("max_state_age", 0.1, described(
            "[s] a state stamp older than this on the node's clock is not fresh", True, 0.001, 1.0)).value
        self.max_ahead = self.declare_parameter("max_state_ahead", 0.005, described(
            "[s] a stamp further ahead of this node's clock is not fresh", True, 0.0, 1.0)).value
        extra = self.declare_parameter("extra_inputs", Parameter.Type.DOUBLE_ARRAY, described(
            "the policy's extra inputs, e.g. a reach target [m] (unset: the policy's defaults)")).value
        diagnostics_period = self.declare_parameter("diagnostics_period", 1.0, described(
            "[s] period of /diagnostics", True, 0.01, 60.0)).value
        self.publish_on_state = self.declare_parameter("publish_on_state", True, described(
            "command on the first state of each period instead of on the timer", True)).value
        try:
            self.joint_names, control_period = robot_joints_and_period(robot, arm_prefix, robot_type)
            if not path:
                raise ValueError("parameter policy_path is required (a policy folder or its policy.yaml)")
            policy = load_servable_policy(path, self.joint_names)
            rate_hz = rate_hz or 1.0 / (policy.spec.training.get("control_period") or control_period)
            overrides = {"watchdog_periods": watchdog} if watchdog else {}
            safety = SafetyLayer(load_safety_limits(robot, **overrides), period=1.0 / rate_hz)
            self.runner = PolicyRunner(policy, safety, None if extra is None else np.asarray(extra, dtype=float))
        except (ConfigError, PolicyFileError) as exc:
            raise ValueError(str(exc)) from exc
        self.period = 1.0 / rate_hz
        self.monitor = PeriodMonitor(self.period)
        self.gate = PeriodGate(self.period)
        self.state_problems = {"malformed": 0, "replayed": 0, "stale": 0, "future": 0}
        self.robot_report = ""  # the robot driver's own account of a stop (franka_proxy: reflex), if any
        self._last_stamp: float | None = None
        self._last_received = 0.0  # monotonic arrival of the state stamped _last_stamp
        self._published = False  # an effort controller applies nothing until its first command
        self.hardware_id = robot
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.command_pub = self.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.state_sub = self.create_subscription(JointState, contract.JOINT_STATES, self._on_state,
                                                  contract.COMMANDER_STATE_QOS)
        self.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)
        self.create_service(Trigger, "~/reset_fault", self._on_reset_fault)
        self.control_timer = self.create_timer(self.period * (HOLD_AFTER if self.publish_on_state else 1.0),
                                               self._control)
        self.create_timer(GRAPH_CHECK_PERIOD, self._check_graph)
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(f"serving {policy.source} at {rate_hz:g} Hz on {self.command_pub.topic_name} "
                               f"(watchdog {safety.limits.watchdog_periods} periods)")
        trained_period = policy.spec.training.get("control_period")
        if trained_period and abs(trained_period * rate_hz - 1.0) > 1e-6:
            self.get_logger().warning(f"the policy was trained at {1 / trained_period:g} Hz, served at {rate_hz:g} Hz")

    def _on_state(self, msg: JointState) -> None:
        """Every state's stamp is checked; only the state that starts a control period is parsed and acted on
        (at 1 kHz the other nine cost no more than the stamp check)."""
        stamp = stamp_to_seconds(msg.header.stamp)
        problem = check_stamp(stamp, self._last_stamp, self._now(), self.max_age, self.max_ahead)
        if problem:  # not fresh: a stream of such states trips the watchdog
            self.state_problems[problem] += 1
            self.get_logger().error(f"{self.state_sub.topic_name}: {problem} stamp {stamp:.6f}",
                                    throttle_duration_sec=1.0)
            return
        self._last_stamp, self._last_received = stamp, time.monotonic()
        if self.publish_on_state:
            self.control_timer.reset()  # the hold path is for a stream that stops, not for states between periods
        elapsed = self.gate.due(stamp) if self.publish_on_state else None
        if self.publish_on_state and elapsed is None:
            return
        try:
            q, dq, _ = joint_state_arrays(msg, self.joint_names)
        except MessageError as exc:  # not fresh: the watchdog notices a stream of bad states
            self.state_problems["malformed"] += 1
            self.get_logger().error(f"{self.state_sub.topic_name}: {exc}", throttle_duration_sec=1.0)
            return
        self.runner.state(q, dq, stamp, time.monotonic())
        if self.publish_on_state:
            self._publish_command(elapsed)

    def _control(self) -> None:
        """Timer mode: every period. State mode: only when no fresh state arrived for HOLD_AFTER periods (a
        stalled or stale stream): the last command is held, then the watchdog zeroes it; the period counts
        as served, so its state, arriving late, does not add a second command."""
        if self.publish_on_state and self._last_stamp is not None:
            self.gate.served_until(self._last_stamp + time.monotonic() - self._last_received)
        self._publish_command(None)

    def _publish_command(self, elapsed: float | None) -> None:
        now = time.monotonic()
        command = self.runner.command(self._now(), now, elapsed)
        if self._published or self.runner.settled >= SETTLE_PERIODS:  # nothing before serving starts
            self._published = True
            self.command_pub.publish(command_msg(command))
            self.monitor.tick(now)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _check_graph(self) -> None:
        """A second commander on the torque topic, or a second arm on the state topic, is refused."""
        commanders = self.count_publishers(self.command_pub.topic_name)
        sources = self.count_publishers(self.state_sub.topic_name)
        if commanders > 1:
            self._refuse(f"second commander on {self.command_pub.topic_name} ({commanders} publishers)")
        elif sources > 1:
            self._refuse(f"{sources} joint-state sources on {self.state_sub.topic_name} (a second arm?)")

    def _refuse(self, reason: str) -> None:
        if self.runner.safety.fault is None:
            self.runner.safety.trip(reason)
            self.get_logger().error(f"zero torque latched: {reason}")

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = diagnostic_values(status)
            if values.get("robot_mode") == "reflex" and values.get("arm") == self.hardware_arm():
                self.robot_report = status.message
                self._refuse("reflex")

    def hardware_arm(self) -> str:
        """The arm this server drives, as the robot side names it in /diagnostics (its joint-name prefix)."""
        return self.joint_names[0].rsplit("_joint", 1)[0]

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Hot reload: load and validate everything first, switch only when all of it is valid."""
        policy, extra = self.runner.policy, self.runner.extra
        try:
            for param in params:
                if param.name == "policy_path":
                    policy = load_servable_policy(str(param.value), self.joint_names)
                elif param.name == "extra_inputs":
                    extra = None if param.value is None else list(param.value)
            self.runner.configure(policy, extra)
        except (PolicyFileError, ConfigError) as exc:
            self.get_logger().error(f"parameters not changed, the previous policy stays active: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        if any(p.name == "policy_path" for p in params):
            self.get_logger().info(f"serving {policy.source}")
        return SetParametersResult(successful=True)

    def _on_reset_fault(self, _request, response):
        fault = self.runner.safety.fault
        self.runner.safety.reset()
        self.runner.new_episode()
        if fault:  # the stream may have broken: serve again once it is steady
            self.runner.settled = 0
            self.gate.restart()
        self.robot_report = ""
        response.success = True
        response.message = f"cleared fault {fault}" if fault else "no fault was latched"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        safety = self.runner.safety
        latency = self.runner.latency.summary(1e3)
        compute = self.runner.compute.summary(1e3)
        values = {"policy": self.runner.policy.source, "sha256": self.runner.policy.sha256,
                  **safety.diagnostics(), **{f"states_{k}": v for k, v in self.state_problems.items()},
                  "serving": self.runner.settled >= SETTLE_PERIODS, "robot_report": self.robot_report or "none",
                  **{f"latency_{k}_ms" if k != "count" else "latency_count": v for k, v in latency.items()},
                  **{f"compute_{k}_ms": v for k, v in compute.items() if k != "count"},
                  **self.monitor.summary()}
        if safety.fault:
            level, message = "error", f"fault latched: {self.robot_report or safety.fault} (call ~/reset_fault)"
        elif self.runner.settled < SETTLE_PERIODS:
            level, message = "warn", "waiting for a steady joint-state stream (zero torque)"
        else:
            level, message = "ok", "serving"
        status = diagnostic_status(f"{self.get_name()}: control", self.hardware_id, level, message, values)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def stop(self) -> None:
        """On shutdown: publish zero torque (the effort controller holds the last command forever)."""
        publish_zero_torque(self.command_pub, len(self.joint_names))


def main() -> None:
    """ros2 run sim2real_ros policy_server --ros-args -p policy_path:=PATH"""
    sys.exit(run_node(PolicyServer))
