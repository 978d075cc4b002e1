"""Named simulator parameters: one object to randomize, to fit and to report.

A parameter space is data (`config/parameter_spaces/NAME.yaml`)::

    parameters:
      - {name: link3_mass_scale, unit: "1", nominal: 1.0, bounds: [0.6, 1.6],
         kind: body_mass_scale, element: fr3_link3}
      - {name: joint1_damping, unit: N*m*s/rad, nominal: 0.0, bounds: [0.0, 5.0],
         kind: dof_damping, element: fr3_joint1}
      - {name: action_delay, unit: control periods, nominal: 0, bounds: [0, 3], kind: action_delay, integer: true}

Kinds that write MuJoCo model fields: the three mass conventions of MASS_KINDS (a body with gravity compensation,
MJCF gravcomp, keeps compensating its NOMINAL weight under each, as a real arm's controller compensates with its
nominal model), dof_damping (viscous), dof_frictionloss (dry, Coulomb), dof_drag (velocity-squared friction,
MuJoCo's dof_dampingpoly), dof_armature, geom_friction (sliding coefficient). Stribeck friction (STRIBECK_KINDS:
dof_stribeck per joint, one stribeck_velocity) is a joint's breakaway friction above its Coulomb level near rest,
which the simulators apply every physics step (StribeckFriction); command_latency [s] holds the previous command
for that long into each control period (a fraction of a physics step blends the two); torque_rate_limit [N*m/s]
bounds how fast each joint's applied torque follows its command, every physics step (franka_hardware passes every
1 ms write through libfranka's limitRate; `rate_limited`); encoder_offset [rad] is added to a joint's measured
position (EncoderOffsets). These kinds are deterministic dynamics, fitted from transitions (DYNAMICS_KINDS). Kinds
the simulator applies around MuJoCo: position_noise_std and velocity_noise_std (sensor noise), action_noise_std, and
action_delay (whole control periods: deterministic too, fitted when named, FITTABLE_EFFECTS). VISUAL_KINDS are the
camera's appearance (lighting, colours, camera pose and field of view, image noise), applied by sim.camera only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import mujoco
import numpy as np

from ..config import ConfigError, OptionModel, load_config, named_file, validate_options

MASS_KINDS = {
    "body_mass": "the body's mass alone [kg], inertia unchanged (MuJoCo's body_mass; DROPO's convention)",
    "body_mass_inertia": "the body's mass [kg], its inertia scaled by the same ratio (the same shape, denser)",
    "body_mass_scale": "a scale of the body's mass and inertia together (1 = nominal)",
}
MODEL_KINDS = {
    **dict.fromkeys(MASS_KINDS, mujoco.mjtObj.mjOBJ_BODY),
    "dof_damping": mujoco.mjtObj.mjOBJ_JOINT,
    "dof_frictionloss": mujoco.mjtObj.mjOBJ_JOINT,
    "dof_armature": mujoco.mjtObj.mjOBJ_JOINT,
    "dof_drag": mujoco.mjtObj.mjOBJ_JOINT,
    "geom_friction": mujoco.mjtObj.mjOBJ_GEOM,
}
STRIBECK_KINDS = {"dof_stribeck": mujoco.mjtObj.mjOBJ_JOINT, "stribeck_velocity": None}
DYNAMICS_KINDS = {**MODEL_KINDS, **STRIBECK_KINDS, "command_latency": None, "torque_rate_limit": None,
                  "encoder_offset": mujoco.mjtObj.mjOBJ_JOINT}
EFFECT_KINDS = {"position_noise_std", "velocity_noise_std", "action_noise_std", "action_delay"}
# Appearance, for the camera only (sim.camera.Appearance): no physics reads these.
VISUAL_KINDS = {
    "light_intensity": None,  # a scale of every light's diffuse colour (1 = nominal)
    "geom_red": mujoco.mjtObj.mjOBJ_GEOM, "geom_green": mujoco.mjtObj.mjOBJ_GEOM,  # a geom's colour channel, 0-1
    "geom_blue": mujoco.mjtObj.mjOBJ_GEOM,
    "camera_x": mujoco.mjtObj.mjOBJ_CAMERA, "camera_y": mujoco.mjtObj.mjOBJ_CAMERA,  # camera position offsets [m]
    "camera_z": mujoco.mjtObj.mjOBJ_CAMERA,
    "camera_fovy": mujoco.mjtObj.mjOBJ_CAMERA,  # vertical field of view [deg]
    "image_noise_std": None,  # Gaussian pixel noise, in units of full intensity
}
FITTABLE_EFFECTS = {"action_delay"}  # effects the fitting engine reproduces (integer: profiled, fit.methods)
BOUND_TOLERANCE = 1e-9  # relative to a parameter's range
_JOINT_FIELDS = {"dof_damping": "damping", "dof_frictionloss": "frictionloss", "dof_armature": "armature"}


@dataclass(frozen=True)
class Parameter:
    """One named, bounded simulator parameter."""

    name: str
    nominal: float
    low: float
    high: float
    kind: str
    unit: str = ""
    element: str | None = None
    integer: bool = False
    description: str = ""

    def __post_init__(self):
        if self.kind not in DYNAMICS_KINDS and self.kind not in EFFECT_KINDS and self.kind not in VISUAL_KINDS:
            raise ConfigError(f"parameter {self.name!r}: unknown kind {self.kind!r}; "
                              f"expected one of {sorted(DYNAMICS_KINDS) + sorted(EFFECT_KINDS) + sorted(VISUAL_KINDS)}")
        if {**DYNAMICS_KINDS, **VISUAL_KINDS}.get(self.kind) is not None and not self.element:
            raise ConfigError(f"parameter {self.name!r} of kind {self.kind} needs an 'element' (MuJoCo name)")
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"parameter {self.name!r}: bounds must be finite with low < high, "
                              f"got [{self.low}, {self.high}]")
        if not self.low <= self.nominal <= self.high:
            raise ConfigError(f"parameter {self.name!r}: nominal {self.nominal} outside bounds "
                              f"[{self.low}, {self.high}]")


class ParameterRow(OptionModel):
    """One parameter as a file writes it (a row of a parameter space file, and of a distribution file)."""

    name: str
    nominal: float
    bounds: tuple[float, float]
    kind: str
    unit: str = ""
    element: str | None = None
    integer: bool = False
    description: str = ""

    def parameter(self) -> Parameter:
        """The Parameter this row defines (its kind, element and bounds checked)."""
        return Parameter(name=self.name, nominal=self.nominal, low=self.bounds[0], high=self.bounds[1],
                         kind=self.kind, unit=self.unit, element=self.element, integer=self.integer,
                         description=self.description)


class ParameterSpaceFile(OptionModel):
    """config/parameter_spaces/NAME.yaml: the model whose fields the parameters bind to (a fit's system; else the
    dataset's robot), and the parameters in vector order."""

    model: str | None = None
    parameters: list[ParameterRow]


class ParameterSpace:
    """An ordered set of parameters, converting named values <-> flat vectors."""

    def __init__(self, parameters: Sequence[Parameter], name: str = ""):
        names = [p.name for p in parameters]
        if not names:
            raise ConfigError(f"parameter space {name!r} is empty")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"parameter space {name!r} repeats names {repeated}")
        self.name = name
        self.parameters = tuple(parameters)
        self._index = {n: i for i, n in enumerate(names)}

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self):
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        return self.parameters[self.index(name)]

    def __repr__(self) -> str:
        return f"ParameterSpace({self.name!r}, {list(self.names)})"

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in vector order."""
        return tuple(p.name for p in self.parameters)

    @property
    def units(self) -> tuple[str, ...]:
        """Parameter units in vector order."""
        return tuple(p.unit for p in self.parameters)

    @property
    def nominal(self) -> np.ndarray:
        """Nominal values as a vector."""
        return np.array([p.nominal for p in self.parameters], dtype=float)

    @property
    def low(self) -> np.ndarray:
        """Lower bounds as a vector."""
        return np.array([p.low for p in self.parameters], dtype=float)

    @property
    def high(self) -> np.ndarray:
        """Upper bounds as a vector."""
        return np.array([p.high for p in self.parameters], dtype=float)

    @property
    def integer_mask(self) -> np.ndarray:
        """True where a parameter takes integer values."""
        return np.array([p.integer for p in self.parameters], dtype=bool)

    def index(self, name: str) -> int:
        """Position of a parameter in the vector."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown parameter {name!r}; space {self.name!r} has {list(self.names)}") from None

    def subset(self, names: Iterable[str]) -> "ParameterSpace":
        """A space with only the named parameters, in the given order."""
        names = list(names)
        return ParameterSpace([self[n] for n in names], name=f"{self.name}[{','.join(names)}]")

    def vector(self, values: Mapping[str, float], fill_nominal: bool = False) -> np.ndarray:
        """Named values -> vector. Unknown names raise; missing names raise unless fill_nominal."""
        unknown = sorted(set(values) - set(self._index))
        if unknown:
            raise KeyError(f"unknown parameters {unknown}; space {self.name!r} has {list(self.names)}")
        missing = [n for n in self.names if n not in values]
        if missing and not fill_nominal:
            raise KeyError(f"missing values for parameters {missing}")
        return np.array([float(values.get(p.name, p.nominal)) for p in self.parameters])

    def as_dict(self, vector: np.ndarray) -> dict[str, float]:
        """Vector -> {name: value}."""
        vector = np.asarray(vector, dtype=float)
        if vector.shape != (self.dim,):
            raise ValueError(f"expected a vector of {self.dim} parameters {list(self.names)}, got shape {vector.shape}")
        return {p.name: (int(round(v)) if p.integer else float(v)) for p, v in zip(self.parameters, vector)}

    def validate(self, vector: np.ndarray) -> np.ndarray:
        """Return the vector as floats, raising ValueError naming the first parameter out of bounds."""
        vector = np.asarray(vector, dtype=float)
        if vector.shape[-1:] != (self.dim,):
            raise ValueError(f"expected {self.dim} parameters {list(self.names)}, got shape {vector.shape}")
        rows = vector.reshape(-1, self.dim)
        slack = BOUND_TOLERANCE * (self.high - self.low)  # float round-off of values computed at a bound
        bad = ~np.isfinite(rows) | (rows < self.low - slack) | (rows > self.high + slack)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            p = self.parameters[col]
            raise ValueError(f"parameter {p.name}={rows[row, col]} [{p.unit}] is outside its bounds "
                             f"[{p.low}, {p.high}]")
        return vector

    def clip(self, vector: np.ndarray) -> np.ndarray:
        """Clip to bounds and round integer parameters."""
        out = np.clip(np.asarray(vector, dtype=float), self.low, self.high)
        return np.where(self.integer_mask, np.round(out), out)

    def to_list(self) -> list[dict]:
        """The YAML form of the parameters."""
        rows = []
        for p in self.parameters:
            row = {"name": p.name, "unit": p.unit, "nominal": p.nominal, "bounds": [p.low, p.high], "kind": p.kind}
            if p.element:
                row["element"] = p.element
            if p.integer:
                row["integer"] = True
            if p.description:
                row["description"] = p.description
            rows.append(row)
        return rows

    @classmethod
    def from_list(cls, rows: Sequence[Mapping | ParameterRow], name: str = "",
                  where: str = "parameters") -> "ParameterSpace":
        """Build from the YAML form (mappings, validated as ParameterRow) or from rows, naming `where` in errors."""
        params = []
        for i, row in enumerate(rows):
            if not isinstance(row, ParameterRow):
                row = validate_options(ParameterRow, dict(row), f"{where}[{i}]")
            try:
                params.append(row.parameter())
            except ConfigError as exc:
                raise ConfigError(f"{where}[{i}]: {exc}") from None
        return cls(params, name=name)


