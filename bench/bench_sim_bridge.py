"""sim_bridge speed: lockstep control steps through ROS vs in-process, realtime pacing at 1 kHz, batch steps.

Prints:
  - in-process Simulator control steps/s (100 Hz periods, 10 physics steps each) and the batched simulator's
    simulation-steps/s (DROPO-style: many parameter samples per call), with the batch/single ratio;
  - lockstep control steps/s through ROS (this process answers every joint state with a command, the bridge
    steps once per command) and its ratio to in-process steps/s;
  - realtime at 1 kHz: real-time factor (simulated / wall time), publishing jitter (inter-arrival time
    minus 1 ms: std, p99, max) as seen by a subscriber in another process, and the states/s received;
  - realtime at 100 Hz without and with the workspace camera (10 Hz, 160 x 120): the same, and images/s.
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
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from sim2real_core.sim.batch import BatchSimulator
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.simulator import Simulator
from sim2real_ros import contract
from sim2real_ros.messages import command_msg, stamp_to_seconds
from sim2real_ros.runner import resolve_executable
from sim2real_ros.stack import NodeSpec

SECONDS = 5.0
BATCH = 4000
CAMERA = {"camera_rate": 10.0, "camera_width": 160, "camera_height": 120}  # the workspace camera's load


def in_process() -> tuple[float, float]:
    """(single control steps/s, batch simulation-steps/s)."""
    sim = Simulator("fr3_reach", seed=0)
    torque = np.zeros(7)
    sim.step(torque)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        sim.step(torque)
        n += 1
    single = n / (time.perf_counter() - start)
    batch = BatchSimulator("fr3", "fr3_reach", BATCH, control_period=0.01, joints=sim.robot.joint_names)
    batch.set_parameters(Distribution.uniform(sim.space).sample(np.random.default_rng(0), BATCH))
    batch.reset("home")
    torques = np.random.default_rng(1).uniform(-5, 5, (BATCH, 7))
    batch.step(torques)
    start = time.perf_counter()
    for _ in range(3):
        batch.set_observation_state(batch.observation(noise=False))
        batch.step(torques)
    return single, 3 * BATCH / (time.perf_counter() - start)


def start_bridge(tmp: Path, **parameters) -> subprocess.Popen:
    spec = NodeSpec(name="sim_bridge", package="sim2real_ros", executable="sim_bridge", parameters=parameters)
    params = tmp / "sim_bridge.yaml"
    params.write_text(yaml.safe_dump(spec.params_file_content()))
    command = [str(resolve_executable(spec.package, spec.executable)), *spec.ros_arguments(params)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def lockstep(node, tmp: Path) -> float:
    """Control steps/s with a client answering each state with one command."""
    bridge = start_bridge(tmp, clocking="lockstep")
    try:
        count = [0]
        publisher = node.create_publisher(Float64MultiArray, contract.EFFORT_COMMANDS, contract.CONTROL_QOS)
        zero = command_msg(np.zeros(7))

        def on_state(_msg):
            count[0] += 1
            publisher.publish(zero)

        sub = node.create_subscription(JointState, contract.JOINT_STATES, on_state, contract.CONTROL_QOS)
        reset = node.create_client(Trigger, "/sim_bridge/reset_world")
        if not reset.wait_for_service(timeout_sec=30.0):
            raise RuntimeError("sim_bridge did not start within 30 s")
        deadline = time.monotonic() + 30.0
        while count[0] < 10 and time.monotonic() < deadline:  # a reset state starts the command loop
            future = reset.call_async(Trigger.Request())
            end = time.monotonic() + 1.0
            while not future.done() and time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.01)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.01)
        count[0] = 0
        start = time.monotonic()
        while time.monotonic() - start < SECONDS:
            rclpy.spin_once(node, timeout_sec=0.1)
        rate = count[0] / (time.monotonic() - start)
        node.destroy_subscription(sub)
        node.destroy_publisher(publisher)
        node.destroy_client(reset)
        return rate
    finally:
        stop(bridge)


def realtime(node, tmp: Path, rate: float = 1000.0, **camera) -> dict[str, float]:
    """Realtime bridge at `rate` Hz (with camera parameters, if given): RTF, jitter and received rates, seen from
    this process."""
    bridge = start_bridge(tmp, clocking="realtime", rate=rate, **camera)
    try:
        arrivals: list[tuple[float, float]] = []
        images = [0]
        states = node.create_subscription(
            JointState, contract.JOINT_STATES,
            lambda m: arrivals.append((time.monotonic(), stamp_to_seconds(m.header.stamp))), contract.CONTROL_QOS)
        frames = node.create_subscription(Image, contract.CAMERA_IMAGE, lambda _: images.__setitem__(0, images[0] + 1),
                                          contract.CONTROL_QOS)
        deadline = time.monotonic() + 30.0
        while (len(arrivals) < 100 or (camera and images[0] < 3)) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        arrivals.clear()
        images[0] = 0
        start = time.monotonic()
        while time.monotonic() - start < SECONDS:
            rclpy.spin_once(node, timeout_sec=0.01)
        node.destroy_subscription(states)
        node.destroy_subscription(frames)
        data = np.array(arrivals)
        wall, stamps = data[:, 0], data[:, 1]
        jitter = np.diff(wall) - 1.0 / rate
        return {"rtf": (stamps[-1] - stamps[0]) / (wall[-1] - wall[0]), "states_per_s": len(data) / SECONDS,
                "images_per_s": images[0] / SECONDS,
                "jitter_std_ms": 1e3 * jitter.std(), "jitter_p99_ms": 1e3 * np.percentile(np.abs(jitter), 99),
                "jitter_max_ms": 1e3 * np.abs(jitter).max()}
    finally:
        stop(bridge)


def main() -> None:
    single, batch = in_process()
    print(f"   in-process Simulator: {single:,.0f} control steps/s (100 Hz periods, 10 physics steps each)")
    print(f"   BatchSimulator ({BATCH} parameter samples): {batch:,.0f} sim-steps/s = {batch / single:.2f} x single")
    rclpy.init()
    node = rclpy.create_node("bench_sim_bridge")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ros = lockstep(node, Path(tmp))
            print(f"   lockstep through ROS: {ros:,.0f} control steps/s = {ros / single:.3f} x in-process "
                  f"({ros / 100:.1f} x real time at 100 Hz)")
            rt = realtime(node, Path(tmp))
            print(f"   realtime at 1 kHz: RTF {rt['rtf']:.3f}, {rt['states_per_s']:.0f} states/s received, "
                  f"jitter std {rt['jitter_std_ms']:.3f} ms, p99 {rt['jitter_p99_ms']:.3f} ms, "
                  f"max {rt['jitter_max_ms']:.2f} ms")
            for label, camera in (("without the camera", {}), (f"with the camera at {CAMERA['camera_rate']:g} Hz, "
                                                              f"{CAMERA['camera_width']}x{CAMERA['camera_height']}",
                                                              CAMERA)):
                rt = realtime(node, Path(tmp), 100.0, **camera)
                print(f"   realtime at 100 Hz {label}: RTF {rt['rtf']:.3f}, {rt['states_per_s']:.1f} states/s, "
                      f"{rt['images_per_s']:.1f} images/s received, jitter p99 {rt['jitter_p99_ms']:.2f} ms, "
                      f"max {rt['jitter_max_ms']:.2f} ms")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
