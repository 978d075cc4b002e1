"""Validation studies of performance-driven sim tuning: tabular MDP and LQR (sensitivity gradients), LQR (CMA-ES).

Each study runs from randomised starts over several seeds against one fixed real system and returns
per-iteration histories (each seed a task on a sim2real_core.cluster.Cluster); `study_table_markdown` and
`plot_study` turn them into a table and a PNG.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from sim2real.tuning.cmaes_tuner import tune_with_cmaes
from sim2real.tuning.lqr import LQRSimTuning, LQRTargetTask, random_lqr, tune_lqr
from sim2real.tuning.tabular import TabularSimTuning, random_mdp, tune_tabular
from sim2real_core.cluster import Cluster, Task, values


def _mdp_run(seed: int, iterations: int, real_seed: int, temperature: float) -> dict:
    """One randomised start of `mdp_study` (a cluster task)."""
    tuning = TabularSimTuning(random_mdp(3, 2, seed=real_seed), temperature=temperature)
    _, history = tune_tabular(tuning, tuning.random_start(np.random.default_rng(seed)), iterations)
    return {"seed": seed, "history": [asdict(h) for h in history]}


def mdp_study(seeds: int = 5, iterations: int = 40, real_seed: int = 0, temperature: float = 0.1,
              cluster: Cluster | None = None) -> dict:
    """Sensitivity-gradient tuning of a 3-state/2-action sim MDP's dynamics for the real return, one start per
    seed as a task on `cluster` (default: in this process).

    Returns:
        {"setting", "normalization", "runs": [{"seed", "history": [AscentStep as dict, ...]}]}.
    """
    runs = _run(cluster, [Task(f"mdp seed {seed}", _mdp_run, (seed, iterations, real_seed, temperature))
                          for seed in range(seeds)])
    return {"setting": "tabular MDP (3 states, 2 actions), sensitivity gradient",
            "normalization": "(J - J_min) / (J* - J_min) over real policies", "runs": runs}


def _run(cluster: Cluster | None, tasks: list[Task]) -> list:
    """The tasks' values, on `cluster` or in this process."""
    return values((cluster or Cluster(workers=0)).run(tasks))


def _accuracy_rows(real_seed: int, iterations: int, temperature: float) -> list[dict]:
    """Both sim families of one real MDP in `accuracy_vs_performance_study` (a cluster task)."""
    real = random_mdp(3, 2, seed=real_seed)
    rows = []
    for family, state_independent in (("full", False), ("state-independent", True)):
        tuning = TabularSimTuning(real, temperature=temperature, state_independent=state_independent)
        _, history = tune_tabular(tuning, tuning.max_likelihood_params(), iterations)
        rows.append({"real_seed": real_seed, "family": family, "accurate": history[0].normalized,
                     "tuned": history[-1].normalized})
    return rows


def accuracy_vs_performance_study(real_seeds: tuple[int, ...] = (0, 1, 2, 3, 4), iterations: int = 40,
                                  temperature: float = 0.1, cluster: Cluster | None = None) -> list[dict]:
    """Most accurate sim versus performance-tuned sim, on several random 3-state/2-action real MDPs (one task per
    real MDP on `cluster`).

    For each real MDP and sim family ("full": P_θ(s'|s, a); "state-independent": P_θ(s'|a), misspecified),
    the maximum-likelihood sim (`TabularSimTuning.max_likelihood_params`, system identification with
    unlimited uniform data) is the start of the sensitivity-gradient tuning.

    Returns:
        One dict per (real seed, family): real_seed, family, accurate (normalised real return of the policy
        trained in the maximum-likelihood sim), tuned (after `iterations` outer iterations).
    """
    per_mdp = _run(cluster, [Task(f"accuracy real MDP {seed}", _accuracy_rows, (seed, iterations, temperature))
                             for seed in real_seeds])
    return [row for rows in per_mdp for row in rows]


def accuracy_table_markdown(rows: list[dict]) -> str:
    """Markdown table of `accuracy_vs_performance_study` rows."""
    lines = ["**Most accurate sim vs performance-tuned sim** (3-state/2-action real MDPs; normalised real return "
             "(J - J_min)/(J* - J_min); tuning starts at the maximum-likelihood sim)", "",
             "| real MDP seed | sim family | max-likelihood sim | performance-tuned sim |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['real_seed']} | {row['family']} | {row['accurate']:.4f} | {row['tuned']:.4f} |")
    return "\n".join(lines)


