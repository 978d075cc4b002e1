"""Batched next-state prediction, and the DROPO Gaussian log-likelihood.

A `System` says how a dataset's observations and actions map onto a MuJoCo model: the observation is
qpos[qpos_index], qvel[qvel_index], then qpos[object_qpos_index], qvel[object_qvel_index] (free objects such as
a puck: position + quaternion, then velocity; other qpos entries take qpos0, e.g. Hopper's root x), and an
action is held on the actuators (ctrl) for `frame_skip` physics steps. `BatchPredictor.predict` steps one
simulation per (state, action sequence, parameter vector) row on the simulator's own batched kernel
(sim.batch.BatchSimulator: per-simulation parameters, mujoco.batch's thread pool) and returns the predicted
observations. `reference_predict` does the same with a loop over one MjData, to check the engine.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import mujoco
import numpy as np

from ..config import ConfigError
from ..sim.batch import BatchSimulator
from ..sim.parameters import (
    EFFECT_KINDS,
    FITTABLE_EFFECTS,
    EncoderOffsets,
    ModelBinding,
    ParameterSpace,
    StribeckFriction,
    held_share,
    history_depth,
    latency_steps,
    rate_limited,
    rate_preroll,
    rate_steps,
)

_LOG_2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class System:
    """How observations and actions of a dataset map onto a MuJoCo model.

    Attributes:
        name: a label (e.g. "hopper", "fr3").
        model: the nominal model; fitted parameters are written relative to it.
        frame_skip: physics steps per control period (one transition).
        qpos_index, qvel_index: the qpos and qvel entries an observation holds, in observation order.
        actuators: the actuators an action drives, in action order (None: all, ctrl = action); others get 0.
        object_qpos_index, object_qvel_index: qpos and qvel entries of free objects, after the joint part.
        layout: the dataset `state_layout` this observation is (None: not checked, e.g. gymnasium arrays).
    """

    name: str
    model: mujoco.MjModel
    frame_skip: int
    qpos_index: tuple[int, ...]
    qvel_index: tuple[int, ...]
    actuators: tuple[int, ...] | None = None
    object_qpos_index: tuple[int, ...] = ()
    object_qvel_index: tuple[int, ...] = ()
    layout: str | None = None

    def _blocks(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("qpos", self.qpos_index), ("qvel", self.qvel_index), ("qpos", self.object_qpos_index),
                ("qvel", self.object_qvel_index))

    @property
    def state_dim(self) -> int:
        """Observation size."""
        return sum(len(index) for _, index in self._blocks())

    def check(self, state_dim: int, action_dim: int, layout: str | None = None) -> None:
        """Raise ValueError unless data with these sizes (and this `state_layout`, if known) fits the system."""
        if layout is not None and self.layout is not None and layout != self.layout:
            raise ValueError(f"system {self.name!r} expects state layout {self.layout!r}, but the data has "
                             f"{layout!r} ({state_dim} values per state)")
        if state_dim != self.state_dim:
            parts = " + ".join(f"{len(index)} {kind}" for kind, index in self._blocks() if index)
            raise ValueError(f"system {self.name!r} expects observations of size {self.state_dim} "
                             f"({parts}), got {state_dim}")
        expected = self.model.nu if self.actuators is None else len(self.actuators)
        if action_dim != expected:
            raise ValueError(f"system {self.name!r} expects actions of size {expected}, got {action_dim}")

    def state(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observations (M, S) -> full qpos (M, nq), qvel (M, nv)."""
        m = observations.shape[0]
        full = {"qpos": np.repeat(self.model.qpos0[None, :], m, axis=0), "qvel": np.zeros((m, self.model.nv))}
        start = 0
        for kind, index in self._blocks():
            full[kind][:, list(index)] = observations[:, start:start + len(index)]
            start += len(index)
        return full["qpos"], full["qvel"]

    def observe(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Full qpos, qvel -> observations."""
        full = {"qpos": qpos, "qvel": qvel}
        return np.concatenate([full[kind][:, list(index)] for kind, index in self._blocks()], axis=1)

    def ctrl(self, actions: np.ndarray) -> np.ndarray:
        """Actuator controls (..., nu) for actions (..., A)."""
        if self.actuators is None:
            return actions
        ctrl = np.zeros(actions.shape[:-1] + (self.model.nu,))
        ctrl[..., list(self.actuators)] = actions
        return ctrl


def model_space(space: ParameterSpace) -> ParameterSpace:
    """Check that every parameter is deterministic dynamics the engine reproduces (noise cannot be fitted here)."""
    effects = [p.name for p in space if p.kind in EFFECT_KINDS - FITTABLE_EFFECTS]
    if effects:
        raise ConfigError(f"parameter space {space.name!r}: parameters {effects} are noise effects "
                          f"({sorted(EFFECT_KINDS - FITTABLE_EFFECTS)}), which transition fitting does not support; "
                          f"fit a subset without them")
    return space


class BatchPredictor:
    """Predict next observations for many (state, actions, parameters) rows on the batched simulator.

    Args:
      system: the model and observation layout.
      space: the parameters (model kinds only).
      nthread: batch threads (0: all CPUs).
      max_nsim: the most simulations one batch call holds; larger requests run in chunks.
    """

    def __init__(self, system: System, space: ParameterSpace, nthread: int = 0, max_nsim: int = 16384):
        self.system = system
        self.space = model_space(space)
        self.nthread = nthread
        self.max_nsim = max_nsim
        self.depth = history_depth(self.space)  # past actions per prediction (Transitions.windows' depth)
        self._simulators: dict[int, BatchSimulator] = {}
        self.steps = 0  # physics steps taken, for throughput accounting

    def _simulator(self, nsim: int) -> BatchSimulator:
        if nsim not in self._simulators:
            if len(self._simulators) >= 4:
                self._simulators.pop(next(iter(self._simulators)))
            self._simulators[nsim] = BatchSimulator(self.system.model, self.space, nsim,
                                                    nstep=self.system.frame_skip, nthread=self.nthread)
        return self._simulators[nsim]

    def predict(self, observations: np.ndarray, actions: np.ndarray, params: np.ndarray,
                previous: np.ndarray | None = None) -> np.ndarray:
        """Next observations after each row's action sequence.

        Args:
          observations: (M, S) start states.
          actions: (M, A) one action each, or (M, h, A) sequences of h control periods.
          params: (M, dim) parameter vectors within bounds.
          previous: (M, A) the action before each sequence, or (M, D, A) the D actions before it, most recent first:
            what an action delay applies, a command latency still applies, and a torque rate limit starts from
            (taken as reached: the engine does not know how the period before ended) (None: zeros).
        Returns:
          (M, S) predicted observations.
        """
        observations = np.asarray(observations, dtype=float)
        actions = np.asarray(actions, dtype=float)
        if actions.ndim == 2:
            actions = actions[:, None, :]
        params = np.asarray(params, dtype=float)
        m = observations.shape[0]
        previous = np.zeros_like(actions[:, :1]) if previous is None else np.asarray(previous, dtype=float)
        if previous.ndim == 2:
            previous = previous[:, None, :]
        if actions.shape[0] != m or params.shape != (m, self.space.dim) or previous.shape[::2] != (m, actions.shape[2]):
            raise ValueError(f"expected {m} action rows, ({m}, {self.space.dim}) parameters and {m} rows of previous "
                             f"actions, got {actions.shape}, {params.shape} and {previous.shape}")
        out = np.empty_like(observations)
        for start in range(0, m, self.max_nsim):
            rows = slice(start, min(start + self.max_nsim, m))
            out[rows] = self._predict_chunk(observations[rows], actions[rows], params[rows], previous[rows])
        return out

    def _predict_chunk(self, observations, actions, params, previous) -> np.ndarray:
        sim = self._simulator(observations.shape[0])
        sim.set_parameters(params)
        sim.reset()  # time, activations and warm starts of the previous call do not carry over
        qpos, qvel = self.system.state(observations)
        sim.set_state(qpos - sim.position_offsets, qvel)  # measured positions carry the encoder offsets
        m, h = actions.shape[:2]
        # the actions before step j, most recent first, are past[:, h - j:]
        past = self.system.ctrl(np.concatenate([actions[:, ::-1], previous], axis=1))
        sim.settle(past[:, h:])
        for j in range(h):
            sim.step(self.system.ctrl(actions[:, j]), past_actions=past[:, h - j:], noise=False)
        self.steps += m * h * self.system.frame_skip
        qpos, qvel = sim.state()
        return self.system.observe(qpos + sim.position_offsets, qvel)


class PinnedPredictor:
    """A BatchPredictor over part of its space: the other parameters pinned at given values.

    Args:
      predictor: the predictor over the whole space (or a PinnedPredictor, whose pins are kept).
      pinned: {name: value} of further pinned parameters.
    """

    def __init__(self, predictor: BatchPredictor | PinnedPredictor, pinned: dict[str, float]):
        outer = isinstance(predictor, PinnedPredictor)
        self.root = predictor.root if outer else predictor  # the BatchPredictor over the whole space
        self.pinned = {**(predictor.pinned if outer else {}), **pinned}
        self.system = self.root.system
        self.depth = self.root.depth
        self.space = predictor.space.subset([name for name in predictor.space.names if name not in pinned])
        whole = self.root.space
        self._free = np.array([whole.index(name) for name in self.space.names])
        self._base = whole.vector(self.pinned, fill_nominal=True)

    @property
    def steps(self) -> int:
        """Physics steps taken."""
        return self.root.steps

    def predict(self, observations: np.ndarray, actions: np.ndarray, params: np.ndarray,
                previous: np.ndarray | None = None) -> np.ndarray:
        """BatchPredictor.predict with (M, free dim) parameter rows."""
        params = np.asarray(params, dtype=float)
        whole = np.repeat(self._base[None, :], params.shape[0], axis=0)
        whole[:, self._free] = params
        return self.root.predict(observations, actions, whole, previous)


def reference_predict(system: System, space: ParameterSpace, observations: np.ndarray, actions: np.ndarray,
                      params: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """The same prediction as BatchPredictor.predict with a Python loop over one MjData (slow; for checks)."""
    binding = ModelBinding(space, system.model)
    stribeck = StribeckFriction(space, system.model)
    encoders = EncoderOffsets(space, system.model)
    kinds = [p.kind for p in space]
    data = mujoco.MjData(system.model)
    actions = np.asarray(actions, dtype=float)
    if actions.ndim == 2:
        actions = actions[:, None, :]
    previous = np.zeros_like(actions[:, :1]) if previous is None else np.asarray(previous, dtype=float)
    if previous.ndim == 2:
        previous = previous[:, None, :]
    out = np.empty((len(observations), system.state_dim))
    for i, (obs, seq, xi, before) in enumerate(zip(observations, actions, params, previous)):
        model = copy.deepcopy(system.model)
        binding.apply(model, xi)
        coulomb = model.dof_frictionloss[stribeck.dofs].copy()
        latency = latency_steps(space, xi, model.opt.timestep, system.frame_skip)
        max_step = rate_steps(space, xi, model.opt.timestep)
        delay = int(round(xi[kinds.index("action_delay")])) if "action_delay" in kinds else 0
        chronological = np.concatenate([before[::-1], seq])  # oldest first; seq[j] is entry len(before) + j

        def command(index):
            return system.ctrl(chronological[index]) if index >= 0 else np.zeros(system.model.nu)

        mujoco.mj_resetData(model, data)
        qpos, qvel = system.state(obs[None, :])
        offsets = encoders.qpos_offsets(xi)[0]
        data.qpos[:], data.qvel[:] = qpos[0] - offsets, qvel[0]
        now = len(before) - delay  # the entry applied in the first period
        preroll = rate_preroll(space)
        torque = command(now - 1 - preroll)[None, :]  # taken as reached
        for q in range(now - preroll, now):  # the rate limit through the periods before
            for k in range(system.frame_skip):
                held = held_share(latency, k)[0]
                torque = rate_limited(torque, (held * command(q - 1) + (1.0 - held) * command(q))[None, :], max_step)
        data.ctrl[:] = torque[0]
        for j in range(len(seq)):
            held_ctrl, ctrl = command(now + j - 1), command(now + j)
            for k in range(system.frame_skip):
                held = held_share(latency, k)[0]
                data.ctrl[:] = rate_limited(data.ctrl[None, :], (held * held_ctrl + (1.0 - held) * ctrl)[None, :],
                                            max_step)[0]
                if stribeck.columns.size:
                    model.dof_frictionloss[stribeck.dofs] = StribeckFriction.level(
                        coulomb[None], stribeck.breakaway(xi), stribeck.velocity(xi), data.qvel[stribeck.dofs][None])[0]
                mujoco.mj_step(model, data)
        out[i] = system.observe(data.qpos[None, :] + offsets, data.qvel[None, :])[0]
    return out


def gaussian_loglik(predicted: np.ndarray, target: np.ndarray, epsilon: float | np.ndarray) -> np.ndarray:
    """Log-density of each target under the Gaussian fitted to its K predictions, plus ε·I.

    Args:
      predicted: (N, K, S) predicted next states, K samples per transition.
      target: (N, S) real next states.
      epsilon: variance added on the diagonal: a scalar, or (S,) one per state dimension.
    Returns:
      (N,) log-likelihoods.
    """
    n, k, s = predicted.shape
    mean = predicted.mean(axis=1)
    centred = predicted - mean[:, None, :]
    cov = np.einsum("nki,nkj->nij", centred, centred) / max(k - 1, 1)
    cov[:, np.arange(s), np.arange(s)] += np.asarray(epsilon, dtype=float)
    chol = np.linalg.cholesky(cov)
    diff = target - mean
    z = np.linalg.solve(chol, diff[:, :, None])[:, :, 0]
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * (np.einsum("ni,ni->n", z, z) + logdet + s * _LOG_2PI)
