"""Gradient-free outer loop for performance-driven sim tuning: CMA-ES (the `cmaes` library) over sim parameters.

For problems whose inner training cannot be differentiated (the arm: a policy trained by RL in MuJoCo), the
outer objective -- the target return of the policy trained under sim parameters θ -- is maximised by CMA-ES
under a strict budget of target evaluations. Each generation's candidates are trained together with
`train([θ, ...], warm_start)` (a caller may train them side by side, e.g. as cluster tasks), where `warm_start`
is the policy of the best candidate of the generations before (None in the first); then each is evaluated once,
in order, with `evaluate_on_target(policy)`. A non-finite target return counts as a failed candidate (ranked
last). Exceptions from `train` or `evaluate_on_target` propagate; the evaluations made so far have already been
passed to `callback`, which is where a caller persists progress.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from cmaes import CMA

FAILED_LOSS = 1e30  # what CMA-ES is told for a non-finite target return: worse than any real candidate


@dataclass(frozen=True)
class TargetEvaluation:
    """One target evaluation: its index (0-based), CMA-ES generation, sim parameters and target return."""

    index: int
    generation: int
    params: np.ndarray
    target_return: float
    best_return: float


@dataclass
class CmaesTuningResult:
    """Best parameters, their target return and trained policy, and every target evaluation in order."""

    best_params: np.ndarray
    best_return: float
    best_policy: Any
    evaluations: list[TargetEvaluation] = field(default_factory=list)


def tune_with_cmaes(train: Callable[[list[np.ndarray], Any], list], evaluate_on_target: Callable[[Any], float],
                    x0: np.ndarray, sigma0: float, budget: int, bounds: np.ndarray | None = None,
                    population_size: int | None = None, seed: int = 0,
                    callback: Callable[[TargetEvaluation], None] | None = None) -> CmaesTuningResult:
    """Maximise the target return of sim-trained policies over sim parameters with CMA-ES.

    Args:
        train: (a generation's params, warm_start) -> their policies, in order; warm_start is the best policy of
            the generations before, or None.
        evaluate_on_target: policy -> target return (one call = one unit of the budget).
        x0: initial sim parameters (mean of the first CMA-ES generation).
        sigma0: initial CMA-ES step size.
        budget: maximum number of `evaluate_on_target` calls; never exceeded. When fewer evaluations remain
            than a generation needs, the remaining candidates are still evaluated (and can become the best),
            but that last generation is not told to CMA-ES.
        bounds: optional (dim, 2) box [low, high] per parameter.
        population_size: CMA-ES population (library default 4 + 3·ln(dim) when None).
        seed: CMA-ES sampling seed.
        callback: called with each TargetEvaluation as it happens (progress feedback).

    Returns:
        CmaesTuningResult; best_return is -inf and best_policy None if no evaluation returned a finite value.
    """
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    if budget < 1:
        raise ValueError(f"budget must be >= 1 target evaluation, got {budget}")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be > 0, got {sigma0}")
    if bounds is not None:
        bounds = np.asarray(bounds, dtype=float)
        if bounds.shape != (x0.size, 2) or np.any(bounds[:, 0] >= bounds[:, 1]):
            raise ValueError(f"bounds must have shape ({x0.size}, 2) with low < high per row, got {bounds.shape}")
        if np.any(x0 < bounds[:, 0]) or np.any(x0 > bounds[:, 1]):
            raise ValueError("x0 lies outside the bounds")
    optimizer = CMA(mean=x0, sigma=sigma0, bounds=bounds, seed=seed, population_size=population_size)
    result = CmaesTuningResult(best_params=x0.copy(), best_return=float("-inf"), best_policy=None)
    while len(result.evaluations) < budget:
        generation = [optimizer.ask()
                      for _ in range(min(optimizer.population_size, budget - len(result.evaluations)))]
        policies = list(train(generation, result.best_policy))
        if len(policies) != len(generation):
            raise ValueError(f"train returned {len(policies)} policies for {len(generation)} candidates")
        told = []
        for params, policy in zip(generation, policies):
            target_return = float(evaluate_on_target(policy))
            if np.isfinite(target_return) and target_return > result.best_return:
                result.best_params, result.best_return, result.best_policy = params.copy(), target_return, policy
            evaluation = TargetEvaluation(len(result.evaluations), optimizer.generation, params.copy(),
                                          target_return, result.best_return)
            result.evaluations.append(evaluation)
            if callback is not None:
                callback(evaluation)
            told.append((params, -target_return if np.isfinite(target_return) else FAILED_LOSS))
        if len(told) == optimizer.population_size:
            optimizer.tell(told)
    return result
