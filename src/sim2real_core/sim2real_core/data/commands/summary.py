"""`sim2real summary PATH`: what a bag or a dataset holds."""
from __future__ import annotations

import argparse
import json

from sim2real_core.data.summary import format_summary, summarize

HELP = "summarise a rosbag2 directory or a transition dataset (topics, rates, gaps, episodes, counts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real summary`."""
    parser.add_argument("path", help="rosbag2 directory, .npz dataset or directory of .npy files")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    """Print the summary."""
    summary = summarize(args.path)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
