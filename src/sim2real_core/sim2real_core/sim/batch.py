"""The simulation kernel: simulations of one model with per-simulation parameters, stepped one control period
per call.

Built on `mujoco.batch.Batch` (threads, no Python loop over simulations). Every simulation of the project steps
here: the fitting engine (K parameter samples x N transitions per call), the batched training environments,
and, with one simulation, the single `Simulator` (the bridge, the reality proxy, the 1 kHz franka emulation).

Actions go to the actuators' ctrl. For the FR3 model that is the joint torque without gravity (gravity
compensation at nominal masses is part of the model); for other models (gymnasium Hopper) it is their
actuator input, and models without gravcomp bodies simply have no compensation. The parameter space's
effects are applied per simulation: action delay and command latency (from the caller's past actions: the
previous command holds during the latency), the torque rate limit (each physics step's actuator input within it of
the one before), action noise, encoder offsets and sensor noise on the returned
observation; Stribeck friction (sim.parameters.StribeckFriction) and any position-dependent joint force (the
reality proxy's torque ripple) before every physics step.
"""
from __future__ import annotations

import copy
import os
from typing import Callable, Sequence

import mujoco
import mujoco.batch
import numpy as np

from ..config import ConfigError
from .models import load_model
from .parameters import (
    EncoderOffsets,
    ModelBinding,
    ParameterSpace,
    StribeckFriction,
    latency_steps,
    load_parameter_space,
    period_inputs,
    rate_preroll,
    rate_steps,
)


def resolve_space(space: ParameterSpace | str | os.PathLike | None) -> ParameterSpace | None:
    """A ParameterSpace, a config/parameter_spaces name or path, or None."""
    if space is None or isinstance(space, ParameterSpace):
        return space
    return load_parameter_space(space)


def joint_indices(model: mujoco.MjModel, joint_names) -> tuple[np.ndarray, np.ndarray]:
    """(qpos addresses, dof addresses) of named 1-dof joints; ConfigError naming a missing joint."""
    qadr, dadr = [], []
    for name in joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ConfigError(f"the model has no joint named {name!r}")
        qadr.append(model.jnt_qposadr[jid])
        dadr.append(model.jnt_dofadr[jid])
    return np.array(qadr), np.array(dadr)


