"""The transfer study: training distributions x reality proxies x PPO seeds as one grid on the cluster, one report.

Per proxy, each fitting method fits the proxy's transitions under smoothed random torques (the data of
studies.proxy_recovery, without the ROS collection of the demo) and writes PROXY/fits/METHOD.yaml. Per seed, one
base policy trains on the nominal simulator (shared by every proxy). Per proxy, distribution and seed, PPO
fine-tunes that seed's base under the distribution and the policy is evaluated on the proxy in process:
- `none`: the nominal simulator; `uniform`: the parameter box;
- a method: its fit; `oracle`: the proxy's hidden truth;
- `adr`: automatic domain randomization, grown during the fine-tune; `active`: active domain randomization, its
  particles moving during the fine-tune;
- `memory`: a memory policy, whose network also sees its episode's last (joint state, action) pairs, under the
  parameter box ("DR as meta-learning", adapting online without target data), from its own base per seed trained
  with the same memory.
Budgets are the demo's (config/pipeline/demo.yaml, full or quick). Every fit and every fine-tune-and-evaluate is a
task of the cluster; a failed one is reported with its error and the rest of the grid completes. The report
(transfer.md, with transfer.yaml and learning-curve figures): per proxy and distribution, success and return with
95 % intervals across seeds and episodes, differences paired by seed, and each fit's error against the truth.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from sim2real.pipeline.plan import MEMORY_ROW, load_plan, memory_pairs
from sim2real_core.cluster import Cluster, Task, progress_lines
from sim2real_core.config import save_yaml
from sim2real_core.policy.seed_statistics import seed_difference, seed_estimate

FITTED = ("dropo", "edropo", "sysid")
DISTRIBUTIONS = ("none", "uniform", *FITTED, "oracle")  # the default grid
UNFITTED = ("none", "uniform", "adr", "active", "memory")  # rows trained without target data


def _fit(proxy: str, method: str, out: str, quick: bool, fit_budget: dict, space_name: str, parameters: tuple,
         seed: int) -> dict:
    """Fit `method` to the proxy's transitions; write the distribution; its error against the truth (a task)."""
    from dataclasses import replace

    from sim2real.pipeline.stages import fit_configs
    from sim2real.studies.proxy_recovery import QUICK, StudySize, proxy_data
    from sim2real_core.fit.files import fit_space
    from sim2real_core.fit.fr3 import fr3_system
    from sim2real_core.fit.methods import fit as fit_method
    from sim2real_core.sim.reality import load_reality

    size = QUICK if quick else StudySize()
    data = proxy_data(proxy, size.episodes, size.steps, seed)
    space = fit_space(space_name, list(parameters))
    config = replace(fit_configs(fit_budget)[method], seed=seed)
    started = time.perf_counter()
    dist = fit_method(method, fr3_system(), space, data, config=config, nthread=1).distribution
    path = dist.save(Path(out) / proxy / "fits" / f"{method}.yaml")
    reality = load_reality(proxy)
    truth = np.array([reality.space.as_dict(reality.truth)[name] for name in space.names])
    nominal_error = float(np.linalg.norm((space.nominal - truth) / (space.high - space.low)))
    return {"path": str(path), "transitions": len(data), "seconds": round(time.perf_counter() - started, 1),
            "error": float(np.linalg.norm((dist.mean - truth) / (space.high - space.low))),
            "nominal_error": nominal_error}


def _base(task_name: str, steps: int, out: str, seed: int, history: int = 0) -> dict:
    """Train one seed's base policy on the nominal simulator, with `history` pairs of memory (a task)."""
    from sim2real.pipeline.stages import train_one

    return train_one(task_name, "none", steps, out, None, seed, history)


def _train_and_evaluate(task_name: str, choice: str, steps: int, out: str, base: str, seed: int, proxy: str,
                        episodes: int, history: int = 0) -> dict:
    """Fine-tune a seed's base under `choice` (a memory policy: `history` pairs), then evaluate the policy on the
    proxy in process (a task)."""
    from sim2real.pipeline.stages import evaluate_in_process, train_one

    trained = train_one(task_name, choice, steps, out, base, seed, history)
    return {**trained, **evaluate_in_process(task_name, proxy, trained["path"], episodes)}


