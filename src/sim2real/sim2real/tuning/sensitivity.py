"""Sensitivity gradients of an inner optimum, and the gradient ascent used by the outer loop.

For an inner solution z*(θ) defined by a residual F(z*, θ) = 0 (a soft Bellman fixed point, a Riccati
equation), the implicit function theorem gives dz*/dθ = -(∂F/∂z)^(-1) ∂F/∂θ. The outer loop needs only the
vector-Jacobian product gᵀ dz*/dθ, computed here with one adjoint solve.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch.autograd.functional import jacobian


@contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread (tiny tensors: thread hand-offs cost far more than the maths)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def implicit_vjp(residual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z_star: torch.Tensor,
                 theta: torch.Tensor, g_z: torch.Tensor) -> torch.Tensor:
    """gᵀ dz*/dθ for the solution z*(θ) of residual(z, θ) = 0.

    Args:
        residual: F(z, θ) -> vector of the same size as z (flat float64 tensors).
        z_star: the solution at `theta` (flat).
        theta: the parameters (flat).
        g_z: gradient of the outer objective with respect to z (flat).

    Returns:
        The gradient contribution with respect to θ (flat, like `theta`).
    """
    z_star, theta = z_star.detach(), theta.detach()
    f_z = jacobian(lambda z: residual(z, theta), z_star, vectorize=True)
    f_theta = jacobian(lambda t: residual(z_star, t), theta, vectorize=True)
    adjoint = torch.linalg.solve(f_z.T, g_z.detach())
    return -(f_theta.T @ adjoint)


@dataclass(frozen=True)
class AscentStep:
    """One outer iteration: objective value after the step, gradient norm, accepted step length, evaluations."""

    iteration: int
    value: float
    normalized: float
    grad_norm: float
    step: float
    evaluations: int


def gradient_ascent(value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
                    value: Callable[[np.ndarray], float], normalize: Callable[[float], float],
                    theta0: np.ndarray, iterations: int, step: float = 0.5, max_step: float = 2.0,
                    min_step: float = 1e-9) -> tuple[np.ndarray, list[AscentStep]]:
    """Maximise an objective with normalised-gradient steps and a backtracking step length.

    A trial θ + s·g/|g| is accepted when the objective increases (non-finite values are rejected, e.g. an
    unstable closed loop); the step then grows by 1.5 (up to `max_step`), otherwise it halves. Once the step
    is below `min_step` the ascent has converged: later iterations repeat the last entry without evaluations.

    Args:
        value_and_grad: θ -> (objective, gradient).
        value: θ -> objective (used for trial steps).
        normalize: objective -> normalised objective recorded in the history.
        theta0: start; iterations: outer iterations; step: initial step length in parameter space
            (a Euclidean distance in θ).

    Returns:
        (final θ, history with one entry for the start, iteration 0, and one per iteration).
    """
    theta = np.asarray(theta0, dtype=float).copy()
    current, grad = value_and_grad(theta)
    if not np.isfinite(current):
        raise ValueError("gradient_ascent: the objective at the start point is not finite")
    evaluations = 1
    history = [AscentStep(0, current, normalize(current), float(np.linalg.norm(grad)), 0.0, evaluations)]
    for iteration in range(1, iterations + 1):
        norm = float(np.linalg.norm(grad))
        accepted = 0.0
        if norm > 0.0:
            direction = grad / norm
            while step >= min_step:
                trial = theta + step * direction
                trial_value = value(trial)
                evaluations += 1
                if np.isfinite(trial_value) and trial_value > current:
                    theta, accepted = trial, step
                    step = min(1.5 * step, max_step)
                    break
                step *= 0.5
        if accepted:
            current, grad = value_and_grad(theta)
            evaluations += 1
        history.append(AscentStep(iteration, current, normalize(current), float(np.linalg.norm(grad)), accepted,
                                  evaluations))
    return theta, history
