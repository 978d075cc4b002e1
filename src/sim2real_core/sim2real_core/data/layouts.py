"""State layouts of transition datasets: the one home of what each observation column means.

joint_state_v1         [q(n), dq(n)]: joint positions [rad] and velocities [rad/s] in the robot's joint order.
joint_state_puck_v1    [q(n), dq(n), p(3), quat(4), v(3), w(3)]: joint_state_v1, then the puck (push task):
                       p     position of the puck body in the world frame [m];
                       quat  orientation w, x, y, z (unit; sign kept continuous within a trajectory);
                       v     linear velocity in the world frame [m/s];
                       w     angular velocity in the puck's body frame [rad/s].
                       This is MuJoCo's free-joint qpos (p, quat) and qvel (v, w) order and convention, so a
                       simulator is reset from the state as is. In recorded data the puck state is taken at the
                       same header time as the joint state, and v, w are finite differences of the recorded
                       poses (see sim2real_core.data.convert).
"""
from __future__ import annotations

JOINT_STATE = "joint_state_v1"
JOINT_STATE_PUCK = "joint_state_puck_v1"
PUCK_STATE_NAMES = ("puck_x", "puck_y", "puck_z", "puck_qw", "puck_qx", "puck_qy", "puck_qz",
                    "puck_vx", "puck_vy", "puck_vz", "puck_wx", "puck_wy", "puck_wz")


def observation_names(layout: str, joint_names) -> list[str]:
    """Column names of a layout for these joints; ValueError naming an unknown layout."""
    names = [f"q_{n}" for n in joint_names] + [f"dq_{n}" for n in joint_names]
    if layout == JOINT_STATE:
        return names
    if layout == JOINT_STATE_PUCK:
        return names + list(PUCK_STATE_NAMES)
    raise ValueError(f"unknown state layout {layout!r}; expected {JOINT_STATE!r} or {JOINT_STATE_PUCK!r}")
