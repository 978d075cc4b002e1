"""The FR3 MJCF and the robot file agree: joints, limits, actuators, timestep, home keyframe."""
import mujoco
import numpy as np
import pytest

from sim2real_core.config import ConfigError
from sim2real_core.robot import load_robot, robot_file
from sim2real_core.sim.models import load_model, model_path


def test_fr3_model_matches_the_robot_file():
    robot = load_robot("fr3")
    model = load_model(robot.model)
    assert robot.joint_names == tuple(f"fr3_joint{i}" for i in range(1, 8))
    assert robot.torque_limits.tolist() == [87, 87, 87, 87, 12, 12, 12]
    assert robot.velocity_limits.tolist() == [2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]
    assert robot.control_period == 0.01 and model.opt.timestep == robot.physics_timestep == 0.001
    for i, name in enumerate(robot.joint_names):
        joint = model.joint(name)
        assert joint.type[0] == mujoco.mjtJoint.mjJNT_HINGE
        assert np.allclose(joint.range, [robot.position_lower[i], robot.position_upper[i]])
        actuator = model.actuator(name)
        assert actuator.trnid[0] == joint.id and actuator.gear[0] == 1.0
        assert np.allclose(actuator.ctrlrange, [-robot.torque_limits[i], robot.torque_limits[i]])
    home = model.key(robot.home_keyframe)
    assert np.allclose(home.qpos[:7], [0, -np.pi / 4, 0, -3 * np.pi / 4, 0, np.pi / 2, np.pi / 4])
    assert np.allclose(home.qpos[:7], robot.home)
    assert model.body("puck").jntnum[0] == 1 and model.geom("puck").type[0] == mujoco.mjtGeom.mjGEOM_CYLINDER
    # published link masses (franka_description fr3 inertials) and the Franka Hand
    assert model.body_mass[1:8].sum() == pytest.approx(15.494, abs=1e-3) and model.body("fr3_hand").mass[0] == 0.73


def test_fr3_home_pose_puts_the_tool_centre_point_where_franka_does():
    model = load_model("fr3")
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_kinematics(model, data)
    # ready pose TCP of an FR3 with Franka Hand: x = 0.307 m, z = 0.487 m (flange 0.107 + TCP 0.1034)
    assert np.allclose(data.site("ee").xpos, [0.3069, 0.0, 0.4869], atol=2e-3)


def test_model_lookup_errors_are_clear(tmp_path):
    assert model_path("hopper").name == "hopper.xml"
    with pytest.raises(ConfigError, match="no model named 'nope'"):
        model_path("nope")
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body/></mujoco>")
    with pytest.raises(ConfigError, match="cannot load MuJoCo model"):
        load_model(bad)


def test_robot_file_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("robot: {joint_names: [a, b], torque_limits: [1]}\n")
    with pytest.raises(ConfigError, match=rf"{bad}: robot: velocity_limits: Field required"):
        load_robot(bad)
    body = robot_file("fr3").read_text()
    bad.write_text(body.replace("torque_limits: [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0]",
                                "torque_limits: [87.0, 87.0, 87.0, 87.0, 12.0, 12.0]"))
    with pytest.raises(ConfigError, match=rf"{bad}: robot: torque_limits needs 7 values \(one per joint\), got \[87.0"):
        load_robot(bad)


def test_removing_the_puck_keeps_the_arm_dynamics_exactly():
    arm_only = load_model("fr3", remove_bodies=["puck"])
    full = load_model("fr3")
    assert arm_only.nq == 7 and arm_only.nv == 7 and np.allclose(arm_only.key("home").qpos, full.key("home").qpos[:7])
    torques = np.random.default_rng(0).uniform(-5, 5, (50, 7))
    trajectories = []
    for model in (arm_only, full):
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
        rows = []
        for u in torques:
            data.ctrl[:7] = u
            mujoco.mj_step(model, data, nstep=10)
            rows.append(np.concatenate([data.qpos[:7], data.qvel[:7]]))
        trajectories.append(np.array(rows))
    assert np.allclose(trajectories[0], trajectories[1], atol=1e-9)
    with pytest.raises(ConfigError, match="not a free-floating body"):
        load_model("fr3", remove_bodies=["fr3_link3"])
    with pytest.raises(ConfigError, match="cannot remove bodies"):
        load_model("fr3", remove_bodies=["nope"])
