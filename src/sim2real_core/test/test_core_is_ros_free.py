"""The core library imports without ROS: every module, checked in a fresh interpreter."""
import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import sim2real_core
for module in pkgutil.walk_packages(sim2real_core.__path__, 'sim2real_core.'):
    importlib.import_module(module.name)
ros = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_parser', 'std_msgs', 'sensor_msgs',
                                                          'rosbag2_py', 'launch_ros'))
print('ROS modules:', ros)
sys.exit(1 if ros else 0)
"""


def test_every_core_module_imports_without_loading_rclpy():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
