"""The demo report: report.md with PNG figures, from a DemoRun's results.

The reality proxy's truth is read here, and only here, to score the fits (the report is the one reader
that may know it, like an experimenter with a calibrated arm).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from sim2real.pipeline.plan import MEMORY_ROW, SIMOPT_ROW, DemoRun
from sim2real_core.figures import plt, save_figure
from sim2real_core.fit.report import mass_conventions
from sim2real_core.policy.seed_statistics import seed_difference, seed_estimate
from sim2real_core.sim.distributions import Distribution, load_distribution
from sim2real_core.sim.reality import load_reality


def interval_text(pair) -> str:
    """A 95 % interval as text ('n/a' without one)."""
    return "n/a" if pair is None else f"[{pair[0]:.2f}, {pair[1]:.2f}]"


def gap_table(run: DemoRun) -> str:
    """Markdown: success and final distance on the reality proxy per training distribution (over ROS), with the
    in-process success and return on the same proxy; 95 % intervals."""
    lines = ["| training distribution | target episodes | success over ROS | 95% CI | final distance [m] "
             "| success in process | 95% CI | mean return in process | 95% CI |", "|---" * 9 + "|"]
    for name, result in run.results.get("deploy", {}).items():
        ros, local = result["over_ros"], result["in_process"]
        distance = np.mean(ros["final_distances"]) if ros.get("final_distances") else float("nan")
        lines.append(f"| {name} | {target_cost(run, name)} | {ros['success_rate']:.2f} "
                     f"| {interval_text(ros.get('success_ci'))} | {distance:.3f} "
                     f"| {local['success_rate']:.2f} | {interval_text(local.get('success_ci'))} "
                     f"| {local['mean_return']:.1f} | {interval_text(local.get('return_ci'))} |")
    return "\n".join(lines)


def target_cost(run: DemoRun, name: str) -> str:
    """The target episodes row `name` consumed per seed, as text ('hidden truth' for the oracle)."""
    entry = run.results.get("train", {}).get(name, {})
    if "target_episodes" not in entry:
        return "?"
    return "hidden truth" if entry["target_episodes"] is None else str(entry["target_episodes"])


def _seed_episodes(run: DemoRun, key: str) -> dict[str, list[list[float]]]:
    """Per row, per seed, the in-process episode values (`returns` or `successes`)."""
    rows = {}
    for name, result in run.results.get("deploy", {}).items():
        seeds = result.get("in_process_seeds") or []
        if seeds and all(entry.get(key) is not None for entry in seeds):
            rows[name] = [[float(v) for v in entry[key]] for entry in seeds]
    return rows


def seeds_table(run: DemoRun) -> str:
    """Markdown: per row, success and return in process over every seed, with hierarchical 95 % intervals."""
    successes, returns = _seed_episodes(run, "successes"), _seed_episodes(run, "returns")
    lines = ["| training distribution | target episodes | seeds | success | 95% CI | per seed | mean return "
             "| 95% CI |", "|---|---|---|---|---|---|---|---|"]
    for name, per_seed in returns.items():
        ret = seed_estimate(per_seed)
        cells = ["n/a"] * 3
        if name in successes:
            success = seed_estimate(successes[name])
            cells = [f"{success.mean:.2f}", interval_text(success.interval),
                     " ".join(f"{v:.2f}" for v in success.per_seed)]
        lines.append(f"| {name} | {target_cost(run, name)} | {len(per_seed)} | {' | '.join(cells)} | {ret.mean:.1f} | "
                     f"{interval_text(ret.interval)} |")
    return "\n".join(lines)


def significance_table(run: DemoRun) -> str:
    """Markdown: every pair of rows, the difference in success paired by seed, and whether its interval excludes 0."""
    successes = _seed_episodes(run, "successes")
    names = list(successes)
    lines = ["| a | b | success a - b | 95% CI | significant |", "|---|---|---|---|---|"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = seed_difference(successes[a], successes[b])
            lines.append(f"| {a} | {b} | {diff.mean:+.2f} | {interval_text(diff.interval)} | "
                         f"{'yes' if diff.significant else 'no'} |")
    return "\n".join(lines)


def trained_seeds(run: DemoRun) -> int:
    """How many PPO seeds the run's rows were trained with (from its results, whatever the command line said)."""
    return min((len(entry.get("seeds", [entry])) for entry in run.results.get("train", {}).values()), default=1)


