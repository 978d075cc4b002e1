"""A fit report: PNG plots (marginals against bounds and truth, objective curve, predicted vs real next
states) and a markdown summary."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.stats import truncnorm

from ..figures import plt, save_figure
from ..sim.parameters import MASS_KINDS
from .dropo import FitResult
from .engine import BatchPredictor
from .transitions import Transitions


def write_report(result: FitResult, data: Transitions, predictor: BatchPredictor, out_dir: str | os.PathLike,
                 transitions: int = 300, seed: int = 0) -> Path:
    """Write marginals.png, objective.png, prediction.png and summary.md into out_dir; returns summary.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dist = result.distribution
    truth = dist.provenance.get("true_parameters") or {}
    _plot_marginals(dist, truth, out / "marginals.png")
    _plot_objective(result.history, dist.objective.get("name", "objective"), out / "objective.png")
    rmse = _plot_prediction(dist, data, predictor, out / "prediction.png", transitions, seed)
    return _summary(result, truth, rmse, out / "summary.md")


def _plot_marginals(dist, truth: dict, path: Path) -> None:
    space = dist.space
    cols = min(4, space.dim)
    rows = -(-space.dim // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, p, i in zip(axes.flat, space, range(space.dim)):
        x = np.linspace(p.low, p.high, 400)
        if dist.family == "uniform":
            y = np.where((x >= dist.low[i]) & (x <= dist.high[i]), 1.0 / (dist.high[i] - dist.low[i]), 0.0)
        elif dist.family == "gaussian" and dist.std[i] > 0:
            k = dist.truncation_sigma or np.inf
            lo = max(p.low, dist.mean[i] - k * dist.std[i])
            hi = min(p.high, dist.mean[i] + k * dist.std[i])
            a, b = (lo - dist.mean[i]) / dist.std[i], (hi - dist.mean[i]) / dist.std[i]
            y = truncnorm.pdf(x, a, b, loc=dist.mean[i], scale=dist.std[i])
        else:
            y = np.zeros_like(x)
        ax.plot(x, y, color="C0", label=dist.method)
        ax.axvline(dist.mean[i], color="C0", ls=":", lw=1)
        ax.axvline(p.nominal, color="gray", ls="--", lw=1, label="nominal")
        if p.name in truth:
            ax.axvline(truth[p.name], color="C3", lw=1.5, label="truth")
        ax.set_xlim(p.low, p.high)
        ax.set_title(p.name, fontsize=9)
        ax.set_xlabel(p.unit, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[space.dim:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{dist.method}: fitted marginals over the parameter bounds", fontsize=10)
    save_figure(fig, path, dpi=100)


def _plot_objective(history: list[dict], name: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    if history:
        ax.plot([h["evaluations"] for h in history], [h["objective"] for h in history], marker=".", lw=1)
    ax.set_xlabel("objective evaluations")
    ax.set_ylabel(name, fontsize=8)
    ax.set_title("objective per optimiser iteration", fontsize=10)
    save_figure(fig, path, dpi=100)


def _plot_prediction(dist, data: Transitions, predictor: BatchPredictor, path: Path, transitions: int,
                     seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).choice(len(data), min(transitions, len(data)), replace=False)
    pred = predictor.predict(data.observations[rows], data.actions[rows], np.repeat(dist.mean[None], rows.size, 0),
                             data.windows(rows, 1, predictor.depth)[3])
    real_delta = data.next_observations[rows] - data.observations[rows]
    pred_delta = pred - data.observations[rows]
    rmse = np.sqrt(np.mean((pred - data.next_observations[rows]) ** 2, axis=0))
    dims = data.state_dim
    cols = min(6, dims)
    nrow = -(-dims // cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(2.2 * cols, 2.2 * nrow), squeeze=False)
    for d, ax in enumerate(axes.flat):
        if d >= dims:
            ax.axis("off")
            continue
        ax.scatter(real_delta[:, d], pred_delta[:, d], s=3, alpha=0.5)
        lim = [min(real_delta[:, d].min(), pred_delta[:, d].min()), max(real_delta[:, d].max(), pred_delta[:, d].max())]
        ax.plot(lim, lim, color="gray", lw=0.8)
        ax.set_title(f"state {d}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("next-state change: predicted at the fitted mean (y) vs real (x)", fontsize=10)
    save_figure(fig, path, dpi=100)
    return rmse


def mass_conventions(space) -> list[str]:
    """One line per mass kind a space uses: which parameters, and what the kind changes (MASS_KINDS)."""
    kinds = {}
    for p in space:
        if p.kind in MASS_KINDS:
            kinds.setdefault(p.kind, []).append(p.name)
    return [f"{', '.join(names)}: `{kind}`, {MASS_KINDS[kind]}" for kind, names in kinds.items()]


def _summary(result: FitResult, truth: dict, rmse: np.ndarray, path: Path) -> Path:
    dist = result.distribution
    ident = dist.provenance.get("identifiability") or {}
    lines = [f"# Fit report: {dist.method}", "",
             f"- objective: {dist.objective.get('name', '')} = {dist.objective.get('value', float('nan')):.6g}",
             f"- dataset: {dist.provenance.get('dataset')} ({dist.provenance.get('transitions')} transitions, "
             f"{dist.provenance.get('transitions_used')} used per evaluation)",
             f"- time: {dist.provenance.get('seconds')} s, {dist.provenance.get('objective_evaluations')} "
             f"objective evaluations", "",
             "| parameter | unit | bounds | mean | std | truth | identified by the data |",
             "|---|---|---|---|---|---|---|"]
    for i, p in enumerate(dist.space):
        t = truth.get(p.name)
        idn = ident.get(p.name)
        idn_text = "" if idn is None else (
            "yes" if idn["identifiable"] else f"NO (posterior/prior std {idn['ratio']:.2f})")
        lines.append(f"| {p.name} | {p.unit} | [{p.low:g}, {p.high:g}] | {dist.mean[i]:.4g} | {dist.std[i]:.3g} | "
                     f"{'' if t is None else f'{t:.4g}'} | {idn_text} |")
    validation = dist.provenance.get("validation")
    if validation:
        horizons = sorted(next(iter(validation["error"].values())), key=int)
        lines += ["", f"Held-out validation on {validation['episodes']} episodes ({validation['transitions']} "
                  "transitions the fit never saw): open-loop prediction error in units of the s'-s spread, and "
                  "one-step log-likelihood.", "",
                  "| parameters | " + " | ".join(f"{h} periods" for h in horizons) + " | log-likelihood |",
                  "|---|" + "---|" * (len(horizons) + 1)]
        lines += [f"| {name} | " + " | ".join(f"{row[h]:.3g}" for h in horizons)
                  + f" | {validation['loglik'][name]:.4g} |" for name, row in validation["error"].items()]
        lines += ["", f"Residuals / noise model: {validation['residual_ratio']:.2f} (about 1 when calibrated); share "
                  f"of the residuals predictable from (s, a): {validation['residual_structure']:.2f} (about 0 when "
                  "they are noise)."]
    if dist.provenance.get("warnings"):
        lines += ["", "**Warnings**", ""] + [f"- {w}" for w in dist.provenance["warnings"]]
    conventions = mass_conventions(dist.space)
    if conventions:
        lines += ["", "Mass convention: " + "; ".join(conventions)]
    if truth:
        err = np.array([dist.mean[i] - truth[p.name] for i, p in enumerate(dist.space) if p.name in truth])
        lines += ["", f"Error norm of the mean against the truth: {np.linalg.norm(err):.4g}"]
    lines += ["", "One-step RMSE per state dimension at the fitted mean: "
              + ", ".join(f"{v:.3g}" for v in rmse), "",
              "![marginals](marginals.png)", "", "![objective](objective.png)", "", "![prediction](prediction.png)", ""]
    path.write_text("\n".join(lines))
    return path
