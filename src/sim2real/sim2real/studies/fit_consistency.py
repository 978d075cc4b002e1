"""Consistency study of the fitters on synthetic Hopper data (the ODR paper's claims, checked here).

1. Consistency: with stochastic dynamics (unrecorded action noise), the error of DROPO's fitted mean shrinks
   as the number of transitions N grows.
2. Collapse: on the same data DROPO's std collapses towards 0 while E-DROPO's (entropy bonus) does not.
3. Partial coverage: a parameter the data cannot inform (foot-floor friction, from flight-only data) is reported
   as not identifiable (local Fisher information with a box prior, and SysID's confidence interval) instead of
   being given a confident value; with ground data it is identified.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim2real_core.cluster import Cluster, Outcome, Task, values
from sim2real_core.config import save_yaml
from sim2real_core.figures import plt, save_figure
from sim2real_core.fit.dropo import DropoConfig
from sim2real_core.fit.engine import BatchPredictor
from sim2real_core.fit.hopper import generate_hopper_data, hopper_space, hopper_system
from sim2real_core.fit.methods import fit_dropo, fit_edropo, fit_sysid
from sim2real_core.fit.sysid import SysIdConfig
from sim2real_core.sim.parameters import ParameterSpace

TRUTH = (4.2, 3.3, 2.2, 4.6)
FRICTION_TRUTH = 1.2
COVERAGE = (("flight", 1.0), ("ground", 0.0))  # data set, and how high the hopper starts (1: never lands)


def _consistency_fit(system, space: ParameterSpace, data, config: DropoConfig, threads: int) -> dict:
    """One DROPO fit of the consistency experiment: its error against the truth and its time (a cluster task)."""
    start = time.perf_counter()
    dist = fit_dropo(system, space, data, config, nthread=threads).distribution
    return {"error": float(np.linalg.norm(dist.mean - np.array(TRUTH))), "seconds": time.perf_counter() - start}


def _collapse(system, space: ParameterSpace, data, config: DropoConfig, threads: int) -> dict:
    """DROPO and E-DROPO on the same data: their means and stds (a cluster task)."""
    predictor = BatchPredictor(system, space, nthread=threads)
    dropo = fit_dropo(system, space, data, config, predictor=predictor).distribution
    edropo = fit_edropo(system, space, data, config, alpha=0.01, predictor=predictor).distribution
    return {"transitions": len(data), "dropo_std": dict(zip(space.names, dropo.std.tolist())),
            "edropo_std": dict(zip(space.names, edropo.std.tolist())),
            "dropo_mean": dict(zip(space.names, dropo.mean.tolist())),
            "edropo_mean": dict(zip(space.names, edropo.mean.tolist()))}


def _coverage(system, space: ParameterSpace, data, config: DropoConfig, seed: int, threads: int) -> dict:
    """DROPO's identifiability and SysID's confidence intervals on one dataset (a cluster task)."""
    d_fit = fit_dropo(system, space, data, config, nthread=threads)
    s_fit = fit_sysid(system, space, data, SysIdConfig(transitions=300, seed=seed), nthread=threads)
    return {"transitions": len(data),
            "dropo_mean": dict(zip(space.names, d_fit.distribution.mean.tolist())),
            "dropo_identifiability": d_fit.info["identifiability"],
            "sysid_mean": dict(zip(space.names, s_fit.distribution.mean.tolist())),
            "sysid_confidence_95": s_fit.info["confidence_95"]}


def run_study(out_dir: str | os.PathLike, quick: bool = False, seed: int = 0, progress=print,
              cluster: Cluster | None = None) -> dict:
    """Run the three experiments, their fits as tasks on `cluster` (default: in this process); write study.md,
    study.yaml and PNG plots to out_dir; return the results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cluster = cluster or Cluster(workers=0)
    threads = 0 if cluster.in_process else 1  # a task holds one CPU of the cluster
    system, space = hopper_system(), hopper_space()
    truth = np.array(TRUTH)
    sizes = (30, 300) if quick else (30, 100, 300, 1000, 3000)
    repeats = 2 if quick else 3
    action_noise = 0.02
    config = DropoConfig(samples=16, transitions=100, max_evaluations=0,
                         learn_epsilon=True, epsilon=1e-2, seed=seed)
    results: dict = {"truth": dict(zip(space.names, TRUTH)), "action_noise": action_noise}

    # 1. consistency: fits on growing random subsets of one pool
    pool = generate_hopper_data(truth, episodes=20, steps=max(sizes) // 20 + 10 if not quick else 60,
                                seed=seed + 10, space=space, system=system, action_noise=action_noise)
    tasks = []
    for n in sizes:
        for r in range(repeats):
            pick = np.sort(np.random.default_rng(seed + 100 * r + n).choice(len(pool), n, replace=False))
            cfg = replace(config, linearized_transitions=n, seed=seed + r)
            tasks.append(Task(f"consistency N={n} repeat {r}", _consistency_fit,
                              (system, space, pool.subset(pick), cfg, threads)))
    # 2. collapse: DROPO vs E-DROPO on the same data
    n = 300
    tasks.append(Task("collapse", _collapse, (system, space, pool.subset(np.arange(n)),
                                              replace(config, linearized_transitions=n), threads)))
    # 3. partial coverage: foot friction from flight-only data vs ground data
    wide = ParameterSpace(list(space) + list(ParameterSpace.from_list([
        {"name": "foot_friction", "unit": "1", "nominal": 2.0, "bounds": [0.5, 3.0], "kind": "geom_friction",
         "element": "foot_geom", "description": "foot-floor sliding friction"}])), name="hopper_masses_friction")
    wide_truth = np.append(truth, FRICTION_TRUTH)
    coverage_config = replace(config, learn_epsilon=False, epsilon=1e-3, linearized_transitions=300)
    for label, lift in COVERAGE:
        data = generate_hopper_data(wide_truth, episodes=10, steps=30 if lift else 100, seed=seed + 20,
                                    space=wide, system=system, lift=lift)
        tasks.append(Task(f"coverage {label}", _coverage, (system, wide, data, coverage_config, seed, threads)))

    def report(outcome: Outcome, done: int, total: int) -> None:
        if not outcome.ok:
            progress(f"[{done}/{total}] {outcome.name} failed: {outcome.error.strip().splitlines()[-1]}")
        elif outcome.name.startswith("consistency"):
            progress(f"[{done}/{total}] {outcome.name}: error {outcome.value['error']:.4f} kg "
                     f"({outcome.value['seconds']:.1f} s)")
        elif outcome.name == "collapse":
            progress(f"[{done}/{total}] collapse: DROPO std {_rounded(outcome.value['dropo_std'])}, "
                     f"E-DROPO std {_rounded(outcome.value['edropo_std'])}")
        else:
            ff = outcome.value["dropo_identifiability"]["foot_friction"]
            progress(f"[{done}/{total}] {outcome.name}: foot_friction DROPO mean "
                     f"{outcome.value['dropo_mean']['foot_friction']:.3f} (truth {FRICTION_TRUTH}), identifiable "
                     f"{ff['identifiable']} (posterior/prior std {ff['ratio']:.2f})")

    found = dict(zip([task.name for task in tasks], values(cluster.run(tasks, report))))
    results["consistency"] = []
    for n in sizes:
        errors = [found[f"consistency N={n} repeat {r}"]["error"] for r in range(repeats)]
        results["consistency"].append({"transitions": n, "errors": errors, "mean_error": float(np.mean(errors))})
    results["collapse"] = found["collapse"]
    results["coverage"] = {label: found[f"coverage {label}"] for label, _ in COVERAGE}
    save_yaml(out / "study.yaml", results)
    _plots(results, space.names, out)
    _markdown(results, space.names, out / "study.md")
    return results


