"""sim_bridge: the MuJoCo FR3 (or the reality proxy) behind the franka_ros2 topics.

Publishes /franka/joint_states (sensor_msgs/JointState: fr3_joint1..7 position, velocity, effort) once per
period, /clock, /puck/pose (task push), /diagnostics, and episode boundaries on /sim2real/episode at every
reset; with camera_rate > 0, the fixed workspace camera's images on /camera/image_raw (sensor_msgs/Image rgb8)
and their intrinsics on /camera/camera_info, rendered offscreen (sim2real_core.sim.camera) in a process of their
own, so the physics keeps its pace: each camera period the image rendered since the last is published and the
current state is handed over (while one still renders, the next is skipped and counted). The reality profile
renders its hidden appearance; the sim profile the model's, or with visual_randomization a new one from the
appearance space's box at every reset.
Subscribes /effort_controller/commands (std_msgs/Float64MultiArray, 7 torques without gravity).
Services: ~/reset_world (Trigger), ~/set_pause (SetBool), ~/step_simulation (Trigger).

Clocking:
  realtime  a timer paces the steps by the wall clock, like a real arm; the newest command is applied, zero
            torque once it is older than watchdog_period.
  lockstep  each valid command advances one period (fast data collection); ~/step_simulation advances one
            period with the newest command if fresh, else zero torque.
Paused: no steps (realtime), commands dropped and counted (lockstep); ~/step_simulation still steps.
Commands of the wrong length or with non-finite values are dropped and counted on /diagnostics.

Parameters: PARAMETERS below, read-only (`ros2 param describe /sim_bridge NAME`); settable at run time, profile
sim only, each validated against its bounds: distribution (distribution YAML, drawn at every reset; '' for none),
and physics.<name> for every parameter of the task's space, e.g. physics.link3_mass_scale.
The reality profile declares no physics parameters and refuses every physics or distribution change.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time

import mujoco
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from sim2real_core.sim.bridge import BridgeConfig, SimBridge
from sim2real_core.sim.camera import WorkspaceCamera
from sim2real_core.sim.reality import DEFAULT_REALITY

from . import contract
from .descriptors import Param, declare
from .messages import (
    camera_info_msg,
    clock_msg,
    diagnostic_array,
    diagnostic_status,
    episode_event_msg,
    image_msg,
    joint_state_msg,
    nanoseconds_to_stamp,
    pose_stamped_msg,
)
from .node_main import run_node

PHYSICS = "physics."
MAX_CATCH_UP = 10  # realtime: at most this many periods per timer tick, then the bridge falls behind

PARAMETERS = tuple(Param(*entry, dynamic_typing=True) for entry in (
    ("profile", "sim", "sim: the nominal model (physics settable); reality: a reality proxy"),
    ("task", "reach", "reach | push (with the puck)"),
    ("clocking", "realtime", "realtime: paced by the wall clock; lockstep: each command advances one period"),
    ("rate", 0.0, "control rate (0: the robot's)", "Hz"),
    ("watchdog_period", 0.05, "realtime: zero torque once the newest command is older than this", "s"),
    ("seed", 0, "seed of resets, randomisation and noise"),
    ("reality", DEFAULT_REALITY, "reality profile in config/reality, or a path (profile reality)"),
    ("diagnostics_period", 1.0, "time between /diagnostics messages", "s"),
    ("publish_episode_events", True, "publish a boundary on /sim2real/episode at every reset"),
    ("frame_id", "world", "frame of the puck pose"),
    ("camera_rate", 0.0, "workspace camera images per second (0: no camera)", "Hz", 0.0, 60.0),
    ("camera_width", 160, "camera image width", "pixels", 8, 1920),
    ("camera_height", 120, "camera image height", "pixels", 8, 1080),
    ("visual_randomization", False, "profile sim: a new camera appearance from the appearance space's box at "
                                    "every reset"),
    ("camera_frame_id", "workspace_camera", "frame of the camera images"),
))
CAMERA_START_TIMEOUT = 30.0  # [s] for the camera process's OpenGL context
RENDER_NICENESS = 10  # the camera process's priority below the bridge's


def _render_worker(connection, model, space, width: int, height: int) -> None:
    """The camera's process: answers each (stamp, qpos, appearance) with (stamp, image, intrinsics) until it gets
    None or its parent is gone; first sends '' when the camera works, else the reason it does not. It yields the
    CPU to the physics: a lower priority, and Mesa's software rasterizer on one thread."""
    os.nice(RENDER_NICENESS)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    try:
        camera = WorkspaceCamera(model, width, height, space=space)
    except Exception as exc:  # noqa: BLE001  (reported by CameraStream.start)
        connection.send(str(exc))
        return
    data = mujoco.MjData(camera.model)
    shown = None
    connection.send("")
    try:
        while (view := connection.recv()) is not None:
            stamp_ns, qpos, appearance = view
            if shown is None or not np.array_equal(appearance, shown):
                camera.set_appearance(appearance)
                shown = appearance
            data.qpos[:] = qpos
            mujoco.mj_forward(camera.model, data)
            connection.send((stamp_ns, camera.render(data), camera.intrinsics()))
    except (EOFError, OSError):  # the bridge is gone
        pass
    finally:
        camera.close()


