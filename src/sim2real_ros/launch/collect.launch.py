"""Exploration dispatcher + command supervisor + transition logger (data collection on the sim).

Data collection on the target: exploration policies mixed with random actions, every message logged.
On a real arm the dispatcher waits for an operator trigger between episodes instead of resetting a sim.

Parameters: config/stacks/collect.yaml, keyed by node. `sim2real up collect` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `collect` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("collect"),
                              description="parameter file keyed by node (default config/stacks/collect.yaml)"),
        Node(package="sim2real_ros", executable="exploration_dispatcher", name="exploration_dispatcher",
             namespace=namespace, parameters=[parameters],
             remappings=[("effort_controller/commands", "sim2real/commands")], output="screen"),
        Node(package="sim2real_ros", executable="command_supervisor", name="command_supervisor", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", namespace=namespace,
             parameters=[parameters], output="screen"),
    ])
