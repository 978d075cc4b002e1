"""policy_server at 1 kHz over real DDS (latency, missed periods), with a memoryless and a memory policy.

Prints, for a reach-sized policy without memory and then the same with the reach task's memory (its last K joint
state/action pairs, `observation.history`), commands/s received vs states/s sent at a 1 kHz target, latency
p50/p99/max (state stamp -> command publish, measured by the node), missed-period rate, safety counters; then the
memory policy's latency p99 as a ratio of the memoryless one's in the same run. (Training speed: bench_training.py.)
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from sim2real_core.policy.policy_file import ActionHead, PolicySpec, save_policy
from sim2real_core.policy.serving import robot_joints_and_period
from sim2real_ros import contract
from sim2real_ros.messages import diagnostic_values, joint_state_msg
from sim2real_ros.runner import resolve_executable
from sim2real_ros.stack import NodeSpec

RATE_HZ = 1000.0
SECONDS = 10.0


def serving_policy(folder: Path, joints: list[str], history: int = 0) -> Path:
    """A reach-sized policy (joint_state_v1 + 3 goal inputs, 64x64 MLP, `history` pairs of memory) with random
    weights."""
    n = len(joints)
    head = ActionHead(mode="joint_target_pd", scale=[0.3] * n, center=[0.0] * n, kp=[30.0] * n, kd=[3.0] * n)
    width = 2 * n + 3 + history * 3 * n  # the observation, then each (joint state, action) pair of memory
    spec = PolicySpec(layout="joint_state_v1", obs_size=2 * n + 3, obs_mean=[0.0] * width, obs_std=[1.0] * width,
                      hidden=[64, 64], action=head, joint_names=joints,
                      extra_inputs=[{"name": "goal", "size": 3, "default": [0.5, 0.0, 0.4]}], history=history)
    rng = np.random.default_rng(0)
    return save_policy(folder, spec, {k: 0.1 * rng.normal(size=s) for k, s in spec.layer_shapes().items()})


def bench_server(history: int = 0) -> dict:
    """Stream states to a policy_server serving a policy with `history` pairs of memory; print and return its last
    diagnostics."""
    joints, _ = robot_joints_and_period("fr3")
    with tempfile.TemporaryDirectory() as tmp:
        spec = NodeSpec(name="policy_server", package="sim2real_ros", executable="policy_server",
                        parameters={"policy_path": str(serving_policy(Path(tmp) / "p", joints, history)),
                                    "rate_hz": RATE_HZ, "watchdog_periods": 50, "diagnostics_period": 1.0})
        params = Path(tmp) / "params.yaml"
        params.write_text(yaml.safe_dump(spec.params_file_content()))
        command = [str(resolve_executable(spec.package, spec.executable)), *spec.ros_arguments(params)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        rclpy.init()
        node = rclpy.create_node("bench_policy_server")
        try:
            received, diagnostics = [0], []
            node.create_subscription(Float64MultiArray, contract.EFFORT_COMMANDS,
                                     lambda m: received.__setitem__(0, received[0] + 1), contract.CONTROL_QOS)
            node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS,
                                     lambda m: diagnostics.extend(diagnostic_values(s) for s in m.status),
                                     contract.EVENT_QOS)
            states = node.create_publisher(JointState, contract.JOINT_STATES, contract.CONTROL_QOS)
            deadline = time.monotonic() + 30.0

            def matched() -> bool:  # the server subscribes to our states and publishes where we listen
                return states.get_subscription_count() > 0 and node.count_publishers(contract.EFFORT_COMMANDS) > 0

            while not matched() and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.05)
            if not matched():
                raise RuntimeError("policy_server did not match the state and command topics within 30 s")
            q, zeros = np.zeros(len(joints)), np.zeros(len(joints))
            sent, received[0] = 0, 0
            start = time.monotonic()
            next_tick, elapsed = start, None
            # Stream at RATE_HZ for SECONDS, then on until the server's next diagnostics (still streaming,
            # so the numbers are those of a live stream).
            while time.monotonic() - start < SECONDS + 5:
                if elapsed is None and time.monotonic() - start >= SECONDS:
                    elapsed, counted_sent, counted_received = time.monotonic() - start, sent, received[0]
                    diagnostics.clear()
                if elapsed is not None and diagnostics:
                    break
                stamp = node.get_clock().now().to_msg()
                states.publish(joint_state_msg(joints, stamp, q, zeros, zeros))
                sent += 1
                next_tick += 1.0 / RATE_HZ
                while True:
                    rclpy.spin_once(node, timeout_sec=0.0)
                    if time.monotonic() >= next_tick:
                        break
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
            os.killpg(server.pid, signal.SIGINT)
            server.wait(10)
    d = diagnostics[-1] if diagnostics else {}
    print(f"   {f'memory of {history} pairs' if history else 'no memory'}:")
    print(f"   target {RATE_HZ:.0f} Hz for {elapsed:.1f} s: states sent {counted_sent / elapsed:.0f}/s, "
          f"commands received {counted_received / elapsed:.0f}/s (ratio {counted_received / max(counted_sent, 1):.3f})")
    print(f"   latency state stamp -> publish: p50 {float(d.get('latency_p50_ms', 'nan')):.3f} ms, "
          f"p99 {float(d.get('latency_p99_ms', 'nan')):.3f} ms, max {float(d.get('latency_max_ms', 'nan')):.3f} ms "
          f"over {d.get('latency_count', 0)} commands; compute (state callback -> publish) p50 "
          f"{float(d.get('compute_p50_ms', 'nan')):.3f} ms, p99 {float(d.get('compute_p99_ms', 'nan')):.3f} ms")
    print(f"   periods {d.get('periods')}, missed {d.get('missed_periods')} "
          f"(rate {float(d.get('missed_rate', 'nan')):.4f}), interval p99 "
          f"{float(d.get('interval_p99_ms', 'nan')):.3f} ms, fault {d.get('fault')}, "
          f"rate-limited {d.get('rate_limited')}, clipped {d.get('clipped')}")
    return d


def main() -> None:
    """Run the measurement without and with memory; print both and the ratio of their latency p99."""
    from sim2real_core.policy.tasks import task_defaults

    plain = bench_server()
    memory = bench_server(task_defaults("reach").memory_history)
    ratio = float(memory.get("latency_p99_ms", "nan")) / float(plain.get("latency_p99_ms", "nan"))
    print(f"   memory policy latency p99 = {ratio:.2f} x the memoryless policy's")


if __name__ == "__main__":
    main()
