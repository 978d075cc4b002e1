"""`sim2real arm-tuning`: on the FR3 reach task, fit for accuracy (DROPO) vs tune for return (CMA-ES)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sim2real.tuning.arm import ArmTuningOptions, compare_with_dropo, comparison_markdown, plot_comparison
from sim2real_core.cluster import add_cluster_arguments, cluster_from_arguments
from sim2real_core.config import add_model_arguments, model_from_arguments

HELP = ("FR3 reach: tune the sim for proxy return with CMA-ES at the target-episode budget a DROPO fit cost; "
        "held-out comparison table + plot")

QUICK = {"budget": 4, "episodes_per_candidate": 1, "steps": 1024, "heldout": 3}  # smoke-test sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real arm-tuning`: the files, then one option per ArmTuningOptions field."""
    parser.add_argument("--base", required=True, help="base policy folder (trained by `sim2real train`)")
    parser.add_argument("--dropo", required=True,
                        help="DROPO distribution YAML (the base is fine-tuned on it) or a DROPO-fine-tuned policy "
                             "folder")
    parser.add_argument("--out", required=True, help="output folder (arm_tuning.md, .json, .png, policies)")
    add_model_arguments(parser, ArmTuningOptions)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke-test sizes, overriding the ones above: {QUICK}")
    add_cluster_arguments(parser)  # fine-tunings that do not depend on one another run side by side


def run(args: argparse.Namespace) -> int:
    """Run the comparison; write arm_tuning.md, arm_tuning.json and arm_tuning.png."""
    options = model_from_arguments(ArmTuningOptions, args)
    if args.quick:
        options = options.model_copy(update=QUICK)
    out = Path(args.out)
    with cluster_from_arguments(args) as cluster:
        result = compare_with_dropo(args.base, args.dropo, out, options, progress=print, cluster=cluster)
    plot_comparison(result, out / "arm_tuning.png")
    report = comparison_markdown(result, "arm_tuning.png")
    (out / "arm_tuning.md").write_text(report)
    (out / "arm_tuning.json").write_text(json.dumps(result, indent=1) + "\n")
    print(report)
    print(f"wrote {out / 'arm_tuning.md'}, {out / 'arm_tuning.json'} and {out / 'arm_tuning.png'}")
    return 0