def run_transfer_study(out_dir: str | os.PathLike, proxies: list[str], distributions: tuple[str, ...] = DISTRIBUTIONS,
                       seeds: int = 3, quick: bool = False, cluster: Cluster | None = None,
                       progress=print) -> dict:
    """Run the grid on `cluster` (default: in this process) into out_dir; write transfer.md and transfer.yaml;
    return the results."""
    unknown = sorted(set(distributions) - set(DISTRIBUTIONS) - set(UNFITTED))
    if unknown or not distributions:
        raise ValueError(f"unknown training distributions {unknown}; expected some of "
                         f"{list(dict.fromkeys(DISTRIBUTIONS + UNFITTED))}")
    if seeds < 1:
        raise ValueError(f"the study needs at least one seed, got {seeds}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = load_plan(quick)
    cluster = cluster or Cluster(workers=0)
    train, fit_budget = plan.stage("train"), plan.stage("fit")
    episodes = int(plan.stage("evaluate").get("in_process_episodes", plan.stage("evaluate")["episodes"]))
    started = time.perf_counter()
    report = progress_lines(progress)

    methods = [d for d in distributions if d in FITTED]
    first = [Task(f"fit {proxy} {method}", _fit, (proxy, method, str(out), quick, fit_budget, plan.fit_space,
                                                  plan.fit_parameters, 0)) for proxy in proxies for method in methods]
    memory = memory_pairs(plan.task, distributions)
    if set(distributions) - {MEMORY_ROW}:
        first += [Task(f"base seed {seed}", _base, (plan.task, int(train["base_steps"]),
                                                    str(out / "base" / f"seed{seed}"), seed)) for seed in range(seeds)]
    if memory:
        first += [Task(f"memory base seed {seed}", _base, (plan.task, int(train["base_steps"]),
                                                           str(out / "base-memory" / f"seed{seed}"), seed, memory))
                  for seed in range(seeds)]
    outcomes = dict(zip([task.name for task in first], cluster.run(first, report)))
    results: dict = {"proxies": list(proxies), "distributions": list(distributions), "seeds": seeds,
                     "budget": plan.budget_name, "failed": {}, "fits": {}, "rows": {}}
    for name, outcome in outcomes.items():
        if not outcome.ok:
            results["failed"][name] = outcome.error
        elif name.startswith("fit "):
            _, proxy, method = name.split(" ")
            results["fits"].setdefault(proxy, {})[method] = outcome.value
    second = []
    for proxy in proxies:
        for name in distributions:
            choice = name if name in UNFITTED else f"oracle:{proxy}" if name == "oracle" else None
            if choice is None:
                if name not in results["fits"].get(proxy, {}):
                    continue  # its fit failed: reported above
                choice = results["fits"][proxy][name]["path"]
            history = memory if name == MEMORY_ROW else 0
            bases = {seed: outcomes[f"{'memory ' if history else ''}base seed {seed}"] for seed in range(seeds)}
            second += [Task(f"{proxy} {name} seed {seed}", _train_and_evaluate,
                            (plan.task, "uniform" if history else choice, int(train["steps"]),
                             str(out / proxy / name / f"seed{seed}"), str(Path(bases[seed].value["path"]).parent),
                             seed, proxy, episodes, history))
                       for seed in range(seeds) if bases[seed].ok]
    for task, outcome in zip(second, cluster.run(second, report)):
        proxy, name, _, seed = task.name.split(" ")
        if outcome.ok:
            results["rows"].setdefault(proxy, {}).setdefault(name, []).append({**outcome.value, "node": outcome.node})
        else:
            results["failed"][task.name] = outcome.error
    results["seconds"] = round(time.perf_counter() - started, 1)
    save_yaml(out / "transfer.yaml", results)
    (out / "transfer.md").write_text(markdown(results, out))
    return results


def markdown(results: dict, out: Path) -> str:
    """The study's report, with one learning-curve figure per proxy."""
    from sim2real.pipeline.report import interval_text, plot_curves

    lines = ["# Transfer study", "",
             f"{results['seeds']} PPO seeds per row, the demo's {results['budget']} budgets, "
             f"{results['seconds']:.0f} s. "
             "Success and return on each proxy in process; intervals: hierarchical bootstrap over seeds, then "
             "episodes within each seed. Differences in success are paired by seed; significant where the 95 % "
             "interval excludes 0 (no correction for the number of comparisons).", ""]
    for proxy in results["proxies"]:
        rows = results["rows"].get(proxy, {})
        lines += [f"## {proxy}", "", "| training distribution | seeds | success | 95% CI | per seed | mean return | "
                                     "95% CI |", "|---|---|---|---|---|---|---|"]
        for name, seeds in rows.items():
            success = seed_estimate([entry["successes"] for entry in seeds])
            ret = seed_estimate([entry["returns"] for entry in seeds])
            lines.append(f"| {name} | {len(seeds)} | {success.mean:.2f} | {interval_text(success.interval)} | "
                         f"{' '.join(f'{v:.2f}' for v in success.per_seed)} | {ret.mean:.1f} | "
                         f"{interval_text(ret.interval)} |")
        names = list(rows)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                 if len(rows[a]) == len(rows[b]) > 1]
        if pairs:
            lines += ["", "| a | b | success a - b | 95% CI | significant |", "|---|---|---|---|---|"]
            for a, b in pairs:
                diff = seed_difference([e["successes"] for e in rows[a]], [e["successes"] for e in rows[b]])
                lines.append(f"| {a} | {b} | {diff.mean:+.2f} | {interval_text(diff.interval)} | "
                             f"{'yes' if diff.significant else 'no'} |")
        fits = results["fits"].get(proxy, {})
        if fits:
            lines += ["", "| fit | transitions | error of the mean (bound-normalised) | nominal's |",
                      "|---|---|---|---|"]
            lines += [f"| {method} | {fit['transitions']} | {fit['error']:.3f} | {fit['nominal_error']:.3f} |"
                      for method, fit in fits.items()]
        figure = plot_curves({name: {"seeds": seeds} for name, seeds in rows.items()}, f"{proxy}: fine-tuning",
                             out / f"curves_{proxy}.png")
        if figure is not None:
            lines += ["", f"![learning curves]({figure.name})"]
        lines.append("")
    if results["failed"]:
        lines += ["## Failed cells", ""]
        lines += [f"- {name}: {error.strip().splitlines()[-1]}" for name, error in results["failed"].items()]
    return "\n".join(lines) + "\n"
