"""ros2 launch sim2real_ros reality.launch.py — starts config/stacks/reality.yaml
(same definition as `sim2real up reality`)."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'reality' stack."""
    return stack_launch_description("reality")
