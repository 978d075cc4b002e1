"""franka_proxy: the reality proxy as a real FR3 under franka_ros2 looks over ROS (sim2real_core.sim.franka).

Publishes `franka/joint_states` (sensor_msgs/JointState) at 1 kHz, stamped with this node's ROS time, with
names `<arm_prefix>_<robot_type>_jointN` and effort = the measured link torque tau_J (gravity included), as
franka_ros2's joint_state_broadcaster does. Subscribes `effort_controller/commands` with the semantics of
effort_controllers/JointGroupEffortController: nothing before the first command, the last command held with
no timeout, non-finite messages dropped, a wrong length deactivates the controller (zero torque). Every
1 ms write is rate-limited to 1000 Nm/s as franka_hardware does. A collision or velocity reflex stops the
arm: states stop and commands are ignored until recovery. No /clock (franka_ros2 publishes none).

Services (std_srvs/Trigger):
    ~/error_recovery: what the operator does on a real arm, in one call:
        ros2 action send_goal /action_server/error_recovery franka_msgs/action/ErrorRecovery {}
        ros2 control set_hardware_component_state FrankaHardwareInterface active
        ros2 control switch_controllers --activate joint_state_broadcaster franka_robot_state_broadcaster \
            effort_controller
    ~/reset_world: proxy only: the operator puts the arm back at its start pose (a new episode, announced on
        /sim2real/episode as {"event": "start", "source": "franka_proxy", "stamp": ...}).
/diagnostics: status "franka_proxy: robot" with robot_mode (idle | move | reflex), arm, controller state and
the reflex or controller error, published at once on a reflex and every diagnostics_period.

Parameters (read-only, described): reality, task (reach | push: start pose), arm_prefix, robot_type, seed,
payload.carried_mass, payload.carried_com, payload.declared_mass, payload.declared_com,
collision.torque_thresholds, collision.force_thresholds, effort_noise_std, identified_links, diagnostics_period.
"""
from __future__ import annotations

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from sim2real_core.robot import arm_joint_names
from sim2real_core.sim.bridge import TASKS
from sim2real_core.sim.franka import (
    DEFAULT_FORCE_THRESHOLDS,
    DEFAULT_TORQUE_THRESHOLDS,
    TICK,
    FrankaConfig,
    FrankaEmulation,
    Payload,
)
from sim2real_core.sim.reality import DEFAULT_REALITY
from sim2real_core.sim.tasks import load_task

from . import contract
from .descriptors import described
from .messages import diagnostic_array, diagnostic_status, episode_event_msg
from .node_main import run_node

MAX_CATCH_UP = 100  # ticks run late at most (this machine stalls processes for tens of ms); beyond: dropped
# Python hands the GIL between threads every 5 ms by default, which would hold the 1 kHz loop up behind the
# executor's callbacks for several ticks.
GIL_SWITCH_INTERVAL = 2e-4  # [s]


