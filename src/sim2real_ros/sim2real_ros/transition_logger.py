"""transition_logger: record topics to a rosbag2 directory (MCAP, metadata v9) as raw serialized bytes.

Subscriptions are raw (`raw=True`): the CDR bytes go to a writer thread (sim2real_core.data.recorder) and
callbacks never touch the disk. The receive time stamped by the middleware is the log time; the source
timestamp is the MCAP publish time.

Parameters: PARAMETERS below (`ros2 param describe /transition_logger NAME`).
Services (std_srvs/Trigger): ~/start, ~/stop, ~/split.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from std_srvs.srv import Trigger

from sim2real_core.data.bagio import COMPRESSION, BagError
from sim2real_core.data.recorder import Recorder
from sim2real_ros import contract
from sim2real_ros.descriptors import Param, declare
from sim2real_ros.messages import diagnostic_array, diagnostic_status
from sim2real_ros.node_main import run_node

KNOWN_TYPES = {
    contract.JOINT_STATES: "sensor_msgs/msg/JointState",
    "/joint_states": "sensor_msgs/msg/JointState",
    contract.EFFORT_COMMANDS: "std_msgs/msg/Float64MultiArray",
    contract.EPISODES: "std_msgs/msg/String",
    contract.DIAGNOSTICS: "diagnostic_msgs/msg/DiagnosticArray",
    contract.CLOCK: "rosgraph_msgs/msg/Clock",
    contract.PUCK_POSE: "geometry_msgs/msg/PoseStamped",
}
# The puck pose (push task) makes datasets joint_state_puck_v1; without a publisher it stays empty and ignored.
DEFAULT_TOPICS = [contract.JOINT_STATES, contract.EFFORT_COMMANDS, contract.EPISODES, contract.DIAGNOSTICS,
                  contract.PUCK_POSE]


def message_class(msgtype: str):
    """The rclpy message class of "pkg/msg/Type"; ValueError naming the type when it cannot be imported."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise ValueError(f"message type {msgtype!r} is not importable here ({exc})") from exc


def message_definition(msgtype: str) -> str | None:
    """The .msg text of a type installed in an ament prefix (for types the rosbags store does not know)."""
    package, kind, name = msgtype.split("/")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = Path(prefix) / "share" / package / kind / f"{name}.msg"
        if prefix and path.is_file():
            return path.read_text()
    return None


