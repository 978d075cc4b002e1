"""CMA-ES sim tuning: strict target-evaluation budget, warm starts, improvement on LQR."""
import numpy as np
import pytest

from sim2real_core.tuning.cmaes_tuner import tune_with_cmaes
from sim2real_core.tuning.lqr import LQRTargetTask, random_lqr


@pytest.mark.parametrize("budget,population", [(23, 10), (30, 10), (1, 6)])
def test_budget_is_never_exceeded(budget, population):
    task = LQRTargetTask(random_lqr(seed=0))
    theta0 = task.tuning.random_start(np.random.default_rng(0))
    result = tune_with_cmaes(task.train, task.evaluate_on_target, theta0, 0.1, budget, population_size=population)
    assert task.evaluations == len(result.evaluations) == budget
    assert [e.index for e in result.evaluations] == list(range(budget))


def test_improves_lqr_within_budget_and_uses_warm_starts():
    problem = random_lqr(seed=0)
    task, cold = LQRTargetTask(problem), LQRTargetTask(problem)
    theta0 = task.tuning.random_start(np.random.default_rng(1))
    start = task.tuning.normalized(task.tuning.real_return(theta0))
    result = tune_with_cmaes(task.train, task.evaluate_on_target, theta0, 0.1, budget=150, seed=1)
    final = task.tuning.normalized(result.best_return)
    assert start < 0.9 and final >= 0.95 and final > start
    assert result.best_return == max(e.target_return for e in result.evaluations)
    assert -result.best_return == pytest.approx(
        -task.evaluate_on_target(task.train(result.best_params, None)), rel=1e-6)
    tune_with_cmaes(lambda params, warm: cold.train(params, None), cold.evaluate_on_target, theta0, 0.1,
                    budget=150, seed=1)
    assert task.riccati_iterations < 0.9 * cold.riccati_iterations


def test_failed_candidates_rank_last_and_bounds_hold():
    bounds = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    seen = []

    def evaluate(policy):
        seen.append(policy)
        return float("nan") if policy[0] > 0.5 else -float(np.sum((policy - 0.3) ** 2))

    result = tune_with_cmaes(lambda params, warm: params, evaluate, np.zeros(2), 0.5, budget=60, bounds=bounds)
    assert np.all(np.abs(np.array(seen)) <= 1.0)
    assert np.isfinite(result.best_return) and result.best_params[0] <= 0.5
    assert np.allclose(result.best_params, 0.3, atol=0.1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="budget"):
        tune_with_cmaes(lambda p, w: p, lambda p: 0.0, np.zeros(2), 0.1, budget=0)
    with pytest.raises(ValueError, match="bounds must have shape"):
        tune_with_cmaes(lambda p, w: p, lambda p: 0.0, np.zeros(2), 0.1, budget=5, bounds=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside the bounds"):
        tune_with_cmaes(lambda p, w: p, lambda p: 0.0, np.full(2, 2.0), 0.1, budget=5,
                        bounds=np.array([[-1.0, 1.0], [-1.0, 1.0]]))
