"""The packages' layers: the core library imports neither the ROS package nor the application, the ROS package does
not import the application, and no module imports itself round a cycle; imports inside functions count too (a
dependency they hide is still one)."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2]
PACKAGES = {name: SRC / name / name for name in ("sim2real_core", "sim2real_ros", "sim2real")}
LAYERS = ("sim2real_core", "sim2real_ros", "sim2real")  # each may import only the ones before it


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages."""
    modules = {}
    for root in PACKAGES.values():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root.parent).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The packages' modules that `name` imports anywhere in its file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names)
    return found & modules.keys()


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target, path + [target])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the packages' modules it imports."""
    modules = module_files()
    return {name: imported_modules(name, path, modules) - {name} for name, path in modules.items()}


def test_the_packages_have_no_import_cycle():
    graph = import_graph()
    assert "sim2real.pipeline.plan" in graph["sim2real.pipeline.report"]  # the walk sees imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_each_package_imports_only_the_layers_below_it():
    graph = import_graph()
    assert "sim2real_ros.runner" in graph["sim2real.pipeline.stages"]  # the walk sees imports across packages
    upward = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                    if LAYERS.index(target.split(".")[0]) > LAYERS.index(name.split(".")[0]))
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
])
def test_find_cycle_finds_a_known_cycle(graph, expected):
    assert find_cycle(graph) == expected
