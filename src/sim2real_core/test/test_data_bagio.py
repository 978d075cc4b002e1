"""Bag writing and reading: MCAP with metadata v9 (splits, QoS, counts), sqlite3, a second MCAP reader, bad bags."""
import numpy as np
import pytest
import yaml
from data_bag_factory import COMMANDS, JOINTS, STATES, STORE, T0, TYPES, command, control_log, joint_state
from mcap.reader import make_reader

from sim2real_core.data.bagio import BagError, BagReader, BagWriter, read_metadata, reliable_qos, write_bag


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_keeps_bytes_times_and_order(tmp_path, storage):
    messages = control_log(n_states=30)
    bag = write_bag(tmp_path / "bag", messages, {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]}, storage=storage)
    with BagReader(bag) as reader:
        assert reader.topics == {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]}
        got = list(reader.messages([STATES, COMMANDS]))
    assert [(t, log) for t, log, _, _ in got] == [(t, log) for t, log, _ in messages]
    first = got[0][3]
    assert list(first.name) == JOINTS and np.array_equal(first.position, messages[0][2].position)
    assert [i for t, _, i, _ in got if t == COMMANDS] == [0, 1, 2]


def test_metadata_v9_lists_types_qos_counts_and_files(tmp_path):
    bag = write_bag(tmp_path / "bag", control_log(n_states=20), {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]},
                    qos=[reliable_qos(depth=7)])
    info = read_metadata(bag)
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["bag_0.mcap"] and (bag / "bag_0.mcap").exists()
    assert info["message_count"] == 22
    topics = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    assert topics[STATES]["message_count"] == 20 and topics[COMMANDS]["message_count"] == 2
    meta = topics[STATES]["topic_metadata"]
    assert meta["type"] == "sensor_msgs/msg/JointState" and meta["serialization_format"] == "cdr"
    assert meta["type_description_hash"] == STORE.hash_rihs01("sensor_msgs/msg/JointState")
    offered = meta["offered_qos_profiles"][0]
    assert offered["depth"] == 7 and offered["reliability"] == "reliable"
    assert info["starting_time"]["nanoseconds_since_epoch"] == T0 + 200_000
    assert info["duration"]["nanoseconds"] == 19 * 1_000_000


def test_mcap_files_open_with_the_mcap_library(tmp_path):
    bag = write_bag(tmp_path / "bag", control_log(n_states=10), {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]})
    with open(bag / "bag_0.mcap", "rb") as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert summary.statistics.message_count == 11
        assert {s.name for s in summary.schemas.values()} == {TYPES[STATES], TYPES[COMMANDS]}
        schema, channel, message = next(reader.iter_messages(topics=[STATES]))
    assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
    decoded = STORE.deserialize_cdr(message.data, TYPES[STATES])
    assert np.array_equal(decoded.position, joint_state(T0, JOINTS, *_values0()).position)


def _values0():
    from data_bag_factory import state_values
    return state_values(0)


def test_split_by_size_and_duration(tmp_path):
    payload = bytes(STORE.serialize_cdr(command(np.zeros(7)), TYPES[COMMANDS]))
    with BagWriter(tmp_path / "size", max_file_size=2000, chunk_size=512) as writer:
        writer.add_topic(COMMANDS, TYPES[COMMANDS], [reliable_qos()])
        for i in range(100):
            writer.write(COMMANDS, T0 + i * 1_000_000, payload)
    info = read_metadata(tmp_path / "size")
    assert len(info["files"]) > 1 and sum(f["message_count"] for f in info["files"]) == 100
    with BagReader(tmp_path / "size") as reader:
        assert [log for _, log, _ in reader.raw_messages([COMMANDS])] == [T0 + i * 1_000_000 for i in range(100)]

    with BagWriter(tmp_path / "dur", max_file_duration=0.025) as writer:
        writer.add_topic(COMMANDS, TYPES[COMMANDS])
        for i in range(100):
            writer.write(COMMANDS, T0 + i * 1_000_000, payload)
        writer.split()  # explicit split as well
        writer.write(COMMANDS, T0 + 200_000_000, payload)
    files = read_metadata(tmp_path / "dur")["files"]
    assert [f["message_count"] for f in files] == [25, 25, 25, 25, 1]
    assert [f["path"] for f in files] == [f"dur_{i}.mcap" for i in range(5)]


def test_writer_rejects_unknown_type_existing_bag_and_unregistered_topic(tmp_path):
    writer = BagWriter(tmp_path / "bag")
    with pytest.raises(BagError, match="topic /x: unknown message type 'my_pkg/msg/Nope'"):
        writer.add_topic("/x", "my_pkg/msg/Nope")
    with pytest.raises(BagError, match="topic /y was not added"):
        writer.write("/y", T0, b"")
    writer.close()
    with pytest.raises(BagError, match="exists already"):
        BagWriter(tmp_path / "bag")


def test_custom_type_with_definition_is_recorded_and_readable(tmp_path):
    with BagWriter(tmp_path / "bag") as writer:
        writer.add_topic("/custom", "my_pkg/msg/Pair", msgdef="float64 a\nfloat64 b\n")
        writer.write("/custom", T0, bytes.fromhex("00010000") + np.array([1.5, -2.0]).tobytes())
    with BagReader(tmp_path / "bag") as reader:
        (_, _, _, msg), = list(reader.messages(["/custom"]))
    assert (msg.a, msg.b) == (1.5, -2.0)


def test_bad_bags_give_errors_naming_the_bag(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "missing")
    (tmp_path / "nometa").mkdir()
    with pytest.raises(BagError, match="no metadata.yaml .*bag-recover"):
        BagReader(tmp_path / "nometa")
    bag = write_bag(tmp_path / "trunc", control_log(n_states=20), {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]})
    data = (bag / "trunc_0.mcap").read_bytes()
    (bag / "trunc_0.mcap").write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=r"bag .*trunc cannot be opened.*bag-recover"):
        with BagReader(bag):
            pass
    (bag / "metadata.yaml").write_text(yaml.safe_dump({"nothing": 1}))
    with pytest.raises(BagError, match="trunc"):
        with BagReader(bag):
            pass


def test_metadata_that_disagrees_with_storage_is_an_error_not_a_short_read(tmp_path):
    bag = write_bag(tmp_path / "bag", control_log(n_states=10), {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]})
    path = bag / "metadata.yaml"
    data = yaml.safe_load(path.read_text())
    data["rosbag2_bagfile_information"]["topics_with_message_count"][0]["topic_metadata"]["offered_qos_profiles"][0][
        "depth"] = 99  # the reader now matches no MCAP channel for this topic
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BagError, match=f"read {STATES}: 0 of 10 messages the metadata lists"):
        with BagReader(bag) as reader:
            list(reader.raw_messages([STATES, COMMANDS]))


def test_qos_is_fixed_by_the_first_message(tmp_path):
    with BagWriter(tmp_path / "bag") as writer:
        writer.add_topic(COMMANDS, TYPES[COMMANDS])
        assert writer.set_qos(COMMANDS, [reliable_qos(depth=5)])
        writer.write(COMMANDS, T0, bytes(STORE.serialize_cdr(command(np.zeros(7)), TYPES[COMMANDS])))
        assert not writer.set_qos(COMMANDS, [reliable_qos(depth=6)])
    topic = read_metadata(tmp_path / "bag")["topics_with_message_count"][0]["topic_metadata"]
    assert topic["offered_qos_profiles"][0]["depth"] == 5
    with BagReader(tmp_path / "bag") as reader:
        assert len(list(reader.raw_messages([COMMANDS]))) == 1
