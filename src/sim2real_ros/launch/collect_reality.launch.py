"""Reality proxy (lockstep) + exploration dispatcher + transition logger.

Data collection on the reality proxy, as `sim2real demo` runs it: the bridge in its reality profile,
stepping in lockstep with the dispatcher's commands, and the logger recording everything.
The dispatcher is `required`: when its episodes are done it exits and the stack stops (the logger
finalizes the bag on SIGINT). No command supervisor: in lockstep the simulation waits for each command, so
nothing holds a torque in wall time, and the relay's extra hop made the recorded stream irregular enough
that the dataset conversion split it (README: why some settings are what they are).

Parameters: config/stacks/collect_reality.yaml, keyed by node. `sim2real up collect_reality` starts the same
nodes from this file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `collect_reality` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("collect_reality"),
                              description="parameter file keyed by node (default config/stacks/collect_reality.yaml)"),
        Node(package="sim2real_ros", executable="sim_bridge", name="sim_bridge", namespace=namespace,
             parameters=[parameters], output="screen"),
        Node(package="sim2real_ros", executable="exploration_dispatcher", name="exploration_dispatcher",
             namespace=namespace, parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", namespace=namespace,
             parameters=[parameters], output="screen"),
    ])