def joint_actuators(model: mujoco.MjModel, joint_names) -> np.ndarray:
    """Index of the actuator driving each named joint."""
    out = []
    for name in joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        hits = np.flatnonzero((model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
                              & (model.actuator_trnid[:, 0] == jid))
        if hits.size != 1:
            raise ConfigError(f"joint {name!r} needs exactly one actuator, the model has {hits.size}")
        out.append(hits[0])
    return np.array(out)


def contiguous(index: np.ndarray) -> slice | np.ndarray:
    """An ascending run of consecutive indices as a slice (numpy then reads and writes views), else the indices."""
    index = np.asarray(index, dtype=int)
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return slice(int(index[0]), int(index[0]) + index.size)
    return index


class BatchSimulator:
    """nsim simulations of a model, each with its own parameter vector.

    Args:
      model: model name ('fr3', 'hopper'), path or MjModel.
      space: parameter space (object, name or path); None: nominal parameters in every simulation.
      nsim: number of simulations.
      control_period: seconds per step(); a whole multiple of the model timestep. Or give `nstep`.
      nstep: physics substeps per step() (overrides control_period).
      joints: observed and actuated joints (e.g. the robot's joint_names: observation joint_state_v1);
        None: the observation is the full (qpos, qvel) and actions cover all actuators.
      gravity_compensation: False removes the model's gravcomp (an uncompensated arm).
      nthread: worker threads (0: all CPUs).
      seed: seed of the noise generator.
      kinematics: keep positions, sites and bodies current after every step (what `site_positions` reads).
      persistent: keep each simulation's whole MjData (contacts, Jacobians: what `get_data` returns).

    Attributes:
      joint_load: (nsim, observed dofs) further joint forces during every period [N*m] (a payload); zeros.
      position_force: None, or a function of the observed joints' true positions (nsim, n) giving further joint
        forces (nsim, n), applied before every physics step (the reality proxy's torque ripple).
      applied: (nsim, nu) the inputs of the last period after delay, noise and clipping (before the rate limit).
    """

    def __init__(self, model: str | mujoco.MjModel, space: ParameterSpace | str | None, nsim: int,
                 control_period: float | None = None, nstep: int | None = None,
                 joints: Sequence[str] | None = None, gravity_compensation: bool = True, nthread: int = 0,
                 seed: int | None = None, kinematics: bool = False, persistent: bool = False):
        if nsim < 1:
            raise ValueError(f"nsim must be >= 1, got {nsim}")
        self.nominal_model = copy.copy(load_model(model))
        if not gravity_compensation:
            self.nominal_model.body_gravcomp[:] = 0
        if nstep is None:
            if control_period is None:
                raise ValueError("give control_period or nstep")
            ratio = control_period / self.nominal_model.opt.timestep
            if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
                raise ConfigError(f"control_period {control_period} s is not a whole multiple of the model "
                                  f"timestep {self.nominal_model.opt.timestep} s")
            nstep = int(round(ratio))
        self.nstep = int(nstep)
        self.nsim = int(nsim)
        self.space = resolve_space(space)
        self.binding = ModelBinding(self.space, self.nominal_model) if self.space is not None else None
        self.stribeck = StribeckFriction(self.space, self.nominal_model) if self.space is not None else None
        self._stribeck_dofs = contiguous(self.stribeck.dofs) if self.stribeck is not None else None
        self.encoders = EncoderOffsets(self.space, self.nominal_model) if self.space is not None else None
        self.position_offsets = np.zeros((self.nsim, self.nominal_model.nq))  # measured - true, every qpos entry
        self._coulomb = self._breakaway = self._stribeck_velocity = None  # set with Stribeck parameters only
        self.batch = mujoco.batch.Batch(self.nominal_model, self.nsim, nthread=nthread, persistent=persistent)
        self.rng = np.random.default_rng(seed)
        m = self.nominal_model
        if joints is None:
            self.qpos_index, self.dof_index = np.arange(m.nq), np.arange(m.nv)
            self.actuator_index = np.arange(m.nu)
        else:
            self.qpos_index, self.dof_index = joint_indices(m, joints)
            self.actuator_index = joint_actuators(m, joints)
        self.nu = self.actuator_index.size
        self._actuators, self._dofs = contiguous(self.actuator_index), contiguous(self.dof_index)
        self.ctrl_low = m.actuator_ctrlrange[self.actuator_index, 0].copy()
        self.ctrl_high = m.actuator_ctrlrange[self.actuator_index, 1].copy()
        limited = m.actuator_ctrllimited[self.actuator_index].astype(bool)
        self.ctrl_low[~limited], self.ctrl_high[~limited] = -np.inf, np.inf
        self._qpos, self._qvel = self.batch.bind("qpos"), self.batch.bind("qvel")
        self._ctrl, self._warm = self.batch.bind("ctrl"), self.batch.bind("qacc_warmstart")
        self._time, self._force = self.batch.bind("time"), self.batch.bind("qfrc_applied")
        self.joint_load = np.zeros((self.nsim, self.dof_index.size))
        self.position_force: Callable[[np.ndarray], np.ndarray] | None = None
        self.applied = np.zeros((self.nsim, self.nu))
        self._stage = mujoco.mjtStage.mjSTAGE_POS if kinematics else mujoco.mjtStage.mjSTAGE_NONE
        # bound only when asked for: a bound output is copied out after every call
        self._site_xpos = self.batch.bind("site_xpos") if kinematics else None
        self._delay = np.zeros(self.nsim, dtype=int)
        self._latency = np.zeros(self.nsim)  # command latency [physics steps]
        self._rate_step = np.full(self.nsim, np.inf)  # largest actuator-input change per physics step
        self._action_std = np.zeros(self.nsim)
        self._noise_std = np.zeros((self.nsim, self.qpos_index.size + self.dof_index.size))
        self._flag_effects()
        self.parameters = None
        if self.space is not None:
            self.set_parameters(self.space.nominal)
        self.reset()

    @property
    def obs_dim(self) -> int:
        """Observation width: observed qpos entries + qvel entries."""
        return self.qpos_index.size + self.dof_index.size

    @property
    def needs_past(self) -> bool:
        """Whether step() reads past_actions (some simulation has an action delay or a command latency)."""
        return self._delayed or self._lagged

    @property
    def max_delay(self) -> int:
        """Largest action delay (control periods) among the simulations."""
        return int(self._delay.max())

    def set_parameters(self, matrix: np.ndarray, ids: np.ndarray | None = None) -> None:
        """One parameter vector per simulation, (nsim, dim); a single (dim,) vector is used by all.

        ids: set only these simulations (sorted, without repeats), from (len(ids), dim) rows; the others keep
          theirs.
        """
        if self.space is None:
            raise ValueError("this batch has no parameter space")
        rows = np.asarray(matrix, dtype=float)
        if ids is not None:
            ids = np.asarray(ids, dtype=int)
            matrix = self.parameters.copy()
            matrix[ids] = rows
        elif rows.ndim == 1:
            matrix = np.broadcast_to(rows, (self.nsim, rows.size))
        else:
            matrix = rows
        latency = latency_steps(self.space, matrix, self.nominal_model.opt.timestep, self.nstep)
        dofs = self.stribeck.dofs
        if self._coulomb is not None:  # the Coulomb levels under the last physics step's Stribeck friction
            self.batch.expand("dof_frictionloss")[:, dofs] = self._coulomb
        self.binding.apply_batch(self.batch, matrix, ids)
        if self.stribeck.active(matrix):
            self._coulomb = self.batch.expand("dof_frictionloss")[:, dofs].copy()
            self._breakaway = self.stribeck.breakaway(matrix)
            self._stribeck_velocity = self.stribeck.velocity(matrix)
        else:
            self._coulomb = None
        self.parameters = np.array(matrix)
        self.position_offsets = self.encoders.qpos_offsets(self.parameters)
        kinds = {p.kind: i for i, p in enumerate(self.space)}
        column = lambda kind: matrix[:, kinds[kind]] if kind in kinds else np.zeros(self.nsim)  # noqa: E731
        self._delay = np.round(column("action_delay")).astype(int)
        self._latency = np.broadcast_to(latency, (self.nsim,)).copy()
        self._rate_step = np.broadcast_to(rate_steps(self.space, matrix, self.nominal_model.opt.timestep),
                                          (self.nsim,)).copy()
        self._action_std = column("action_noise_std")
        nq, nv = self.qpos_index.size, self.dof_index.size
        self._noise_std = np.concatenate([np.repeat(column("position_noise_std")[:, None], nq, axis=1),
                                          np.repeat(column("velocity_noise_std")[:, None], nv, axis=1)], axis=1)
        self._flag_effects()

    def _flag_effects(self) -> None:
        """Which per-simulation effects any simulation has (each step tests these flags, not the arrays)."""
        self._delayed, self._lagged = bool(self._delay.any()), bool(self._latency.any())
        self._action_noisy, self._sensor_noisy = bool(self._action_std.any()), bool(self._noise_std.any())

    def reset(self, keyframe: int | str = -1, ids: np.ndarray | None = None) -> np.ndarray:
        """Reset simulations (all, or `ids`: sorted, without repeats) to a keyframe (name or index; -1: model
        defaults).

        Returns every simulation's noise-free observation.
        """
        if isinstance(keyframe, str):
            key = mujoco.mj_name2id(self.nominal_model, mujoco.mjtObj.mjOBJ_KEY, keyframe)
            if key < 0:
                raise ValueError(f"the model has no keyframe named {keyframe!r}")
            keyframe = key
        self.batch.reset(ids=ids, keyframe=keyframe)
        self.applied[slice(None) if ids is None else np.asarray(ids, dtype=int)] = 0.0
        return self.observation(noise=False)

    def forward(self, ids: np.ndarray | None = None) -> None:
        """Recompute derived quantities (site positions, ...) from the state, after writing it."""
        self.batch.forward(ids=ids)

    def set_state(self, qpos: np.ndarray | None = None, qvel: np.ndarray | None = None,
                  ids: np.ndarray | None = None, time: float | np.ndarray | None = None) -> None:
        """Write states: full (nq,)/(nsim, nq) and (nv,)/(nsim, nv) vectors, or the observed joints' values.

        Values of the observed joints' width write only those joints (the rest keep their state, e.g. the
        keyframe's after reset()). ids: write only these simulations (rows (len(ids), ...)). time: simulated
        time [s]. Solver warm starts are cleared so that results do not depend on history.
        """
        rows = slice(None) if ids is None else np.asarray(ids, dtype=int)
        if time is not None:
            self._time[rows] = time
        for name, values, target, index in (("qpos", qpos, self._qpos, self.qpos_index),
                                            ("qvel", qvel, self._qvel, self.dof_index)):
            if values is None:
                continue
            values = np.asarray(values, dtype=float)
            if values.shape[-1] == target.shape[1]:
                target[rows] = values
            elif values.shape[-1] == index.size:
                target[(slice(None), index) if ids is None else np.ix_(rows, index)] = values
            else:
                raise ValueError(f"{name} needs {index.size} joint values or {target.shape[1]} model values per "
                                 f"simulation, got shape {values.shape}")
        self._warm[rows] = 0

    def set_observation_state(self, observations: np.ndarray) -> None:
        """Write (nsim, obs_dim) observations (measured joint positions then velocities) as the observed joints'
        state (the true positions: measured minus each simulation's encoder offsets)."""
        observations = np.asarray(observations, dtype=float)
        nq = self.qpos_index.size
        if observations.shape[-1] != self.obs_dim:
            raise ValueError(f"observations need {self.obs_dim} values each, got shape {observations.shape}")
        self.set_state(observations[..., :nq] - self.position_offsets[:, self.qpos_index], observations[..., nq:])

    def step(self, actions: np.ndarray, past_actions: np.ndarray | None = None, noise: bool = True) -> np.ndarray:
        """Advance every simulation one control period; returns next observations (nsim, obs_dim).

        Args:
          actions: (nsim, nu) or (nu,) commands of this period.
          past_actions: (nsim, D, nu) commands of the previous D periods, most recent first; a simulation
            with action delay d applies past_actions[:, d-1], and during its command latency
            past_actions[:, d] (zeros where D is too short, as after a reset).
          noise: apply action and sensor noise.
        """
        actions = np.asarray(actions, dtype=float)
        if actions.shape != (self.nsim, self.nu):
            if actions.shape != (self.nu,):
                raise ValueError(f"actions need shape ({self.nsim}, {self.nu}) or ({self.nu},), got {actions.shape}")
            actions = np.broadcast_to(actions, (self.nsim, self.nu))
        latency = self._lagged
        applied, previous = actions, None
        if self._delayed or latency:
            depth = self.max_delay + int(latency)
            history = np.zeros((self.nsim, depth + 1, self.nu))
            history[:, 0] = actions
            if past_actions is not None:
                past = np.asarray(past_actions, dtype=float)
                if past.ndim != 3 or past.shape[0] != self.nsim or past.shape[2] != self.nu:
                    raise ValueError(f"past_actions needs shape (nsim={self.nsim}, D, nu={self.nu}), got {past.shape}")
                used = min(depth, past.shape[1])
                history[:, 1:used + 1] = past[:, :used]
            rows = np.arange(self.nsim)
            applied = history[rows, self._delay]
            if latency:
                previous = np.minimum(np.maximum(history[rows, self._delay + 1], self.ctrl_low), self.ctrl_high)
        if noise and self._action_noisy:
            applied = applied + self.rng.standard_normal(applied.shape) * self._action_std[:, None]
        applied = np.minimum(np.maximum(applied, self.ctrl_low), self.ctrl_high)
        self.applied = applied
        torque = self._ctrl[:, self._actuators].copy()  # the last physics step's input, where a rate limit starts
        self._force[:, self._dofs] = self.joint_load
        whole = self._coulomb is None and previous is None and self.position_force is None
        if whole and not np.any(np.abs(applied - torque) > self._rate_step[:, None]):  # one call, nstep steps
            self._ctrl[:, self._actuators] = applied
            self.batch.step(nstep=self.nstep, stage=self._stage)
            return self.observation(noise=noise)
        inputs = period_inputs(torque, applied, previous, self._latency, self._rate_step, self.nstep)
        friction = self._stribeck_step() if self._coulomb is not None else None
        last = self.nstep - 1
        for k in range(self.nstep):
            self._ctrl[:, self._actuators] = inputs[k]
            if friction is not None:
                friction()
            if self.position_force is not None:
                self._force[:, self.dof_index] = self.joint_load + self.position_force(self._qpos[:, self.qpos_index])
            self.batch.step(nstep=1, stage=self._stage if k == last else mujoco.mjtStage.mjSTAGE_NONE)
        return self.observation(noise=noise)

    def _stribeck_step(self) -> Callable[[], None]:
        """A function that sets every simulation's Coulomb friction to its Stribeck level at the current joint
        velocities (StribeckFriction.level, computed in place: it runs before every physics step)."""
        dofs = self._stribeck_dofs
        frictionloss = self.batch.expand("dof_frictionloss")
        views = isinstance(dofs, slice)  # a slice reads and writes the batch's arrays in place
        velocity = self._qvel[:, dofs] if views else None
        level = frictionloss[:, dofs] if views else np.empty(self._coulomb.shape)
        scale, work = self._stribeck_velocity[:, None], np.empty(self._coulomb.shape)

        def update() -> None:  # coulomb + breakaway * exp(-(v / stribeck_velocity)^2)
            np.divide(velocity if views else self._qvel[:, dofs], scale, out=work)
            np.square(work, out=work)
            np.negative(work, out=work)
            np.exp(work, out=work)
            np.multiply(self._breakaway, work, out=work)
            np.add(self._coulomb, work, out=level)
            if not views:
                frictionloss[:, dofs] = level
        return update

    def settle(self, past_actions: np.ndarray) -> None:
        """Set each simulation's actuator input to where the commands before, past_actions (nsim, D, nu) most recent
        first (zeros beyond D: before a reset), left it: the command a simulation's action delay applied in the
        oldest period of the rate limit's preroll (sim.parameters.rate_preroll) taken as reached, then the torque
        rate limit and command latency run through the periods since, without physics. (A reset zeroes inputs.)"""
        past = np.asarray(past_actions, dtype=float)
        preroll = rate_preroll(self.space) if self.space is not None else 0
        padded = np.concatenate([past, np.zeros((self.nsim, self.max_delay + preroll + 2, self.nu))], axis=1)
        rows = np.arange(self.nsim)

        def applied(periods_ago: int) -> np.ndarray:  # the command applied in the period that ended this long ago
            return np.clip(padded[rows, periods_ago - 1 + self._delay], self.ctrl_low, self.ctrl_high)

        torque = applied(preroll + 1)
        for periods_ago in range(preroll, 0, -1):
            torque = period_inputs(torque, applied(periods_ago), applied(periods_ago + 1), self._latency,
                                   self._rate_step, self.nstep)[-1]
        self._ctrl[:, self.actuator_index] = torque

    def observation(self, noise: bool = True) -> np.ndarray:
        """Current measured observations (nsim, obs_dim): with encoder offsets, and sensor noise unless noise=False."""
        obs = np.concatenate([self._qpos[:, self.qpos_index] + self.position_offsets[:, self.qpos_index],
                              self._qvel[:, self.dof_index]], axis=1)
        if noise and self._sensor_noisy:
            obs += self.rng.standard_normal(obs.shape) * self._noise_std
        return obs

    def joint_velocities(self) -> np.ndarray:
        """Noise-free velocities of the observed joints, (nsim, n)."""
        return self._qvel[:, self.dof_index].copy()

    def site_positions(self, site: str) -> np.ndarray:
        """World positions (nsim, 3) of a site at the state of the last step, reset or forward()."""
        if self._site_xpos is None:
            raise ValueError("site positions need a BatchSimulator made with kinematics=True")
        return self._site_xpos[:, self.nominal_model.site(site).id].copy()

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the full (qpos, qvel), (nsim, nq) and (nsim, nv)."""
        return self._qpos.copy(), self._qvel.copy()

    def simulated_time(self) -> np.ndarray:
        """Each simulation's simulated time [s], (nsim,)."""
        return self._time.reshape(self.nsim).copy()
