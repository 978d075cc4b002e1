"""Reality proxy (sim bridge, profile reality) behind the franka_ros2 topics.

The reality proxy: the "real" FR3 for tests and demos, on exactly the topics franka_ros2 publishes.
Its true parameters and unmodelled effects come from config/reality/<reality>.yaml, which no other node
reads; it declares no physics parameters and refuses any attempt to set them.

Parameters: config/stacks/reality.yaml, keyed by node. `sim2real up reality` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `reality` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("reality"),
                              description="parameter file keyed by node (default config/stacks/reality.yaml)"),
        Node(package="sim2real_ros", executable="sim_bridge", name="sim_bridge", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
    ])
