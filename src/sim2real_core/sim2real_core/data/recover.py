"""Recover a bag whose recorder died: re-index its MCAP files and rebuild metadata.yaml (like `ros2 bag reindex`).

A recorder killed with SIGKILL leaves `metadata.yaml` stale or absent and its last MCAP file without summary
or footer, possibly ending inside a chunk. Each such file is scanned record by record; every complete chunk
is kept when its CRC matches (else only its schema and channel records), and the complete messages at the
start of a truncated uncompressed chunk are salvaged.
The messages are rewritten into a complete MCAP file under the original name; the damaged original is kept
next to it as `NAME.mcap.damaged` (nothing is deleted). Complete files are left untouched.
"""
from __future__ import annotations

import mmap
import os
import re
import struct
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import CRCValidationError, breakup_chunk
from mcap.writer import CompressionType
from mcap.writer import Writer as McapFileWriter

from sim2real_core.data.bagio import (
    BagError,
    FileInfo,
    file_entry,
    qos_from_metadata,
    topic_entry,
    typestore,
    write_metadata,
)

MAGIC = b"\x89MCAP0\r\n"


@dataclass
class FileReport:
    """What recovery found in one storage file."""

    path: str
    complete: bool
    messages: int = 0
    chunks_skipped: int = 0  # chunks dropped for a bad CRC or unreadable content
    salvaged_from_partial_chunk: int = 0
    bytes_lost: int = 0  # trailing bytes that held no complete record
    damaged_copy: str | None = None


@dataclass
class RecoveryReport:
    """Result of `recover_bag`: per-file reports and the rebuilt metadata path."""

    bag: str
    files: list[FileReport] = field(default_factory=list)
    metadata: str = ""

    @property
    def messages(self) -> int:
        return sum(f.messages for f in self.files)


def _split_index(path: Path) -> tuple[int, str]:
    match = re.search(r"_(\d+)\.mcap$", path.name)
    return (int(match.group(1)) if match else -1, path.name)


def recover_bag(bag: str | os.PathLike) -> RecoveryReport:
    """Re-index every MCAP file of `bag` and write a fresh metadata.yaml (version 9).

    Returns:
        RecoveryReport with counts of kept, salvaged and lost data per file.
    Raises:
        BagError when the directory holds no MCAP files or a file is not MCAP at all.
    """
    bag = Path(bag)
    if not bag.is_dir():
        raise BagError(f"bag {bag} is not a directory")
    files = sorted(bag.glob("*.mcap"), key=_split_index)
    if not files:
        raise BagError(f"bag {bag} holds no .mcap files to recover")
    report = RecoveryReport(str(bag))
    topics: dict[str, dict] = {}
    entries = []
    for path in files:
        file_report = FileReport(path.name, complete=_is_complete(path))
        if not file_report.complete:
            _rewrite(path, file_report)
        entry, file_topics = _describe(path)
        file_report.messages = entry.count
        entries.append(file_entry(entry))
        for name, info in file_topics.items():
            known = topics.setdefault(name, {**info, "count": 0})
            if known["type"] != info["type"]:
                raise BagError(f"bag {bag}: topic {name} has type {known['type']} and {info['type']} "
                               "in different files")
            known["count"] += info["count"]
        report.files.append(file_report)
    report.metadata = str(write_metadata(bag, entries, [
        topic_entry(name, t["type"], t["qos"], t["hash"], t["count"]) for name, t in topics.items()]))
    return report


def _is_complete(path: Path) -> bool:
    """Whether the file ends in a valid footer with a summary (statistics and chunk indexes)."""
    try:
        with open(path, "rb") as stream:
            summary = make_reader(stream).get_summary()
    except (McapError, ValueError, struct.error, OSError, EOFError, IndexError):
        return False
    return summary is not None and summary.statistics is not None


def _describe(path: Path) -> tuple[FileInfo, dict[str, dict]]:
    """File entry and per-topic info (type, QoS, hash, count) from a complete file's summary."""
    try:
        with open(path, "rb") as stream:
            summary = make_reader(stream).get_summary()
    except (McapError, ValueError, struct.error, OSError) as exc:
        raise BagError(f"{path}: cannot read MCAP summary after recovery: {exc}") from exc
    stats = summary.statistics
    entry = FileInfo(path.name, start=stats.message_start_time, end=stats.message_end_time, count=stats.message_count)
    store = typestore()
    topics = {}
    for cid, channel in summary.channels.items():
        msgtype = summary.schemas[channel.schema_id].name if channel.schema_id in summary.schemas else ""
        rihs01 = channel.metadata.get("topic_type_hash", "")
        if not rihs01 and msgtype in store.fielddefs:
            rihs01 = store.hash_rihs01(msgtype)
        qos = qos_from_metadata(channel.metadata.get("offered_qos_profiles", ""))
        info = topics.setdefault(channel.topic, {"type": msgtype, "hash": rihs01, "count": 0, "qos": qos})
        info["count"] += stats.channel_message_counts.get(cid, 0)
    return entry, topics


