"""Training speed: the batched environments (mujoco.batch) against the old per-environment path.

Prints, for the reach task behind its action head and safety layer, all measured in this run:
  - raw batched stepping: control periods/s with random actions on the batched environments;
  - PPO training steps/s on the same environments with the task's PPO settings, and its ratio to raw;
  - the old path: PPO on a SyncVectorEnv of 8 single environments with the settings used before the batched
    environments, and the new PPO's speed-up over it.
"""
from __future__ import annotations

import time

import numpy as np

from sim2real_core.policy.ppo import PPOConfig, train_ppo
from sim2real_core.policy.tasks import make_task, ppo_defaults

TASK = "reach"
STEPS = 65_536
OLD = {"num_envs": 8, "rollout_steps": 256, "epochs": 10, "minibatch_size": 256}  # the trainer before batching


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


def main() -> None:
    """Measure and print the three speeds and their ratios."""
    task = make_task(TASK, "uniform")
    config = PPOConfig(**{**ppo_defaults(TASK), "seed": 0})
    envs = task.vector(config.num_envs)
    raw = raw_steps_per_second(envs, STEPS)
    ppo, trained = ppo_steps_per_second(envs, config, STEPS)
    envs.close()
    old_config = PPOConfig(**{**ppo_defaults(TASK), **OLD, "seed": 0})
    old_envs = task.vector(old_config.num_envs, batched=False)
    old, old_trained = ppo_steps_per_second(old_envs, old_config, STEPS // 4)
    old_envs.close()
    print(f"   {TASK} under uniform DR (action head + safety layer), {config.num_envs} batched environments:")
    print(f"   raw batched stepping {raw:,.0f} control periods/s (random actions)")
    print(f"   PPO on them          {ppo:,.0f} steps/s over {trained} steps = {ppo / raw:.2f} x raw "
          f"(rollout {config.rollout_steps}, {config.epochs} epochs, minibatch {config.minibatch_size})")
    print(f"   old path             {old:,.0f} steps/s over {old_trained} steps (SyncVectorEnv of "
          f"{old_config.num_envs} single environments, {old_config.rollout_steps}-step rollouts, "
          f"{old_config.epochs} epochs, minibatch {old_config.minibatch_size}): new PPO = {ppo / old:.1f} x old")


if __name__ == "__main__":
    main()
