"""rosbag2 -> transition dataset at a chosen control period.

Rules (each one counted in `metadata["counts"]` when it drops or changes data):
- States come from a sensor_msgs/JointState topic (`/franka/joint_states`, else the merged `/joint_states`),
  reordered to the robot's joint names by name; extra joints (gripper fingers) are ignored. A message that
  lacks a joint, repeats a name, has fields of the wrong length or no velocities is an error naming the bag,
  topic and message index. A state with a non-finite position or velocity is dropped
  (`dropped_nonfinite_states`).
- Episodes: `/sim2real/episode` events {"event": "start"|"end", "episode": n, "terminal": bool?, "source": node}
  split the recording by log (receive) time. With several sources one is used (`episode_source`; events of
  others are counted in `episode_events_ignored`), unpaired events in `unmatched_episode_events`. States
  outside an episode are dropped (`states_outside_episodes`). Without events the whole bag is one episode.
  Within an episode header stamps set the time base. States whose stamps break the order (out-of-order or
  repeated stamps, as a publisher's history may arrive when a reader connects) are dropped
  (`dropped_unordered_states`): the longest run of strictly increasing stamps in receive order is kept, so
  one wrong stamp costs one state, whether it is early or late. A gap longer than `max_gap` between states
  splits the episode into segments (`gap_splits`).
- Each segment is resampled on a grid t_k = t_0 + k * control_period by linear interpolation of (q, dq) between
  the neighbouring states (`interpolated_states` counts grid points that fall between samples).
- Actions: std_msgs/Float64MultiArray commands are held zero-order between messages. The action of transition
  k (t_k -> t_k+1) is the command in force when the state at t_k+1 was published: the command a controller
  computed from s_k and that acted until s_k+1. Times are the publishers' send times (MCAP publish_time, as
  rosbag2 and transition_logger record them; causal across processes), else receive (log) times (sqlite3);
  `metadata["time_base"]` says which. The header-stamp grid is mapped to that clock through the states' own
  stamp -> send-time pairs. Transitions before the first command are dropped (`dropped_no_command`),
  as are transitions whose command is non-finite (`dropped_nonfinite_actions`).
- The last transition of a segment gets `terminals` when its episode ended with "terminal": true, else
  `timeouts` (the trajectory was cut, not terminated).
- Puck (push task): when the bag has geometry_msgs/PoseStamped poses on `/puck/pose` (or a named puck topic),
  states are joint_state_puck_v1 (sim2real_core.data.layouts). Puck poses are assigned to episodes by log time
  like the joint states, poses that break the stamp order are dropped the same way
  (`dropped_unordered_puck_poses`), and a pose with a non-finite
  value or a zero quaternion is dropped (`dropped_nonfinite_puck_poses`). The quaternion is normalised and its
  sign kept continuous. Velocities are finite differences of consecutive poses, second order at interior
  poses (numpy.gradient's formula for uneven spacing: the two neighbouring difference quotients weighted by
  the opposite spacing), one-sided at the ends of a run; the angular velocity is the rotation vector of
  q_i^-1 q_i+1 over the time step (body frame, as MuJoCo's free-joint qvel). Runs break at gaps longer than
  `max_gap` (default 3 x the median pose interval). The puck state at a grid time (the joint state's header
  time) is the pose there (within 1 us), else interpolated between the poses either side in the same run
  (linear; quaternion normalised-linear); a transition whose s or s' has no puck state is dropped
  (`dropped_no_puck_state`).
"""
from __future__ import annotations

import bisect
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from sim2real_core.data.bagio import BagError, BagReader
from sim2real_core.data.dataset import TransitionDataset
from sim2real_core.data.layouts import JOINT_STATE as STATE_LAYOUT
from sim2real_core.data.layouts import JOINT_STATE_PUCK, observation_names
from sim2real_core.robot import DEFAULT_ROBOT, load_robot