def seeds_section(run: DemoRun) -> list[str]:
    """The report's across-seeds section (only when the rows were trained with more than one seed)."""
    if trained_seeds(run) < 2 or not _seed_episodes(run, "returns"):
        return []
    return ["## Across seeds\n",
            f"Every row trained with {trained_seeds(run)} PPO seeds (seed k of every row fine-tuned from seed k's base "
            "policy) and evaluated in process on the same proxy episodes. Intervals: hierarchical bootstrap over "
            "seeds, then episodes within each seed (`sim2real_core.policy.seed_statistics`).\n", seeds_table(run), "",
            "Differences in success between rows, paired by seed; significant where the 95 % interval excludes 0 "
            "(no correction for the number of comparisons; with few seeds most intervals are wide).\n",
            significance_table(run), ""]


def training_note(run: DemoRun) -> str:
    """How the compared policies were trained and evaluated (one paragraph)."""
    base, trained = run.results.get("base", {}), run.results.get("train", {})
    steps = next(iter(trained.values()), {}).get("steps", 0) - base.get("steps", 0)
    evaluate = run.plan.stage("evaluate")
    seeds = (f" This table is seed 0 of {trained_seeds(run)}; the section 'Across seeds' gives every seed."
             if trained_seeds(run) > 1 else " One PPO seed per row: a difference between rows may be seed noise.")
    return (f"Every row starts from the same base policy, trained {base.get('steps', '?')} PPO steps on the nominal "
            f"simulator, then fine-tuned {steps} steps under its training distribution (`none` keeps training on "
            f"the nominal simulator), so the rows differ only in the distribution. " + survey_note(run)
            + "Target episodes: what a row consumed on the proxy per seed; the fits share one collection (every fit, "
            "every seed), SimOpt's loop runs its own for each seed. Over ROS: "
            f"{evaluate.get('episodes')} episodes served by `policy_server` in real time; in process: "
            f"{evaluate.get('in_process_episodes', evaluate.get('episodes'))} episodes on the same proxy." + seeds)


def survey_note(run: DemoRun) -> str:
    """How the survey's rows differ from the others (empty without them)."""
    rows = set(run.results.get("train", {}))
    notes = []
    if "adr" in rows or "active" in rows:
        notes.append("`adr` and `active` move their distribution during the fine-tune (automatic and active domain "
                     "randomization, from the parameter box, without target data)")
    if MEMORY_ROW in rows:
        notes.append(f"`{MEMORY_ROW}` is a memory policy (its network also sees the episode's last "
                     f"{run.results.get('memory_base', {}).get('history', '?')} joint-state/action pairs) fine-tuned "
                     "under the parameter box from its own base policy with the same memory")
    if SIMOPT_ROW in rows:
        simopt = run.plan.stage("survey").get("simopt", {})
        notes.append(f"`{SIMOPT_ROW}` spends the same steps in SimOpt's loop from the parameter box: "
                     f"{simopt.get('iterations')} fine-tune/update iterations of {simopt.get('target_episodes')} "
                     "target episodes each, then a last fine-tune")
    return "".join(f"{note[0].upper()}{note[1:]}. " for note in notes)


def vision_section(run: DemoRun) -> list[str]:
    """The vision stage's comparison (empty without it)."""
    from sim2real.studies.puck_vision import markdown

    if "vision" not in run.results:
        return []
    body = markdown(run.results["vision"]).split("\n", 2)[2]  # without the study's own title
    return ["## Vision: the puck from the workspace camera, with and without visual randomization\n",
            "Locators (`sim2real_core.vision.PuckLocator`) trained on rendered images of the model's own look, or "
            "of looks drawn from the appearance box (lighting, colours, camera pose and field of view, image noise), "
            "then scored on held-out images in the model's look and in the proxy's hidden look, which neither saw. "
            + body, ""]


