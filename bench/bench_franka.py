"""The real-arm path against the franka_ros2 emulation: `sim2real up franka_proxy` + `sim2real up real` (policy
server, command supervisor, logger recording the 1 kHz states), as separate process groups over DDS.

Prints, per trial:
  - joint states/s published by the robot side (1 kHz target) and policy commands/s (100 Hz target), from each
    node's own counters, and the CPU share of every node;
  - after SIGKILL, SIGSTOP or SIGINT of the policy server: the delay until zero torque reaches
    /effort_controller/commands, in ms and as a ratio of the control period (the budget is 2 periods), next to
    the policy server's own command-interval p99 measured in the same run (the jitter the supervisor tolerates).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Float64MultiArray

from sim2real_core.policy.policy_file import ActionHead, PolicySpec, save_policy
from sim2real_ros import contract
from sim2real_ros.domains import claim_ros_domains
from sim2real_ros.messages import diagnostic_values, stamp_to_seconds

PERIOD = 0.01
TRIALS = 3
HOME = [0.0, -0.7853981633974483, 0.0, -2.356194490192345, 0.0, 1.5707963267948966, 0.7853981633974483]


def hold_policy(folder: Path) -> Path:
    """A reach-sized policy whose network outputs zero: a PD holding the home pose."""
    head = ActionHead(mode="joint_target_pd", scale=[0.5] * 7, center=HOME, kp=[100.0] * 4 + [20.0] * 3,
                      kd=[10.0] * 4 + [2.0] * 3)
    spec = PolicySpec(layout="joint_state_v1", obs_size=17, obs_mean=[0.0] * 17, obs_std=[1.0] * 17, hidden=[64, 64],
                      action=head, joint_names=[f"fr3_joint{i}" for i in range(1, 8)],
                      extra_inputs=[{"name": "target", "size": 3, "default": [0.5, 0.0, 0.4]}])
    return save_policy(folder, spec, {k: np.zeros(s) for k, s in spec.layer_shapes().items()})


def up(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """`sim2real up ARGS` in its own process group; its output lines are collected."""
    process = subprocess.Popen([sys.executable, shutil.which("sim2real"), "up", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    return process, lines


def node_pids(lines: list[str]) -> dict[str, int]:
    found = (re.search(r"started (\w+) \(pid (\d+)\)", line) for line in lines)
    return {m.group(1): int(m.group(2)) for m in found if m}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def trial(stop: str, workdir: Path, node) -> dict[str, float]:
    commands: list[tuple[float, bool]] = []
    status: dict[str, dict] = {}

    def on_diagnostics(msg):
        for s in msg.status:
            status[s.name.split(":")[0]] = {**diagnostic_values(s), "_stamp": stamp_to_seconds(msg.header.stamp)}

    subs = [node.create_subscription(Float64MultiArray, "/" + contract.EFFORT_COMMANDS,
                                     lambda m: commands.append((time.monotonic(), bool(np.any(m.data)))),
                                     contract.CONTROL_QOS),
            node.create_subscription(DiagnosticArray, contract.DIAGNOSTICS, on_diagnostics, contract.EVENT_QOS)]
    robot, robot_lines = up("franka_proxy")
    real, real_lines = None, []
    try:
        spin(node, lambda: status.get("franka_proxy", {}).get("robot_mode") == "idle", 60)
        real, real_lines = up("real", "--set", f"policy_server.policy_path:={workdir / 'hold'}",
                              f"transition_logger.output:={workdir / f'bag_{stop}'}")
        spin(node, lambda: sum(nonzero for _, nonzero in commands) > 200, 90)
        start = {k: dict(v) for k, v in status.items()}
        pids = {**node_pids(robot_lines), **node_pids(real_lines)}
        cpu0, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
        spin(node, lambda: status["policy_server"]["_stamp"] > start["policy_server"]["_stamp"] + 3.0, 10)
        cpu = {k: (cpu_seconds(p) - cpu0[k]) / (time.monotonic() - t0) for k, p in pids.items()}
        rate = lambda n, key: (int(status[n][key]) - int(start[n][key])) / (status[n]["_stamp"] - start[n]["_stamp"])  # noqa: E731
        result = {"states_per_s": rate("franka_proxy", "published_states"),
                  "commands_per_s": rate("policy_server", "periods"),
                  "interval_p99_ms": float(status["policy_server"]["interval_p99_ms"]),
                  **{f"cpu_{k}": v for k, v in cpu.items()}}
        stopped = time.monotonic()
        os.kill(pids["policy_server"], getattr(signal, stop))
        spin(node, lambda: any(t > stopped and not nonzero for t, nonzero in commands), 5)
        result["zero_after_ms"] = 1e3 * (min(t for t, nonzero in commands if t > stopped and not nonzero) - stopped)
        if stop == "SIGSTOP":
            os.kill(pids["policy_server"], signal.SIGCONT)
        return result
    finally:
        for process in (real, robot):
            if process is not None:
                process.send_signal(signal.SIGINT)
                process.wait(30)
        for sub in subs:
            node.destroy_subscription(sub)


def spin(node, condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the franka stack did not reach the expected state")
        rclpy.spin_once(node, timeout_sec=0.01)


def main() -> None:
    """Run TRIALS trials per signal and print the rates, CPU shares and zero-torque delays."""
    os.environ.setdefault("ROS_DOMAIN_ID", str(claim_ros_domains(1)[0]))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    rclpy.init()
    node = rclpy.create_node("bench_franka")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        hold_policy(workdir / "hold")
        delays: dict[str, list[float]] = {}
        for stop in ("SIGKILL", "SIGSTOP", "SIGINT") * TRIALS:
            r = trial(stop, workdir, node)
            delays.setdefault(stop, []).append(r["zero_after_ms"])
            cpu = ", ".join(f"{k[4:]} {100 * v:.0f}%" for k, v in r.items() if k.startswith("cpu_"))
            print(f"  {stop:7s}: states {r['states_per_s']:.1f}/s, policy commands {r['commands_per_s']:.1f}/s "
                  f"(interval p99 {r['interval_p99_ms']:.1f} ms); zero torque {r['zero_after_ms']:.1f} ms after "
                  f"the signal = {r['zero_after_ms'] / (1e3 * PERIOD):.2f} periods; CPU {cpu}", flush=True)
    for stop, values in delays.items():
        print(f"  {stop}: zero torque after {np.median(values):.1f} ms median, {max(values):.1f} ms max "
              f"({max(values) / (1e3 * PERIOD):.2f} control periods; budget 2)")
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
