"""Tune the FR3 reach simulator for return on the reality proxy (CMA-ES), and compare with a DROPO fit.

"Fit for accuracy" (DROPO) chooses the simulator distribution that best predicts recorded target transitions;
"tune for return" (arXiv 2510.17709) chooses simulator parameters by the target return of the policy trained
under them. Both are charged in target (reality-proxy) episodes.

Parametrisation: three log group factors x = (link_mass, joint_damping, joint_friction). Group g multiplies
the nominal value of every parameter of its kind in the fit space (fr3_reach's model parameters: link mass
scales, joint damping, joint dry friction; armature and all other parameters stay nominal) by exp(x_g).
x = 0 is the nominal simulator the base policy was trained on. Each factor ranges over FACTOR_RANGE
intersected with what keeps every parameter of its group inside the space's bounds. A candidate is the point
mass at those parameters, or with `spread` > 0 a Gaussian of relative std `spread` around it (truncated at 2σ).

Inner loop: each candidate's policy is fine-tuned for `steps` PPO steps from the best candidate's policy of the
CMA-ES generations before (the base policy in the first; `tune_with_cmaes`'s warm start; `warm_start="base"`
starts every candidate from the base), then scored by its mean return over `episodes_per_candidate` proxy
episodes. Every proxy episode of the tuning comes from a `TargetEpisodes` factory that counts resets and
refuses one beyond the budget, so the budget holds by construction.

A chained warm start gives the tuned policy more PPO steps than the DROPO policy's single fine-tuning; the
comparison's control row (the base fine-tuned in the nominal sim for as many steps) separates that from
the simulator choice.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field

from sim2real.tuning.cmaes_tuner import TargetEvaluation, tune_with_cmaes
from sim2real_core.cluster import Cluster, Task, values
from sim2real_core.config import OptionModel
from sim2real_core.figures import plt, save_figure
from sim2real_core.fit.files import fit_space
from sim2real_core.policy.evaluation import EvalResult, evaluate
from sim2real_core.policy.policy_file import Policy, load_policy
from sim2real_core.policy.ppo import PPOConfig
from sim2real_core.policy.tasks import make_task, ppo_defaults, resolve_distribution
from sim2real_core.policy.training import train_policy
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import ParameterSpace
from sim2real_core.sim.reality import DEFAULT_REALITY, reality_file

TASK = "reach"
SPACE = "fr3_reach"
GROUPS = (("link_mass", "body_mass_scale"), ("joint_damping", "dof_damping"), ("joint_friction", "dof_frictionloss"))
FACTOR_RANGE = (0.25, 6.0)  # each group factor's box before the space's bounds cut it
BASE, CONTROL = "base (nominal sim)", "more training, nominal sim (control)"
SELECTED = "nominal fine-tunes picked by return (control)"
DROPO, TUNED = "fit for accuracy (DROPO)", "tune for return (CMA-ES)"
HELDOUT_SEED = 1_000_000  # held-out proxy episodes use seeds from here; tuning episodes use seeds below


class ArmTuningOptions(OptionModel):
    """The settings of the comparison (and of `sim2real arm-tuning`'s options, generated from them)."""

    reality: str = Field(DEFAULT_REALITY, description="reality-proxy profile, the target")
    budget: int = Field(16, ge=1, description="target episodes DROPO's data cost, and so the tuner's budget")
    episodes_per_candidate: int = Field(2, ge=1, description="target episodes scoring each CMA-ES candidate")
    steps: int = Field(50_000, ge=1, description="PPO fine-tuning steps per policy, DROPO's and each candidate's")
    heldout: int = Field(50, ge=1, description="held-out proxy episodes per policy, outside both budgets")
    population: int = Field(4, ge=2, description="CMA-ES population")
    sigma0: float = Field(0.5, gt=0, description="initial CMA-ES step in log factors")
    spread: float = Field(0.0, ge=0, description="relative std of a Gaussian around each candidate (0: point mass)")
    warm_start: Literal["base", "best"] = Field(
        "base", description="fine-tune each candidate from the base (every policy gets the same training, so the "
                            "table compares simulators) or from the best candidate of the generations before")
    control: bool = Field(True, description="the control: the base fine-tuned in the nominal sim for the tuned "
                                            "lineage's steps")
    selection: bool = Field(True, description="the selection control: nominal fine-tunings picked with the same "
                                              "target episodes")
    seed: int = Field(0, ge=0, description="seed of CMA-ES, PPO and the tuning episodes")


class GroupFactors:
    """Simulator parameters of `space` as one log factor per parameter kind group (see module docstring)."""

    def __init__(self, space: ParameterSpace, groups: tuple[tuple[str, str], ...] = GROUPS,
                 factor_range: tuple[float, float] = FACTOR_RANGE):
        self.space = space
        self.names = tuple(name for name, _ in groups)
        self.members = []
        low, high = [], []
        for name, kind in groups:
            index = np.array([i for i, p in enumerate(space) if p.kind == kind], dtype=int)
            if index.size == 0:
                raise ValueError(f"group {name!r}: parameter space {space.name!r} has no parameter of kind {kind!r}")
            nominal = space.nominal[index]
            if np.any(nominal <= 0):
                raise ValueError(f"group {name!r}: every nominal value must be > 0 to scale it, got "
                                 f"{dict(zip(np.array(space.names)[index], nominal))}")
            low.append(max(factor_range[0], float(np.max(space.low[index] / nominal))))
            high.append(min(factor_range[1], float(np.min(space.high[index] / nominal))))
            if not low[-1] < 1.0 < high[-1]:
                raise ValueError(f"group {name!r}: factor range [{low[-1]}, {high[-1]}] must contain 1 (nominal)")
            self.members.append(index)
        self.factor_low, self.factor_high = np.array(low), np.array(high)

    @property
    def dim(self) -> int:
        """Number of group factors."""
        return len(self.names)

    @property
    def bounds(self) -> np.ndarray:
        """(dim, 2) box of the log factors."""
        return np.log(np.stack([self.factor_low, self.factor_high], axis=1))

    def factors(self, x: np.ndarray) -> np.ndarray:
        """Log factors -> factors, raising ValueError on a wrong length or a factor outside its range."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.dim,):
            raise ValueError(f"expected {self.dim} log factors {list(self.names)}, got shape {x.shape}")
        factors = np.exp(x)
        slack = 1e-9 * (self.factor_high - self.factor_low)
        for name, f, lo, hi, s in zip(self.names, factors, self.factor_low, self.factor_high, slack):
            if not (np.isfinite(f) and lo - s <= f <= hi + s):
                raise ValueError(f"factor {name}={f} is outside its range [{lo}, {hi}]")
        return np.clip(factors, self.factor_low, self.factor_high)

    def params(self, x: np.ndarray) -> np.ndarray:
        """Log factors -> the parameter vector of the space (ungrouped parameters at nominal)."""
        values = self.space.nominal.copy()
        for index, factor in zip(self.members, self.factors(x)):
            values[index] *= factor
        return self.space.validate(self.space.clip(values))

    def distribution(self, x: np.ndarray, spread: float = 0.0) -> Distribution:
        """The candidate's distribution: a point mass, or a Gaussian of relative std `spread` around it."""
        values = self.params(x)
        info = {"provenance": {"group_factors": dict(zip(self.names, self.factors(x).tolist()))}}
        if spread == 0:
            dist = Distribution.fixed(self.space, values, method="tuned_for_return")
            dist.provenance = info["provenance"]
            return dist
        if spread < 0:
            raise ValueError(f"spread must be >= 0, got {spread}")
        return Distribution.gaussian(self.space, values, std=spread * np.abs(values), method="tuned_for_return",
                                     **info)

    def describe(self, x: np.ndarray) -> str:
        """'link_mass x1.23, joint_damping x2.50, ...'."""
        return ", ".join(f"{n} x{f:.2f}" for n, f in zip(self.names, self.factors(x)))


class _CountResets(gym.Wrapper):
    def __init__(self, env: gym.Env, counter: "TargetEpisodes"):
        super().__init__(env)
        self._counter = counter

    def reset(self, **kwargs):
        self._counter.charge()
        return self.env.reset(**kwargs)


class TargetEpisodes:
    """An environment factory for the target that counts episodes (resets) and refuses any beyond `limit`."""

    def __init__(self, make_env: Callable[[], gym.Env], limit: int | None = None):
        self._make_env = make_env
        self.limit = limit
        self.used = 0

    def charge(self) -> None:
        """Count one target episode; RuntimeError if it would exceed the limit."""
        if self.limit is not None and self.used >= self.limit:
            raise RuntimeError(f"target-episode budget of {self.limit} exhausted")
        self.used += 1

    def __call__(self) -> gym.Env:
        return _CountResets(self._make_env(), self)


@dataclass(frozen=True)
class Candidate:
    """One fine-tuned policy: its folder and the loaded policy."""

    folder: Path
    policy: Policy


@dataclass
class ArmTuning:
    """Outcome of `tune_for_return`."""

    names: tuple[str, ...]
    evaluations: list[dict]  # per candidate: index, generation, factors, target_return, best_return, folder
    # (holding distribution.yaml and policy/), ...
    best: Candidate | None
    best_factors: tuple[float, ...]
    best_return: float
    target_episodes: int  # counted resets of the target environment
    sim_steps: int  # PPO steps spent over all candidates


def reach_config(seed: int = 0) -> PPOConfig:
    """The reach task's PPO settings (config/policy/train.yaml) with `seed`."""
    return PPOConfig(**{**ppo_defaults(TASK), "seed": seed})


def fine_tune(choice: str, steps: int, folder: str, config: PPOConfig, start: str, threads: int) -> dict:
    """Fine-tune the reach policy in `start` for `steps` PPO steps under `choice` (a distribution file, or `none`)
    into `folder` (a cluster task); returns the folder and the steps trained."""
    outcome = train_policy(make_task(TASK, choice), steps, folder, config, progress=False, start=start,
                           threads=threads)
    return {"folder": folder, "trained_steps": outcome.trained_steps}


def _fine_tuned(cluster: Cluster, tasks: list[Task]) -> list[tuple[Candidate, int]]:
    """Run `fine_tune` tasks side by side; each candidate (its policy loaded here) and its steps trained."""
    return [(Candidate(Path(done["folder"]), load_policy(done["folder"])), done["trained_steps"])
            for done in values(cluster.run(tasks))]


def _threads(cluster: Cluster) -> int:
    """Simulation threads of one training: all CPUs in process, one where trainings run side by side."""
    return 0 if cluster.in_process else 1


def policy_steps(policy: Policy) -> int:
    """PPO steps in the policy's lineage (its sidecar's training.steps; fine-tuning continues the count)."""
    return int(policy.spec.training.get("steps", 0))


def tune_for_return(base: str | os.PathLike, out: str | os.PathLike, options: ArmTuningOptions = ArmTuningOptions(),
                    config: PPOConfig | None = None, progress: Callable[[str], None] | None = None,
                    cluster: Cluster | None = None) -> ArmTuning:
    """CMA-ES over group factors for the proxy return of policies fine-tuned from `base`.

    Args:
        base: folder of the base policy (trained with `train_policy`, so it has a checkpoint).
        out: folder for the candidates (out/candidate_NN: distribution.yaml and the fine-tuned policy).
        options: the target (reality), the budget in target episodes (a multiple of episodes_per_candidate, whose
            episodes take seeds seed·budget + i, below HELDOUT_SEED), PPO steps per candidate, the CMA-ES
            population and initial step (log-factor units; x0 = 0, nominal), the spread of a candidate and its
            warm start (see ArmTuningOptions).
        config: PPO settings (default: the reach task's, with the options' seed).
        progress: receives one line per candidate.
        cluster: where a generation's candidates are fine-tuned side by side (default: one after the other in this
            process); they are scored here, one after the other, on the counted target episodes.
    """
    budget_episodes, episodes_per_candidate, steps = options.budget, options.episodes_per_candidate, options.steps
    seed, spread, chain = options.seed, options.spread, options.warm_start == "best"
    if episodes_per_candidate < 1 or budget_episodes < episodes_per_candidate:
        raise ValueError(f"need 1 <= episodes_per_candidate <= budget_episodes, got {episodes_per_candidate} "
                         f"and {budget_episodes}")
    if budget_episodes % episodes_per_candidate:
        raise ValueError(f"budget_episodes ({budget_episodes}) must be a multiple of episodes_per_candidate "
                         f"({episodes_per_candidate})")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    first_seed = seed * budget_episodes
    if first_seed + budget_episodes > HELDOUT_SEED:
        raise ValueError(f"tuning seeds would reach the held-out seeds ({HELDOUT_SEED}); use a smaller seed")
    base, out = Path(base), Path(out)
    config = config or reach_config(seed)
    factors = GroupFactors(fit_space(SPACE))
    target = make_task(TASK, "none", reality=options.reality)
    episodes = TargetEpisodes(target.make_env, limit=budget_episodes)
    cluster = cluster or Cluster(workers=0)
    sim_steps = 0

    def train(generation: list[np.ndarray], warm: Candidate | None) -> list[Candidate]:
        nonlocal sim_steps
        start = base if warm is None or not chain else warm.folder
        tasks = []
        for index, x in enumerate(generation, start=len(evaluations)):
            folder = out / f"candidate_{index:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = factors.distribution(x, spread).save(folder / "distribution.yaml")
            tasks.append(Task(folder.name, fine_tune, (str(path), steps, str(folder / "policy"), config, str(start),
                                                       _threads(cluster))))
        trained = _fine_tuned(cluster, tasks)
        sim_steps += sum(spent for _, spent in trained)
        return [candidate for candidate, _ in trained]

    def score(candidate: Candidate) -> float:
        result = evaluate(candidate.policy, episodes, episodes_per_candidate, seed=first_seed + episodes.used,
                          safety=target.safety, period=target.control_period)
        scores.append(result)
        return result.mean_return

    evaluations: list[dict] = []
    scores: list[EvalResult] = []

    def record(evaluation: TargetEvaluation) -> None:
        result = scores[-1]
        row = {"index": evaluation.index, "generation": evaluation.generation,
               "factors": dict(zip(factors.names, factors.factors(evaluation.params).tolist())),
               "target_return": evaluation.target_return, "best_return": evaluation.best_return,
               "target_success": result.success_rate, "episodes": len(result.returns),
               "target_episodes_so_far": episodes.used, "folder": str(out / f"candidate_{evaluation.index:02d}")}
        evaluations.append(row)
        if progress is not None:
            progress(f"candidate {evaluation.index + 1}/{budget_episodes // episodes_per_candidate} "
                     f"({factors.describe(evaluation.params)}): target return {evaluation.target_return:.2f}, "
                     f"best {evaluation.best_return:.2f}; {episodes.used}/{budget_episodes} target episodes")

    result = tune_with_cmaes(train, score, np.zeros(factors.dim), options.sigma0,
                             budget_episodes // episodes_per_candidate, bounds=factors.bounds,
                             population_size=options.population, seed=seed, callback=record)
    best_factors = tuple(factors.factors(result.best_params).tolist())
    return ArmTuning(factors.names, evaluations, result.best_policy, best_factors, result.best_return,
                     episodes.used, sim_steps)


def select_by_return(base: str | os.PathLike, out: str | os.PathLike, options: ArmTuningOptions = ArmTuningOptions(),
                     config: PPOConfig | None = None, progress: Callable[[str], None] | None = None,
                     cluster: Cluster | None = None) -> ArmTuning:
    """Control for the tuner's selection: fine-tune `base` in the nominal sim once per candidate with PPO seeds
    config.seed + 1, + 2, ... (side by side on `cluster`), score each on the same counted target episodes (same
    seeds) as `tune_for_return`, keep the best. What it gains over one fine-tuning is picking among PPO runs by
    target return, with no simulator change."""
    budget_episodes, episodes_per_candidate, steps, seed = (options.budget, options.episodes_per_candidate,
                                                            options.steps, options.seed)
    if episodes_per_candidate < 1 or budget_episodes % episodes_per_candidate or budget_episodes < 1:
        raise ValueError(f"budget_episodes ({budget_episodes}) must be a positive multiple of "
                         f"episodes_per_candidate ({episodes_per_candidate})")
    base, out = Path(base), Path(out)
    config = config or reach_config(seed)
    target = make_task(TASK, "none", reality=options.reality)
    episodes = TargetEpisodes(target.make_env, limit=budget_episodes)
    cluster = cluster or Cluster(workers=0)
    runs = [replace(config, seed=config.seed + 1 + index) for index in range(budget_episodes // episodes_per_candidate)]
    trained = _fine_tuned(cluster, [
        Task(f"selection candidate {index}", fine_tune, ("none", steps, str(out / f"candidate_{index:02d}" / "policy"),
                                                         run, str(base), _threads(cluster)))
        for index, run in enumerate(runs)])
    best, best_return, evaluations = None, float("-inf"), []
    for index, (run, (candidate, _)) in enumerate(zip(runs, trained)):
        result = evaluate(candidate.policy, episodes, episodes_per_candidate,
                          seed=seed * budget_episodes + episodes.used, safety=target.safety,
                          period=target.control_period)
        if np.isfinite(result.mean_return) and result.mean_return > best_return:
            best, best_return = candidate, result.mean_return
        evaluations.append({"index": index, "ppo_seed": run.seed, "target_return": result.mean_return,
                            "best_return": best_return, "target_success": result.success_rate,
                            "target_episodes_so_far": episodes.used, "folder": str(candidate.folder.parent)})
        if progress is not None:
            progress(f"selection control {index + 1}/{len(runs)} (PPO seed {run.seed}): target return "
                     f"{result.mean_return:.2f}, best {best_return:.2f}; {episodes.used}/{budget_episodes} "
                     "target episodes")
    return ArmTuning((), evaluations, best, (), best_return, episodes.used, sum(spent for _, spent in trained))


def group_factors_of(dist: Distribution, groups: tuple[tuple[str, str], ...] = GROUPS) -> dict[str, float]:
    """Mean over each group of a distribution's mean / nominal (groups it does not cover are left out)."""
    out = {}
    for name, kind in groups:
        ratios = [m / p.nominal for p, m in zip(dist.space, dist.mean) if p.kind == kind and p.nominal > 0]
        if ratios:
            out[name] = float(np.mean(ratios))
    return out


def _dropo_policy(dropo: Path, base: Path, out: Path, steps: int, config: PPOConfig,
                  cluster: Cluster) -> tuple[Policy, int, dict]:
    """The DROPO policy, its PPO steps spent here, and what it is (a given folder, or base fine-tuned on a fit)."""
    from sim2real_core.sim.distributions import load_distribution

    if dropo.is_dir():
        policy = load_policy(dropo)
        training = policy.spec.training
        spent = policy_steps(policy) - int(training.get("warm_start_steps", 0))
        return policy, spent, {"policy": str(dropo), "distribution": training.get("distribution")}
    dist = load_distribution(dropo)
    [(candidate, spent)] = _fine_tuned(cluster, [Task("DROPO policy", fine_tune, (
        str(dropo), steps, str(out / "dropo_policy"), config, str(base), _threads(cluster)))])
    return candidate.policy, spent, {
        "policy": str(out / "dropo_policy"), "distribution": str(dropo), "method": dist.method,
        "group_factors": group_factors_of(dist)}


def compare_with_dropo(base: str | os.PathLike, dropo: str | os.PathLike, out: str | os.PathLike,
                       options: ArmTuningOptions = ArmTuningOptions(), config: PPOConfig | None = None,
                       progress: Callable[[str], None] | None = None, cluster: Cluster | None = None) -> dict:
    """Fit for accuracy (DROPO) vs tune for return (CMA-ES) at the same number of target episodes.

    The tuner gets `options.budget` target episodes, the number DROPO's data cost; the DROPO fit (a
    distribution YAML, fine-tuned here from `base` for `options.steps` PPO steps, like every tuning candidate; or
    an already fine-tuned policy folder) uses no further target episode. Base, DROPO and tuned policies are then
    measured on `options.heldout` proxy episodes each, seeds HELDOUT_SEED.., disjoint from the tuning
    episodes' seeds and the same for every policy; they belong to neither budget. With `control`, the base
    is also fine-tuned in the nominal sim for as many PPO steps as the tuned policy's lineage added to the
    base (warm starts chain), to tell a better simulator from more training. With `selection`,
    `select_by_return` spends the same target episodes picking among as many nominal fine-tunings (PPO seeds
    differ), to tell a better simulator from picking the luckiest PPO run. Trainings run on `cluster` (default: in
    this process), side by side where they do not depend on one another; the target episodes are played here.

    Returns:
        A JSON-friendly dict: settings, rows (approach, target_episodes, steps_spent, total_steps, heldout),
        the tuning's evaluations, group factors of the DROPO fit, the tuned simulator and the proxy's truth.
    """
    reality, dropo_episodes, episodes_per_candidate, steps, heldout_episodes, seed = (
        options.reality, options.budget, options.episodes_per_candidate, options.steps, options.heldout, options.seed)
    base, dropo, out = Path(base), Path(dropo), Path(out)
    if not dropo.exists():
        raise FileNotFoundError(f"DROPO fit or policy folder {dropo} does not exist")
    base_policy = load_policy(base)
    proxy = _reality_digest(reality)
    config = config or reach_config(seed)
    cluster = cluster or Cluster(workers=0)
    say = progress or (lambda line: None)
    say(f"fine-tuning the base policy for {steps} steps under the DROPO fit {dropo}" if not dropo.is_dir()
        else f"DROPO policy: {dropo}")
    dropo_policy, dropo_spent, dropo_info = _dropo_policy(dropo, base, out, steps, config, cluster)
    say(f"tuning for return: {dropo_episodes} target episodes, {episodes_per_candidate} per candidate")
    tuning = tune_for_return(base, out / "tuning", options, config, progress, cluster)
    if tuning.best is None:
        raise RuntimeError("the tuning produced no candidate with a finite target return")
    policies = [(BASE, base_policy, 0, "none", 0)]
    if options.control:
        lineage = policy_steps(tuning.best.policy) - policy_steps(base_policy)
        say(f"control: fine-tuning the base policy for {lineage} steps in the nominal sim")
        [(candidate, spent)] = _fine_tuned(cluster, [Task("control policy", fine_tune, (
            "none", lineage, str(out / "control_policy"), config, str(base), _threads(cluster)))])
        policies.append((CONTROL, candidate.policy, 0, "none", spent))
    if options.selection:
        say(f"selection control: {dropo_episodes} target episodes picking among nominal fine-tunings")
        picked = select_by_return(base, out / "selection", options, config, progress, cluster)
        policies.append((SELECTED, picked.best.policy, picked.target_episodes,
                         "counted proxy episodes scoring the nominal fine-tunings", picked.sim_steps))
    target = make_task(TASK, "none", reality=reality)
    heldout = TargetEpisodes(target.make_env)
    rows = []
    for approach, policy, episodes, note, spent in policies + [
            (DROPO, dropo_policy, dropo_episodes, "the recorded episodes DROPO was fitted on",
             dropo_spent),
            (TUNED, tuning.best.policy, tuning.target_episodes,
             "counted proxy episodes scoring the candidates", tuning.sim_steps)]:
        result = evaluate(policy, heldout, heldout_episodes, seed=HELDOUT_SEED, safety=target.safety,
                          period=target.control_period)
        say(result.describe(f"held-out on {reality}: {approach}"))
        rows.append({"approach": approach, "target_episodes": episodes, "target_episodes_are": note,
                     "steps_spent": spent, "total_steps": policy_steps(policy), "heldout": result.summary()})
    if _reality_digest(reality) != proxy:
        raise RuntimeError(f"the reality profile {proxy['file']} changed during the comparison: its numbers would "
                           "mix two proxies; run it again")
    return {"task": TASK, "reality": reality, "reality_file": proxy, "base": str(base), "dropo": dropo_info,
            "settings": {"budget_episodes": dropo_episodes, "episodes_per_candidate": episodes_per_candidate,
                         "steps_per_policy": steps, "population_size": options.population, "sigma0": options.sigma0,
                         "spread": options.spread, "seed": seed, "warm_start": options.warm_start,
                         "heldout_episodes": heldout_episodes,
                         "heldout_seeds": [HELDOUT_SEED, HELDOUT_SEED + heldout_episodes - 1],
                         "tuning_seeds": [seed * dropo_episodes, seed * dropo_episodes + dropo_episodes - 1]},
            "heldout_episodes_used": heldout.used, "rows": rows,
            "tuning": {"groups": list(tuning.names), "best_factors": dict(zip(tuning.names, tuning.best_factors)),
                       "best_return": tuning.best_return, "best_policy": str(tuning.best.folder),
                       "target_episodes": tuning.target_episodes, "evaluations": tuning.evaluations},
            "selection": None if not options.selection else {"best_return": picked.best_return,
                                                     "best_policy": str(picked.best.folder),
                                                     "evaluations": picked.evaluations},
            "proxy_truth_group_factors": _truth_factors(reality)}


def _reality_digest(reality: str) -> dict[str, str]:
    """The reality profile's file and its sha256 (the proxy is re-read whenever an environment is made)."""
    path = reality_file(reality)
    if not path.is_file():
        raise FileNotFoundError(f"reality profile {reality!r}: no file {path}")
    return {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _truth_factors(reality: str) -> dict[str, float]:
    """Group factors of the proxy's hidden in-family truth (for reading the report; neither approach sees it)."""
    truth, _ = resolve_distribution(f"oracle:{reality}", SPACE)
    return group_factors_of(truth)


def _interval(summary: dict, key: str, ci: str) -> str:
    value = summary[key]
    if value is None:
        return "n/a"
    low, high = summary[ci]
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def comparison_markdown(result: dict, plot: str | None = None) -> str:
    """The report: comparison table, what the budgets count, the tuning's candidates."""
    s = result["settings"]
    factors = lambda d: ", ".join(f"{k} x{v:.2f}" for k, v in d.items()) or "n/a"  # noqa: E731
    lines = [f"# Fit for accuracy (DROPO) vs tune for return (CMA-ES): {result['task']} on {result['reality']}", "",
             f"Equal target budgets: {s['budget_episodes']} target episodes each. The DROPO policy and every tuning "
             f"candidate are fine-tuned for {s['steps_per_policy']} PPO steps in their simulator, starting from the "
             f"base policy ({result['base']})" + (
                 "; each candidate after the first starts from the best candidate so far, so the tuned policy's "
                 "lineage can be several fine-tunings long" if s["warm_start"] == "best" else "") + (
                 ". The more-training control is the base fine-tuned in the nominal sim for as many steps as the "
                 "tuned policy's "
                 "lineage added to the base." if CONTROL in [row["approach"] for row in result["rows"]] else "."),
             "", "| approach | target episodes used | sim PPO steps spent | policy's total PPO steps | "
             "held-out success [95% Wilson] | held-out mean return [95% BCa] |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        h = row["heldout"]
        lines.append(f"| {row['approach']} | {row['target_episodes']} | {row['steps_spent']} | {row['total_steps']}"
                     f" | {_interval(h, 'success_rate', 'success_ci')} | {_interval(h, 'mean_return', 'return_ci')} |")
    t, rows = result["tuning"], {row["approach"]: row for row in result["rows"]}
    lines += ["", f"Target episodes: DROPO's are {rows[DROPO]['target_episodes_are']} (declared, not run "
              f"here); the tuner's are {rows[TUNED]['target_episodes_are']} ({t['target_episodes']}, "
              f"{s['episodes_per_candidate']} per candidate, seeds {s['tuning_seeds'][0]}..{s['tuning_seeds'][1]})"
              + (f"; the selection control spends the same {rows[SELECTED]['target_episodes']} (same seeds) picking "
                 "among as many nominal-sim fine-tunings with different PPO seeds." if SELECTED in rows else "."),
              f"Held-out measurement: {s['heldout_episodes']} proxy episodes per policy, seeds "
              f"{s['heldout_seeds'][0]}..{s['heldout_seeds'][1]} (the same for every policy), "
              f"{result['heldout_episodes_used']} in all. They are for measurement only and count towards "
              "neither budget.", "",
              f"Simulator in group factors (mean of parameter / nominal per group): "
              f"DROPO fit {factors(result['dropo'].get('group_factors', {}))}; tuned {factors(t['best_factors'])}; "
              f"proxy truth (hidden from both) {factors(result['proxy_truth_group_factors'])}.", ""]
    if plot:
        lines += [f"![target return per CMA-ES evaluation]({plot})", ""]
    lines += ["| candidate | generation | " + " | ".join(t["groups"]) + " | target return | success | best so far |",
              "|---|---|" + "---|" * len(t["groups"]) + "---|---|---|"]
    for e in t["evaluations"]:
        success = "n/a" if e["target_success"] is None else f"{e['target_success']:.2f}"
        lines.append(f"| {e['index'] + 1} | {e['generation']} | "
                     + " | ".join(f"{e['factors'][g]:.2f}" for g in t["groups"])
                     + f" | {e['target_return']:.2f} | {success} | {e['best_return']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_comparison(result: dict, path: str | os.PathLike) -> Path:
    """Target return per CMA-ES evaluation (and best so far), with the held-out returns as horizontal lines."""
    evaluations = result["tuning"]["evaluations"]
    index = [e["index"] + 1 for e in evaluations]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(index, [e["target_return"] for e in evaluations], "o", label="candidate (tuning episodes)")
    ax.step(index, [e["best_return"] for e in evaluations], where="post", label="best so far")
    styles = {BASE: ("grey", ":"), CONTROL: ("tab:purple", ":"), SELECTED: ("tab:brown", ":"),
              DROPO: ("tab:red", "--"), TUNED: ("tab:green", "-.")}
    for row in result["rows"]:
        h = row["heldout"]
        colour, style = styles[row["approach"]]
        ax.axhline(h["mean_return"], color=colour, linestyle=style, label=f"{row['approach']}: held-out")
        ax.axhspan(*h["return_ci"], color=colour, alpha=0.12)
    ax.set(xlabel="target evaluation (CMA-ES candidate)", ylabel="mean return on the proxy",
           title=f"tune for return vs DROPO ({result['settings']['budget_episodes']} target episodes each)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save_figure(fig, path)
