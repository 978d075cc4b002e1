"""Forward kinematics from the robot file's DH rows agrees with the MJCF model's end-effector site."""
import mujoco
import numpy as np
import pytest
import yaml

from sim2real_core.config import ConfigError
from sim2real_core.kinematics import SerialChain
from sim2real_core.robot import load_robot, robot_file
from sim2real_core.sim.models import load_model


def test_tool_position_matches_the_model_site_over_random_poses():
    robot = load_robot("fr3")
    model = load_model(robot.model)
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    poses = rng.uniform(robot.position_lower, robot.position_upper, (50, robot.dof))
    batched = robot.kinematics.tool_position(poses)
    for q, position in zip(poses, batched):
        data.qpos[:robot.dof] = q
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(position, data.site(robot.ee_site).xpos, atol=1e-9)
        np.testing.assert_allclose(robot.kinematics.tool_position(q), position, atol=1e-12)


def test_bad_chains_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="rows of 3 finite numbers"):
        SerialChain(dh=((0.0, 0.3),))
    with pytest.raises(ValueError, match="kinematics.tool must be 3 finite numbers"):
        SerialChain(dh=((0.0, 0.3, 0.0),), tool=(0.0, float("nan"), 0.0))
    with pytest.raises(ValueError, match="need 1 values per row"):
        SerialChain(dh=((0.0, 0.3, 0.0),)).tool_position(np.zeros(2))
    body = yaml.safe_load(robot_file("fr3").read_text())
    body["robot"]["kinematics"]["dh"] = body["robot"]["kinematics"]["dh"][:6]
    path = tmp_path / "six_rows.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="kinematics.dh needs 7 rows, got 6"):
        load_robot(path)
