"""ros2 launch sim2real_ros real.launch.py — starts config/stacks/real.yaml (same definition as `sim2real up real`)."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'real' stack."""
    return stack_launch_description("real")
