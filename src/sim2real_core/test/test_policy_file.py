"""Policy files: round trip, numpy inference, and refusal of malformed, corrupt or mismatching files."""
import hashlib
from dataclasses import replace

import numpy as np
import pytest
import yaml

from sim2real_core.policy.policy_file import (
    ActionHead,
    EndEffectorFeatures,
    PolicyFileError,
    PolicySpec,
    load_policy,
    save_policy,
)
from sim2real_core.robot import load_robot

JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]


def reach_spec(hidden=(8,)) -> PolicySpec:
    head = ActionHead(mode="joint_target_pd", scale=[0.5] * 7, center=[0.1] * 7, kp=[40.0] * 7, kd=[4.0] * 7)
    return PolicySpec(layout="joint_state_v1", obs_size=17, obs_mean=[0.0] * 17, obs_std=[2.0] * 17,
                      hidden=list(hidden), action=head, joint_names=JOINTS,
                      extra_inputs=[{"name": "goal", "size": 3, "default": [0.5, 0.0, 0.4]}],
                      training={"task": "reach", "distribution": "none", "seed": 3})


def random_weights(spec: PolicySpec, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in spec.layer_shapes().items()}


@pytest.fixture
def saved(tmp_path):
    spec = reach_spec()
    weights = random_weights(spec)
    return save_policy(tmp_path / "pol", spec, weights), spec, weights


def test_round_trip_reproduces_the_network_and_the_action_head(saved):
    sidecar, spec, weights = saved
    policy = load_policy(sidecar.parent)  # the folder works as well as the sidecar path
    assert policy.spec == spec
    q, dq, goal = np.linspace(-1, 1, 7), np.linspace(0.5, -0.5, 7), np.array([0.5, 0.0, 0.4])
    x = (np.concatenate([q, dq, goal]) - 0.0) / 2.0
    hidden = np.tanh(weights["layers.0.weight"].astype(float) @ x + weights["layers.0.bias"])
    action = np.clip(weights["layers.1.weight"].astype(float) @ hidden + weights["layers.1.bias"], -1, 1)
    np.testing.assert_allclose(policy.act(np.concatenate([q, dq, goal])), action, rtol=1e-6)
    expected_torque = 40.0 * (0.1 + 0.5 * action - q) - 4.0 * dq
    np.testing.assert_allclose(policy.torque(q, dq), expected_torque, rtol=1e-6)
    data = yaml.safe_load(sidecar.read_text())
    assert data["sha256"] == hashlib.sha256((sidecar.parent / data["weights"]).read_bytes()).hexdigest()
    assert data["observation"]["layout"] == "joint_state_v1" and data["joint_names"] == JOINTS


def test_end_effector_features_are_appended_before_the_network(tmp_path):
    robot = load_robot("fr3")
    base = reach_spec()
    features = EndEffectorFeatures(robot.kinematics, base.extra_inputs, ["goal"])
    spec = replace(base, obs_mean=[0.1] * 23, obs_std=[2.0] * 23, features=features.to_mapping())
    weights = random_weights(spec)
    policy = load_policy(save_policy(tmp_path / "pol", spec, weights))
    assert policy.spec == spec and spec.input_size == 23 and weights["layers.0.weight"].shape == (8, 23)
    q, dq, goal = robot.home, np.zeros(7), np.array([0.5, 0.1, 0.3])
    ee = robot.kinematics.tool_position(q)
    x = (np.concatenate([q, dq, goal, ee, goal - ee]) - 0.1) / 2.0
    hidden = np.tanh(weights["layers.0.weight"].astype(float) @ x + weights["layers.0.bias"])
    action = np.clip(weights["layers.1.weight"].astype(float) @ hidden + weights["layers.1.bias"], -1, 1)
    np.testing.assert_allclose(policy.act(np.concatenate([q, dq, goal])), action, rtol=1e-6, atol=1e-6)
    batch = np.stack([np.concatenate([q, dq, goal]), np.concatenate([q + 0.1, dq, goal])])
    np.testing.assert_allclose(policy.act(batch)[0], action, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="ee_offsets names 'target'"):
        replace(spec, features={**spec.features, "ee_offsets": ["target"]})
    with pytest.raises(ValueError, match="must be 23 finite numbers"):
        replace(spec, obs_mean=[0.0] * 17)


def test_batched_actions_match_single_ones(saved):
    policy = load_policy(saved[0])
    obs = np.random.default_rng(1).normal(size=(5, 17))
    np.testing.assert_allclose(policy.act(obs), np.stack([policy.act(o) for o in obs]))


def test_corrupt_weights_fail_the_checksum(saved):
    sidecar = saved[0]
    weights = sidecar.parent / "policy.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(PolicyFileError, match="SHA-256"):
        load_policy(sidecar)


def test_weights_that_do_not_match_the_sidecar_are_refused(tmp_path, saved):
    sidecar = saved[0]
    data = yaml.safe_load(sidecar.read_text())
    data["network"]["hidden"] = [16]
    sidecar.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyFileError, match="shape"):
        load_policy(sidecar)


def test_garbage_weights_with_a_matching_checksum_are_refused(saved):
    sidecar = saved[0]
    weights = sidecar.parent / "policy.safetensors"
    weights.write_bytes(b"\x80\x04not a safetensors file")  # e.g. a pickle: never unpickled
    data = yaml.safe_load(sidecar.read_text())
    data["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    sidecar.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyFileError, match="not a valid safetensors"):
        load_policy(sidecar)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("observation"), "malformed sidecar: sidecar: observation: Field required"),
    (lambda d: d["observation"].update(clipp=5.0), "observation.clipp: Extra inputs are not permitted"),
    (lambda d: d.update(format="something_else"), "not a sim2real_policy"),
    (lambda d: d.update(format_version=99), "format_version 99"),
    (lambda d: d["observation"].update(layout="pixels_v9"), "layout"),
    (lambda d: d["observation"].update(mean=[0.0] * 3), "mean"),
    (lambda d: d["observation"].update(std=[0.0] * 17), "std must be positive"),
    (lambda d: d["action"].update(mode="velocity"), "action.mode"),
    (lambda d: d["action"].update(kp=[1.0] * 6), "action.kp"),
    (lambda d: d.update(joint_names=JOINTS[:6]), "observation.size"),
    (lambda d: d.update(weights="../elsewhere.safetensors"), "next to the sidecar"),
])
def test_malformed_sidecars_are_refused_with_the_reason(saved, edit, message):
    sidecar = saved[0]
    data = yaml.safe_load(sidecar.read_text())
    edit(data)
    sidecar.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyFileError, match=message) as info:
        load_policy(sidecar)
    assert str(sidecar) in str(info.value)


def test_missing_files_and_invalid_yaml_name_the_file(tmp_path, saved):
    with pytest.raises(PolicyFileError, match="cannot read policy sidecar"):
        load_policy(tmp_path / "nothing")
    sidecar = saved[0]
    (sidecar.parent / "policy.safetensors").unlink()
    with pytest.raises(PolicyFileError, match="cannot read policy weights"):
        load_policy(sidecar)
    sidecar.write_text("observation: [unclosed\n")
    with pytest.raises(PolicyFileError, match="not valid YAML"):
        load_policy(sidecar)


def test_saving_refuses_weights_of_the_wrong_shape(tmp_path):
    spec = reach_spec()
    weights = random_weights(reach_spec(hidden=(4,)))
    with pytest.raises(PolicyFileError, match="shape"):
        save_policy(tmp_path / "bad", spec, weights)
    assert not (tmp_path / "bad" / "policy.yaml").exists()
