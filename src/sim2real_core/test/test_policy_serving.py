"""The policy server's ROS-free logic: runner, period monitor, percentile statistics, servable policies."""
import numpy as np
import pytest

from sim2real_core.policy.policy_file import ActionHead, PolicyFileError, PolicySpec, save_policy
from sim2real_core.policy.safety import SafetyLayer, load_safety_limits
from sim2real_core.policy.serving import (
    SETTLE_PERIODS,
    PeriodGate,
    PeriodMonitor,
    PolicyRunner,
    WindowStats,
    check_stamp,
    load_servable_policy,
    robot_joints_and_period,
)

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
    limits = load_safety_limits("fr3", watchdog_periods=2, watchdog_latch_periods=3)
    runner = PolicyRunner(policy, SafetyLayer(limits, PERIOD))
    np.testing.assert_array_equal(runner.command(0.0, 0.0), np.zeros(7))  # no state yet: zero, watchdog unarmed
    q = np.array([0.3, -0.785, 0.3, -2.356, 0.3, 1.571, 0.785])  # within the soft joint limits
    t = 1.0
    expected = {3: 4, 4: 4, 5: 0, 6: 1, 9: 3, 10: 4}
    for period in range(SETTLE_PERIODS + 7):  # a stream still coming up: zero torque, gaps are no fault
        if period not in (4, 5, 9):  # 2 periods missed (the watchdog's limit) restart the count, 1 does not
            runner.state(q, np.zeros(7), stamp=t, received=10.0 + t)
        np.testing.assert_array_equal(runner.command(t, 10.0 + t), np.zeros(7))
        assert runner.settled == expected.get(period, runner.settled), period
        t += PERIOD
    assert runner.safety.fault is None and runner.settled == SETTLE_PERIODS
    runner.state(q, np.zeros(7), stamp=t, received=10.0 + t)
    out = runner.command(t + 0.002, 10.001 + t)
    # Zero network output: PD target 0, tau = -1e4 * q, far over the limits; one period's rate limit remains.
    np.testing.assert_allclose(out, -np.sign(q) * runner.safety.limits.rate * PERIOD)
    assert runner.latency.summary(1e3)["p50"] == pytest.approx(2.0)
    assert runner.compute.summary(1e3)["max"] == pytest.approx(1.0)
    runner.state(q, np.zeros(7), stamp=t + PERIOD, received=10.0 + t)
    half = runner.command(t + PERIOD, 10.0 + t, elapsed=PERIOD / 2)  # the rate limit scales with the publish gap
    np.testing.assert_allclose((half - out)[:4], -np.sign(q[:4]) * runner.safety.limits.rate[:4] * PERIOD / 2)
    runner.command(t + 0.02, 10.02)  # stale period 1 of 2 ...
    np.testing.assert_array_equal(runner.command(t + 0.03, 10.03), np.zeros(7))  # ... 2 of 2: zero torque
    assert runner.safety.fault is None
    np.testing.assert_array_equal(runner.command(t + 0.04, 10.04), np.zeros(7))  # 3: latched
    assert runner.safety.fault == "watchdog" and runner.latency.count == 2


def test_state_stamps_must_be_new_recent_and_not_ahead():
    assert check_stamp(10.0, 9.99, now=10.001, max_age=0.03, max_ahead=0.005) == ""
    assert check_stamp(9.99, 9.99, now=10.0, max_age=0.03, max_ahead=0.005) == "replayed"
    assert check_stamp(9.98, 9.99, now=10.0, max_age=0.03, max_ahead=0.005) == "replayed"
    assert check_stamp(9.9, None, now=10.0, max_age=0.03, max_ahead=0.005) == "stale"
    assert check_stamp(10.1, 9.99, now=10.0, max_age=0.03, max_ahead=0.005) == "future"


def test_period_gate_acts_once_per_period_by_stamp_despite_dropped_samples():
    gate = PeriodGate(0.01)
    rng = np.random.default_rng(0)
    stamps = np.arange(0, 2.0, 0.001)
    stamps = stamps[rng.random(stamps.size) > 0.2]  # a 1 kHz stream that drops a fifth of its samples
    acted = [s for s in stamps if gate.due(s) is not None]
    assert 199 <= len(acted) <= 201
    gaps = np.diff(acted)
    # The schedule is kept (a late state does not shift the next ones), so the mean period is exact.
    assert abs(gaps.mean() - 0.01) < 2e-4 and gaps.min() >= 0.006 and gaps.max() <= 0.014
    every = PeriodGate(0.01)  # a 100 Hz stream: every state
    assert all(every.due(s) is not None for s in np.arange(0, 1.0, 0.01))


def test_a_prefixed_arm_serves_a_policy_by_joint_role(tmp_path):
    left, _ = robot_joints_and_period("fr3", arm_prefix="left")
    assert left[0] == "left_fr3_joint1"
    assert load_servable_policy(policy_file(tmp_path), left).spec.joint_names == JOINTS
    v2, _ = robot_joints_and_period("fr3", robot_type="fr3v2")
    with pytest.raises(PolicyFileError, match="robot type and joint number"):
        load_servable_policy(policy_file(tmp_path), v2)
    with pytest.raises(ValueError, match="arm_prefix"):
        robot_joints_and_period("fr3", arm_prefix="left arm")


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


def test_a_period_served_without_its_state_is_not_served_again_when_the_state_arrives_late():
    gate = PeriodGate(0.01)
    assert gate.due(0.0) is not None
    gate.served_until(0.0125)  # the stream stalled; the timer held the command for the period at 0.01
    assert gate.due(0.010) is None and gate.due(0.011) is None  # that period's states, late: not again
    assert gate.due(0.020) is not None
