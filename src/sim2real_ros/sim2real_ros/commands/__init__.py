"""Subcommands of `sim2real` that need the ROS package."""
