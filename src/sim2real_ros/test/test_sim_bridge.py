"""sim_bridge over real DDS: the franka_ros2 topic contract, validated parameters, safe commands, lockstep."""
import json
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, ListParameters, SetParameters
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from conftest import answered_on, spin_until
from sim2real_core.robot import load_robot
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space
from sim2real_ros import contract
from sim2real_ros.messages import command_msg, diagnostic_values, joint_state_arrays, stamp_to_seconds

ROBOT = load_robot("fr3")
NODE = "/sim_bridge"


def nanoseconds(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class Probe:
    """Records everything the bridge publishes; sends commands and calls its services."""

    def __init__(self, node):
        self.node = node
        self.states: list[tuple[float, JointState]] = []
        self.clock: list[float] = []
        self.pucks: list[PoseStamped] = []
        self.events: list[dict] = []
        self.diagnostics: list[dict] = []
        node.create_subscription(JointState, contract.JOINT_STATES,
                                 lambda m: self.states.append((time.monotonic(), m)), contract.CONTROL_QOS)
        node.create_subscription(Clock, contract.CLOCK, lambda m: self.clock.append(stamp_to_seconds(m.clock)),
                                 contract.CONTROL_QOS)
        node.create_subscription(PoseStamped, contract.PUCK_POSE, self.pucks.append, contract.CONTROL_QOS)
        node.create_subscription(String, contract.EPISODES, lambda m: self.events.append(json.loads(m.data)),
                                 contract.EVENT_QOS)
        node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)
        self.commands = node.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)

    def _on_diagnostics(self, msg):
        self.diagnostics += [diagnostic_values(s) for s in msg.status if s.name.startswith("sim_bridge")]

    def wait_for_bridge(self, bridge, lockstep=False, timeout=30.0):
        """Wait for the first joint state; lockstep publishes one only per step or reset, so reset until seen."""
        if not lockstep:
            assert spin_until(self.node, lambda: self.states, timeout), bridge.output()
            return
        deadline = time.monotonic() + timeout
        while not self.states and time.monotonic() < deadline:
            assert self.call(Trigger, f"{NODE}/reset_world", Trigger.Request(), timeout).success
            spin_until(self.node, lambda: self.states, 0.5)
        assert self.states, bridge.output()

    def call(self, srv_type, name, request, timeout=10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        return answered_on(self.node, lambda: client.call_async(request), timeout, name)

    def set_parameter(self, name, value):
        kind = {float: ParameterType.PARAMETER_DOUBLE, int: ParameterType.PARAMETER_INTEGER,
                str: ParameterType.PARAMETER_STRING}[type(value)]
        field = {float: "double_value", int: "integer_value", str: "string_value"}[type(value)]
        msg = ParameterMsg(name=name, value=ParameterValue(type=kind, **{field: value}))
        return self.call(SetParameters, f"{NODE}/set_parameters", SetParameters.Request(parameters=[msg])).results[0]

    def joint_positions(self):
        return joint_state_arrays(self.states[-1][1], ROBOT.joint_names)[0]


def test_realtime_contract_topics_rate_clock_puck_and_episodes(launch_node, ros_node):
    bridge = launch_node("sim_bridge", parameters={"task": "push", "diagnostics_period": 0.3})
    probe = Probe(ros_node)
    probe.wait_for_bridge(bridge)
    spin_until(ros_node, lambda: False, 1.5)
    topics = dict(ros_node.get_topic_names_and_types())
    assert topics["/" + contract.JOINT_STATES] == ["sensor_msgs/msg/JointState"]
    assert topics[contract.CLOCK] == ["rosgraph_msgs/msg/Clock"]
    assert topics[contract.PUCK_POSE] == ["geometry_msgs/msg/PoseStamped"]
    assert topics[contract.EPISODES] == ["std_msgs/msg/String"]
    assert "std_msgs/msg/Float64MultiArray" in topics["/" + contract.EFFORT_COMMANDS]
    msg = probe.states[-1][1]
    assert list(msg.name) == list(ROBOT.joint_names)
    assert len(msg.position) == len(msg.velocity) == len(msg.effort) == 7
    assert np.all(np.isfinite(msg.position)) and np.all(np.isfinite(msg.effort))
    # 100 Hz by the wall clock, stamps one control period apart
    window = [t for t, _ in probe.states if t > probe.states[-1][0] - 1.0]
    assert 70 <= len(window) <= 130, len(window)
    stamps = [nanoseconds(m.header.stamp) for _, m in probe.states[-50:]]
    assert set(np.diff(stamps)) == {round(ROBOT.control_period * 1e9)}
    assert len(probe.clock) > 50 and np.all(np.diff(probe.clock) > 0)
    assert probe.pucks and probe.pucks[-1].header.frame_id == "world"
    assert abs(probe.pucks[-1].pose.position.z - 0.02) < 0.005  # resting on the table
    # reset: the previous episode ends, a new one starts with its parameters (profile sim)
    result = probe.call(Trigger, f"{NODE}/reset_world", Trigger.Request())
    assert result.success, result.message
    assert spin_until(ros_node, lambda: any(e["event"] == "start" and e["episode"] == 1 for e in probe.events), 5)
    end = next(e for e in probe.events if e["event"] == "end")
    start = next(e for e in probe.events if e["event"] == "start" and e["episode"] == 1)
    assert end["episode"] == 0 and end["steps"] > 50
    assert start["parameters"]["puck_mass"] == 0.2 and start["source"] == "sim_bridge"
    assert spin_until(ros_node, lambda: probe.diagnostics, 5)
    assert probe.diagnostics[-1]["clocking"] == "realtime"


def test_parameters_are_validated_with_reasons_and_applied(launch_node, ros_node, tmp_path):
    bridge = launch_node("sim_bridge", parameters={"clocking": "lockstep", "physics.joint1_damping": 1.5})
    probe = Probe(ros_node)
    probe.wait_for_bridge(bridge, lockstep=True)
    result = probe.set_parameter("physics.link3_mass_scale", 5.0)
    assert not result.successful and "out of range" in result.reason and "link3_mass_scale" in result.reason
    result = probe.set_parameter("physics.no_such_thing", 1.0)
    assert not result.successful and "unknown parameter physics.no_such_thing" in result.reason
    result = probe.set_parameter("distribution", str(tmp_path / "missing.yaml"))
    assert not result.successful and "missing.yaml" in result.reason
    result = probe.set_parameter("profile", "reality")
    assert not result.successful and "read-only" in result.reason
    assert probe.set_parameter("physics.link3_mass_scale", 1.4).successful
    # the heavier link sags under nominal gravity compensation: the arm moves at zero torque
    before = probe.joint_positions()
    for _ in range(30):
        count = len(probe.states)
        probe.commands.publish(command_msg(np.zeros(7)))
        assert spin_until(ros_node, lambda: len(probe.states) > count, 5)
    assert np.abs(probe.joint_positions() - before).max() > 1e-3
    names = probe.call(ListParameters, f"{NODE}/list_parameters", ListParameters.Request()).result.names
    assert "physics.joint1_damping" in names and "physics.puck_mass" not in names  # task reach
    got = probe.call(GetParameters, f"{NODE}/get_parameters", GetParameters.Request(
        names=["physics.joint1_damping", "physics.link3_mass_scale"])).values
    assert [v.double_value for v in got] == [1.5, 1.4]
    # a distribution is drawn at every reset; the physics parameters then show the episode's values
    dist = Distribution.uniform(load_parameter_space("fr3_reach"))
    assert probe.set_parameter("distribution", str(dist.save(tmp_path / "uniform.yaml"))).successful
    assert probe.call(Trigger, f"{NODE}/reset_world", Trigger.Request()).success
    assert spin_until(ros_node, lambda: any("uniform.yaml" in e.get("distribution", "") for e in probe.events), 5)
    drawn = next(e for e in probe.events if "uniform.yaml" in e.get("distribution", ""))["parameters"]
    assert drawn["link3_mass_scale"] != 1.4 and 0.6 <= drawn["link3_mass_scale"] <= 1.8
    got = probe.call(GetParameters, f"{NODE}/get_parameters", GetParameters.Request(
        names=["physics.link3_mass_scale"])).values
    assert got[0].double_value == drawn["link3_mass_scale"]


def test_out_of_range_parameter_file_values_stop_the_node_with_the_reason(launch_node):
    bridge = launch_node("sim_bridge", parameters={"physics.link3_mass_scale": 9.0})
    assert bridge.process.wait(30) == 2
    assert "physics.link3_mass_scale out of range" in bridge.output()


def test_lockstep_bad_commands_never_move_the_arm_and_steps_follow_commands_and_service(launch_node, ros_node):
    bridge = launch_node("sim_bridge", parameters={"clocking": "lockstep", "diagnostics_period": 0.2})
    probe = Probe(ros_node)
    probe.wait_for_bridge(bridge, lockstep=True)
    spin_until(ros_node, lambda: False, 0.5)
    probe.states = probe.states[-1:]
    spin_until(ros_node, lambda: False, 0.5)
    assert len(probe.states) == 1  # lockstep: nothing more until a command arrives
    start = probe.joint_positions()
    for bad in ([float("nan")] * 7, [1.0] * 6, [float("inf")] + [0.0] * 6, [5.0] * 8):
        probe.commands.publish(Float64MultiArray(data=bad))
    assert spin_until(ros_node, lambda: probe.diagnostics and int(probe.diagnostics[-1]["dropped_nonfinite"]) == 2
                      and int(probe.diagnostics[-1]["dropped_wrong_length"]) == 2, 10), bridge.output()
    assert len(probe.states) == 1 and np.array_equal(probe.joint_positions(), start)
    # one valid command = one period
    push = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0])
    for k in range(5):
        probe.commands.publish(command_msg(push))
        assert spin_until(ros_node, lambda: len(probe.states) == k + 2, 5)
    assert probe.joint_positions()[6] > start[6] + 1e-4
    stamps = [nanoseconds(m.header.stamp) for _, m in probe.states]
    assert set(np.diff(stamps)) == {round(ROBOT.control_period * 1e9)}
    # the step service advances one period; paused, commands are dropped but the service still steps
    assert probe.call(Trigger, f"{NODE}/step_simulation", Trigger.Request()).success
    assert spin_until(ros_node, lambda: len(probe.states) == 7, 5)
    assert probe.call(SetBool, f"{NODE}/set_pause", SetBool.Request(data=True)).success
    probe.commands.publish(command_msg(push))
    assert spin_until(ros_node, lambda: probe.diagnostics and int(probe.diagnostics[-1]["dropped_paused"]) == 1, 5)
    assert len(probe.states) == 7
    assert probe.call(Trigger, f"{NODE}/step_simulation", Trigger.Request()).success
    assert spin_until(ros_node, lambda: len(probe.states) == 8, 5)


