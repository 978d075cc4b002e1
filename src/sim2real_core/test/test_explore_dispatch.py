"""Exploration dispatch: per-episode policy draws, random-action mixing, safety on every command, bookkeeping."""
import numpy as np
import pytest

from sim2real_core.explore.dispatch import (
    DispatchConfig,
    Dispatcher,
    load_exploration_policies,
    resolve_policy_paths,
    task_box,
)
from sim2real_core.policy.policy_file import ActionHead, Policy, PolicyFileError, PolicySpec, save_policy
from sim2real_core.policy.safety import SafetyLayer, SafetyLimits

JOINTS = [f"fr3_joint{i}" for i in range(1, 8)]
TORQUE = np.array([87, 87, 87, 87, 12, 12, 12], dtype=float)
N = len(JOINTS)


def make_spec(scale=1.0, joints=JOINTS) -> PolicySpec:
    n = len(joints)
    return PolicySpec(layout="joint_state_v1", obs_size=2 * n, obs_mean=[0.0] * 2 * n, obs_std=[1.0] * 2 * n,
                      hidden=[8], action=ActionHead(mode="torque", scale=[scale] * n), joint_names=list(joints))


def make_weights(seed: int, n: int = N) -> dict:
    rng = np.random.default_rng(seed)
    return {"layers.0.weight": rng.normal(size=(8, 2 * n)), "layers.0.bias": rng.normal(size=8),
            "layers.1.weight": rng.normal(size=(n, 8)), "layers.1.bias": rng.normal(size=n)}


def make_policy(seed: int, scale: float = 5.0) -> Policy:
    return Policy(make_spec(scale), make_weights(seed))


def make_safety(rate: float = 1e9, period: float = 0.01) -> SafetyLayer:
    limits = SafetyLimits(torque=TORQUE, rate=rate, lower=-np.full(N, 2.5), upper=np.full(N, 2.5),
                          guard_stiffness=100.0, guard_damping=10.0, watchdog_periods=3)
    return SafetyLayer(limits, period)


def state(rng):
    return rng.uniform(-1, 1, N), rng.uniform(-1, 1, N)


def run_episode(dispatcher, rng):
    start = dispatcher.start_episode()
    outputs = []
    while not dispatcher.episode_finished:
        q, dq = state(rng)
        outputs.append((q, dq, dispatcher.command(q, dq)))
    while not dispatcher.stopped:
        dispatcher.stop_command(*state(rng))
    return start, outputs, dispatcher.end_episode()


def test_one_policy_is_drawn_per_episode_and_drives_the_whole_episode():
    policies = [make_policy(seed) for seed in range(3)]
    dispatcher = Dispatcher(policies, make_safety(), DispatchConfig(episodes=45, episode_steps=20,
                                                                    random_action_prob=0.0, seed=1))
    rng = np.random.default_rng(0)
    drawn = []
    while not dispatcher.done:
        start, outputs, end = run_episode(dispatcher, rng)
        assert start["policy"] == end["policy"] and start["episode"] == len(drawn)
        policy = policies[start["policy"]]
        for q, dq, tau in outputs:
            np.testing.assert_allclose(tau, policy.torque(q, dq))
        drawn.append(start["policy"])
    counts = np.bincount(drawn, minlength=3)
    assert counts.sum() == 45 and np.all(counts >= 5), counts  # uniform draws: each policy used
    assert len(set(drawn[:10])) > 1  # a fresh draw per episode, not one policy for the run


def test_random_actions_replace_policy_steps_at_the_configured_rate_within_the_torque_fraction():
    policy = make_policy(0, scale=0.0)  # the policy commands exactly zero torque
    config = DispatchConfig(episodes=1, episode_steps=4000, random_action_prob=0.3, random_torque_fraction=0.25)
    dispatcher = Dispatcher([policy], make_safety(), config)
    _, outputs, end = run_episode(dispatcher, np.random.default_rng(0))
    torques = np.array([tau for _, _, tau in outputs])
    random_rows = np.any(torques != 0, axis=1)
    assert end["random_steps"] == random_rows.sum() and end["steps"] == 4000
    # Binomial(4000, 0.3): std ~ 29 steps; 5 sigma.
    assert abs(random_rows.sum() - 1200) < 5 * np.sqrt(4000 * 0.3 * 0.7)
    assert np.all(np.abs(torques) <= 0.25 * TORQUE + 1e-12)
    assert np.all(np.abs(torques[random_rows]).max(axis=0) > 0.2 * TORQUE)  # spread over the allowed range


