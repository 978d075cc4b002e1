"""Combination lock: direct policy transfer versus exploration-policy transfer.

The didactic case of Wagenmaker et al. 2024, "Overcoming the Sim-to-Real Gap: Leveraging Simulation to Learn
to Explore for Real-World RL" (arXiv 2410.20254), reproduced with tabular learners.

The MDP (absorbing-failure variant). Horizon H, A actions. At step h the agent is either on track (state h)
or in the absorbing failure state `FAIL`. On track, the lock's `code[h]` moves it to state h+1; every other
action sends it to `FAIL` for the rest of the episode. The reward is 1 on the transition into state H (the
open lock, i.e. all H actions were correct) and 0 otherwise. Because the on-track state is the step index, a
deterministic policy of this MDP is an action sequence.

Sim and target: the target lock's code differs from the sim's at `mismatch_steps`, where the correct action is
shifted by `offset` (mod A). The default is the *drifted lock*: every step but the first differs.

Direct transfer: the sim-optimal policy, run on the target with ζ-greedy exploration (each step, with
probability ζ, a uniformly random action). Its per-episode success is the product over steps of
(1-ζ)·[sim action correct] + ζ/A, which is (ζ/2)^(H-1)·(1-ζ/2) for A = 2 and the drifted lock.

Exploration transfer: the set of policies that follow the sim-optimal code before a step j and from j on
shift every action by δ in 1..A-1, plus the sim-optimal policy itself: H·(A-1)+1 policies which in the sim
visit every on-track (state, action) pair (`sim_coverage` checks it). After its first deviation a policy is in
the sim's absorbing failure state, where every continuation covers the same sim states; the persistent shift
is the continuation under which the sim's exploration policies also reach the drifted target's states -- the
coverage assumption of the paper (the real system's states are reachable by the sim's exploration policies).
On the target, one policy is drawn per episode and mixed with random actions (probability `explore_zeta`).
Mismatch patterns outside that assumption (isolated flips at scattered steps) remove the advantage; pass
`mismatch_steps` to `lock_study` to see it.

Learner (the same for both methods): a certainty-equivalence tabular model of the target built from the
replay data (visit counts, observed advances and rewards per (step, action)), Q by backward induction with
unvisited pairs valued 0, greedy actions with ties broken towards the sim-optimal action. The target counts
as solved when that greedy policy opens the target lock; the number of target episodes until then is
counted up to a budget, and runs still unsolved at the budget count as the budget (a censored mean).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

FAIL = -1


@dataclass(frozen=True)
class CombinationLock:
    """A combination lock MDP with horizon len(code) and `n_actions` actions (see the module docstring)."""

    code: tuple[int, ...]
    n_actions: int = 2

    def __post_init__(self):
        if self.n_actions < 2:
            raise ValueError(f"n_actions must be >= 2, got {self.n_actions}")
        if len(self.code) < 1:
            raise ValueError("a combination lock needs a code of at least one step")
        for h, action in enumerate(self.code):
            if not 0 <= int(action) < self.n_actions:
                raise ValueError(f"code[{h}] = {action} is not an action in 0..{self.n_actions - 1}")
        object.__setattr__(self, "code", tuple(int(a) for a in self.code))

    @property
    def horizon(self) -> int:
        """Number of steps H."""
        return len(self.code)

    def step(self, h: int, state: int, action: int) -> tuple[int, float]:
        """One transition at step h.

        Args:
            h: step index in 0..H-1.
            state: h when on track, `FAIL` otherwise.
            action: action in 0..A-1.

        Returns:
            (next_state, reward).
        """
        if not 0 <= h < self.horizon:
            raise ValueError(f"step {h} outside 0..{self.horizon - 1}")
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action {action} at step {h} is not in 0..{self.n_actions - 1}")
        if state == FAIL:
            return FAIL, 0.0
        if state != h:
            raise ValueError(f"state {state} at step {h}: expected {h} (on track) or FAIL")
        if action != self.code[h]:
            return FAIL, 0.0
        return h + 1, float(h + 1 == self.horizon)

    def episode_return(self, actions: Sequence[int]) -> float:
        """Return of playing the action sequence `actions` (length H) from the start."""
        if len(actions) != self.horizon:
            raise ValueError(f"expected {self.horizon} actions, got {len(actions)}")
        state, total = 0, 0.0
        for h, action in enumerate(actions):
            state, reward = self.step(h, state, int(action))
            total += reward
        return total

    def optimal_q(self) -> np.ndarray:
        """Optimal Q[h, a] of the on-track states by backward induction (value iteration on the known model)."""
        q = np.zeros((self.horizon, self.n_actions))
        v_next = 0.0
        for h in reversed(range(self.horizon)):
            q[h, self.code[h]] = float(h + 1 == self.horizon) + v_next
            v_next = q[h].max()
        return q


def optimal_policy(lock: CombinationLock) -> np.ndarray:
    """Greedy action sequence of `lock.optimal_q()` (the policy trained on that lock)."""
    return lock.optimal_q().argmax(axis=1)


def shifted_lock(sim: CombinationLock, mismatch_steps: Sequence[int] | None = None, offset: int = 1) -> CombinationLock:
    """The target lock: `sim`'s code with the correct action shifted by `offset` at `mismatch_steps`.

    Args:
        sim: the simulator's lock.
        mismatch_steps: steps whose correct action differs; None means every step but the first (drifted lock).
        offset: shift of the correct action (mod A) at those steps; must not be a multiple of A.
    """
    if offset % sim.n_actions == 0:
        raise ValueError(f"offset {offset} is a multiple of n_actions={sim.n_actions}: the codes would not differ")
    steps = range(1, sim.horizon) if mismatch_steps is None else mismatch_steps
    code = list(sim.code)
    for h in steps:
        if not 0 <= h < sim.horizon:
            raise ValueError(f"mismatch step {h} outside 0..{sim.horizon - 1}")
        code[h] = (code[h] + offset) % sim.n_actions
    return CombinationLock(tuple(code), sim.n_actions)


def exploration_policies(sim: CombinationLock) -> np.ndarray:
    """The sim's exploration policy set: deviate from the sim-optimal code from step j on by a shift δ.

    Returns:
        (H·(A-1)+1, H) action sequences; row 0 is the sim-optimal policy.
    """
    base = optimal_policy(sim)
    rows = [base]
    for j in range(sim.horizon):
        for delta in range(1, sim.n_actions):
            row = base.copy()
            row[j:] = (row[j:] + delta) % sim.n_actions
            rows.append(row)
    return np.array(rows)


def sim_coverage(sim: CombinationLock, policies: np.ndarray) -> float:
    """Fraction of the sim's on-track (state, action) pairs that the deterministic `policies` visit."""
    visited = np.zeros((sim.horizon, sim.n_actions), dtype=bool)
    for actions in np.asarray(policies):
        for h, action in enumerate(actions):
            visited[h, action] = True
            if action != sim.code[h]:
                break
    return float(visited.mean())


