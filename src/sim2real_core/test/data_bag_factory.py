"""Build real rosbag2 recordings for the data tests (rosbags message objects, written with the real writers)."""
from __future__ import annotations

import json

import numpy as np

from sim2real_core.data.bagio import typestore

STORE = typestore()
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
STATES = "/franka/joint_states"
MERGED = "/joint_states"
COMMANDS = "/effort_controller/commands"
EPISODES = "/sim2real/episode"
PUCK = "/puck/pose"
CAMERA = "/camera/image_raw"
TYPES = {STATES: "sensor_msgs/msg/JointState", MERGED: "sensor_msgs/msg/JointState",
         COMMANDS: "std_msgs/msg/Float64MultiArray", EPISODES: "std_msgs/msg/String",
         "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray", PUCK: "geometry_msgs/msg/PoseStamped",
         CAMERA: "sensor_msgs/msg/Image"}
T0 = 1_700_000_000_000_000_000  # ns


def joint_state(stamp_ns: int, names, position, velocity, effort=None):
    """A sensor_msgs/JointState (rosbags object)."""
    t = STORE.types
    header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9), "")
    position = np.asarray(position, dtype=float)
    effort = np.zeros_like(position) if effort is None else np.asarray(effort, dtype=float)
    return t["sensor_msgs/msg/JointState"](header, list(names), position, np.asarray(velocity, dtype=float), effort)


def pose(stamp_ns: int, position, quaternion_wxyz, frame_id: str = "world"):
    """A geometry_msgs/PoseStamped (rosbags object)."""
    t = STORE.types
    header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9), frame_id)
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    return t["geometry_msgs/msg/PoseStamped"](header, t["geometry_msgs/msg/Pose"](
        t["geometry_msgs/msg/Point"](*(float(v) for v in position)), t["geometry_msgs/msg/Quaternion"](x, y, z, w)))


def image(stamp_ns: int, rgb: np.ndarray, encoding: str = "rgb8"):
    """A sensor_msgs/Image of a (height, width, 3) uint8 array (rosbags object)."""
    t = STORE.types
    header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9), "camera")
    height, width = rgb.shape[:2]
    return t["sensor_msgs/msg/Image"](header, height, width, encoding, 0, 3 * width,
                                      np.ascontiguousarray(rgb, dtype=np.uint8).ravel())


def command(values):
    """A std_msgs/Float64MultiArray (rosbags object)."""
    t = STORE.types
    return t["std_msgs/msg/Float64MultiArray"](t["std_msgs/msg/MultiArrayLayout"]([], 0),
                                                np.asarray(values, dtype=float))


def episode(event: str, number: int, **extra):
    """A std_msgs/String episode event."""
    return STORE.types["std_msgs/msg/String"](json.dumps({"event": event, "episode": number, **extra}))


def state_values(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Known (q, dq) of sample i in fr3_joint1..7 order."""
    q = 0.1 * np.arange(1, 8) + 1e-3 * i
    return q, -q + 0.5 * i


def control_log(n_states: int = 100, state_period_ns: int = 1_000_000, command_every: int = 10,
                recv_delay_ns: int = 200_000, command_delay_ns: int = 300_000, topic: str = STATES):
    """States at 1 kHz (stamp = sample time, received 0.2 ms later) and a command 0.3 ms after every 10th.

    Command j (issued after state 10*j) holds the value j in every joint, so transition k at a 10 ms control
    period must carry action k.
    """
    messages = []
    for i in range(n_states):
        stamp = T0 + i * state_period_ns
        q, dq = state_values(i)
        messages.append((topic, stamp + recv_delay_ns, joint_state(stamp, JOINTS, q, dq)))
        if i % command_every == 0:
            messages.append((COMMANDS, stamp + command_delay_ns, command(np.full(7, float(i // command_every)))))
    return messages
