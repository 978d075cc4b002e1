"""The franka_ros2 robot side around the reality proxy: controller semantics, rate limit, reflexes, payloads."""
import numpy as np
import pytest

from sim2real_core.robot import load_robot
from sim2real_core.sim.franka import MAX_TORQUE_RATE, TICK, FrankaConfig, FrankaEmulation, Payload

FR3 = load_robot("fr3")

# A pose whose tool centre point is 4 cm below the table top (found by forward kinematics of the model).
BELOW_TABLE = np.array([0.0, 0.815, 0.0, -1.877, 0.0, 2.571, 0.785])
KP = np.array([150.0, 150.0, 150.0, 150.0, 30.0, 30.0, 30.0])
KD = np.array([20.0, 20.0, 20.0, 20.0, 3.0, 3.0, 3.0])
LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])


def pd_ticks(robot, target_of, ticks):
    """Command a PD towards target_of(tick) at 100 Hz for `ticks` 1 ms ticks; returns the first reflex or ''."""
    for tick in range(ticks):
        q, dq, _ = robot.joint_state()
        if tick % 10 == 0:
            robot.command(np.clip(KP * (target_of(tick) - q) - KD * dq, -LIMITS, LIMITS))
        reflex = robot.tick()
        if reflex:
            return reflex
    return ""


@pytest.fixture
def robot():
    return FrankaEmulation(FrankaConfig(effort_noise_std=0.0), seed=0)


def test_nothing_before_the_first_command_then_the_last_command_is_held_forever(robot):
    start = robot.joint_state()[0]
    for _ in range(500):  # never commanded: the arm floats where it is
        assert robot.tick() == ""
    np.testing.assert_allclose(robot.joint_state()[0], start, atol=1e-3)
    assert robot.robot_mode == "idle"
    robot.command(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]))
    for _ in range(3000):  # 3 s without a new command: still applied (no watchdog), as the real controller
        robot.tick()
    np.testing.assert_allclose(robot.last_desired, [0, 0, 0, 0, 0, 0, 2.0])
    assert robot.robot_mode in ("move", "reflex")


def test_every_1ms_write_is_rate_limited_to_1000_nm_per_s(robot):
    robot.command(np.zeros(7))
    robot.tick()
    robot.command(np.array([10.0, -10.0, 0, 0, 0, 0, 0]))
    seen = []
    for _ in range(4):
        robot.tick()
        seen.append(robot.last_desired[:2].copy())
    step = MAX_TORQUE_RATE * TICK
    np.testing.assert_allclose(np.array(seen), [[k * step, -k * step] for k in range(1, 5)])


def test_a_wrong_length_command_deactivates_the_controller_and_zeroes_torque(robot):
    robot.command(np.full(7, 1.0))
    for _ in range(5):
        robot.tick()
    assert "does not match number of interfaces" in robot.command(np.ones(6))
    assert not robot.controller_active and robot.publishing  # the broadcaster still runs
    assert robot.command(np.ones(7)).startswith("ignored")
    for _ in range(10):
        robot.tick()
    assert np.allclose(robot.last_desired, 0.0)  # deactivation wrote zero (ramped by the rate limiter)
    assert "does not match" in robot.recover() and robot.controller_active


def test_non_finite_commands_are_dropped_and_the_previous_one_holds(robot):
    robot.command(np.full(7, 0.5))
    assert robot.command(np.array([np.nan] + [0.0] * 6)) == "dropped: non-finite value"
    for _ in range(5):
        robot.tick()
    np.testing.assert_allclose(robot.last_desired, 0.5)
    assert robot.counters["dropped_nonfinite"] == 1


def test_a_push_into_the_table_trips_a_collision_reflex_then_states_stop_until_recovery(robot):
    home = np.array(robot.robot.home)
    reflex = pd_ticks(robot, lambda t: home + (BELOW_TABLE - home) * min(1.0, t / 3000), 6000)
    assert "collision" in reflex, reflex
    assert robot.robot_mode == "reflex" and not robot.publishing
    assert robot.command(np.zeros(7)).startswith("ignored: the robot is in reflex mode")
    assert "collision" in robot.recover()
    assert robot.publishing and robot.controller_active and robot.desired is None


def test_the_velocity_envelope_shrinks_towards_the_joint_limits():
    mid_range = np.array([0.0, 0.0, 0.0, -1.6, 0.0, 2.5, 0.0])
    lower, upper = FR3.velocity_envelope.limits(mid_range)
    np.testing.assert_allclose(upper, [2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26], atol=2e-3)
    np.testing.assert_allclose(lower, -upper)
    q_near = np.array([2.70, 1.75, 2.88, -0.2, 2.78, 4.5, 3.0])  # just inside the upper limits
    near_lower, near_upper = FR3.velocity_envelope.limits(q_near)
    assert np.all(near_upper < 1.0) and np.all(near_upper >= 0.0)
    assert np.all(near_lower < -1.0)  # moving away from the limit is still allowed


def test_zero_torque_floats_the_identified_arm_and_drops_heavier_links_into_the_velocity_reflex():
    robot = FrankaEmulation(FrankaConfig(effort_noise_std=0.0), seed=0)
    robot.command(np.zeros(7))  # the control unit compensates the arm's own weight: it floats
    assert not any(robot.tick() for _ in range(1000))
    assert np.max(np.abs(robot.joint_state()[1])) < 0.05
    robot = FrankaEmulation(FrankaConfig(effort_noise_std=0.0, identified_links=False), seed=0)
    robot.command(np.zeros(7))  # only the model's weights compensated: the proxy's heavier links drop
    reflex = ""
    for _ in range(5000):
        reflex = robot.tick()
        if reflex:
            break
    assert "velocity" in reflex


def test_an_undeclared_payload_is_external_torque_and_sags_the_arm():
    def after(config):
        robot = FrankaEmulation(config, seed=0)
        robot.command(np.zeros(7))
        for _ in range(10):
            robot.tick()
        return robot.external_torque.copy(), robot.joint_state()[0]

    load = Payload(2.0, (0.0, 0.0, 0.05))
    base_torque, base_q = after(FrankaConfig(effort_noise_std=0.0))
    carried_torque, carried_q = after(FrankaConfig(effort_noise_std=0.0, carried=load))
    declared_torque, declared_q = after(FrankaConfig(effort_noise_std=0.0, carried=load, declared=load))
    assert np.abs(carried_torque - base_torque).max() > 2.0  # 2 kg at the flange shows as external torque
    np.testing.assert_allclose(declared_torque, base_torque, atol=1e-6)  # declared: compensated
    np.testing.assert_allclose(declared_q, base_q, atol=1e-9)
    assert np.abs(carried_q - base_q).max() > 1e-6


def test_bad_settings_are_refused_with_the_setting():
    with pytest.raises(ValueError, match="payload"):
        Payload(-1.0)
    with pytest.raises(ValueError, match="torque_thresholds"):
        FrankaConfig(torque_thresholds=(1.0,) * 6)