def _rounded(stds: dict) -> list[float]:
    return [round(v, 4) for v in stds.values()]


def _plots(results: dict, names, out: Path) -> None:
    rows = results["consistency"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ns = [r["transitions"] for r in rows]
    for r in rows:
        ax.scatter([r["transitions"]] * len(r["errors"]), r["errors"], color="C0", s=10, alpha=0.6)
    ax.plot(ns, [r["mean_error"] for r in rows], color="C0", marker="o", label="DROPO mean error")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("transitions N")
    ax.set_ylabel("|fitted mean - truth| [kg]")
    ax.set_title("consistency (stochastic Hopper)", fontsize=10)
    ax.legend(fontsize=8)
    save_figure(fig, out / "consistency.png", dpi=100)
    col = results["collapse"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [col["dropo_std"][n] for n in names], 0.4, label="DROPO")
    ax.bar(x + 0.2, [col["edropo_std"][n] for n in names], 0.4, label="E-DROPO")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("fitted std [kg]")
    ax.legend(fontsize=8)
    ax.set_title(f"std on the same {col['transitions']} transitions", fontsize=10)
    save_figure(fig, out / "std.png", dpi=100)


def _markdown(results: dict, names, path: Path) -> None:
    lines = ["# Fitting study (synthetic Hopper)", "",
             f"True masses {results['truth']}; unrecorded action noise std {results['action_noise']}.", "",
             "## 1. Consistency: error of DROPO's mean vs N", "", "| N | mean error [kg] | runs |", "|---|---|---|"]
    lines += [f"| {r['transitions']} | {r['mean_error']:.4f} | {', '.join(f'{e:.4f}' for e in r['errors'])} |"
              for r in results["consistency"]]
    col = results["collapse"]
    lines += ["", "![consistency](consistency.png)", "",
              f"## 2. DROPO vs E-DROPO std ({col['transitions']} transitions)",
              "", "| parameter | DROPO std | E-DROPO std |", "|---|---|---|"]
    lines += [f"| {n} | {col['dropo_std'][n]:.4g} | {col['edropo_std'][n]:.4g} |" for n in names]
    lines += ["", "![std](std.png)", "", "## 3. Partial coverage: foot-floor friction", "",
              "| data | transitions | DROPO foot_friction | identifiable (posterior/prior std) | SysID 95 % CI |",
              "|---|---|---|---|---|"]
    for label, c in results["coverage"].items():
        ident = c["dropo_identifiability"]["foot_friction"]
        ci = c["sysid_confidence_95"]["foot_friction"]
        lines.append(f"| {label} | {c['transitions']} | {c['dropo_mean']['foot_friction']:.3f} | "
                     f"{'yes' if ident['identifiable'] else 'NO'} ({ident['ratio']:.2f}) | "
                     f"[{ci[0]:.3g}, {ci[1]:.3g}] |")
    lines.append(f"\nTrue foot friction: {FRICTION_TRUTH}.\n")
    path.write_text("\n".join(lines))