def episode_success_probability(target: CombinationLock, behaviour: np.ndarray, zeta: float) -> float:
    """Probability that one episode opens `target`.

    Args:
        behaviour: (K, H) action sequences, one drawn uniformly per episode (or a single (H,) sequence).
        zeta: per-step probability of replacing the policy's action by a uniformly random one.
    """
    behaviour = np.atleast_2d(behaviour)
    match = behaviour == np.asarray(target.code)[None, :]
    per_step = (1.0 - zeta) * match + zeta / target.n_actions
    return float(np.prod(per_step, axis=1).mean())


@dataclass
class LockBatch:
    """Target episodes: actions (N, H), on-track-before-step mask (N, H), advanced mask (N, H), rewards (N, H)."""

    actions: np.ndarray
    observed: np.ndarray
    advanced: np.ndarray
    rewards: np.ndarray


def run_episodes(target: CombinationLock, behaviour: np.ndarray, zeta: float, n: int,
                 rng: np.random.Generator) -> LockBatch:
    """Run `n` target episodes, each with one uniformly drawn row of `behaviour` mixed with random actions."""
    behaviour = np.atleast_2d(behaviour)
    chosen = behaviour[rng.integers(len(behaviour), size=n)]
    random_actions = rng.integers(target.n_actions, size=chosen.shape)
    actions = np.where(rng.random(chosen.shape) < zeta, random_actions, chosen)
    correct = actions == np.asarray(target.code)[None, :]
    observed = np.concatenate([np.ones((n, 1), bool), np.cumprod(correct, axis=1)[:, :-1].astype(bool)], axis=1)
    advanced = observed & correct
    rewards = np.zeros(actions.shape)
    rewards[:, -1] = advanced[:, -1]
    return LockBatch(actions, observed, advanced, rewards)