def _rewrite(path: Path, report: FileReport) -> None:
    """Scan a damaged file and write its readable records into a new complete file under the same name."""
    damaged = path.with_name(path.name + ".damaged")
    if damaged.exists():
        raise BagError(f"{damaged} exists already; move it away before recovering {path} again")
    with open(path, "rb") as source:
        head = source.read(len(MAGIC))
    # A file killed before its first flush may hold less than the magic: it becomes an empty MCAP file.
    if not (head == MAGIC or MAGIC.startswith(head)):
        raise BagError(f"{path}: not an MCAP file (bad magic); nothing to recover")
    tmp = path.with_name(f".{path.name}.recovering")
    with open(path, "rb") as source, open(tmp, "wb") as target:
        size = os.fstat(source.fileno()).st_size
        data = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        writer = McapFileWriter(target, compression=CompressionType.NONE)
        writer.start(profile="ros2", library="sim2real-recover")
        copier = _Copier(writer)
        pos = len(MAGIC) + 9 + struct.unpack_from("<Q", data, 9)[0] if size >= 17 else size  # skip the header
        while pos + 9 <= size:
            opcode, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
            body_end = pos + 9 + length
            if body_end > size:
                if opcode == Opcode.CHUNK:
                    report.salvaged_from_partial_chunk = copier.partial_chunk(bytes(data[pos + 9:size]))
                break
            body = bytes(data[pos + 9:body_end])
            if opcode == Opcode.CHUNK:
                chunk = Chunk.read(ReadDataStream(BytesIO(body)))
                try:
                    copier.records(breakup_chunk(chunk, validate_crc=True))
                except (CRCValidationError, McapError, ValueError, struct.error, EOFError):
                    report.chunks_skipped += 1
                    copier.definitions(chunk)
            elif opcode in (Opcode.SCHEMA, Opcode.CHANNEL, Opcode.MESSAGE):
                copier.records(_parse(opcode, body))
            elif opcode in (Opcode.DATA_END, Opcode.FOOTER):
                pos = size
                break
            pos = body_end
        report.bytes_lost = size - pos
        writer.finish()
        if isinstance(data, mmap.mmap):
            data.close()
    os.replace(path, damaged)
    os.replace(tmp, path)
    report.damaged_copy = damaged.name


def _parse(opcode: int, body: bytes) -> list:
    stream = ReadDataStream(BytesIO(body))
    if opcode == Opcode.SCHEMA:
        return [Schema.read(stream)]
    if opcode == Opcode.CHANNEL:
        return [Channel.read(stream)]
    return [Message.read(stream, len(body))]


class _Copier:
    """Copy schema, channel and message records into a new writer, renumbering ids."""

    def __init__(self, writer: McapFileWriter):
        self.writer = writer
        self.schemas: dict[int, Schema] = {}
        self.new_schema: dict[int, int] = {}
        self.new_channel: dict[int, int] = {}

    def records(self, records: list) -> int:
        copied = 0
        for record in records:
            if isinstance(record, Schema):
                self.schemas[record.id] = record
            elif isinstance(record, Channel) and record.id not in self.new_channel:
                schema = self.schemas.get(record.schema_id)
                if schema is not None and record.schema_id not in self.new_schema:
                    self.new_schema[record.schema_id] = self.writer.register_schema(schema.name, schema.encoding,
                                                                                    schema.data)
                self.new_channel[record.id] = self.writer.register_channel(
                    record.topic, record.message_encoding, self.new_schema.get(record.schema_id, 0), record.metadata)
            elif isinstance(record, Message) and record.channel_id in self.new_channel:
                self.writer.add_message(self.new_channel[record.channel_id], log_time=record.log_time,
                                        data=record.data, publish_time=record.publish_time, sequence=record.sequence)
                copied += 1
        return copied

    def definitions(self, chunk: Chunk) -> None:
        """Keep the schema and channel records of a chunk whose CRC failed (its messages are not trusted)."""
        try:
            records = breakup_chunk(chunk, validate_crc=False)
        except (McapError, ValueError, struct.error, EOFError, UnicodeDecodeError):
            return
        self.records([r for r in records if isinstance(r, (Schema, Channel))])

    def partial_chunk(self, body: bytes) -> int:
        """Copy the complete records at the start of a truncated chunk; only possible without compression."""
        header = struct.Struct("<QQQI")
        if len(body) < header.size + 4:
            return 0
        offset = header.size
        (name_len,) = struct.unpack_from("<I", body, offset)
        compression = body[offset + 4:offset + 4 + name_len]
        offset += 4 + name_len + 8  # compression name, records length
        if compression != b"" or offset > len(body):
            return 0
        records, pos = [], offset
        while pos + 9 <= len(body):
            opcode, length = body[pos], struct.unpack_from("<Q", body, pos + 1)[0]
            if pos + 9 + length > len(body):
                break
            if opcode in (Opcode.SCHEMA, Opcode.CHANNEL, Opcode.MESSAGE):
                records.extend(_parse(opcode, body[pos + 9:pos + 9 + length]))
            pos += 9 + length
        return self.records(records)