def test_reality_profile_hides_and_refuses_physics(launch_node, ros_node):
    bridge = launch_node("sim_bridge", parameters={"profile": "reality", "clocking": "lockstep"})
    probe = Probe(ros_node)
    probe.wait_for_bridge(bridge, lockstep=True)
    result = probe.set_parameter("physics.link3_mass_scale", 1.0)
    assert not result.successful and "reality profile has hidden physics" in result.reason
    names = probe.call(ListParameters, f"{NODE}/list_parameters", ListParameters.Request()).result.names
    assert not [n for n in names if n.startswith("physics.") or n == "distribution"]
    assert probe.call(Trigger, f"{NODE}/reset_world", Trigger.Request()).success
    assert spin_until(ros_node, lambda: any(e["event"] == "start" for e in probe.events), 5)
    start = next(e for e in probe.events if e["event"] == "start")
    assert start["profile"] == "reality" and "parameters" not in start and "distribution" not in start


def test_the_camera_publishes_images_and_intrinsics_at_its_rate_while_the_physics_keeps_its_own(launch_node,
                                                                                                ros_node):
    """Reality profile, 5 images/s at 96 x 64, each stamped like the state it shows, and 100 Hz joint states."""
    from sensor_msgs.msg import CameraInfo, Image

    bridge = launch_node("sim_bridge", parameters={"profile": "reality", "task": "push", "camera_rate": 5.0,
                                                   "camera_width": 96, "camera_height": 64,
                                                   "diagnostics_period": 0.5})
    probe = Probe(ros_node)
    images, infos = [], []
    ros_node.create_subscription(Image, contract.CAMERA_IMAGE, lambda m: images.append((time.monotonic(), m)),
                                 contract.CONTROL_QOS)
    ros_node.create_subscription(CameraInfo, contract.CAMERA_INFO, infos.append, contract.CONTROL_QOS)
    probe.wait_for_bridge(bridge)
    assert spin_until(ros_node, lambda: len(images) >= 3, 20), bridge.output()
    first = images[-1][0]
    spin_until(ros_node, lambda: images[-1][0] > first + 3.0, 10)
    window = [t for t, _ in images if t > images[-1][0] - 3.0]
    assert 12 <= len(window) <= 18, len(window)  # 5 per second
    states = [t for t, _ in probe.states if t > probe.states[-1][0] - 3.0]
    assert 250 <= len(states) <= 350, len(states)  # the physics at 100 Hz meanwhile
    msg = images[-1][1]
    assert (msg.width, msg.height, msg.encoding, msg.step) == (96, 64, "rgb8", 288) and len(msg.data) == 96 * 64 * 3
    pixels = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(64, 96, 3)
    assert pixels.std() > 5  # a scene, not a blank frame
    assert infos and infos[-1].k[0] > 0 and infos[-1].k[2] == 47.5 and infos[-1].header.frame_id == "workspace_camera"
    state_stamps = {nanoseconds(m.header.stamp) for _, m in probe.states}
    assert nanoseconds(msg.header.stamp) in state_stamps  # the image shows a published state
    assert spin_until(ros_node, lambda: probe.diagnostics and int(probe.diagnostics[-1].get("camera_images", 0)) > 0, 5)
