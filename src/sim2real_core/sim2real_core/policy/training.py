"""Train a task policy with PPO and write it as a policy file with its learning curve."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..figures import plt, save_figure
from .policy_file import Policy, load_policy, save_policy
from .ppo import PPOConfig, TrainResult, load_checkpoint, save_checkpoint, train_ppo
from .tasks import TaskSetup

CHECKPOINT = "checkpoint.safetensors"  # beside every trained policy: what `start=` warm-starts from
CURRICULUM_DISTRIBUTION = "curriculum_distribution.yaml"  # beside a policy trained under ADR or active DR


@dataclass(frozen=True)
class TrainOutcome:
    """Where the policy went, the loaded policy, and the run's numbers."""

    policy_path: Path
    policy: Policy
    result: TrainResult
    seconds: float
    start_steps: int = 0  # steps of the warm start, if any

    @property
    def trained_steps(self) -> int:
        """Environment steps of this run (the warm start's not counted)."""
        return self.result.steps - self.start_steps

    @property
    def steps_per_second(self) -> float:
        """Environment steps of this run per wall-clock second, including PPO updates."""
        return self.trained_steps / self.seconds


def train_policy(task: TaskSetup, steps: int, out: str | os.PathLike, config: PPOConfig = PPOConfig(),
                 progress: bool = True, start: str | os.PathLike | None = None, threads: int = 0) -> TrainOutcome:
    """Train `task` with PPO for `steps` environment steps; write policy, checkpoint, curve.json and curve.png.

    Args:
        threads: simulation threads of batched environments (0: all CPUs; 1 where trainings run side by side).
        start: a folder of an earlier `train_policy` (or its checkpoint file) to fine-tune from. Its policy must
            have the task's action head and observation features: fine-tuning keeps the network, so a head or
            features changed since it was trained would change what its outputs mean.

    Returns:
        The outcome, whose policy is re-read from the written file (what a server would load).
    """
    warm = None
    if start is not None:
        start = Path(start)
        folder = start if start.is_dir() else start.parent
        earlier = load_policy(folder).spec
        if (earlier.action, earlier.features, earlier.history) != (task.head, task.feature_mapping(), task.history):
            raise ValueError(f"cannot fine-tune from {folder}: its action head {earlier.action}, features "
                             f"{earlier.features} and memory of {earlier.history} pairs differ from task "
                             f"{task.name}'s ({task.head}, {task.feature_mapping()}, {task.history}); train it again")
        warm = load_checkpoint(folder / CHECKPOINT if start.is_dir() else start)
    began = time.perf_counter()
    envs = task.vector(config.num_envs, nthread=threads)
    on_update = None
    if hasattr(task.curriculum, "after_update"):  # active DR: its particles follow the policy as it trains

        def on_update(result: TrainResult) -> None:
            spec = task.spec(result.obs_mean, result.obs_std, config.obs_clip, result.model.hidden, {})
            task.curriculum.after_update(Policy(spec, result.model.actor_weights()))
    try:
        result = train_ppo(envs, steps, config, progress=progress, description=f"train {task.name}", start=warm,
                           on_update=on_update)
    finally:
        envs.close()
    seconds = time.perf_counter() - began
    if task.curriculum is not None:  # ADR's grown ranges, or where active DR's particles ended, as a distribution
        task.curriculum.distribution().save(Path(out) / CURRICULUM_DISTRIBUTION)
    training = {"algorithm": "ppo", "steps": result.steps, "seed": config.seed,
                **({task.provenance["distribution"]: task.curriculum.summary()} if task.curriculum is not None
                   else {}),
                **({"warm_start": str(start), "warm_start_steps": warm.steps} if warm is not None else {}),
                "ppo": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
                "final_mean_return": result.curve[-1][1] if result.curve else None}
    spec = task.spec(result.obs_mean, result.obs_std, config.obs_clip, result.model.hidden, training)
    sidecar = save_policy(out, spec, result.model.actor_weights())
    save_checkpoint(result, Path(out) / CHECKPOINT)
    write_curve(Path(out), result, task.name)
    return TrainOutcome(sidecar, load_policy(sidecar), result, seconds, 0 if warm is None else warm.steps)


def write_curve(out: Path, result: TrainResult, title: str) -> Path:
    """curve.json (steps, mean return[, success rate]) and curve.png in `out`; returns the PNG path."""
    (out / "curve.json").write_text(json.dumps({"return": result.curve, "success": result.successes}))
    fig, axes = plt.subplots(1, 2 if result.successes else 1, figsize=(10 if result.successes else 5, 3.5),
                             squeeze=False)
    if result.curve:
        steps, values = zip(*result.curve)
        axes[0, 0].plot(steps, values)
    axes[0, 0].set(xlabel="environment steps", ylabel="mean episode return", title=f"{title}: PPO")
    if result.successes:
        steps, values = zip(*result.successes)
        axes[0, 1].plot(steps, values)
        axes[0, 1].set(xlabel="environment steps", ylabel="success rate", ylim=(-0.02, 1.02))
    save_figure(fig, out / "curve.png", dpi=100)
    return out / "curve.png"
