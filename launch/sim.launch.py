"""ros2 launch sim2real_ros sim.launch.py — starts config/stacks/sim.yaml (same definition as `sim2real up sim`)."""
from sim2real_ros.launching import stack_launch_description


def generate_launch_description():
    """Launch the 'sim' stack."""
    return stack_launch_description("sim")
