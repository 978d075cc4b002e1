"""Training speed: the batched environments (mujoco.batch) against the old per-environment path.

Prints, for the reach task behind its action head and safety layer, all measured in this run:
  - raw batched stepping: control periods/s with random actions on the batched environments;
  - PPO training steps/s on the same environments with the task's PPO settings, and its ratio to raw;
  - the old path: PPO on a SyncVectorEnv of 8 single environments with the settings used before the batched
    environments, and the new PPO's speed-up over it. It runs today's kernel and PPO code, so it shares their
    speed-ups;
  - the trainer as it was when issue 14 set the targets (ISSUE_REVISION, the last commit before the batched
    environments), on the same task and distribution: its source is taken from git into a temporary folder and run
    in a subprocess (the same Python environment), and the new PPO's speed-up over it.
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

import numpy as np

from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.tasks import make_task, ppo_defaults

TASK = "reach"
DISTRIBUTION = "uniform"
STEPS = 65_536
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


def issue_time_steps_per_second(steps: int) -> tuple[float, int, int] | str:
    """(PPO steps/s, steps trained, environments) of the trainer at ISSUE_REVISION on TASK under DISTRIBUTION, or
    why it could not run (no git history, as in a shallow clone)."""
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", ISSUE_REVISION, "src/sim2real_core", "config"],
                             capture_output=True)
    if archive.returncode:
        return f"git archive {ISSUE_REVISION} failed: {archive.stderr.decode().strip()}"
    with tempfile.TemporaryDirectory() as folder:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(folder, filter="data")
        source = os.path.join(folder, "src", "sim2real_core")
        env = {**os.environ, "SIM2REAL_CONFIG": os.path.join(folder, "config"),
               "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
        run = subprocess.run([sys.executable, "-c", ISSUE_TIME_PPO, source, TASK, DISTRIBUTION, str(steps)], env=env,
                             cwd=folder, capture_output=True, text=True)
    if run.returncode:
        return f"the trainer at {ISSUE_REVISION} failed: {run.stderr.strip().splitlines()[-1:]}"
    speed, trained, envs = run.stdout.split()
    return float(speed), int(trained), int(envs)


def main() -> None:
    """Measure and print the four speeds and their ratios."""
    task = make_task(TASK, DISTRIBUTION)
    config = PPOConfig(**{**ppo_defaults(TASK), "seed": 0})
    envs = task.vector(config.num_envs)
    raw = raw_steps_per_second(envs, STEPS)
    ppo, trained = ppo_steps_per_second(envs, config, STEPS)
    envs.close()
    old_config = PPOConfig(**{**ppo_defaults(TASK), **OLD, "seed": 0})
    old_envs = task.vector(old_config.num_envs, batched=False)
    old, old_trained = ppo_steps_per_second(old_envs, old_config, STEPS // 4)
    old_envs.close()
    issue_time = issue_time_steps_per_second(STEPS // 4)
    print(f"   {TASK} under {DISTRIBUTION} DR (action head + safety layer), {config.num_envs} batched environments:")
    print(f"   raw batched stepping {raw:,.0f} control periods/s (random actions)")
    print(f"   PPO on them          {ppo:,.0f} steps/s over {trained} steps = {ppo / raw:.2f} x raw "
          f"(rollout {config.rollout_steps}, {config.epochs} epochs, minibatch {config.minibatch_size})")
    print(f"   old path             {old:,.0f} steps/s over {old_trained} steps (SyncVectorEnv of "
          f"{old_config.num_envs} single environments, {old_config.rollout_steps}-step rollouts, "
          f"{old_config.epochs} epochs, minibatch {old_config.minibatch_size}): new PPO = {ppo / old:.1f} x old")
    if isinstance(issue_time, str):
        print(f"   trainer at {ISSUE_REVISION} not measured: {issue_time}")
    else:
        speed, steps, envs = issue_time
        print(f"   trainer at {ISSUE_REVISION} {speed:,.0f} steps/s over {steps} steps (issue 14's baseline: its "
              f"SyncVectorEnv of {envs} single environments and settings): new PPO = {ppo / speed:.1f} x")


if __name__ == "__main__":
    main()
