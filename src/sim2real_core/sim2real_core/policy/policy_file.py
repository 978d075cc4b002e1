"""Self-describing policy files: safetensors weights plus a YAML sidecar, evaluated in numpy.

A policy lives in a folder (or is named by its sidecar)::

    policy.yaml          the sidecar: layouts, normalisation, action head, joint names, training provenance
    policy.safetensors   the MLP weights (layers.0.weight, layers.0.bias, ...); its SHA-256 is in the sidecar

Loading reads tensors with safetensors (no pickle, no code execution) and checks every shape against the
sidecar, so a malformed, corrupt or mismatching pair is refused with a `PolicyFileError` naming the file.

Observation layouts:
    joint_state_v1: [q(n), dq(n), extra...] with n = len(joint_names); servable on the torque topic.
    vector_v1:      any flat observation vector (gymnasium tasks without joints, e.g. Pendulum-v1).
Observation features (joint_state_v1, optional): computed from the observation and appended to it before
normalisation, by the same code in training and serving:
    ee_position (3):  the tool centre point from q by the sidecar's forward kinematics (sim2real_core.kinematics)
    ee_offsets (3 each): a named 3-value extra input (e.g. target_position) minus ee_position
Memory (optional, `observation.history: K`): the network also sees the last K (state, action) pairs of its episode,
most recent first and zeros before its start, after the observation and its features; the state is [q, dq]
(joint_state_v1) or the whole observation (vector_v1), the action the network's output. A loaded policy keeps
them itself (`Policy.reset` at every episode start); training environments append them (tasks.VectorHistory).
Action heads (the network outputs a in [-1, 1]^m):
    torque:           tau = scale * a
    joint_target_pd:  tau = kp * (center + scale * a - q) - kd * dq   (needs joint_state_v1)
The result is torque without gravity; the safety layer then applies the robot's limits.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from ..config import OptionModel, validate_options
from ..kinematics import SerialChain

FORMAT = "sim2real_policy"
FORMAT_VERSION = 1
SIDECAR = "policy.yaml"
WEIGHTS = "policy.safetensors"
LAYOUTS = ("joint_state_v1", "vector_v1")
ACTION_MODES = ("torque", "joint_target_pd")
ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}
DEFAULT_ACTIVATION = "tanh"


def mlp_numpy(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray,
              activation: Callable[[np.ndarray], np.ndarray] = np.tanh) -> np.ndarray:
    """An MLP in numpy: layers as (weight transposed, bias), `activation` between them, none after the last."""
    for w, b in layers[:-1]:
        x = activation(x @ w + b)
    w, b = layers[-1]
    return x @ w + b
DEFAULT_OBS_CLIP = 10.0  # the bound of the normalised input (training's, and that of sidecars older than the field)
MAX_HISTORY = 64  # (state, action) pairs a memory policy may keep


class ObservationHistory:
    """The last `length` (state, action) pairs of `rows` streams, most recent first, zeros before each stream's
    episode start: the memory a policy with `observation.history` sees beside its observation.

    Args:
      length: pairs kept.
      state_size, action_size: widths of a state and an action.
      rows: number of streams (environments, or 1 for a served arm).
    """

    def __init__(self, length: int, state_size: int, action_size: int, rows: int = 1):
        self.length, self.state_size, self.action_size = int(length), int(state_size), int(action_size)
        self._pairs = np.zeros((rows, self.length, self.state_size + self.action_size))

    @property
    def rows(self) -> int:
        """Number of streams."""
        return self._pairs.shape[0]

    @property
    def width(self) -> int:
        """Values per stream: length * (state_size + action_size)."""
        return self._pairs.shape[1] * self._pairs.shape[2]

    def reset(self, ids: np.ndarray | None = None, rows: int | None = None) -> None:
        """Forget the pairs of streams `ids` (all when None); `rows`: start over with this many streams."""
        if rows is not None:
            self._pairs = np.zeros((rows, *self._pairs.shape[1:]))
        else:
            self._pairs[slice(None) if ids is None else ids] = 0.0

    def values(self) -> np.ndarray:
        """(rows, width) the pairs, most recent first."""
        return self._pairs.reshape(self.rows, -1).copy()

    def push(self, states: np.ndarray, actions: np.ndarray) -> None:
        """Append each stream's newest pair: states (rows, state_size) and the actions taken in them."""
        self._pairs[:, 1:] = self._pairs[:, :-1]
        self._pairs[:, 0, :self.state_size] = states
        self._pairs[:, 0, self.state_size:] = actions