JOINT_STATES_TOPICS = ("/franka/joint_states", "/joint_states")  # franka_ros2: 1 kHz arm state, merged 30 Hz
COMMANDS_TOPIC = "/effort_controller/commands"
EPISODES_TOPIC = "/sim2real/episode"
PUCK_TOPIC = "/puck/pose"  # the sim bridge's puck pose (push task); a motion-capture pose on a real setup
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
COMMAND_TYPE = "std_msgs/msg/Float64MultiArray"
EPISODE_TYPE = "std_msgs/msg/String"
POSE_TYPE = "geometry_msgs/msg/PoseStamped"
IMAGE_TYPE = "sensor_msgs/msg/Image"
ROBOT_SIDE_SOURCES = ("sim_bridge", "franka_proxy")  # their reset events yield to a data collector's boundaries
EXACT_NS = 1000  # a grid point within 1 us of a state sample takes that sample as is


@dataclass
class _States:
    stamps: np.ndarray  # int64 ns, header stamps
    log: np.ndarray  # int64 ns, receive times
    q: np.ndarray
    dq: np.ndarray
    sent: np.ndarray | None = None  # int64 ns on the clock shared with the commands (publish or log time)


@dataclass
class _Poses:
    stamps: np.ndarray  # int64 ns, header stamps
    log: np.ndarray  # int64 ns, receive times
    position: np.ndarray  # (n, 3)
    quaternion: np.ndarray  # (n, 4) w, x, y, z


def _usable(times: np.ndarray | None, n: int) -> bool:
    return times is not None and len(times) == n and bool(np.all(times > 0))


