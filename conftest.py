"""Test-session isolation: every pytest run gets its own ROS domain, limited to this host."""
import os
import random

# Separate concurrent test runs on one machine; set before any rclpy or node process starts.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
