"""Evaluate a reach policy over DDS: policy_server <-> the robot side as separate processes, as on the arm.

The robot side is the sim bridge (target `sim`: nominal; `reality`: the 100 Hz reality proxy) or the franka
emulation (target `franka`: the reality proxy at 1 kHz behind franka_ros2's semantics, with the policy server
behind the command supervisor, as the `real` stack runs). The evaluator sets each episode's target as the
server's `extra_inputs`, resets the world, and judges the episode from the joint states alone
(sim2real_core.policy.evaluation.ReachJudge): the end-effector distance after the task's episode length
(by state stamps) and success. An episode that ends in a reflex is judged where the arm stopped. Episode
returns are not available here because the robot side does not publish the task's reward.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from sim2real_core.policy.evaluation import EvalResult, ReachJudge, summarise
from sim2real_core.policy.serving import load_servable_policy, robot_joints_and_period
from sim2real_core.sim.reality import DEFAULT_REALITY
from sim2real_ros.stack import NodeSpec

from . import contract
from .messages import diagnostic_values, episode_event, joint_state_arrays, stamp_to_seconds
from .service_calls import answered
from .spawned import check_running, spawn_node, stop_nodes

TIMEOUT = 30.0
FRANKA = "franka_proxy"
TARGETS = ("sim", "reality", "franka")


@dataclass(frozen=True)
class RosEvalResult:
    """Over-DDS evaluation: success and final distance per episode, and the server's diagnostics."""

    result: EvalResult  # `returns` hold the negative final distances [m]
    faults: list[str]  # per episode: the safety fault latched during it ('' for none)
    server: dict[str, str]

    def describe(self, title: str) -> str:
        """Human-readable lines."""
        distances = -np.asarray(self.result.returns)
        low, high = sorted(-np.asarray(self.result.return_ci))
        line = (f"{title}: {len(distances)} episodes over DDS, final distance {distances.mean():.3f} m "
                f"(95% CI {low:.3f} .. {high:.3f}), success {self.result.success_rate:.2f} "
                f"(95% Wilson CI {self.result.success_ci[0]:.2f} .. {self.result.success_ci[1]:.2f}), "
                f"{sum(map(bool, self.faults))} with a safety fault")
        s = self.server
        return line + (f"\n  policy_server: compute (state callback -> command) p50 {_ms(s, 'compute_p50_ms')}, "
                       f"p99 {_ms(s, 'compute_p99_ms')}; missed periods {s.get('missed_periods')} of "
                       f"{s.get('periods')}; safety: clipped {s.get('clipped')}, rate-limited {s.get('rate_limited')}, "
                       f"fault {s.get('fault')}")

    def summary(self) -> dict:
        """JSON-friendly summary."""
        distances = (-np.asarray(self.result.returns)).tolist()
        return {"episodes": len(distances), "final_distances": distances, "success_rate": self.result.success_rate,
                "success_ci": self.result.success_ci, "faults": self.faults, "server": self.server}


def _ms(values: dict[str, str], key: str) -> str:
    return f"{float(values[key]):.3f} ms" if key in values else "n/a"


class _Probe:
    """The evaluator's rclpy node: joint states, episode events, server diagnostics and service clients."""

    def __init__(self, joints: list[str], robot: str):
        self.node = rclpy.create_node("sim2real_eval")
        self.joints = joints
        self.robot = robot
        self.states: list[tuple[float, JointState]] = []  # parsed only when judged (1 kHz from franka_proxy)
        self.starts: dict[int, float] = {}
        self.server: dict[str, str] = {}
        self.robot_mode = ""
        n = self.node
        n.create_subscription(JointState, contract.JOINT_STATES, self._on_state, contract.STATE_STREAM_QOS)
        n.create_subscription(String, contract.EPISODES, self._on_event, contract.EVENT_QOS)
        n.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)
        self.reset_world = n.create_client(Trigger, f"/{robot}/reset_world")
        self.reset_fault = n.create_client(Trigger, "/policy_server/reset_fault")
        self.set_server = n.create_client(SetParameters, "/policy_server/set_parameters")
        self.recover = n.create_client(Trigger, "/franka_proxy/error_recovery") if robot == FRANKA else None
        self.reset_supervisor = n.create_client(Trigger, "/command_supervisor/reset") if robot == FRANKA else None

    def _on_state(self, msg: JointState) -> None:
        self.states.append((stamp_to_seconds(msg.header.stamp), msg))

    def joints_of(self, msg: JointState) -> np.ndarray:
        return joint_state_arrays(msg, self.joints)[0]

    def _on_event(self, msg: String) -> None:
        event = episode_event(msg)
        if event.get("event") == "start" and event.get("source") == self.robot:
            self.starts[int(event["episode"])] = float(event["stamp"])

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("policy_server"):
                self.server = diagnostic_values(status)
            elif status.name.startswith(FRANKA):
                self.robot_mode = diagnostic_values(status).get("robot_mode", "")

    def spin_until(self, condition, what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"over-ROS evaluation: timed out waiting for {what}")
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def call(self, client, request, what: str):
        """The answer to `request` (every request of the evaluation may be served twice)."""
        self.spin_until(lambda: client.service_is_ready(), f"service {client.srv_name}")
        return answered(lambda: client.call_async(request), lambda: rclpy.spin_once(self.node, timeout_sec=0.01),
                        TIMEOUT, f"over-ROS evaluation: {what}")


