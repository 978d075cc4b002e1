"""`sim2real study transfer|vision ...`: grids of tasks on the cluster, one report each."""
from __future__ import annotations

import argparse

from sim2real_core.cluster import add_cluster_arguments
from sim2real_core.sim.reality import DEFAULT_REALITY

HELP = ("studies over grids of tasks on the cluster: transfer (training distributions x reality proxies x seeds), "
        "vision (the puck located from the camera, with and without visual randomization)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real study`."""
    sub = parser.add_subparsers(dest="study", required=True, metavar="STUDY")
    transfer = sub.add_parser("transfer", help="train every distribution with N seeds per proxy, evaluate each policy "
                                               "on its proxy, report with intervals and paired differences")
    transfer.add_argument("--out", required=True, help="output folder (every node's, on a cluster of machines)")
    transfer.add_argument("--reality", default=DEFAULT_REALITY, help="reality profiles, comma-separated")
    transfer.add_argument("--distributions", default="none,uniform,dropo,edropo,sysid,oracle",
                          help="training distributions, comma-separated (none, uniform, dropo, edropo, sysid, oracle; "
                               "also adr: automatic domain randomization; active: active domain randomization; "
                               "memory: a memory policy under the parameter box)")
    transfer.add_argument("--seeds", type=int, default=3, help="PPO seeds per row")
    transfer.add_argument("--quick", action="store_true", help="the demo's quick budgets")
    add_cluster_arguments(transfer)
    vision = sub.add_parser("vision", help="locate the puck from the workspace camera with networks trained with and "
                                           "without visual randomization; score both on the proxies' hidden looks")
    vision.add_argument("--out", required=True, help="output folder (every node's, on a cluster of machines)")
    vision.add_argument("--reality", default=DEFAULT_REALITY,
                        help="reality profiles whose looks score the networks, comma-separated")
    vision.add_argument("--seeds", type=int, default=3, help="seeds (images and network initialisations)")
    vision.add_argument("--images", type=int, default=1500, help="training images per network")
    vision.add_argument("--test-images", type=int, default=300, help="held-out images per look")
    vision.add_argument("--epochs", type=int, default=30, help="training epochs")
    add_cluster_arguments(vision)


def run(args: argparse.Namespace) -> int:
    """Run the study and print where the report is."""
    from sim2real.pipeline.transfer import run_transfer_study
    from sim2real.studies.puck_vision import run_vision_study
    from sim2real_core.cluster import cluster_from_arguments

    if args.study == "vision":
        with cluster_from_arguments(args) as cluster:
            results = run_vision_study(args.out, args.reality.split(","), seeds=args.seeds, images=args.images,
                                       test_images=args.test_images, epochs=args.epochs, cluster=cluster)
        print(f"wrote {args.out}/vision.md" + (f"; {len(results['failed'])} seeds failed" if results["failed"] else ""))
        return 0
    with cluster_from_arguments(args) as cluster:
        results = run_transfer_study(args.out, args.reality.split(","), tuple(args.distributions.split(",")),
                                     seeds=args.seeds, quick=args.quick, cluster=cluster)
    print(f"wrote {args.out}/transfer.md" + (f"; {len(results['failed'])} cells failed" if results["failed"] else ""))
    return 0
