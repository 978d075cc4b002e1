"""Performance-driven tuning of a tabular simulator (validation setting of arXiv 2510.17709: 3 states, 2 actions).

Outer problem: choose simulator parameters θ (transition logits, optionally rewards, of the sim MDP) to maximise the
*real* return of the policy trained in the sim. Inner problem: the entropy-regularised (soft) optimal policy of
the sim MDP, π_θ = softmax(Q*_θ / τ) with Q* the fixed point of Q = r_θ + γ P_θ τ·logsumexp(Q/τ). The gradient
dJ_real(π_θ)/dθ is the sensitivity gradient: implicit differentiation of that fixed point
(`sensitivity.implicit_vjp`), chained with the exact gradient of the real return with respect to the policy.

Real return: J(π) = μ0ᵀ (I - γ P_real^π)^(-1) r_real^π, computed exactly from the real model (the tuner only
ever sees J and ∇_π J, as it would from real-world policy evaluation). Normalised real return:
(J(π_θ) - J_min) / (J* - J_min), where J* and J_min are the best and the worst real returns over all policies
(1 = the real optimum, 0 = the worst policy).

`max_likelihood_params` gives the most *accurate* sim of a family (system identification), the baseline the
performance-tuned sim is compared with (`study.accuracy_vs_performance_study`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import softmax

from sim2real.tuning.sensitivity import AscentStep, gradient_ascent, implicit_vjp, torch_single_thread


@dataclass(frozen=True)
class TabularMDP:
    """A discounted tabular MDP: transitions[s, a, s'], rewards[s, a], discount, initial state distribution."""

    transitions: np.ndarray
    rewards: np.ndarray
    gamma: float
    initial: np.ndarray

    def __post_init__(self):
        p, r, mu = (np.asarray(x, dtype=float) for x in (self.transitions, self.rewards, self.initial))
        if p.ndim != 3 or p.shape[0] != p.shape[2]:
            raise ValueError(f"transitions must have shape (S, A, S), got {p.shape}")
        if r.shape != p.shape[:2]:
            raise ValueError(f"rewards must have shape {p.shape[:2]}, got {r.shape}")
        if mu.shape != (p.shape[0],):
            raise ValueError(f"initial must have shape ({p.shape[0]},), got {mu.shape}")
        if np.any(p < 0) or not np.allclose(p.sum(axis=2), 1.0):
            raise ValueError("transitions[s, a, :] must be probability vectors")
        if np.any(mu < 0) or not np.isclose(mu.sum(), 1.0):
            raise ValueError("initial must be a probability vector")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        object.__setattr__(self, "transitions", p)
        object.__setattr__(self, "rewards", r)
        object.__setattr__(self, "initial", mu)

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[1]


def random_mdp(n_states: int = 3, n_actions: int = 2, gamma: float = 0.9, seed: int = 0) -> TabularMDP:
    """A random MDP: Dirichlet(1) transition rows, rewards uniform in [0, 1], uniform initial state."""
    rng = np.random.default_rng(seed)
    return TabularMDP(rng.dirichlet(np.ones(n_states), size=(n_states, n_actions)),
                      rng.uniform(0.0, 1.0, size=(n_states, n_actions)), gamma, np.full(n_states, 1.0 / n_states))


def policy_return(mdp: TabularMDP, policy: np.ndarray) -> float:
    """Exact discounted return μ0ᵀ V^π of a (S, A) stochastic policy."""
    p_pi = np.einsum("sa,sat->st", policy, mdp.transitions)
    r_pi = np.einsum("sa,sa->s", policy, mdp.rewards)
    values = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * p_pi, r_pi)
    return float(mdp.initial @ values)


def optimal_return(mdp: TabularMDP, sign: float = 1.0) -> float:
    """Best (sign=+1) or worst (sign=-1) return over all policies: policy iteration on sign·r, exact evaluation."""
    actions = np.zeros(mdp.n_states, dtype=int)
    signed = TabularMDP(mdp.transitions, sign * mdp.rewards, mdp.gamma, mdp.initial)
    states = np.arange(mdp.n_states)
    while True:
        policy = np.eye(mdp.n_actions)[actions]
        values = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * mdp.transitions[states, actions],
                                 signed.rewards[states, actions])
        q = signed.rewards + mdp.gamma * mdp.transitions @ values
        improved = q.argmax(axis=1)
        if np.all(q[states, improved] <= q[states, actions] + 1e-12):
            return sign * policy_return(signed, policy)
        actions = improved


