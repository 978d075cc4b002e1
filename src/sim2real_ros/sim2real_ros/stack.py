"""Stacks: which nodes run together (a flat launch file) with their ROS parameters (a parameter file).

`launch/NAME.launch.py` lists the stack's nodes as `launch_ros.actions.Node(...)` entries, as ros2_control_demos
does, and `config/stacks/NAME.yaml` holds their parameters keyed by node (`/**/NODE: ros__parameters: ...`).
`ros2 launch sim2real_ros NAME.launch.py` runs them on a ROS workstation; `sim2real up NAME` reads the same
launch file without launch_ros (its Node entries' literal arguments, parsed, never executed), so the two cannot
drift. A Node with `on_exit=Shutdown()` is required: the stack stops when it exits.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sim2real_core.config import ConfigError, load_yaml

LAUNCH_SUFFIX = ".launch.py"
NODE_KEYWORDS = {"package", "executable", "name", "namespace", "parameters", "remappings", "respawn",
                 "respawn_delay", "on_exit", "output"}


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


def package_folder(name: str, holds: str) -> Path:
    """A folder of this package (`launch`, `config`) that holds files matching `holds`: the source tree's
    src/sim2real_ros/NAME, else the installed share/sim2real_ros/NAME. (Installed without symlinks, the module's
    parent is site-packages, whose `launch` is ROS's launch package: hence the check of what it holds.)"""
    source_tree = Path(__file__).resolve().parents[1] / name
    if any(source_tree.glob(holds)):
        return source_tree
    for prefix in [*os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep), sys.prefix]:
        installed = Path(prefix) / "share" / "sim2real_ros" / name
        if prefix and any(installed.glob(holds)):
            return installed
    raise ConfigError(f"cannot find the sim2real_ros package's {name}/ folder: run from the workspace or with its "
                      "install/setup.sh sourced")


def launch_dir() -> Path:
    """The launch files (launch/ of this package)."""
    return package_folder("launch", f"*{LAUNCH_SUFFIX}")


def stack_file(name_or_path: str | os.PathLike) -> Path:
    """A stack name (`sim`) -> launch/sim.launch.py; a path to a launch file is returned unchanged."""
    path = Path(name_or_path)
    return path if path.name.endswith(LAUNCH_SUFFIX) else launch_dir() / f"{name_or_path}{LAUNCH_SUFFIX}"


def parameter_file(name: str) -> str:
    """config/stacks/NAME.yaml of this package: the parameters of stack NAME, keyed by node."""
    return str(package_folder("config", "stacks/*.yaml") / "stacks" / f"{name}.yaml")


def available_stacks() -> list[str]:
    """Names of the stacks (the launch files)."""
    return sorted(p.name.removesuffix(LAUNCH_SUFFIX) for p in launch_dir().glob(f"*{LAUNCH_SUFFIX}"))


