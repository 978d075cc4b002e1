"""LQR sim tuning: gains and costs, sensitivity gradient against finite differences, convergence over 5 seeds."""
import numpy as np
import pytest

from sim2real.tuning.lqr import LQRSimTuning, lqr_gain, random_lqr, real_cost, riccati_iteration, tune_lqr


def test_dare_gain_matches_riccati_iteration_and_real_cost_matches_a_rollout_sum():
    problem = random_lqr(seed=2)
    K, P = lqr_gain(problem.A_real, problem.B_real, problem.Q, problem.R)
    K_it, P_it, _ = riccati_iteration(problem.A_real, problem.B_real, problem.Q, problem.R)
    np.testing.assert_allclose(K_it, K, atol=1e-7)
    closed, stage = problem.A_real - problem.B_real @ K, problem.Q + K.T @ problem.R @ K
    total, power = 0.0, np.eye(problem.n)
    for _ in range(2000):
        total += np.trace(power.T @ stage @ power @ problem.sigma0)
        power = closed @ power
    assert real_cost(problem, K) == pytest.approx(total, rel=1e-9)
    assert real_cost(problem, K) == pytest.approx(np.trace(P @ problem.sigma0), rel=1e-9)  # optimal gain: P_K = P
    assert real_cost(problem, np.zeros_like(K)) == float("inf")  # open loop is unstable (spectral radius 1.1)


def test_sensitivity_gradient_matches_finite_differences():
    tuning = LQRSimTuning(random_lqr(seed=0))
    theta = tuning.random_start(np.random.default_rng(3))
    value, grad = tuning.value_and_grad(theta)
    assert value == pytest.approx(tuning.real_return(theta), rel=1e-10)
    eps = 1e-6
    fd = np.array([(tuning.real_return(theta + eps * e) - tuning.real_return(theta - eps * e)) / (2 * eps)
                   for e in np.eye(tuning.n_params)])
    assert np.max(np.abs(fd)) > 1e-2
    np.testing.assert_allclose(grad, fd, atol=1e-6 * np.max(np.abs(fd)))


def test_tuning_converges_to_the_real_optimal_gain_from_5_random_starts():
    tuning = LQRSimTuning(random_lqr(seed=0))
    starts, finals = [], []
    for seed in range(5):
        _, history = tune_lqr(tuning, tuning.random_start(np.random.default_rng(seed)), iterations=20)
        starts.append(history[0].normalized)
        finals.append(history[-1].normalized)
    assert min(starts) < 0.5
    assert min(finals) >= 0.95, finals


def test_unstable_gain_has_zero_normalized_return_and_no_gradient():
    problem = random_lqr(seed=0)
    tuning = LQRSimTuning(problem)
    theta = tuning.pack(problem.A_real, -problem.B_real)  # sign-flipped actuation: destabilises the real loop
    assert tuning.real_return(theta) == float("-inf")
    assert tuning.normalized(tuning.real_return(theta)) == 0.0
    with pytest.raises(ValueError, match="destabilises the real system"):
        tuning.value_and_grad(theta)
