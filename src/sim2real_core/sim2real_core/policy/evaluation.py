"""Evaluate a policy file on an environment: returns and success rate with 95 % confidence intervals."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import gymnasium as gym
import numpy as np
from scipy import stats

from .policy_file import Policy
from .safety import SafetyLimits
from .tasks import wrap


@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns and successes with their summaries.

    `return_ci` is a bootstrap (BCa) 95 % interval of the mean return; `success_ci` the Wilson 95 % interval of
    the success rate (None when the environment reports no `is_success`).
    """

    returns: list[float]
    successes: list[bool] | None
    mean_return: float
    return_ci: tuple[float, float]
    success_rate: float | None
    success_ci: tuple[float, float] | None

    def summary(self) -> dict:
        """A JSON-friendly summary without the per-episode lists."""
        out = asdict(self)
        out.pop("returns"), out.pop("successes")
        out["episodes"] = len(self.returns)
        return out

    def describe(self, title: str) -> str:
        """One human-readable line."""
        line = (f"{title}: {len(self.returns)} episodes, mean return {self.mean_return:.2f} "
                f"(95% CI {self.return_ci[0]:.2f} .. {self.return_ci[1]:.2f})")
        if self.success_rate is not None:
            line += (f", success {self.success_rate:.2f} "
                     f"(95% Wilson CI {self.success_ci[0]:.2f} .. {self.success_ci[1]:.2f})")
        return line


def evaluate(policy: Policy, env_factory: Callable[[], gym.Env], episodes: int, seed: int = 0,
             safety: SafetyLimits | None = None, period: float = 0.0) -> EvalResult:
    """Run `episodes` deterministic episodes of `policy` on fresh resets of one environment.

    Args:
        policy: a loaded policy file; its action head turns actions into the environment's torque.
        env_factory: creates the raw environment (torque actions), e.g. a task under some distribution.
        episodes: number of episodes (>= 1); episode i resets with seed `seed + i`.
        seed: base seed.
        safety, period: when given, every torque passes a safety layer with this control period, as served.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = wrap(env_factory(), policy.spec.action, safety, period)
    returns, successes = [], []
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            policy.reset()
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy.act(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            if "is_success" in info:
                successes.append(bool(info["is_success"]))
    finally:
        env.close()
    return summarise(returns, successes if len(successes) == episodes else None, seed)


def summarise(returns: list[float], successes: list[bool] | None, seed: int = 0) -> EvalResult:
    """Means and 95 % confidence intervals of per-episode returns and successes."""
    values = np.asarray(returns, dtype=float)
    if len(values) > 1 and np.ptp(values) > 0:
        boot = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=2000,
                               random_state=np.random.default_rng(seed))
        return_ci = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
    else:
        return_ci = (float(values.mean()), float(values.mean()))
    rate = ci = None
    if successes is not None:
        k, n = int(sum(successes)), len(successes)
        interval = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        rate, ci = k / n, (float(interval.low), float(interval.high))
    return EvalResult(returns=[float(v) for v in values], successes=successes, mean_return=float(values.mean()),
                      return_ci=return_ci, success_rate=rate, success_ci=ci)


class ReachJudge:
    """Targets and success of reach episodes judged from measured joint positions alone.

    For runs outside gymnasium (the policy server against the sim bridge over DDS): targets are drawn from the
    task file's box, the end effector follows from forward kinematics of the nominal model, and an episode
    succeeds when its final distance is below the task's success radius (the environment's `is_success`).
    """

    def __init__(self, task: str = "fr3_reach"):
        from ..sim.simulator import Simulator
        from ..sim.tasks import load_task

        self.config = load_task(task)
        if "target" not in self.config.boxes:
            raise ValueError(f"task {task} has no target box: only reach tasks can be judged from joint states")
        self._sim = Simulator()

    def target(self, rng: np.random.Generator) -> np.ndarray:
        """A target position [m] drawn uniformly from the task's box."""
        low, high = self.config.boxes["target"].bounds
        return rng.uniform(low, high)

    def distance(self, q: np.ndarray, target: np.ndarray) -> float:
        """End-effector distance [m] to `target` at joint positions `q`."""
        self._sim.reset(qpos=q)
        return float(np.linalg.norm(self._sim.site_position() - target))

    def success(self, distance: float) -> bool:
        """Whether a final distance counts as reached."""
        return distance < self.config.success_radius
