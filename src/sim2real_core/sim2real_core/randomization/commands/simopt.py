"""`sim2real simopt`: SimOpt's loop against a reality proxy, from a trained policy and a prior distribution."""
from __future__ import annotations

import argparse

from ...config import save_yaml
from ...sim.distributions import load_distribution
from ...sim.reality import DEFAULT_REALITY
from ..simopt import SimOptConfig
from ..simopt_loop import SimOptLoopConfig, rollout_setup, run_simopt

HELP = ("SimOpt: fine-tune under a distribution, run the policy on a reality proxy, move the distribution toward the "
        "proxy's trajectories; repeat, counting the target episodes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real simopt`."""
    defaults = SimOptLoopConfig()
    parser.add_argument("--start", required=True, help="policy folder to fine-tune from (e.g. a base policy)")
    parser.add_argument("--out", required=True, help="output folder (iterations, simopt.yaml, the final policy)")
    parser.add_argument("--task", default="reach", help="FR3 task in config/policy/train.yaml (default reach)")
    parser.add_argument("--reality", default=DEFAULT_REALITY, help="the target: a reality profile")
    parser.add_argument("--prior", help="distribution YAML to start from (default: the task space's whole box)")
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="distribution updates")
    parser.add_argument("--target-episodes", type=int, default=defaults.target_episodes,
                        help="target episodes per update")
    parser.add_argument("--horizon", type=int, default=defaults.horizon, help="periods of each episode compared")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="PPO steps per iteration")
    parser.add_argument("--samples", type=int, default=defaults.update.samples, help="parameter samples per update")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO, the target episodes and the draws")


def run(args: argparse.Namespace) -> int:
    """Run the loop; print where the distribution, the policy and the history went."""
    prior = load_distribution(args.prior).embed(rollout_setup(args.task).space) if args.prior else None
    config = SimOptLoopConfig(iterations=args.iterations, target_episodes=args.target_episodes, horizon=args.horizon,
                              steps=args.steps, update=SimOptConfig(samples=args.samples), seed=args.seed)
    result = run_simopt(args.task, args.reality, prior, args.start, args.out, config)
    save_yaml(f"{args.out}/simopt_history.yaml", result)
    print(f"distribution: {result['distribution']}; policy: {result['policy']}; {result['target_episodes']} target "
          f"episodes in {result['seconds']:.0f} s")
    return 0
