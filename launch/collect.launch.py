"""ros2 launch sim2real_ros collect.launch.py — starts config/stacks/collect.yaml
(same definition as `sim2real up collect`)."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'collect' stack."""
    return stack_launch_description("collect")