def load_parameter_space(name_or_path: str | os.PathLike) -> ParameterSpace:
    """Load `config/parameter_spaces/NAME.yaml` or a YAML file path."""
    path = named_file("parameter_spaces", name_or_path)
    return ParameterSpace.from_list(load_config(path, ParameterSpaceFile).parameters, name=path.stem,
                                    where=f"{path}: parameters")


class ModelBinding:
    """Writes a parameter vector into MuJoCo models, relative to a nominal model.

    Args:
      space: the parameter space; only its model kinds are written, effects are left to the simulator.
      nominal_model: the unmodified model; mass scales and friction refer to its values.
    """

    def __init__(self, space: ParameterSpace, nominal_model: mujoco.MjModel):
        self.space = space
        self._targets: list[tuple[int, Parameter, int]] = []
        for i, p in enumerate(space):
            if p.kind not in MODEL_KINDS:
                continue
            obj_id = mujoco.mj_name2id(nominal_model, MODEL_KINDS[p.kind], p.element)
            if obj_id < 0:
                raise ConfigError(f"parameter {p.name!r}: the model has no {MODEL_KINDS[p.kind].name[6:].lower()} "
                                  f"named {p.element!r}")
            self._targets.append((i, p, obj_id))
        self._mass = nominal_model.body_mass.copy()
        self._inertia = nominal_model.body_inertia.copy()
        self._friction = nominal_model.geom_friction.copy()
        self._gravcomp = nominal_model.body_gravcomp.copy()
        self._writes_mass = any(p.kind in MASS_KINDS for _, p, _ in self._targets)

    def apply(self, model: mujoco.MjModel, vector: np.ndarray) -> None:
        """Write the vector's model parameters into `model` (a copy of the nominal model)."""
        vector = self.space.validate(vector)
        for i, p, obj in self._targets:
            value = vector[i]
            if p.kind in MASS_KINDS:
                scale = value if p.kind == "body_mass_scale" else value / self._mass[obj]
                model.body_mass[obj] = self._mass[obj] * scale
                if p.kind != "body_mass":
                    model.body_inertia[obj] = self._inertia[obj] * scale
                if self._gravcomp[obj]:
                    model.body_gravcomp[obj] = self._gravcomp[obj] / scale
            elif p.kind in _JOINT_FIELDS:
                getattr(model, p.kind)[model.jnt_dofadr[obj]] = value
            elif p.kind == "dof_drag":
                model.dof_dampingpoly[model.jnt_dofadr[obj], 0] = value
            elif p.kind == "geom_friction":
                model.geom_friction[obj, 0] = value
        if self._writes_mass:
            mujoco.mj_setConst(model, mujoco.MjData(model))  # constants that follow masses (invweight0, ...)

    def apply_batch(self, batch, matrix: np.ndarray, changed: np.ndarray | None = None) -> None:
        """Write one parameter vector per simulation into a mujoco.batch.Batch, (nsim, dim).

        changed: the simulations whose rows differ from what the batch holds (None: all); only their derived
        constants are recomputed.
        """
        matrix = self.space.validate(np.atleast_2d(matrix))
        if matrix.shape[0] != batch.nsim:
            raise ValueError(f"expected {batch.nsim} parameter rows (one per simulation), got {matrix.shape[0]}")
        for i, p, obj in self._targets:
            column = matrix[:, i]
            if p.kind in MASS_KINDS:
                scale = column if p.kind == "body_mass_scale" else column / self._mass[obj]
                view = batch.body(p.element)
                view.mass = (self._mass[obj] * scale)[:, None]
                if p.kind != "body_mass":
                    view.inertia = self._inertia[obj][None, :] * scale[:, None]
                if self._gravcomp[obj]:
                    batch.expand("body_gravcomp")[:, obj] = self._gravcomp[obj] / scale
            elif p.kind in _JOINT_FIELDS:
                setattr(batch.joint(p.element), _JOINT_FIELDS[p.kind], column[:, None])
            elif p.kind == "dof_drag":
                batch.expand("dof_dampingpoly")[:, batch.model.jnt_dofadr[obj], 0] = column
            elif p.kind == "geom_friction":
                friction = np.repeat(self._friction[obj][None, :], batch.nsim, axis=0)
                friction[:, 0] = column
                batch.geom(p.element).friction = friction
        if self._writes_mass:
            batch.set_const(changed)

    def effects(self, vector: np.ndarray) -> dict[str, float]:
        """The simulator-side effects (noise, delay) of a vector; kinds absent from the space are 0."""
        values = {kind: 0.0 for kind in EFFECT_KINDS}
        for p, v in zip(self.space, np.asarray(vector, dtype=float)):
            if p.kind in EFFECT_KINDS:
                values[p.kind] = float(round(v)) if p.integer else float(v)
        return values


