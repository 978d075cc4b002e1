"""Every node parameter says what it means (with its unit) for `ros2 param describe`, read over DDS from the
running nodes."""
from test_franka_stack import hold_policy

from conftest import parameter_descriptions
from sim2real_core.fit.options import FitOptions


def test_every_parameter_of_every_node_is_described(up_stack, launch_node, ros_node, tmp_path):
    up_stack("franka_proxy", "--namespace", "/robot")
    up_stack("real", "--namespace", "/served", "--set", f"policy_server.policy_path:={hold_policy(tmp_path / 'p')}",
             f"transition_logger.output:={tmp_path / 'bag'}", "transition_logger.topics:=[/diagnostics]")
    launch_node("sim_bridge", parameters={"clocking": "lockstep"})
    launch_node("odr_fitter")
    launch_node("exploration_dispatcher", parameters={"target": "hardware", "random_action_prob": 1.0})
    nodes = ["/robot/franka_proxy", "/served/policy_server", "/served/command_supervisor",
             "/served/transition_logger", "/sim_bridge", "/odr_fitter", "/exploration_dispatcher"]
    found = {node: parameter_descriptions(ros_node, node) for node in nodes}
    assert all(len(described) >= 3 for described in found.values()), found
    assert "physics.joint1_damping" in found["/sim_bridge"]
    undescribed = {node: [name for name, text in described.items() if not text] for node, described in found.items()}
    assert undescribed == {node: [] for node in nodes}
    assert "[s]" in found["/odr_fitter"]["apply_timeout"] and "[Hz]" in found["/sim_bridge"]["rate"]
    assert set(FitOptions.model_fields) <= set(found["/odr_fitter"])  # every option of `sim2real fit`
