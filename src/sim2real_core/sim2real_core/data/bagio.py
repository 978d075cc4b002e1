"""rosbag2 directories on disk: a split-capable MCAP writer with metadata v9, and readers for MCAP and sqlite3.

Bags follow rosbag2 (what `ros2 bag record` writes and `ros2 bag info/play` reads): a directory holding
`metadata.yaml` (version 9) and storage files `<bag>_<i>.mcap`. Messages are CDR bytes; schemas are the
ros2msg definitions and RIHS01 hashes from the rosbags type store.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import yaml
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.writer import CompressionType
from mcap.writer import Writer as McapFileWriter
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.metadata import dump_qos_v9, parse_qos
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

METADATA_FILE = "metadata.yaml"
METADATA_VERSION = 9
ROS_DISTRO = os.environ.get("ROS_DISTRO", "kilted")
# MCAP chunk compression; "none" lets bag-recover salvage the complete messages of a truncated last chunk.
COMPRESSION = {"none": CompressionType.NONE, "lz4": CompressionType.LZ4, "zstd": CompressionType.ZSTD}
RECOVER_HINT = "run `sim2real bag-recover {bag}` to rebuild it from its storage files"


class BagError(ValueError):
    """A bag cannot be written or read; the message names the bag (and file, topic, position where known)."""


def typestore() -> Typestore:
    """The message type store used for writing and as the fallback for bags without embedded definitions."""
    return get_typestore(Stores.ROS2_KILTED)


def reliable_qos(depth: int = 10) -> Qos:
    """A reliable, volatile, keep-last QoS profile (the franka_ros2 default) as recorded in bag metadata."""
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, depth, QosReliability.RELIABLE, QosDurability.VOLATILE, zero, zero,
               QosLiveliness.AUTOMATIC, zero, False)


@dataclass
class _Topic:
    name: str
    msgtype: str
    msgdef: str
    rihs01: str
    qos: list[Qos]
    count: int = 0
    registered: bool = False  # has an MCAP channel: QoS fixed


@dataclass
class FileInfo:
    """One storage file of a bag: name, log-time span, message count, bytes written."""

    path: str
    start: int = 2**63 - 1
    end: int = 0
    count: int = 0
    size: int = 0
    channels: dict[str, int] = field(default_factory=dict)


class BagWriter:
    """Write a rosbag2 directory with MCAP storage, split into files by size or duration.

    Messages are serialized CDR bytes (as raw ROS subscriptions deliver them). The open file is made durable
    chunk by chunk: after `flush_period` seconds or `chunk_size` bytes the chunk is written and flushed, so a
    killed process loses at most that much (and `recover_bag` rebuilds the rest). `metadata.yaml` is
    rewritten whenever a file is closed, so it is complete after `close()` and lists closed files before.

    Args:
        path: bag directory to create (must not exist).
        max_file_size: split when the open file reaches this many bytes (0: never).
        max_file_duration: split when the open file spans this many seconds of log time (0: never).
        chunk_size: MCAP chunk size in bytes.
        flush_period: seconds of wall time after which a partial chunk is flushed to disk (0: only by size).
        compression: MCAP chunk compression, "none", "lz4" or "zstd".
        store: type store for message definitions (default: `typestore()`).
    """

    def __init__(self, path: str | os.PathLike, *, max_file_size: int = 0, max_file_duration: float = 0.0,
                 chunk_size: int = 1 << 20, flush_period: float = 1.0, compression: str = "none",
                 store: Typestore | None = None):
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag {self.path} exists already; choose a new directory")
        if compression not in COMPRESSION:
            raise BagError(f"unknown MCAP compression {compression!r}; expected one of {sorted(COMPRESSION)}")
        if max_file_size < 0 or max_file_duration < 0 or chunk_size <= 0 or flush_period < 0:
            raise BagError("max_file_size, max_file_duration, flush_period must be >= 0 and chunk_size > 0")
        self.path.mkdir(parents=True)
        self.max_file_size = int(max_file_size)
        self.max_file_duration_ns = int(max_file_duration * 1e9)
        self.chunk_size = int(chunk_size)
        self.flush_period = float(flush_period)
        self._compression = COMPRESSION[compression]
        self._store = store or typestore()
        self._topics: dict[str, _Topic] = {}
        self._files: list[FileInfo] = []
        self._stream = None
        self._mcap: McapFileWriter | None = None
        self._pending = 0
        self._last_flush = time.monotonic()
        self.closed = False
        self._open_file()

    # topics -----------------------------------------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] = (), msgdef: str | None = None,
                  rihs01: str | None = None) -> None:
        """Register a topic before writing to it. `msgdef`/`rihs01` default to the type store's.

        Raises BagError for a type the store does not know when no definition is given, or for a topic
        registered twice with another type.
        """
        if topic in self._topics:
            if self._topics[topic].msgtype != msgtype:
                raise BagError(f"bag {self.path}: topic {topic} registered as {self._topics[topic].msgtype}, "
                               f"not {msgtype}")
            return
        try:
            msgdef, hashed = self.check_type(msgtype, msgdef, self._store)
        except BagError as exc:
            raise BagError(f"bag {self.path}: topic {topic}: {exc}") from exc
        self._topics[topic] = _Topic(topic, msgtype, msgdef, rihs01 or hashed, list(qos))

    @staticmethod
    def check_type(msgtype: str, msgdef: str | None = None, store: Typestore | None = None) -> tuple[str, str]:
        """(definition, RIHS01 hash) of `msgtype`; BagError when neither the store nor `msgdef` defines it."""
        store = store or typestore()
        if msgdef is None:
            if msgtype not in store.fielddefs:
                raise BagError(f"unknown message type {msgtype!r}; give its definition (msgdef) or use a standard type")
            msgdef = store.generate_msgdef(msgtype, ros_version=2)[0]
        return msgdef, _type_hash(msgtype, msgdef, store)

    def set_qos(self, topic: str, qos: Sequence[Qos]) -> bool:
        """Set the offered QoS profiles recorded for `topic`, if no message of it was written yet.

        The profiles are stored in every MCAP channel of the topic and in metadata.yaml, and readers match
        the two, so they are fixed by the topic's first message. Returns whether the change was applied.
        """
        info = self._topics[topic]
        if info.registered:
            return False
        info.qos = list(qos)
        return True

    @property
    def topics(self) -> dict[str, str]:
        """Registered topics -> message types."""
        return {t.name: t.msgtype for t in self._topics.values()}

    def counts(self) -> dict[str, int]:
        """Messages written per topic so far."""
        return {t.name: t.count for t in self._topics.values()}

    # writing ----------------------------------------------------------------------------------------
    def write(self, topic: str, log_time: int, data: bytes, publish_time: int | None = None) -> None:
        """Append one serialized message; `log_time` (receive time) and `publish_time` are in ns."""
        info = self._topics.get(topic)
        if info is None:
            raise BagError(f"bag {self.path}: topic {topic} was not added before writing")
        current = self._files[-1]
        if self._should_split(current, log_time):
            self.split()
            current = self._files[-1]
        channel = current.channels.get(topic)
        if channel is None:
            channel = self._register(info)
        self._mcap.add_message(channel, log_time=log_time, data=data,
                               publish_time=log_time if publish_time is None else publish_time)
        info.count += 1
        current.count += 1
        current.start = min(current.start, log_time)
        current.end = max(current.end, log_time)
        size = len(data) + 31
        current.size += size
        self._pending += size
        now = time.monotonic()
        if self._pending >= self.chunk_size or (self.flush_period and now - self._last_flush >= self.flush_period):
            self.flush()

    def flush_if_due(self) -> None:
        """Flush a pending chunk older than `flush_period` (call while idle, e.g. when no message arrives)."""
        if self._pending and self.flush_period and time.monotonic() - self._last_flush >= self.flush_period:
            self.flush()

    def flush(self) -> None:
        """Write the open chunk to disk now (the data written so far survives a crash)."""
        if self._mcap is not None:
            self._mcap.flush()
        self._pending = 0
        self._last_flush = time.monotonic()

    def split(self) -> None:
        """Close the open storage file and continue in a new one."""
        self._close_file()
        self._open_file()

    def close(self) -> Path:
        """Finish the open file and write the final metadata.yaml; returns the bag path."""
        if not self.closed:
            self._close_file()
            self.closed = True
        return self.path

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals --------------------------------------------------------------------------------------
    def _should_split(self, current: FileInfo, log_time: int) -> bool:
        if current.count == 0:
            return False
        if self.max_file_size and current.size >= self.max_file_size:
            return True
        return bool(self.max_file_duration_ns) and log_time - current.start >= self.max_file_duration_ns

    def _open_file(self) -> None:
        name = f"{self.path.name}_{len(self._files)}.mcap"
        self._stream = open(self.path / name, "xb")
        self._mcap = McapFileWriter(self._stream, chunk_size=self.chunk_size, compression=self._compression)
        self._mcap.start(profile="ros2", library="sim2real")
        self._files.append(FileInfo(name))
        self._schemas: dict[str, int] = {}

    def _register(self, info: _Topic) -> int:
        current = self._files[-1]
        schema = self._schemas.get(info.msgtype)
        if schema is None:
            schema = self._mcap.register_schema(info.msgtype, "ros2msg", info.msgdef.encode())
            self._schemas[info.msgtype] = schema
        channel = self._mcap.register_channel(info.name, "cdr", schema, channel_metadata(info.qos, info.rihs01))
        current.channels[info.name] = channel
        info.registered = True
        return channel

    def _close_file(self) -> None:
        if self._mcap is None:
            return
        self._mcap.finish()
        self._stream.close()
        self._mcap = None
        self._stream = None
        write_metadata(self.path, [file_entry(f) for f in self._files],
                       [topic_entry(t.name, t.msgtype, t.qos, t.rihs01, t.count) for t in self._topics.values()])


def _type_hash(msgtype: str, msgdef: str, store: Typestore) -> str:
    """RIHS01 hash of `msgtype` from its ros2msg definition (with any embedded sub-definitions)."""
    if msgtype in store.fielddefs:
        return store.hash_rihs01(msgtype)
    scratch = typestore()
    try:
        scratch.register(get_types_from_msg(msgdef.split("=" * 80)[0], msgtype))
        for part in msgdef.split("=" * 80 + "\n")[1:]:
            header, _, body = part.partition("\n")
            scratch.register(get_types_from_msg(body, header.removeprefix("MSG: ").strip()))
        return scratch.hash_rihs01(msgtype)
    except Exception as exc:  # rosbags raises several parser errors
        raise BagError(f"message definition of {msgtype} cannot be parsed: {exc}") from exc


def channel_metadata(qos: Sequence[Qos], rihs01: str) -> dict[str, str]:
    """MCAP channel metadata as rosbag2_storage_mcap writes it (QoS as a YAML string, the type hash)."""
    return {"offered_qos_profiles": yaml.safe_dump(dump_qos_v9(list(qos))) if qos else "",
            "topic_type_hash": rihs01}


def file_entry(f: FileInfo) -> dict:
    """The metadata.yaml `files` entry of a storage file."""
    return {"path": f.path, "starting_time": {"nanoseconds_since_epoch": f.start if f.count else 0},
            "duration": {"nanoseconds": (f.end - f.start) if f.count else 0}, "message_count": f.count}


def topic_entry(name: str, msgtype: str, qos: Sequence[Qos], rihs01: str, count: int) -> dict:
    """The metadata.yaml `topics_with_message_count` entry of a topic."""
    return {"topic_metadata": {"name": name, "type": msgtype, "serialization_format": "cdr",
                               "offered_qos_profiles": dump_qos_v9(list(qos)), "type_description_hash": rihs01},
            "message_count": count}


def write_metadata(bag: Path, files: Sequence[dict], topics: Sequence[dict],
                   custom_data: dict[str, str] | None = None) -> Path:
    """Write `bag/metadata.yaml` (rosbag2 version 9, MCAP storage) atomically from file and topic entries."""
    with_messages = [f for f in files if f["message_count"]]
    start = min((f["starting_time"]["nanoseconds_since_epoch"] for f in with_messages), default=0)
    end = max((f["starting_time"]["nanoseconds_since_epoch"] + f["duration"]["nanoseconds"] for f in with_messages),
              default=0)
    info = {
        "version": METADATA_VERSION,
        "storage_identifier": "mcap",
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(f["message_count"] for f in files),
        "topics_with_message_count": list(topics),
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [f["path"] for f in files],
        "files": list(files),
        "custom_data": dict(custom_data or {}),  # rosbag2 (yaml-cpp) expects a map, not null
        "ros_distro": ROS_DISTRO,
    }
    target = bag / METADATA_FILE
    tmp = bag / f".{METADATA_FILE}.tmp"
    tmp.write_text(yaml.safe_dump({"rosbag2_bagfile_information": info}, sort_keys=False))
    os.replace(tmp, target)
    return target


def write_bag(path: str | os.PathLike, messages: Iterable[tuple[str, int, object]], types: dict[str, str],
              *, storage: str = "mcap", qos: Sequence[Qos] | None = None, store: Typestore | None = None) -> Path:
    """Write messages (topic, log time ns, rosbags message object) to a new bag; for tests, tools and examples.

    Args:
        path: bag directory to create.
        messages: (topic, log_time_ns, message) in any order; the message is a rosbags type-store object.
        types: topic -> message type name (e.g. "sensor_msgs/msg/JointState").
        storage: "mcap" (this module's writer) or "sqlite3" (the rosbags rosbag2 writer, metadata v9).
        qos: offered QoS profiles recorded for every topic (default: reliable, depth 10).
    Returns:
        The bag directory.
    """
    store = store or typestore()
    qos = [reliable_qos()] if qos is None else list(qos)
    if storage == "mcap":
        with BagWriter(path, store=store) as writer:
            for topic, msgtype in types.items():
                writer.add_topic(topic, msgtype, qos)
            for topic, log_time, msg in messages:
                writer.write(topic, log_time, bytes(store.serialize_cdr(msg, types[topic])))
        return Path(path)
    if storage == "sqlite3":
        from rosbags.rosbag2 import StoragePlugin, Writer

        with Writer(path, version=METADATA_VERSION, storage_plugin=StoragePlugin.SQLITE3) as writer:
            connections = {topic: writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=qos)
                           for topic, msgtype in types.items()}
            for topic, log_time, msg in messages:
                writer.write(connections[topic], log_time, store.serialize_cdr(msg, types[topic]))
        return Path(path)
    raise BagError(f"unknown storage {storage!r}; expected 'mcap' or 'sqlite3'")


class BagReader:
    """Read a rosbag2 directory (MCAP or sqlite3 storage) with errors that name the bag and what failed.

    Use as a context manager; `topics` maps topic -> type, `messages(topics)` yields
    (topic, log_time_ns, index_in_topic, message) in log-time order.
    """

    def __init__(self, path: str | os.PathLike, store: Typestore | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_dir() and not (self.path / METADATA_FILE).exists():
            raise BagError(f"bag {self.path} has no {METADATA_FILE} (was the recorder killed?); "
                           + RECOVER_HINT.format(bag=self.path))
        self._reader = AnyReader([self.path], default_typestore=store or typestore())

    def __enter__(self) -> "BagReader":
        try:
            self._reader.open()
        except (AnyReaderError, ReaderError, OSError, KeyError, ValueError) as exc:
            raise BagError(f"bag {self.path} cannot be opened: {exc} (if its recorder was killed, "
                           + RECOVER_HINT.format(bag=self.path) + ")") from exc
        return self

    def __exit__(self, *exc) -> None:
        self._reader.close()

    @property
    def connections(self) -> list[Connection]:
        """The bag's connections (topic, msgtype, msgcount, QoS)."""
        return list(self._reader.connections)

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def start_time(self) -> int:
        """Earliest log time (ns)."""
        return self._reader.start_time

    @property
    def end_time(self) -> int:
        """Latest log time (ns), exclusive."""
        return self._reader.end_time

    def raw_messages(self, topics: Sequence[str]) -> Iterator[tuple[str, int, bytes]]:
        """Yield (topic, log_time_ns, serialized bytes) for `topics` in log-time order."""
        wanted = [c for c in self._reader.connections if c.topic in set(topics)]
        read = {c.topic: 0 for c in wanted}
        try:
            for connection, log_time, raw in self._reader.messages(connections=wanted):
                read[connection.topic] += 1
                yield connection.topic, log_time, raw
        except (AnyReaderError, ReaderError, OSError, ValueError) as exc:
            raise BagError(f"bag {self.path}: reading {', '.join(topics)} failed: {exc}; "
                           + RECOVER_HINT.format(bag=self.path)) from exc
        expected: dict[str, int] = {}
        for c in wanted:
            expected[c.topic] = expected.get(c.topic, 0) + c.msgcount
        short = {t: (read[t], n) for t, n in expected.items() if read[t] != n}
        if short:  # metadata and storage disagree: never hand out a silently partial recording
            raise BagError(f"bag {self.path}: read {', '.join(f'{t}: {r} of {n}' for t, (r, n) in short.items())} "
                           f"messages the metadata lists; " + RECOVER_HINT.format(bag=self.path))

    def publish_times(self, topics: Sequence[str]) -> dict[str, np.ndarray] | None:
        """Send times (MCAP publish_time, ns) of each topic's messages in log-time order; None for sqlite3."""
        metadata = read_metadata(self.path) if self.path.is_dir() else {}
        if metadata.get("storage_identifier") != "mcap":
            return None
        pairs: dict[str, list[tuple[int, int]]] = {topic: [] for topic in topics}
        for name in metadata["relative_file_paths"]:
            try:
                with open(self.path / name, "rb") as stream:
                    for _, channel, message in make_reader(stream).iter_messages(topics=list(topics),
                                                                                  log_time_order=False):
                        pairs[channel.topic].append((message.log_time, message.publish_time))
            except (OSError, McapError, ValueError) as exc:
                raise BagError(f"bag {self.path}: file {name} cannot be read with the MCAP reader: {exc}; "
                               + RECOVER_HINT.format(bag=self.path)) from exc
        times = {}
        for topic, values in pairs.items():
            array = np.array(values, dtype=np.int64).reshape(-1, 2)
            times[topic] = array[np.argsort(array[:, 0], kind="stable"), 1]
        return times

    def messages(self, topics: Sequence[str]) -> Iterator[tuple[str, int, int, object]]:
        """Yield (topic, log_time_ns, index within topic, deserialized message) for `topics`."""
        types = self.topics
        index = {t: 0 for t in topics}
        for topic, log_time, raw in self.raw_messages(topics):
            try:
                msg = self._reader.deserialize(raw, types[topic])
            except Exception as exc:  # rosbags raises several types for bad CDR
                raise BagError(f"bag {self.path}: topic {topic} message #{index[topic]} (log time {log_time} ns) "
                               f"cannot be deserialized as {types[topic]}: {exc}") from exc
            yield topic, log_time, index[topic], msg
            index[topic] += 1


def read_metadata(bag: str | os.PathLike) -> dict:
    """The `rosbag2_bagfile_information` mapping of a bag's metadata.yaml."""
    path = Path(bag) / METADATA_FILE
    try:
        data = yaml.safe_load(path.read_text())
        return data["rosbag2_bagfile_information"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"{path} is missing or not rosbag2 metadata ({exc}); " + RECOVER_HINT.format(bag=bag)) from exc


def qos_from_metadata(text: str) -> list[Qos]:
    """Parse an offered_qos_profiles value (YAML string or list) into rosbags Qos objects."""
    return parse_qos(yaml.safe_load(text) if isinstance(text, str) and text else text)
