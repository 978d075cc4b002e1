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


@pytest.mark.parametrize("name, dim", [("fr3_reach", 56), ("fr3_push", 58), ("hopper", 4)])
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
    with pytest.raises(ConfigError, match=r"parameters\[0\]: nominal: Field required; bounds: Field required; kind: "):
        ParameterSpace.from_list([{"name": "x"}])
    with pytest.raises(ConfigError, match="no joint named 'missing'"):
        ModelBinding(ParameterSpace.from_list([{"name": "d", "nominal": 0, "bounds": [0, 1], "kind": "dof_damping",
                                                "element": "missing"}]), mujoco.MjModel.from_xml_string(MJCF))


def test_a_space_file_row_with_a_key_it_does_not_know_is_refused_by_name(tmp_path):
    # a comma inside an unquoted description of a flow mapping splits it into a second key: the file said less
    # than it meant, and the loader said nothing
    path = tmp_path / "space.yaml"
    path.write_text("model: fr3\nparameters:\n  - {name: d, nominal: 0, bounds: [0, 1], kind: action_noise_std,\n"
                    "     description: first part, second part}\n")
    with pytest.raises(ConfigError, match=rf"{path}: parameters.0.second part: Extra inputs are not permitted"):
        load_parameter_space(path)
    path.write_text("model: fr3\nparameters:\n  - {name: d, nominal: 0, bounds: [0, 1, 2], kind: action_noise_std}\n")
    with pytest.raises(ConfigError, match=r"parameters.0.bounds: Tuple should have at most 2 items"):
        load_parameter_space(path)


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


def test_the_three_mass_conventions_write_what_they_say():
    nominal = mujoco.MjModel.from_xml_string(MJCF)
    mass, inertia = nominal.body_mass[1], nominal.body_inertia[1].copy()
    for kind, value, scale_inertia in (("body_mass", 3.0, False), ("body_mass_inertia", 3.0, True),
                                       ("body_mass_scale", 1.5, True)):
        space = ParameterSpace.from_list([{"name": "m", "nominal": value, "bounds": [0.1, 10], "kind": kind,
                                           "element": "arm"}])
        model = mujoco.MjModel.from_xml_string(MJCF)
        ModelBinding(space, nominal).apply(model, [value])
        assert model.body_mass[1] == pytest.approx(1.5 * mass), kind
        assert np.allclose(model.body_inertia[1], inertia * (1.5 if scale_inertia else 1.0)), kind
        batch = mujoco.batch.Batch(nominal, 2, nthread=1)
        ModelBinding(space, nominal).apply_batch(batch, np.array([[value], [value]]))
        assert np.allclose(batch.get_model(1).body_inertia, model.body_inertia), kind


def test_the_hopper_space_changes_masses_as_gymnasium_users_and_dropo_do():
    """gymnasium's hopper.xml with model.body_mass alone changed (random-envs' set_task), stepped as gymnasium's
    MujocoEnv.do_simulation does (ctrl, then mj_step frame_skip times), moves as the hopper space's simulation
    with those masses: the benchmark's data is inside the family. (mj_setConst after the change, as MuJoCo asks
    and the binding does; set_task skips it, which moves the state by about 1e-7 per step.)"""
    from sim2real_core.fit.hopper import FRAME_SKIP, hopper_model_path, hopper_space, hopper_system
    from sim2real_core.sim.batch import BatchSimulator

    masses = [4.2, 3.3, 2.2, 4.6]
    model = mujoco.MjModel.from_xml_path(str(hopper_model_path()))
    for name, value in zip(("torso", "thigh", "leg", "foot"), masses):
        model.body_mass[model.body(name).id] = value
    data = mujoco.MjData(model)
    mujoco.mj_setConst(model, data)
    data.qpos[1] += 0.1
    system = hopper_system()
    sim = BatchSimulator(system.model, hopper_space(), 1, nstep=FRAME_SKIP)
    sim.set_parameters(np.array(masses))
    sim.set_state(data.qpos.copy(), data.qvel.copy())
    for action in np.random.default_rng(0).uniform(-1, 1, (60, 3)):
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=FRAME_SKIP)
        sim.step(action, noise=False)
        qpos, qvel = sim.state()
        assert np.allclose(qpos[0], data.qpos, atol=1e-9) and np.allclose(qvel[0], data.qvel, atol=1e-9)
