"""`sim2real lock-study --out DIR`: combination-lock study, direct versus exploration-policy transfer."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real.studies.combination_lock import lock_study, lock_table_markdown, plot_lock_study

HELP = "combination lock: target episodes to solve, direct transfer vs exploration-policy transfer (table + plot)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real lock-study`."""
    parser.add_argument("--out", required=True, help="output directory (lock_study.md, .json, .png)")
    parser.add_argument("--horizons", type=int, nargs="+", default=list(range(4, 13)), help="lock horizons H")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per horizon (default 5)")
    parser.add_argument("--actions", type=int, default=2, help="actions per step (default 2)")
    parser.add_argument("--zeta", type=float, default=0.5, help="ζ of the direct-transfer ζ-greedy (default 0.5)")
    parser.add_argument("--explore-zeta", type=float, default=0.1,
                        help="random-action probability mixed into the exploration policies (default 0.1)")
    parser.add_argument("--budget", type=int, default=100_000, help="target episodes per run (default 100000)")
    parser.add_argument("--mismatch-steps", type=int, nargs="*",
                        help="steps where the target code differs (default: every step but the first)")


def run(args: argparse.Namespace) -> int:
    """Run the study, write the markdown table, the JSON rows and the plot, print the table."""
    rows = lock_study(horizons=args.horizons, seeds=args.seeds, n_actions=args.actions, zeta=args.zeta,
                      explore_zeta=args.explore_zeta, budget=args.budget, mismatch_steps=args.mismatch_steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = lock_table_markdown(rows)
    (out / "lock_study.md").write_text("# Combination lock: direct vs exploration-policy transfer\n\n" + table + "\n")
    (out / "lock_study.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot_lock_study(rows, out / "lock_study.png")
    print(table)
    print(f"wrote {out / 'lock_study.md'}, {out / 'lock_study.json'}, {out / 'lock_study.png'}")
    return 0