def bag_to_dataset(bag: str | os.PathLike, control_period: float | None = None, *, robot: str = DEFAULT_ROBOT,
                   joint_names: Sequence[str] | None = None, joint_states_topic: str | None = None,
                   commands_topic: str = COMMANDS_TOPIC, episodes_topic: str = EPISODES_TOPIC,
                   episode_source: str | None = None, max_gap: float | None = None,
                   puck_topic: str | None = None, image_topic: str | None = None,
                   max_image_age: float = 0.5) -> TransitionDataset:
    """Convert a rosbag2 recording (MCAP or sqlite3) into transitions (s, a, s') at `control_period`.

    Args:
        bag: rosbag2 directory.
        control_period: seconds between s and s' (default: config/robots/ROBOT.yaml `control_period`).
        robot: robot name for defaults and metadata.
        joint_names: state joint order (default: the robot's `joint_names`).
        joint_states_topic: sensor_msgs/JointState topic (default: /franka/joint_states, else /joint_states).
        commands_topic: std_msgs/Float64MultiArray effort commands, one value per joint.
        episodes_topic: std_msgs/String JSON episode events; optional in the bag.
        episode_source: use only events whose "source" is this node (default: the one data collector, e.g.
            exploration_dispatcher, over the robot side's reset events; an error if several collectors).
        max_gap: longest state gap [s] bridged by interpolation (default: 3 x the episode's median state
            interval, i.e. two samples in a row may be missing); also the longest puck pose gap.
        puck_topic: geometry_msgs/PoseStamped puck poses (default: /puck/pose when the bag has poses there;
            "" ignores any puck). With poses the states are joint_state_puck_v1.
        image_topic: sensor_msgs/Image rgb8 camera images (e.g. /camera/image_raw; default none). Each transition
            carries the newest image stamped at or before its state, at most `max_image_age` [s] older (extras
            `images` (N, height, width, 3) uint8 and `image_ages` [s]); transitions without one are dropped
            (`dropped_no_image`), as are images with a stamp already seen (`dropped_repeated_images`).
    Returns:
        TransitionDataset with state layout joint_state_v1 (or joint_state_puck_v1), extras `timestamps`
        (header time of s, seconds)
        and `episodes` (the recorded episode number, 0 without events), and metadata with every count of
        dropped or interpolated data.
    Raises:
        BagError naming bag, topic and message for anything that would make the dataset wrong.
    """
    spec = load_robot(robot)
    period = spec.control_period if control_period is None else float(control_period)
    if not math.isfinite(period) or period <= 0:
        raise ValueError(f"control_period must be a positive number of seconds, got {control_period}")
    names = list(joint_names) if joint_names is not None else list(spec.joint_names)
    bag = Path(bag)
    with BagReader(bag) as reader:
        topics = reader.topics
        state_topic = _pick_state_topic(bag, topics, joint_states_topic)
        _check_type(bag, topics, commands_topic, COMMAND_TYPE)
        has_episodes = episodes_topic in topics
        if has_episodes:
            _check_type(bag, topics, episodes_topic, EPISODE_TYPE)
        pose_topic = _pick_puck_topic(bag, topics, puck_topic)
        states, cmd_log, cmd_values, events, poses = _read(bag, reader, state_topic, commands_topic,
                                                           episodes_topic if has_episodes else None, names,
                                                           pose_topic)
        sent = reader.publish_times([state_topic, commands_topic]) or {}
    if poses is not None and len(poses.stamps) == 0:
        if puck_topic:
            raise BagError(f"bag {bag}: topic {pose_topic} has no messages")
        poses = None  # a logger subscribed to /puck/pose but nothing published there (e.g. task reach)
    sent_states, sent_commands = sent.get(state_topic), sent.get(commands_topic)
    # Which command was in force when a state was taken is decided on one clock: the publishers' send times
    # where the bag has them (MCAP publish_time: causal across processes), else the receive (log) times.
    time_base = "publish" if _usable(sent_states, len(states.log)) and _usable(sent_commands, len(cmd_log)) \
        else "receive"
    if time_base == "publish":
        states.sent, cmd_time = sent_states, sent_commands
    else:
        states.sent, cmd_time = states.log, cmd_log
    order = np.argsort(cmd_time, kind="stable")
    cmd_time, cmd_values = cmd_time[order], cmd_values[order]
    counts = {"state_messages": int(len(states.stamps)), "command_messages": int(len(cmd_log)),
              "episode_events": len(events), "dropped_nonfinite_states": 0, "states_outside_episodes": 0,
              "dropped_unordered_states": 0, "gap_splits": 0, "interpolated_states": 0, "dropped_no_command": 0,
              "dropped_nonfinite_actions": 0,
              "dropped_short_segments": 0, "episode_events_ignored": 0, "unmatched_episode_events": 0}
    if poses is not None:
        counts.update({"puck_messages": int(len(poses.stamps)), "dropped_nonfinite_puck_poses": 0,
                       "dropped_unordered_puck_poses": 0,
                       "dropped_no_puck_state": 0})
    if len(states.stamps) == 0:
        raise BagError(f"bag {bag}: topic {state_topic} has no messages")
    if len(cmd_log) == 0:
        raise BagError(f"bag {bag}: topic {commands_topic} has no messages")

    finite = np.isfinite(states.q).all(axis=1) & np.isfinite(states.dq).all(axis=1)
    counts["dropped_nonfinite_states"] = int((~finite).sum())
    episodes, source = _episode_intervals(bag, episodes_topic, events, episode_source, counts)
    period_ns = int(round(period * 1e9))
    gap_ns = None if max_gap is None else int(round(max_gap * 1e9))
    out: dict[str, list] = {k: [] for k in ("obs", "next", "act", "term", "tout", "time", "time_ns", "episode")}
    in_any = np.zeros(len(states.stamps), dtype=bool)
    used = 0  # episodes that gave transitions
    for number, start, end, terminal in episodes:
        before = len(out["obs"])
        member = (states.log >= start) & (states.log <= end)
        in_any |= member
        sel = np.flatnonzero(member)
        ordered = increasing_run(states.stamps[sel])
        counts["dropped_unordered_states"] += int((~ordered).sum())
        sel = sel[ordered & finite[sel]]
        if len(sel) < 2:
            counts["dropped_short_segments"] += int(len(sel) > 0)
            continue
        stamps = states.stamps[sel]
        limit = gap_ns if gap_ns is not None else 3 * int(np.median(np.diff(stamps)))
        cuts = np.flatnonzero(np.diff(stamps) > limit) + 1
        counts["gap_splits"] += len(cuts)
        segments = np.split(sel, cuts)
        track = None if poses is None else _PuckTrack(poses, start, end, gap_ns, counts)
        for s_index, seg in enumerate(segments):
            last = s_index == len(segments) - 1
            _segment(states, seg, period_ns, cmd_time, cmd_values, terminal and last, number, counts, out, track)
        used += len(out["obs"]) > before
    counts["states_outside_episodes"] = int((~in_any).sum())
    if not out["obs"]:
        raise BagError(f"bag {bag}: no transitions at control period {period} s "
                       f"(counts: {json.dumps(counts)})")
    obs = np.concatenate(out["obs"])
    counts["transitions"] = int(len(obs))
    counts["episodes"] = used
    layout = STATE_LAYOUT if poses is None else JOINT_STATE_PUCK
    metadata = {
        "robot": robot, "joint_names": names, "state_layout": layout,
        "observation_names": observation_names(layout, names),
        "action_names": [f"tau_{n}" for n in names], "action_units": "N*m (torque without gravity)",
        "control_period": period, "max_gap": None if gap_ns is None else gap_ns / 1e9, "time_base": time_base,
        "source": {"bag": str(bag.resolve()), "joint_states_topic": state_topic, "commands_topic": commands_topic,
                   "episodes_topic": episodes_topic if has_episodes else None, "episode_source": source,
                   "puck_topic": None if poses is None else pose_topic},
        "counts": counts,
    }
    arrays = {"observations": obs, "actions": np.concatenate(out["act"]),
              "next_observations": np.concatenate(out["next"]), "terminals": np.concatenate(out["term"]),
              "timeouts": np.concatenate(out["tout"]),
              "timestamps": np.concatenate(out["time"]), "episodes": np.concatenate(out["episode"])}
    if image_topic:
        arrays = _with_images(bag, image_topic, max_image_age, arrays, np.concatenate(out["time_ns"]), counts)
        metadata["source"]["image_topic"] = image_topic
    return TransitionDataset(
        observations=arrays.pop("observations"), actions=arrays.pop("actions"),
        next_observations=arrays.pop("next_observations"), terminals=arrays.pop("terminals"),
        timeouts=arrays.pop("timeouts"), metadata=metadata, extras=arrays)


