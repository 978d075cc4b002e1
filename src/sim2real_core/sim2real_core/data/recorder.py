"""A bag recorder whose writing happens on its own thread, so message callbacks never block on disk I/O."""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from rosbags.interfaces import Qos

from sim2real_core.data.bagio import BagWriter

_STOP = object()


class Recorder:
    """Queue serialized messages from any thread; a writer thread appends them to the open bag in order.

    `put` only enqueues. Bag operations (open, add_topic, split, close) travel through the same queue, so they
    apply after every message put before them; the calling thread waits for their result.

    Args:
        writer_options: keyword arguments of BagWriter (max_file_size, max_file_duration, chunk_size, ...).
    """

    def __init__(self, **writer_options: Any):
        self._options = writer_options
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: BagWriter | None = None
        self._topics: dict[str, tuple[str, list[Qos], str | None]] = {}
        self.error: Exception | None = None
        self.written = 0
        self.dropped = 0  # messages that reached the writer while no bag was open or after a write error
        self._thread = threading.Thread(target=self._run, name="bag-writer", daemon=True)
        self._thread.start()

    # called from callbacks ----------------------------------------------------------------------------
    def put(self, topic: str, log_time: int, data: bytes, publish_time: int | None = None) -> None:
        """Enqueue one serialized message (never blocks)."""
        self._queue.put((topic, log_time, data, publish_time))

    @property
    def backlog(self) -> int:
        """Items waiting for the writer thread."""
        return self._queue.qsize()

    @property
    def path(self) -> Path | None:
        """The open bag, if any."""
        return None if self._writer is None else self._writer.path

    # bag operations (wait for the writer thread) ------------------------------------------------------
    def open(self, path: str | os.PathLike, timeout: float = 10.0) -> Path:
        """Start a new bag at `path` with every topic added so far."""
        return self._call(lambda: self._open(Path(path)), timeout)

    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] = (), msgdef: str | None = None,
                  timeout: float = 10.0) -> None:
        """Declare a topic (kept across bags); raises the writer's BagError for an unknown type."""
        self._call(lambda: self._add_topic(topic, msgtype, list(qos), msgdef), timeout)

    def set_qos(self, topic: str, qos: Sequence[Qos]) -> None:
        """Update the offered QoS profiles recorded for `topic` (queued: applies to messages put after it;
        a bag keeps the profiles in force at the topic's first message, see BagWriter.set_qos)."""
        def update():
            msgtype, _, msgdef = self._topics[topic]
            self._topics[topic] = (msgtype, list(qos), msgdef)
            if self._writer is not None:
                self._writer.set_qos(topic, qos)
        self._queue.put((update, threading.Event(), {}))

    def split(self, timeout: float = 10.0) -> None:
        """Close the open storage file and continue in a new one."""
        self._call(lambda: self._writer.split() if self._writer else None, timeout)

    def counts(self, timeout: float = 10.0) -> dict[str, int]:
        """Messages written per topic in the open bag."""
        return self._call(lambda: self._writer.counts() if self._writer else {}, timeout)

    def close(self, timeout: float = 30.0) -> Path | None:
        """Write every queued message, finish the bag (metadata.yaml) and return its path (None if none open)."""
        return self._call(self._close, timeout)

    def shutdown(self, timeout: float = 30.0) -> Path | None:
        """Close the bag and end the writer thread."""
        path = self.close(timeout) if self._thread.is_alive() else None
        self._queue.put(_STOP)
        self._thread.join(timeout)
        return path

    # writer thread ------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], timeout: float) -> Any:
        if not self._thread.is_alive():
            raise RuntimeError("the bag writer thread has ended")
        done = threading.Event()
        box: dict[str, Any] = {}
        self._queue.put((fn, done, box))
        if not done.wait(timeout):
            raise TimeoutError(f"bag writer did not answer within {timeout} s ({self.backlog} items queued)")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def _run(self) -> None:
        idle = self._options.get("flush_period") or 1.0
        while True:
            try:
                item = self._queue.get(timeout=idle)
            except queue.Empty:
                if self._writer is not None and self.error is None:
                    self._writer.flush_if_due()
                continue
            if item is _STOP:
                return
            if len(item) == 3:
                fn, done, box = item
                try:
                    box["result"] = fn()
                except Exception as exc:  # handed back to the caller
                    box["error"] = exc
                done.set()
                continue
            if self._writer is None or self.error is not None:
                self.dropped += 1
                continue
            try:
                self._writer.write(*item)
                self.written += 1
            except Exception as exc:  # disk full, bad topic: stop writing, keep what is on disk, report
                self.error = exc
                self.dropped += 1

    def _open(self, path: Path) -> Path:
        if self._writer is not None:
            raise RuntimeError(f"already recording to {self._writer.path}")
        writer = BagWriter(path, **self._options)
        for topic, (msgtype, qos, msgdef) in self._topics.items():
            writer.add_topic(topic, msgtype, qos, msgdef=msgdef)
        self._writer = writer
        self.error = None
        return path

    def _add_topic(self, topic: str, msgtype: str, qos: list[Qos], msgdef: str | None) -> None:
        if self._writer is not None:
            self._writer.add_topic(topic, msgtype, qos, msgdef=msgdef)
        else:  # validate now, so an unknown type is reported when the topic is declared
            BagWriter.check_type(msgtype, msgdef)
        self._topics[topic] = (msgtype, qos, msgdef)

    def _close(self) -> Path | None:
        writer, self._writer = self._writer, None
        return None if writer is None else writer.close()
