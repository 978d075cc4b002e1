#!/usr/bin/env bash
# Source apt ROS, the venv and the workspace, then run the command.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /opt/venv/bin/activate
source /ws/install/setup.bash
exec "$@"
