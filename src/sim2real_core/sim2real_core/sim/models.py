"""MuJoCo models by name: the package's MJCF files (``fr3``) and gymnasium's (``hopper``)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np

from ..config import ConfigError

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def model_path(name_or_path: str | os.PathLike) -> Path:
    """``fr3`` -> sim2real_core/models/fr3.xml; ``hopper`` -> gymnasium's hopper.xml; a path unchanged."""
    path = Path(name_or_path)
    if path.suffix == ".xml":
        return path if path.is_absolute() or path.exists() else MODELS_DIR / path
    if (MODELS_DIR / f"{name_or_path}.xml").is_file():
        return MODELS_DIR / f"{name_or_path}.xml"
    gymnasium = importlib.util.find_spec("gymnasium")  # located, not imported: only its model assets are used
    if gymnasium is not None:
        gym_asset = Path(gymnasium.origin).parent / "envs" / "mujoco" / "assets" / f"{name_or_path}.xml"
        if gym_asset.is_file():
            return gym_asset
    raise ConfigError(f"no model named {name_or_path!r}: expected {MODELS_DIR}/{name_or_path}.xml, "
                      f"a gymnasium asset, or an .xml path")


def load_model(model: str | os.PathLike | mujoco.MjModel, remove_bodies: Sequence[str] = ()) -> mujoco.MjModel:
    """Compile a model by name or path (an MjModel is returned as is).

    Args:
      model: model name, path or MjModel.
      remove_bodies: free-floating bodies to leave out (e.g. the puck for reaching, which is then cheaper to
        simulate); their joints' entries are dropped from the keyframes.
    """
    if isinstance(model, mujoco.MjModel):
        if remove_bodies:
            raise ValueError("remove_bodies needs a model name or path, not a compiled MjModel")
        return model
    path = model_path(model)
    try:
        if not remove_bodies:
            return mujoco.MjModel.from_xml_path(str(path))
        spec = mujoco.MjSpec.from_file(str(path))
        full = spec.compile()
        keep_q, keep_v = np.ones(full.nq, dtype=bool), np.ones(full.nv, dtype=bool)
        for name in remove_bodies:
            body = full.body(name)  # KeyError for a missing body
            joint = body.jntadr[0]
            if body.parentid[0] != 0 or body.jntnum[0] != 1 or full.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
                raise ConfigError(f"{path}: body {name!r} is not a free-floating body of the world; cannot remove it")
            keep_q[full.jnt_qposadr[joint]:full.jnt_qposadr[joint] + 7] = False
            keep_v[full.jnt_dofadr[joint]:full.jnt_dofadr[joint] + 6] = False
            spec.delete(spec.body(name))
        for key in spec.keys:
            if len(key.qpos) == full.nq:
                key.qpos = np.asarray(key.qpos)[keep_q].tolist()
            if len(key.qvel) == full.nv:
                key.qvel = np.asarray(key.qvel)[keep_v].tolist()
        return spec.compile()
    except ConfigError:
        raise
    except KeyError as exc:
        raise ConfigError(f"{path}: cannot remove bodies {list(remove_bodies)}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"cannot load MuJoCo model {path}: {exc}") from None
