"""`sim2real fit-study --out DIR`: the fitting consistency / collapse / identifiability study on Hopper."""
from __future__ import annotations

import argparse

HELP = "run the ODR fitting study (consistency in N, DROPO vs E-DROPO std, non-identifiable parameters)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real fit-study`."""
    parser.add_argument("--out", required=True, help="folder for study.md, study.yaml and the plots")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and fits")


def run(args: argparse.Namespace) -> int:
    """Run the study and print where the summary is."""
    from ..study import run_study

    run_study(args.out, quick=args.quick, seed=args.seed)
    print(f"wrote {args.out}/study.md")
    return 0
