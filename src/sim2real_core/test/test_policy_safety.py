"""The safety layer: NaN guard, torque clipping, rate limit, joint-limit guard, watchdog, counters."""
import numpy as np
import pytest
import yaml

from sim2real_core.config import ConfigError
from sim2real_core.policy.safety import SafetyLayer, SafetyLimits, load_safety_limits
from sim2real_core.robot import robot_file

N = 7
TORQUE = np.array([87, 87, 87, 87, 12, 12, 12], dtype=float)


def make_layer(rate=1e6, watchdog_periods=2, period=1e-3) -> SafetyLayer:
    limits = SafetyLimits(torque=TORQUE, rate=rate, lower=-np.ones(N), upper=np.ones(N), guard_stiffness=100.0,
                          guard_damping=10.0, watchdog_periods=watchdog_periods)
    return SafetyLayer(limits, period)


def test_passes_a_safe_command_unchanged():
    layer = make_layer()
    tau = np.linspace(-5, 5, N)
    np.testing.assert_array_equal(layer.filter(tau, np.zeros(N), np.zeros(N)), tau)
    assert layer.counters["clipped"] == layer.counters["rate_limited"] == 0 and layer.fault is None


def test_oversized_torque_is_clipped_per_joint():
    layer = make_layer()
    out = layer.filter(np.full(N, 500.0), np.zeros(N), np.zeros(N))
    np.testing.assert_array_equal(out, TORQUE)
    out = layer.filter(np.full(N, -500.0), np.zeros(N), np.zeros(N))
    np.testing.assert_array_equal(out, -TORQUE)
    assert layer.counters["clipped"] == 2


@pytest.mark.parametrize("where", ["torque", "q", "dq"])
def test_non_finite_input_gives_zero_torque_and_a_latched_fault(where):
    layer = make_layer()
    values = {"torque": np.ones(N), "q": np.zeros(N), "dq": np.zeros(N)}
    values[where][3] = np.nan if where != "dq" else np.inf
    out = layer.filter(values["torque"], values["q"], values["dq"])
    np.testing.assert_array_equal(out, np.zeros(N))
    assert layer.fault == "nan" and layer.counters["nan"] == 1
    # Latched: a good command afterwards is still zeroed until reset.
    np.testing.assert_array_equal(layer.filter(np.ones(N), np.zeros(N), np.zeros(N)), np.zeros(N))
    layer.reset()
    np.testing.assert_array_equal(layer.filter(np.ones(N), np.zeros(N), np.zeros(N)), np.ones(N))


def test_rate_limit_bounds_the_change_per_period():
    layer = make_layer(rate=1000.0, period=1e-3)  # 1 Nm per period
    outputs = [layer.filter(np.full(N, 3.5), np.zeros(N), np.zeros(N)) for _ in range(5)]
    np.testing.assert_allclose([o[0] for o in outputs], [1, 2, 3, 3.5, 3.5])
    assert layer.counters["rate_limited"] == 3
    down = layer.filter(np.full(N, -10.0), np.zeros(N), np.zeros(N))
    np.testing.assert_allclose(down, np.full(N, 2.5))


def test_joint_limit_guard_removes_outward_torque_and_pushes_back():
    layer = make_layer()
    q = np.zeros(N)
    q[1], q[2] = 1.1, -1.2  # past upper (+0.1) and lower (-0.2) soft limits
    dq = np.zeros(N)
    dq[1] = 0.5  # still moving outward
    tau = np.full(N, 4.0)
    tau[2] = -4.0
    out = layer.filter(tau, q, dq)
    assert out[1] == pytest.approx(-100.0 * 0.1 - 10.0 * 0.5)  # no positive torque, spring and damper back
    assert out[2] == pytest.approx(100.0 * 0.2)
    assert out[0] == 4.0 and layer.counters["joint_limit"] == 1
    # Torque that already points back inside is kept.
    tau[1] = -3.0
    assert layer.filter(tau, q, np.zeros(N))[1] == pytest.approx(-3.0 - 10.0)


def test_watchdog_zeroes_torque_within_its_periods_and_latches():
    layer = make_layer(watchdog_periods=2)
    q, tau = np.zeros(N), np.ones(N)
    np.testing.assert_array_equal(layer.filter(tau, q, q, fresh=True), tau)
    np.testing.assert_array_equal(layer.filter(tau, q, q, fresh=False), tau)  # one stale period is tolerated
    np.testing.assert_array_equal(layer.filter(tau, q, q, fresh=False), np.zeros(N))  # second: stopped
    assert layer.fault == "watchdog" and layer.counters["watchdog"] == 1
    np.testing.assert_array_equal(layer.filter(tau, q, q, fresh=True), np.zeros(N))  # fresh state: still latched
    layer.reset()
    np.testing.assert_array_equal(layer.filter(tau, q, q, fresh=True), tau)
    assert layer.diagnostics()["fault"] == "none" and layer.counters["faulted"] == 2


