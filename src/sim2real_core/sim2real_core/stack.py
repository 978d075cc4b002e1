"""Stack definitions: which nodes run together, with their ROS parameters.

A stack file `config/stacks/NAME.yaml` is read by both `sim2real up` and the `launch/*.launch.py`
files, so the two cannot drift. Shape::

    stack:
      description: MuJoCo FR3 behind the franka_ros2 topics
      nodes:
        - {name: sim_bridge, package: sim2real_ros, executable: sim_bridge}
        - {name: policy_server, package: sim2real_ros, executable: policy_server,
           respawn: true, remappings: {/effort_controller/commands: /cmd}}
    sim_bridge:
      ros__parameters: {profile: sim}
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import ConfigError, config_path, load_yaml, named_file

NODE_KEYS = {"name", "package", "executable", "respawn", "respawn_delay", "required", "remappings"}


@dataclass(frozen=True)
class NodeSpec:
    """One node of a stack: the executable to run, its name, parameters and remappings."""

    name: str
    package: str
    executable: str
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: dict[str, str] = field(default_factory=dict)
    respawn: bool = False
    respawn_delay: float = 1.0
    required: bool = False
    namespace: str = ""

    def ros_arguments(self, params_file: str | os.PathLike | None = None) -> list[str]:
        """Return the `--ros-args ...` command-line tail that names, parameterises and remaps the node."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for source, target in self.remappings.items():
            args += ["-r", f"{source}:={target}"]
        return args

    def params_file_content(self) -> dict[str, Any]:
        """Return the node's parameters in the ROS parameter-file layout."""
        key = f"{self.namespace}/{self.name}" if self.namespace else self.name  # rcl matches the full name
        return {key: {"ros__parameters": dict(self.parameters)}}


@dataclass(frozen=True)
class Stack:
    """A named set of nodes started together."""

    name: str
    description: str
    nodes: tuple[NodeSpec, ...]
    source: Path


def stack_file(name_or_path: str | os.PathLike) -> Path:
    """Resolve a stack name (`sim`) or a path to a stack YAML file."""
    return named_file("stacks", name_or_path)


def available_stacks() -> list[str]:
    """Names of the stacks in config/stacks."""
    return sorted(p.stem for p in config_path("stacks").glob("*.yaml"))


def load_stack(name_or_path: str | os.PathLike) -> Stack:
    """Load and validate a stack definition."""
    path = stack_file(name_or_path)
    if not path.is_file():
        known = ", ".join(available_stacks()) or "none"
        raise ConfigError(f"no stack {str(name_or_path)!r} ({path} does not exist); known stacks: {known}")
    data = load_yaml(path)
    header = data.get("stack")
    if not isinstance(header, dict) or not isinstance(header.get("nodes"), list) or not header["nodes"]:
        raise ConfigError(f"{path}: expected a 'stack' mapping with a non-empty 'nodes' list")
    nodes = []
    for index, entry in enumerate(header["nodes"]):
        where = f"{path}: stack.nodes[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping, got {entry!r}")
        unknown = set(entry) - NODE_KEYS
        if unknown:
            raise ConfigError(f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(NODE_KEYS)}")
        for key in ("name", "package", "executable"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise ConfigError(f"{where} needs a non-empty string '{key}'")
        params = data.get(entry["name"], {}) or {}
        if not isinstance(params, dict) or not isinstance(params.get("ros__parameters", {}), dict):
            raise ConfigError(f"{path}: '{entry['name']}' must map to {{ros__parameters: {{...}}}}")
        nodes.append(
            NodeSpec(
                name=entry["name"],
                package=entry["package"],
                executable=entry["executable"],
                parameters=dict(params.get("ros__parameters", {}) or {}),
                remappings={str(k): str(v) for k, v in (entry.get("remappings") or {}).items()},
                respawn=bool(entry.get("respawn", False)),
                respawn_delay=float(entry.get("respawn_delay", 1.0)),
                required=bool(entry.get("required", False)),
            )
        )
    names = [n.name for n in nodes]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{path}: node names must be unique, repeated: {duplicated}")
    return Stack(name=path.stem, description=str(header.get("description", "")), nodes=tuple(nodes), source=path)


def in_namespace(stack: Stack, namespace: str) -> Stack:
    """A copy of the stack whose nodes run in `namespace` (franka_ros2's launch namespace, e.g. /left)."""
    if not namespace:
        return stack
    if not re.fullmatch(r"/?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*", namespace):
        raise ConfigError(f"namespace {namespace!r} is not a ROS namespace (e.g. /left)")
    namespace = namespace if namespace.startswith("/") else "/" + namespace
    return dataclasses.replace(stack, nodes=tuple(dataclasses.replace(n, namespace=namespace) for n in stack.nodes))


def parse_overrides(items: list[str]) -> dict[str, dict[str, object]]:
    """Parse `node.parameter:=value` (or `=`) items into {node: {parameter: value}}; values are YAML scalars."""
    overrides: dict[str, dict[str, object]] = {}
    for item in items:
        key, sep, raw = item.partition(":=")
        if not sep:
            key, sep, raw = item.partition("=")
        node, dot, parameter = key.partition(".")
        if not sep or not dot or not node or not parameter:
            raise ConfigError(f"override {item!r} must look like node.parameter:=value")
        overrides.setdefault(node, {})[parameter] = yaml.safe_load(raw) if raw else ""
    return overrides


def apply_overrides(stack: Stack, overrides: dict[str, dict[str, object]]) -> Stack:
    """A copy of the stack with parameters overridden per node; unknown node names raise."""
    names = {n.name for n in stack.nodes}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"overrides name nodes {unknown} that stack {stack.name!r} does not have ({sorted(names)})")
    nodes = tuple(
        dataclasses.replace(n, parameters={**n.parameters, **overrides.get(n.name, {})}) for n in stack.nodes
    )
    return dataclasses.replace(stack, nodes=nodes)