def evaluate_over_ros(policy_path: str, target: str, episodes: int, seed: int = 0,
                      reality: str = DEFAULT_REALITY, workdir: Path | None = None) -> RosEvalResult:
    """Run `episodes` reach episodes of a policy file through policy_server and sim_bridge processes.

    Args:
        policy_path: policy folder or sidecar (its training.task must be reach).
        target: ``sim`` (bridge profile sim, nominal parameters), ``reality`` (the 100 Hz reality proxy) or
            ``franka`` (the reality proxy behind the franka emulation at 1 kHz, with the command supervisor).
        episodes: number of episodes; each lasts the task file's episode_steps control periods.
        seed: seed of the targets and of the bridge.
        reality: reality profile for target ``reality``.
        workdir: where node parameter files and logs go (default: a temporary folder).
    """
    joints, period = robot_joints_and_period()
    policy = load_servable_policy(policy_path, joints)
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if policy.spec.training.get("task") != "reach":
        raise ValueError(f"{policy.source}: over-ROS evaluation judges reach policies only "
                         f"(training.task is {policy.spec.training.get('task')!r})")
    judge = ReachJudge()
    rng = np.random.default_rng(seed)
    targets = [judge.target(rng) for _ in range(episodes)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if target == "franka":
            robot = NodeSpec(name=FRANKA, package="sim2real_ros", executable="franka_proxy",
                             parameters={"reality": reality, "task": "reach", "seed": seed})
            supervisor = [NodeSpec(name="command_supervisor", package="sim2real_ros", executable="command_supervisor")]
            remap = {contract.EFFORT_COMMANDS: contract.SUPERVISED_COMMANDS}
        else:
            robot = NodeSpec(name=contract.SIM_BRIDGE_NAME, package="sim2real_ros", executable="sim_bridge",
                             parameters={"profile": target, "task": "reach", "clocking": "realtime", "seed": seed,
                                         "reality": reality})
            supervisor, remap = [], {}
        server = NodeSpec(name="policy_server", package="sim2real_ros", executable="policy_server",
                          parameters={"policy_path": str(policy.source), "extra_inputs": targets[0].tolist(),
                                      "diagnostics_period": 0.5}, remappings=remap)
        processes = {spec.name: spawn_node(spec, folder) for spec in (robot, server, *supervisor)}
        probe = None
        try:
            rclpy.init()
            probe = _Probe(joints, robot.name)
            # Episodes start once the server serves: a reader that DDS matches late would miss the first one.
            probe.spin_until(lambda: probe.server.get("serving") == "True", "policy_server serving")
            distances, successes, faults = [], [], []
            for target_position in targets:
                distance, fault = _episode(probe, judge, target_position, processes, folder, period)
                distances.append(distance)
                successes.append(judge.success(distance))
                faults.append(fault)
            probe.server = {}
            probe.spin_until(lambda: bool(probe.server), "policy_server diagnostics")
        finally:  # whatever failed, this process leaves no node running and rclpy shut down for its next run
            if probe is not None:
                probe.node.destroy_node()
            rclpy.try_shutdown()
            stop_nodes(processes)
    return RosEvalResult(summarise([-d for d in distances], successes, seed), faults, probe.server)


def _episode(probe: _Probe, judge: ReachJudge, target: np.ndarray, processes: dict, folder: Path,
             period: float) -> tuple[float, str]:
    """One episode: (final end-effector distance, the safety fault latched during it, 'reflex', or '')."""
    check_running(processes, folder)
    param = ParameterMsg(name="extra_inputs", value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY,
                                                                  double_array_value=target.tolist()))
    result = probe.call(probe.set_server, SetParameters.Request(parameters=[param]), "policy_server extra_inputs")
    if not result.results[0].successful:
        raise RuntimeError(f"policy_server refused the target: {result.results[0].reason}")
    before = max(probe.starts, default=-1)
    if probe.recover is not None:  # franka: recover from a reflex of the previous episode, release the latch
        probe.call(probe.recover, Trigger.Request(), "franka_proxy error_recovery")
        probe.call(probe.reset_supervisor, Trigger.Request(), "command_supervisor reset")
        probe.robot_mode = ""
    probe.call(probe.reset_world, Trigger.Request(), f"{probe.robot} reset_world")
    probe.call(probe.reset_fault, Trigger.Request(), "policy_server reset_fault")
    probe.spin_until(lambda: max(probe.starts, default=-1) > before, "the robot side's episode start event")
    episode = max(probe.starts)
    start = probe.starts[episode]
    end = start + judge.config.episode_steps * period - 1e-6
    probe.states = [s for s in probe.states if s[0] > start]
    probe.spin_until(lambda: (probe.states and probe.states[-1][0] >= end) or probe.robot_mode == "reflex",
                     f"the joint states of episode {episode}", timeout=TIMEOUT + judge.config.episode_steps * 0.05)
    final = next((msg for stamp, msg in probe.states if stamp >= end), probe.states[-1][1] if probe.states else None)
    reflex = probe.robot_mode == "reflex"
    probe.states = []
    cleared = probe.call(probe.reset_fault, Trigger.Request(), "policy_server reset_fault").message
    fault = cleared.removeprefix("cleared fault ") if cleared.startswith("cleared fault") else ""
    if final is None:
        raise RuntimeError(f"over-ROS evaluation: no joint state in episode {episode}")
    return judge.distance(probe.joints_of(final), target), "reflex" if reflex else fault