def _with_images(bag: Path, topic: str, max_age: float, arrays: dict, times: np.ndarray, counts: dict) -> dict:
    """The transitions (their states' header times `times` [ns]) that have an image at most `max_age` s older than
    their state, with it (see bag_to_dataset)."""
    stamps, images = [], []
    with BagReader(bag) as reader:
        _check_type(bag, reader.topics, topic, IMAGE_TYPE)
        for _, log_time, i, msg in reader.messages([topic]):
            where = f"bag {bag}: topic {topic} message #{i} (log time {log_time} ns)"
            if msg.encoding != "rgb8" or msg.step != 3 * msg.width or len(msg.data) != msg.step * msg.height:
                raise BagError(f"{where}: needs an rgb8 image of step 3 x width and step x height bytes, got "
                               f"{msg.encoding} {msg.width} x {msg.height}, step {msg.step}, {len(msg.data)} bytes")
            if images and images[0].shape != (msg.height, msg.width, 3):
                raise BagError(f"{where}: {msg.width} x {msg.height} pixels, the topic's first image "
                               f"{images[0].shape[1]} x {images[0].shape[0]}")
            stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
            images.append(np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3))
    if not images:
        raise BagError(f"bag {bag}: topic {topic} has no messages")
    stamps = np.array(stamps, dtype=np.int64)
    order = np.argsort(stamps, kind="stable")
    first = np.concatenate([[True], np.diff(stamps[order]) > 0])
    counts["image_messages"] = len(images)
    counts["dropped_repeated_images"] = int((~first).sum())
    order = order[first]
    stamps = stamps[order]
    newest = np.searchsorted(stamps, times, side="right") - 1
    ages = (times - stamps[np.maximum(newest, 0)]) * 1e-9
    keep = (newest >= 0) & (ages <= max_age)
    counts["dropped_no_image"] = int((~keep).sum())
    if not keep.any():
        raise BagError(f"bag {bag}: no transition has an image on {topic} at most {max_age} s older than its state")
    counts["transitions"] = int(keep.sum())
    arrays["timeouts"] = arrays["timeouts"] | np.append(~keep[1:], False)  # the trajectory breaks where one drops
    out = {name: values[keep] for name, values in arrays.items()}
    out["images"] = np.stack(images)[order[newest[keep]]]
    out["image_ages"] = ages[keep]
    return out