class PolicyFileError(ValueError):
    """A policy file is missing, malformed, corrupt, or does not match its sidecar."""


@dataclass(frozen=True)
class ActionHead:
    """Maps the network output a in [-1, 1]^m to torque (see the module docstring)."""

    mode: str
    scale: list[float]
    center: list[float] = field(default_factory=list)
    kp: list[float] = field(default_factory=list)
    kd: list[float] = field(default_factory=list)

    def __post_init__(self):
        if self.mode not in ACTION_MODES:
            raise ValueError(f"action.mode must be one of {ACTION_MODES}, got {self.mode!r}")
        m = len(self.scale)
        needed = ("center", "kp", "kd") if self.mode == "joint_target_pd" else ()
        for name in ("scale", *needed):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.shape != (m,) or not np.all(np.isfinite(values)):
                raise ValueError(f"action.{name} must be {m} finite numbers, got {getattr(self, name)!r}")
        object.__setattr__(self, "_arrays", tuple(np.asarray(getattr(self, k) or [0.0] * m, dtype=float)
                                                  for k in ("scale", "center", "kp", "kd")))

    @property
    def size(self) -> int:
        """Action dimension m."""
        return len(self.scale)

    def torque(self, action: np.ndarray, q: np.ndarray | None = None, dq: np.ndarray | None = None) -> np.ndarray:
        """Torque (without gravity) for actions of shape (..., m); q, dq as (..., m) for joint_target_pd."""
        a = np.minimum(np.maximum(action, -1.0), 1.0)
        scale, center, kp, kd = self._arrays
        if self.mode == "torque":
            return scale * a
        return kp * (center + scale * a - q) - kd * dq


class EndEffectorFeatures:
    """Appends ee_position and ee_offsets (see the module docstring) to joint_state_v1 observations.

    Args:
        chain: forward kinematics of the arm (its dof is the joint count n).
        extra_inputs: the observation's extra inputs after q and dq, in order ({name, size, ...}).
        ee_offsets: names of 3-value extra inputs to express relative to the end effector.
    """

    def __init__(self, chain: SerialChain, extra_inputs: list[dict[str, Any]], ee_offsets: list[str]):
        self.chain = chain
        self.ee_offsets = list(ee_offsets)
        starts, at = {}, 2 * chain.dof
        for entry in extra_inputs:
            starts[str(entry["name"])], at = (at, int(entry["size"])), at + int(entry["size"])
        self._slices = []
        for name in self.ee_offsets:
            if name not in starts or starts[name][1] != 3:
                raise ValueError(f"observation.features.ee_offsets names {name!r}, which is not a 3-value extra "
                                 f"input (extra inputs: {sorted(starts)})")
            self._slices.append(slice(starts[name][0], starts[name][0] + 3))

    @property
    def size(self) -> int:
        """How many values are appended."""
        return 3 * (1 + len(self.ee_offsets))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Observation(s) of shape (..., size) -> the same with the features appended."""
        obs = np.asarray(obs, dtype=np.float64)
        ee = self.chain.tool_position(obs[..., :self.chain.dof])
        return np.concatenate([obs, ee, *(obs[..., part] - ee for part in self._slices)], axis=-1)

    def to_mapping(self) -> dict[str, Any]:
        """The sidecar's observation.features entry."""
        return {"kinematics": self.chain.to_mapping(), "ee_offsets": list(self.ee_offsets)}