def test_every_command_passes_the_safety_layer():
    policy = make_policy(1, scale=1000.0)  # far past every torque limit
    rate = 1000.0  # 10 Nm per 10 ms period
    dispatcher = Dispatcher([policy], make_safety(rate=rate), DispatchConfig(
        episodes=2, episode_steps=50, random_action_prob=0.5, random_torque_fraction=1.0))
    rng = np.random.default_rng(3)
    while not dispatcher.done:
        _, outputs, end = run_episode(dispatcher, rng)
        torques = np.array([np.zeros(N)] + [tau for _, _, tau in outputs])
        assert np.all(np.abs(torques) <= TORQUE)
        assert np.all(np.abs(np.diff(torques, axis=0)) <= rate * 0.01 + 1e-9)
        assert end["safety"]["clipped"] > 0 and end["safety"]["rate_limited"] > 0
        assert end["safety"]["periods"] == end["steps"] + end["stop_steps"]


class NonFinitePolicy:
    """A broken policy: NaN torque on every call."""

    def torque(self, q, dq, extra=None):
        return np.full(N, np.nan)


def test_non_finite_policy_output_is_never_published_and_is_reported():
    dispatcher = Dispatcher([NonFinitePolicy()], make_safety(), DispatchConfig(
        episodes=2, episode_steps=30, random_action_prob=0.3, random_torque_fraction=0.5))
    rng = np.random.default_rng(0)
    for episode in range(2):
        _, outputs, end = run_episode(dispatcher, rng)
        torques = np.array([tau for _, _, tau in outputs])
        assert np.all(np.isfinite(torques))
        zero_rows = np.flatnonzero(~np.any(torques, axis=1))
        assert zero_rows.size > 0
        # Once tripped, the fault latches: zeros for the rest of the episode, random steps included.
        assert not np.any(torques[zero_rows[0]:])
        assert end["fault"] == "nan" and end["safety"]["nan"] == 1 and end["episode"] == episode


def test_a_state_without_velocities_faults_instead_of_commanding():
    # A JointState without velocities reaches the core as NaN dq (messages.joint_state_arrays).
    dispatcher = Dispatcher([make_policy(0)], make_safety(), DispatchConfig(episodes=1, episode_steps=3,
                                                                            random_action_prob=0.0))
    dispatcher.start_episode()
    q = np.zeros(N)
    assert not np.any(dispatcher.command(q, np.full(N, np.nan)))
    assert not np.any(dispatcher.command(q, np.zeros(N)))  # latched
    assert dispatcher.current.fault == "nan"


def test_the_stop_winds_the_guard_down_to_zero_after_the_longest_ramp():
    rate = 1000.0
    dispatcher = Dispatcher([make_policy(0, scale=80.0)], make_safety(rate=rate),
                            DispatchConfig(episodes=1, episode_steps=5, random_action_prob=0.0))
    rng = np.random.default_rng(1)
    dispatcher.start_episode()
    while not dispatcher.episode_finished:
        dispatcher.command(*state(rng))
    sagged = np.full(N, 2.6), np.zeros(N)  # past the soft limits (2.5): the guard pushes back
    ramp = []
    while not dispatcher.stopped:
        ramp.append(dispatcher.stop_command(*sagged))
        assert len(ramp) <= 2 * dispatcher.safety.ramp_periods
    ramp = np.array(ramp)
    periods = dispatcher.safety.ramp_periods
    assert periods == int(np.ceil(np.max(TORQUE) / (rate * 0.01)))
    assert np.any(ramp[periods - 1] != 0)  # the guard still pushed back when the first ramp was over ...
    assert not np.any(ramp[-1])  # ... and the arm is left with zero torque, never faster than the rate limit
    assert np.all(np.abs(np.diff(ramp, axis=0)) <= rate * 0.01 + 1e-9)
    assert dispatcher.end_episode()["stop_steps"] == len(ramp)


def test_episode_bookkeeping_and_stop_ramp():
    rate = 1000.0
    dispatcher = Dispatcher([make_policy(0, scale=80.0), make_policy(1, scale=80.0)], make_safety(rate=rate),
                            DispatchConfig(episodes=2, episode_steps=40, random_action_prob=0.0),
                            names=["explore_a", "explore_b"])
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="no episode"):
        dispatcher.command(*state(rng))
    start = dispatcher.start_episode()
    assert start == {"event": "start", "episode": 0, "episodes": 2, "policy": start["policy"],
                     "policy_name": ["explore_a", "explore_b"][start["policy"]]}
    with pytest.raises(RuntimeError, match="still running"):
        dispatcher.start_episode()
    while not dispatcher.episode_finished:
        last = dispatcher.command(*state(rng))
    with pytest.raises(RuntimeError, match="already has"):
        dispatcher.command(*state(rng))
    ramp = []
    while not dispatcher.stopped:
        ramp.append(dispatcher.stop_command(*state(rng)))
    # Down to zero no faster than the rate limit allows, and no slower.
    assert len(ramp) == int(np.ceil(np.abs(last).max() / (rate * 0.01) - 1e-9))
    end = dispatcher.end_episode()
    assert end["steps"] == 40 and end["stop_steps"] == len(ramp) and end["fault"] == "none"
    assert not dispatcher.done
    run_episode(dispatcher, rng)
    assert dispatcher.done and [r.episode for r in dispatcher.records] == [0, 1]
    with pytest.raises(RuntimeError, match="all 2 episodes"):
        dispatcher.start_episode()


