"""Message <-> numpy translation, in one place for every node."""
from __future__ import annotations

import json
from typing import Mapping, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.duration import Duration
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, String

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR,
          "stale": DiagnosticStatus.STALE}


class MessageError(ValueError):
    """A message does not have the shape the contract requires."""


def stamp_to_seconds(stamp: Time) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Seconds -> builtin_interfaces/Time (rounded to the nanosecond)."""
    total = int(round(seconds * 1e9))
    return Time(sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)


def nanoseconds_to_stamp(nanoseconds: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time (exact)."""
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def joint_state_msg(names: Sequence[str], stamp: Time, position: np.ndarray, velocity: np.ndarray,
                    effort: np.ndarray) -> JointState:
    """Arrays in joint order -> sensor_msgs/JointState."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = np.asarray(position, dtype=float).tolist()
    msg.velocity = np.asarray(velocity, dtype=float).tolist()
    msg.effort = np.asarray(effort, dtype=float).tolist()
    return msg


def joint_state_arrays(msg: JointState, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sensor_msgs/JointState -> (position, velocity, effort) reordered to `names`.

    Raises MessageError when a joint is missing or a field has the wrong length. Extra joints (e.g. the
    gripper fingers in a merged /joint_states) are ignored.
    """
    index = {name: i for i, name in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise MessageError(f"JointState lacks joints {missing} (has {list(msg.name)})")
    order = [index[n] for n in names]
    out = []
    for field in ("position", "velocity", "effort"):
        values = np.asarray(getattr(msg, field), dtype=float)
        if len(values) == 0:
            out.append(np.full(len(names), np.nan))
            continue
        if len(values) != len(msg.name):
            raise MessageError(f"JointState.{field} has {len(values)} values for {len(msg.name)} names")
        out.append(values[order])
    return out[0], out[1], out[2]


def command_msg(values: np.ndarray) -> Float64MultiArray:
    """A torque vector -> std_msgs/Float64MultiArray."""
    msg = Float64MultiArray()
    msg.data = np.asarray(values, dtype=float).tolist()
    return msg


def publish_zero_torque(publisher, size: int, timeout: float = 0.5) -> None:
    """Publish zero torque and wait (up to `timeout` s) until every subscriber has it: a commander's last word,
    since an effort controller holds the last command forever."""
    publisher.publish(command_msg(np.zeros(size)))
    publisher.wait_for_all_acked(Duration(seconds=timeout))


def command_array(msg: Float64MultiArray, size: int) -> np.ndarray:
    """std_msgs/Float64MultiArray -> a finite vector of `size` values, else MessageError."""
    values = np.asarray(msg.data, dtype=float)
    if values.shape != (size,):
        raise MessageError(f"command has {values.size} values, expected {size}")
    if not np.all(np.isfinite(values)):
        raise MessageError(f"command has non-finite values: {values.tolist()}")
    return values


def diagnostic_array(stamp: Time, statuses: Sequence[DiagnosticStatus]) -> DiagnosticArray:
    """Wrap statuses in a stamped diagnostic_msgs/DiagnosticArray."""
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = list(statuses)
    return msg


def diagnostic_status(name: str, hardware_id: str, level: str, message: str,
                      values: Mapping[str, object]) -> DiagnosticStatus:
    """One diagnostic_msgs/DiagnosticStatus; `level` is ok|warn|error|stale, values become strings."""
    return DiagnosticStatus(level=LEVELS[level], name=name, hardware_id=hardware_id, message=message,
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])


def diagnostic_values(status: DiagnosticStatus) -> dict[str, str]:
    """A DiagnosticStatus's key/values as a dict."""
    return {kv.key: kv.value for kv in status.values}


def matched_publishers(values: Mapping[str, str]) -> dict[str, int]:
    """A transition logger's `matched_publishers` diagnostic ("topic=count,...") as {topic: count}."""
    text = values.get("matched_publishers", "")
    return {topic: int(count) for topic, _, count in (item.rpartition("=") for item in text.split(",") if item)}


def episode_event_msg(event: Mapping[str, object]) -> String:
    """An episode boundary {"event": "start"|"end", "episode": n, ...} -> std_msgs/String JSON."""
    return String(data=json.dumps(dict(event), sort_keys=True))


def episode_event(msg: String) -> dict[str, object]:
    """std_msgs/String JSON -> an episode boundary mapping, else MessageError naming what is wrong."""
    try:
        event = json.loads(msg.data)
    except json.JSONDecodeError as exc:
        raise MessageError(f"episode event is not JSON ({exc}): {msg.data[:200]!r}") from exc
    if not isinstance(event, dict) or event.get("event") not in ("start", "end") \
            or not isinstance(event.get("episode"), int):
        raise MessageError('episode event needs {"event": "start"|"end", "episode": int, ...}, '
                           f"got {msg.data[:200]!r}")
    return event


def clock_msg(stamp: Time) -> Clock:
    """A time -> rosgraph_msgs/Clock."""
    return Clock(clock=stamp)


def pose_stamped_msg(stamp: Time, frame_id: str, position: np.ndarray, quaternion_wxyz: np.ndarray) -> PoseStamped:
    """Position (x, y, z) and MuJoCo-order quaternion (w, x, y, z) -> geometry_msgs/PoseStamped."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = w, x, y, z
    return msg


def pose_arrays(msg: PoseStamped) -> tuple[np.ndarray, np.ndarray]:
    """geometry_msgs/PoseStamped -> (position (3,), quaternion w-x-y-z (4,))."""
    p, q = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z]), np.array([q.w, q.x, q.y, q.z])


def image_msg(stamp: Time, frame_id: str, rgb: np.ndarray) -> Image:
    """A (height, width, 3) uint8 RGB image -> sensor_msgs/Image (rgb8)."""
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def camera_info_msg(stamp: Time, frame_id: str, width: int, height: int, intrinsics: np.ndarray) -> CameraInfo:
    """Pinhole intrinsics K (3 x 3) of an undistorted camera -> sensor_msgs/CameraInfo."""
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in np.ravel(intrinsics)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [float(v) for v in np.hstack([intrinsics, np.zeros((3, 1))]).ravel()]
    return msg
