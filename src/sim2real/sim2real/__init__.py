"""The sim2real application: the `sim2real` command, the demo pipeline, and the studies and reproductions built
on the core library (sim2real_core) and the ROS package (sim2real_ros)."""
