"""Collect exploration data from the franka emulation as an operator would on the real arm.

Starts `sim2real up franka_proxy` and `sim2real up collect_real` as node processes (the robot side; the
dispatcher behind the command supervisor; the transition logger) and plays the operator of the collect_real
stack for every episode: recover the arm from a reflex of the previous episode, release the supervisor's
latch, bring the arm to its start pose (`franka_proxy/reset_world`: on the real arm the operator does this),
then `exploration_dispatcher/start_episode`, and wait for the dispatcher's end of the episode. When the
dispatcher has run its episodes it exits, and the logger closes the bag.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String
from std_srvs.srv import Trigger

from sim2real_core.policy.serving import robot_joints_and_period
from sim2real_core.sim.reality import DEFAULT_REALITY
from sim2real_ros.stack import apply_overrides, load_stack

from . import contract
from .messages import diagnostic_values, episode_event, matched_publishers
from .service_calls import RESEND_AFTER, answered
from .spawned import check_running, spawn_node, stop_nodes

ROBOT_STACK = "franka_proxy"
COLLECT_STACK = "collect_real"
DISPATCHER = "exploration_dispatcher"
LOGGER = "transition_logger"
TIMEOUT = 30.0


@dataclass(frozen=True)
class Collection:
    """What an emulated-hardware collection did: the bag and each episode's end event."""

    bag: Path
    episodes: list[dict]

    def summary(self) -> dict:
        """JSON-friendly summary: the bag, steps and faults per episode."""
        return {"bag": str(self.bag), "stack": COLLECT_STACK, "robot": ROBOT_STACK,
                "steps": [int(e.get("steps", 0)) for e in self.episodes],
                "faults": [_fault(e) for e in self.episodes]}


def _fault(event: dict) -> str:
    """The fault that ended an episode ('' for none)."""
    fault = str(event.get("fault") or "")
    return "" if fault == "none" else fault


def collect_over_ros(policies: list[str], bag: str | Path, episodes: int, episode_steps: int,
                     random_action_prob: float, reality: str = DEFAULT_REALITY, seed: int = 0,
                     workdir: Path | None = None) -> Collection:
    """Run the exploration `policies` (folders of exploration policies) on the franka emulation of `reality` for
    `episodes` episodes of `episode_steps` control periods and record everything to `bag` (rosbag2, MCAP)."""
    if episodes < 1 or episode_steps < 1:
        raise ValueError(f"episodes and episode_steps must be >= 1, got {episodes} and {episode_steps}")
    robot = apply_overrides(load_stack(ROBOT_STACK), {"franka_proxy": {"reality": reality, "seed": seed}})
    collect = apply_overrides(load_stack(COLLECT_STACK), {
        DISPATCHER: {"policies": [str(p) for p in policies], "episodes": episodes, "episode_steps": episode_steps,
                     "random_action_prob": random_action_prob, "seed": seed,
                     "wait_for_subscribers": 2},  # the logger and this operator listen for episode events
        LOGGER: {"output": str(bag)}})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        processes = {spec.name: spawn_node(spec, folder) for spec in (*robot.nodes, *collect.nodes)}
        operator = None
        try:
            rclpy.init()
            operator = _Operator()
            operator.spin_until(operator.recorder_ready, "the transition logger to match every publisher it records",
                                processes, folder)
            timeout = TIMEOUT + 2 * episode_steps * robot_joints_and_period()[1]
            ended = [operator.run_episode(number, number == episodes - 1, processes, folder, timeout)
                     for number in range(episodes)]
            dispatcher = processes.pop(DISPATCHER)
            dispatcher.wait(TIMEOUT)  # it exits by itself after its last episode
            if dispatcher.returncode != 0:
                raise RuntimeError(f"{DISPATCHER} exited with {dispatcher.returncode}; see {folder}/{DISPATCHER}.log")
        finally:  # whatever failed, this process leaves no node running and rclpy shut down for its next run
            if operator is not None:
                operator.node.destroy_node()
            rclpy.try_shutdown()
            stop_nodes(processes)
    return Collection(Path(bag), ended)


class _Operator:
    """The operator's rclpy node: the episode events and the service clients of the collect_real routine."""

    def __init__(self):
        self.node = n = rclpy.create_node("sim2real_collect_operator")
        self.ends: dict[int, dict] = {}
        self.recorded: dict[str, int] = {}  # the logger's matched publishers per recorded topic
        n.create_subscription(String, contract.EPISODES, self._on_event, contract.EVENT_QOS)
        n.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)
        self.recover = n.create_client(Trigger, "/franka_proxy/error_recovery")
        self.reset_supervisor = n.create_client(Trigger, "/command_supervisor/reset")
        self.reset_world = n.create_client(Trigger, "/franka_proxy/reset_world")
        self.start_episode = n.create_client(Trigger, f"/{DISPATCHER}/start_episode")

    def _on_event(self, msg: String) -> None:
        event = episode_event(msg)
        if event.get("event") == "end" and event.get("source") == DISPATCHER:
            self.ends[int(event["episode"])] = event

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == LOGGER:
                self.recorded = matched_publishers(diagnostic_values(status))

    def recorder_ready(self) -> bool:
        """Whether the logger's readers have matched the arm's states, the supervisor's commands and both
        publishers of episode events (franka_proxy's start pose, the dispatcher's episodes): discovery matches
        each reader and writer pair on its own, so a reader on the graph may still miss the first messages."""
        wanted = {f"/{contract.JOINT_STATES}": 1, f"/{contract.EFFORT_COMMANDS}": 1, contract.EPISODES: 2}
        return all(self.recorded.get(topic, 0) >= count for topic, count in wanted.items())

    def spin_until(self, condition, what: str, processes: dict, folder: Path, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            check_running(processes, folder)
            if time.monotonic() > deadline:
                raise RuntimeError(f"collection on the franka emulation: timed out waiting for {what}")
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def call(self, client, what: str, processes: dict, folder: Path, repeatable: bool = True) -> Trigger.Response:
        """The answer to a Trigger request; sent again while unanswered where serving it twice is harmless."""
        self.spin_until(client.service_is_ready, f"service {client.srv_name}", processes, folder)

        def spin_once():
            check_running(processes, folder)
            rclpy.spin_once(self.node, timeout_sec=0.01)
        return answered(lambda: client.call_async(Trigger.Request()), spin_once, TIMEOUT,
                        f"collection on the franka emulation: {what}", RESEND_AFTER if repeatable else TIMEOUT)

    def run_episode(self, number: int, last: bool, processes: dict, folder: Path, timeout: float) -> dict:
        """Recover, release the latch, reset the arm, start episode `number` and wait for its end event (after
        the `last` one the dispatcher exits by itself)."""
        self.call(self.recover, "error recovery", processes, folder)
        self.call(self.reset_supervisor, "the supervisor's reset", processes, folder)
        self.call(self.reset_world, "the arm's start pose", processes, folder)
        deadline = time.monotonic() + TIMEOUT
        while not (started := self.call(self.start_episode, "start_episode", processes, folder,
                                          repeatable=False)).success:
            if time.monotonic() > deadline:  # the dispatcher refuses until its recorder and the arm are there
                raise RuntimeError(f"{DISPATCHER} did not start episode {number}: {started.message}")
            retry = time.monotonic() + 0.2
            self.spin_until(lambda: time.monotonic() > retry, "", processes, folder)
        watched = {k: v for k, v in processes.items() if not (last and k == DISPATCHER)}
        self.spin_until(lambda: number in self.ends, f"the end of episode {number}", watched, folder, timeout)
        return self.ends[number]
