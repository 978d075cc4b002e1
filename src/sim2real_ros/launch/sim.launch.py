"""MuJoCo FR3 sim bridge (profile sim) + policy server + command supervisor + transition logger.

The MuJoCo FR3 behind the franka_ros2 topics (/franka/joint_states, /effort_controller/commands, /clock),
a policy served to it through the safety layer and the command supervisor (the only publisher on the
controller's topic: zero torque when the policy server dies, hangs or stops), and the logger:
  sim2real up sim --set policy_server.policy_path:=out/demo/policies/edropo
Physics parameters are ROS parameters (physics.<name>, see config/parameter_spaces/fr3_<task>.yaml),
settable at run time: `ros2 param set /sim_bridge physics.link3_mass_scale 1.2`.

Parameters: config/stacks/sim.yaml, keyed by node. `sim2real up sim` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `sim` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("sim"),
                              description="parameter file keyed by node (default config/stacks/sim.yaml)"),
        Node(package="sim2real_ros", executable="sim_bridge", name="sim_bridge", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="policy_server", name="policy_server", namespace=namespace,
             parameters=[parameters], remappings=[("effort_controller/commands", "sim2real/commands")],
             output="screen"),
        Node(package="sim2real_ros", executable="command_supervisor", name="command_supervisor", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", namespace=namespace,
             parameters=[parameters], output="screen"),
    ])