def _pick_state_topic(bag: Path, topics: dict[str, str], requested: str | None) -> str:
    if requested is not None:
        _check_type(bag, topics, requested, JOINT_STATE_TYPE)
        return requested
    for topic in JOINT_STATES_TOPICS:
        if topic in topics:
            _check_type(bag, topics, topic, JOINT_STATE_TYPE)
            return topic
    raise BagError(f"bag {bag}: no joint state topic {' or '.join(JOINT_STATES_TOPICS)} "
                   f"(topics: {sorted(topics)}); name one with joint_states_topic")


def _pick_puck_topic(bag: Path, topics: dict[str, str], requested: str | None) -> str | None:
    if requested:
        _check_type(bag, topics, requested, POSE_TYPE)
        return requested
    if requested is None and PUCK_TOPIC in topics:
        _check_type(bag, topics, PUCK_TOPIC, POSE_TYPE)
        return PUCK_TOPIC
    return None


def _check_type(bag: Path, topics: dict[str, str], topic: str, expected: str) -> None:
    if topic not in topics:
        raise BagError(f"bag {bag}: topic {topic} is missing (topics: {sorted(topics)})")
    if topics[topic] != expected:
        raise BagError(f"bag {bag}: topic {topic} has message type {topics[topic]}, expected {expected}")


def _read(bag: Path, reader: BagReader, state_topic: str, commands_topic: str, episodes_topic: str | None,
          names: list[str], pose_topic: str | None = None):
    n = len(names)
    stamps, logs, qs, dqs = [], [], [], []
    cmd_log, cmd_values, events = [], [], []
    pose_rows: list[tuple] = []  # (stamp, log, x, y, z, qw, qx, qy, qz)
    orders: dict[tuple, np.ndarray] = {}
    wanted = [state_topic, commands_topic] + ([episodes_topic] if episodes_topic else []) + \
        ([pose_topic] if pose_topic else [])
    for topic, log_time, i, msg in reader.messages(wanted):
        if topic == pose_topic:
            p, o = msg.pose.position, msg.pose.orientation
            pose_rows.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec, log_time,
                              p.x, p.y, p.z, o.w, o.x, o.y, o.z))
            continue
        where = f"bag {bag}: topic {topic} message #{i} (log time {log_time} ns)"
        if topic == state_topic:
            key = tuple(msg.name)
            order = orders.get(key)
            if order is None:
                order = orders[key] = _joint_order(where, key, names)
            if len(msg.position) != len(key) or len(msg.velocity) != len(key):
                raise BagError(f"{where}: {len(key)} joint names but {len(msg.position)} positions and "
                               f"{len(msg.velocity)} velocities (state layout {STATE_LAYOUT} needs both)")
            stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
            logs.append(log_time)
            qs.append(msg.position[order])
            dqs.append(msg.velocity[order])
        elif topic == commands_topic:
            if len(msg.data) != n:
                raise BagError(f"{where}: command has {len(msg.data)} values, expected {n} (one per joint {names})")
            cmd_log.append(log_time)
            cmd_values.append(msg.data)
        else:
            events.append((log_time, i, msg.data))
    states = _States(np.array(stamps, dtype=np.int64), np.array(logs, dtype=np.int64),
                     np.array(qs, dtype=np.float64).reshape(-1, n), np.array(dqs, dtype=np.float64).reshape(-1, n))
    poses = None
    if pose_topic:
        ints = np.array([r[:2] for r in pose_rows], dtype=np.int64).reshape(-1, 2)
        values = np.array([r[2:] for r in pose_rows], dtype=np.float64).reshape(-1, 7)
        poses = _Poses(ints[:, 0], ints[:, 1], values[:, :3], values[:, 3:])
    return (states, np.array(cmd_log, dtype=np.int64), np.array(cmd_values, dtype=np.float64).reshape(-1, n),
            events, poses)