class FrankaProxy(Node):
    """The franka_ros2 robot side around the reality proxy (see the module docstring)."""

    def __init__(self):
        super().__init__("franka_proxy")

        def get(name, default, description, low=None, high=None):
            return self.declare_parameter(name, default, described(description, True, low, high)).value

        reality = get("reality", DEFAULT_REALITY, "reality file (config/reality name or path): the hidden truth")
        task = get("task", "reach", f"start pose of the task: {sorted(TASKS)}")
        arm_prefix = get("arm_prefix", "", "franka_ros2 arm_prefix ('' for none)")
        robot_type = get("robot_type", "", "fr3 | fr3v2 ('': the robot file's)")
        seed = get("seed", 0, "seed of the noise", 0, 2**31 - 1)
        carried = (get("payload.carried_mass", 0.0, "[kg] payload the arm really carries", 0.0, 10.0),
                   get("payload.carried_com", [0.0, 0.0, 0.0], "[m] its centre of mass in the flange frame"))
        declared = (get("payload.declared_mass", 0.0, "[kg] payload declared with set_load", 0.0, 10.0),
                    get("payload.declared_com", [0.0, 0.0, 0.0], "[m] its centre of mass in the flange frame"))
        torques = get("collision.torque_thresholds", list(DEFAULT_TORQUE_THRESHOLDS),
                      "[Nm] upper collision thresholds on the external joint torques")
        forces = get("collision.force_thresholds", list(DEFAULT_FORCE_THRESHOLDS),
                     "[N, Nm] upper collision thresholds on the external end-effector wrench")
        noise = get("effort_noise_std", 0.02, "[Nm] noise of the measured joint torques", 0.0, 10.0)
        identified = get("identified_links", True, "the control unit compensates the arm's true link weights "
                         "(false: only the model's, so the proxy's heavier links pull the arm down)")
        diagnostics_period = get("diagnostics_period", 1.0, "[s] period of /diagnostics", 0.01, 60.0)
        if task not in TASKS:
            raise ValueError(f"parameter task must be one of {sorted(TASKS)}, got {task!r}")
        config = FrankaConfig(reality=reality, carried=Payload(carried[0], tuple(carried[1])),
                              declared=Payload(declared[0], tuple(declared[1])), torque_thresholds=tuple(torques),
                              force_thresholds=tuple(forces), effort_noise_std=noise, identified_links=identified)
        self.robot = FrankaEmulation(config, seed=seed, keyframe=load_task(TASKS[task]).keyframe)
        self.joint_names = list(arm_joint_names(self.robot.robot, arm_prefix, robot_type))
        self.arm = self.joint_names[0].rsplit("_joint", 1)[0]
        self._state_msg = JointState(name=self.joint_names)
        self.state_pub = self.create_publisher(JointState, contract.JOINT_STATES, contract.STATE_STREAM_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.event_pub = self.create_publisher(String, contract.EPISODES, contract.EVENT_QOS)
        self.episode = 0
        self.create_subscription(Float64MultiArray, contract.EFFORT_COMMANDS, self._on_command, contract.CONTROL_QOS)
        self.create_service(Trigger, "~/error_recovery", self._on_recovery)
        self.create_service(Trigger, "~/reset_world", self._on_reset)
        self.overruns = 0
        self.published = 0  # joint states published
        self._lock = threading.Lock()  # the tick thread and the executor's callbacks share the robot
        self._running = True
        self._start()
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._tick_loop, name="franka_1khz", daemon=True)
        self._thread.start()
        self.get_logger().info(f"FR3 under franka_ros2 at {1 / TICK:g} Hz, joints {self.joint_names[0]}..., "
                               f"reality {reality}, command delay {self.robot.delay_ticks} ms")

    def _start(self) -> None:
        self._t0, self._ticks = time.monotonic(), 0
        self._stamp0 = self.get_clock().now().nanoseconds

    def _on_command(self, msg: Float64MultiArray) -> None:
        with self._lock:
            result = self.robot.command(msg.data)
        if result:
            self.get_logger().error(f"{contract.EFFORT_COMMANDS}: {result}", throttle_duration_sec=1.0)
            if not self.robot.controller_active and self.robot.hardware_active:
                self._publish_diagnostics()

    def _tick_loop(self) -> None:
        """The 1 kHz loop, in its own thread (an executor timer at 1 kHz costs more than the tick itself)."""
        while self._running:
            due = int((time.monotonic() - self._t0) / TICK) - self._ticks
            if due > MAX_CATCH_UP:
                self.overruns += 1
                self._ticks += due - MAX_CATCH_UP
                due = MAX_CATCH_UP
            for _ in range(max(due, 0)):
                self._tick()
            time.sleep(max(0.0, self._t0 + (self._ticks + 1) * TICK - time.monotonic()))

    def _tick(self) -> None:
        with self._lock:
            self._ticks += 1
            reflex = self.robot.tick()
            state = self.robot.joint_state() if self.robot.publishing else None
        if reflex:
            self.get_logger().error(f"reflex: {reflex}; call {self.get_name()}/error_recovery")
            self._publish_diagnostics()
        if state is not None:  # one message object, refilled: building a JointState costs more than a tick
            msg = self._state_msg
            msg.header.stamp = Time(nanoseconds=self._stamp0 + int(round(self._ticks * TICK * 1e9))).to_msg()
            msg.position, msg.velocity, msg.effort = (values.tolist() for values in state)
            self.state_pub.publish(msg)
            self.published += 1

    def stop(self) -> None:
        """Stop the 1 kHz loop before the context goes down."""
        self._running = False
        self._thread.join(timeout=1.0)

    def _on_recovery(self, _request, response):
        with self._lock:
            recovered = self.robot.recover()
        response.success = True
        response.message = f"recovered from {recovered}" if recovered else "no error to recover from"
        self.get_logger().info(response.message)
        self._publish_diagnostics()
        return response

    def _on_reset(self, _request, response):
        with self._lock:
            self.robot.reset()
            self.episode += 1
            stamp = (self._stamp0 + int(round(self._ticks * TICK * 1e9))) * 1e-9
        self.event_pub.publish(episode_event_msg({"event": "start", "episode": self.episode, "source": self.get_name(),
                                                  "stamp": stamp}))
        response.success, response.message = True, "the arm is back at its start pose"
        return response

    def _publish_diagnostics(self) -> None:
        robot = self.robot
        error = robot.reflex or robot.controller_error
        values = {"robot_mode": robot.robot_mode, "arm": self.arm,
                  "controller": "active" if robot.controller_active else "inactive", "error": error or "none",
                  "overruns": self.overruns, "published_states": self.published, **robot.counters}
        level = "error" if error else "ok"
        message = (f"reflex: {robot.reflex}" if robot.reflex else error) or robot.robot_mode  # "reflex: <why>"
        status = diagnostic_status(f"{self.get_name()}: robot", self.arm, level, message, values)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main() -> None:
    """ros2 run sim2real_ros franka_proxy --ros-args -p reality:=fr3_default"""
    sys.exit(run_node(FrankaProxy))