class CameraStream:
    """Renders snapshots of the bridge in a process of its own and publishes each image with its intrinsics.

    Rendering (software OpenGL on the CPU) never holds the bridge's GIL, so the physics timer keeps its pace. Every
    camera period the bridge's executor publishes the image rendered since the last period and hands the renderer
    the current state: no thread of the bridge besides the executor publishes. start() raises RuntimeError with the
    reason when the camera cannot render.
    """

    def __init__(self, node: Node, width: int, height: int, frame_id: str):
        self.node, self.width, self.height, self.frame_id = node, width, height, frame_id
        self.image_pub = node.create_publisher(Image, contract.CAMERA_IMAGE, contract.STATE_STREAM_QOS)
        self.info_pub = node.create_publisher(CameraInfo, contract.CAMERA_INFO, contract.STATE_STREAM_QOS)
        self.rendered = self.skipped = 0
        self._busy = False  # a snapshot is being rendered
        self._connection = self._process = None

    def start(self, model, space) -> None:
        """Start the camera's process for `model` with appearance `space`; wait until it renders."""
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_render_worker, args=(child, model, space, self.width, self.height),
                                        name="sim_bridge camera", daemon=True)
        self._process.start()
        child.close()
        failure = (self._connection.recv() if self._connection.poll(CAMERA_START_TIMEOUT)
                   else f"no answer within {CAMERA_START_TIMEOUT} s")
        if failure:
            self.stop()
            raise RuntimeError(f"the workspace camera did not start: {failure}")

    def tick(self, stamp_ns: int, qpos: np.ndarray, appearance: np.ndarray) -> None:
        """One camera period: publish the image rendered since the last one, then hand the renderer this state
        (skipped, and counted, while the previous one is still rendering)."""
        if self._busy and self._connection.poll():
            rendered_ns, image, intrinsics = self._connection.recv()
            stamp = nanoseconds_to_stamp(rendered_ns)
            self.image_pub.publish(image_msg(stamp, self.frame_id, image))
            self.info_pub.publish(camera_info_msg(stamp, self.frame_id, self.width, self.height, intrinsics))
            self.rendered += 1
            self._busy = False
        if self._busy:
            self.skipped += 1
            return
        self._connection.send((stamp_ns, qpos, appearance))
        self._busy = True

    def stop(self) -> None:
        """End the camera's process."""
        if self._process is None:
            return
        try:
            self._connection.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()


