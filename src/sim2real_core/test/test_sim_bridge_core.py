"""The sim bridge's ROS-free logic: command checks, watchdog, resets and episodes, parameter guards."""
import numpy as np
import pytest

from sim2real_core.sim.bridge import BridgeConfig, SimBridge
from sim2real_core.sim.distributions import Distribution


def test_bad_commands_are_counted_and_never_applied():
    bridge = SimBridge(BridgeConfig(clocking="lockstep"))
    bridge.reset()
    q0 = bridge.joint_state()[0]
    assert "6 values" in bridge.command([1.0] * 6, now=0.0)
    assert "non-finite" in bridge.command([np.nan] + [0.0] * 6, now=0.0)
    assert bridge.counters["dropped_wrong_length"] == 1 and bridge.counters["dropped_nonfinite"] == 1
    applied = bridge.step(now=0.0)
    assert np.array_equal(applied, np.zeros(7))  # no valid command yet: zero torque
    assert np.allclose(bridge.joint_state()[0], q0, atol=1e-9)


def test_watchdog_replaces_a_stale_command_by_zero_torque():
    bridge = SimBridge(BridgeConfig(watchdog_period=0.05))
    bridge.reset()
    assert bridge.command([1.0] * 7, now=10.0) == ""
    assert np.array_equal(bridge.step(now=10.04), np.ones(7))
    assert np.array_equal(bridge.step(now=10.06), np.zeros(7))
    assert bridge.counters["watchdog_zero_steps"] == 1
    bridge.reset()  # a reset forgets the last command
    assert np.array_equal(bridge.step(now=10.0), np.zeros(7))
    assert bridge.counters["velocity_limit_steps"] == 0
    for _ in range(30):  # full torque on the wrist spins it past its 5.26 rad/s limit
        bridge.command([0, 0, 0, 0, 0, 0, 12.0], now=20.0)
        bridge.step(now=20.0)
    assert bridge.counters["velocity_limit_steps"] > 0


def test_resets_emit_episode_events_and_the_clock_never_goes_back(tmp_path):
    bridge = SimBridge(BridgeConfig(task="push", seed=3), start_time=100.0)
    (start,) = bridge.reset()
    assert start["event"] == "start" and start["episode"] == 0 and start["parameters"]["puck_mass"] == 0.2
    for _ in range(5):
        bridge.step(now=0.0)
    clock = bridge.clock
    assert clock == pytest.approx(100.05) and bridge.clock_ns == 100_050_000_000
    path = Distribution.uniform(bridge.space).save(tmp_path / "d.yaml")
    bridge.set_distribution(str(path))
    end, start = bridge.reset()
    assert end == {"event": "end", "episode": 0, "source": "sim_bridge", "steps": 5, "stamp": clock}
    assert start["episode"] == 1 and start["distribution"] == str(path) and start["parameters"]["puck_mass"] != 0.2
    assert bridge.clock == clock
    position, quaternion = bridge.puck_pose()
    assert position[2] == pytest.approx(0.02, abs=1e-3) and quaternion[0] == pytest.approx(1.0)
    # the same seed gives the same sequence of episodes
    again = SimBridge(BridgeConfig(task="push", seed=3), start_time=100.0)
    again.reset()
    again.set_distribution(str(path))
    assert again.reset()[-1]["parameters"] == start["parameters"]


def test_physics_changes_are_validated_and_the_reality_profile_refuses_them(tmp_path):
    bridge = SimBridge(BridgeConfig())
    bridge.set_physics({"link3_mass_scale": 1.2, "action_delay": 2})
    assert bridge.physics_values()["link3_mass_scale"] == 1.2 and bridge.sim.effects["action_delay"] == 2
    with pytest.raises(ValueError, match="outside its bounds"):
        bridge.set_physics({"joint1_damping": -1.0})
    with pytest.raises(ValueError, match="whole numbers"):
        bridge.set_physics({"action_delay": 1.5})
    with pytest.raises(ValueError, match="unknown physics parameters"):
        bridge.set_physics({"puck_mass": 0.3})  # task reach has no puck parameters
    other = Distribution.uniform(SimBridge(BridgeConfig(task="push")).space).save(tmp_path / "push.yaml")
    with pytest.raises(ValueError, match="is over"):
        bridge.set_distribution(str(other))
    # a fit over some of the bridge's parameters: the others stay nominal
    fitted = Distribution.gaussian(bridge.space.subset(["link3_mass_scale"]), [1.3], std=[0.01])
    bridge.set_distribution(str(fitted.save(tmp_path / "fit.yaml")))
    drawn = bridge.reset()[-1]["parameters"]
    assert drawn["link3_mass_scale"] == pytest.approx(1.3, abs=0.03) and drawn["link2_mass_scale"] == 1.0
    reality = SimBridge(BridgeConfig(profile="reality"))
    with pytest.raises(ValueError, match="hidden physics"):
        reality.set_physics({"link3_mass_scale": 1.0})
    with pytest.raises(ValueError, match="hidden physics"):
        reality.set_distribution(str(other))
    assert "parameters" not in reality.reset()[-1]
    with pytest.raises(ValueError, match="clocking must be one of"):
        BridgeConfig(clocking="fast")


def test_the_camera_sees_the_reality_look_or_a_new_random_look_per_reset():
    from sim2real_core.sim.reality import load_reality

    reality = SimBridge(BridgeConfig(profile="reality", reality="fr3_harsh"))
    reality.reset()
    assert np.array_equal(reality.camera_view()[2], load_reality("fr3_harsh").appearance)
    plain = SimBridge(BridgeConfig(profile="sim"))
    plain.reset()
    assert np.array_equal(plain.camera_view()[2], plain.appearance_space.nominal)
    varied = SimBridge(BridgeConfig(profile="sim", visual_randomization=True, seed=3))
    looks = []
    for _ in range(3):
        varied.reset()
        stamp, qpos, look = varied.camera_view()
        looks.append(look)
        assert qpos.shape == (varied.sim.model.nq,) and stamp == varied.clock_ns
    assert len({tuple(look) for look in looks}) == 3
    assert all(np.all((look >= varied.appearance_space.low) & (look <= varied.appearance_space.high)) for look in looks)
