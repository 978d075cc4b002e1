"""Exploration dispatcher (hardware) + command supervisor + transition logger on a real FR3.

Data collection on a real FR3 under franka_ros2 (or `sim2real up franka_proxy`): exploration episodes that
an operator starts one by one (`ros2 service call /exploration_dispatcher/start_episode std_srvs/srv/Trigger`
once the arm is at its start pose), through the command supervisor, with every message logged.
A reflex or a dead state stream ends the running episode with that fault; recover the arm (README), then
start the next one.

Parameters: config/stacks/collect_real.yaml, keyed by node. `sim2real up collect_real` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `collect_real` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("collect_real"),
                              description="parameter file keyed by node (default config/stacks/collect_real.yaml)"),
        Node(package="sim2real_ros", executable="exploration_dispatcher", name="exploration_dispatcher",
             namespace=namespace, parameters=[parameters],
             remappings=[("effort_controller/commands", "sim2real/commands")], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="command_supervisor", name="command_supervisor", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", namespace=namespace,
             parameters=[parameters], output="screen"),
    ])