def test_random_only_collection_needs_no_policy():
    with pytest.raises(ValueError, match="at least one policy"):
        Dispatcher([], make_safety(), DispatchConfig(random_action_prob=0.5))
    dispatcher = Dispatcher([], make_safety(), DispatchConfig(episodes=1, episode_steps=5, random_action_prob=1.0))
    start, outputs, end = run_episode(dispatcher, np.random.default_rng(0))
    assert start["policy"] == -1 and start["policy_name"] == "random" and end["random_steps"] == 5


@pytest.mark.parametrize("bad", [dict(episodes=0), dict(episode_steps=0), dict(random_action_prob=1.5),
                                 dict(random_torque_fraction=-0.1)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        DispatchConfig(**bad)


def test_policies_load_from_a_folder_of_policy_folders(tmp_path):
    for i in (1, 0):
        save_policy(tmp_path / "set" / f"policy_{i}", make_spec(), make_weights(i))
    paths = resolve_policy_paths([tmp_path / "set"])
    assert [p.name for p in paths] == ["policy_0", "policy_1"]
    policies = load_exploration_policies([tmp_path / "set"], JOINTS)
    np.testing.assert_allclose(policies[1].torque(np.zeros(N), np.zeros(N)),
                               make_policy(1, scale=1.0).torque(np.zeros(N), np.zeros(N)), rtol=1e-5)
    with pytest.raises(PolicyFileError, match="differ from"):
        load_exploration_policies([tmp_path / "set"], [f"fer_joint{i}" for i in range(1, 8)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyFileError, match="empty"):
        resolve_policy_paths([tmp_path / "empty"])


def test_missed_periods_trip_the_watchdog():
    dispatcher = Dispatcher([make_policy(0)], make_safety(), DispatchConfig(episodes=1, episode_steps=10,
                                                                            random_action_prob=0.0))
    dispatcher.start_episode()
    q, dq = np.zeros(N), np.zeros(N)
    tau = dispatcher.command(q, dq)
    assert np.any(tau)
    np.testing.assert_array_equal(dispatcher.missed_period(q, dq), tau)  # repeats while within the budget
    dispatcher.missed_period(q, dq)
    assert not np.any(dispatcher.missed_period(q, dq))  # third missed period: watchdog_periods=3
    assert dispatcher.current.fault == "watchdog" and not np.any(dispatcher.command(q, dq))


def test_extra_inputs_are_drawn_per_episode_from_a_box():
    n, extra = N, 3
    spec = PolicySpec(layout="joint_state_v1", obs_size=2 * n + extra, obs_mean=[0.0] * (2 * n + extra),
                      obs_std=[1.0] * (2 * n + extra), hidden=[8], action=ActionHead(mode="torque", scale=[5.0] * n),
                      joint_names=JOINTS, extra_inputs=[{"name": "target_position", "size": 3,
                                                         "default": [0.45, 0.0, 0.4]}])
    rng = np.random.default_rng(0)
    policy = Policy(spec, {"layers.0.weight": rng.normal(size=(8, 2 * n + extra)), "layers.0.bias": np.zeros(8),
                           "layers.1.weight": rng.normal(size=(n, 8)), "layers.1.bias": np.zeros(n)})
    low, high = task_box("fr3_reach.target")
    assert low == (0.35, -0.30, 0.25) and high == (0.60, 0.30, 0.60)  # config/tasks/fr3_reach.yaml
    dispatcher = Dispatcher([policy], make_safety(), DispatchConfig(episodes=5, episode_steps=3, random_action_prob=0.0,
                                                                    extra_low=low, extra_high=high))
    targets = []
    while not dispatcher.done:
        start, outputs, end = run_episode(dispatcher, rng)
        target = np.array(start["extra_inputs"])
        assert np.all((target >= low) & (target <= high)) and end["extra_inputs"] == start["extra_inputs"]
        for q, dq, tau in outputs:
            np.testing.assert_allclose(tau, policy.torque(q, dq, target))
        targets.append(target)
    assert len({tuple(t) for t in targets}) == 5  # a fresh draw per episode
    with pytest.raises(ValueError, match="takes 3 extra inputs"):
        Dispatcher([policy], make_safety(), DispatchConfig(extra_low=(0.0,), extra_high=(1.0,)))
    with pytest.raises(ValueError, match="extra_low and extra_high"):
        DispatchConfig(extra_low=(1.0,), extra_high=(0.0,))
    with pytest.raises(ValueError, match="no box 'goal'"):
        task_box("fr3_reach.goal")