def robot_side_note(run: DemoRun) -> str:
    """Which robot side the data came from and the policies were served to."""
    if run.plan.robot_side != "franka":
        return ("Data were collected on the proxy's `sim_bridge` (100 Hz, lockstep) and every policy below was served "
                "by `policy_server` to it over DDS.")
    collect = run.results.get("collect", {})
    faults = [f for f in collect.get("faults", []) if f]
    return ("Robot side: the proxy behind the franka_ros2 emulation (`franka_proxy`: 1 kHz joint states with the "
            "measured link torques, the effort controller's hold-forever semantics, the 1 ms torque-rate limit, "
            "collision and velocity reflexes, the arm's own link weights compensated by the robot). Data were "
            "collected through the hardware stack `collect_real` "
            "(dispatcher behind the command supervisor, episodes started as an operator does, recovering after "
            f"reflexes): {len(faults)} of {len(collect.get('faults', []))} episodes ended early in a fault "
            f"({', '.join(sorted(set(faults))) or 'none'}). Every policy below was served by `policy_server` "
            "behind the command supervisor, as the `real` stack runs it; the in-process columns are the 100 Hz "
            "proxy.")


def progressive_table(run: DemoRun) -> str:
    """Markdown: target success and return after each progressive-transfer step (adapt stage)."""
    adapt = run.results["adapt"]
    lines = [f"Fine-tuned by PPO on the proxy for {adapt['target_steps']} target steps "
             f"({adapt['target_episodes']:.1f} episodes); every row scored on the same held-out in-process episodes.",
             "", "| step | target success | 95% CI | target mean return | 95% CI |", "|---|---|---|---|---|"]
    for name, entry in adapt["stages"].items():
        lines.append(f"| {name} | {entry['success_rate']:.2f} | {interval_text(entry.get('success_ci'))} "
                     f"| {entry['mean_return']:.1f} | {interval_text(entry.get('return_ci'))} |")
    return "\n".join(lines)


def fitted(run: DemoRun) -> dict[str, Distribution]:
    """The fitted distributions of the run, by method."""
    return {m: load_distribution(entry["path"]) for m, entry in run.results.get("fit", {}).items()}


def truth_of(run: DemoRun, names) -> np.ndarray:
    """The reality proxy's true values of the named parameters."""
    reality = load_reality(run.plan.reality)
    values = reality.space.as_dict(reality.truth)
    return np.array([values[n] for n in names], dtype=float)


def recovery_table(run: DemoRun) -> str:
    """Markdown: fitted mean ± std of each parameter against the hidden truth, and the error per method."""
    fits = fitted(run)
    if not fits:
        return "(no fits)"
    space = next(iter(fits.values())).space
    truth = truth_of(run, space.names)
    methods = list(fits)
    lines = ["| parameter | unit | nominal | truth | " + " | ".join(methods) + " |",
             "|---|---|---|---|" + "---|" * len(methods)]
    for i, p in enumerate(space):
        cells = [f"{fits[m].mean[i]:.3g} ± {fits[m].std[i]:.2g}" for m in methods]
        lines.append(f"| {p.name} | {p.unit} | {p.nominal:.3g} | {truth[i]:.3g} | " + " | ".join(cells) + " |")
    width = space.high - space.low
    errors = [f"{np.linalg.norm((fits[m].mean - truth) / width):.3f}" for m in methods]
    nominal_error = np.linalg.norm((space.nominal - truth) / width)
    lines.append(f"| error of the mean (bound-normalised L2; nominal: {nominal_error:.3f}) | | | | "
                 + " | ".join(errors) + " |")
    conventions = mass_conventions(space)
    return "\n".join(lines + ([""] + [f"Mass convention: {line}." for line in conventions] if conventions else []))


def fitted_transitions(run: DemoRun, data: dict) -> str:
    """How many transitions the fits used, and how many the dataset has."""
    used = {entry.get("transitions") for entry in run.results.get("fit", {}).values()} - {None}
    total = data.get("transitions", "?")
    return f"{used.pop()} of the dataset's {total}" if len(used) == 1 else str(total)