def _joint_order(where: str, key: tuple, names: list[str]) -> np.ndarray:
    if len(set(key)) != len(key):
        raise BagError(f"{where}: joint names repeat: {list(key)}")
    index = {name: i for i, name in enumerate(key)}
    missing = [name for name in names if name not in index]
    if missing:
        raise BagError(f"{where}: joints {missing} missing (message has {list(key)})")
    return np.array([index[name] for name in names])


def _episode_intervals(bag: Path, topic: str, events: list, source: str | None,
                       counts: dict) -> tuple[list[tuple[int, int, int, bool]], str | None]:
    """(episode number, start log ns, end log ns, terminal) per episode, and the event source used.

    Without events the whole bag is one episode. Events carry an optional "source" (the publishing node);
    when several nodes publish boundaries, `source` picks one, else the data collector's (any source other
    than the robot side's, the sim bridge or franka emulation) win over the robot side's resets.
    """
    whole = [(0, -(2**63), 2**63 - 1, False)]
    parsed = []
    for log_time, i, text in events:
        where = f"bag {bag}: topic {topic} message #{i} (log time {log_time} ns)"
        try:
            event = json.loads(text)
            kind, number = event["event"], int(event["episode"])
        except (ValueError, TypeError, KeyError) as exc:
            raise BagError(f"{where}: expected JSON {{\"event\": \"start\"|\"end\", \"episode\": n}}, "
                           f"got {text!r} ({exc})") from exc
        if kind not in ("start", "end"):
            raise BagError(f"{where}: unknown episode event {kind!r}; expected 'start' or 'end'")
        parsed.append((log_time, kind, number, bool(event.get("terminal", False)), str(event.get("source", ""))))
    sources = list(dict.fromkeys(e[4] for e in parsed))
    if source is not None:
        if source not in sources:
            raise BagError(f"bag {bag}: topic {topic} has no events from source {source!r} (sources: {sources})")
        chosen = source
    else:
        collectors = [s for s in sources if s not in ROBOT_SIDE_SOURCES] or sources
        if len(collectors) > 1:
            raise BagError(f"bag {bag}: topic {topic} has episode events from several sources {collectors}; "
                           "choose one with episode_source")
        chosen = collectors[0] if collectors else None
    counts["episode_events_ignored"] = sum(e[4] != chosen for e in parsed)
    parsed = [e for e in parsed if e[4] == chosen]
    if not parsed:
        return whole, None
    intervals, open_start, open_number, unmatched = [], None, None, 0
    for log_time, kind, number, terminal, _ in parsed:
        if kind == "start":
            if open_start is not None:  # a start without an end closes the previous episode
                intervals.append((open_number, open_start, log_time - 1, False))
                unmatched += 1
            open_start, open_number = log_time, number
        elif open_start is not None and number == open_number:
            intervals.append((number, open_start, log_time, terminal))
            open_start = None
        else:
            unmatched += 1  # an end without its start
    if open_start is not None:
        intervals.append((open_number, open_start, 2**63 - 1, False))
        unmatched += 1
    counts["unmatched_episode_events"] = unmatched
    return intervals, chosen


