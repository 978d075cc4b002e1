"""`sim2real up STACK`: start a stack's nodes as separate processes (ros2 launch stand-in)."""
from __future__ import annotations

import argparse

from sim2real_ros.runner import StackRunner
from sim2real_ros.stack import apply_overrides, available_stacks, in_namespace, load_stack, parse_overrides

HELP = "start the nodes of launch/STACK.launch.py as processes (ros2 launch stand-in); Ctrl-C stops them all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real up`."""
    parser.add_argument("stack", nargs="?", help="stack name (launch/NAME.launch.py), or a path to a flat launch file")
    parser.add_argument("--list", action="store_true", help="list the known stacks and exit")
    parser.add_argument("--respawn", choices=["yes", "no"], help="override every node's respawn flag")
    parser.add_argument("--set", nargs="+", default=[], metavar="NODE.PARAM:=VALUE",
                        help="override node parameters, e.g. sim_bridge.profile:=reality")
    parser.add_argument("--namespace", default="", metavar="NS",
                        help="run every node in this namespace, as franka_ros2's launch namespace (e.g. /left)")
    parser.add_argument("--stop-timeout", type=float, default=5.0,
                        help="seconds a node gets to exit after SIGINT before SIGTERM (default 5)")


def run(args: argparse.Namespace) -> int:
    """Run the stack until its nodes end or SIGINT/SIGTERM arrives."""
    if args.list or not args.stack:
        for name in available_stacks():
            print(f"{name}: {load_stack(name).description}")
        return 0
    respawn = None if args.respawn is None else args.respawn == "yes"
    stack = in_namespace(apply_overrides(load_stack(args.stack), parse_overrides(args.set)), args.namespace)
    return StackRunner(stack, respawn=respawn, stop_timeout=args.stop_timeout).run()
