"""exploration_dispatcher: collect data on the target with exploration policies mixed with random torques.

Runs `episodes` episodes of `episode_steps` control steps. Each episode draws one exploration policy;
each step may be replaced by a random torque (sim2real_core.explore.dispatch holds the logic). One command
is published on the first joint state of each control period, by the states' stamps: every state of the
sim bridge (one per period, which also drives its lockstep mode), one in ten of franka_ros2's 1 kHz stream
whatever samples it drops. States whose stamp is not newer than the previous one are ignored (replayed).
Every command passes the safety layer of the policy server (torque and rate limits, joint-limit guard, NaN
guard; on hardware also the watchdog). After an episode's last step the torque is ramped to zero within the
rate limit, then the episode's "end" event is published.

Episodes begin
  - target "sim": after a successful call of the bridge's reset service (`reset_service`);
  - target "hardware": when an operator calls this node's `~/start_episode` (std_srvs/Trigger).
Boundaries go to /sim2real/episode as std_msgs/String JSON, e.g.
  {"event": "start", "episode": 0, "episodes": 10, "policy": 2, "policy_name": "explore_2",
   "source": "exploration_dispatcher", "stamp": 12.34}
  {"event": "end", ..., "steps": 500, "random_steps": 98, "stop_steps": 3, "fault": "none", "safety": {...}}
(both with "extra_inputs": [x, y, z] when the episode's reach target was drawn, see extra_inputs_box).
Progress goes to /diagnostics. When every episode has ended the node exits with code 0.

Parameters: PARAMETERS below (`ros2 param describe /exploration_dispatcher NAME`), all read-only.
"""
from __future__ import annotations

import sys
import time
from enum import Enum

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from sim2real_core.config import ConfigError
from sim2real_core.explore.dispatch import DispatchConfig, Dispatcher, load_exploration_policies, task_box
from sim2real_core.policy.policy_file import PolicyFileError
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import PeriodGate, robot_joints_and_period
from sim2real_core.robot import DEFAULT_ROBOT

from . import contract
from .descriptors import Param, declare
from .messages import (
    MessageError,
    command_msg,
    diagnostic_array,
    diagnostic_status,
    diagnostic_values,
    episode_event_msg,
    joint_state_arrays,
    matched_publishers,
    publish_zero_torque,
    stamp_to_seconds,
)
from .node_main import run_node

TARGETS = ("sim", "hardware")
LOCKSTEP_RESEND = 0.5  # [s] target sim: no state this long after a command -> the command goes again


class Phase(Enum):
    """What the dispatcher is doing."""

    RESETTING = "resetting"  # target sim: waiting for the bridge's reset
    WAITING = "waiting for operator"  # target hardware: waiting for ~/start_episode
    RUNNING = "running"
    STOPPING = "stopping"  # ramping the torque to zero after the last step
    DONE = "done"

