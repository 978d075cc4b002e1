"""`sim2real eval POLICY`: a policy file's return and success rate, with 95 % confidence intervals.

Lives in the ROS package because its --over-ros path runs the policy server against the sim bridge over DDS;
the in-process path is sim2real_core.policy.evaluation.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real_core.policy.evaluation import evaluate
from sim2real_core.policy.policy_file import load_policy
from sim2real_core.policy.tasks import make_task
from sim2real_core.sim.reality import DEFAULT_REALITY

HELP = "evaluate a policy file on the simulator (nominal) or on the reality proxy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real eval`."""
    parser.add_argument("policy", help="policy folder or its policy.yaml")
    parser.add_argument("--target", choices=["sim", "reality", "franka"], default="sim",
                        help="sim: nominal simulator parameters; reality: the reality proxy (default sim); franka "
                             "(--over-ros only): the reality proxy behind the franka_ros2 emulation at 1 kHz")
    parser.add_argument("--reality", default=DEFAULT_REALITY,
                        help=f"reality profile in config/reality (default {DEFAULT_REALITY})")
    parser.add_argument("--episodes", type=int, default=20, help="episodes (default 20)")
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first episode (default 1000)")
    parser.add_argument("--over-ros", action="store_true",
                        help="run policy_server and sim_bridge as processes over DDS (reach policies; judged by "
                             "final end-effector distance and success, no returns)")
    parser.add_argument("--json", help="also write the summary to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Evaluate in process (action head and safety layer as the server applies them), or over DDS."""
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.target == "franka" and not args.over_ros:
        raise ValueError("--target franka is the franka_ros2 emulation over DDS: add --over-ros")
    if args.over_ros:
        from ..eval_over_ros import evaluate_over_ros

        ros = evaluate_over_ros(args.policy, args.target, args.episodes, args.seed, reality=args.reality)
        print(ros.describe(f"{args.policy} on reach, {args.target} over DDS"))
        if args.json:
            Path(args.json).write_text(json.dumps({"policy": str(args.policy), "target": args.target,
                                                   "over_ros": True, **ros.summary()}, indent=2))
        return 0
    policy = load_policy(args.policy)
    name = policy.spec.training.get("task")
    if not name:
        raise ValueError(f"{policy.source}: the sidecar names no training.task to evaluate on")
    task = make_task(str(name), "none", reality=args.reality if args.target == "reality" else None)
    result = evaluate(policy, task.make_env, args.episodes, args.seed, safety=task.safety, period=task.control_period)
    target = "simulator (nominal)" if args.target == "sim" else f"reality proxy ({args.reality})"
    print(result.describe(f"{policy.source} on {name}, {target}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"policy": str(policy.source), "target": args.target,
                                               **result.summary()}, indent=2))
    return 0
