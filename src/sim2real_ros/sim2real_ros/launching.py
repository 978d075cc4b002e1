"""Turn a stack definition into a `ros2 launch` description, so launch files and `sim2real up` share one source.

Used by `launch/*.launch.py` on a ROS workstation; imports launch/launch_ros only when called.
"""
from __future__ import annotations


def stack_launch_description(stack_name: str):
    """A LaunchDescription that starts the nodes of `config/stacks/<stack_name>.yaml`.

    Launch arguments: `stack_file` (another stack YAML with the same role), `set` (space-separated
    `node.parameter:=value` overrides, the same syntax as `sim2real up --set`) and `namespace` (franka_ros2's
    launch namespace, e.g. /left).
    """
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription
    from sim2real_core.stack import apply_overrides, load_stack, parse_overrides, stack_file

    def nodes(context):
        stack = load_stack(LaunchConfiguration("stack_file").perform(context))
        stack = apply_overrides(stack, parse_overrides(LaunchConfiguration("set").perform(context).split()))
        return [
            Node(package=spec.package, executable=spec.executable, name=spec.name, output="screen",
                 namespace=LaunchConfiguration("namespace").perform(context),
                 parameters=[spec.parameters], remappings=list(spec.remappings.items()),
                 respawn=spec.respawn, respawn_delay=spec.respawn_delay)
            for spec in stack.nodes
        ]

    return LaunchDescription([
        DeclareLaunchArgument("stack_file", default_value=str(stack_file(stack_name)),
                              description=f"stack definition to start (default: the '{stack_name}' stack)"),
        DeclareLaunchArgument("set", default_value="",
                              description="space-separated node.parameter:=value overrides of the stack's parameters"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of every node, as franka_ros2's launch namespace (e.g. /left)"),
        OpaqueFunction(function=nodes),
    ])
