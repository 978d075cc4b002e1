"""Training speed: the batched environments (mujoco.batch) against the old per-environment path.

Measures, for the reach task behind its action head and safety layer, in ROUNDS rounds of the four measurements one
after another (this machine's speed drifts within minutes, so each round's ratios compare neighbours in time):
  - raw batched stepping: control periods/s with random actions on the batched environments;
  - PPO training steps/s on the same environments with the task's PPO settings, and its ratio to raw;
  - the old path: PPO on a SyncVectorEnv of 8 single environments with the settings used before the batched
    environments, and the new PPO's speed-up over it. It runs today's kernel and PPO code, so it shares their
    speed-ups;
  - the trainer as it was when issue 14 set the targets (ISSUE_REVISION, the last commit before the batched
    environments), on the same task and distribution: its source is taken from git into a temporary folder and run
    in a subprocess (the same Python environment), and the new PPO's speed-up over it.
Prints every round and the median of each ratio over the rounds.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.tasks import make_task, ppo_defaults

TASK = "reach"
DISTRIBUTION = "uniform"
STEPS = 65_536
ROUNDS = 3
OLD = {"num_envs": 8, "rollout_steps": 256, "epochs": 10, "minibatch_size": 256}  # the trainer before batching
ISSUE_REVISION = "0799ab6"  # the trainer when issue 14 was written: train_ppo on single environments
REPOSITORY = Path(__file__).resolve().parents[1]
ISSUE_TIME_PPO = """
import sys, time
import sim2real_core
from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.tasks import make_task, ppo_defaults
assert sim2real_core.__file__.startswith(sys.argv[1]), sim2real_core.__file__
task = make_task(sys.argv[2], sys.argv[3])
config = PPOConfig(**{**ppo_defaults(sys.argv[2]), "seed": 0})
start = time.perf_counter()
result = train_ppo(task.wrapped, int(sys.argv[4]), config, progress=False)
print(result.steps / (time.perf_counter() - start), result.steps, config.num_envs)
"""


def raw_steps_per_second(envs, steps: int) -> float:
    """Control periods per second of `envs` under uniform random actions in [-1, 1]."""
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    periods = steps // envs.num_envs
    start = time.perf_counter()
    for _ in range(periods):
        envs.step(rng.uniform(-1.0, 1.0, envs.action_space.shape).astype(np.float32))
    return periods * envs.num_envs / (time.perf_counter() - start)


def ppo_steps_per_second(envs, config: PPOConfig, steps: int) -> tuple[float, int]:
    """(PPO environment steps per second, steps trained) on `envs`."""
    start = time.perf_counter()
    result = train_ppo(envs, steps, config, progress=False)
    return result.steps / (time.perf_counter() - start), result.steps


def issue_time_source(folder: str) -> str:
    """Write ISSUE_REVISION's core package and config into `folder`; '' when done, else why not (no git history, as
    in a shallow clone)."""
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", ISSUE_REVISION, "src/sim2real_core", "config"],
                             capture_output=True)
    if archive.returncode:
        return f"git archive {ISSUE_REVISION} failed: {archive.stderr.decode().strip()}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return ""


def issue_time_steps_per_second(folder: str, steps: int) -> tuple[float, int]:
    """(PPO steps/s, environments) of the trainer in `folder` (issue_time_source) on TASK under DISTRIBUTION."""
    source = os.path.join(folder, "src", "sim2real_core")
    env = {**os.environ, "SIM2REAL_CONFIG": os.path.join(folder, "config"),
           "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", ISSUE_TIME_PPO, source, TASK, DISTRIBUTION, str(steps)], env=env,
                         cwd=folder, capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"the trainer at {ISSUE_REVISION} failed:\n{run.stderr}")
    speed, _, envs = run.stdout.split()
    return float(speed), int(envs)


def main() -> None:
    """Measure the four speeds ROUNDS times; print every round's speeds and ratios, then the median ratios."""
    task = make_task(TASK, DISTRIBUTION)
    config = PPOConfig(**{**ppo_defaults(TASK), "seed": 0})
    old_config = PPOConfig(**{**ppo_defaults(TASK), **OLD, "seed": 0})
    envs = task.vector(config.num_envs)
    old_envs = task.vector(old_config.num_envs, batched=False)
    print(f"   {TASK} under {DISTRIBUTION} DR (action head + safety layer). PPO: {config.num_envs} batched "
          f"environments, rollout {config.rollout_steps}, {config.epochs} epochs, minibatch {config.minibatch_size}, "
          f"{STEPS} steps; old path: SyncVectorEnv of {old_config.num_envs} single environments, "
          f"{old_config.rollout_steps}-step rollouts, {STEPS // 4} steps; trainer at {ISSUE_REVISION} (issue 14's "
          f"baseline, its own settings), {STEPS // 4} steps")
    print("   round | raw periods/s | PPO steps/s | old path | at " + ISSUE_REVISION +
          " | PPO / raw | PPO / old path | PPO / at " + ISSUE_REVISION)
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        missing = issue_time_source(folder)
        for round_ in range(1, ROUNDS + 1):
            raw = raw_steps_per_second(envs, STEPS)
            ppo, _ = ppo_steps_per_second(envs, config, STEPS)
            old, _ = ppo_steps_per_second(old_envs, old_config, STEPS // 4)
            issue = float("nan") if missing else issue_time_steps_per_second(folder, STEPS // 4)[0]
            ratios.append((ppo / raw, ppo / old, ppo / issue))
            print(f"   {round_} | {raw:,.0f} | {ppo:,.0f} | {old:,.0f} | {issue:,.0f} | {ppo / raw:.2f} | "
                  f"{ppo / old:.1f} | {ppo / issue:.1f}")
    envs.close()
    old_envs.close()
    to_raw, to_old, to_issue = (median(column) for column in zip(*ratios))
    print(f"   median over {ROUNDS} rounds: PPO = {to_raw:.2f} x raw batched stepping (target 0.6), {to_old:.1f} x the "
          f"old path, {to_issue:.1f} x the trainer at {ISSUE_REVISION} (target 5)")
    if missing:
        print(f"   the trainer at {ISSUE_REVISION} was not measured: {missing}")


if __name__ == "__main__":
    main()
