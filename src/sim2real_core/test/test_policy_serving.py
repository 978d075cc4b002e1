"""The policy server's ROS-free logic: runner, period monitor, percentile statistics, servable policies."""
import numpy as np
import pytest

from sim2real_core.policy.policy_file import ActionHead, PolicyFileError, PolicySpec, save_policy
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import (PeriodMonitor, PolicyRunner, WindowStats, load_servable_policy,
                                          robot_joints_and_period)

JOINTS, PERIOD = robot_joints_and_period("fr3")


def policy_file(tmp_path, joints=JOINTS, layout="joint_state_v1"):
    n = len(joints)
    head = ActionHead(mode="joint_target_pd", scale=[0.1] * n, center=[0.0] * n, kp=[1e4] * n, kd=[0.0] * n)
    spec = PolicySpec(layout=layout, obs_size=2 * n + 2, obs_mean=[0.0] * (2 * n + 2), obs_std=[1.0] * (2 * n + 2),
                      hidden=[4], action=head, joint_names=list(joints),
                      extra_inputs=[{"name": "goal", "size": 2, "default": [0.0, 0.0]}])
    weights = {k: np.zeros(s) for k, s in spec.layer_shapes().items()}
    return save_policy(tmp_path / "p", spec, weights)


def test_runner_filters_policy_torque_and_measures_latency(tmp_path):
    policy = load_servable_policy(policy_file(tmp_path), JOINTS)
    runner = PolicyRunner(policy, SafetyLayer(load_safety_limits("fr3", watchdog_periods=2), PERIOD))
    np.testing.assert_array_equal(runner.command(0.0, 0.0), np.zeros(7))  # no state yet: zero, watchdog unarmed
    assert runner.safety.fault is None
    q = np.array([0.3, -0.785, 0.3, -2.356, 0.3, 1.571, 0.785])  # within the soft joint limits
    runner.state(q, np.zeros(7), stamp=1.0, received=10.0)
    out = runner.command(1.002, 10.001)
    # Zero network output: PD target 0, tau = -1e4 * q, far over the limits; one period's rate limit remains.
    np.testing.assert_allclose(out, -np.sign(q) * runner.safety.limits.rate * PERIOD)
    assert runner.latency.summary(1e3)["p50"] == pytest.approx(2.0)
    assert runner.compute.summary(1e3)["max"] == pytest.approx(1.0)
    runner.command(1.01, 10.01)  # stale period 1 of 2 ...
    np.testing.assert_array_equal(runner.command(1.02, 10.02), np.zeros(7))  # ... 2 of 2: watchdog
    assert runner.safety.fault == "watchdog" and runner.latency.count == 1


def test_extra_inputs_must_fit_the_policy_and_nothing_changes_on_failure(tmp_path):
    policy = load_servable_policy(policy_file(tmp_path), JOINTS)
    runner = PolicyRunner(policy, SafetyLayer(load_safety_limits("fr3"), PERIOD), extra=[0.1, 0.2])
    with pytest.raises(PolicyFileError, match="needs 2 finite extra inputs"):
        runner.configure(policy, [1.0, 2.0, 3.0])
    with pytest.raises(PolicyFileError, match="finite"):
        runner.configure(policy, [1.0, np.nan])
    np.testing.assert_array_equal(runner.extra, [0.1, 0.2])


def test_only_joint_state_policies_for_this_arm_are_servable(tmp_path):
    with pytest.raises(PolicyFileError, match="differ from the robot's"):
        load_servable_policy(policy_file(tmp_path, joints=[f"fer_joint{i}" for i in range(1, 8)]), JOINTS)


def test_period_monitor_counts_missed_periods():
    monitor = PeriodMonitor(0.001)
    for t in (0.0, 0.001, 0.002, 0.0051, 0.0061):  # one gap of ~3 periods: 2 missed
        monitor.tick(t)
    summary = monitor.summary()
    assert summary["periods"] == 5 and summary["missed_periods"] == 2
    assert summary["missed_rate"] == pytest.approx(2 / 7)


def test_window_stats_percentiles_and_all_time_max():
    stats = WindowStats(window=100)
    for value in [5.0] + [1.0] * 200:
        stats.add(value)
    summary = stats.summary()
    assert summary["p50"] == 1.0 and summary["max"] == 5.0 and summary["count"] == 201
    assert np.isnan(WindowStats().summary()["p99"])
