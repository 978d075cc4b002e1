"""exploration_dispatcher over real DDS: episodes, boundaries, resets or operator triggers, safety, exit 0."""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from conftest import answered_on, spin_until
from sim2real_core.policy.policy_file import ActionHead, PolicySpec, save_policy
from sim2real_core.robot import load_robot
from sim2real_ros import contract
from sim2real_ros.messages import command_array, diagnostic_values, episode_event, joint_state_msg, seconds_to_stamp
from sim2real_ros.stack import load_stack

ROBOT = load_robot("fr3")
N = ROBOT.dof


def write_policies(folder, count=2, target=False):
    """`count` random exploration policies for the FR3 in folder/explore_i (with a reach-target input)."""
    extra = [{"name": "target_position", "size": 3, "default": [0.45, 0.0, 0.4]}] if target else []
    size = 2 * N + 3 * bool(target)
    for i in range(count):
        rng = np.random.default_rng(i)
        spec = PolicySpec(layout="joint_state_v1", obs_size=size, obs_mean=list(ROBOT.home) + [0.0] * (size - N),
                          obs_std=[1.0] * size, hidden=[16], extra_inputs=extra,
                          action=ActionHead(mode="torque", scale=list(ROBOT.torque_limits * 0.5)),
                          joint_names=list(ROBOT.joint_names))
        save_policy(folder / f"explore_{i}", spec, {
            "layers.0.weight": rng.normal(size=(16, size)), "layers.0.bias": rng.normal(size=16),
            "layers.1.weight": rng.normal(size=(N, 16)), "layers.1.bias": rng.normal(size=N)})
    return folder


class ArmStandIn:
    """The test process as a torque-controlled arm (a double integrator).

    lockstep: one state per command, like the sim bridge's lockstep mode; otherwise commands are held and a
    timer of the test publishes states (a realtime arm).
    """

    def __init__(self, node, period=0.01, lockstep=True):
        self.node, self.period, self.lockstep = node, period, lockstep
        self.streaming = True  # realtime mode: whether the state timer publishes
        self.state_pub = node.create_publisher(JointState, contract.JOINT_STATES, contract.CONTROL_QOS)
        self.commands: list[np.ndarray] = []
        self.events: list[dict] = []
        self.diagnostics: list = []
        self.resets = 0
        self.time = 0.0
        self.home()
        node.create_subscription(Float64MultiArray, contract.EFFORT_COMMANDS, self._on_command, contract.CONTROL_QOS)
        node.create_subscription(String, contract.EPISODES, lambda m: self.events.append(episode_event(m)),
                                 contract.EVENT_QOS)
        node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS,
                                 lambda m: self.diagnostics.extend(m.status), contract.EVENT_QOS)

    def home(self):
        self.q, self.dq = ROBOT.home.copy(), np.zeros(N)

    def publish(self):
        if not self.lockstep:
            self.step(self.commands[-1] if self.commands else np.zeros(N))
        self.state_pub.publish(joint_state_msg(ROBOT.joint_names, seconds_to_stamp(self.time), self.q, self.dq,
                                               np.zeros(N)))

    def _on_command(self, msg):
        tau = command_array(msg, N)  # raises on a non-finite or wrongly sized command
        self.commands.append(tau)
        if self.lockstep:
            self.step(tau)
            self.publish()

    def step(self, tau):
        self.dq = self.dq + self.period * tau / 5.0
        self.q = self.q + self.period * self.dq
        self.time += self.period

    def serve_reset(self, name="/sim_bridge/reset_world"):
        def reset(_request, response):
            self.resets += 1
            self.home()
            self.publish()
            response.success, response.message = True, "reset"
            return response
        self.node.create_service(Trigger, name, reset)


def episodes_of(events):
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    return starts, ends


