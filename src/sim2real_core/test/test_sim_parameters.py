"""Parameter spaces: YAML loading, vector conversions, validation, and writing MuJoCo models."""
import mujoco
import mujoco.batch
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.sim.models import load_model
from sim2real_core.sim.parameters import ModelBinding, Parameter, ParameterSpace, load_parameter_space

MJCF = """
<mujoco>
  <worldbody>
    <body name="arm" pos="0 0 1" gravcomp="1">
      <joint name="hinge" axis="0 1 0" damping="0.1"/>
      <geom name="rod" type="capsule" fromto="0 0 0 0.5 0 0" size="0.02" mass="2" friction="0.7 0.01 0.001"/>
    </body>
  </worldbody>
</mujoco>
"""


def small_space():
    return ParameterSpace.from_list([
        {"name": "arm_mass_scale", "nominal": 1.0, "bounds": [0.5, 2.0], "kind": "body_mass_scale", "element": "arm"},
        {"name": "hinge_damping", "unit": "N*m*s/rad", "nominal": 0.1, "bounds": [0.0, 3.0], "kind": "dof_damping",
         "element": "hinge"},
        {"name": "rod_friction", "nominal": 0.7, "bounds": [0.1, 1.5], "kind": "geom_friction", "element": "rod"},
        {"name": "action_delay", "nominal": 0, "bounds": [0, 3], "kind": "action_delay", "integer": True},
    ], name="small")


@pytest.mark.parametrize("name, dim", [("fr3_reach", 32), ("fr3_push", 34), ("hopper", 4)])
def test_shipped_spaces_load_and_bind_to_their_models(name, dim):
    space = load_parameter_space(name)
    assert space.dim == dim
    model = load_model("hopper" if name == "hopper" else "fr3")
    binding = ModelBinding(space, model)
    binding.apply(model, space.nominal)  # nominal values reproduce the model's own values
    nominal = load_model("hopper" if name == "hopper" else "fr3")
    assert np.allclose(model.body_mass, nominal.body_mass)
    assert np.allclose(model.dof_damping, nominal.dof_damping)
    assert np.allclose(model.dof_frictionloss, nominal.dof_frictionloss)
    assert np.allclose(model.dof_armature, nominal.dof_armature)


def test_vector_dict_round_trip_and_validation_names_the_parameter():
    space = small_space()
    vec = space.vector({"hinge_damping": 2.0}, fill_nominal=True)
    assert vec.tolist() == [1.0, 2.0, 0.7, 0.0]
    assert space.as_dict(vec) == {"arm_mass_scale": 1.0, "hinge_damping": 2.0, "rod_friction": 0.7, "action_delay": 0}
    with pytest.raises(KeyError, match="missing"):
        space.vector({"hinge_damping": 2.0})
    with pytest.raises(KeyError, match="unknown"):
        space.vector({"nope": 1.0}, fill_nominal=True)
    with pytest.raises(ValueError, match=r"hinge_damping=4.0 \[N\*m\*s/rad\] is outside its bounds \[0.0, 3.0\]"):
        space.validate([1.0, 4.0, 0.7, 0])
    assert space.clip([9.0, -1.0, 0.7, 1.6]).tolist() == [2.0, 0.0, 0.7, 2.0]
    assert space.subset(["rod_friction", "arm_mass_scale"]).names == ("rod_friction", "arm_mass_scale")


def test_bad_parameter_definitions_are_rejected_with_the_reason():
    with pytest.raises(ConfigError, match="unknown kind"):
        Parameter("x", 0.0, 0.0, 1.0, kind="nope")
    with pytest.raises(ConfigError, match="needs an 'element'"):
        Parameter("x", 0.0, 0.0, 1.0, kind="dof_damping")
    with pytest.raises(ConfigError, match="outside bounds"):
        Parameter("x", 2.0, 0.0, 1.0, kind="action_noise_std")
    with pytest.raises(ConfigError, match="repeats names"):
        ParameterSpace([Parameter("x", 0.0, 0.0, 1.0, kind="action_noise_std")] * 2)
    with pytest.raises(ConfigError, match=r"parameters\[0\] needs name"):
        ParameterSpace.from_list([{"name": "x"}])
    with pytest.raises(ConfigError, match="no joint named 'missing'"):
        ModelBinding(ParameterSpace.from_list([{"name": "d", "nominal": 0, "bounds": [0, 1], "kind": "dof_damping",
                                                "element": "missing"}]), mujoco.MjModel.from_xml_string(MJCF))


def test_apply_writes_model_fields_and_keeps_gravity_compensation_at_nominal_weight():
    model = mujoco.MjModel.from_xml_string(MJCF)
    binding = ModelBinding(small_space(), mujoco.MjModel.from_xml_string(MJCF))
    binding.apply(model, [1.5, 2.0, 0.3, 2])
    assert model.body_mass[1] == pytest.approx(3.0)
    assert np.allclose(model.body_inertia[1], mujoco.MjModel.from_xml_string(MJCF).body_inertia[1] * 1.5)
    assert model.body_gravcomp[1] == pytest.approx(1 / 1.5)  # compensates 2 kg, the nominal mass
    assert model.dof_damping[0] == 2.0 and model.geom_friction[0, 0] == 0.3
    assert binding.effects([1.5, 2.0, 0.3, 2])["action_delay"] == 2.0
    # the compensated force is the nominal weight: the heavier arm feels 1 kg * g of net gravity
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert abs(data.qfrc_gravcomp[0]) == pytest.approx(2.0 * 9.81 * 0.25, rel=1e-6)


def test_apply_batch_matches_apply_per_simulation():
    space = small_space()
    nominal = mujoco.MjModel.from_xml_string(MJCF)
    binding = ModelBinding(space, nominal)
    matrix = np.array([[0.5, 0.0, 0.1, 0], [1.0, 1.0, 0.7, 1], [2.0, 3.0, 1.5, 3]])
    batch = mujoco.batch.Batch(nominal, 3, nthread=1)
    binding.apply_batch(batch, matrix)
    for i, row in enumerate(matrix):
        single = mujoco.MjModel.from_xml_string(MJCF)
        binding.apply(single, row)
        per_sim = batch.get_model(i)
        for field in ("body_mass", "body_inertia", "body_gravcomp", "dof_damping", "geom_friction"):
            assert np.allclose(getattr(per_sim, field), getattr(single, field)), field
    with pytest.raises(ValueError, match="3 parameter rows"):
        binding.apply_batch(batch, matrix[:2])
