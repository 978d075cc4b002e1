"""odr_fitter over real DDS: fits a dataset on ~/fit, writes the YAML, applies the means to a running sim bridge."""
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from conftest import answered_on, spin_until
from sim2real_core.data.dataset import TransitionDataset, save_dataset
from sim2real_core.robot import load_robot
from sim2real_core.sim.batch import BatchSimulator
from sim2real_core.sim.distributions import load_distribution
from sim2real_core.sim.parameters import load_parameter_space
from sim2real_ros.messages import LEVELS

TRUTH = {"joint1_damping": 2.0, "joint4_damping": 1.5}


@pytest.fixture
def reach_dataset(tmp_path):
    """Random-torque transitions of the FR3 with known joint damping (10 runs x 30 periods)."""
    spec, space = load_robot(), load_parameter_space("fr3_reach")
    sim = BatchSimulator("fr3", space, 10, control_period=spec.control_period, joints=spec.joint_names, seed=0)
    sim.set_parameters(space.vector(TRUTH, fill_nominal=True))
    rng = np.random.default_rng(0)
    sim.reset(keyframe="home")
    sim.set_observation_state(np.concatenate([spec.home + rng.normal(0, 0.1, (10, 7)), np.zeros((10, 7))], 1))
    obs, act, nxt = [], [], []
    state = sim.observation(noise=False)
    for _ in range(30):
        a = rng.uniform(-1, 1, (10, 7)) * spec.torque_limits * 0.1
        new = sim.step(a, noise=False)
        obs.append(state), act.append(a), nxt.append(new)
        state = new
    swap = lambda x: np.stack(x, 1).reshape(300, -1)  # noqa: E731  episode-major order
    timeouts = np.zeros((10, 30), bool)
    timeouts[:, -1] = True
    ds = TransitionDataset(swap(obs), swap(act), swap(nxt), np.zeros(300, bool), timeouts.reshape(-1),
                           metadata={"robot": "fr3", "state_layout": "joint_state_v1"})
    return save_dataset(tmp_path / "reach.npz", ds)


def _call(node, client, request, timeout):
    """A repeatable request, sent again while unanswered (a fresh client's first answer can be lost)."""
    assert client.wait_for_service(timeout_sec=20), f"{client.srv_name} not available"
    return answered_on(node, lambda: client.call_async(request), timeout, client.srv_name)


def test_fit_service_applies_means_to_bridge(launch_node, ros_node, reach_dataset, tmp_path):
    bridge = launch_node("sim_bridge", parameters={"profile": "sim", "task": "reach", "clocking": "lockstep"})
    out = tmp_path / "fit.yaml"
    fitter = launch_node("odr_fitter", parameters={
        "data_path": str(tmp_path / "missing.npz"), "output_path": str(out), "method": "sysid",
        "parameters": "joint1_damping,joint4_damping", "transitions": 60, "diagnostics_period": 0.2})
    statuses = []
    ros_node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: statuses.extend(s for s in m.status if s.name == "odr_fitter: fit"), 50)
    fit = ros_node.create_client(Trigger, "/odr_fitter/fit")

    reply = _call(ros_node, fit, Trigger.Request(), 60)
    assert not reply.success and "missing.npz" in reply.message
    assert spin_until(ros_node, lambda: any(s.level == LEVELS["error"] for s in statuses), 10)

    set_params = ros_node.create_client(SetParameters, "/odr_fitter/set_parameters")
    request = SetParameters.Request(parameters=[Parameter("data_path", value=str(reach_dataset)).to_parameter_msg()])
    assert _call(ros_node, set_params, request, 20).results[0].successful

    future = fit.call_async(Trigger.Request())  # once: this client's answers already arrive
    assert spin_until(ros_node, future.done, 240), fitter.output()
    reply = future.result()
    assert reply.success, reply.message + fitter.output()
    assert "applied to sim_bridge" in reply.message and "; 0 warnings" in reply.message  # in-family data
    dist = load_distribution(out)
    assert dist.provenance["validation"]["transitions"] == 60  # 2 of the 10 runs held out
    assert dist.method == "sysid" and dist.space.names == ("joint1_damping", "joint4_damping")
    np.testing.assert_allclose(dist.mean, [2.0, 1.5], atol=0.05)

    get = ros_node.create_client(GetParameters, "/sim_bridge/get_parameters")
    values = _call(ros_node, get, GetParameters.Request(names=["physics.joint1_damping", "physics.joint4_damping"]), 20)
    np.testing.assert_allclose([v.double_value for v in values.values], dist.mean, rtol=1e-9)
    assert spin_until(ros_node, lambda: any(s.message.startswith("sysid: wrote") for s in statuses), 10)
    assert fitter.stop() == 0 and bridge.stop() == 0
