"""Stacks: a flat launch file's Node entries and their parameter file; validation errors, overrides."""
import pytest
import yaml

from sim2real_core.config import ConfigError
from sim2real_ros.stack import apply_overrides, available_stacks, load_stack, parse_overrides


def write(tmp_path, nodes, parameters=None, name="s"):
    """A launch file with these Node(...) argument strings and, when given, its parameter file."""
    declare = ""
    if parameters is not None:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(parameters))
        declare = f'        DeclareLaunchArgument("parameters", default_value="{tmp_path / name}.yaml"),\n'
    entries = "".join(f"        Node({n}),\n" for n in nodes)
    path = tmp_path / f"{name}.launch.py"
    path.write_text(f'"""{name}: a test stack."""\n\n\ndef generate_launch_description():\n'
                    f"    return LaunchDescription([\n{declare}{entries}    ])\n")
    return path


def test_loads_nodes_with_parameters_and_remappings(tmp_path):
    path = write(tmp_path, ['package="p", executable="x", name="a", respawn=True, remappings=[("/in", "/other")], '
                            'parameters=[parameters], namespace=namespace',
                            'package="p", executable="y", name="b", on_exit=Shutdown(), output="screen"'],
                 {"/**/a": {"ros__parameters": {"rate_hz": 100.0}},
                  "/**": {"ros__parameters": {"use_sim_time": False}}})
    stack = load_stack(path)
    assert stack.name == "s" and stack.description == "s: a test stack."
    assert [n.name for n in stack.nodes] == ["a", "b"]
    a, b = stack.nodes
    assert a.parameters == {"use_sim_time": False, "rate_hz": 100.0} and b.parameters == {}  # b takes none
    assert a.respawn and not b.respawn and b.required and not a.required
    args = a.ros_arguments("/tmp/a.yaml")
    assert args[:3] == ["--ros-args", "-r", "__node:=a"]
    assert "--params-file" in args and "/in:=/other" in args
    assert a.params_file_content() == {"a": {"ros__parameters": {"use_sim_time": False, "rate_hz": 100.0}}}


@pytest.mark.parametrize("nodes, parameters, message", [
    ([], None, "no Node"),
    (['package="p", name="a"'], None, "needs a non-empty string executable"),
    (['package="p", executable="x", name="a", colour=1'], None, r"keyword arguments .* got \['colour'\]"),
    (['package="p", executable="x", name=NAME'], None, "name must be a literal"),
    (['package="p", executable="x", name="a"'] * 2, None, "unique"),
    (['package="p", executable="x", name="a", on_exit=EmitEvent()'], None, "on_exit may only be Shutdown"),
    (['package="p", executable="x", name="a", parameters=[parameters]'], {"/**/a": {"ros__parameters": [1]}},
     "ros__parameters"),
    (['package="p", executable="x", name="a", parameters=[parameters]'], {"/**/ghost": {"ros__parameters": {}}},
     r"nodes \['ghost'\]"),
    (['package="p", executable="x", name="a"'], {"/**/a": {"ros__parameters": {}}}, r"no Node\(\.\.\., parameters"),
    (['package="p", executable="x", name="a", parameters=[parameters]'], {"a": {"ros__parameters": {}}},
     r"key 'a': `sim2real up` reads /\*\* and /\*\*/NODE keys"),
    (['package="p", executable="x", name="a", namespace="arm"'], None, "namespace must be namespace"),
    (['package="p", executable="x", name="a", parameters=[parameters, {"r": 5}]'], None,
     r"parameters must be \[parameters\]"),
    (['package="p", executable="x", name="a", respawn="false"'], None, "respawn must be True or False"),
])
def test_malformed_stack_names_file_and_problem(tmp_path, nodes, parameters, message):
    path = write(tmp_path, nodes, parameters)
    with pytest.raises(ConfigError, match=message):
        load_stack(path)


def test_unknown_stack_lists_known_ones():
    with pytest.raises(ConfigError, match="known stacks"):
        load_stack("no_such_stack")


def test_shipped_stacks_all_load_with_their_parameters():
    names = available_stacks()
    assert {"sim", "real", "collect", "collect_real", "franka_proxy"} <= set(names)
    for name in names:
        assert load_stack(name).nodes
    sim = {n.name: n for n in load_stack("sim").nodes}
    assert sim["sim_bridge"].required and sim["sim_bridge"].parameters["profile"] == "sim"
    assert sim["policy_server"].remappings == {"effort_controller/commands": "sim2real/commands"}


def test_overrides_parse_yaml_scalars_and_apply(tmp_path):
    path = write(tmp_path, ['package="p", executable="x", name="a", parameters=[parameters]'],
                 {"/**/a": {"ros__parameters": {"keep": 1, "rate_hz": 10.0}}})
    overrides = parse_overrides(["a.rate_hz:=250.5", "a.profile=reality", "a.flag:=true"])
    assert overrides == {"a": {"rate_hz": 250.5, "profile": "reality", "flag": True}}
    stack = apply_overrides(load_stack(path), overrides)
    assert stack.nodes[0].parameters == {"keep": 1, "rate_hz": 250.5, "profile": "reality", "flag": True}
    with pytest.raises(ConfigError, match="does not have"):
        apply_overrides(stack, {"ghost": {"x": 1}})
    with pytest.raises(ConfigError, match="node.parameter"):
        parse_overrides(["no_dot_here:=1"])