def soft_optimal_q(mdp: TabularMDP, temperature: float, tol: float = 1e-11, max_iter: int = 200) -> np.ndarray:
    """Fixed point of Q = r + γ P τ·logsumexp(Q/τ), by Newton's method (soft policy iteration).

    Each step solves (I - γ P Π_Q) ΔQ = -F(Q) with Π_Q the softmax policy of Q; converged when the residual
    F(Q) is below tol·max(1, max|Q|).
    """
    s, a = mdp.rewards.shape
    p_flat = mdp.transitions.reshape(s * a, s)
    selector = np.repeat(np.eye(s), a, axis=1)  # (S, S·A): which state each (s, a) belongs to
    q = mdp.rewards.copy()
    for _ in range(max_iter):
        peak = q.max(axis=1, keepdims=True)
        weights = np.exp((q - peak) / temperature)
        values = peak[:, 0] + temperature * np.log(weights.sum(axis=1))
        residual = (q - mdp.rewards - mdp.gamma * mdp.transitions @ values).reshape(-1)
        if np.max(np.abs(residual)) <= tol * max(1.0, np.max(np.abs(q))):
            return q
        policy = selector * (weights / weights.sum(axis=1, keepdims=True)).reshape(1, -1)
        q = q - np.linalg.solve(np.eye(s * a) - mdp.gamma * p_flat @ policy, residual).reshape(s, a)
    raise RuntimeError(f"soft policy iteration did not converge in {max_iter} Newton steps")