def test_sim_target_resets_before_each_episode_and_exits_zero(launch_node, ros_node, tmp_path):
    arm = ArmStandIn(ros_node)
    arm.serve_reset()
    episodes, steps = 4, 25
    dispatcher = launch_node("exploration_dispatcher", parameters={
        "policies": [str(write_policies(tmp_path / "set", 2))], "target": "sim", "episodes": episodes,
        "episode_steps": steps, "random_action_prob": 0.3, "random_torque_fraction": 0.2, "seed": 3,
        "reset_retry_period": 0.2, "wait_for_subscribers": 1})
    assert spin_until(ros_node, lambda: dispatcher.process.poll() is not None, 60.0), dispatcher.output()
    assert dispatcher.stop() == 0, dispatcher.log_path.read_text()
    spin_until(ros_node, lambda: len(arm.events) >= 2 * episodes, 2.0)
    starts, ends = episodes_of(arm.events)
    assert [e["episode"] for e in starts] == [e["episode"] for e in ends] == list(range(episodes))
    assert [e["event"] for e in arm.events] == ["start", "end"] * episodes  # strictly alternating
    assert arm.resets == episodes
    assert all(s["policy"] == e["policy"] and s["policy"] in (0, 1) for s, e in zip(starts, ends))
    assert all(s["policy_name"] == f"explore_{s['policy']}" for s in starts)
    assert all(e["steps"] == steps and e["fault"] == "none" for e in ends)
    assert 0 < sum(e["random_steps"] for e in ends) < episodes * steps
    # One command per state: every episode's steps plus its ramp to zero, nothing else.
    assert len(arm.commands) == sum(e["steps"] + e["stop_steps"] for e in ends)
    commands = np.array(arm.commands)
    assert np.all(np.abs(commands) <= ROBOT.torque_limits)
    assert not np.any(commands[-1])  # the arm is left with zero torque
    last = [d for d in arm.diagnostics if d.name.startswith("exploration_dispatcher")][-1]
    assert last.message == f"all {episodes} episodes done"
    assert diagnostic_values(last)["episodes_done"] == str(episodes)


def test_bad_parameters_exit_with_code_2(launch_node, tmp_path):
    for name, parameters in (("target", {"target": "moon"}),
                             ("does_not_exist", {"policies": [str(tmp_path / "does_not_exist")]}),
                             ("at least one policy", {"policies": []}),
                             ("no box 'nowhere'", {"policies": [str(write_policies(tmp_path / "set", 1))],
                                                   "extra_inputs_box": "fr3_reach.nowhere"})):
        node = launch_node("exploration_dispatcher", parameters=parameters)
        assert node.process.wait(30) == 2
        assert name in node.output()


def test_hardware_target_waits_for_the_operator_and_a_dead_stream_ends_the_episode(launch_node, ros_node, tmp_path):
    arm = ArmStandIn(ros_node, lockstep=False)
    steps = 60
    dispatcher = launch_node("exploration_dispatcher", parameters={
        "policies": [str(write_policies(tmp_path / "set", 1) / "explore_0")], "target": "hardware",
        "episodes": 2, "episode_steps": steps, "random_action_prob": 0.0, "watchdog_periods": 20,
        "wait_for_subscribers": 1})
    trigger = ros_node.create_client(Trigger, "/exploration_dispatcher/start_episode")
    assert trigger.wait_for_service(timeout_sec=20.0), dispatcher.output()

    def call():
        future = trigger.call_async(Trigger.Request())
        assert spin_until(ros_node, future.done, 10.0)
        return future.result()

    # A realtime arm: states stream at 100 Hz; nobody has triggered, so no command is sent.
    ros_node.create_timer(arm.period, lambda: arm.streaming and arm.publish())
    spin_until(ros_node, lambda: False, 0.5)
    assert arm.commands == [] and arm.events == []
    # The first request is sent again while unanswered (a fresh client's first answer can be lost); a second
    # one then meets the episode the first started.
    started = answered_on(ros_node, lambda: trigger.call_async(Trigger.Request()), 20.0, "start_episode")
    assert "episode 0 started" in started.message or "while running" in started.message, started.message
    assert spin_until(ros_node, lambda: len(arm.events) >= 2, 15.0), dispatcher.output()
    assert arm.events[0]["event"] == "start" and arm.events[0]["episode"] == 0, arm.events
    assert arm.events[1]["event"] == "end" and arm.events[1]["fault"] == "none" and arm.events[1]["steps"] == steps
    # ramped down to zero between episodes: the last command precedes the end event, but on another topic, so it
    # may arrive after it
    assert spin_until(ros_node, lambda: not np.any(arm.commands[-1]), 5.0), arm.commands[-1]
    between = len(arm.commands)
    spin_until(ros_node, lambda: False, 0.3)
    assert len(arm.commands) == between  # states keep coming, but nothing is commanded until the next trigger

    assert call().success
    busy = call()
    assert not busy.success and "running" in busy.message, busy.message
    spin_until(ros_node, lambda: len(arm.commands) > between + 5, 5.0)
    arm.streaming = False  # the state stream dies mid-episode
    silent_from = len(arm.commands)
    # The watchdog trips after 20 silent periods: zero torque, and the episode ends cleanly with that fault
    # (after a reflex a real arm's states stop too; the episode must not hang waiting for its steps).
    assert spin_until(ros_node, lambda: len(arm.events) >= 4, 5.0), dispatcher.output()
    repeats = np.array(arm.commands[silent_from:])
    assert len(repeats) >= 20, len(repeats)
    assert not np.any(repeats[-1])  # the arm is left with zero torque
    end = arm.events[3]
    assert end["event"] == "end" and end["episode"] == 1 and end["fault"] == "watchdog" and end["steps"] < steps
    assert end["safety"]["watchdog"] == 1
    assert spin_until(ros_node, lambda: dispatcher.process.poll() is not None, 20.0), dispatcher.output()
    assert dispatcher.stop() == 0, dispatcher.log_path.read_text()