_DISPATCH = DispatchConfig()
PARAMETERS = (
    Param("policies", Parameter.Type.STRING_ARRAY, "exploration policy folders or sidecars, or a folder of policy "
          "folders (explore-train output); empty only with random_action_prob 1 (random torques alone)"),
    Param("robot", DEFAULT_ROBOT, "robot file in config/robots (joint order, limits, control period)"),
    Param("target", "sim", "sim: episodes begin after the bridge's reset; hardware: when an operator calls "
          "~/start_episode"),
    Param("episodes", _DISPATCH.episodes, "episodes to run", "", 1, 2**31 - 1),
    Param("episode_steps", _DISPATCH.episode_steps, "control periods per episode", "", 1, 2**31 - 1),
    Param("random_action_prob", _DISPATCH.random_action_prob, "per-period probability of a random torque "
          "instead of the policy's", "", 0.0, 1.0),
    Param("random_torque_fraction", _DISPATCH.random_torque_fraction, "random torques are uniform in [-f, f] "
          "times the torque limits", "", 0.0, 1.0),
    Param("seed", _DISPATCH.seed, "seed of the policy draws and random torques"),
    Param("reset_service", f"/{contract.SIM_BRIDGE_NAME}/{contract.RESET_WORLD.removeprefix('~/')}",
          "the bridge's reset service (target sim)"),
    Param("reset_retry_period", 2.0, "time between attempts while the reset service is missing or fails", "s",
          1e-3, 3600.0),
    Param("reset_timeout", 10.0, "time before an unanswered reset call is abandoned and retried", "s", 1e-3, 3600.0),
    Param("arm_prefix", "", "franka_ros2 arm_prefix of the joint names <arm_prefix>_<robot_type>_jointN ('': none)"),
    Param("robot_type", "", "franka_ros2 robot_type of the joint names ('': the robot file's)"),
    Param("watchdog_periods", 0, "target hardware: control periods without a fresh state before the torque is "
          "zeroed and the episode ends in fault watchdog (0: config/policy/safety.yaml's)", "", 0, 1000),
    Param("wait_for_subscribers", 0, "no episode starts while fewer readers of the episode topic have matched "
          "(1 with a transition logger)", "", 0, 1000),
    Param("wait_for_state_subscribers", 0, "nor while fewer transition loggers report a state reader matched to "
          "the arm's stream on /diagnostics (1 with a logger)", "", 0, 1000),
    Param("extra_inputs_box", "", "TASK.BOX of config/tasks (e.g. fr3_reach.target) from which the policies' "
          "extra inputs are drawn per episode ('': the policies' defaults)"),
    Param("diagnostics_period", 1.0, "time between /diagnostics messages", "s", 1e-3, 3600.0),
)


