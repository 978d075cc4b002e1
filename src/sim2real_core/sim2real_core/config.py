"""Where the workspace's YAML configuration lives, and loading it with clear errors.

Defaults live in `config/` at the workspace root (robots, parameter spaces, stacks, distributions).
An installed workspace finds them under `share/sim2real_core/config`; `SIM2REAL_CONFIG` overrides both.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

CONFIG_ENV = "SIM2REAL_CONFIG"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or does not have the expected shape."""


def config_dir() -> Path:
    """Return the configuration directory: $SIM2REAL_CONFIG, the source tree's, or the installed one."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise ConfigError(f"{CONFIG_ENV}={override!r} is not a directory")
        return path
    source_tree = Path(__file__).resolve().parents[3] / "config"
    if (source_tree / "stacks").is_dir():
        return source_tree
    for prefix in [*os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep), sys.prefix]:
        installed = Path(prefix) / "share" / "sim2real_core" / "config"
        if prefix and installed.is_dir():
            return installed
    raise ConfigError(
        f"cannot find the sim2real config directory: set {CONFIG_ENV}, or run from the workspace "
        "or with its install/setup.sh sourced"
    )


def config_path(*parts: str) -> Path:
    """Return a path inside the configuration directory (it need not exist)."""
    return config_dir().joinpath(*parts)


def named_file(folder: str, name_or_path: str | os.PathLike) -> Path:
    """`NAME` -> config/FOLDER/NAME.yaml; a path ending in .yaml or .yml is returned unchanged."""
    path = Path(name_or_path)
    return path if path.suffix in (".yaml", ".yml") else config_path(folder, f"{name_or_path}.yaml")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Load a YAML mapping, raising ConfigError that names the file on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping at top level, got {type(data).__name__}")
    return data


def save_yaml(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write a mapping as YAML atomically (temporary file, then rename), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
    return path
