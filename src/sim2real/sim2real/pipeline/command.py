"""`sim2real demo [--quick] --out DIR`: the end-to-end pipeline on the reality proxy, with its report."""
from __future__ import annotations

import argparse

from sim2real.pipeline.plan import ROBOT_SIDES, STAGES
from sim2real_core.cluster import add_cluster_arguments

HELP = "reality proxy over ROS -> exploration data -> fits -> policies per distribution -> deployment -> report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real demo`."""
    parser.add_argument("--out", required=True, help="output folder (bag, dataset, fits, policies, report.md)")
    parser.add_argument("--quick", action="store_true",
                        help="the small budget (about 3 minutes) instead of the full one")
    parser.add_argument("--reality", help="reality profile in config/reality, or a reality YAML "
                                          "(default: the plan's, config/pipeline/demo.yaml)")
    parser.add_argument("--progressive", action="store_true",
                        help="progressive transfer: also fine-tune the fitted-DR policy on the target (adapt stage) "
                             "and report each stage's target return")
    parser.add_argument("--survey", action="store_true",
                        help="also the survey's rows (ADR, active DR, a memory policy, SimOpt with its counted target "
                             "episodes) and the vision stage (the workspace camera with and without visual "
                             "randomization)")
    parser.add_argument("--robot-side", choices=ROBOT_SIDES, default=ROBOT_SIDES[0],
                        help="proxy: collect and deploy on the 100 Hz reality proxy (default); franka: on its "
                             "franka_ros2 emulation at 1 kHz, through the hardware stacks (collect_real, the command "
                             "supervisor)")
    parser.add_argument("--seeds", type=int, help="PPO seeds per row (default: the budget's train.seeds); the report "
                                                   "gives means with 95%% intervals across seeds and episodes")
    parser.add_argument("--from", dest="start", default=STAGES[0], choices=STAGES,
                        help="start at this stage, reusing the earlier stages' results in --out")
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the pipeline and print where the report is."""
    from sim2real.pipeline.demo import run_demo  # torch and MuJoCo load only when the demo runs
    from sim2real_core.cluster import cluster_from_arguments

    result = run_demo(args.out, quick=args.quick, reality=args.reality, start=args.start,
                      progressive=args.progressive, survey=args.survey, robot_side=args.robot_side, seeds=args.seeds,
                      cluster=cluster_from_arguments(args))
    print(f"report: {result.results['report']}")
    return 0
