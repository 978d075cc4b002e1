"""sim2real ROS 2 nodes, the stack runner that starts them, and the commands that need ROS."""
