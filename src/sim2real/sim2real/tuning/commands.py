"""`sim2real tuning-study --out DIR`: performance-driven sim tuning on the MDP and LQR validation settings."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real.tuning.study import (
    accuracy_table_markdown,
    accuracy_vs_performance_study,
    lqr_cmaes_study,
    lqr_study,
    mdp_study,
    plot_study,
    study_table_markdown,
)
from sim2real_core.cluster import add_cluster_arguments, cluster_from_arguments

HELP = "tune sim parameters for real return (3-state MDP, LQR; sensitivity gradient and CMA-ES): tables + plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real tuning-study`."""
    parser.add_argument("--out", required=True, help="output directory (tuning_study.md, .json, *.png)")
    parser.add_argument("--seeds", type=int, default=5,
                        help="randomised starts per setting, and real MDPs of the accuracy comparison (default 5)")
    parser.add_argument("--mdp-iterations", type=int, default=40, help="outer iterations, MDP (default 40)")
    parser.add_argument("--lqr-iterations", type=int, default=60, help="outer iterations, LQR (default 60)")
    parser.add_argument("--cmaes-budget", type=int, default=150,
                        help="target evaluations per CMA-ES run on LQR (default 150)")
    add_cluster_arguments(parser)  # each seed's run is a task on the cluster


def run(args: argparse.Namespace) -> int:
    """Run the studies; write a markdown report, the histories as JSON and one plot per convergence study."""
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    with cluster_from_arguments(args) as cluster:
        studies = {
            "mdp": (mdp_study(args.seeds, args.mdp_iterations, cluster=cluster), "outer iteration"),
            "lqr": (lqr_study(args.seeds, args.lqr_iterations, cluster=cluster), "outer iteration"),
            "lqr_cmaes": (lqr_cmaes_study(args.seeds, args.cmaes_budget, cluster=cluster), "target evaluations"),
        }
        accuracy = accuracy_vs_performance_study(tuple(range(args.seeds)), args.mdp_iterations, cluster=cluster)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = ["# Performance-driven simulator tuning (arXiv 2510.17709 validation settings)", ""]
    for name, (study, xlabel) in studies.items():
        plot_study(study, out / f"tuning_{name}.png", xlabel)
        sections += [study_table_markdown(study), "", f"![{name}](tuning_{name}.png)", ""]
    sections += [accuracy_table_markdown(accuracy), ""]
    report = "\n".join(sections)
    (out / "tuning_study.md").write_text(report)
    results = {k: v[0] for k, v in studies.items()} | {"accuracy_vs_performance": accuracy}
    (out / "tuning_study.json").write_text(json.dumps(results, indent=1) + "\n")
    print(report)
    print(f"wrote {out / 'tuning_study.md'}, {out / 'tuning_study.json'} and the tuning_*.png plots")
    return 0