def _qos_time(duration) -> QosTime:
    ns = duration.nanoseconds
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def offered_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as the rosbags Qos written to bag metadata."""
    return Qos(QosHistory(int(profile.history)), profile.depth, QosReliability(int(profile.reliability)),
               QosDurability(int(profile.durability)), _qos_time(profile.deadline), _qos_time(profile.lifespan),
               QosLiveliness(int(profile.liveliness)), _qos_time(profile.liveliness_lease_duration),
               profile.avoid_ros_namespace_conventions)

PARAMETERS = (
    Param("output", "", "bag directory ('': bags/transitions_<UTC time>); an existing path gets a _2, _3... suffix"),
    Param("topics", DEFAULT_TOPICS, "topics to record (default: joint states, effort commands, episode events, "
                                    "/diagnostics, the push task's puck pose)"),
    Param("topic_types", [""], "TOPIC=pkg/msg/Type entries for topics whose type is not discovered from the graph"),
    Param("autostart", True, "start recording at launch (else wait for ~/start)"),
    Param("max_file_size", 0, "split storage files at this size (0: never)", "bytes"),
    Param("max_file_duration", 0.0, "split storage files after this long (0: never)", "s"),
    Param("chunk_size", 1 << 20, "MCAP chunk size", "bytes"),
    Param("flush_period", 1.0, "at most this much data is lost on SIGKILL", "s"),
    Param("compression", "none", "MCAP chunk compression none | lz4 | zstd (none: a truncated last chunk is "
                                 "partly salvageable)"),
    Param("queue_depth", 10000, "subscription history depth per topic: a starved executor loses nothing until this "
                                "many messages wait (10 s of a 1 kHz topic)"),
    Param("discovery_period", 0.5, "how often the graph is checked for topics whose type is still unknown", "s"),
)


class TransitionLogger(Node):
    """Record the configured topics to MCAP bags; start/stop/split by service; finalize on shutdown."""

    def __init__(self):
        super().__init__("transition_logger")
        p = declare(self, PARAMETERS)
        for name in ("max_file_size", "max_file_duration", "flush_period"):
            if p[name] < 0:
                raise ValueError(f"parameter {name} must be >= 0, got {p[name]}")
        for name in ("chunk_size", "queue_depth", "discovery_period"):
            if p[name] <= 0:
                raise ValueError(f"parameter {name} must be > 0, got {p[name]}")
        if p["compression"] not in COMPRESSION:
            raise ValueError(f"parameter compression must be one of {sorted(COMPRESSION)}, got {p['compression']!r}")
        self._types = {self.resolve_topic_name(topic): msgtype for topic, msgtype in KNOWN_TYPES.items()}
        for entry in p["topic_types"]:
            if entry:
                topic, sep, msgtype = entry.partition("=")
                if not sep or msgtype.count("/") != 2:
                    raise ValueError(f"parameter topic_types entry {entry!r} must look like /topic=pkg/msg/Type")
                self._types[self.resolve_topic_name(topic)] = msgtype
        self._wanted = [self.resolve_topic_name(t) for t in p["topics"] if t]
        if not self._wanted:
            raise ValueError("parameter topics is empty: nothing to record")
        self._output = p["output"] or time.strftime("bags/transitions_%Y%m%d-%H%M%S", time.gmtime())
        self._depth = p["queue_depth"]
        self._recorder = Recorder(max_file_size=p["max_file_size"], max_file_duration=p["max_file_duration"],
                                  chunk_size=p["chunk_size"], flush_period=p["flush_period"],
                                  compression=p["compression"])
        self._recorded: dict[str, object] = {}
        self._skipped: set[str] = set()
        self._offered: dict[str, list[Qos]] = {}
        self._recording = False
        self._received: dict[str, int] = {}  # messages received per recorded topic
        self._closed = False
        self._discovery = self.create_timer(p["discovery_period"], self._subscribe_known)
        self._subscribe_known()
        self._diagnostics = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(Trigger, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/split", self._on_split)
        if p["autostart"]:
            self._start()

    # subscriptions ----------------------------------------------------------------------------------
    def _subscribe_known(self) -> None:
        graph = dict(self.get_topic_names_and_types())
        for topic in self._wanted:
            if topic in self._recorded or topic in self._skipped:
                continue
            msgtype = self._types.get(topic) or (graph[topic][0] if graph.get(topic) else None)
            if msgtype is None:
                continue  # not published yet; the discovery timer looks again
            try:
                self._subscribe(topic, msgtype)
            except (ValueError, BagError) as exc:
                self._skipped.add(topic)
                self.get_logger().error(f"not recording {topic}: {exc}")
        if all(t in self._recorded or t in self._skipped for t in self._wanted):
            self._discovery.cancel()

    def _subscribe(self, topic: str, msgtype: str) -> None:
        cls = message_class(msgtype)
        publishers = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
        try:
            self._recorder.add_topic(topic, msgtype, [offered_qos(q) for q in publishers])
        except BagError:
            definition = message_definition(msgtype)
            if definition is None:
                raise
            self._recorder.add_topic(topic, msgtype, [offered_qos(q) for q in publishers], msgdef=definition)
        best_effort = publishers and all(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in publishers)
        latched = publishers and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in publishers)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self._depth,
                         reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        put = self._recorder.put

        def callback(data: bytes, info) -> None:
            self._received[topic] = self._received.get(topic, 0) + 1
            if topic not in self._offered:  # first message: its publisher is known now; record its QoS
                self._refresh_qos([topic])
            if self._recording:
                put(topic, info["received_timestamp"] or time.time_ns(), data, info["source_timestamp"] or None)

        self._recorded[topic] = self.create_subscription(cls, topic, callback, qos, raw=True)
        self.get_logger().info(f"recording {topic} [{msgtype}]")

    def _refresh_qos(self, topics=None) -> None:
        """Record the publishers' offered QoS (publishers may appear after the subscription)."""
        for topic in self._recorded if topics is None else topics:
            try:
                offered = [offered_qos(info.qos_profile) for info in self.get_publishers_info_by_topic(topic)]
            except Exception:  # the context is already shut down (signal): keep what was seen last
                return
            if offered != self._offered.get(topic):
                self._offered[topic] = offered
                if offered:
                    self._recorder.set_qos(topic, offered)

    # recording control ------------------------------------------------------------------------------
    def _next_path(self) -> Path:
        base = Path(self._output)
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}_{n}")
        return path

    def _start(self) -> Path:
        path = self._recorder.open(self._next_path())
        self._recording = True
        self.get_logger().info(f"recording to {path}")
        return path

    def _stop(self) -> Path | None:
        self._recording = False
        self._refresh_qos()
        counts = self._recorder.counts()
        path = self._recorder.close()
        if path is not None:
            text = f"closed {path}: {sum(counts.values())} messages {counts}"
            if self.context.ok():
                self.get_logger().info(text)
            else:  # shutting down on a signal: /rosout is gone
                print(text, file=sys.stderr, flush=True)
        return path

    def _on_start(self, request, response):
        if self._recording:
            response.success, response.message = False, f"already recording to {self._recorder.path}"
            return response
        try:
            response.success, response.message = True, str(self._start())
        except (OSError, BagError, RuntimeError) as exc:
            response.success, response.message = False, f"cannot start: {exc}"
        return response

    def _on_stop(self, request, response):
        if not self._recording:
            response.success, response.message = False, "not recording"
            return response
        response.success, response.message = True, str(self._stop())
        return response

    def _on_split(self, request, response):
        if not self._recording:
            response.success, response.message = False, "not recording"
            return response
        self._recorder.split()
        response.success, response.message = True, f"split {self._recorder.path}"
        return response

    def _publish_diagnostics(self) -> None:
        self._refresh_qos()
        recorder = self._recorder
        level = "error" if recorder.error else ("ok" if self._recording else "warn")
        message = f"write failed: {recorder.error}" if recorder.error else (
            f"recording to {recorder.path}" if self._recording else "not recording")
        status = diagnostic_status(self.get_name(), "", level, message, {
            "received": sum(self._received.values()), "written": recorder.written, "dropped": recorder.dropped,
            "received_per_topic": ",".join(f"{topic}={n}" for topic, n in sorted(self._received.items())),
            "backlog": recorder.backlog, "topics": ",".join(sorted(self._recorded)),
            "matched_publishers": ",".join(f"{topic}={sub.get_publisher_count()}"
                                           for topic, sub in sorted(self._recorded.items())),
            "skipped_topics": ",".join(sorted(self._skipped))})
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def close(self) -> None:
        """Finish the open bag (metadata.yaml written) and stop the writer thread; called on shutdown."""
        if self._closed:
            return
        self._closed = True
        if self._recording:
            self._stop()
        self._recorder.shutdown()


def main() -> None:
    """Entry point of `ros2 run sim2real_ros transition_logger`."""
    sys.exit(run_node(TransitionLogger, events=False))  # raw subscriptions


if __name__ == "__main__":
    main()
