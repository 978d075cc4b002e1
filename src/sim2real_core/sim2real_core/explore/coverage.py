"""How much of the arm's space a data-collection scheme visits, measured in simulation.

Each scheme runs exactly as the exploration_dispatcher runs it on the target (`dispatch.Dispatcher`: one
policy drawn per episode, random torques mixed in, every command through the safety layer), here on an FR3
task environment under its randomization distribution. Measures over all visited states:

- ``ee_cells``: end-effector positions occupying cells of a `cell`-metre grid (count of distinct cells);
- ``ee_entropy``: entropy (nats) of the end-effector occupancy histogram over those cells;
- ``task_cells``: of those cells, the ones inside the task's region (the reach target box), where the data
  matters most for the task;
- ``joint_entropy``: mean over joints of the entropy (nats) of q in 20 bins across the joint's limits.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import gymnasium as gym
import numpy as np

from ..figures import plt, save_figure
from ..policy.safety import SafetyLayer, load_safety_limits
from .dispatch import DispatchConfig, Dispatcher, TorqueSource

JOINT_BINS = 20


@dataclass(frozen=True)
class CoverageConfig:
    """Episodes per scheme, the dispatcher's random-action mixing, and the grid cell [m].

    random_targets: aim the policies at a reach target drawn per episode from the task's target box (the
    dispatcher's ``extra_inputs_box: fr3_reach.target``); False: their default target.
    """

    episodes: int = 12
    random_action_prob: float = 0.2
    random_torque_fraction: float = 0.1
    cell: float = 0.05
    seed: int = 0
    random_targets: bool = True

    def __post_init__(self):
        if self.episodes < 1 or not self.cell > 0:
            raise ValueError(f"coverage needs episodes >= 1 and cell > 0, got {self.episodes}, {self.cell}")


@dataclass(frozen=True)
class Visits:
    """States visited by one scheme: end-effector positions (n, 3) and joint positions (n, dof)."""

    ee: np.ndarray
    q: np.ndarray


def collect_visits(policies: Sequence[TorqueSource], env_fn: Callable[[], gym.Env], config: CoverageConfig,
                   random_action_prob: float | None = None,
                   extra_box: tuple[Sequence[float], Sequence[float]] | None = None) -> Visits:
    """Run `config.episodes` dispatcher episodes (one policy per episode) on fresh task environments.

    Args:
        policies: the scheme's policies; empty for random torques only (then random_action_prob must be 1).
        env_fn: the raw FR3 task environment (torque actions, e.g. `TaskSetup.make_env`).
        config: episodes, mixing, seed (episode e resets with seed + e, the same layouts for every scheme).
        random_action_prob: overrides config.random_action_prob.
        extra_box: (low, high) from which the policies' extra inputs are drawn per episode.
    """
    env = env_fn()
    robot = env.unwrapped.sim.robot
    prob = config.random_action_prob if random_action_prob is None else random_action_prob
    dispatch = DispatchConfig(episodes=config.episodes, episode_steps=env.unwrapped.episode_steps,
                              random_action_prob=prob, random_torque_fraction=config.random_torque_fraction,
                              seed=config.seed, extra_low=tuple(extra_box[0]) if extra_box else (),
                              extra_high=tuple(extra_box[1]) if extra_box else ())
    dispatcher = Dispatcher(policies, SafetyLayer(load_safety_limits(robot.name), robot.control_period), dispatch)
    ee, q = [], []
    try:
        for episode in range(config.episodes):
            obs, _ = env.reset(seed=config.seed + episode)
            dispatcher.start_episode()
            done = False
            while not (done or dispatcher.episode_finished):
                torque = dispatcher.command(obs[:robot.dof], obs[robot.dof:2 * robot.dof])
                obs, _, terminated, truncated, _ = env.step(torque.astype(np.float32))
                ee.append(env.unwrapped.sim.site_position().copy())
                q.append(obs[:robot.dof].copy())
                done = terminated or truncated
            dispatcher.end_episode()
    finally:
        env.close()
    return Visits(np.array(ee), np.array(q))


def ee_cells(ee: np.ndarray, cell: float) -> np.ndarray:
    """Integer grid cell of each end-effector position, shape (n, 3)."""
    return np.floor(np.asarray(ee) / cell).astype(np.int64)


def coverage_measures(visits: Visits, cell: float, lower: np.ndarray, upper: np.ndarray,
                      region: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """ee_cells, ee_entropy, task_cells (with a region box), joint_entropy and the number of states."""
    cells, counts = np.unique(ee_cells(visits.ee, cell), axis=0, return_counts=True)
    p = counts / counts.sum()
    joint = []
    for j in range(visits.q.shape[1]):
        hist, _ = np.histogram(visits.q[:, j], bins=JOINT_BINS, range=(lower[j], upper[j]))
        pj = hist[hist > 0] / hist.sum()
        joint.append(float(-(pj * np.log(pj)).sum()))
    measures = {"states": int(len(visits.ee)), "ee_cells": int(len(counts)),
                "ee_entropy": float(-(p * np.log(p)).sum()), "joint_entropy": float(np.mean(joint))}
    if region is not None:
        centers = (cells + 0.5) * cell
        inside = np.all((centers >= region[0]) & (centers <= region[1]), axis=1)
        measures["task_cells"] = int(inside.sum())
    return measures


def cumulative_cells(ee: np.ndarray, cell: float) -> np.ndarray:
    """Distinct grid cells visited after each state."""
    seen: set[tuple[int, ...]] = set()
    out = np.zeros(len(ee), dtype=int)
    for i, key in enumerate(map(tuple, ee_cells(ee, cell))):
        seen.add(key)
        out[i] = len(seen)
    return out


def compare_coverage(exploration: Sequence[TorqueSource], task_policy: TorqueSource, env_fn: Callable[[], gym.Env],
                     out: str | os.PathLike, config: CoverageConfig = CoverageConfig()) -> dict:
    """Coverage of the exploration set, the task policy (both with random mixing) and random torques alone.

    Writes out/coverage.json and out/coverage.png (cumulative end-effector cells over collected states, and
    a top view of the visited end-effector positions). Returns the JSON content.
    """
    probe = env_fn()
    robot = probe.unwrapped.sim.robot
    box = probe.unwrapped.config.boxes.get("target")  # the reach target box; None for other tasks
    region = box.bounds if box is not None else None
    probe.close()
    targets = region if config.random_targets and region is not None else None
    schemes = {
        f"{len(exploration)} exploration policies + random": collect_visits(exploration, env_fn, config,
                                                                            extra_box=targets),
        "task policy + random": collect_visits([task_policy], env_fn, config, extra_box=targets),
        "random torques only": collect_visits([], env_fn, config, random_action_prob=1.0),
    }
    report = {"config": asdict(config), "schemes": {
        name: coverage_measures(v, config.cell, robot.position_lower, robot.position_upper, region)
        for name, v in schemes.items()}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coverage.json").write_text(json.dumps(report, indent=2))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, visits in schemes.items():
        measures = report["schemes"][name]
        left.plot(cumulative_cells(visits.ee, config.cell),
                  label=f"{name}: {measures['ee_cells']} cells, H={measures['ee_entropy']:.2f}")
        right.scatter(visits.ee[::5, 0], visits.ee[::5, 1], s=2, alpha=0.4, label=name)
    left.set(xlabel="states collected", ylabel=f"end-effector cells visited ({config.cell * 100:g} cm grid)",
             title=f"coverage, {config.episodes} episodes per scheme")
    left.legend(fontsize=7)
    if region is not None:
        right.add_patch(plt.Rectangle(region[0][:2], *(region[1] - region[0])[:2], fill=False, ls="--",
                                      label="task region (target box)"))
    right.set(xlabel="x [m]", ylabel="y [m]", title="end-effector positions (top view)")
    right.set_aspect("equal", adjustable="datalim")
    right.legend(fontsize=7, markerscale=4)
    save_figure(fig, out / "coverage.png", dpi=100)
    return report
