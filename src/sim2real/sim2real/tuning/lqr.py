"""Performance-driven tuning of a linear simulator (LQR validation setting of arXiv 2510.17709).

Real system x' = A_r x + B_r u with cost Σ xᵀQx + uᵀRu from x0 ~ N(0, Σ0). The simulator has parameters
θ = (A_s, B_s); the policy trained in the sim is the LQR gain K(θ) = (R + BᵀPB)^(-1) BᵀPA with P the stabilising
solution of the sim's discrete algebraic Riccati equation (DARE). The real cost of a gain is
J_real(K) = tr(P_K Σ0), P_K solving the real closed-loop Lyapunov equation (infinite when A_r - B_r K is not
Schur stable). The sensitivity gradient dJ_real/dθ differentiates the DARE solution implicitly
(`sensitivity.implicit_vjp`) and chains it with the exact gradient of J_real with respect to K.

The outer objective is the real *return* -J_real (so both validation settings maximise). Normalised real
return: J_real(K*) / J_real(K(θ)), the optimal real cost over the achieved one (1 = real-optimal gain,
0 = unstable).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from sim2real.tuning.sensitivity import AscentStep, gradient_ascent, implicit_vjp, torch_single_thread


@dataclass(frozen=True)
class LQRProblem:
    """The real system and the cost: A_real (n, n), B_real (n, m), Q (n, n) ⪰ 0, R (m, m) ≻ 0, Σ0 (n, n)."""

    A_real: np.ndarray
    B_real: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    sigma0: np.ndarray

    def __post_init__(self):
        arrays = {name: np.asarray(getattr(self, name), dtype=float)
                  for name in ("A_real", "B_real", "Q", "R", "sigma0")}
        n, m = arrays["B_real"].shape
        expected = {"A_real": (n, n), "B_real": (n, m), "Q": (n, n), "R": (m, m), "sigma0": (n, n)}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise ValueError(f"LQRProblem.{name} must have shape {shape}, got {arrays[name].shape}")
            object.__setattr__(self, name, arrays[name])
        if np.any(np.linalg.eigvalsh(self.R) <= 0):
            raise ValueError("LQRProblem.R must be positive definite")

    @property
    def n(self) -> int:
        return self.A_real.shape[0]

    @property
    def m(self) -> int:
        return self.B_real.shape[1]


def random_lqr(n: int = 3, m: int = 2, spectral_radius: float = 1.1, seed: int = 0) -> LQRProblem:
    """A random real system with open-loop spectral radius `spectral_radius`, Q = I, R = I, Σ0 = I."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    a *= spectral_radius / np.max(np.abs(np.linalg.eigvals(a)))
    return LQRProblem(a, rng.normal(size=(n, m)), np.eye(n), np.eye(m), np.eye(n))


