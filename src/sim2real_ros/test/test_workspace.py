"""The workspace holds together: every launch file (stack) names installed executables and is installed with its
parameter file, declared executables have a main()."""
import importlib
import re
from pathlib import Path

import pytest

from sim2real_ros.runner import resolve_executable
from sim2real_ros.stack import available_stacks, load_stack

REPO = Path(__file__).resolve().parents[3]
PACKAGE = REPO / "src" / "sim2real_ros"


@pytest.mark.parametrize("name", available_stacks())
def test_every_stack_node_resolves_to_an_installed_executable(name):
    for node in load_stack(name).nodes:
        assert resolve_executable(node.package, node.executable).is_file()


def test_launch_files_are_the_stacks_and_name_installed_executables():
    assert {p.name for p in (PACKAGE / "launch").glob("*.launch.py")} == {f"{n}.launch.py" for n in available_stacks()}
    assert {"sim", "real", "collect", "collect_real", "franka_proxy"} <= set(available_stacks())


def test_launch_files_and_their_parameter_files_are_installed_with_the_package():
    for prefix in __import__("os").environ["AMENT_PREFIX_PATH"].split(":"):
        share = Path(prefix) / "share" / "sim2real_ros"
        if (share / "launch").is_dir():
            assert {p.name for p in (share / "launch").glob("*.launch.py")} == {f"{n}.launch.py"
                                                                                for n in available_stacks()}
            assert {p.name for p in (share / "config" / "stacks").glob("*.yaml")} == {f"{n}.yaml"
                                                                                      for n in available_stacks()}
            return
    pytest.fail("share/sim2real_ros/launch is not installed: run make build")


def test_declared_executables_have_main():
    setup = (REPO / "src" / "sim2real_ros" / "setup.py").read_text()
    targets = re.findall(r'"(sim2real_ros\.[\w.]+):(\w+)"', setup)
    assert targets
    for module_name, function in targets:
        module = importlib.import_module(module_name)
        assert callable(getattr(module, function)), f"{module_name}.{function}"
