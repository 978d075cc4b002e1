"""The batched simulator equals the single one, handles delays, and runs other models (Hopper)."""
import numpy as np
import pytest

from sim2real_core.robot import load_robot
from sim2real_core.sim.batch import BatchSimulator
from sim2real_core.sim.distributions import Distribution
from sim2real_core.sim.parameters import load_parameter_space
from sim2real_core.sim.simulator import Simulator

JOINTS = load_robot("fr3").joint_names


def test_batch_step_equals_single_simulator_step_per_parameter_sample():
    space = load_parameter_space("fr3_push")
    rng = np.random.default_rng(0)
    params = Distribution.uniform(space).sample(rng, 6)
    for kind in ("position_noise_std", "velocity_noise_std", "action_noise_std", "action_delay"):
        params[:, space.index(kind)] = 0.0
    params[:, [i for i, p in enumerate(space) if p.kind == "encoder_offset"]] = 0.0  # start states are true ones
    batch = BatchSimulator("fr3", space, 6, control_period=0.01, joints=JOINTS, nthread=1)
    batch.set_parameters(params)
    batch.reset("home")
    start = np.concatenate([load_robot("fr3").home + 0.1, np.full(7, 0.2)])
    batch.set_observation_state(np.repeat(start[None], 6, axis=0))
    torques = rng.uniform(-10, 10, (6, 7))
    predicted = batch.step(torques)
    single = Simulator(space, seed=0)
    for i in range(6):
        single.set_parameters(params[i])
        single.reset(qpos=start[:7], qvel=start[7:])
        assert np.allclose(single.step(torques[i]), predicted[i], atol=1e-10)
    qpos, _ = batch.state()
    assert qpos.shape == (6, single.model.nq)


def test_batch_delay_uses_past_actions_and_noise_matches_its_std():
    space = load_parameter_space("fr3_reach")
    n = 400
    values = np.repeat(space.nominal[None], n, axis=0)
    values[:, space.index("action_delay")] = np.arange(n) % 2
    values[:, space.index("position_noise_std")] = 0.002
    batch = BatchSimulator("fr3", space, n, control_period=0.01, joints=JOINTS, seed=1)
    batch.set_parameters(values)
    batch.reset("home")
    now, before = np.zeros((n, 7)), np.zeros((n, 1, 7))
    before[:, 0, 6] = 5.0  # the previous period pushed joint 7; delayed simulations apply it now
    obs = batch.step(now, past_actions=before, noise=False)
    assert np.all(obs[1::2, 13] > 0.1) and np.allclose(obs[0::2, 13], 0.0, atol=1e-9)
    noisy = batch.observation()
    assert np.std(noisy[:, :7] - obs[:, :7]) == pytest.approx(0.002, rel=0.05)


def test_batch_runs_the_hopper_with_actuator_controls():
    space = load_parameter_space("hopper")
    batch = BatchSimulator("hopper", space, 3, nstep=4, nthread=1)
    batch.set_parameters(np.array([space.nominal, space.nominal, space.nominal * 1.5]))
    batch.reset()
    obs = batch.step(np.tile([0.5, -0.5, 0.2], (3, 1)))
    assert obs.shape == (3, batch.nominal_model.nq + batch.nominal_model.nv) and batch.nu == 3
    assert np.allclose(obs[0], obs[1]) and not np.allclose(obs[0], obs[2])
    with pytest.raises(ValueError, match="6 model values"):
        batch.set_state(qpos=np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"actions need shape \(3, 3\)"):
        batch.step(np.zeros((2, 3)))


def test_batch_equals_single_over_many_steps_with_stribeck_friction_latency_and_partial_parameter_updates():
    """Stribeck friction is updated every physics step and the previous command holds during the latency in both
    kernels; re-parameterising some simulations restores the others' dry friction."""
    space = load_parameter_space("fr3_reach")
    rng = np.random.default_rng(3)
    params = Distribution.uniform(space).sample(rng, 4)
    for kind in ("position_noise_std", "velocity_noise_std", "action_noise_std", "action_delay"):
        params[:, space.index(kind)] = 0.0
    assert np.all(params[:, [space.index(f"joint{j}_stribeck") for j in range(1, 8)]] > 0)
    assert np.all(params[:, space.index("command_latency")] % 0.001 > 0)  # fractions of a physics step
    batch = BatchSimulator("fr3", space, 4, control_period=0.01, joints=JOINTS, nthread=1)
    batch.set_parameters(params)
    batch.reset("home")
    singles = [Simulator(space, seed=0) for _ in range(4)]
    for sim, row in zip(singles, params):
        sim.set_parameters(row)
    torques = rng.uniform(-6, 6, (30, 4, 7))
    last = np.zeros((4, 7))
    for t, command in enumerate(torques):
        if t == 15:  # new parameters for simulations 1 and 3 only
            params[[1, 3]] = Distribution.uniform(space).sample(rng, 2)
            params[[1, 3], space.index("action_delay")] = 0.0
            for kind in ("position_noise_std", "velocity_noise_std", "action_noise_std"):
                params[[1, 3], space.index(kind)] = 0.0
            batch.set_parameters(params[[1, 3]], ids=np.array([1, 3]))
            for i in (1, 3):
                singles[i].set_parameters(params[i])
        predicted = batch.step(command, past_actions=last[:, None, :])
        last = command
        for i, sim in enumerate(singles):
            np.testing.assert_allclose(sim.step(command[i]), predicted[i], rtol=0, atol=1e-9)


