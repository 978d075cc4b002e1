"""Parameter recovery on the shipped reality proxies, with the arm's whole family and with the classic one.

Per proxy (config/reality), transitions are collected in process on the RealityProxy (its hidden truth, noise
and the torque ripple outside every family) under smoothed random torques from near home, a share of whole
episodes is held out, and each method fits twice on the rest:

- `classic`: masses, viscous and dry friction, armature (what the arm's space held before Stribeck friction,
  velocity-squared friction, command latency and encoder offsets joined it);
- `full`: every dynamics parameter of the space (sim2real_core.fit.files.fit_space).

Reported per fit: the bound-normalised L2 error of the fitted mean against the truth over the classic parameters
(comparable between the families) and over all of them, the nominal model's errors, the held-out open-loop
prediction error (sim2real_core.fit.validation) of the fit and of nominal, and the warnings (parameters at a
bound, ...).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sim2real_core.cluster import Cluster, Outcome, Task
from sim2real_core.config import config_dir, save_yaml
from sim2real_core.fit.dropo import DropoConfig, state_scale
from sim2real_core.fit.engine import BatchPredictor
from sim2real_core.fit.files import fit_space
from sim2real_core.fit.fr3 import fr3_system, smoothed_random_torque
from sim2real_core.fit.methods import fit as fit_method
from sim2real_core.fit.sysid import SysIdConfig
from sim2real_core.fit.transitions import Transitions
from sim2real_core.fit.validation import split_episodes, validate_fit
from sim2real_core.robot import load_robot
from sim2real_core.sim.parameters import ParameterSpace
from sim2real_core.sim.reality import RealityProxy, load_reality

CLASSIC_KINDS = ("body_mass_scale", "dof_damping", "dof_frictionloss", "dof_armature")
FAMILIES = ("classic", "full")
SPACE = "fr3_reach"


@dataclass(frozen=True)
class StudySize:
    """How much data and fitting each proxy gets."""

    episodes: int = 16
    steps: int = 300
    holdout: float = 0.2
    dropo: DropoConfig = field(default_factory=lambda: DropoConfig(transitions=500, samples=16))
    sysid: SysIdConfig = field(default_factory=lambda: SysIdConfig(transitions=1000))


QUICK = StudySize(episodes=6, steps=100, dropo=DropoConfig(transitions=100, samples=8, max_evaluations=10,
                                                           linearizations=1),
                  sysid=SysIdConfig(transitions=200, max_iterations=5))


def shipped_proxies() -> list[str]:
    """The reality profiles in config/reality."""
    return sorted(path.stem for path in (config_dir() / "reality").glob("*.yaml"))


def proxy_data(profile: str, episodes: int, steps: int, seed: int = 0, torque_fraction: float = 0.3) -> Transitions:
    """Transitions of the reality proxy under low-passed uniform torques (within `torque_fraction` of the limits)
    from near home, one episode per start."""
    proxy = RealityProxy(profile, seed=seed)
    spec = load_robot(proxy.profile.robot)
    rng = np.random.default_rng(seed)
    observations, actions, next_observations, ends = [], [], [], []
    for _ in range(episodes):
        observation = proxy.reset(qpos=spec.home + rng.normal(0.0, 0.2, spec.dof))
        torque = np.zeros(spec.dof)
        for t in range(steps):
            torque = smoothed_random_torque(torque, rng, spec.torque_limits * torque_fraction)
            observations.append(observation)
            actions.append(torque)
            observation = proxy.step(torque)
            next_observations.append(observation)
            ends.append(t == steps - 1)
    return Transitions(np.array(observations), np.array(actions), np.array(next_observations), np.array(ends),
                       {"robot": proxy.profile.robot, "state_layout": "joint_state_v1", "source": f"proxy {profile}"})


def families() -> dict[str, ParameterSpace]:
    """The classic and the full family of the arm's space."""
    full = fit_space(SPACE)
    return {"classic": full.subset([p.name for p in full if p.kind in CLASSIC_KINDS]), "full": full}


def _error(values: np.ndarray, truth: np.ndarray, space: ParameterSpace) -> float:
    return float(np.linalg.norm((values - truth) / (space.high - space.low)))


def _cell(system, spaces: dict[str, ParameterSpace], family: str, method: str, size: StudySize, truth_of: dict,
          fit_data: Transitions, held_out: Transitions, seed: int, threads: int) -> dict:
    """One fit of the study (a cluster task): the fit's errors, held-out error and warnings, and nominal's."""
    space = spaces[family]
    truth = np.array([truth_of[n] for n in space.names])
    classic = np.isin(space.names, spaces["classic"].names)
    predictor = BatchPredictor(system, space, nthread=threads)
    config = size.dropo if method in ("dropo", "edropo") else size.sysid
    start = time.perf_counter()
    dist = fit_method(method, system, space, fit_data, config=replace(config, seed=seed),
                      predictor=predictor).distribution
    seconds = time.perf_counter() - start
    validation = validate_fit(predictor, dist, held_out, state_scale(fit_data), seed=seed)
    nominal = {"error_classic": _error(space.nominal[classic], truth[classic], spaces["classic"]),
               "error_all": _error(space.nominal, truth, space), "held_out_error": validation.error["nominal"]}
    fit = {"parameters": space.dim, "seconds": round(seconds, 1),
           "error_classic": _error(dist.mean[classic], truth[classic], spaces["classic"]),
           "error_all": _error(dist.mean, truth, space),
           "held_out_error": validation.error["fit"], "warnings": validation.warnings,
           "mean": dict(zip(space.names, dist.mean.tolist())), "truth": dict(zip(space.names, truth.tolist()))}
    return {"fit": fit, "nominal": nominal}


