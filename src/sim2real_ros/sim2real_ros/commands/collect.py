"""`sim2real collect`: exploration data from the franka_ros2 emulation, collected as an operator does on the arm."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real_core.sim.reality import DEFAULT_REALITY

HELP = "collect exploration episodes on the franka emulation (collect_real + franka_proxy) into a bag"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real collect`."""
    parser.add_argument("policies", nargs="*", help="exploration policy folders (e.g. out/explore); none only with "
                                                   "--random-action-prob 1 (random torques alone)")
    parser.add_argument("--bag", required=True, help="bag folder to write (must not exist)")
    parser.add_argument("--reality", default=DEFAULT_REALITY,
                        help=f"reality profile in config/reality (default {DEFAULT_REALITY})")
    parser.add_argument("--episodes", type=int, default=16, help="episodes (default 16)")
    parser.add_argument("--episode-steps", type=int, default=300, help="control periods per episode (default 300)")
    parser.add_argument("--random-action-prob", type=float, default=0.3,
                        help="probability of a random-torque episode step (default 0.3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dispatcher and the emulation (default 0)")
    parser.add_argument("--logs", help="keep the nodes' parameter files and logs in this folder (default: discarded)")
    parser.add_argument("--json", help="also write the summary (bag, steps and fault per episode) to this JSON file")


def run(args: argparse.Namespace) -> int:
    """Collect, then print one line per episode."""
    from ..collect_over_ros import collect_over_ros

    if Path(args.bag).exists():
        raise ValueError(f"--bag {args.bag} exists: choose a new folder (a bag is never overwritten)")
    result = collect_over_ros(args.policies, args.bag, args.episodes, args.episode_steps, args.random_action_prob,
                              reality=args.reality, seed=args.seed, workdir=Path(args.logs) if args.logs else None)
    summary = result.summary()
    for number, (steps, fault) in enumerate(zip(summary["steps"], summary["faults"])):
        print(f"episode {number}: {steps} steps, fault {fault or 'none'}")
    print(f"bag: {result.bag}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0
