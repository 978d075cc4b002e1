"""sim2real ROS nodes."""