def test_with_the_sim_bridge_in_lockstep(launch_node, ros_node, tmp_path):
    """Dispatcher and sim_bridge processes: every episode starts from a bridge reset and steps it in lockstep."""
    events, bridge_status = [], []
    ros_node.create_subscription(String, contract.EPISODES, lambda m: events.append(episode_event(m)),
                                 contract.EVENT_QOS)
    ros_node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, lambda m: bridge_status.extend(
        diagnostic_values(d) for d in m.status if d.name.startswith("sim_bridge")), contract.EVENT_QOS)
    bridge = launch_node("sim_bridge", parameters={"profile": "sim", "task": "reach", "clocking": "lockstep",
                                                   "diagnostics_period": 0.2})
    # The whole run takes about a second: wait until the bridge's messages reach this process (its episode
    # events are not latched), so that none is published before the match.
    assert spin_until(ros_node, lambda: bridge_status and ros_node.count_publishers(contract.EPISODES) >= 1, 30.0), \
        bridge.output()
    episodes, steps = 3, 40
    dispatcher = launch_node("exploration_dispatcher", parameters={
        "policies": [str(write_policies(tmp_path / "set", 2, target=True))], "target": "sim", "episodes": episodes,
        "episode_steps": steps, "random_action_prob": 0.2, "reset_retry_period": 0.2,
        "extra_inputs_box": "fr3_reach.target", "wait_for_subscribers": 1})
    assert spin_until(ros_node, lambda: dispatcher.process.poll() is not None, 90.0), dispatcher.output()
    assert dispatcher.stop() == 0, dispatcher.log_path.read_text()
    mine = [e for e in events if e.get("source") == "exploration_dispatcher"]
    assert [(e["event"], e["episode"]) for e in mine] == [(k, n) for n in range(episodes) for k in ("start", "end")]
    ends = [e for e in mine if e["event"] == "end"]
    assert all(e["steps"] == steps and e["fault"] == "none" for e in ends), ends
    targets = np.array([e["extra_inputs"] for e in mine if e["event"] == "start"])  # one reach target per episode
    assert np.all((targets >= [0.35, -0.3, 0.25]) & (targets <= [0.6, 0.3, 0.6]))
    assert len(np.unique(targets, axis=0)) == episodes
    # Lockstep: the bridge stepped once per command, none dropped, and was reset once per episode (plus the
    # reset at its launch).
    commands = sum(e["steps"] + e["stop_steps"] for e in ends)
    assert spin_until(ros_node, lambda: bridge_status and bridge_status[-1]["commands"] == str(commands), 5.0), \
        (commands, bridge_status[-1:])
    status = bridge_status[-1]
    assert status["resets"] == str(episodes + 1) and status["steps"] == str(commands)
    assert all(status[k] == "0" for k in status if k.startswith("dropped"))
    bridge_starts = [e for e in events if e.get("source") == "sim_bridge" and e["event"] == "start"]
    assert bridge_starts[-1]["episode"] == episodes
    assert bridge.process.poll() is None, bridge.output()


def test_the_collect_stack_parameters_start_the_node(launch_node, tmp_path):
    spec = next(n for n in load_stack("collect").nodes if n.name == "exploration_dispatcher")
    parameters = {**spec.parameters, "policies": [str(write_policies(tmp_path / "set", 2, target=True))]}
    node = launch_node(spec.executable, name=spec.name, parameters=parameters)
    deadline = time.monotonic() + 30.0
    while "episodes of" not in node.output() and node.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert node.process.poll() is None, node.output()
    assert f"{parameters['episodes']} episodes of {parameters['episode_steps']} steps" in node.output()