def validation_table(run: DemoRun) -> str:
    """Markdown: each fit's held-out prediction error and likelihood against nominal and the box centre, the
    misspecification checks, and every warning."""
    fits = {m: entry for m, entry in run.results.get("fit", {}).items() if entry.get("validation")}
    if not fits:
        return "(no held-out episodes: nothing validated)"
    first = next(iter(fits.values()))["validation"]
    horizons = sorted(first["error"]["fit"], key=int)
    lines = [f"On {first['episodes']} episodes ({first['transitions']} transitions) the fits never saw: open-loop "
             "prediction error in units of the data's s'-s spread, one-step log-likelihood, and two checks of the "
             "one-step residuals (standardised by the fit's noise model: about 1 when calibrated; share predictable "
             "from (s, a): about 0 when they are noise).", "",
             "| parameters | " + " | ".join(f"error {h} periods" for h in horizons)
             + " | log-likelihood | residuals / noise model | residuals predictable |",
             "|---|" + "---|" * (len(horizons) + 3)]
    rows = {**{m: (entry["validation"], "fit") for m, entry in fits.items()},
            "nominal": (first, "nominal"), "box centre": (first, "box centre")}
    for name, (validation, key) in rows.items():
        checks = (f"{validation['residual_ratio']:.2f} | {validation['residual_structure']:.2f}" if key == "fit"
                  else " | ")
        lines.append(f"| {name} | " + " | ".join(f"{validation['error'][key][h]:.3g}" for h in horizons)
                     + f" | {validation['loglik'][key]:.4g} | {checks} |")
    warnings = [f"- {m}: {w}" for m, entry in fits.items() for w in entry.get("warnings", [])]
    return "\n".join(lines + ["", "Warnings:" if warnings else "No warnings.", *warnings])


