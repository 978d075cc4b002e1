"""The workspace holds together: stacks name installed executables, launch files name existing stacks,
declared executables have a main()."""
import ast
import importlib
import re
from pathlib import Path

import pytest

from sim2real_core.runner import resolve_executable
from sim2real_core.stack import available_stacks, load_stack

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", available_stacks())
def test_every_stack_node_resolves_to_an_installed_executable(name):
    for node in load_stack(name).nodes:
        assert resolve_executable(node.package, node.executable).is_file()


def launch_stack_names():
    names = {}
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "stack_launch_description"]
        assert len(calls) == 1, f"{path.name} must call stack_launch_description once"
        names[path.name] = calls[0].args[0].value
    return names


def test_launch_files_start_existing_stacks():
    names = launch_stack_names()
    assert {"sim.launch.py", "real.launch.py", "collect.launch.py"} <= set(names)
    for launch_file, stack in names.items():
        assert stack in available_stacks(), f"{launch_file} names unknown stack {stack!r}"


def test_launch_files_are_installed_with_the_package():
    for prefix in __import__("os").environ["AMENT_PREFIX_PATH"].split(":"):
        share = Path(prefix) / "share" / "sim2real_ros" / "launch"
        if share.is_dir():
            assert {p.name for p in share.glob("*.launch.py")} == set(launch_stack_names())
            return
    pytest.fail("share/sim2real_ros/launch is not installed: run make build")


def test_declared_executables_have_main():
    setup = (REPO / "src" / "sim2real_ros" / "setup.py").read_text()
    targets = re.findall(r'"(sim2real_ros\.[\w.]+):(\w+)"', setup)
    assert targets
    for module_name, function in targets:
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function)), f"{module_name}.{function}"
