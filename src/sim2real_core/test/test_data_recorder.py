"""Recorder: messages put from other threads land in order; operations apply after earlier messages; errors."""
import threading

import numpy as np
import pytest
from data_bag_factory import COMMANDS, STORE, T0, TYPES, command

from sim2real_core.data.bagio import BagError, BagReader, read_metadata, reliable_qos
from sim2real_core.data.recorder import Recorder


def _payload(i):
    return bytes(STORE.serialize_cdr(command(np.full(7, float(i))), TYPES[COMMANDS]))


def _values(bag):
    with BagReader(bag) as reader:
        return [STORE.deserialize_cdr(raw, TYPES[COMMANDS]).data[0] for _, _, raw in reader.raw_messages([COMMANDS])]


def test_messages_from_a_callback_thread_are_written_in_order_with_splits(tmp_path):
    recorder = Recorder(flush_period=0.05)
    recorder.add_topic(COMMANDS, TYPES[COMMANDS], [reliable_qos()])
    recorder.open(tmp_path / "bag")

    def callbacks(first, last):
        for i in range(first, last):
            recorder.put(COMMANDS, T0 + i * 1_000_000, _payload(i), T0 + i * 1_000_000 - 500)

    worker = threading.Thread(target=callbacks, args=(0, 300))
    worker.start()
    worker.join()
    recorder.split()  # applies after the 300 messages already queued
    callbacks(300, 400)
    assert recorder.close() == tmp_path / "bag"
    assert [f["message_count"] for f in read_metadata(tmp_path / "bag")["files"]] == [300, 100]
    assert _values(tmp_path / "bag") == [float(i) for i in range(400)]
    assert recorder.written == 400 and recorder.dropped == 0
    # A second bag keeps the declared topics.
    recorder.open(tmp_path / "again")
    callbacks(0, 3)
    recorder.shutdown()
    assert _values(tmp_path / "again") == [0.0, 1.0, 2.0]


def test_unknown_type_and_write_errors_are_reported_not_hidden(tmp_path):
    recorder = Recorder()
    with pytest.raises(BagError, match="unknown message type 'nope/msg/Nope'"):
        recorder.add_topic("/x", "nope/msg/Nope")
    recorder.add_topic(COMMANDS, TYPES[COMMANDS])
    recorder.put(COMMANDS, T0, _payload(0))  # no bag open: counted, not written
    recorder.open(tmp_path / "bag")
    recorder.put(COMMANDS, T0 + 1, _payload(1))
    recorder.put("/never_added", T0 + 2, b"")  # the writer fails: it stops and says why
    recorder.put(COMMANDS, T0 + 3, _payload(3))
    recorder.close()
    assert isinstance(recorder.error, BagError) and "/never_added" in str(recorder.error)
    assert recorder.written == 1 and recorder.dropped == 3
    assert _values(tmp_path / "bag") == [1.0]  # what was written before the error is kept, with metadata
    with pytest.raises(RuntimeError, match="already recording"):
        recorder.open(tmp_path / "b1")
        recorder.open(tmp_path / "b2")
    recorder.shutdown()