def plot_marginals(run: DemoRun, path: Path) -> Path | None:
    """Fitted marginals of every parameter against its bounds and the truth."""
    fits = fitted(run)
    if not fits:
        return None
    space = next(iter(fits.values())).space
    truth = truth_of(run, space.names)
    cols = 4
    rows = int(np.ceil(space.dim / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.3 * rows), squeeze=False)
    for i, p in enumerate(space):
        ax = axes[i // cols, i % cols]
        x = np.linspace(p.low, p.high, 400)
        for method, dist in fits.items():
            if dist.family == "uniform":
                density = np.where((x >= dist.low[i]) & (x <= dist.high[i]), 1.0 / (dist.high[i] - dist.low[i]), 0.0)
            elif dist.std[i] > 0:
                density = stats.norm.pdf(x, dist.mean[i], dist.std[i])
            else:
                ax.axvline(dist.mean[i], linestyle=":", label=method)
                continue
            ax.plot(x, density / max(density.max(), 1e-12), label=method)
        ax.axvline(truth[i], color="k", linewidth=2, label="truth")
        ax.axvline(p.nominal, color="grey", linestyle="--", label="nominal")
        ax.set_title(f"{p.name} [{p.unit}]", fontsize=8)
        ax.set_yticks([])
    for j in range(space.dim, rows * cols):
        axes[j // cols, j % cols].axis("off")
    axes[0, 0].legend(fontsize=6)
    save_figure(fig, path, dpi=90)
    return path


def plot_learning_curves(run: DemoRun, path: Path) -> Path | None:
    """Mean episode return against environment steps: the base policy, then each fine-tuning from it; with several
    seeds, the mean over seeds and a band from the lowest to the highest seed."""
    runs = {"base (nominal)": run.results.get("base"), **run.results.get("train", {})}
    return plot_curves({name: entry for name, entry in runs.items() if entry},
                       f"{run.plan.task}: PPO, nominal base then fine-tuning", path)


def plot_curves(runs: dict[str, dict], title: str, path: Path) -> Path | None:
    """Training curves (each policy folder's curve.json) of named runs, each {path} or {seeds: [{path}, ...]}: the
    mean over seeds and a band from the lowest to the highest seed; None when there is none."""
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, entry in runs.items():
        curves = []
        for seed_entry in entry.get("seeds", [entry]):
            curve = json.loads((Path(seed_entry["path"]).parent / "curve.json").read_text())["return"]
            if curve:
                curves.append(np.array(curve, dtype=float))
        if not curves:
            continue
        style = {"color": "black"} if name.startswith("base") else {}
        grid = np.linspace(max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves), 100)
        values = np.array([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
        line, = ax.plot(grid, values.mean(axis=0), label=name, **style)
        if len(curves) > 1:
            ax.fill_between(grid, values.min(axis=0), values.max(axis=0), alpha=0.2, color=line.get_color())
    seeds = max(len(entry.get("seeds", [entry])) for entry in runs.values())
    ax.set(xlabel="environment steps", ylabel="mean episode return (training distribution)",
           title=title + (f" ({seeds} seeds: mean, band min-max)" if seeds > 1 else ""))
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)
    return path


def plot_gap(run: DemoRun, path: Path) -> Path | None:
    """Success rate on the reality proxy per training distribution, with 95 % intervals."""
    results = {n: r["over_ros"] for n, r in run.results.get("deploy", {}).items()}
    names = [n for n, r in results.items() if r.get("success_rate") is not None]
    if not names:
        return None
    rates = np.array([results[n]["success_rate"] for n in names])
    ci = np.array([results[n]["success_ci"] for n in names])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(names, rates, yerr=[rates - ci[:, 0], ci[:, 1] - rates], capsize=4, color="tab:blue")
    ax.set(ylabel="success rate on the reality proxy", ylim=(0, 1.05), title="sim-to-real gap, over ROS")
    save_figure(fig, path, dpi=100)
    return path


def plot_coverage(run: DemoRun, path: Path) -> Path | None:
    """Joint-space coverage of the collected target data: joint 1 vs joint 2 and joint 4 vs joint 6, per episode."""
    from sim2real_core.data.dataset import load_dataset

    data_path = run.out / "dataset.npz"
    if not data_path.exists():
        return None
    data = load_dataset(data_path)
    obs = data.observations
    episodes = np.asarray(data.extras["episodes"]) if "episodes" in data.extras else np.zeros(len(obs))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (a, b) in zip(axes, [(0, 1), (3, 5)]):
        ax.scatter(obs[:, a], obs[:, b], c=episodes, s=2, cmap="tab20")
        ax.set(xlabel=f"q{a + 1} [rad]", ylabel=f"q{b + 1} [rad]")
    fig.suptitle("exploration data on the reality proxy (colour: episode)")
    save_figure(fig, path, dpi=90)
    return path


def write_report(run: DemoRun) -> Path:
    """Write report.md (and figures) into the run's folder; return its path."""
    from sim2real.studies.combination_lock import lock_study, lock_table_markdown, plot_lock_study

    figures = run.out / "figures"
    figures.mkdir(exist_ok=True)
    gap = plot_gap(run, figures / "gap.png")
    marginals = plot_marginals(run, figures / "fitted_marginals.png")
    curves = plot_learning_curves(run, figures / "learning_curves.png")
    coverage = plot_coverage(run, figures / "coverage.png")
    horizons = (4, 6, 8) if run.plan.budget_name == "quick" else (4, 6, 8, 10, 12)
    lock_rows = lock_study(horizons=horizons, seeds=3 if run.plan.budget_name == "quick" else 5)
    lock_plot = plot_lock_study(lock_rows, figures / "combination_lock.png")

    def image(path, caption):
        return f"![{caption}]({path.relative_to(run.out)})\n" if path else f"({caption}: not produced)\n"

    data = run.results.get("dataset", {})
    sections = [
        f"# sim2real demo report ({run.plan.budget_name} budget)\n",
        f"Task `{run.plan.task}` on the reality proxy `{run.plan.reality}`: hidden true parameters (masses, joint "
        "friction of four kinds, armature, command latency, encoder offsets, noise) plus an effect outside the "
        "simulator family (a torque ripple periodic in joint position). "
        + robot_side_note(run) + "\n",
        "## The sim-to-real gap, and closing it\n", training_note(run), "", gap_table(run), "",
        image(gap, "success per training distribution"), *seeds_section(run),
        *(["## Progressive transfer: nominal sim -> fitted DR -> target\n", progressive_table(run), ""]
          if "adapt" in run.results else []),
        *vision_section(run),
        "## Parameter recovery (fit vs hidden truth)\n",
        f"Fitted on {fitted_transitions(run, data)} transitions collected on the proxy by exploration policies.\n",
        recovery_table(run), "", image(marginals, "fitted marginals"),
        "### Held-out validation\n", validation_table(run), "",
        "## Learning curves\n", image(curves, "learning curves"),
        "## Exploration\n", image(coverage, "exploration coverage"),
        "### Combination lock (Wagenmaker et al. 2024): target episodes to solve\n", lock_table_markdown(lock_rows), "",
        image(lock_plot, "combination lock"),
        "## Timings\n", "| stage | seconds |\n|---|---|\n" + "\n".join(
            f"| {k} | {v} |" for k, v in run.timings.items()),
    ]
    path = run.out / "report.md"
    path.write_text("\n".join(sections) + "\n")
    return path