class SimBridgeNode(Node):
    """ROS 2 wrapper of sim2real_core.sim.bridge.SimBridge (see the module docstring)."""

    def __init__(self):
        super().__init__(contract.SIM_BRIDGE_NAME, allow_undeclared_parameters=True)
        p = declare(self, PARAMETERS)
        config = BridgeConfig(profile=p["profile"], task=p["task"], clocking=p["clocking"], rate=float(p["rate"]),
                              watchdog_period=float(p["watchdog_period"]), seed=p["seed"], reality=p["reality"],
                              visual_randomization=bool(p["visual_randomization"]))
        diagnostics_period = p["diagnostics_period"]
        self.publish_events, self.frame_id = p["publish_episode_events"], p["frame_id"]
        if not diagnostics_period > 0:
            raise ValueError(f"parameter diagnostics_period must be > 0 s, got {diagnostics_period}")
        self.bridge = SimBridge(config, start_time=time.time())
        self._declared = {*p, "use_sim_time"}
        if self.bridge.space is not None:
            self._declare_physics()
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.paused = False
        self.overruns = 0
        self._stamp0: int | None = None  # realtime: ROS time [ns] of tick 0
        self._last_report = dict(self.bridge.counters)
        self.state_pub = self.create_publisher(JointState, contract.JOINT_STATES, contract.STATE_STREAM_QOS)
        self.clock_pub = self.create_publisher(Clock, contract.CLOCK, contract.CONTROL_QOS)
        self.event_pub = self.create_publisher(String, contract.EPISODES, contract.EVENT_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.puck_pub = (self.create_publisher(PoseStamped, contract.PUCK_POSE, contract.STATE_STREAM_QOS)
                         if self.bridge.has_puck else None)
        self.create_subscription(Float64MultiArray, contract.EFFORT_COMMANDS, self._on_command, contract.CONTROL_QOS)
        self.create_service(Trigger, contract.RESET_WORLD, self._on_reset)
        self.create_service(SetBool, contract.SET_PAUSE, self._on_pause)
        self.create_service(Trigger, contract.STEP_SIMULATION, self._on_step)
        self._reset()
        if config.clocking == "realtime":
            self._start_ticks()
            self.create_timer(self.bridge.period, self._on_tick)
        self.camera = None
        if p["camera_rate"] > 0:
            self.camera = CameraStream(self, int(p["camera_width"]), int(p["camera_height"]), p["camera_frame_id"])
            self.camera.start(self.bridge.sim.model, self.bridge.appearance_space)
            self.create_timer(1.0 / p["camera_rate"], self._camera_period)
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        self.get_logger().info(
            f"profile {config.profile}, task {config.task}, {config.clocking} at {1 / self.bridge.period:g} Hz"
            + (f", {len(self.bridge.space)} physics parameters" if self.bridge.space is not None else ""))

    # --- parameters ---------------------------------------------------------------------------------

    def _declare_physics(self) -> None:
        try:
            self._declare_physics_parameters()
        except InvalidParameterValueException as exc:  # a parameter-file value outside its bounds
            raise ValueError(str(exc)) from None

    def _declare_physics_parameters(self) -> None:
        values = self.bridge.physics_values()
        overrides = {}
        for p in self.bridge.space:
            name = PHYSICS + p.name
            text = f"[{p.unit}] {p.description}".strip()
            if p.integer:
                descriptor = ParameterDescriptor(description=text, integer_range=[
                    IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)])
                value = self.declare_parameter(name, int(values[p.name]), descriptor).value
            else:
                descriptor = ParameterDescriptor(description=text, floating_point_range=[
                    FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)])
                value = self.declare_parameter(name, float(values[p.name]), descriptor).value
            self._declared.add(name)
            overrides[p.name] = value
        self.bridge.set_physics(overrides)  # values from a parameter file (ValueError: exit 2 with the reason)
        distribution = self.declare_parameter("distribution", "", ParameterDescriptor(
            description="distribution YAML drawn at every reset ('' for none)")).value
        self._declared.add("distribution")
        self.bridge.set_distribution(distribution)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        physics, distribution = {}, None
        for param in params:
            name = param.name
            if name.startswith(PHYSICS) or name == "distribution":
                if self.bridge.space is None:
                    return SetParametersResult(successful=False, reason=(
                        f"{name}: the reality profile has hidden physics; physics parameters and distributions "
                        "cannot be set"))
            if name not in self._declared:
                return SetParametersResult(successful=False, reason=f"unknown parameter {name}")
            if name.startswith(PHYSICS):
                physics[name[len(PHYSICS):]] = param.value
            elif name == "distribution":
                distribution = param.value
        try:
            if distribution is not None:
                self.bridge.set_distribution(distribution)
            if physics:
                self.bridge.set_physics(physics)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _sync_physics_parameters(self) -> None:
        """After a randomized reset, show the episode's values in the physics.* parameters."""
        if self.bridge.space is None or self.bridge.distribution is None:
            return
        self.set_parameters([Parameter(PHYSICS + name, value=value)
                             for name, value in self.bridge.physics_values().items()])

    # --- stepping -----------------------------------------------------------------------------------

    def _on_command(self, msg: Float64MultiArray) -> None:
        reason = self.bridge.command(msg.data, time.monotonic())
        if reason:
            self.get_logger().error(f"{contract.EFFORT_COMMANDS}: dropped: {reason}", throttle_duration_sec=1.0)
            return
        if self.bridge.config.clocking == "lockstep":
            if self.paused:
                self.bridge.drop_paused()
                return
            self._step()

    def _start_ticks(self) -> None:
        self._t0, self._ticks = time.monotonic(), 0
        self._stamp0 = self.get_clock().now().nanoseconds

    def _on_tick(self) -> None:
        """Realtime: run the periods that are due by the wall clock, publishing after each."""
        if self.paused:
            return
        due = int((time.monotonic() - self._t0) / self.bridge.period) - self._ticks
        if due > MAX_CATCH_UP:
            self.overruns += 1
            self._ticks += due - MAX_CATCH_UP
            due = MAX_CATCH_UP
        for _ in range(max(due, 0)):
            self._ticks += 1
            self._step()

    def _step(self) -> None:
        self.bridge.step(time.monotonic())
        self._publish_state()

    def _stamp_ns(self) -> int:
        """Realtime: the ROS time of the current tick (franka_ros2 stamps with the controller_manager's ROS
        time, so stamp ages mean something to the nodes); lockstep: the simulated clock, also on /clock."""
        if self.bridge.config.clocking == "realtime" and self._stamp0 is not None:
            return self._stamp0 + self._ticks * self.bridge.period_ns
        return self.bridge.clock_ns

    def _publish_state(self) -> None:
        stamp = nanoseconds_to_stamp(self._stamp_ns())
        q, dq, effort = self.bridge.joint_state()
        self.clock_pub.publish(clock_msg(nanoseconds_to_stamp(self.bridge.clock_ns)))
        self.state_pub.publish(joint_state_msg(self.bridge.joint_names, stamp, q, dq, effort))
        if self.puck_pub is not None:
            position, quaternion = self.bridge.puck_pose()
            self.puck_pub.publish(pose_stamped_msg(stamp, self.frame_id, position, quaternion))

    def _camera_period(self) -> None:
        _, qpos, appearance = self.bridge.camera_view()
        self.camera.tick(self._stamp_ns(), qpos, appearance)

    def destroy_node(self) -> None:
        if self.camera is not None:
            self.camera.stop()
        super().destroy_node()

    # --- services -----------------------------------------------------------------------------------

    def _reset(self) -> None:
        for event in self.bridge.reset():
            if self.publish_events:
                self.event_pub.publish(episode_event_msg({**event, "stamp": self._stamp_ns() * 1e-9}))
        self._sync_physics_parameters()
        self._publish_state()  # the start state, before any command (lockstep waits for the first one)

    def _on_reset(self, _request, response):
        self._reset()
        response.success = True
        response.message = f"episode {self.bridge.episode} started"
        return response

    def _on_pause(self, request, response):
        if self.paused and not request.data and self.bridge.config.clocking == "realtime":
            self._start_ticks()  # resume from now, do not catch up the pause
        self.paused = bool(request.data)
        response.success = True
        response.message = "paused" if self.paused else "running"
        return response

    def _on_step(self, _request, response):
        if self.bridge.config.clocking == "realtime" and not self.paused:
            response.success = False
            response.message = "realtime clocking steps by itself: pause it (~/set_pause true) to step by request"
            return response
        self._step()
        response.success = True
        response.message = f"stepped to {self.bridge.steps} steps"
        return response

    # --- reporting ----------------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        counters = dict(self.bridge.counters)
        dropped = {k: counters[k] - self._last_report[k] for k in counters if k.startswith("dropped")}
        values = {"profile": self.bridge.config.profile, "clocking": self.bridge.config.clocking,
                  "task": self.bridge.config.task, "paused": self.paused, "episode": self.bridge.episode,
                  "steps": self.bridge.steps, "rate_hz": 1 / self.bridge.period, "overruns": self.overruns,
                  **counters, **({"camera_images": self.camera.rendered, "camera_skipped": self.camera.skipped}
                                 if self.camera is not None else {})}
        fast = counters["velocity_limit_steps"] - self._last_report["velocity_limit_steps"]
        if any(dropped.values()) or fast:
            level = "warn"
            message = ", ".join([f"dropped {k[8:]} commands: {v}" for k, v in dropped.items() if v]
                                + ([f"{fast} steps above a joint velocity limit"] if fast else []))
        else:
            level, message = "ok", "running" if not self.paused else "paused"
        self._last_report = counters
        status = diagnostic_status(f"{self.get_name()}: simulation", self.bridge.config.profile, level, message,
                                   values)
        self.diagnostics_pub.publish(diagnostic_array(nanoseconds_to_stamp(self.bridge.clock_ns), [status]))


def main() -> None:
    """ros2 run sim2real_ros sim_bridge --ros-args -p profile:=sim -p clocking:=lockstep"""
    sys.exit(run_node(SimBridgeNode))