def joint_parameters(space: ParameterSpace, model: mujoco.MjModel, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(columns in the space, joint ids in the model) of the parameters of a per-joint `kind`; ConfigError naming
    a parameter whose joint the model lacks."""
    columns = np.array([i for i, p in enumerate(space) if p.kind == kind], dtype=int)
    joints = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, space.parameters[i].element)
                       for i in columns], dtype=int)
    missing = [space.parameters[i].name for i, joint in zip(columns, joints) if joint < 0]
    if missing:
        raise ConfigError(f"parameters {missing}: the model has no such joint")
    return columns, joints


class StribeckFriction:
    """A joint's breakaway friction above its Coulomb level near rest (Stribeck effect).

    Joint j's dry friction at speed v is ``frictionloss_j + stribeck_j * exp(-(v / stribeck_velocity)^2)``, set
    as MuJoCo's frictionloss before every physics step from the velocity at its start. MuJoCo's friction
    constraint then holds a joint at rest below its breakaway torque, with no stiff explicit force.

    Args:
      space: the parameter space (its dof_stribeck and stribeck_velocity parameters).
      model: the nominal model (joint names -> dof addresses).
    """

    def __init__(self, space: ParameterSpace, model: mujoco.MjModel):
        kinds = [p.kind for p in space]
        self.columns, joints = joint_parameters(space, model, "dof_stribeck")
        self.dofs = model.jnt_dofadr[joints].astype(int)
        if self.columns.size and "stribeck_velocity" not in kinds:
            raise ConfigError(f"parameter space {space.name!r}: dof_stribeck parameters need a parameter of kind "
                              f"stribeck_velocity")
        self.velocity_column = kinds.index("stribeck_velocity") if "stribeck_velocity" in kinds else None
        if self.velocity_column is not None and space.parameters[self.velocity_column].low <= 0:
            raise ConfigError(f"parameter {space.parameters[self.velocity_column].name!r}: a Stribeck velocity "
                              f"needs a positive lower bound")

    def breakaway(self, matrix: np.ndarray) -> np.ndarray:
        """Breakaway friction above Coulomb [N*m], (n, joints), of (n, dim) parameter rows."""
        return np.atleast_2d(matrix)[:, self.columns]

    def active(self, matrix: np.ndarray) -> bool:
        """Whether any row has breakaway friction (else the physics steps need no update)."""
        return bool(self.columns.size) and bool(np.any(self.breakaway(matrix) > 0))

    def velocity(self, matrix: np.ndarray) -> np.ndarray:
        """Stribeck velocity [rad/s] of each row, (n,)."""
        return np.atleast_2d(matrix)[:, self.velocity_column]

    @staticmethod
    def level(coulomb: np.ndarray, breakaway: np.ndarray, stribeck_velocity: np.ndarray,
              velocity: np.ndarray) -> np.ndarray:
        """Dry friction [N*m] at joint velocities (n, joints), for rows of (n, joints) Coulomb and breakaway
        friction and (n,) Stribeck velocities."""
        return coulomb + breakaway * np.exp(-np.square(velocity / stribeck_velocity[:, None]))


def latency_steps(space: ParameterSpace, matrix: np.ndarray, timestep: float, nstep: int) -> np.ndarray:
    """Each row's command latency in physics steps, (n,) (zeros without a command_latency parameter); ValueError
    when one is not shorter than the control period of `nstep` steps."""
    matrix = np.atleast_2d(matrix)
    kinds = [p.kind for p in space]
    if "command_latency" not in kinds:
        return np.zeros(matrix.shape[0])
    steps = matrix[:, kinds.index("command_latency")] / timestep
    if np.any(steps >= nstep):
        raise ValueError(f"command_latency {steps.max() * timestep:g} s must be shorter than the control period "
                         f"{nstep * timestep:g} s")
    return steps


RATE_PREROLL_PERIODS = 4  # periods of command history a prediction runs a torque rate limit through (no physics)


def rate_preroll(space: ParameterSpace) -> int:
    """Periods of command history a prediction runs a torque rate limit through, from the oldest command taken as
    reached (RATE_PREROLL_PERIODS with a torque_rate_limit, else none): ramps that outlast a period carry over."""
    return RATE_PREROLL_PERIODS if any(p.kind == "torque_rate_limit" for p in space) else 0


def history_depth(space: ParameterSpace) -> int:
    """Past commands a prediction from a recorded state needs: the largest action delay, the period before it (a
    command latency; the start of a rate limit) and the rate limit's preroll."""
    delay = next((int(round(p.high)) for p in space if p.kind == "action_delay"), 0)
    return 1 + delay + rate_preroll(space)


def rate_steps(space: ParameterSpace, matrix: np.ndarray, timestep: float) -> np.ndarray:
    """Each row's largest change of a joint's applied torque per physics step [N*m], (n,) (inf without a
    torque_rate_limit parameter)."""
    matrix = np.atleast_2d(matrix)
    kinds = [p.kind for p in space]
    if "torque_rate_limit" not in kinds:
        return np.full(matrix.shape[0], np.inf)
    return matrix[:, kinds.index("torque_rate_limit")] * timestep


def rate_limited(torque: np.ndarray, target: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """Applied torques (n, joints) after one physics step of the rate limiter: `torque` moved toward `target` by at
    most `max_step` (n,) per joint (libfranka limitRate); exactly `target` where the limit does not bind."""
    step = max_step[:, None]
    return np.minimum(np.maximum(target, torque - step), torque + step)


def held_share(latency: np.ndarray, step: int | np.ndarray) -> np.ndarray:
    """The share of physics step `step` of a control period that still applies the previous command, for
    latencies (n,) in physics steps (array arguments broadcast)."""
    return np.clip(latency - step, 0.0, 1.0)


def period_inputs(torque: np.ndarray, command: np.ndarray, previous: np.ndarray | None, latency: np.ndarray,
                  max_step: np.ndarray | None, nstep: int) -> np.ndarray:
    """Each physics step's actuator inputs (nstep, n, joints) over one control period, for n simulations: `command`,
    with `previous` held during each one's command latency (physics steps, a fraction blends; None: no latency),
    reached from the inputs `torque` of the step before within the torque rate limit `max_step` (n,) per physics step
    (None: the caller knows that it cannot bind this period).
    The single Simulator, the batched kernel and its settling before a window all step through this."""
    if previous is None:
        targets = np.broadcast_to(command, (nstep, *command.shape))
    else:
        held = held_share(latency[None, :], np.arange(nstep)[:, None])[:, :, None]  # every physics step's at once
        targets = held * previous + (1.0 - held) * command
    if max_step is None:
        return targets
    step = max_step[:, None]
    inputs = np.empty(targets.shape)
    low, high = np.empty(command.shape), np.empty(command.shape)
    for k in range(nstep):  # rate_limited, step after step, in place
        np.subtract(torque, step, out=low)
        np.add(torque, step, out=high)
        torque = np.minimum(np.maximum(targets[k], low, out=inputs[k]), high, out=inputs[k])
    return inputs


class EncoderOffsets:
    """Constant offsets of measured joint positions: measured = true + encoder_offset, per joint.

    Args:
      space: the parameter space (its encoder_offset parameters).
      model: the model (joint names -> qpos addresses).
    """

    def __init__(self, space: ParameterSpace, model: mujoco.MjModel):
        self.columns, joints = joint_parameters(space, model, "encoder_offset")
        self.addresses = model.jnt_qposadr[joints].astype(int)
        self.nq = model.nq

    def qpos_offsets(self, matrix: np.ndarray) -> np.ndarray:
        """(n, nq) offsets of every qpos entry (zero where no parameter applies) for (n, dim) parameter rows."""
        matrix = np.atleast_2d(matrix)
        out = np.zeros((matrix.shape[0], self.nq))
        out[:, self.addresses] = matrix[:, self.columns]
        return out