class TabularSimTuning:
    """Outer problem of the tabular validation: θ = (transition logits, optionally rewards (S·A)) of the sim.

    Args:
        real: the real MDP (its model is used only to evaluate real returns and their policy gradient).
        temperature: entropy-regularisation temperature τ of the inner (sim) problem.
        tune_rewards: tune the sim rewards too; by default only the dynamics are tuned and the sim rewards are
            `real.rewards` (the task is known, the physics is not).
        state_independent: a misspecified sim family whose transitions P_θ(s'|a) ignore the state (A·S
            logits): no θ reproduces the real dynamics, so the most accurate sim and the best-performing sim
            differ.
    """

    def __init__(self, real: TabularMDP, temperature: float = 0.1, tune_rewards: bool = False,
                 state_independent: bool = False):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.real, self.temperature, self.tune_rewards = real, temperature, tune_rewards
        self.state_independent = state_independent
        s, a = real.n_states, real.n_actions
        self._n_logits = a * s if state_independent else s * a * s
        self.n_params = self._n_logits + (s * a if tune_rewards else 0)
        self.best_return = optimal_return(real, 1.0)
        self.worst_return = optimal_return(real, -1.0)

    def _unpack(self, theta):
        s, a = self.real.n_states, self.real.n_actions
        lib = torch if isinstance(theta, torch.Tensor) else np
        if self.state_independent:
            shared = theta[: self._n_logits].reshape(1, a, s)
            logits = shared.expand(s, a, s) if lib is torch else np.broadcast_to(shared, (s, a, s))
        else:
            logits = theta[: self._n_logits].reshape(s, a, s)
        if self.tune_rewards:
            rewards = theta[self._n_logits:].reshape(s, a)
        else:
            rewards = torch.as_tensor(self.real.rewards) if lib is torch else self.real.rewards
        return logits, rewards

    def sim_mdp(self, theta: np.ndarray) -> TabularMDP:
        """The sim MDP of parameters θ (same discount and initial distribution as the real one)."""
        theta = self._check(theta)
        logits, rewards = self._unpack(theta)
        return TabularMDP(softmax(logits, axis=2), rewards, self.real.gamma, self.real.initial)

    def sim_policy(self, theta: np.ndarray) -> np.ndarray:
        """The inner solution: soft-optimal policy of the sim MDP, (S, A)."""
        q = soft_optimal_q(self.sim_mdp(theta), self.temperature)
        return softmax(q / self.temperature, axis=1)

    def real_return(self, theta: np.ndarray) -> float:
        """Real return of the policy trained in the sim with parameters θ."""
        return policy_return(self.real, self.sim_policy(theta))

    def normalized(self, value: float) -> float:
        """(J - J_min) / (J* - J_min) of a real return J."""
        return (value - self.worst_return) / (self.best_return - self.worst_return)

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Real return of π_θ and its sensitivity gradient with respect to θ."""
        theta = self._check(theta)
        q_star = torch.as_tensor(soft_optimal_q(self.sim_mdp(theta), self.temperature).reshape(-1))
        with torch_single_thread():
            q = q_star.clone().requires_grad_(True)
            value = self._real_return_torch(q)
            (g_q,) = torch.autograd.grad(value, q)
            grad = implicit_vjp(self._residual, q_star, torch.as_tensor(theta), g_q)
        return float(value.detach()), grad.numpy()

    def max_likelihood_params(self, weights: np.ndarray | None = None) -> np.ndarray:
        """θ of the sim that best fits the real transitions (system identification with unlimited data).

        Maximises Σ w(s, a) Σ_s' P_real(s'|s, a) log P_θ(s'|s, a) over the family: the real transition
        probabilities themselves for the full family; for the state-independent family the w-weighted average
        over states of P_real(·|s, a) per action. Rewards, when tuned, are the real ones.

        Args:
            weights: (S, A) state-action data weights; uniform when None.
        """
        s, a = self.real.n_states, self.real.n_actions
        w = np.ones((s, a)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (s, a) or np.any(w < 0) or not np.all(w.sum(axis=0) > 0):
            raise ValueError(f"weights must be a non-negative ({s}, {a}) array with data for every action")
        probs = self.real.transitions
        if self.state_independent:
            probs = np.einsum("sa,sat->at", w, probs) / w.sum(axis=0)[:, None]
        logits = np.log(np.clip(probs, 1e-12, None)).reshape(-1)
        return np.concatenate([logits, self.real.rewards.reshape(-1)]) if self.tune_rewards else logits

    def random_start(self, rng: np.random.Generator) -> np.ndarray:
        """A randomised start: logits ~ N(0, 1), rewards ~ U(0, 1)."""
        logits = rng.normal(size=self._n_logits)
        if not self.tune_rewards:
            return logits
        return np.concatenate([logits, rng.uniform(0.0, 1.0, size=self.n_params - self._n_logits)])

    def _residual(self, q_flat: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        logits, rewards = self._unpack(theta)
        q = q_flat.reshape(rewards.shape)
        v = self.temperature * torch.logsumexp(q / self.temperature, dim=1)
        return (q - rewards - self.real.gamma * torch.softmax(logits, dim=2) @ v).reshape(-1)

    def _real_return_torch(self, q_flat: torch.Tensor) -> torch.Tensor:
        real = self.real
        policy = torch.softmax(q_flat.reshape(real.n_states, real.n_actions) / self.temperature, dim=1)
        p_pi = torch.einsum("sa,sat->st", policy, torch.as_tensor(real.transitions))
        r_pi = torch.einsum("sa,sa->s", policy, torch.as_tensor(real.rewards))
        values = torch.linalg.solve(torch.eye(real.n_states, dtype=torch.float64) - real.gamma * p_pi, r_pi)
        return torch.as_tensor(real.initial) @ values

    def _check(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.n_params,):
            raise ValueError(f"sim parameters must have shape ({self.n_params},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError("sim parameters contain non-finite values")
        return theta


def tune_tabular(tuning: TabularSimTuning, theta0: np.ndarray, iterations: int = 60,
                 step: float = 0.5) -> tuple[np.ndarray, list[AscentStep]]:
    """Sensitivity-gradient ascent of the real return over the sim parameters.

    Returns:
        (tuned θ, per-iteration history; `normalized` is (J - J_min)/(J* - J_min)).
    """
    return gradient_ascent(tuning.value_and_grad, tuning.real_return, tuning.normalized, theta0, iterations, step)
