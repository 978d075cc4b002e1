"""bag-recover: a writer killed with SIGKILL, a truncated last chunk, a corrupt chunk, a complete bag."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from data_bag_factory import COMMANDS, STORE, T0, TYPES, command

from sim2real_core.data.bagio import BagError, BagReader, BagWriter, read_metadata, write_bag
from sim2real_core.data.recover import recover_bag


def _payload(i):
    return bytes(STORE.serialize_cdr(command(np.full(7, float(i))), TYPES[COMMANDS]))


def _values(bag):
    with BagReader(bag) as reader:
        return [(log, STORE.deserialize_cdr(raw, TYPES[COMMANDS]).data[0])
                for _, log, raw in reader.raw_messages([COMMANDS])]


def test_sigkilled_writer_is_recovered_up_to_the_last_flush(tmp_path):
    bag = tmp_path / "bag"
    script = textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_data_recover import _payload
        from sim2real_core.data.bagio import BagWriter
        w = BagWriter({str(bag)!r}, max_file_duration=0.1, flush_period=0)
        w.add_topic("{COMMANDS}", "{TYPES[COMMANDS]}")
        for i in range(250):
            w.write("{COMMANDS}", {T0} + i * 1_000_000, _payload(i))
        w.flush()
        for i in range(250, 260):  # still in memory when the process dies
            w.write("{COMMANDS}", {T0} + i * 1_000_000, _payload(i))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [f["message_count"] for f in read_metadata(bag)["files"]] == [100, 100]  # only closed files so far
    assert len(_values(bag)) == 200  # readable before recovery: the closed files

    report = recover_bag(bag)
    assert [f.complete for f in report.files] == [True, True, False]
    assert report.files[2].messages == 50 and report.files[2].damaged_copy == "bag_2.mcap.damaged"
    assert (bag / "bag_2.mcap.damaged").exists()
    info = read_metadata(bag)
    assert info["message_count"] == 250 and info["relative_file_paths"] == ["bag_0.mcap", "bag_1.mcap", "bag_2.mcap"]
    topic = info["topics_with_message_count"][0]
    assert topic["message_count"] == 250 and topic["topic_metadata"]["type"] == TYPES[COMMANDS]
    assert topic["topic_metadata"]["type_description_hash"] == STORE.hash_rihs01(TYPES[COMMANDS])
    assert _values(bag) == [(T0 + i * 1_000_000, float(i)) for i in range(250)]
    # Recovering again changes nothing.
    again = recover_bag(bag)
    assert all(f.complete for f in again.files) and again.messages == 250


def _unfinished(tmp_path, n=300, chunk_size=2048):
    """A writer that flushed n messages in several uncompressed chunks and never closed (like SIGKILL)."""
    writer = BagWriter(tmp_path / "bag", chunk_size=chunk_size, flush_period=0)
    writer.add_topic(COMMANDS, TYPES[COMMANDS])
    for i in range(n):
        writer.write(COMMANDS, T0 + i * 1_000_000, _payload(i))
    writer.flush()
    writer._stream.close()
    return tmp_path / "bag", tmp_path / "bag" / "bag_0.mcap"


def test_truncated_last_chunk_keeps_its_complete_messages(tmp_path):
    bag, path = _unfinished(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])  # cut inside the last chunk (and its message index)
    report = recover_bag(bag)
    file = report.files[0]
    assert not file.complete and file.salvaged_from_partial_chunk > 0 and file.bytes_lost > 0
    values = _values(bag)
    assert 250 < len(values) < 300
    assert values == [(T0 + i * 1_000_000, float(i)) for i in range(len(values))]


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_chunks_are_recovered_whole(tmp_path, compression):
    writer = BagWriter(tmp_path / "bag", chunk_size=2048, flush_period=0, compression=compression)
    writer.add_topic(COMMANDS, TYPES[COMMANDS])
    for i in range(300):
        writer.write(COMMANDS, T0 + i * 1_000_000, _payload(i))
    writer.flush()
    writer._stream.close()
    path = tmp_path / "bag" / "bag_0.mcap"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 50])  # inside the last chunk's message index: the chunk is whole
    report = recover_bag(tmp_path / "bag")
    assert report.files[0].salvaged_from_partial_chunk == 0 and report.files[0].chunks_skipped == 0
    assert _values(tmp_path / "bag") == [(T0 + i * 1_000_000, float(i)) for i in range(300)]


def test_corrupt_chunk_is_skipped_and_counted(tmp_path):
    bag, path = _unfinished(tmp_path)
    data = bytearray(path.read_bytes())
    chunk_start = data.index(bytes([0x06]), 8 + 9 + int.from_bytes(data[9:17], "little"))
    chunk_end = chunk_start + 9 + int.from_bytes(data[chunk_start + 1:chunk_start + 9], "little")
    data[chunk_end - 20] ^= 0xFF  # in the first chunk's last message: its CRC no longer matches
    path.write_bytes(bytes(data))
    report = recover_bag(bag)
    assert report.files[0].chunks_skipped == 1
    values = _values(bag)
    assert 0 < len(values) < 300 and values[0][1] > 0  # the first chunk's messages are gone, the rest kept in order


def test_complete_bag_is_left_as_is(tmp_path):
    bag = write_bag(tmp_path / "bag", [(COMMANDS, T0 + i, command(np.zeros(7))) for i in range(5)],
                    {COMMANDS: TYPES[COMMANDS]})
    before = (bag / "bag_0.mcap").read_bytes()
    (bag / "metadata.yaml").unlink()
    report = recover_bag(bag)
    assert report.files[0].complete and report.messages == 5
    assert (bag / "bag_0.mcap").read_bytes() == before
    assert read_metadata(bag)["topics_with_message_count"][0]["message_count"] == 5


def test_file_killed_before_its_first_flush_becomes_empty(tmp_path):
    bag = write_bag(tmp_path / "bag", [(COMMANDS, T0 + i, command(np.zeros(7))) for i in range(5)],
                    {COMMANDS: TYPES[COMMANDS]})
    (bag / "bag_1.mcap").write_bytes(b"\x89MC")  # a split file cut inside its magic
    report = recover_bag(bag)
    assert [(f.complete, f.messages) for f in report.files] == [(True, 5), (False, 0)]
    assert read_metadata(bag)["relative_file_paths"] == ["bag_0.mcap", "bag_1.mcap"]
    assert len(_values(bag)) == 5


def test_nothing_to_recover_is_an_error(tmp_path):
    with pytest.raises(BagError, match="is not a directory"):
        recover_bag(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="holds no .mcap files"):
        recover_bag(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk_0.mcap").write_bytes(b"hello world, not mcap")
    with pytest.raises(BagError, match="not an MCAP file"):
        recover_bag(tmp_path / "junk")
