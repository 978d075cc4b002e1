"""`sim2real train`: PPO on a task under a randomization distribution; writes a policy file and its curve."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..evaluation import evaluate
from ..ppo import PPOConfig
from ..tasks import make_task, ppo_defaults
from ..training import train_policy

HELP = ("train a policy with PPO under a parameter distribution (none, uniform, oracle, a fitted YAML) or under "
        "automatic domain randomization (adr)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sim2real train`."""
    parser.add_argument("--task", required=True, help="task in config/policy/train.yaml: reach, push, pendulum")
    parser.add_argument("--distribution", default="none",
                        help="per-episode randomization: none | uniform | oracle | FILE.yaml | adr (automatic domain "
                             "randomization: ranges grown from nominal while episodes at their edges succeed) | "
                             "active (active domain randomization: particles that move to where the policy's "
                             "experience differs from the nominal simulator's); both write where they ended to "
                             "curriculum_distribution.yaml (default none)")
    parser.add_argument("--steps", type=int, required=True, help="environment steps to train for")
    parser.add_argument("--out", required=True, help="output folder (policy.yaml, policy.safetensors, curve.png)")
    parser.add_argument("--init", metavar="DIR",
                        help="fine-tune: start from the policy trained into DIR (its checkpoint.safetensors)")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO and the environments (default 0)")
    parser.add_argument("--envs", type=int, help="parallel environments (default: the task's in train.yaml)")
    parser.add_argument("--eval-episodes", type=int, default=20,
                        help="episodes evaluated after training under the training distribution (default 20; 0: none)")
    parser.add_argument("--history", type=int, default=0, metavar="K",
                        help="a memory policy: the network also sees the episode's last K (joint state, action) pairs, "
                             "kept by the policy file and the policy server (default 0: memoryless)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train, write the policy, evaluate it, print where everything went."""
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    task = make_task(args.task, args.distribution, history=args.history)
    settings = ppo_defaults(args.task)
    settings.update(seed=args.seed, **({"num_envs": args.envs} if args.envs else {}))
    config = PPOConfig(**settings)
    outcome = train_policy(task, args.steps, args.out, config, progress=not args.no_progress, start=args.init)
    print(f"policy: {outcome.policy_path} (sha256 {outcome.policy.sha256[:12]})")
    print(f"trained {outcome.trained_steps} steps in {outcome.seconds:.1f} s ({outcome.steps_per_second:.0f} steps/s); "
          f"learning curve: {Path(args.out) / 'curve.png'}")
    if args.eval_episodes > 0:
        result = evaluate(outcome.policy, task.make_env, args.eval_episodes, seed=args.seed + 10_000,
                          safety=task.safety, period=task.control_period)
        (Path(args.out) / "eval.json").write_text(json.dumps(result.summary(), indent=2))
        print(result.describe(f"evaluation under the training distribution ({args.distribution})"))
    return 0