class TabularLockLearner:
    """Certainty-equivalence learner of a lock from replay data (off-policy; see the module docstring)."""

    def __init__(self, horizon: int, n_actions: int, prior_actions: np.ndarray):
        self.prior_actions = np.asarray(prior_actions, dtype=int)
        if self.prior_actions.shape != (horizon,):
            raise ValueError(f"prior_actions must have shape ({horizon},), got {self.prior_actions.shape}")
        self.visits = np.zeros((horizon, n_actions))
        self.advances = np.zeros((horizon, n_actions))
        self.reward_sum = np.zeros((horizon, n_actions))

    def copy(self) -> "TabularLockLearner":
        """An independent copy of the learner's statistics."""
        other = TabularLockLearner(*self.visits.shape, self.prior_actions)
        other.visits, other.advances = self.visits.copy(), self.advances.copy()
        other.reward_sum = self.reward_sum.copy()
        return other

    def add(self, batch: LockBatch, count: int | None = None) -> None:
        """Add the first `count` episodes of `batch` (all when None) to the statistics."""
        sl = slice(None) if count is None else slice(0, count)
        observed = batch.observed[sl]
        steps = np.nonzero(observed)[1]
        acts = batch.actions[sl][observed]
        np.add.at(self.visits, (steps, acts), 1.0)
        np.add.at(self.advances, (steps, acts), batch.advanced[sl][observed].astype(float))
        np.add.at(self.reward_sum, (steps, acts), batch.rewards[sl][observed])

    def q_values(self) -> np.ndarray:
        """Q[h, a] of the empirical model; unvisited pairs are 0."""
        horizon = self.visits.shape[0]
        q = np.zeros_like(self.visits)
        seen = self.visits > 0
        v_next = 0.0
        for h in reversed(range(horizon)):
            q[h, seen[h]] = (self.reward_sum[h, seen[h]] + self.advances[h, seen[h]] * v_next) / self.visits[h, seen[h]]
            v_next = q[h].max()
        return q

    def greedy_policy(self) -> np.ndarray:
        """Greedy action per step; ties go to the prior (sim-optimal) action."""
        q = self.q_values()
        greedy = q.argmax(axis=1)
        keep_prior = q[np.arange(len(q)), self.prior_actions] >= q.max(axis=1)
        return np.where(keep_prior, self.prior_actions, greedy)


def episodes_to_solve(target: CombinationLock, prior_actions: np.ndarray, behaviour: np.ndarray, zeta: float,
                      budget: int, rng: np.random.Generator, batch_size: int = 1024) -> int | None:
    """Target episodes until the learner's greedy policy opens `target`, or None if not within `budget`.

    Episodes are simulated in batches; inside the batch where the target gets solved, the exact episode is
    found by bisection over batch prefixes (solving is monotone in the data for this learner and lock).
    """
    learner = TabularLockLearner(target.horizon, target.n_actions, prior_actions)

    def solved(model: TabularLockLearner) -> bool:
        return target.episode_return(model.greedy_policy()) == 1.0

    if solved(learner):
        return 0
    used = 0
    while used < budget:
        n = min(batch_size, budget - used)
        batch = run_episodes(target, behaviour, zeta, n, rng)
        before = learner.copy()
        learner.add(batch)
        if solved(learner):
            low, high = 1, n
            while low < high:
                mid = (low + high) // 2
                trial = before.copy()
                trial.add(batch, mid)
                if solved(trial):
                    high = mid
                else:
                    low = mid + 1
            return used + low
        used += n
    return None


