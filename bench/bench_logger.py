"""transition_logger and bag -> dataset speed, against baselines measured in the same run.

Prints:
  - writer: messages/s of BagWriter (split-capable MCAP, metadata v9) vs the raw rosbags MCAP writer on the
    same serialized JointState / command messages (ratio = ours / rosbags);
  - logger over DDS: three publisher processes at 1 kHz each (joint states, commands, a third 1 kHz topic),
    the logger in its own process: published vs recorded per topic (drops), recorded messages/s, the ratio
    of recorded to offered rate, drop bursts and the logger's CPU; baseline: the same publishers into a
    process that only counts (what DDS delivers to any Python subscriber on this machine at this load);
  - conversion: bag -> dataset messages/s vs reading + deserializing the same bag with rosbags AnyReader
    (ratio = conversion / plain read).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import yaml

from sim2real_ros.domains import claim_ros_domains

os.environ.setdefault("ROS_DOMAIN_ID", str(claim_ros_domains(1)[0]))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402

from sim2real_core.data.bagio import BagReader, BagWriter, read_metadata, typestore  # noqa: E402
from sim2real_core.data.convert import bag_to_dataset  # noqa: E402
from sim2real_ros.runner import resolve_executable  # noqa: E402
from sim2real_ros.stack import NodeSpec  # noqa: E402

SECONDS = 5.0
RATE = 1000.0
JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
STATES, COMMANDS, THIRD = "/franka/joint_states", "/effort_controller/commands", "/bench/load"
T0 = 1_700_000_000_000_000_000

PUBLISHER = textwrap.dedent("""
    import sys, time
    import rclpy
    from rclpy.node import Node
    from sim2real_ros import contract
    from sim2real_ros.messages import command_msg, joint_state_msg, seconds_to_stamp
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    topic, kind, seconds, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    rclpy.init()
    node = Node("bench_pub_" + kind)
    pub = node.create_publisher(JointState if kind == "state" else Float64MultiArray, topic, contract.CONTROL_QOS)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    values = [0.1 * j for j in range(7)]
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        if kind == "state":
            pub.publish(joint_state_msg(["fr3_joint%d" % j for j in range(1, 8)], seconds_to_stamp(1.7e9 + n / rate),
                                        values, values, values))
        else:
            pub.publish(command_msg(values))
        n += 1
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    print(n, elapsed, flush=True)
""")


COUNTER = textwrap.dedent("""
    import json, sys
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    rclpy.init()
    node = Node("bench_counter")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    counts = {}
    for topic, cls in zip(sys.argv[1:], (JointState, Float64MultiArray, Float64MultiArray)):
        counts[topic] = 0
        node.create_subscription(cls, topic, lambda data, info, t=topic: counts.__setitem__(t, counts[t] + 1), qos,
                                 raw=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps(counts), flush=True)
""")


def sample_messages(n_states: int) -> list[tuple[str, int, bytes]]:
    """Serialized 1 kHz JointStates plus a command after every state (the logger's load), in log order."""
    store = typestore()
    t = store.types
    out = []
    for i in range(n_states):
        stamp = T0 + i * 1_000_000
        header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](stamp // 10**9, stamp % 10**9), "")
        q = np.full(7, 1e-3 * i)
        state = t["sensor_msgs/msg/JointState"](header, JOINTS, q, q, q)
        cmd = t["std_msgs/msg/Float64MultiArray"](t["std_msgs/msg/MultiArrayLayout"]([], 0), np.full(7, float(i)))
        out.append((STATES, stamp + 100_000, bytes(store.serialize_cdr(state, "sensor_msgs/msg/JointState"))))
        out.append((COMMANDS, stamp + 200_000, bytes(store.serialize_cdr(cmd, "std_msgs/msg/Float64MultiArray"))))
    return out


def writer_speed(tmp: Path, messages) -> tuple[float, float]:
    """(ours msgs/s, rosbags msgs/s) writing the same serialized messages."""
    types = {STATES: "sensor_msgs/msg/JointState", COMMANDS: "std_msgs/msg/Float64MultiArray"}
    start = time.perf_counter()
    with BagWriter(tmp / "ours") as writer:
        for topic, msgtype in types.items():
            writer.add_topic(topic, msgtype)
        for topic, log, data in messages:
            writer.write(topic, log, data)
    ours = len(messages) / (time.perf_counter() - start)
    store = typestore()
    start = time.perf_counter()
    with Writer(tmp / "rosbags", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in types.items()}
        for topic, log, data in messages:
            writer.write(conns[topic], log, data)
    return ours, len(messages) / (time.perf_counter() - start)


def conversion_speed(bag: Path) -> tuple[float, float, int]:
    """(bag_to_dataset msgs/s, AnyReader read+deserialize msgs/s, messages)."""
    start = time.perf_counter()
    data = bag_to_dataset(bag, 0.01)
    convert_s = time.perf_counter() - start
    n = data.metadata["counts"]["state_messages"] + data.metadata["counts"]["command_messages"]
    start = time.perf_counter()
    count = 0
    with AnyReader([bag], default_typestore=typestore()) as reader:
        for connection, _, raw in reader.messages():
            reader.deserialize(raw, connection.msgtype)
            count += 1
    return n / convert_s, count / (time.perf_counter() - start), n


def publish_three() -> dict[str, tuple[int, float]]:
    """Run one 1 kHz publisher process per topic; topic -> (messages published, seconds)."""
    pubs = {topic: subprocess.Popen([sys.executable, "-c", PUBLISHER, topic, kind, str(SECONDS), str(RATE)],
                                    stdout=subprocess.PIPE, text=True)
            for topic, kind in ((STATES, "state"), (COMMANDS, "command"), (THIRD, "command"))}
    published = {}
    for topic, proc in pubs.items():
        out, _ = proc.communicate(timeout=SECONDS + 60)
        n, elapsed = out.split()
        published[topic] = (int(n), float(elapsed))
    return published


def counting_baseline() -> float:
    """The same publishers into a minimal rclpy process that only counts (raw, reliable, depth 1000).

    Returns its CPU seconds per received message.
    """
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, STATES, COMMANDS, THIRD], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    time.sleep(2.0)
    cpu_idle = process_cpu_seconds(counter.pid)
    published = publish_three()
    time.sleep(0.5)
    busy = process_cpu_seconds(counter.pid) - cpu_idle
    os.killpg(counter.pid, signal.SIGINT)
    counts = json.loads(counter.communicate(timeout=30)[0].strip().splitlines()[-1])
    total_pub, total = sum(n for n, _ in published.values()), sum(counts.values())
    print(f"baseline (counting subscriber, same publishers): received/offered ratio {total / total_pub:.4f}; "
          f"drops {total_pub - total}; CPU {1e6 * busy / max(total, 1):.0f} us per message")
    return busy / max(total, 1)


