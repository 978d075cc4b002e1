"""Forward kinematics of a serial arm in numpy, from modified (Craig) Denavit-Hartenberg rows.

Each row (a, d, alpha) moves from link i-1 to link i by Rx(alpha) · Tx(a) · Tz(d) · Rz(q_i); a fixed `tool`
offset in the last frame gives the tool centre point. The chain lives in the robot file
(config/robots/NAME.yaml, `kinematics`) and is copied into policy files that use end-effector features, so a
served policy computes exactly what it was trained on, from the measured joint positions alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class SerialChain:
    """Modified DH rows (a [m], d [m], alpha [rad]) per joint, then a fixed flange row and tool offset [m]."""

    dh: tuple[tuple[float, float, float], ...]
    flange: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tool: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        rows = np.asarray(self.dh, dtype=float)
        if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) < 1 or not np.all(np.isfinite(rows)):
            raise ValueError(f"kinematics.dh must be rows of 3 finite numbers (a, d, alpha), got {self.dh!r}")
        for name in ("flange", "tool"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (3,) or not np.all(np.isfinite(value)):
                raise ValueError(f"kinematics.{name} must be 3 finite numbers, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, data: dict) -> "SerialChain":
        """From {dh: [[a, d, alpha], ...], flange: [a, d, alpha], tool: [x, y, z]} (robot or policy file)."""
        return cls(dh=tuple(tuple(float(v) for v in row) for row in data["dh"]),
                   flange=tuple(float(v) for v in data.get("flange", (0.0, 0.0, 0.0))),
                   tool=tuple(float(v) for v in data.get("tool", (0.0, 0.0, 0.0))))

    def to_mapping(self) -> dict:
        """The inverse of `from_mapping` (plain lists, YAML-ready)."""
        return {"dh": [list(row) for row in self.dh], "flange": list(self.flange), "tool": list(self.tool)}

    @cached_property
    def _frames(self) -> tuple[tuple[float, float, float, float], ...]:
        """(a, d, cos alpha, sin alpha) of each joint row, then of the flange: the constants of every call."""
        return tuple((a, d, math.cos(alpha), math.sin(alpha)) for a, d, alpha in (*self.dh, self.flange))

    @cached_property
    def _frame_columns(self) -> np.ndarray:
        """`_frames` as four (frames,) arrays: a, d, cos alpha, sin alpha."""
        return np.array(self._frames).T

    @property
    def dof(self) -> int:
        """Number of joints."""
        return len(self.dh)

    def tool_position(self, q: np.ndarray) -> np.ndarray:
        """Tool centre point in the base frame [m] for joint positions of shape (dof,) or (batch, dof)."""
        q = np.asarray(q, dtype=float)
        if q.shape[-1] != self.dof:
            raise ValueError(f"joint positions need {self.dof} values per row, got shape {q.shape}")
        if q.ndim == 1:
            return self._one_tool_position(q.tolist())
        batch = q.shape[:-1]
        a, d, ca, sa = self._frame_columns  # the joints' rows, then the flange's
        theta = np.concatenate([q, np.zeros((*batch, 1))], axis=-1)
        ct, st = np.cos(theta), np.sin(theta)
        # Rx(alpha) · Tx(a) · Tz(d) · Rz(theta) of every frame as a homogeneous transform (..., frames, 4, 4): the
        # new origin sits at a·x + d·(Rx(alpha) z) in the old frame.
        frames = np.zeros((*theta.shape, 4, 4))
        frames[..., 0, 0], frames[..., 0, 1], frames[..., 0, 3] = ct, -st, a
        frames[..., 1, 0], frames[..., 1, 1], frames[..., 1, 2], frames[..., 1, 3] = ca * st, ca * ct, -sa, -sa * d
        frames[..., 2, 0], frames[..., 2, 1], frames[..., 2, 2], frames[..., 2, 3] = sa * st, sa * ct, ca, ca * d
        frames[..., 3, 3] = 1.0
        pose = frames[..., 0, :, :]
        for j in range(1, theta.shape[-1]):
            pose = pose @ frames[..., j, :, :]
        return pose[..., :3, 3] + pose[..., :3, :3] @ np.asarray(self.tool)

    def _one_tool_position(self, angles: list[float]) -> np.ndarray:
        """`tool_position` of one pose in plain floats: called once per control step, where numpy's per-call
        overhead on 3x3 products cost five times the arithmetic (same frames as the batched path)."""
        r = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
        p = (0.0, 0.0, 0.0)
        for (a, d, ca, sa), theta in zip(self._frames, (*angles, 0.0)):
            ct, st = math.cos(theta), math.sin(theta)
            v = (a, -sa * d, ca * d)
            p = tuple(p[i] + r[i][0] * v[0] + r[i][1] * v[1] + r[i][2] * v[2] for i in range(3))
            r = tuple((row[0] * ct + row[1] * ca * st + row[2] * sa * st,
                       -row[0] * st + row[1] * ca * ct + row[2] * sa * ct,
                       -row[1] * sa + row[2] * ca) for row in r)
        t = self.tool
        return np.array([p[i] + r[i][0] * t[0] + r[i][1] * t[1] + r[i][2] * t[2] for i in range(3)])
