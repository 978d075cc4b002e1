"""`sim2real arm-tuning`: on the FR3 reach task, fit for accuracy (DROPO) vs tune for return (CMA-ES)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real.tuning.arm import compare_with_dropo, comparison_markdown, plot_comparison
from sim2real_core.cluster import add_cluster_arguments, cluster_from_arguments
from sim2real_core.sim.reality import DEFAULT_REALITY

HELP = ("FR3 reach: tune the sim for proxy return with CMA-ES at the target-episode budget a DROPO fit cost; "
        "held-out comparison table + plot")

QUICK = {"budget": 4, "episodes_per_candidate": 1, "steps": 1024, "heldout": 3}  # smoke-test sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real arm-tuning`."""
    parser.add_argument("--base", required=True, help="base policy folder (trained by `sim2real train`)")
    parser.add_argument("--dropo", required=True,
                        help="DROPO distribution YAML (the base is fine-tuned on it) or a DROPO-fine-tuned policy "
                             "folder")
    parser.add_argument("--out", required=True, help="output folder (arm_tuning.md, .json, .png, policies)")
    parser.add_argument("--reality", default=DEFAULT_REALITY, help=f"reality-proxy profile (default {DEFAULT_REALITY})")
    parser.add_argument("--budget", type=int, default=16,
                        help="target episodes DROPO's data cost, and so the tuner's budget (default 16)")
    parser.add_argument("--episodes-per-candidate", type=int, default=2,
                        help="target episodes scoring each CMA-ES candidate (default 2)")
    parser.add_argument("--steps", type=int, default=50_000,
                        help="PPO fine-tuning steps per policy, DROPO's and each candidate's (default 50000)")
    parser.add_argument("--heldout", type=int, default=50,
                        help="held-out proxy episodes per policy, outside both budgets (default 50)")
    parser.add_argument("--population", type=int, default=4, help="CMA-ES population (default 4)")
    parser.add_argument("--sigma0", type=float, default=0.5, help="initial CMA-ES step in log factors (default 0.5)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="relative std of a Gaussian around each candidate (default 0: point mass)")
    parser.add_argument("--warm-start", choices=("best", "base"), default="base",
                        help="fine-tune each candidate from the base (default: every policy gets the same training, "
                             "so the table compares simulators) or from the best candidate so far (longer lineages)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the control: the base fine-tuned in the nominal sim for the tuned lineage's steps")
    parser.add_argument("--no-selection", action="store_true",
                        help="skip the selection control: nominal fine-tunings picked with the same target episodes")
    parser.add_argument("--seed", type=int, default=0, help="seed of CMA-ES, PPO and the tuning episodes")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test sizes, overriding the ones above: {QUICK}")
    add_cluster_arguments(parser)  # fine-tunings that do not depend on one another run side by side


def run(args: argparse.Namespace) -> int:
    """Run the comparison; write arm_tuning.md, arm_tuning.json and arm_tuning.png."""
    budget, per, steps, heldout = args.budget, args.episodes_per_candidate, args.steps, args.heldout
    if args.quick:
        budget, per, steps, heldout = (QUICK[k] for k in ("budget", "episodes_per_candidate", "steps", "heldout"))
    out = Path(args.out)
    with cluster_from_arguments(args) as cluster:
        result = compare_with_dropo(args.base, args.dropo, out, dropo_episodes=budget, reality=args.reality,
                                    episodes_per_candidate=per, steps=steps, heldout_episodes=heldout,
                                    population_size=args.population, sigma0=args.sigma0, spread=args.spread,
                                    seed=args.seed, chain=args.warm_start == "best",
                                    control=not args.no_control, selection=not args.no_selection, progress=print,
                                    cluster=cluster)
    plot_comparison(result, out / "arm_tuning.png")
    report = comparison_markdown(result, "arm_tuning.png")
    (out / "arm_tuning.md").write_text(report)
    (out / "arm_tuning.json").write_text(json.dumps(result, indent=1) + "\n")
    print(report)
    print(f"wrote {out / 'arm_tuning.md'}, {out / 'arm_tuning.json'} and {out / 'arm_tuning.png'}")
    return 0
