"""`sim2real explore-train`: train a set of exploration policies in simulation and measure their coverage."""
from __future__ import annotations

import argparse
import time
from dataclasses import fields

from ..policy.policy_file import load_policy
from ..policy.ppo import PPOConfig
from ..policy.tasks import make_task, ppo_defaults
from .coverage import CoverageConfig, compare_coverage
from .diversity import DiversityConfig, train_exploration_policies

HELP = "train K exploration policies (task reward + discriminator diversity bonus) and plot their coverage"
DEFAULTS = DiversityConfig()
COVERAGE = CoverageConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real explore-train`."""
    parser.add_argument("--out", required=True, help="output folder: explore_<i>/ policy files, exploration.json, "
                                                     "coverage.json, coverage.png")
    parser.add_argument("--task", default="reach", help="FR3 task in config/policy/train.yaml (default reach)")
    parser.add_argument("--distribution", default="uniform",
                        help="per-episode randomization: none | uniform | oracle | FILE.yaml (default uniform)")
    parser.add_argument("--k", type=int, default=DEFAULTS.k, help=f"number of policies (default {DEFAULTS.k})")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps,
                        help=f"PPO environment steps per policy (default {DEFAULTS.steps})")
    parser.add_argument("--alpha", type=float, default=DEFAULTS.alpha,
                        help=f"weight of the diversity bonus (default {DEFAULTS.alpha})")
    parser.add_argument("--threshold", type=float, default=DEFAULTS.threshold,
                        help="median task return of the last episodes at which a policy's bonus switches on "
                             f"(default {DEFAULTS.threshold})")
    parser.add_argument("--features", choices=["ee", "joints"], default=DEFAULTS.features,
                        help=f"what the discriminator sees (default {DEFAULTS.features})")
    parser.add_argument("--envs", type=int, help="parallel environments per policy (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--coverage-episodes", type=int, default=COVERAGE.episodes,
                        help=f"episodes per scheme in the coverage comparison (default {COVERAGE.episodes}; 0: skip)")
    parser.add_argument("--random-action-prob", type=float, default=COVERAGE.random_action_prob,
                        help=f"random-action mixing in the coverage runs (default {COVERAGE.random_action_prob})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Train the set, then compare coverage against the task policy (policy 0) and random torques."""
    task = make_task(args.task, args.distribution)
    settings = ppo_defaults(args.task)
    settings.update(seed=args.seed, **({"num_envs": args.envs} if args.envs else {}))
    settings = {k: tuple(v) if k == "hidden" else v for k, v in settings.items()
                if k in {f.name for f in fields(PPOConfig)}}
    config = DiversityConfig(k=args.k, steps=args.steps, alpha=args.alpha, threshold=args.threshold,
                             features=args.features, seed=args.seed)
    start = time.perf_counter()
    trained = train_exploration_policies(task, args.out, config, PPOConfig(**settings), progress=not args.no_progress)
    print(f"trained {config.k} exploration policies in {time.perf_counter() - start:.1f} s; a fresh discriminator "
          f"tells them apart on {trained.summary['distinguishability']:.0%} of held-out states "
          f"(chance {1 / config.k:.0%}):")
    for path, record in zip(trained.policy_paths, trained.summary["policies"]):
        switched = record["bonus_switched_on_at"]
        print(f"  {path}: bonus {'on at step ' + str(switched) if switched is not None else 'never on'}, "
              f"median task return of the last episodes {record['final_task_return']}, "
              f"{record['episodes_cut_short']} episodes cut short")
    if args.coverage_episodes > 0:
        policies = [load_policy(p) for p in trained.policy_paths]
        coverage = CoverageConfig(episodes=args.coverage_episodes, random_action_prob=args.random_action_prob,
                                  seed=args.seed + 50_000)
        report = compare_coverage(policies, policies[0], task.make_env, args.out, coverage)
        for name, measures in report["schemes"].items():
            inside = f" ({measures['task_cells']} in the task region)" if "task_cells" in measures else ""
            print(f"  {name}: {measures['ee_cells']} end-effector cells{inside}, "
                  f"entropy {measures['ee_entropy']:.2f} nats, joint entropy {measures['joint_entropy']:.2f} nats "
                  f"over {measures['states']} states")
        print(f"coverage plot: {trained.out / 'coverage.png'}")
    return 0
