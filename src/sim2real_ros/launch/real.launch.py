"""Policy server + command supervisor + transition logger against franka_ros2 on a real FR3.

Everything except the robot, against a real FR3 running franka_ros2 with the effort_controller
(config/franka/sim2real_controllers.yaml; the README gives the bring-up sequence). Same topics as the sim
stack, so the nodes do not know the difference; `sim2real up franka_proxy` plays the robot side here.
The policy server publishes to the command supervisor, the only publisher on the controller's topic: the
effort controller holds the last command forever, so the supervisor zeroes and latches it when the policy
server dies, hangs or stops (reset: `ros2 service call /command_supervisor/reset std_srvs/srv/Trigger`).

Parameters: config/stacks/real.yaml, keyed by node. `sim2real up real` starts the same nodes from this
file (it reads the Node entries below, so keep their arguments literal).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sim2real_ros.stack import parameter_file


def generate_launch_description():
    """The `real` stack's nodes."""
    namespace, parameters = LaunchConfiguration("namespace"), LaunchConfiguration("parameters")
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        DeclareLaunchArgument("parameters", default_value=parameter_file("real"),
                              description="parameter file keyed by node (default config/stacks/real.yaml)"),
        Node(package="sim2real_ros", executable="policy_server", name="policy_server", namespace=namespace,
             parameters=[parameters], remappings=[("effort_controller/commands", "sim2real/commands")],
             output="screen"),
        Node(package="sim2real_ros", executable="command_supervisor", name="command_supervisor", namespace=namespace,
             parameters=[parameters], on_exit=Shutdown(), output="screen"),
        Node(package="sim2real_ros", executable="transition_logger", name="transition_logger", namespace=namespace,
             parameters=[parameters], output="screen"),
    ])