class ExplorationDispatcher(Node):
    """Runs the exploration episodes on the target (see the module docstring)."""

    def __init__(self):
        super().__init__("exploration_dispatcher")
        p = declare(self, PARAMETERS)
        paths, robot, self.target = p["policies"] or [], p["robot"], p["target"]
        config = {name: p[name] for name in ("episodes", "episode_steps", "random_action_prob",
                                             "random_torque_fraction", "seed")}
        reset_service, retry, reset_timeout = p["reset_service"], p["reset_retry_period"], p["reset_timeout"]
        arm_prefix, robot_type, watchdog = p["arm_prefix"], p["robot_type"], p["watchdog_periods"]
        self.wait_for_subscribers = p["wait_for_subscribers"]
        self.wait_for_state_subscribers = p["wait_for_state_subscribers"]
        self._recorders: dict[str, dict[str, int]] = {}  # logger diagnostics name -> matched publishers per topic
        extra_box, diagnostics_period = p["extra_inputs_box"], p["diagnostics_period"]
        if self.target not in TARGETS:
            raise ValueError(f"parameter target must be one of {TARGETS}, got {self.target!r}")
        for name, value in (("reset_retry_period", retry), ("reset_timeout", reset_timeout),
                            ("diagnostics_period", diagnostics_period)):
            if not value > 0:
                raise ValueError(f"parameter {name} must be a positive number of seconds, got {value}")
        try:
            self.joint_names, control_period = robot_joints_and_period(robot, arm_prefix, robot_type)
            overrides = {"watchdog_periods": watchdog} if watchdog else {}
            safety = SafetyLayer(load_safety_limits(robot, **overrides), period=control_period)
            policies = load_exploration_policies([p for p in paths if p], self.joint_names)
            names = [p.source.parent.name if p.source else str(i) for i, p in enumerate(policies)]
            low, high = task_box(extra_box) if extra_box else ((), ())
            self.dispatcher = Dispatcher(policies, safety, DispatchConfig(**config, extra_low=low, extra_high=high),
                                         names)
        except (ConfigError, PolicyFileError) as exc:
            raise ValueError(str(exc)) from exc
        self.hardware_id = robot
        self.phase = Phase.RESETTING if self.target == "sim" else Phase.WAITING
        self.bad_states = 0
        self.reset_calls = 0
        self.problem = ""  # why collection is stuck, for /diagnostics
        self._q = self._dq = None
        self._last_stamp: float | None = None
        self.replayed_states = 0
        self.resent_commands = 0
        self._last_command: np.ndarray | None = None
        self._last_command_time = 0.0
        self._state_since_command = True
        self.gate = PeriodGate(control_period)
        self._state_since_tick = False
        self._state_since_reset_call = False
        self._reset_future = None
        self._reset_sent = 0.0
        self.reset_timeout = reset_timeout
        self.command_pub = self.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)
        self.event_pub = self.create_publisher(String, contract.EPISODES, contract.EVENT_QOS)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.state_sub = self.create_subscription(JointState, contract.JOINT_STATES, self._on_state,
                                                  contract.COMMANDER_STATE_QOS)
        self.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)
        self.create_service(Trigger, "~/start_episode", self._on_start_episode)
        self.reset_client = self.create_client(Trigger, reset_service) if self.target == "sim" else None
        if self.target == "sim":
            self.create_timer(retry, self._request_reset)
            self.create_timer(LOCKSTEP_RESEND / 2, self._resend_if_stalled)
            self._request_reset()
        else:
            # On a realtime arm a silent state stream must zero the torque: the safety layer's watchdog.
            self.create_timer(control_period, self._watchdog)
        self.create_timer(diagnostics_period, self._publish_diagnostics)
        source = f"{len(policies)} exploration policies" if policies else "random torques only"
        self.get_logger().info(f"{self.dispatcher.config.episodes} episodes of "
                               f"{self.dispatcher.config.episode_steps} steps with {source} on target "
                               f"{self.target}")
        if self.target == "hardware":
            self.get_logger().info(f"call {self.get_fully_qualified_name()}/start_episode to begin episode 0")

    # --- episode boundaries -------------------------------------------------------------------------

    def _request_reset(self) -> None:
        """Target sim: ask the bridge for a reset (retried by a timer while it is missing or failing)."""
        if self.phase is not Phase.RESETTING or not self._recorders_ready():
            return
        if self._reset_future is not None:
            if time.monotonic() - self._reset_sent < self.reset_timeout:
                return
            self.reset_client.remove_pending_request(self._reset_future)
            self._reset_future.cancel()
            self._reset_future = None
            self.problem = f"reset through {self.reset_client.srv_name} got no answer in {self.reset_timeout:g} s"
            self.get_logger().error(self.problem)
        if not self.reset_client.service_is_ready():
            self.problem = f"reset service {self.reset_client.srv_name} not available"
            self.get_logger().warn(self.problem, throttle_duration_sec=10.0)
            return
        self.reset_calls += 1
        self._reset_sent = time.monotonic()
        self._state_since_reset_call = False
        self._reset_future = self.reset_client.call_async(Trigger.Request())
        self._reset_future.add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        if future is not self._reset_future or future.cancelled():
            return
        self._reset_future = None
        response = future.result()
        if response is None or not response.success:
            self.problem = f"reset through {self.reset_client.srv_name} failed: " \
                           f"{response.message if response is not None else future.exception()}"
            self.get_logger().error(self.problem)
            return
        self._begin_episode()

    def _on_start_episode(self, _request, response):
        if self.phase is Phase.WAITING and not self._recorders_ready():
            response.success, response.message = False, self.problem
        elif self.phase is Phase.WAITING:
            self._begin_episode()
            record = self.dispatcher.current
            response.success = True
            response.message = f"episode {record.episode} started with policy {self._policy_name(record.policy)}"
        else:
            response.success = False
            response.message = f"cannot start an episode while {self.phase.value}" + (
                "" if self.target == "hardware" else " (target sim resets by itself)")
        return response

    def _recorders_ready(self) -> bool:
        """Whether enough nodes (e.g. the transition logger) listen for episode boundaries to start one, and
        someone (the arm, or the command supervisor in front of it) listens to the commands."""
        if self.command_pub.get_subscription_count() < 1 or self.state_sub.get_publisher_count() < 1:
            self.problem = (f"waiting for a subscriber of {self.command_pub.topic_name} and a publisher of "
                            f"{self.state_sub.topic_name}")
            self.get_logger().warn(self.problem, throttle_duration_sec=10.0)
            return False
        listening = self.event_pub.get_subscription_count()
        recording = sum(1 for matched in self._recorders.values() if matched.get(self.state_sub.topic_name, 0) >= 1)
        if listening >= self.wait_for_subscribers and recording >= self.wait_for_state_subscribers:
            return True
        self.problem = (f"waiting for {self.wait_for_subscribers} subscribers of {self.event_pub.topic_name} "
                        f"(have {listening}) and {self.wait_for_state_subscribers} loggers recording "
                        f"{self.state_sub.topic_name} (have {recording})")
        self.get_logger().warn(self.problem, throttle_duration_sec=10.0)
        return False

    def _begin_episode(self) -> None:
        event = self.dispatcher.start_episode()
        self.gate.restart()
        self.problem = ""
        self.phase = Phase.RUNNING
        self._publish_event(event)
        self.get_logger().info(f"episode {event['episode']} started: policy {event['policy_name']}")
        if self.target == "sim" and self._state_since_reset_call:
            # The bridge published the reset state before answering; in lockstep it waits for this command.
            self._control()
        elif self.target == "sim":  # the reset state is late or lost: a zero command steps a lockstep bridge
            self._last_command, self._last_command_time = np.zeros(len(self.joint_names)), time.monotonic()
            self._state_since_command = False

    def _finish_episode(self) -> None:
        event = self.dispatcher.end_episode()
        self._publish_event(event)
        self.get_logger().info(f"episode {event['episode']} ended: {event['steps']} steps "
                               f"({event['random_steps']} random), fault {event['fault']}")
        if self.dispatcher.done:
            self._shut_down()
        elif self.target == "sim":
            self.phase = Phase.RESETTING
            self._request_reset()
        else:
            self.phase = Phase.WAITING
            self.get_logger().info(f"call {self.get_fully_qualified_name()}/start_episode to begin episode "
                                   f"{event['episode'] + 1}")

    def _shut_down(self) -> None:
        """All episodes ended: deliver the last messages and end the process with exit code 0."""
        self.phase = Phase.DONE
        self._publish_diagnostics()
        for publisher in (self.event_pub, self.diagnostics_pub, self.command_pub):
            publisher.wait_for_all_acked(Duration(seconds=2.0))
        self.get_logger().info(f"all {self.dispatcher.config.episodes} episodes done")
        self.context.try_shutdown()

    # --- control ------------------------------------------------------------------------------------

    def _on_state(self, msg: JointState) -> None:
        try:
            q, dq, _ = joint_state_arrays(msg, self.joint_names)
        except MessageError as exc:  # not fresh: on hardware the watchdog notices a stream of bad states
            self.bad_states += 1
            self.get_logger().error(f"{contract.JOINT_STATES}: {exc}", throttle_duration_sec=1.0)
            return
        stamp = stamp_to_seconds(msg.header.stamp)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            self.replayed_states += 1
            return
        self._last_stamp = stamp
        self._q, self._dq, self._state_since_tick = q, dq, True
        self._state_since_command = True
        if self.phase is Phase.RESETTING:
            self._state_since_reset_call = True
        if self.phase in (Phase.RUNNING, Phase.STOPPING):
            self._control(stamp)

    def _control(self, stamp: float | None = None) -> None:
        """One command for the newest state, once per control period by stamp (the first of an episode answers
        the first state after its reset call or operator trigger, never an older one)."""
        q, dq = self._q, self._dq
        elapsed = self.gate.due(stamp if stamp is not None else self._last_stamp)
        if elapsed is None:
            return
        if self.phase is Phase.RUNNING:
            self._publish_command(self.dispatcher.command(q, dq, elapsed=elapsed))
            if self.dispatcher.episode_finished:
                self.phase = Phase.STOPPING
        elif self.phase is Phase.STOPPING:
            self._publish_command(self.dispatcher.stop_command(q, dq, elapsed=elapsed))
        if self.phase is Phase.STOPPING and self.dispatcher.stopped:
            self._finish_episode()

    def _watchdog(self) -> None:
        """Hardware: a control period passed without a fresh state while commanding; a fault ends the episode
        (states have stopped, e.g. after a reflex: the arm is left at zero torque and the operator recovers)."""
        fresh, self._state_since_tick = self._state_since_tick, False
        if not fresh and self.phase in (Phase.RUNNING, Phase.STOPPING) and self._q is not None:
            self._publish_command(self.dispatcher.missed_period(self._q, self._dq))
        if self.phase in (Phase.RUNNING, Phase.STOPPING) and self.dispatcher.safety.fault is not None:
            self._publish_command(np.zeros(len(self.joint_names)))
            self._finish_episode()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        """The robot side (franka_proxy) reports a reflex: the running episode ends with fault "reflex". Transition
        loggers report which of their readers have matched (see wait_for_state_subscribers)."""
        arm = self.joint_names[0].rsplit("_joint", 1)[0]
        for status in msg.status:
            values = diagnostic_values(status)
            if "matched_publishers" in values:  # a transition logger's report of its readers
                self._recorders[status.name] = matched_publishers(values)
            if values.get("robot_mode") == "reflex" and values.get("arm") == arm and self.dispatcher.running:
                self.dispatcher.safety.trip("reflex")
                if self.dispatcher.current.fault is None:
                    self.dispatcher.current.fault = "reflex"
                self.problem = status.message

    def _publish_command(self, torque: np.ndarray) -> None:
        self.command_pub.publish(command_msg(torque))
        self._last_command, self._last_command_time = torque, time.monotonic()
        self._state_since_command = False

    def _resend_if_stalled(self) -> None:
        """Target sim (lockstep): a command or a state lost on its way (a relay or a reader that had not matched
        yet) would stop the simulation for good; after LOCKSTEP_RESEND s without a state the last command goes
        again (at an episode's start, zero torque)."""
        if self.phase in (Phase.RUNNING, Phase.STOPPING) and self._last_command is not None \
                and not self._state_since_command and time.monotonic() - self._last_command_time > LOCKSTEP_RESEND:
            self.resent_commands += 1
            self._publish_command(self._last_command)

    def stop(self) -> None:
        """On shutdown: publish zero torque (the effort controller holds the last command forever)."""
        if self.context.ok():
            publish_zero_torque(self.command_pub, len(self.joint_names))

    # --- reporting ----------------------------------------------------------------------------------

    def _policy_name(self, index: int) -> str:
        return self.dispatcher.names[index] if index >= 0 else "random"

    def _publish_event(self, event: dict[str, object]) -> None:
        stamped = {**event, "source": self.get_name(), "stamp": self.get_clock().now().nanoseconds * 1e-9}
        self.event_pub.publish(episode_event_msg(stamped))

    def _publish_diagnostics(self) -> None:
        config, record = self.dispatcher.config, self.dispatcher.current
        finished = len(self.dispatcher.records) - int(self.dispatcher.running)
        values = {"phase": self.phase.value, "target": self.target, "episodes_done": finished,
                  "episodes": config.episodes, "episode_steps": config.episode_steps,
                  "reset_calls": self.reset_calls, "bad_states": self.bad_states,
                  "replayed_states": self.replayed_states, "resent_commands": self.resent_commands,
                  **self.dispatcher.safety.diagnostics()}
        if record is not None:
            values.update(episode=record.episode, policy=self._policy_name(record.policy), step=record.steps,
                          random_steps=record.random_steps, episode_fault=record.fault or "none")
        if self.problem:
            level, message = "error", self.problem
        elif self.phase is Phase.DONE:
            level, message = "ok", f"all {config.episodes} episodes done"
        elif record is not None and record.fault and self.dispatcher.running:
            level, message = "warn", f"episode {record.episode}: safety fault {record.fault}, commanding zero torque"
        else:
            level, message = "ok", f"{self.phase.value}: {finished}/{config.episodes} episodes done"
        status = diagnostic_status(f"{self.get_name()}: collection", self.hardware_id, level, message, values)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))


def main() -> None:
    """ros2 run sim2real_ros exploration_dispatcher --ros-args -p policies:=[DIR] -p target:=sim"""
    sys.exit(run_node(ExplorationDispatcher))
