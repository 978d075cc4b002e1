"""MuJoCo models by name: the package's MJCF files (``fr3``) and gymnasium's (``hopper``)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import mujoco

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


def load_model(model: str | os.PathLike | mujoco.MjModel) -> mujoco.MjModel:
    """Compile a model by name or path (an MjModel is returned as is)."""
    if isinstance(model, mujoco.MjModel):
        return model
    path = model_path(model)
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except ValueError as exc:
        raise ConfigError(f"cannot load MuJoCo model {path}: {exc}") from None
