"""ros2 launch sim2real_ros franka_proxy.launch.py: the nodes of config/stacks/franka_proxy.yaml."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'franka_proxy' stack."""
    return stack_launch_description("franka_proxy")
