"""Test-session isolation: every pytest run gets its own ROS domain, limited to this host."""
import os

from sim2real_ros.domains import claim_ros_domains

# Separate concurrent test runs (ours and any other DDS user's) on one machine; set before any rclpy or node
# process starts. An explicit ROS_DOMAIN_ID wins.
os.environ.setdefault("ROS_DOMAIN_ID", str(claim_ros_domains(1)[0]))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# UDP only, no shared memory: tests kill nodes (SIGKILL, SIGSTOP), and a node killed while holding a Fast DDS
# shared-memory port's lock leaves it locked, so that later nodes of the run block on it (sim2real_ros.domains).
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
