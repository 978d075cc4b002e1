"""Stack definitions: loading, validation errors, overrides."""
import pytest
import yaml

from sim2real_core.config import ConfigError
from sim2real_core.stack import apply_overrides, available_stacks, load_stack, parse_overrides


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_loads_nodes_with_parameters_and_remappings(tmp_path):
    path = write(tmp_path / "two.yaml", {
        "stack": {"description": "two nodes", "nodes": [
            {"name": "a", "package": "p", "executable": "x", "respawn": True, "remappings": {"/in": "/other"}},
            {"name": "b", "package": "p", "executable": "y"}]},
        "a": {"ros__parameters": {"rate_hz": 100.0}},
    })
    stack = load_stack(path)
    assert [n.name for n in stack.nodes] == ["a", "b"]
    a, b = stack.nodes
    assert a.parameters == {"rate_hz": 100.0} and b.parameters == {}
    assert a.respawn and not b.respawn
    args = a.ros_arguments("/tmp/a.yaml")
    assert args[:3] == ["--ros-args", "-r", "__node:=a"]
    assert "--params-file" in args and "/in:=/other" in args
    assert a.params_file_content() == {"a": {"ros__parameters": {"rate_hz": 100.0}}}


@pytest.mark.parametrize("data, message", [
    ({"stack": {"nodes": []}}, "non-empty 'nodes'"),
    ({"nodes": [{"name": "a"}]}, "expected a 'stack' mapping"),
    ({"stack": {"nodes": [{"name": "a", "package": "p"}]}}, "'executable'"),
    ({"stack": {"nodes": [{"name": "a", "package": "p", "executable": "x", "colour": 1}]}}, "unknown keys"),
    ({"stack": {"nodes": [{"name": "a", "package": "p", "executable": "x"}] * 2}}, "unique"),
    ({"stack": {"nodes": [{"name": "a", "package": "p", "executable": "x"}]}, "a": {"ros__parameters": [1]}},
     "ros__parameters"),
])
def test_malformed_stack_names_file_and_problem(tmp_path, data, message):
    path = write(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=message) as err:
        load_stack(path)
    assert str(path) in str(err.value)


def test_unknown_stack_lists_known_ones():
    with pytest.raises(ConfigError, match="known stacks"):
        load_stack("no_such_stack")


def test_shipped_stacks_all_load():
    names = available_stacks()
    assert names, "config/stacks has no stacks"
    for name in names:
        assert load_stack(name).nodes


def test_overrides_parse_yaml_scalars_and_apply(tmp_path):
    path = write(tmp_path / "s.yaml", {"stack": {"nodes": [{"name": "a", "package": "p", "executable": "x"}]},
                                       "a": {"ros__parameters": {"keep": 1, "rate_hz": 10.0}}})
    overrides = parse_overrides(["a.rate_hz:=250.5", "a.profile=reality", "a.flag:=true"])
    assert overrides == {"a": {"rate_hz": 250.5, "profile": "reality", "flag": True}}
    stack = apply_overrides(load_stack(path), overrides)
    assert stack.nodes[0].parameters == {"keep": 1, "rate_hz": 250.5, "profile": "reality", "flag": True}
    with pytest.raises(ConfigError, match="does not have"):
        apply_overrides(stack, {"ghost": {"x": 1}})
    with pytest.raises(ConfigError, match="node.parameter"):
        parse_overrides(["no_dot_here:=1"])
