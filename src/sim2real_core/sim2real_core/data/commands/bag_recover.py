"""`sim2real bag-recover BAG`: re-index the MCAP files of a bag whose recorder died; rebuild metadata.yaml."""
from __future__ import annotations

import argparse

from sim2real_core.data.recover import recover_bag

HELP = "rebuild metadata.yaml of a bag (and complete truncated MCAP files) after the recorder was killed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real bag-recover`."""
    parser.add_argument("bag", help="rosbag2 directory with MCAP storage")


def run(args: argparse.Namespace) -> int:
    """Recover and report what was kept and lost per file."""
    report = recover_bag(args.bag)
    for f in report.files:
        if f.complete:
            print(f"{f.path}: complete, {f.messages} messages")
        else:
            print(f"{f.path}: recovered {f.messages} messages ({f.salvaged_from_partial_chunk} from a truncated "
                  f"chunk), {f.chunks_skipped} corrupt chunks skipped, {f.bytes_lost} trailing bytes lost; "
                  f"original kept as {f.damaged_copy}")
    print(f"wrote {report.metadata} ({report.messages} messages)")
    return 0
