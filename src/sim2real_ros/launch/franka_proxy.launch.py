"""FR3 under franka_ros2 emulated at 1 kHz around the reality proxy (the robot side).

The robot side of a real FR3 under franka_ros2, played by the reality proxy: /franka/joint_states at 1 kHz
with the measured link torques, the effort controller's hold-forever semantics, franka_hardware's 1 ms
torque-rate limit, collision and velocity reflexes with error recovery (sim2real_core/sim/franka.py).
Run it beside `sim2real up real` or `sim2real up collect_real` instead of an arm.

Parameters: config/stacks/franka_proxy.yaml, keyed by node. `sim2real up franka_proxy` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `franka_proxy` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("franka_proxy"),
                              description="parameter file keyed by node (default config/stacks/franka_proxy.yaml)"),
        Node(package="sim2real_ros", executable="franka_proxy", name="franka_proxy", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
    ])
