"""What a bag or a transition dataset holds: topics, types, counts, rates, duration, episodes, gaps."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sim2real_core.data.bagio import METADATA_FILE, BagReader
from sim2real_core.data.convert import EPISODES_TOPIC
from sim2real_core.data.dataset import load_dataset

GAP_FACTOR = 5.0  # an interval longer than this many median intervals counts as a gap


def summarize(path: str | os.PathLike, episodes_topic: str = EPISODES_TOPIC) -> dict:
    """Summarise a rosbag2 directory or a dataset (.npz, or a directory of .npy files) as a JSON-able dict."""
    path = Path(path)
    if path.is_dir() and ((path / METADATA_FILE).exists() or any(path.glob("*.mcap")) or any(path.glob("*.db3"))):
        return summarize_bag(path, episodes_topic)
    return summarize_dataset(path)


def summarize_bag(bag: str | os.PathLike, episodes_topic: str = EPISODES_TOPIC) -> dict:
    """Per topic: type, count, mean rate, first/last log time, largest gap and gaps > 5 median intervals."""
    bag = Path(bag)
    times: dict[str, list[int]] = {}
    events = {"start": 0, "end": 0, "other": 0}
    with BagReader(bag) as reader:
        types = reader.topics
        for topic, log_time, raw in reader.raw_messages(list(types)):
            times.setdefault(topic, []).append(log_time)
        if types.get(episodes_topic) == "std_msgs/msg/String":
            for _, _, _, msg in reader.messages([episodes_topic]):
                try:
                    kind = json.loads(msg.data).get("event")
                except (ValueError, AttributeError):
                    kind = None
                events[kind if kind in ("start", "end") else "other"] += 1
        start, end = reader.start_time, reader.end_time
    topics = []
    for topic, msgtype in sorted(types.items()):
        stamps = np.array(times.get(topic, []), dtype=np.int64)
        entry = {"topic": topic, "type": msgtype, "count": int(len(stamps))}
        if len(stamps) > 1:
            dt = np.diff(stamps) / 1e9
            span = (stamps[-1] - stamps[0]) / 1e9
            median = float(np.median(dt))
            entry.update(rate_hz=(len(stamps) - 1) / span if span > 0 else None, max_gap_s=float(dt.max()),
                         gaps=int((dt > GAP_FACTOR * median).sum()) if median > 0 else 0)
        topics.append(entry)
    has_messages = any(times.values())
    return {"kind": "bag", "path": str(bag), "duration_s": (end - start) / 1e9 if has_messages else 0.0,
            "start_ns": int(start) if has_messages else None, "message_count": sum(len(t) for t in times.values()),
            "topics": topics, "episode_events": events if types.get(episodes_topic) else None}


def summarize_dataset(path: str | os.PathLike) -> dict:
    """Size, dimensions, episode ends, value ranges and the recorded metadata of a transition dataset."""
    data = load_dataset(path)
    return {"kind": "dataset", "path": str(path), "transitions": len(data),
            "observation_dim": int(data.observations.shape[1]), "action_dim": int(data.actions.shape[1]),
            "terminals": int(data.terminals.sum()), "timeouts": int(data.timeouts.sum()),
            "trajectories": int(len(data.episode_ends)) + int(not (data.terminals[-1] or data.timeouts[-1])),
            "observation_range": [data.observations.min(axis=0).tolist(), data.observations.max(axis=0).tolist()],
            "action_range": [data.actions.min(axis=0).tolist(), data.actions.max(axis=0).tolist()],
            "extras": sorted(data.extras), "metadata": data.metadata}


def format_summary(summary: dict) -> str:
    """Human-readable text of a `summarize` result."""
    lines = [f"{summary['kind']}: {summary['path']}"]
    if summary["kind"] == "bag":
        lines.append(f"duration: {summary['duration_s']:.3f} s   messages: {summary['message_count']}")
        for t in summary["topics"]:
            rate = f"{t['rate_hz']:.1f} Hz" if t.get("rate_hz") else "-"
            gap = f"max gap {t['max_gap_s']:.4f} s, {t['gaps']} gaps" if "max_gap_s" in t else ""
            lines.append(f"  {t['topic']}  [{t['type']}]  {t['count']} msgs  {rate}  {gap}".rstrip())
        if summary["episode_events"] is not None:
            e = summary["episode_events"]
            lines.append(f"episode events: {e['start']} start, {e['end']} end, {e['other']} other")
        return "\n".join(lines)
    meta = summary["metadata"]
    lines.append(f"transitions: {summary['transitions']}   observation dim: {summary['observation_dim']}   "
                 f"action dim: {summary['action_dim']}")
    lines.append(f"trajectories: {summary['trajectories']}   terminals: {summary['terminals']}   "
                 f"timeouts: {summary['timeouts']}")
    for key in ("robot", "state_layout", "control_period"):
        if key in meta:
            lines.append(f"{key}: {meta[key]}")
    if "counts" in meta:
        lines.append("counts: " + ", ".join(f"{k}={v}" for k, v in meta["counts"].items()))
    return "\n".join(lines)