def run_proxy_study(out_dir: str | os.PathLike, proxies: list[str] | None = None,
                    methods: tuple[str, ...] = ("dropo", "sysid"), quick: bool = False, seed: int = 0,
                    progress=print, cluster: Cluster | None = None) -> dict:
    """Fit every proxy with both families, each fit a task on `cluster` (default: in this process); write
    proxy_study.md and proxy_study.yaml to out_dir; return the results. A failed fit is reported and left out."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = QUICK if quick else StudySize()
    spaces = families()
    system = fr3_system()
    cluster = cluster or Cluster(workers=0)
    threads = 0 if cluster.in_process else 1  # a task holds one CPU of the cluster
    results: dict = {"size": {"episodes": size.episodes, "steps": size.steps, "holdout": size.holdout},
                     "proxies": {}}
    tasks = []
    for proxy in proxies or shipped_proxies():
        reality = load_reality(proxy)
        truth_of = reality.space.as_dict(reality.truth)
        data = proxy_data(proxy, size.episodes, size.steps, seed)
        fit_data, held_out = split_episodes(data, size.holdout, seed)
        results["proxies"][proxy] = {"transitions": len(data), "held_out": len(held_out), "fits": {}}
        tasks += [Task(f"{proxy} {method} {family}", _cell, (system, spaces, family, method, size, truth_of, fit_data,
                                                             held_out, seed, threads))
                  for family in FAMILIES for method in methods]

    def report(outcome: Outcome, done: int, total: int) -> None:
        if not outcome.ok:
            progress(f"[{done}/{total}] {outcome.name} failed: {outcome.error.strip().splitlines()[-1]}")
            return
        fit, nominal = outcome.value["fit"], outcome.value["nominal"]
        progress(f"[{done}/{total}] {outcome.name} ({fit['parameters']} parameters, {fit['seconds']:.0f} s): error "
                 f"{fit['error_classic']:.3f} (classic parameters; nominal {nominal['error_classic']:.3f}), "
                 f"held-out 50-period error {fit['held_out_error'].get(50, float('nan')):.2f} "
                 f"(nominal {nominal['held_out_error'].get(50, float('nan')):.2f}), {len(fit['warnings'])} warnings")

    for task, outcome in zip(tasks, cluster.run(tasks, report)):
        proxy, method, family = task.name.split(" ")
        entry = results["proxies"][proxy]
        if not outcome.ok:
            entry.setdefault("failed", {})[f"{method} {family}"] = outcome.error
            continue
        entry["fits"][f"{method} {family}"] = outcome.value["fit"]
        entry.setdefault(f"nominal {family}", outcome.value["nominal"])
    save_yaml(out / "proxy_study.yaml", results)
    (out / "proxy_study.md").write_text(markdown(results))
    return results


def markdown(results: dict) -> str:
    """The study's tables."""
    size = results["size"]
    lines = ["# Parameter recovery on the reality proxies", "",
             f"{size['episodes']} episodes x {size['steps']} periods of smoothed random torques per proxy, "
             f"{size['holdout']:.0%} of the episodes held out. Errors of the mean are bound-normalised L2 distances "
             "to the hidden truth: over the classic parameters (masses, viscous and dry friction, armature; "
             "comparable between families) and over all fitted ones. Held-out error: open-loop prediction over "
             "1 / 10 / 50 periods in units of the data's s'-s spread.", "",
             "| proxy | fit | parameters | error (classic) | error (all) | held-out error 1 / 10 / 50 | warnings |",
             "|---|---|---|---|---|---|---|"]
    for proxy, entry in results["proxies"].items():
        for family in FAMILIES:
            nominal = entry.get(f"nominal {family}")
            if nominal is None:
                continue
            held = " / ".join(f"{v:.2f}" for _, v in sorted(nominal["held_out_error"].items()))
            lines.append(f"| {proxy} | nominal ({family} family) | | {nominal['error_classic']:.3f} | "
                         f"{nominal['error_all']:.3f} | {held} | |")
        for name, fit in entry["fits"].items():
            held = " / ".join(f"{v:.2f}" for _, v in sorted(fit["held_out_error"].items()))
            lines.append(f"| {proxy} | {name} | {fit['parameters']} | {fit['error_classic']:.3f} | "
                         f"{fit['error_all']:.3f} | {held} | {len(fit['warnings'])} |")
    lines += ["", "## Warnings", ""]
    for proxy, entry in results["proxies"].items():
        for name, fit in entry["fits"].items():
            lines += [f"- {proxy}, {name}: {w}" for w in fit["warnings"]]
    failures = [(proxy, name, error) for proxy, entry in results["proxies"].items()
                for name, error in entry.get("failed", {}).items()]
    if failures:
        lines += ["", "## Failed fits", ""]
        lines += [f"- {proxy}, {name}: {error.strip().splitlines()[-1]}" for proxy, name, error in failures]
    return "\n".join(lines) + "\n"