def _joint7_sim(**values):
    """The nominal arm with joint 7's friction set, noise-free."""
    sim = Simulator("fr3_reach", seed=0)
    sim.set_parameters({"joint7_damping": 0.0, "joint7_frictionloss": 0.2, "joint7_stribeck": 0.0,
                        "stribeck_velocity": 0.05, "joint7_drag": 0.0, **values})
    return sim


def test_stribeck_friction_holds_a_joint_below_breakaway_and_fades_with_speed():
    push = lambda tau: np.array([0, 0, 0, 0, 0, 0, tau])  # noqa: E731

    def speed(sim, tau, qvel=None, periods=10):
        sim.reset(qvel=qvel)
        for _ in range(periods):
            obs = sim.step(push(tau))
        return obs[13]

    # 0.5 N*m moves a joint with 0.2 N*m dry friction; at rest, 0.5 N*m of breakaway friction on top acts as
    # 0.7 N*m of dry friction (MuJoCo's soft friction constraint lets the joint creep by the same amount)
    free = speed(_joint7_sim(), 0.5)
    held = speed(_joint7_sim(joint7_stribeck=0.5), 0.5)
    assert free > 0.2 and abs(held) < free / 20
    assert held == pytest.approx(speed(_joint7_sim(joint7_frictionloss=0.7), 0.5), rel=1e-6)
    assert speed(_joint7_sim(joint7_stribeck=0.5), 1.0) > 0.2  # above the breakaway torque it moves
    # far above the Stribeck velocity only the dry friction is left
    spinning = np.array([0, 0, 0, 0, 0, 0, 3.0])
    fast, fast_stribeck = (speed(_joint7_sim(joint7_stribeck=s), 0.0, spinning, periods=2) for s in (0.0, 0.5))
    assert fast_stribeck == pytest.approx(fast, abs=1e-3)


def test_drag_grows_with_the_square_of_speed():
    def lost(drag, start):
        sim = _joint7_sim(joint7_drag=drag, joint7_frictionloss=0.0)
        sim.reset(qvel=np.array([0, 0, 0, 0, 0, 0, start]))
        return start - sim.step(np.zeros(7))[13]

    slow, fast = lost(0.3, 1.0) - lost(0.0, 1.0), lost(0.3, 2.0) - lost(0.0, 2.0)
    assert slow > 0 and fast / slow == pytest.approx(4.0, rel=0.15)


def test_encoder_offsets_shift_measured_positions_only():
    space = load_parameter_space("fr3_reach")
    offsets = {f"joint{j}_encoder_offset": 0.0006 * j * (-1) ** j for j in range(1, 8)}
    shifted = Simulator(space, seed=0)
    shifted.set_parameters(offsets)
    plain = Simulator(space, seed=0)
    torque = np.full(7, 2.0)
    a, b = plain.step(torque), shifted.step(torque)
    np.testing.assert_allclose(b[:7] - a[:7], list(offsets.values()), atol=1e-12)  # measured = true + offset
    np.testing.assert_array_equal(b[7:], a[7:])
    np.testing.assert_array_equal(shifted.joint_state()[0], plain.joint_state()[0])  # the arm moved the same
    batch = BatchSimulator("fr3", space, 2, control_period=0.01, joints=JOINTS, nthread=1)
    batch.set_parameters(np.stack([space.nominal, space.vector(offsets, fill_nominal=True)]))
    batch.reset("home")
    start = np.repeat(a[None], 2, axis=0)  # the same measured state: the true ones differ by the offsets
    batch.set_observation_state(start)
    np.testing.assert_allclose(batch.observation(noise=False), start, atol=1e-12)
    qpos, _ = batch.state()
    np.testing.assert_allclose(qpos[0, :7] - qpos[1, :7], list(offsets.values()), atol=1e-12)
