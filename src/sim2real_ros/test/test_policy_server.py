"""policy_server over real DDS: safe commands for a state stream, watchdog latch and reset, hot reload."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from conftest import answered_on, spin_until
from sim2real_core.policy.policy_file import ActionHead, PolicySpec, save_policy
from sim2real_ros import contract
from sim2real_ros.messages import diagnostic_values, joint_state_msg

JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
LIMITS = np.array([87, 87, 87, 87, 12, 12, 12], dtype=float)
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def write_policy(folder, kp: float, seed: int = 0):
    """A random joint_state_v1 policy whose PD gains are `kp` (large kp -> oversized torque)."""
    head = ActionHead(mode="joint_target_pd", scale=[0.5] * 7, center=HOME.tolist(), kp=[kp] * 7, kd=[1.0] * 7)
    spec = PolicySpec(layout="joint_state_v1", obs_size=14, obs_mean=[0.0] * 14, obs_std=[1.0] * 14, hidden=[8],
                      action=head, joint_names=JOINTS)
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(size=s) for k, s in spec.layer_shapes().items()}
    return save_policy(folder, spec, weights)


class Probe:
    """Publishes joint states, records commands and the server's diagnostics."""

    def __init__(self, node):
        self.node = node
        self.states = node.create_publisher(JointState, contract.JOINT_STATES, contract.CONTROL_QOS)
        self.commands: list[np.ndarray] = []
        self.diagnostics: list[tuple[int, str, dict]] = []
        node.create_subscription(Float64MultiArray, contract.EFFORT_COMMANDS,
                                 lambda m: self.commands.append(np.asarray(m.data)), contract.CONTROL_QOS)
        node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, self._on_diagnostics, contract.EVENT_QOS)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith("policy_server"):
                self.diagnostics.append((status.level[0] if isinstance(status.level, bytes) else status.level,
                                         status.message, diagnostic_values(status)))

    def stream(self, seconds: float, q=HOME, every: float = 0.004, until=None) -> None:
        """Publish states every `every` s for `seconds` (or until `until()`), spinning in between."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until and until()):
            stamp = self.node.get_clock().now().to_msg()
            self.states.publish(joint_state_msg(JOINTS, stamp, q, np.zeros(7), np.zeros(7)))
            spin_until(self.node, lambda: False, every)

    def latest(self) -> dict:
        return self.diagnostics[-1][2] if self.diagnostics else {}


def start_server(launch_node, policy, **parameters):
    params = {"policy_path": str(policy), "rate_hz": 50.0, "watchdog_periods": 3, "diagnostics_period": 0.2}
    return launch_node("policy_server", parameters={**params, **parameters})


@pytest.mark.parametrize("publish_on_state", [True, False])
def test_commands_are_clipped_finite_and_latency_is_reported(launch_node, ros_node, tmp_path, publish_on_state):
    # A generous watchdog (0.5 s): this test is about clipping, not about stalls of a loaded test machine.
    server = start_server(launch_node, write_policy(tmp_path / "big", kp=1e4), publish_on_state=publish_on_state,
                          watchdog_periods=25)
    probe = Probe(ros_node)
    q = HOME + 0.3  # far from the PD target: the raw torque is thousands of Nm
    probe.stream(20.0, q=q, until=lambda: len(probe.commands) > 60 and probe.latest().get("latency_count", "0") != "0")
    assert len(probe.commands) > 60, server.output()
    commands = np.stack(probe.commands[-40:])
    assert np.all(np.isfinite(commands)) and np.all(np.abs(commands) <= LIMITS + 1e-9)
    assert np.any(np.isclose(np.abs(commands), LIMITS)), "oversized torque should saturate at the limits"
    values = probe.latest()
    assert int(values["clipped"]) > 0 and values["fault"] == "none"
    assert 0.0 <= float(values["latency_p50_ms"]) <= float(values["latency_max_ms"])
    assert int(values["periods"]) > 0 and "missed_rate" in values


def test_watchdog_zeroes_torque_latches_and_resets(launch_node, ros_node, tmp_path):
    start_server(launch_node, write_policy(tmp_path / "p", kp=50.0), watchdog_periods=5)
    probe = Probe(ros_node)
    client = ros_node.create_client(Trigger, "/policy_server/reset_fault")
    assert client.wait_for_service(timeout_sec=10.0)
    # A fresh client's first answer can be lost: its first request is one that may be sent again.
    idle = answered_on(ros_node, lambda: client.call_async(Trigger.Request()), 20.0, "reset_fault")
    assert idle.message == "no fault was latched", idle.message
    probe.stream(20.0, q=HOME + 0.2, until=lambda: len(probe.commands) > 20 and np.any(probe.commands[-1] != 0))
    assert np.any(probe.commands[-1] != 0)
    # The stream stops: zero torque and a latched watchdog fault at level ERROR.
    assert spin_until(ros_node, lambda: probe.latest().get("fault") == "watchdog", 10.0)
    level, message, _ = probe.diagnostics[-1]
    assert level == 2 and "reset_fault" in message
    probe.commands.clear()
    probe.stream(1.0, q=HOME + 0.2)  # fresh states again: still latched
    assert probe.commands and all(np.all(c == 0) for c in probe.commands)
    future = client.call_async(Trigger.Request())
    assert spin_until(ros_node, future.done, 10.0) and future.result().success
    assert "watchdog" in future.result().message
    probe.commands.clear()
    probe.stream(10.0, q=HOME + 0.2, until=lambda: len(probe.commands) > 5 and np.any(probe.commands[-1] != 0))
    assert np.any(probe.commands[-1] != 0)


def set_policy_path(node, value: str, name="policy_path"):
    client = node.create_client(SetParameters, "/policy_server/set_parameters")
    assert client.wait_for_service(timeout_sec=10.0)
    param = ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
                         if name == "policy_path" else
                         ParameterValue(type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=value))
    request = SetParameters.Request(parameters=[param])
    return answered_on(node, lambda: client.call_async(request), 20.0, "policy_server set_parameters").results[0]


def test_hot_reload_swaps_valid_policies_and_keeps_the_old_one_on_failure(launch_node, ros_node, tmp_path):
    first, second = write_policy(tmp_path / "a", kp=50.0, seed=1), write_policy(tmp_path / "b", kp=50.0, seed=2)
    broken = write_policy(tmp_path / "broken", kp=50.0, seed=3)
    (broken.parent / "policy.safetensors").write_bytes(b"corrupt")
    start_server(launch_node, first)
    probe = Probe(ros_node)
    probe.stream(20.0, until=lambda: bool(probe.latest()))
    sha_first = probe.latest()["sha256"]

    result = set_policy_path(ros_node, str(broken))
    assert not result.successful and "SHA-256" in result.reason
    result = set_policy_path(ros_node, [1.0, 2.0], name="extra_inputs")  # the policy has no extra inputs
    assert not result.successful and "needs 0 finite extra inputs" in result.reason
    probe.diagnostics.clear()
    probe.stream(5.0, until=lambda: bool(probe.latest()))
    assert probe.latest()["sha256"] == sha_first and probe.latest()["policy"] == str(first)

    result = set_policy_path(ros_node, str(second))
    assert result.successful, result.reason
    probe.diagnostics.clear()
    probe.stream(5.0, until=lambda: bool(probe.latest()))
    assert probe.latest()["policy"] == str(second) and probe.latest()["sha256"] != sha_first


def test_a_missing_or_broken_policy_stops_the_node_with_the_reason(launch_node, tmp_path):
    server = launch_node("policy_server", parameters={"policy_path": str(tmp_path / "none")})
    assert server.process.wait(timeout=30) == 2
    assert "cannot read policy sidecar" in server.output()
