"""policy_server: serve a policy file on the torque topic through the safety layer.

Subscribes joint states and publishes torque (without gravity): with publish_on_state, right after each
fresh state (lowest latency; the state stream paces the loop) and from the 1/rate_hz timer only while the
stream stalls (holding the last command, then zero torque when the watchdog trips); otherwise every
1/rate_hz s from the timer, on the newest state. On /diagnostics: latency (state header stamp -> command
publish on the node's clock; meaningful when the state publisher stamps with that clock, as franka_ros2
does), compute (joint-state callback -> command publish, monotonic), timer periods and missed periods, the
safety layer's counters and latched fault. The logic lives in sim2real_core.policy.serving; this node only
moves messages, parameters and diagnostics.

Parameters:
    policy_path (string, required): policy folder or sidecar; `ros2 param set` hot-reloads it atomically
        (loaded and validated first; on failure the old policy stays and the change is rejected with the reason).
    robot (string, default fr3): robot file in config/robots (joint order, limits, control period).
    rate_hz (double, default 1/control_period of the robot): control rate, up to 1000: the timer's rate and
        the safety layer's period (rate limit, watchdog); set it to the joint-state rate.
    publish_on_state (bool, default true): command on each fresh state instead of on the timer.
    watchdog_periods (int, default from config/policy/safety.yaml): periods without fresh state before
        torque is zeroed and a fault latched (cleared by the ~/reset_fault Trigger service).
    extra_inputs (double[], default: the policy's defaults): the policy's extra inputs, e.g. a reach target;
        settable at run time (validated against the policy's extra inputs).
    diagnostics_period (double, default 1.0): seconds between /diagnostics messages.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sim2real_core.config import ConfigError
from sim2real_core.policy.policy_file import PolicyFileError
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import PeriodMonitor, PolicyRunner, load_servable_policy, robot_joints_and_period

from . import contract
from .messages import (MessageError, command_msg, diagnostic_array, diagnostic_status, joint_state_arrays,
                       stamp_to_seconds)
from .node_main import run_node

MAX_RATE_HZ = 1000.0


class PolicyServer(Node):
    """Policy + safety layer between the joint-state and torque topics."""

    def __init__(self):
        super().__init__("policy_server")
        fixed = ParameterDescriptor(read_only=True)
        path = self.declare_parameter("policy_path", "").value
        robot = self.declare_parameter("robot", "fr3", fixed).value
        rate_hz = self.declare_parameter("rate_hz", 0.0, fixed).value
        watchdog = self.declare_parameter("watchdog_periods", 0, fixed).value
        extra = self.declare_parameter("extra_inputs", Parameter.Type.DOUBLE_ARRAY).value
        diagnostics_period = self.declare_parameter("diagnostics_period", 1.0, fixed).value
        self.publish_on_state = self.declare_parameter("publish_on_state", True, fixed).value
        self._commanded = False  # a command went out since the last timer tick
        try:
            self.joint_names, control_period = robot_joints_and_period(robot)
            rate_hz = rate_hz or 1.0 / control_period
            if not 0 < rate_hz <= MAX_RATE_HZ:
                raise ValueError(f"parameter rate_hz must be in (0, {MAX_RATE_HZ:g}], got {rate_hz}")
            overrides = {"watchdog_periods": watchdog} if watchdog else {}
            safety = SafetyLayer(load_safety_limits(robot, **overrides), period=1.0 / rate_hz)
            if not path:
                raise ValueError("parameter policy_path is required (a policy folder or its policy.yaml)")
            policy = load_servable_policy(path, self.joint_names)
            self.runner = PolicyRunner(policy, safety, None if extra is None else np.asarray(extra, dtype=float))
        except (ConfigError, PolicyFileError) as exc:
            raise ValueError(str(exc)) from exc
        self.monitor = PeriodMonitor(1.0 / rate_hz)
        self.bad_states = 0
        self.hardware_id = robot
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.command_pub = self.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.create_subscription(JointState, contract.JOINT_STATES, self._on_state, contract.CONTROL_QOS)
        self.create_service(Trigger, "~/reset_fault", self._on_reset_fault)
        self.create_timer(1.0 / rate_hz, self._control)
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(f"serving {policy.source} at {rate_hz:g} Hz "
                               f"(watchdog {safety.limits.watchdog_periods} periods)")
        trained_period = policy.spec.training.get("control_period")
        if trained_period and abs(trained_period * rate_hz - 1.0) > 1e-6:
            self.get_logger().warning(f"the policy was trained at {1 / trained_period:g} Hz, served at {rate_hz:g} Hz")

    def _on_state(self, msg: JointState) -> None:
        try:
            q, dq, _ = joint_state_arrays(msg, self.joint_names)
        except MessageError as exc:  # not fresh: the watchdog notices a stream of bad states
            self.bad_states += 1
            self.get_logger().error(f"{contract.JOINT_STATES}: {exc}", throttle_duration_sec=1.0)
            return
        self.runner.state(q, dq, stamp_to_seconds(msg.header.stamp), time.monotonic())
        if self.publish_on_state:
            self._publish_command()
            self._commanded = True

    def _control(self) -> None:
        self.monitor.tick(time.monotonic())
        if not self._commanded:  # timer mode, or a stalled state stream: hold, then the watchdog
            self._publish_command()
        self._commanded = False

    def _publish_command(self) -> None:
        command = self.runner.command(self.get_clock().now().nanoseconds * 1e-9, time.monotonic())
        self.command_pub.publish(command_msg(command))

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
        response.success = True
        response.message = f"cleared fault {fault}" if fault else "no fault was latched"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        safety = self.runner.safety
        latency = self.runner.latency.summary(1e3)
        compute = self.runner.compute.summary(1e3)
        values = {"policy": self.runner.policy.source, "sha256": self.runner.policy.sha256,
                  **safety.diagnostics(), "bad_states": self.bad_states,
                  **{f"latency_{k}_ms" if k != "count" else "latency_count": v for k, v in latency.items()},
                  **{f"compute_{k}_ms": v for k, v in compute.items() if k != "count"},
                  **self.monitor.summary()}
        level = "error" if safety.fault else "ok"
        message = f"fault latched: {safety.fault} (call ~/reset_fault)" if safety.fault else "serving"
        status = diagnostic_status(f"{self.get_name()}: control", self.hardware_id, level, message, values)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main() -> None:
    """ros2 run sim2real_ros policy_server --ros-args -p policy_path:=PATH"""
    sys.exit(run_node(PolicyServer))