def load_stack(name_or_path: str | os.PathLike) -> Stack:
    """A stack from its launch file's Node entries and the parameter file it declares."""
    path = stack_file(name_or_path)
    if not path.is_file():
        known = ", ".join(available_stacks()) or "none"
        raise ConfigError(f"no stack {str(name_or_path)!r} ({path} does not exist); known stacks: {known}")
    tree = ast.parse(path.read_text(), str(path))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    entries = [_node_entry(path, call) for call in calls if call.func.id == "Node"]
    if not entries:
        raise ConfigError(f"{path}: no Node(...) entries")
    names = [e["name"] for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{path}: node names must be unique, repeated: {duplicated}")
    shared, parameters = _node_parameters(path, calls)
    takers = [e["name"] for e in entries if e.pop("takes_parameters")]
    if set(parameters) - set(takers):
        raise ConfigError(f"{path}: its parameter file names nodes {sorted(set(parameters) - set(takers))} that no "
                          f"Node(..., parameters=[parameters]) of the stack has ({takers})")
    nodes = tuple(NodeSpec(parameters={**shared, **parameters.get(e["name"], {})} if e["name"] in takers else {}, **e)
                  for e in entries)
    return Stack(name=path.name.removesuffix(LAUNCH_SUFFIX), description=(ast.get_docstring(tree) or "").split("\n")[0],
                 nodes=nodes, source=path)


def _literal(path: Path, node: ast.AST, what: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ConfigError(f"{path}:{node.lineno}: {what} must be a literal for `sim2real up` to read it") from None


def _node_entry(path: Path, call: ast.Call) -> dict[str, Any]:
    """The NodeSpec fields of one Node(...) call."""
    keywords = {k.arg: k.value for k in call.keywords}
    where = f"{path}:{call.lineno}: Node"
    unknown = set(keywords) - NODE_KEYWORDS
    if call.args or unknown:
        raise ConfigError(f"{where} takes keyword arguments {sorted(NODE_KEYWORDS)} only, got {sorted(unknown)}")
    entry = {}
    for key in ("package", "executable", "name"):
        if key not in keywords or not isinstance(value := _literal(path, keywords[key], key), str) or not value:
            raise ConfigError(f"{where} needs a non-empty string {key}")
        entry[key] = value
    remappings = _literal(path, keywords["remappings"], "remappings") if "remappings" in keywords else []
    if not all(isinstance(r, tuple) and len(r) == 2 for r in remappings):
        raise ConfigError(f"{where}: remappings must be a list of (from, to) pairs")
    entry["remappings"] = {str(a): str(b) for a, b in remappings}
    entry["respawn"] = _literal(path, keywords["respawn"], "respawn") if "respawn" in keywords else False
    if not isinstance(entry["respawn"], bool):
        raise ConfigError(f"{where}: respawn must be True or False")
    if "respawn_delay" in keywords:
        entry["respawn_delay"] = float(_literal(path, keywords["respawn_delay"], "respawn_delay"))
    for key in ("namespace", "parameters"):  # what `sim2real up` applies itself: the launch arguments only
        value = keywords.get(key)
        expected = "namespace" if key == "namespace" else "[parameters]"
        if value is not None and ast.unparse(value) != expected:
            raise ConfigError(f"{where}: {key} must be {expected} (the launch argument), got {ast.unparse(value)}")
    entry["takes_parameters"] = "parameters" in keywords
    on_exit = keywords.get("on_exit")
    entry["required"] = isinstance(on_exit, ast.Call) and getattr(on_exit.func, "id", "") == "Shutdown"
    if on_exit is not None and not entry["required"]:
        raise ConfigError(f"{where}: on_exit may only be Shutdown() (a required node)")
    return entry


def _node_parameters(path: Path, calls: list[ast.Call]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(parameters of every node, {node: its parameters}) from the file that the launch file's `parameters`
    argument defaults to: `parameter_file("NAME")` (config/stacks/NAME.yaml) or an absolute path. Keys are
    `/**` (every node) and `/**/NODE` (that node in any namespace), merged per parameter as rcl does."""
    declared = [c for c in calls if c.func.id == "DeclareLaunchArgument" and c.args
                and isinstance(c.args[0], ast.Constant) and c.args[0].value == "parameters"]
    if not declared:
        return {}, {}
    default = next((k.value for k in declared[0].keywords if k.arg == "default_value"), None)
    if isinstance(default, ast.Call) and getattr(default.func, "id", "") == "parameter_file":
        file = Path(parameter_file(_literal(path, default.args[0], "parameter_file's argument")))
    elif default is not None and isinstance(value := _literal(path, default, "the parameters default"), str) \
            and Path(value).is_absolute():  # ros2 launch would read a relative path from its working directory
        file = Path(value)
    else:
        raise ConfigError(f"{path}: the parameters argument needs a default: parameter_file(NAME) or an absolute "
                          "path")
    shared: dict[str, Any] = {}
    per_node: dict[str, dict[str, Any]] = {}
    for key, body in load_yaml(file).items():
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters", {}), dict):
            raise ConfigError(f"{file}: '{key}' must map to {{ros__parameters: {{...}}}}")
        values = dict(body.get("ros__parameters") or {})
        if key == "/**":
            shared.update(values)
        elif re.fullmatch(r"/\*\*/[A-Za-z_][A-Za-z0-9_]*", str(key)):
            per_node.setdefault(str(key)[4:], {}).update(values)
        else:
            raise ConfigError(f"{file}: key {key!r}: `sim2real up` reads /** and /**/NODE keys (any namespace)")
    return shared, per_node


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
