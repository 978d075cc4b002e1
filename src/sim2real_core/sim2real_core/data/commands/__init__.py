"""`sim2real` subcommands for data (no ROS needed): dataset, summary, bag-recover."""
