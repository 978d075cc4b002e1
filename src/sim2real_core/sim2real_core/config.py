"""Where the workspace's YAML configuration lives, loading it with clear errors, and option models.

Defaults live in `config/` at the workspace root (robots, parameter spaces, reality proxies, tasks, training,
safety, the demo plan). An installed workspace finds them under `share/sim2real_core/config`; `SIM2REAL_CONFIG`
overrides both. (The stacks' node parameter files belong to the ROS package: sim2real_ros/config/stacks.)

An `OptionModel` (pydantic) holds a group of settings with each default, range and description defined once;
command-line options (`add_model_arguments`) and ROS node parameters (sim2real_ros.descriptors) are generated
from it, and `validate_options` turns its validation errors into a ConfigError naming each field.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import typing
from pathlib import Path
from typing import Any, TypeVar

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

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
    if (source_tree / "robots").is_dir():
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


class OptionModel(BaseModel):
    """A group of settings: unknown names are errors, values are immutable and validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Options = TypeVar("Options", bound=OptionModel)


def validate_options(model: type[Options], values: dict[str, Any], where: str) -> Options:
    """`model` from `values`; ConfigError listing every field that is unknown or invalid, prefixed by `where`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"{where}: " + "; ".join(_problem(e) for e in exc.errors())) from None


def _problem(error: dict) -> str:
    """One pydantic error as `field.path: message (got value)`; a check of the whole entry names no field."""
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    shown = "" if isinstance(error.get("input"), dict) else f" (got {error.get('input')!r})"
    return f"{'.'.join(str(p) for p in error['loc'])}: {message}{shown}"


def option_bounds(model: type[OptionModel], name: str) -> tuple[float | None, float | None]:
    """(lowest, highest) value a numeric field allows, inclusive (None where unbounded): a strict bound becomes
    the next integer, or the next float, inside it."""
    low = high = None
    integer = model.model_fields[name].annotation is int
    for rule in model.model_fields[name].metadata:
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Gt):
            low = rule.gt + 1 if integer else math.nextafter(rule.gt, math.inf)
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.Lt):
            high = rule.lt - 1 if integer else math.nextafter(rule.lt, -math.inf)
    return low, high


def option_choices(model: type[OptionModel], name: str) -> tuple | None:
    """The values a Literal field allows, else None."""
    annotation = model.model_fields[name].annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None


def add_model_arguments(parser: argparse.ArgumentParser, model: type[OptionModel]) -> None:
    """One `--name` option per field of `model` (`--flag/--no-flag` for booleans), help from its description."""
    for name, field in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        text = f"{field.description} (default {field.default})"
        if field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=text)
            continue
        choices = option_choices(model, name)
        kind = type(choices[0]) if choices else field.annotation
        parser.add_argument(flag, type=kind, choices=choices, default=field.default, help=text)


def model_from_arguments(model: type[Options], args: argparse.Namespace) -> Options:
    """`model` from the options `add_model_arguments` added (validated: ConfigError naming the option)."""
    return validate_options(model, {name: getattr(args, name) for name in model.model_fields}, "options")


def load_config(path: str | os.PathLike, model: type[Options], section: str | None = None) -> Options:
    """A configuration file as its model: the YAML mapping (or its `section`), validated; ConfigError naming the
    file and every bad field otherwise."""
    path = Path(path)
    body = load_yaml(path)
    if section is not None:
        body = body.get(section)
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: expected a {section!r} mapping")
    return validate_options(model, body, f"{path}" + (f": {section}" if section else ""))
