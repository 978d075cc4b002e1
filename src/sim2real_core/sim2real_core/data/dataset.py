"""Transition datasets (D4RL style): arrays in memory, `.npz` files, and D4RL/DROPO directories of `.npy` files.

Required arrays: `observations` (N, S), `next_observations` (N, S), `actions` (N, A), `terminals` (N,).
`terminals` and `timeouts` (N,) are optional on import (zeros when absent, noted in metadata). In a directory,
`NAME.npy` (D4RL) and `PREFIX_observations / _nextobservations / _actions / _terminals .npy` (the DROPO
repository's datasets, e.g. datasets/hopper10000/hoppermass_n10000_*.npy) both load. Extra per-transition arrays
(e.g. `timestamps`, `episodes` written by `bag_to_dataset`) are kept in `extras`. Metadata is stored as a
JSON string entry `metadata`, so files load with `allow_pickle=False`.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED = ("observations", "next_observations", "actions", "terminals")
# file-name suffixes of the DROPO repository's datasets (PREFIX_SUFFIX.npy) -> array names
DROPO_SUFFIXES = {"observations": "observations", "nextobservations": "next_observations", "actions": "actions",
                  "terminals": "terminals", "timeouts": "timeouts"}
FLAGS = ("terminals", "timeouts")
FORMAT = "sim2real.transitions"
FORMAT_VERSION = 1


class DatasetError(ValueError):
    """A dataset file is missing, malformed or inconsistent; the message names file, array and row."""


@dataclass
class TransitionDataset:
    """Transitions (s, a, s') with episode-end flags and metadata.

    Attributes:
        observations, next_observations: (N, S) float64 states before and after each transition.
        actions: (N, A) float64 actions.
        terminals: (N,) bool, true environment termination after the transition.
        timeouts: (N,) bool, the trajectory was cut (time limit, recording boundary, gap) after the transition.
        metadata: JSON-serialisable dict (robot, joints, control_period, state_layout, source, counts, ...).
        extras: further (N, ...) arrays, e.g. `timestamps` (s) and `episodes` (episode index).
    """

    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate(source=str(self.metadata.get("source_path", "dataset")))

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def episode_ends(self) -> np.ndarray:
        """Indices of transitions after which the trajectory does not continue (terminal or timeout)."""
        return np.flatnonzero(self.terminals | self.timeouts)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name (the required ones, `timeouts`, then the extras)."""
        return {"observations": self.observations, "actions": self.actions,
                "next_observations": self.next_observations, "terminals": self.terminals,
                "timeouts": self.timeouts, **self.extras}

    def validate(self, source: str) -> None:
        """Check shapes agree, values are finite and the set is non-empty; normalise dtypes in place.

        Raises DatasetError naming `source`, the array and the first bad row.
        """
        self.observations = _float2d(source, "observations", self.observations)
        self.next_observations = _float2d(source, "next_observations", self.next_observations)
        self.actions = _float2d(source, "actions", self.actions)
        n = self.observations.shape[0]
        if n == 0:
            raise DatasetError(f"{source}: dataset is empty (observations has 0 rows)")
        if self.next_observations.shape != self.observations.shape:
            raise DatasetError(f"{source}: next_observations has shape {self.next_observations.shape}, "
                               f"observations {self.observations.shape}; they must agree")
        if self.actions.shape[0] != n:
            raise DatasetError(f"{source}: actions has {self.actions.shape[0]} rows, observations {n}")
        self.terminals = _flags(source, "terminals", self.terminals, n)
        self.timeouts = _flags(source, "timeouts", self.timeouts, n)
        for name, values in self.extras.items():
            values = np.asarray(values)
            if values.ndim == 0 or values.shape[0] != n:
                raise DatasetError(f"{source}: extra array {name} has shape {values.shape}, expected {n} rows")
            self.extras[name] = values
        json.dumps(self.metadata)  # metadata must be JSON (no pickles)


def _float2d(source: str, name: str, values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "fiub":
        raise DatasetError(f"{source}: {name} has dtype {values.dtype}, expected numbers")
    values = values.astype(np.float64, copy=False)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DatasetError(f"{source}: {name} has shape {values.shape}, expected (N, dim)")
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DatasetError(f"{source}: {name} row {row} column {col} is {values[row, col]} (must be finite)")
    return values


def _flags(source: str, name: str, values: Any, n: int) -> np.ndarray:
    values = np.asarray(values)
    if values.shape != (n,):
        raise DatasetError(f"{source}: {name} has shape {values.shape}, expected ({n},)")
    if values.dtype != bool:
        if values.dtype.kind not in "fiub":
            raise DatasetError(f"{source}: {name} has dtype {values.dtype}, expected 0/1 flags")
        bad = ~np.isin(values, (0, 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{source}: {name} row {row} is {values[row]}, expected 0 or 1")
        values = values.astype(bool)
    return values


def save_dataset(path: str | os.PathLike, dataset: TransitionDataset) -> Path:
    """Write `dataset` as a compressed .npz (metadata as a JSON string entry); atomic; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise DatasetError(f"{path}: dataset files end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **dataset.metadata}
    np.savez_compressed(tmp, metadata=np.array(json.dumps(metadata)), **dataset.arrays())
    os.replace(tmp, path)
    return path


def load_dataset(path: str | os.PathLike) -> TransitionDataset:
    """Load a transition dataset from an `.npz` file, a D4RL `.hdf5` file or a directory of `.npy` files (D4RL /
    DROPO layout). D4RL files without next_observations get them from the following row (D4RL's qlearning_dataset
    convention): the rows that end an episode (timeout or terminal: their following row is another episode's
    start), and the last row, are dropped and counted.

    Returns:
        A validated TransitionDataset; `metadata["source_path"]` names where it came from.
    Raises:
        DatasetError naming the file and the array or row at fault.
    """
    path = Path(path)
    if path.is_dir():
        arrays = _load_npy_dir(path)
    elif path.suffix == ".npz" and path.is_file():
        arrays = _load_npz(path)
    elif path.suffix in (".hdf5", ".h5") and path.is_file():
        arrays = _load_hdf5(path)
    elif not path.exists():
        raise DatasetError(f"{path}: no such dataset file or directory")
    else:
        raise DatasetError(f"{path}: expected an .npz file, a D4RL .hdf5 file or a directory of .npy files")
    metadata: dict[str, Any] = arrays.pop("_metadata", {})
    if "metadata" in arrays:
        raw = arrays.pop("metadata")
        try:
            metadata = json.loads(str(raw.item() if raw.ndim == 0 else raw))
        except (ValueError, TypeError) as exc:
            raise DatasetError(f"{path}: metadata entry is not a JSON string ({exc})") from exc
        if not isinstance(metadata, dict):
            raise DatasetError(f"{path}: metadata entry must be a JSON object")
    missing = [name for name in REQUIRED if name not in arrays and name != "terminals"]
    if missing:
        raise DatasetError(f"{path}: missing arrays {missing} (has {sorted(arrays)})")
    n = np.asarray(arrays["observations"]).shape[0] if np.asarray(arrays["observations"]).ndim else 0
    # DROPO's hopper10000 directory has no terminals file; episode breaks are then found where a transition's
    # next observation is not the following one's observation (fit.transitions).
    for name in ("terminals", "timeouts"):
        if name not in arrays:
            arrays[name] = np.zeros(n, dtype=bool)
            metadata.setdefault(name, "absent in source (all false)")
    # Keep per-transition extras with the right length; D4RL files carry others (rewards, infos/*) we ignore.
    known = set(REQUIRED) | {"timeouts"}
    extras = {k: v for k, v in arrays.items() if k not in known and v.ndim >= 1 and v.shape[0] == n}
    metadata["source_path"] = str(path)
    return TransitionDataset(
        observations=arrays["observations"], actions=arrays["actions"],
        next_observations=arrays["next_observations"], terminals=arrays["terminals"],
        timeouts=arrays["timeouts"], metadata=metadata, extras=extras,
    )


def _load_hdf5(path: Path) -> dict:
    """The top-level arrays of a D4RL HDF5 file (groups such as infos/ and metadata/ are skipped)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            arrays = {name: np.asarray(item[()]) for name, item in f.items() if isinstance(item, h5py.Dataset)}
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if "next_observations" in arrays or "observations" not in arrays:
        return arrays
    n = len(arrays["observations"])
    ends = np.zeros(n, dtype=bool)
    for name in ("timeouts", "terminals"):
        ends |= np.asarray(arrays.get(name, np.zeros(n)), dtype=bool)
    keep = np.flatnonzero(~ends[:-1])
    out = {name: np.asarray(value)[keep] for name, value in arrays.items()
           if np.ndim(value) >= 1 and len(value) == n}
    out["next_observations"] = np.asarray(arrays["observations"])[keep + 1]
    out["_metadata"] = {"next_observations": f"from the following row (D4RL qlearning_dataset); {n - keep.size} "
                                             f"rows without one dropped"}
    return out


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read as .npz without pickles ({exc})") from exc


def _array_name(stem: str) -> tuple[str, str | None]:
    """(array name, DROPO file prefix or None) of an .npy file stem: `observations.npy` (D4RL) or
    `PREFIX_nextobservations.npy` (the DROPO repository's datasets, e.g. hoppermass_n10000_observations.npy)."""
    prefix, _, suffix = stem.rpartition("_")
    if stem not in (*REQUIRED, "timeouts") and prefix and suffix in DROPO_SUFFIXES:
        return DROPO_SUFFIXES[suffix], prefix
    return stem, None


def _load_npy_dir(path: Path) -> dict[str, np.ndarray]:
    arrays, sources, prefixes = {}, {}, set()
    for file in sorted(path.glob("*.npy")):
        name, prefix = _array_name(file.stem)
        if name in sources:
            raise DatasetError(f"{path}: {sources[name].name} and {file.name} both hold {name}; keep one dataset "
                               "per directory")
        if prefix is not None:
            prefixes.add(prefix)
        try:
            arrays[name] = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{file}: cannot read as .npy without pickles ({exc})") from exc
        sources[name] = file
    if len(prefixes) > 1:
        raise DatasetError(f"{path}: DROPO-named files of several datasets ({sorted(prefixes)}); keep one dataset "
                           "per directory")
    meta = path / "metadata.json"
    if meta.exists():
        arrays["metadata"] = np.array(meta.read_text())
    if not arrays:
        raise DatasetError(f"{path}: directory holds no .npy files")
    return arrays