def logger_over_dds(tmp: Path, baseline_cpu: float) -> None:
    """Three 1 kHz publisher processes -> transition_logger process; drops and throughput."""
    spec = NodeSpec(name="transition_logger", package="sim2real_ros", executable="transition_logger", parameters={
        "output": str(tmp / "dds"), "topics": [STATES, COMMANDS, THIRD],
        "topic_types": [f"{THIRD}=std_msgs/msg/Float64MultiArray"]})
    params = tmp / "logger.yaml"
    params.write_text(yaml.safe_dump(spec.params_file_content()))
    logger = subprocess.Popen([str(resolve_executable(spec.package, spec.executable)), *spec.ros_arguments(params)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(2.0)
    cpu_idle = process_cpu_seconds(logger.pid)
    published = publish_three()
    time.sleep(0.5)
    cpu = process_cpu_seconds(logger.pid)
    os.killpg(logger.pid, signal.SIGINT)
    code = logger.wait(30)
    info = read_metadata(tmp / "dds")
    recorded = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    total_pub = sum(n for n, _ in published.values())
    total_rec = sum(recorded.get(t, 0) for t in published)
    span = max(e for _, e in published.values())
    print(f"logger over DDS (exit {code}): offered {total_pub / span:.0f} msgs/s over {span:.1f} s")
    for topic, (n, elapsed) in published.items():
        print(f"   {topic}: published {n} ({n / elapsed:.0f}/s), recorded {recorded.get(topic, 0)}, "
              f"dropped {n - recorded.get(topic, 0)}")
    print(f"   recorded {total_rec / span:.0f} msgs/s; recorded/offered ratio {total_rec / total_pub:.4f}; "
          f"drops {total_pub - total_rec}")
    bursts = drop_bursts(tmp / "dds")
    if bursts:
        print(f"   joint state drops come in {len(bursts)} bursts; longest {max(bursts)} consecutive messages "
              f"({max(bursts) / RATE * 1e3:.0f} ms)")
    busy = cpu - cpu_idle
    print(f"   logger CPU while recording {busy:.2f} s ({1e6 * busy / max(total_rec, 1):.0f} us per message, "
          f"{100 * busy / span:.0f}% of a core, {busy / max(total_rec, 1) / baseline_cpu:.2f} x the counting "
          f"baseline); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def drop_bursts(bag: Path) -> list[int]:
    """Lengths of runs of missing joint states (publisher stamps are 1.7e9 s + i / RATE)."""
    with BagReader(bag) as reader:
        index = sorted(round((m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 - 1.7e9) * RATE)
                       for _, _, _, m in reader.messages([STATES]))
    gaps = np.diff(np.array(index)) - 1
    return [int(g) for g in gaps if g > 0]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        messages = sample_messages(20_000)
        ours, base = writer_speed(tmp, messages)
        print(f"writer: ours {ours:.0f} msgs/s, rosbags MCAP writer {base:.0f} msgs/s, ratio {ours / base:.2f}")
        print(f"   headroom at 3 x 1 kHz: {ours / 3000:.0f}x")
        convert, read, n = conversion_speed(tmp / "ours")
        print(f"conversion: bag_to_dataset {convert:.0f} msgs/s, rosbags read+deserialize {read:.0f} msgs/s, "
              f"ratio {convert / read:.2f} ({n} messages)")
        logger_over_dds(tmp, counting_baseline())


if __name__ == "__main__":
    main()
