"""`sim2real fit-study --out DIR`: the fitting consistency / collapse / identifiability study on Hopper, or with
`--proxies` the parameter recovery study on the shipped reality proxies."""
from __future__ import annotations

import argparse

from sim2real_core.cluster import add_cluster_arguments, cluster_from_arguments

HELP = ("run the ODR fitting study (consistency in N, DROPO vs E-DROPO std, non-identifiable parameters), or "
        "parameter recovery on the reality proxies (--proxies)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real fit-study`."""
    parser.add_argument("--out", required=True, help="folder for the study's markdown, YAML and plots")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and fits")
    parser.add_argument("--proxies", nargs="?", const="all", default=None, metavar="P1,P2",
                        help="parameter recovery on these reality proxies (default: every shipped one) with the "
                             "classic and the full family of the arm's space, instead of the Hopper study")
    parser.add_argument("--methods", default="dropo,sysid", help="fitting methods of the proxy study")
    add_cluster_arguments(parser)  # the studies' fits run as tasks on the cluster


def run(args: argparse.Namespace) -> int:
    """Run the study and print where the summary is."""
    with cluster_from_arguments(args) as cluster:
        if args.proxies is not None:
            from sim2real.studies.proxy_recovery import run_proxy_study

            proxies = None if args.proxies == "all" else args.proxies.split(",")
            run_proxy_study(args.out, proxies, tuple(args.methods.split(",")), quick=args.quick, seed=args.seed,
                            cluster=cluster)
            print(f"wrote {args.out}/proxy_study.md")
            return 0
        from sim2real.studies.fit_consistency import run_study

        run_study(args.out, quick=args.quick, seed=args.seed, cluster=cluster)
    print(f"wrote {args.out}/study.md")
    return 0