def lock_study(horizons: Sequence[int] = tuple(range(4, 13)), seeds: int = 5, n_actions: int = 2,
               zeta: float = 0.5, explore_zeta: float = 0.1, budget: int = 100_000,
               mismatch_steps: Sequence[int] | None = None) -> list[dict]:
    """Target episodes to solve the lock, direct transfer versus exploration-policy transfer, per horizon.

    Each seed draws a random sim code; the target is `shifted_lock(sim, mismatch_steps)` (mismatch steps at or
    beyond a horizon are ignored for that horizon; None = drifted lock).

    Returns:
        One dict per horizon: horizon, seeds, budget, direct/explore analytic per-episode success probability
        (`*_p_success`, averaged over seeds), censored mean episodes to solve (`*_mean_episodes`, unsolved runs
        count as the budget), number of seeds solved within the budget (`*_solved`), and per-seed episodes
        (`*_episodes`, None = not solved).
    """
    if seeds < 1 or budget < 1:
        raise ValueError(f"seeds and budget must be >= 1, got seeds={seeds}, budget={budget}")
    if not (0.0 <= zeta <= 1.0 and 0.0 <= explore_zeta <= 1.0):
        raise ValueError(f"zeta and explore_zeta must lie in [0, 1], got {zeta}, {explore_zeta}")
    rows = []
    for horizon in horizons:
        if horizon < 2:
            raise ValueError(f"horizon {horizon}: the study needs H >= 2")
        steps = None if mismatch_steps is None else [h for h in mismatch_steps if h < horizon]
        result = {"horizon": int(horizon), "seeds": seeds, "budget": budget}
        per_method: dict[str, list] = {"direct": [], "explore": []}
        probs: dict[str, list] = {"direct": [], "explore": []}
        for seed in range(seeds):
            code_rng = np.random.default_rng([seed, horizon])
            sim = CombinationLock(tuple(code_rng.integers(n_actions, size=horizon)), n_actions)
            target = shifted_lock(sim, steps)
            prior = optimal_policy(sim)
            setups = {"direct": (prior, zeta), "explore": (exploration_policies(sim), explore_zeta)}
            for index, (method, (behaviour, z)) in enumerate(setups.items()):
                probs[method].append(episode_success_probability(target, behaviour, z))
                rng = np.random.default_rng([seed, horizon, index])
                per_method[method].append(episodes_to_solve(target, prior, behaviour, z, budget, rng))
        for method, episodes in per_method.items():
            censored = [budget if e is None else e for e in episodes]
            result[f"{method}_p_success"] = float(np.mean(probs[method]))
            result[f"{method}_mean_episodes"] = float(np.mean(censored))
            result[f"{method}_solved"] = sum(e is not None for e in episodes)
            result[f"{method}_episodes"] = episodes
        rows.append(result)
    return rows


def lock_table_markdown(rows: list[dict]) -> str:
    """Markdown table of `lock_study` rows; a censored mean (some seed unsolved) is shown as '>= mean'.

    ratio = direct / explore mean episodes (floored at one episode), a lower bound when only direct is censored.
    """
    lines = ["| H | direct P(success)/episode | direct episodes to solve | direct solved | "
             "explore P(success)/episode | explore episodes to solve | explore solved | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [str(row["horizon"])]
        for method in ("direct", "explore"):
            mean = row[f"{method}_mean_episodes"]
            prefix = ">= " if row[f"{method}_solved"] < row["seeds"] else ""
            cells += [f"{row[f'{method}_p_success']:.3g}", f"{prefix}{mean:.1f}",
                      f"{row[f'{method}_solved']}/{row['seeds']}"]
        ratio_prefix = ">= " if row["direct_solved"] < row["seeds"] and row["explore_solved"] == row["seeds"] else ""
        cells.append(f"{ratio_prefix}{row['direct_mean_episodes'] / max(row['explore_mean_episodes'], 1.0):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    budget = rows[0]["budget"] if rows else 0
    lines.append("")
    lines.append(f"Mean target episodes until the learned greedy policy opens the target lock, over seeds; runs "
                 f"unsolved within {budget} episodes count as {budget}. ratio = direct / explore.")
    return "\n".join(lines)


def plot_lock_study(rows: list[dict], path: str | Path) -> Path:
    """Save a log-scale plot of episodes to solve versus H (measured means and 1/p expectations) as PNG."""
    from sim2real_core.figures import plt, save_figure

    horizons = [r["horizon"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, label, color in (("direct", "direct transfer (ζ-greedy)", "tab:red"),
                                 ("explore", "exploration-policy transfer", "tab:blue")):
        ax.plot(horizons, [r[f"{method}_mean_episodes"] for r in rows], "o-", color=color, label=label)
        ax.plot(horizons, [1.0 / r[f"{method}_p_success"] for r in rows], "--", color=color, alpha=0.5,
                label=f"{label}: 1/P(success)")
    if rows:
        ax.axhline(rows[0]["budget"], color="gray", linestyle=":", label="budget")
    ax.set_yscale("log")
    ax.set_xlabel("horizon H")
    ax.set_ylabel("target episodes to solve")
    ax.set_title("Combination lock: sim-to-target transfer")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=120)
    return path
