"""`sim2real fit DATA`: fit a parameter distribution to a transition dataset and write its YAML file."""
from __future__ import annotations

import argparse

from ...config import add_model_arguments, model_from_arguments
from ..methods import METHODS
from ..options import FitOptions
from ..systems import SYSTEMS

HELP = "fit a simulator parameter distribution (DROPO, E-DROPO, SysID or uniform) to a transition dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real fit`."""
    parser.add_argument("data", help="transition dataset (.npz, D4RL .hdf5, or a directory of D4RL- or DROPO-style "
                                     ".npy files)")
    parser.add_argument("--method", choices=METHODS, default="dropo", help="fitting method (default dropo)")
    parser.add_argument("--space", required=True, help="parameter space: config/parameter_spaces name or YAML path")
    parser.add_argument("--out", required=True, help="distribution YAML file to write")
    parser.add_argument("--report", metavar="DIR", help="also write plots and a markdown summary here")
    parser.add_argument("--system", choices=SYSTEMS,
                        help="model and observation layout (default: the space's 'model', else the dataset's robot)")
    parser.add_argument("--parameters", help="comma-separated subset of the space to fit (default: every "
                        "parameter that writes the model; noise and delay effects are left out)")
    add_model_arguments(parser, FitOptions)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Load, fit, write the YAML (and the report); print a one-line result per parameter."""
    from tqdm import tqdm

    from ..files import fit_file

    bar = tqdm(desc=f"{args.method}", unit=" iter", disable=args.quiet)

    def progress(row):
        bar.update(1)
        bar.set_postfix(objective=f"{row['objective']:.5g}", evals=row["evaluations"])

    parameters = [n.strip() for n in args.parameters.split(",") if n.strip()] if args.parameters else None
    options = model_from_arguments(FitOptions, args)
    try:
        done = fit_file(args.data, args.method, args.space, args.out, options, system=args.system,
                        parameters=parameters, progress=progress)
    finally:
        bar.close()
    dist = done.result.distribution
    ident = dist.provenance.get("identifiability", {})
    for i, p in enumerate(dist.space):
        note = "" if ident.get(p.name, {}).get("identifiable", True) else "  (not identifiable from this data)"
        print(f"{p.name:24s} mean {dist.mean[i]:.6g} std {dist.std[i]:.3g} [{p.unit}]{note}")
    print(f"{dist.objective['name']} = {dist.objective['value']:.6g}; wrote {done.path}")
    if done.sizing is not None:
        s = done.sizing
        print(f"transitions per evaluation: {s['transitions']} of {s['available']} (chosen from the data: "
              f"{s['evaluations']} evaluations x {s['seconds_per_evaluation']:.2f} s; all of them: "
              f"{s['seconds_per_evaluation_all']:.2f} s each)")
    for line in done.validation.lines() if done.validation is not None else [f"WARNING: {w}" for w in done.warnings]:
        print(line)
    if args.report:
        from ..report import write_report
        print(f"report: {write_report(done.result, done.data, done.predictor, args.report)}")
    return 0
