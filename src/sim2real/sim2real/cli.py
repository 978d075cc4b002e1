"""The `sim2real` command: one subcommand per job, each in its own module.

A command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from sim2real_core.config import ConfigError

COMMANDS = {
    "up": "sim2real_ros.commands.up",
    "franka-bringup": "sim2real_ros.commands.franka_bringup",
    "demo": "sim2real.pipeline.command",
    "train": "sim2real_core.policy.commands.train",
    "eval": "sim2real_ros.commands.eval",
    "collect": "sim2real_ros.commands.collect",
    "dataset": "sim2real_core.data.commands.dataset",
    "summary": "sim2real_core.data.commands.summary",
    "bag-recover": "sim2real_core.data.commands.bag_recover",
    "lock-study": "sim2real.studies.lock_command",
    "explore-train": "sim2real_core.explore.train_command",
    "tuning-study": "sim2real.tuning.commands",
    "arm-tuning": "sim2real.tuning.arm_command",
    "fit": "sim2real_core.fit.commands.fit",
    "fit-study": "sim2real.studies.fit_command",
    "study": "sim2real.pipeline.study_command",
    "simopt": "sim2real_core.randomization.commands.simopt",
}


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with the given subcommands (all registered ones by default)."""
    parser = argparse.ArgumentParser(prog="sim2real", description="Sim-to-real deployment stack for the Franka FR3.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands or COMMANDS:
        module = importlib.import_module(COMMANDS[name])
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sim2real` executable."""
    argv = sys.argv[1:] if argv is None else argv
    # Import only the chosen command's module: command modules may pull in torch, matplotlib, MuJoCo.
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"sim2real {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