def test_wrong_shapes_and_bad_limits_are_refused():
    with pytest.raises(ValueError, match="7 values"):
        make_layer().filter(np.ones(6), np.zeros(N), np.zeros(N))
    with pytest.raises(ValueError, match="lower < upper"):
        SafetyLimits(torque=TORQUE, rate=1.0, lower=np.ones(N), upper=np.zeros(N), guard_stiffness=0.0,
                     guard_damping=0.0)
    with pytest.raises(ValueError, match="'rate' must be 7"):
        SafetyLimits(torque=TORQUE, rate=np.ones(3), lower=-np.ones(N), upper=np.ones(N), guard_stiffness=0.0,
                     guard_damping=0.0)


def test_fr3_limits_come_from_the_robot_file():
    limits = load_safety_limits("fr3", watchdog_periods=4)
    np.testing.assert_array_equal(limits.torque, TORQUE)
    assert limits.watchdog_periods == 4 and np.all(limits.lower < limits.upper)


def test_a_safety_file_without_settings_is_named_in_the_error(tmp_path):
    path = tmp_path / "safety.yaml"
    path.write_text("safety: {torque_rate_limit: 10}\n")
    with pytest.raises(ConfigError, match="safety.yaml.*guard_stiffness"):
        load_safety_limits("fr3", safety=path)


def test_a_short_stall_zeroes_the_torque_and_a_long_one_latches():
    limits = SafetyLimits(torque=np.full(7, 87.0), rate=np.full(7, 1e6), lower=np.full(7, -3.0), upper=np.full(7, 3.0),
                          guard_stiffness=0.0, guard_damping=0.0, watchdog_periods=2, watchdog_latch_periods=4)
    layer = SafetyLayer(limits, period=1e-3)
    q = np.zeros(7)
    assert np.all(layer.filter(np.full(7, 5.0), q, q) == 5.0)
    assert np.all(layer.filter(None, q, q, fresh=False) == 5.0)  # 1 stale period: hold
    assert np.all(layer.filter(None, q, q, fresh=False) == 0.0)  # 2: zero, not latched
    assert layer.fault is None
    assert np.all(layer.filter(np.full(7, 5.0), q, q) == 5.0)  # the stream is back: torque again
    for _ in range(4):
        out = layer.filter(None, q, q, fresh=False)
    assert np.all(out == 0.0) and layer.fault == "watchdog"  # 4 stale periods: latched
    assert np.all(layer.filter(np.full(7, 5.0), q, q) == 0.0)


def test_the_velocity_envelope_guard_brakes_a_joint_racing_towards_its_limit():
    limits = load_safety_limits("fr3")
    layer = SafetyLayer(limits, period=0.01)
    home = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
    near = home.copy()
    near[3] = -2.9  # joint 4, 0.15 rad inside its lower envelope edge: the robot allows about -0.8 rad/s here
    lower, _ = limits.envelope.limits(near)
    towards = np.zeros(N)
    towards[3] = 0.9 * lower[3]  # within the bound (no reflex yet) but beyond the guard's fraction of it
    pushing = np.zeros(N)
    pushing[3] = -20.0
    for _ in range(10):  # let the rate limit reach the command
        out = layer.filter(pushing, near, towards)
    assert out[3] > 0.0, "the torque driving the joint faster is removed and the excess velocity damped"
    assert layer.counters["velocity_envelope"] == 10
    same_speed_mid_range = np.zeros(N)
    same_speed_mid_range[3] = towards[3]
    fresh = SafetyLayer(limits, period=0.01)
    for _ in range(10):
        out = fresh.filter(pushing, home, same_speed_mid_range)
    assert out[3] == -20.0 and fresh.counters["velocity_envelope"] == 0  # far from the limit: untouched


def test_the_envelope_guard_is_needed_only_for_robots_with_an_envelope(tmp_path):
    path = tmp_path / "safety.yaml"
    path.write_text("safety: {torque_rate_limit: 1000, soft_limit_margin: 0.1, guard_stiffness: [100, 100, 100, 100, "
                    "20, 20, 20], guard_damping: [10, 10, 10, 10, 2, 2, 2], watchdog_periods: 3}\n")
    with pytest.raises(ConfigError, match="safety.velocity_envelope is needed: robot fr3 has a velocity envelope"):
        load_safety_limits("fr3", safety=path)
    robot = tmp_path / "no_envelope.yaml"
    body = yaml.safe_load(robot_file("fr3").read_text())
    del body["robot"]["velocity_envelope"]
    robot.write_text(yaml.safe_dump(body))
    limits = load_safety_limits(robot, safety=path)
    assert limits.envelope is None and limits.watchdog_latch_periods == 3  # the latch defaults to the watchdog
