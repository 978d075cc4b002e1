"""ros2 launch sim2real_ros collect_real.launch.py: the nodes of config/stacks/collect_real.yaml."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'collect_real' stack."""
    return stack_launch_description("collect_real")