def increasing_run(stamps: np.ndarray) -> np.ndarray:
    """Mask of the longest strictly increasing subsequence of `stamps` (earliest-received on ties)."""
    n = len(stamps)
    if n < 2 or bool(np.all(np.diff(stamps) > 0)):
        return np.ones(n, dtype=bool)
    tails: list[int] = []  # tails[k]: the smallest last stamp of an increasing run of length k + 1
    tail_index: list[int] = []
    parent = np.full(n, -1, dtype=np.int64)
    for i, stamp in enumerate(stamps.tolist()):
        k = bisect.bisect_left(tails, stamp)
        if k == len(tails):
            tails.append(stamp)
            tail_index.append(i)
        elif stamp < tails[k]:
            tails[k], tail_index[k] = stamp, i
        else:
            continue  # equal to a tail: a later copy of that stamp
        parent[i] = tail_index[k - 1] if k > 0 else -1
    keep = np.zeros(n, dtype=bool)
    i = tail_index[-1]
    while i >= 0:
        keep[i] = True
        i = parent[i]
    return keep


class _PuckTrack:
    """One episode's puck poses with finite-difference velocities; the puck state at any grid time."""

    def __init__(self, poses: _Poses, start: int, end: int, gap_ns: int | None, counts: dict):
        sel = np.flatnonzero((poses.log >= start) & (poses.log <= end))
        ordered = increasing_run(poses.stamps[sel])
        counts["dropped_unordered_puck_poses"] += int((~ordered).sum())
        sel = sel[ordered]
        quat = poses.quaternion[sel]
        norm = np.linalg.norm(quat, axis=1)
        ok = np.isfinite(poses.position[sel]).all(axis=1) & np.isfinite(quat).all(axis=1) & (norm > 1e-9)
        counts["dropped_nonfinite_puck_poses"] += int((~ok).sum())
        self.stamps = poses.stamps[sel][ok]
        position = poses.position[sel][ok]
        quat = quat[ok] / norm[ok, None]
        # q and -q are one orientation: keep the sign continuous so that interpolation and differences work
        flips = np.concatenate([[1.0], np.sign(np.einsum("ij,ij->i", quat[1:], quat[:-1]) + 1e-300)])
        quat *= np.cumprod(flips)[:, None]
        n = len(self.stamps)
        diffs = np.diff(self.stamps)
        limit = gap_ns if gap_ns is not None else (3 * int(np.median(diffs)) if n > 1 else 0)
        self.joined = diffs <= limit  # poses i and i+1 are in one run
        # difference quotients between consecutive poses: world-frame linear, body-frame angular velocity
        dt = diffs.astype(np.float64)[:, None] / 1e9
        slopes = np.empty((0, 6))
        if n > 1:
            rotations = Rotation.from_quat(quat[:, [1, 2, 3, 0]])  # scalar-last
            turns = (rotations[:-1].inv() * rotations[1:]).as_rotvec()
            slopes = np.concatenate([np.diff(position, axis=0), turns], axis=1) / dt
        velocity = np.full((n, 6), np.nan)
        left = np.concatenate([[False], self.joined])[:n]  # pose i has a neighbour before it in its run
        right = np.concatenate([self.joined, [False]])[:n]
        both = left & right
        velocity[left & ~right] = slopes[(left & ~right)[1:]]
        velocity[right & ~left] = slopes[(right & ~left)[:-1]]
        h_left, h_right = dt[both[1:]], dt[both[:-1]]
        velocity[both] = (h_left * slopes[both[:-1]] + h_right * slopes[both[1:]]) / (h_left + h_right)
        self.state = np.concatenate([position, quat, velocity], axis=1)

    def at(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(G, 13) puck states at header times `grid` (ns) and (G,) whether each exists."""
        out = np.full((len(grid), 13), np.nan)
        if len(self.stamps) == 0:
            return out, np.zeros(len(grid), dtype=bool)
        pos = np.searchsorted(self.stamps, grid)
        below, above = np.clip(pos - 1, 0, len(self.stamps) - 1), np.clip(pos, 0, len(self.stamps) - 1)
        exact_below = np.abs(self.stamps[below] - grid) <= EXACT_NS
        exact_above = np.abs(self.stamps[above] - grid) <= EXACT_NS
        exact = exact_below | exact_above
        out[exact] = self.state[np.where(exact_below, below, above)[exact]]
        inner = ~exact & (pos > 0) & (pos < len(self.stamps))
        inner[inner] &= self.joined[below[inner]]
        if inner.any():
            a, b = self.state[below[inner]], self.state[above[inner]]
            w = ((grid[inner] - self.stamps[below[inner]]) / (self.stamps[above[inner]] - self.stamps[below[inner]]))
            mixed = a + w[:, None] * (b - a)
            mixed[:, 3:7] /= np.linalg.norm(mixed[:, 3:7], axis=1, keepdims=True)
            out[inner] = mixed
        return out, np.isfinite(out).all(axis=1)


def _segment(states: _States, seg: np.ndarray, period_ns: int, cmd_time: np.ndarray, cmd_values: np.ndarray,
             terminal: bool, number: int, counts: dict, out: dict, puck: _PuckTrack | None = None) -> None:
    stamps = states.stamps[seg]
    steps = (stamps[-1] - stamps[0]) // period_ns
    if steps < 1:
        counts["dropped_short_segments"] += 1
        return
    grid = stamps[0] + period_ns * np.arange(steps + 1, dtype=np.int64)
    pos = np.searchsorted(stamps, grid)
    below, above = np.clip(pos - 1, 0, len(stamps) - 1), np.clip(pos, 0, len(stamps) - 1)
    nearest = np.where(np.abs(stamps[below] - grid) < np.abs(stamps[above] - grid), below, above)
    exact = np.abs(stamps[nearest] - grid) <= EXACT_NS
    counts["interpolated_states"] += int((~exact).sum())
    t = (grid - stamps[0]).astype(np.float64)
    rel = (stamps - stamps[0]).astype(np.float64)
    state = np.concatenate([states.q[seg], states.dq[seg]], axis=1)
    sampled = np.stack([np.interp(t, rel, state[:, j]) for j in range(state.shape[1])], axis=1)
    sampled[exact] = state[nearest[exact]]
    has_puck = np.ones(len(grid), dtype=bool)
    if puck is not None:
        puck_state, has_puck = puck.at(grid)
        sampled = np.concatenate([sampled, puck_state], axis=1)
    # When each grid state was sent (or received), through the states' stamp -> send-time relation.
    sent = np.interp(t, rel, (states.sent[seg] - stamps[0]).astype(np.float64)) + stamps[0]
    cmd = np.searchsorted(cmd_time, sent[1:], side="right") - 1
    keep = cmd >= 0
    counts["dropped_no_command"] += int((~keep).sum())
    actions = cmd_values[np.maximum(cmd, 0)]
    finite = np.isfinite(actions).all(axis=1)
    counts["dropped_nonfinite_actions"] += int((keep & ~finite).sum())
    keep &= finite
    if puck is not None:
        complete = has_puck[:-1] & has_puck[1:]
        counts["dropped_no_puck_state"] += int((keep & ~complete).sum())
        keep &= complete
    if not keep.any():
        return
    last = np.flatnonzero(keep)[-1]
    obs, nxt = sampled[:-1][keep], sampled[1:][keep]
    # A dropped transition breaks the trajectory: the kept one before it ends a piece (timeout).
    ends = np.zeros(len(keep), dtype=bool)
    ends[:-1] = keep[:-1] & ~keep[1:]
    term = np.zeros(len(keep), dtype=bool)
    tout = ends.copy()
    if terminal:
        term[last] = True
    else:
        tout[last] = True
    out["obs"].append(obs)
    out["next"].append(nxt)
    out["act"].append(actions[keep])
    out["term"].append(term[keep])
    out["tout"].append(tout[keep])
    out["time"].append(grid[:-1][keep] / 1e9)
    out["time_ns"].append(grid[:-1][keep])
    out["episode"].append(np.full(int(keep.sum()), number, dtype=np.int64))
