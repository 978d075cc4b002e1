"""SimOpt's loop on an FR3 task against a reality proxy: train under the distribution, run the policy on the
target, update the distribution toward the target's trajectories, repeat within a budget of target episodes.

Each iteration fine-tunes the policy under the current distribution (PPO, from the previous iteration's policy),
runs it for `target_episodes` episodes on the reality proxy (the target: only its measured joint states are
used), then makes one `simopt_step`: parameter samples roll the same policy out in simulation in closed loop
(rollouts.closed_loop_rollouts) from each target episode's first measured state
with the same task inputs, and the trajectory discrepancy of the first `horizon` periods reweights them. A last
fine-tune under the final distribution gives the SimOpt policy. Every target episode is counted.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..policy.policy_file import Policy, load_policy
from ..policy.ppo import PPOConfig
from ..policy.tasks import make_task, ppo_defaults, wrap
from ..policy.training import train_policy
from ..sim.distributions import Distribution
from .rollouts import RolloutSetup, closed_loop_rollouts
from .simopt import SimOptConfig, simopt_step


@dataclass(frozen=True)
class SimOptLoopConfig:
    """Budget of the loop.

    Args:
      iterations: distribution updates.
      target_episodes: target (proxy) episodes per update.
      horizon: control periods of each episode compared.
      steps: PPO fine-tuning steps per iteration (and for the final policy).
      update: the update's settings (samples, relative-entropy bound, discrepancy weights).
      seed: seeds PPO, the target episodes and the draws.
    """

    iterations: int = 4
    target_episodes: int = 4
    horizon: int = 100
    steps: int = 50_000
    update: SimOptConfig = field(default_factory=lambda: SimOptConfig(samples=16))
    seed: int = 0

    def __post_init__(self):
        for name in ("iterations", "target_episodes", "horizon", "steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SimOpt {name} must be >= 1, got {getattr(self, name)}")


def rollout_setup(task_name: str) -> RolloutSetup:
    """What closed-loop rollouts of an FR3 task need: its parameter space, keyframe, joints, period and limits."""
    task = make_task(task_name, "none")
    env = task.make_env()
    try:
        space, keyframe = env.unwrapped.sim.space, env.unwrapped.config.keyframe
    finally:
        env.close()
    return RolloutSetup(space, keyframe, tuple(task.joint_names), task.control_period, task.safety)


def target_rollouts(policy: Policy, task_name: str, reality: str, episodes: int, horizon: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The policy on the reality proxy: (observations (episodes, horizon + 1, obs_size) as measured, including the
    first; each episode's task inputs are its observations' extra values)."""
    target = make_task(task_name, "none", reality=reality)
    env = wrap(target.make_env(), policy.spec.action, target.safety, target.control_period)
    rows = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            policy.reset()
            seen = [obs]
            for _ in range(horizon):
                obs, _, terminated, truncated, _ = env.step(policy.act(obs))
                if terminated or truncated:
                    raise ValueError(f"a target episode ended after {len(seen)} periods, before the horizon "
                                     f"{horizon}: compare fewer periods")
                seen.append(obs)
            rows.append(seen)
    finally:
        env.close()
    return np.array(rows), np.array([r[0] for r in rows])


def run_simopt(task_name: str, reality: str, prior: Distribution | None, start: str | os.PathLike,
               out: str | os.PathLike, config: SimOptLoopConfig = SimOptLoopConfig(), progress=print,
               threads: int = 0) -> dict:
    """Run the loop from the policy folder `start` under `prior` (None: the task space's whole box; `threads`:
    train_policy's simulation threads);
    write each iteration's distribution and policy, simopt.yaml (the final distribution) and the final policy to
    `out`. Returns the history, the final policy's steps (its start's included) and the PPO steps the loop added."""
    out = Path(out)
    setup = rollout_setup(task_name)
    ppo = PPOConfig(**{**ppo_defaults(task_name), "seed": config.seed})
    dist = Distribution.uniform(setup.space) if prior is None else prior
    policy_dir, history, used, fine_tuned = Path(start), [], 0, 0
    began = time.perf_counter()
    for iteration in range(config.iterations):
        folder = out / f"iteration{iteration}"
        trained = train_policy(make_task(task_name, str(dist.save(folder / "distribution.yaml"))), config.steps,
                               folder / "policy", ppo, progress=False, start=policy_dir, threads=threads)
        fine_tuned += trained.trained_steps
        policy_dir = folder / "policy"
        observed, starts = target_rollouts(trained.policy, task_name, reality, config.target_episodes,
                                           config.horizon, seed=config.seed * 10_000 + used)
        used += config.target_episodes
        n = len(trained.policy.spec.joint_names)
        target = observed[:, 1:, :2 * n]
        scale = target.reshape(-1, 2 * n).std(axis=0) + 1e-3

        def rollout(parameters: np.ndarray) -> np.ndarray:
            return closed_loop_rollouts(load_policy(policy_dir), setup, parameters, starts, config.horizon)

        dist, info = simopt_step(dist, rollout, target, scale, replace(config.update, seed=config.seed), iteration)
        history.append({"iteration": iteration, **info, "target_episodes_so_far": used})
        progress(f"SimOpt iteration {iteration}: discrepancy {info['discrepancy_weighted']:.1f} (mean "
                 f"{info['discrepancy_mean']:.1f}), {used} target episodes ({time.perf_counter() - began:.0f} s)")
    path = dist.save(out / "simopt.yaml")
    final = train_policy(make_task(task_name, str(path)), config.steps, out / "policy", ppo, progress=False,
                         start=policy_dir, threads=threads)
    return {"distribution": str(path), "policy": str(final.policy_path), "target_episodes": used,
            "steps": final.result.steps, "fine_tuned_steps": fine_tuned + final.trained_steps,
            "history": history, "seconds": round(time.perf_counter() - began, 1)}