@dataclass(frozen=True)
class PolicySpec:
    """The sidecar contents. `obs_mean`/`obs_std` normalise the network input: the observation (`obs_size`
    values) followed by its `features` (`EndEffectorFeatures.to_mapping()`; empty for none)."""

    layout: str
    obs_size: int
    obs_mean: list[float]
    obs_std: list[float]
    hidden: list[int]
    action: ActionHead
    activation: str = DEFAULT_ACTIVATION
    joint_names: list[str] = field(default_factory=list)
    extra_inputs: list[dict[str, Any]] = field(default_factory=list)  # [{name, size, default}] after q, dq
    obs_clip: float = DEFAULT_OBS_CLIP
    training: dict[str, Any] = field(default_factory=dict)  # task, distribution, seed, steps, algorithm ...
    features: dict[str, Any] = field(default_factory=dict)
    history: int = 0  # (state, action) pairs of memory after the observation and features (0: none)

    def feature_map(self) -> EndEffectorFeatures | None:
        """The features this policy appends to its observation (None when it has none)."""
        if not self.features:
            return None
        return EndEffectorFeatures(SerialChain.from_mapping(self.features["kinematics"]), self.extra_inputs,
                                   list(self.features.get("ee_offsets") or []))

    @property
    def state_size(self) -> int:
        """Width of a state in the memory: [q, dq] (joint_state_v1) or the observation (vector_v1)."""
        return 2 * len(self.joint_names) if self.layout == "joint_state_v1" else self.obs_size

    def memory(self, rows: int = 1) -> ObservationHistory | None:
        """An empty memory of this policy's `history` pairs for `rows` streams (None without one)."""
        return ObservationHistory(self.history, self.state_size, self.action.size, rows) if self.history else None

    @property
    def input_size(self) -> int:
        """Size of the network input: the observation plus its features, then the memory."""
        features = self.feature_map()
        memory = self.history * (self.state_size + self.action.size)
        return self.obs_size + (0 if features is None else features.size) + memory

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"observation.layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"network.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.obs_size < 1 or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"observation.size and network.hidden must be positive, got {self.obs_size}, "
                             f"{self.hidden}")
        if not 0 <= int(self.history) <= MAX_HISTORY:
            raise ValueError(f"observation.history must be 0..{MAX_HISTORY} (state, action) pairs, got {self.history}")
        if self.features and self.layout != "joint_state_v1":
            raise ValueError("observation.features need the joint_state_v1 layout")
        features = self.feature_map()
        if features is not None and features.chain.dof != len(self.joint_names):
            raise ValueError(f"observation.features.kinematics has {features.chain.dof} joints, the policy "
                             f"{len(self.joint_names)}")
        size = self.input_size
        for name in ("obs_mean", "obs_std"):
            values = np.asarray(getattr(self, name), dtype=float)
            if values.shape != (size,) or not np.all(np.isfinite(values)):
                raise ValueError(f"observation.{name.removeprefix('obs_')} must be {size} finite numbers "
                                 f"(observation, features and memory)")
        if np.any(np.asarray(self.obs_std) <= 0):
            raise ValueError("observation.std must be positive")
        if self.layout == "joint_state_v1":
            n = len(self.joint_names)
            extra = sum(int(e["size"]) for e in self.extra_inputs)
            if n < 1 or self.obs_size != 2 * n + extra:
                raise ValueError(f"joint_state_v1 needs observation.size = 2*{n} joints + {extra} extra inputs, "
                                 f"got {self.obs_size}")
            if self.action.size != n:
                raise ValueError(f"action size {self.action.size} != {n} joints")
            for entry in self.extra_inputs:
                if len(entry.get("default", [])) != int(entry["size"]):
                    raise ValueError(f"extra input {entry.get('name')!r} needs {entry['size']} default values")
        elif self.action.mode == "joint_target_pd":
            raise ValueError("action.mode joint_target_pd needs the joint_state_v1 layout")

    def layer_shapes(self) -> dict[str, tuple[int, ...]]:
        """Expected tensor name -> shape of the MLP (obs -> hidden... -> action)."""
        sizes = [self.input_size, *map(int, self.hidden), self.action.size]
        shapes = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            shapes[f"layers.{i}.weight"] = (fan_out, fan_in)
            shapes[f"layers.{i}.bias"] = (fan_out,)
        return shapes

    def to_sidecar(self, sha256: str) -> dict[str, Any]:
        """The sidecar mapping written next to the weights."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "weights": WEIGHTS, "sha256": sha256,
            "joint_names": list(self.joint_names),
            "observation": {"layout": self.layout, "size": self.obs_size, "extra_inputs": list(self.extra_inputs),
                            **({"features": self.features} if self.features else {}),
                            **({"history": int(self.history)} if self.history else {}),
                            "mean": _floats(self.obs_mean), "std": _floats(self.obs_std), "clip": self.obs_clip},
            "network": {"hidden": [int(h) for h in self.hidden], "activation": self.activation},
            "action": {k: _floats(v) if isinstance(v, list) else v for k, v in asdict(self.action).items()},
            "training": self.training,
        }

    @classmethod
    def from_sidecar(cls, data: dict[str, Any]) -> "PolicySpec":
        """Parse a sidecar mapping (validated as a SidecarFile; ValueError naming each bad field or value)."""
        sidecar = validate_options(SidecarFile, data, "sidecar")
        obs, net = sidecar.observation, sidecar.network
        return cls(layout=obs.layout, obs_size=obs.size, obs_mean=obs.mean, obs_std=obs.std, obs_clip=obs.clip,
                   extra_inputs=obs.extra_inputs, hidden=net.hidden, activation=net.activation,
                   action=ActionHead(**sidecar.action.model_dump()), features=obs.features, history=obs.history,
                   joint_names=sidecar.joint_names, training=sidecar.training)


class SidecarObservation(OptionModel):
    """The sidecar's `observation`: layout, size, extra inputs and features, and the input normalisation."""

    layout: str
    size: int
    mean: list[float]
    std: list[float]
    clip: float = DEFAULT_OBS_CLIP
    extra_inputs: list[dict[str, Any]] = []
    features: dict[str, Any] = {}
    history: int = 0