def lqr_gain(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, P): LQR gain and stabilising DARE solution of (A, B, Q, R); raises ValueError when none exists."""
    try:
        P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError(f"no stabilising DARE solution for this (A, B): {exc}") from exc
    P = 0.5 * (P + P.T)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A), P


def riccati_iteration(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, P0: np.ndarray | None = None,
                      tol: float = 1e-10, max_iter: int = 10_000) -> tuple[np.ndarray, np.ndarray, int]:
    """LQR by Riccati value iteration from P0 (zero when None): (K, P, iterations).

    The iterative trainer used where a warm start matters: starting from a nearby P converges in fewer
    iterations. Raises ValueError when it does not converge.
    """
    P = np.zeros_like(Q) if P0 is None else np.array(P0, dtype=float)
    for iteration in range(1, max_iter + 1):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        new = Q + A.T @ P @ (A - B @ K)
        new = 0.5 * (new + new.T)
        if not np.all(np.isfinite(new)):
            break
        if np.max(np.abs(new - P)) <= tol * max(1.0, np.max(np.abs(new))):
            return np.linalg.solve(R + B.T @ new @ B, B.T @ new @ A), new, iteration
        P = new
    raise ValueError(f"Riccati iteration did not converge in {max_iter} iterations")


def real_cost(problem: LQRProblem, K: np.ndarray) -> float:
    """J_real(K) = tr(P_K Σ0) of the gain on the real system; inf when the real closed loop is not stable."""
    closed = problem.A_real - problem.B_real @ K
    if np.max(np.abs(np.linalg.eigvals(closed))) >= 1.0:
        return float("inf")
    P = scipy.linalg.solve_discrete_lyapunov(closed.T, problem.Q + K.T @ problem.R @ K)
    return float(np.trace(P @ problem.sigma0))


class LQRSimTuning:
    """Outer problem of the LQR validation: θ = (vec A_s, vec B_s), row-major."""

    def __init__(self, problem: LQRProblem):
        self.problem = problem
        self.n_params = problem.n * problem.n + problem.n * problem.m
        self.optimal_cost = real_cost(problem, lqr_gain(problem.A_real, problem.B_real, problem.Q, problem.R)[0])

    def unpack(self, theta):
        """(A_s, B_s) of θ (numpy or torch)."""
        n, m = self.problem.n, self.problem.m
        return theta[: n * n].reshape(n, n), theta[n * n:].reshape(n, m)

    def pack(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """θ of (A_s, B_s)."""
        return np.concatenate([np.asarray(A, float).reshape(-1), np.asarray(B, float).reshape(-1)])

    def gain(self, theta: np.ndarray) -> np.ndarray:
        """The policy trained in the sim: LQR gain of (A_s, B_s)."""
        A, B = self.unpack(self._check(theta))
        return lqr_gain(A, B, self.problem.Q, self.problem.R)[0]

    def real_return(self, theta: np.ndarray) -> float:
        """-J_real(K(θ)); -inf when the sim has no LQR solution or its gain destabilises the real system."""
        try:
            return -real_cost(self.problem, self.gain(theta))
        except ValueError:
            return float("-inf")

    def normalized(self, value: float) -> float:
        """J_real(K*) / J_real(K(θ)) of a real return value = -J_real(K(θ))."""
        return self.optimal_cost / -value if np.isfinite(value) else 0.0

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Real return -J_real(K(θ)) and its sensitivity gradient; the real closed loop must be stable."""
        theta = self._check(theta)
        A, B = self.unpack(theta)
        K, P_star = lqr_gain(A, B, self.problem.Q, self.problem.R)
        if not np.isfinite(real_cost(self.problem, K)):
            raise ValueError("the sim's gain destabilises the real system: the real return has no gradient there")
        with torch_single_thread():
            theta_t = torch.as_tensor(theta).requires_grad_(True)
            p_t = torch.as_tensor(P_star.reshape(-1)).requires_grad_(True)
            value = -self._real_cost_torch(self._gain_torch(p_t, theta_t))
            g_p, g_direct = torch.autograd.grad(value, (p_t, theta_t))
            grad = g_direct + implicit_vjp(self._dare_residual, p_t, theta_t, g_p)
        return float(value.detach()), grad.numpy()

    def random_start(self, rng: np.random.Generator, scale: float = 0.3, max_tries: int = 1000) -> np.ndarray:
        """A randomised start: the real (A, B) plus N(0, scale²) noise, redrawn until its gain stabilises the
        real system."""
        truth = self.pack(self.problem.A_real, self.problem.B_real)
        for _ in range(max_tries):
            theta = truth + scale * rng.normal(size=truth.shape)
            if np.isfinite(self.real_return(theta)):
                return theta
        raise ValueError(f"no start within noise scale {scale} stabilises the real system in {max_tries} draws")

    def _gain_torch(self, p_flat: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        A, B = self.unpack(theta)
        P = p_flat.reshape(self.problem.n, self.problem.n)
        return torch.linalg.solve(torch.as_tensor(self.problem.R) + B.T @ P @ B, B.T @ P @ A)

    def _dare_residual(self, p_flat: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        A, B = self.unpack(theta)
        P = p_flat.reshape(self.problem.n, self.problem.n)
        K = self._gain_torch(p_flat, theta)
        return (A.T @ P @ A - P - A.T @ P @ B @ K + torch.as_tensor(self.problem.Q)).reshape(-1)

    def _real_cost_torch(self, K: torch.Tensor) -> torch.Tensor:
        pr = self.problem
        closed = torch.as_tensor(pr.A_real) - torch.as_tensor(pr.B_real) @ K
        stage = torch.as_tensor(pr.Q) + K.T @ torch.as_tensor(pr.R) @ K
        lyap = torch.eye(pr.n * pr.n, dtype=torch.float64) - torch.kron(closed.T, closed.T)
        P = torch.linalg.solve(lyap, stage.reshape(-1)).reshape(pr.n, pr.n)
        return torch.trace(P @ torch.as_tensor(pr.sigma0))

    def _check(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_params,):
            raise ValueError(f"sim parameters must have shape ({self.n_params},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("sim parameters contain non-finite values")
        return theta


def tune_lqr(tuning: LQRSimTuning, theta0: np.ndarray, iterations: int = 60,
             step: float = 0.1) -> tuple[np.ndarray, list[AscentStep]]:
    """Sensitivity-gradient ascent of the real return -J_real(K(θ)) over the sim's (A_s, B_s).

    Trial steps whose gain destabilises the real system are rejected by the line search.

    Returns:
        (tuned θ, per-iteration history; `normalized` is J_real(K*)/J_real(K(θ))).
    """
    return gradient_ascent(tuning.value_and_grad, tuning.real_return, tuning.normalized, theta0, iterations, step)


@dataclass(frozen=True)
class LQRPolicy:
    """A trained LQR policy u = -K x, with the Riccati solution P it came from and the iterations it took."""

    K: np.ndarray
    P: np.ndarray
    iterations: int


class LQRTargetTask:
    """`train_generation` / `evaluate_on_target` callables of `cmaes_tuner.tune_with_cmaes` for the LQR problem.

    train(θ, warm_start) runs Riccati iteration on the sim (A_s, B_s) of θ, starting from the warm start's P;
    it returns None when the sim has no stabilising solution. evaluate_on_target returns -J_real(K) (-inf for
    None or an unstable real closed loop). Counters: `evaluations` and `riccati_iterations`.
    """

    def __init__(self, problem: LQRProblem):
        self.problem = problem
        self.tuning = LQRSimTuning(problem)
        self.evaluations = 0
        self.riccati_iterations = 0

    def train(self, theta: np.ndarray, warm_start: LQRPolicy | None) -> LQRPolicy | None:
        """The LQR policy of the sim with parameters θ."""
        A, B = self.tuning.unpack(np.asarray(theta, dtype=float))
        try:
            K, P, iterations = riccati_iteration(A, B, self.problem.Q, self.problem.R,
                                                 None if warm_start is None else warm_start.P)
        except (ValueError, np.linalg.LinAlgError):
            return None
        self.riccati_iterations += iterations
        return LQRPolicy(K, P, iterations)

    def train_generation(self, thetas: list[np.ndarray], warm_start: LQRPolicy | None) -> list[LQRPolicy | None]:
        """`train` of each θ of a CMA-ES generation, all from the same warm start."""
        return [self.train(theta, warm_start) for theta in thetas]

    def evaluate_on_target(self, policy: LQRPolicy | None) -> float:
        """Real return -J_real(K) of the policy."""
        self.evaluations += 1
        return float("-inf") if policy is None else -real_cost(self.problem, policy.K)
