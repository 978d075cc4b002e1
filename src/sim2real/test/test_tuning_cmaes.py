"""CMA-ES sim tuning: strict target-evaluation budget, warm starts, improvement on LQR."""
import numpy as np
import pytest

from sim2real.tuning.cmaes_tuner import tune_with_cmaes
from sim2real.tuning.lqr import LQRTargetTask, random_lqr


@pytest.mark.parametrize("budget,population", [(23, 10), (30, 10), (1, 6)])
def test_budget_is_never_exceeded(budget, population):
    task = LQRTargetTask(random_lqr(seed=0))
    theta0 = task.tuning.random_start(np.random.default_rng(0))
    result = tune_with_cmaes(task.train_generation, task.evaluate_on_target, theta0, 0.1, budget,
                             population_size=population)
    assert task.evaluations == len(result.evaluations) == budget
    assert [e.index for e in result.evaluations] == list(range(budget))


def test_improves_lqr_within_budget_and_uses_warm_starts():
    problem = random_lqr(seed=0)
    task, cold = LQRTargetTask(problem), LQRTargetTask(problem)
    theta0 = task.tuning.random_start(np.random.default_rng(1))
    start = task.tuning.normalized(task.tuning.real_return(theta0))
    result = tune_with_cmaes(task.train_generation, task.evaluate_on_target, theta0, 0.1, budget=150, seed=1)
    final = task.tuning.normalized(result.best_return)
    assert start < 0.9 and final >= 0.95 and final > start
    assert result.best_return == max(e.target_return for e in result.evaluations)
    assert -result.best_return == pytest.approx(
        -task.evaluate_on_target(task.train(result.best_params, None)), rel=1e-6)
    tune_with_cmaes(lambda generation, warm: cold.train_generation(generation, None), cold.evaluate_on_target,
                    theta0, 0.1, budget=150, seed=1)
    assert task.riccati_iterations < 0.9 * cold.riccati_iterations


def test_failed_candidates_rank_last_and_bounds_hold():
    bounds = np.array([[-1.0, 1.0], [-1.0, 1.0]])
    seen = []

    def evaluate(policy):
        seen.append(policy)
        return float("nan") if policy[0] > 0.5 else -float(np.sum((policy - 0.3) ** 2))

    result = tune_with_cmaes(lambda generation, warm: generation, evaluate, np.zeros(2), 0.5, budget=60, bounds=bounds)
    assert np.all(np.abs(np.array(seen)) <= 1.0)
    assert np.isfinite(result.best_return) and result.best_params[0] <= 0.5
    assert np.allclose(result.best_params, 0.3, atol=0.1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="budget"):
        tune_with_cmaes(lambda g, w: g, lambda p: 0.0, np.zeros(2), 0.1, budget=0)
    with pytest.raises(ValueError, match="bounds must have shape"):
        tune_with_cmaes(lambda g, w: g, lambda p: 0.0, np.zeros(2), 0.1, budget=5, bounds=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside the bounds"):
        tune_with_cmaes(lambda g, w: g, lambda p: 0.0, np.full(2, 2.0), 0.1, budget=5,
                        bounds=np.array([[-1.0, 1.0], [-1.0, 1.0]]))


def test_a_generation_trains_together_from_the_best_of_the_generations_before():
    calls = []

    def train(generation, warm):
        calls.append((len(generation), warm))
        return [-float(np.sum(params ** 2)) for params in generation]  # each "policy" is its own target return

    result = tune_with_cmaes(train, lambda policy: policy, np.ones(2), 0.3, budget=10, population_size=4)
    returns = [e.target_return for e in result.evaluations]
    assert [size for size, _ in calls] == [4, 4, 2]
    assert [warm for _, warm in calls] == [None, max(returns[:4]), max(returns[:8])]
    with pytest.raises(ValueError, match="train returned 1 policies for 4 candidates"):
        tune_with_cmaes(lambda generation, warm: [0.0], lambda policy: policy, np.ones(2), 0.3, budget=4,
                        population_size=4)