class SidecarNetwork(OptionModel):
    """The sidecar's `network`: the MLP's hidden sizes and activation."""

    hidden: list[int]
    activation: str = DEFAULT_ACTIVATION


class SidecarAction(OptionModel):
    """The sidecar's `action`: the ActionHead's fields."""

    mode: str
    scale: list[float]
    center: list[float] = []
    kp: list[float] = []
    kd: list[float] = []


class SidecarFile(OptionModel):
    """A policy sidecar (policy.yaml), as `PolicySpec.to_sidecar` writes it."""

    format: str
    format_version: int
    weights: str = WEIGHTS
    sha256: str
    joint_names: list[str] = []
    observation: SidecarObservation
    network: SidecarNetwork
    action: SidecarAction
    training: dict[str, Any] = {}


class Policy:
    """A loaded policy: a deterministic numpy MLP plus its action head (and its memory, if it has one)."""

    def __init__(self, spec: PolicySpec, weights: dict[str, np.ndarray], source: Path | None = None,
                 sha256: str = ""):
        expected = spec.layer_shapes()
        if set(weights) != set(expected):
            raise PolicyFileError(f"{source or 'weights'}: tensors {sorted(weights)} do not match the sidecar's "
                                  f"network {sorted(expected)}")
        for name, shape in expected.items():
            if tuple(weights[name].shape) != shape:
                raise PolicyFileError(f"{source or 'weights'}: tensor {name} has shape {tuple(weights[name].shape)},"
                                      f" the sidecar's network needs {shape}")
            if not np.all(np.isfinite(weights[name])):
                raise PolicyFileError(f"{source or 'weights'}: tensor {name} has non-finite values")
        self.spec = spec
        self.source = source
        self.sha256 = sha256
        count = len(expected) // 2
        self._layers = [(np.asarray(weights[f"layers.{i}.weight"], dtype=np.float64).T.copy(),
                         np.asarray(weights[f"layers.{i}.bias"], dtype=np.float64)) for i in range(count)]
        self._mean = np.asarray(spec.obs_mean, dtype=np.float64)
        self._inv_std = 1.0 / np.asarray(spec.obs_std, dtype=np.float64)
        self._activation = ACTIVATIONS[spec.activation]
        self._features = spec.feature_map()
        parts = [np.asarray(e["default"], dtype=float) for e in spec.extra_inputs]
        self._extra_default = np.concatenate(parts) if parts else np.zeros(0)
        self.memory = spec.memory()

    def reset(self, rows: int = 1) -> None:
        """A new episode: forget the memory (policies with `history`), now for `rows` streams of observations."""
        if self.memory is not None:
            self.memory.reset(rows=rows)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action in [-1, 1] for observations of shape (obs_size,) or (batch, obs_size).

        A policy with memory reads and extends it: call `reset(rows=batch)` at every episode start.
        """
        clip = self.spec.obs_clip
        obs = np.asarray(obs, dtype=np.float64)
        x = obs if self._features is None else self._features(obs)
        if self.memory is not None:
            rows = 1 if obs.ndim == 1 else obs.shape[0]
            if rows != self.memory.rows:
                raise ValueError(f"{self.source or 'policy'}: its memory holds {self.memory.rows} streams, got "
                                 f"{rows} observations (call reset(rows={rows}) at the episode start)")
            memory = self.memory.values()
            x = np.concatenate([x, memory[0] if obs.ndim == 1 else memory], axis=-1)
        x = np.minimum(np.maximum((x - self._mean) * self._inv_std, -clip), clip)
        action = np.minimum(np.maximum(mlp_numpy(self._layers, x, self._activation), -1.0), 1.0)
        if self.memory is not None:  # training's environments take (and remember) float32 actions
            self.memory.push(np.atleast_2d(obs)[:, :self.spec.state_size], np.atleast_2d(action).astype(np.float32))
        return action

    def extra_defaults(self) -> np.ndarray:
        """The default values of the extra inputs (e.g. the reach goal), concatenated."""
        return self._extra_default.copy()

    def torque(self, q: np.ndarray, dq: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Torque without gravity for a joint state (joint_state_v1 policies only)."""
        if self.spec.layout != "joint_state_v1":
            raise PolicyFileError(f"policy layout {self.spec.layout} has no joint-state interface")
        obs = np.concatenate((q, dq, self._extra_default if extra is None else extra))
        return self.spec.action.torque(self.act(obs), q, dq)


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def sidecar_path(path: str | os.PathLike) -> Path:
    """A policy folder or sidecar path -> the sidecar path."""
    path = Path(path)
    return path / SIDECAR if path.is_dir() or path.suffix not in (".yaml", ".yml", ".json") else path