def _lqr_run(seed: int, iterations: int, real_seed: int, n: int, m: int) -> dict:
    """One randomised start of `lqr_study` (a cluster task)."""
    tuning = LQRSimTuning(random_lqr(n, m, seed=real_seed))
    _, history = tune_lqr(tuning, tuning.random_start(np.random.default_rng(seed)), iterations)
    return {"seed": seed, "history": [asdict(h) for h in history]}


def lqr_study(seeds: int = 5, iterations: int = 60, real_seed: int = 0, n: int = 3, m: int = 2,
              cluster: Cluster | None = None) -> dict:
    """Sensitivity-gradient tuning of a linear sim's (A_s, B_s) for the real LQR cost, one start per seed as a task
    on `cluster`.

    Returns:
        As `mdp_study`; normalisation J_real(K*) / J_real(K(θ)).
    """
    runs = _run(cluster, [Task(f"lqr seed {seed}", _lqr_run, (seed, iterations, real_seed, n, m))
                          for seed in range(seeds)])
    return {"setting": f"LQR (n={n}, m={m}), sensitivity gradient",
            "normalization": "J_real(K*) / J_real(K(theta))", "runs": runs}


def _lqr_cmaes_run(seed: int, budget: int, sigma0: float, real_seed: int, n: int, m: int) -> dict:
    """One randomised start of `lqr_cmaes_study` (a cluster task)."""
    task = LQRTargetTask(random_lqr(n, m, seed=real_seed))
    theta0 = task.tuning.random_start(np.random.default_rng(seed))
    result = tune_with_cmaes(task.train_generation, task.evaluate_on_target, theta0, sigma0, budget, seed=seed)
    start = task.tuning.real_return(theta0)
    history = [{"iteration": 0, "value": start, "normalized": task.tuning.normalized(start), "evaluations": 0}]
    history += [{"iteration": ev.index + 1, "value": ev.best_return,
                 "normalized": task.tuning.normalized(ev.best_return), "evaluations": ev.index + 1}
                for ev in result.evaluations]
    return {"seed": seed, "history": history, "riccati_iterations": task.riccati_iterations}


def lqr_cmaes_study(seeds: int = 5, budget: int = 150, sigma0: float = 0.1, real_seed: int = 0, n: int = 3,
                    m: int = 2, cluster: Cluster | None = None) -> dict:
    """CMA-ES tuning of a linear sim's (A_s, B_s) with a budget of target evaluations, one start per seed as a task
    on `cluster`.

    Returns:
        As `mdp_study`: entry 0 is the start θ0 (for reference, not charged to the budget), then one entry per
        target evaluation with the best normalised return CMA-ES has found so far.
    """
    runs = _run(cluster, [Task(f"lqr cma-es seed {seed}", _lqr_cmaes_run, (seed, budget, sigma0, real_seed, n, m))
                          for seed in range(seeds)])
    return {"setting": f"LQR (n={n}, m={m}), CMA-ES, budget {budget} target evaluations",
            "normalization": "J_real(K*) / J_real(K(theta)), best so far", "runs": runs}


def study_table_markdown(study: dict) -> str:
    """Markdown table: per seed the normalised real return at the start, mid-way and at the end."""
    lines = [f"**{study['setting']}** -- normalised real return = {study['normalization']}", "",
             "| seed | start | mid | final | real-return evaluations |", "|---|---|---|---|---|"]
    finals = []
    for run in study["runs"]:
        history = run["history"]
        start, mid, final = history[0], history[len(history) // 2], history[-1]
        finals.append(final["normalized"])
        lines.append(f"| {run['seed']} | {start['normalized']:.4f} | {mid['normalized']:.4f} | "
                     f"{final['normalized']:.4f} | {final['evaluations']} |")
    lines.append(f"| mean | | | {np.mean(finals):.4f} | |")
    lines.append(f"| min | | | {np.min(finals):.4f} | |")
    return "\n".join(lines)


def plot_study(study: dict, path: str | Path, xlabel: str = "outer iteration") -> Path:
    """Save normalised real return versus iteration, one line per seed, as PNG."""
    from sim2real_core.figures import plt, save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in study["runs"]:
        history = run["history"]
        ax.plot([h["iteration"] for h in history], [h["normalized"] for h in history], label=f"seed {run['seed']}")
    ax.axhline(1.0, color="gray", linestyle=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("normalised real return")
    ax.set_title(study["setting"], fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=120)
    return path