def save_policy(path: str | os.PathLike, spec: PolicySpec, weights: dict[str, np.ndarray]) -> Path:
    """Write weights and sidecar into folder `path` (created); returns the sidecar path.

    Both files are written to temporary names and renamed, weights first, so a reader never sees a sidecar
    whose checksum does not match.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    Policy(spec, tensors)  # validates shapes before anything is written
    blob = save_tensors(tensors, metadata={"format": FORMAT})
    sidecar = spec.to_sidecar(hashlib.sha256(blob).hexdigest())
    for name, content in ((WEIGHTS, blob), (SIDECAR, yaml.safe_dump(sidecar, sort_keys=False).encode())):
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, folder / name)
    return folder / SIDECAR


def load_policy(path: str | os.PathLike) -> Policy:
    """Load and fully validate a policy folder or sidecar; raises PolicyFileError naming the file."""
    sidecar = sidecar_path(path)
    try:
        data = yaml.safe_load(sidecar.read_text())
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy sidecar {sidecar}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"{sidecar} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PolicyFileError(f"{sidecar} is not a {FORMAT} sidecar (expected 'format: {FORMAT}')")
    if data.get("format_version") != FORMAT_VERSION:
        raise PolicyFileError(f"{sidecar}: format_version {data.get('format_version')!r} is not supported "
                              f"(this build reads {FORMAT_VERSION})")
    try:
        spec = PolicySpec.from_sidecar(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyFileError(f"{sidecar}: malformed sidecar: {exc}") from exc
    name = str(data.get("weights", WEIGHTS))
    if Path(name).name != name:
        raise PolicyFileError(f"{sidecar}: weights must name a file next to the sidecar, got {name!r}")
    weights_path = sidecar.parent / name
    try:
        blob = weights_path.read_bytes()
    except OSError as exc:
        raise PolicyFileError(f"cannot read policy weights {weights_path}: {exc.strerror or exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != data.get("sha256"):
        raise PolicyFileError(f"{weights_path}: SHA-256 {digest} does not match the sidecar's {data.get('sha256')}"
                              " (corrupt or replaced weights)")
    try:
        weights = load_tensors(blob)
    except (SafetensorError, ValueError) as exc:
        raise PolicyFileError(f"{weights_path} is not a valid safetensors file: {exc}") from exc
    return Policy(spec, weights, source=sidecar, sha256=digest)
