"""bag_to_dataset: exact values, alignment, franka_ros2 bags, episodes, gaps, and every kind of bad input."""
import json

import numpy as np
import pytest
from data_bag_factory import (
    CAMERA,
    COMMANDS,
    EPISODES,
    JOINTS,
    MERGED,
    PUCK,
    STATES,
    T0,
    TYPES,
    command,
    control_log,
    episode,
    image,
    joint_state,
    pose,
    state_values,
)
from scipy.spatial.transform import Rotation

from sim2real_core.config import ConfigError
from sim2real_core.data.bagio import BagError, BagWriter, write_bag
from sim2real_core.data.convert import bag_to_dataset, increasing_run
from sim2real_core.robot import load_robot

BASIC = {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]}
WITH_EPISODES = {**BASIC, EPISODES: TYPES[EPISODES]}


def _expected_state(i):
    q, dq = state_values(i)
    return np.concatenate([q, dq])


def test_transitions_hold_exact_states_and_the_command_issued_after_s(tmp_path):
    bag = write_bag(tmp_path / "bag", control_log(n_states=100), BASIC)
    data = bag_to_dataset(bag, 0.01)
    assert len(data) == 9
    for k in range(9):
        assert np.array_equal(data.observations[k], _expected_state(10 * k))
        assert np.array_equal(data.next_observations[k], _expected_state(10 * k + 10))
        assert np.array_equal(data.actions[k], np.full(7, float(k)))
    assert not data.terminals.any() and data.timeouts.tolist() == [False] * 8 + [True]
    assert np.allclose(data.extras["timestamps"], (T0 + 10_000_000 * np.arange(9)) / 1e9)
    meta = data.metadata
    assert meta["state_layout"] == "joint_state_v1" and meta["joint_names"] == JOINTS and meta["robot"] == "fr3"
    assert meta["control_period"] == 0.01 and meta["source"]["joint_states_topic"] == STATES
    assert meta["counts"]["interpolated_states"] == 0 and meta["counts"]["transitions"] == 9


def test_actions_follow_send_times_when_receive_order_is_inverted(tmp_path):
    """Lockstep sim: s_k -> client sends a_k -> bridge steps and sends s_k+1, which may be *received* first."""
    store_types = {STATES: TYPES[STATES], COMMANDS: TYPES[COMMANDS]}
    from data_bag_factory import STORE
    with BagWriter(tmp_path / "bag") as writer:
        for topic, msgtype in store_types.items():
            writer.add_topic(topic, msgtype)
        for k in range(20):
            sent = T0 + k * 10_000_000
            q, dq = state_values(k)
            state = STORE.serialize_cdr(joint_state(sent, JOINTS, q, dq), TYPES[STATES])
            writer.write(STATES, sent + 50_000, bytes(state), publish_time=sent)
            cmd = STORE.serialize_cdr(command(np.full(7, float(k))), TYPES[COMMANDS])
            # a_k sent 0.1 ms after s_k but received after s_k+1 (sent 10 ms later, received at once)
            writer.write(COMMANDS, sent + 10_000_000 + 60_000, bytes(cmd), publish_time=sent + 100_000)
    data = bag_to_dataset(tmp_path / "bag", 0.01)
    assert data.metadata["time_base"] == "publish"
    assert data.actions[:, 0].tolist() == [float(k) for k in range(19)]


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_mcap_bags_convert_like_uncompressed(tmp_path, compression):
    from data_bag_factory import STORE
    with BagWriter(tmp_path / "bag", compression=compression, chunk_size=4096) as writer:
        for topic, msgtype in BASIC.items():
            writer.add_topic(topic, msgtype)
        for topic, log, msg in control_log(n_states=100):
            writer.write(topic, log, bytes(STORE.serialize_cdr(msg, TYPES[topic])))
    data = bag_to_dataset(tmp_path / "bag", 0.01)
    assert data.metadata["time_base"] == "publish" and len(data) == 9
    assert np.array_equal(data.actions[:, 0], np.arange(9.0))


def test_control_period_and_joint_names_default_to_the_robot_config(tmp_path):
    assert load_robot().control_period == 0.01
    assert list(load_robot().joint_names) == JOINTS
    bag = write_bag(tmp_path / "bag", control_log(n_states=50), BASIC)
    assert bag_to_dataset(bag).metadata["control_period"] == 0.01
    with pytest.raises(ConfigError, match="nope.yaml"):
        bag_to_dataset(bag, robot="nope")


def test_franka_merged_joint_states_with_fingers_shuffled_order_in_sqlite3(tmp_path):
    """`ros2 bag record` of franka_ros2: /joint_states at 30 Hz merged with the gripper, any joint order."""
    rng = np.random.default_rng(3)
    names = JOINTS + ["fr3_finger_joint1", "fr3_finger_joint2"]
    messages, period = [], 33_333_333
    for i in range(30):
        stamp = T0 + i * period
        q, dq = state_values(i)
        order = rng.permutation(9)
        q9, dq9 = np.concatenate([q, [0.04, 0.04]]), np.concatenate([dq, [0.0, 0.0]])
        messages.append((MERGED, stamp + 100_000, joint_state(stamp, [names[j] for j in order], q9[order], dq9[order])))
        messages.append((COMMANDS, stamp + 200_000, command(np.full(7, float(i)))))
    bag = write_bag(tmp_path / "franka", messages, {MERGED: TYPES[MERGED], COMMANDS: TYPES[COMMANDS]},
                    storage="sqlite3")
    data = bag_to_dataset(bag, period / 1e9)
    assert data.metadata["source"]["joint_states_topic"] == MERGED and data.metadata["time_base"] == "receive"
    assert len(data) == 29
    for k in (0, 13, 28):
        assert np.allclose(data.observations[k], _expected_state(k), atol=1e-12)
        assert np.array_equal(data.actions[k], np.full(7, float(k)))


def test_states_between_samples_are_interpolated_and_counted(tmp_path):
    messages = []
    for i in range(11):  # 2 ms samples, 3 ms control period: every other grid point falls between samples
        stamp = T0 + i * 2_000_000
        messages.append((STATES, stamp, joint_state(stamp, JOINTS, np.full(7, float(i)), np.full(7, 2.0 * i))))
    messages.append((COMMANDS, T0 - 1, command(np.ones(7))))
    data = bag_to_dataset(write_bag(tmp_path / "bag", messages, BASIC), 0.003)
    assert len(data) == 6
    assert np.allclose(data.observations[:, 0], [0, 1.5, 3, 4.5, 6, 7.5])
    assert np.allclose(data.observations[:, 7], 2 * data.observations[:, 0])
    assert data.metadata["counts"]["interpolated_states"] == 3


def test_recorded_episodes_split_and_mark_terminal_or_timeout(tmp_path):
    messages = control_log(n_states=100)
    messages += [(EPISODES, T0, episode("start", 3)),
                 (EPISODES, T0 + 45_000_000, episode("end", 3, terminal=True)),
                 (EPISODES, T0 + 50_000_000, episode("start", 4)),
                 (EPISODES, T0 + 99_500_000, episode("end", 4))]
    data = bag_to_dataset(write_bag(tmp_path / "bag", messages, WITH_EPISODES), 0.01)
    episodes = data.extras["episodes"]
    assert episodes.tolist() == [3] * 4 + [4] * 4
    assert data.terminals.tolist() == [False] * 3 + [True] + [False] * 4
    assert data.timeouts.tolist() == [False] * 7 + [True]
    assert np.array_equal(data.observations[4], _expected_state(50))
    counts = data.metadata["counts"]
    assert counts["states_outside_episodes"] == 5 and counts["episodes"] == 2 and counts["episode_events"] == 4


def test_collector_events_win_over_simulator_resets(tmp_path):
    """In sim both the bridge (on reset) and the dispatcher (around its episodes) publish boundaries."""
    messages = control_log(n_states=100)
    messages += [(EPISODES, T0 - 1_000_000, episode("end", 6, source="sim_bridge")),
                 (EPISODES, T0 - 900_000, episode("start", 7, source="sim_bridge")),
                 (EPISODES, T0, episode("start", 0, source="exploration_dispatcher")),
                 (EPISODES, T0 + 45_000_000, episode("end", 0, source="exploration_dispatcher")),
                 (EPISODES, T0 + 60_000_000, episode("end", 7, source="sim_bridge")),
                 (EPISODES, T0 + 60_000_100, episode("start", 8, source="sim_bridge"))]
    bag = write_bag(tmp_path / "bag", messages, WITH_EPISODES)
    data = bag_to_dataset(bag, 0.01)
    assert data.metadata["source"]["episode_source"] == "exploration_dispatcher"
    assert data.extras["episodes"].tolist() == [0] * 4 and data.metadata["counts"]["episode_events_ignored"] == 4
    bridge = bag_to_dataset(bag, 0.01, episode_source="sim_bridge")
    assert bridge.extras["episodes"].tolist() == [7] * 5 + [8] * 3
    assert bridge.metadata["counts"]["unmatched_episode_events"] == 2  # end of 6 without start, 8 never ends
    messages.append((EPISODES, T0 + 70_000_000, episode("start", 1, source="operator")))
    with pytest.raises(BagError, match=r"several sources \['exploration_dispatcher', 'operator'\]"):
        bag_to_dataset(write_bag(tmp_path / "two", messages, WITH_EPISODES), 0.01)
    with pytest.raises(BagError, match="no events from source 'nobody'"):
        bag_to_dataset(bag, 0.01, episode_source="nobody")


def test_gap_in_states_splits_the_trajectory(tmp_path):
    messages = [m for m in control_log(n_states=100) if not (m[0] == STATES and 40 <= (m[1] - T0) // 1_000_000 < 70)]
    data = bag_to_dataset(write_bag(tmp_path / "bag", messages, BASIC), 0.01)
    assert data.metadata["counts"]["gap_splits"] == 1
    assert data.timeouts.sum() == 2
    # No transition spans the gap: each s' is 10 ms after s.
    assert np.allclose(data.next_observations[:, 0] - data.observations[:, 0], 0.01)


def test_nonfinite_states_and_commands_are_dropped_with_counts(tmp_path):
    messages = control_log(n_states=100)
    for n, (topic, log, msg) in enumerate(messages):
        if topic == STATES and log == T0 + 50 * 1_000_000 + 200_000:
            msg.position[2] = np.nan
        if topic == COMMANDS and msg.data[0] == 7.0:
            msg.data[:] = np.inf
    data = bag_to_dataset(write_bag(tmp_path / "bag", messages, BASIC), 0.01)
    counts = data.metadata["counts"]
    assert counts["dropped_nonfinite_states"] == 1 and counts["dropped_nonfinite_actions"] == 1
    assert np.isfinite(data.observations).all() and np.isfinite(data.actions).all()
    assert 7.0 not in data.actions[:, 0]
    assert counts["interpolated_states"] == 1  # the grid point at the NaN sample is bridged by its neighbours
    assert data.timeouts.sum() == 2  # the dropped transition breaks the trajectory


def test_transitions_before_the_first_command_are_dropped(tmp_path):
    messages = [m for m in control_log(n_states=100) if not (m[0] == COMMANDS and m[2].data[0] < 3)]
    data = bag_to_dataset(write_bag(tmp_path / "bag", messages, BASIC), 0.01)
    assert data.metadata["counts"]["dropped_no_command"] == 3
    assert data.actions[0, 0] == 3.0 and np.array_equal(data.observations[0], _expected_state(30))


def test_missing_topics_and_wrong_types(tmp_path):
    only_states = write_bag(tmp_path / "a", [m for m in control_log(10) if m[0] == STATES], {STATES: TYPES[STATES]})
    with pytest.raises(BagError, match=f"topic {COMMANDS} is missing"):
        bag_to_dataset(only_states, 0.01)
    only_commands = write_bag(tmp_path / "b", [m for m in control_log(10) if m[0] == COMMANDS],
                              {COMMANDS: TYPES[COMMANDS]})
    with pytest.raises(BagError, match="no joint state topic"):
        bag_to_dataset(only_commands, 0.01)
    wrong = write_bag(tmp_path / "c", [(STATES, T0, command(np.zeros(7))), (COMMANDS, T0, command(np.zeros(7)))],
                      {STATES: TYPES[COMMANDS], COMMANDS: TYPES[COMMANDS]})
    with pytest.raises(BagError, match=f"topic {STATES} has message type std_msgs/msg/Float64MultiArray, expected "
                                       "sensor_msgs/msg/JointState"):
        bag_to_dataset(wrong, 0.01)


def test_missing_or_repeated_joint_names_name_the_message(tmp_path):
    messages = control_log(n_states=30)
    fingers = JOINTS[:6] + ["fr3_finger_joint1"]
    messages[12] = (STATES, messages[12][1], joint_state(T0, fingers, np.zeros(7), np.zeros(7)))
    with pytest.raises(BagError, match=r"topic /franka/joint_states message #11 .*joints \['fr3_joint7'\] missing"):
        bag_to_dataset(write_bag(tmp_path / "a", messages, BASIC), 0.01)
    messages[12] = (STATES, messages[12][1], joint_state(T0, JOINTS[:6] + ["fr3_joint1"], np.zeros(7), np.zeros(7)))
    with pytest.raises(BagError, match="message #11 .*joint names repeat"):
        bag_to_dataset(write_bag(tmp_path / "b", messages, BASIC), 0.01)
    messages[12] = (STATES, messages[12][1], joint_state(T0, JOINTS, np.zeros(7), np.zeros(0)))
    with pytest.raises(BagError, match="message #11 .*0 velocities"):
        bag_to_dataset(write_bag(tmp_path / "c", messages, BASIC), 0.01)


@pytest.mark.parametrize("stamps, kept", [
    ([1, 2, 3], [1, 1, 1]),
    ([90, 1, 2, 3], [0, 1, 1, 1]),  # a first state stamped late (a history delivered at connection)
    ([1, 2, 100, 3, 4], [1, 1, 0, 1, 1]),  # one stamp in the future
    ([1, 2, -5, 3], [1, 1, 0, 1]),  # one stamp in the past
    ([1, 2, 2, 3], [1, 1, 0, 1]),  # a repeated stamp: the first received is kept
    ([3, 1, 2, 4, 5], [0, 1, 1, 1, 1]),
])
def test_increasing_run_keeps_the_longest_run_of_increasing_stamps(stamps, kept):
    assert increasing_run(np.array(stamps, dtype=np.int64)).astype(int).tolist() == kept


def test_states_out_of_stamp_order_are_dropped_and_counted(tmp_path):
    """A state stamped a second early, one stamped 90 ms late, and a repeated state: each is dropped, and the
    transitions equal those of the clean recording (the grid's states are exact samples either way)."""
    clean = bag_to_dataset(write_bag(tmp_path / "clean", control_log(n_states=100), BASIC), 0.01)
    messages = control_log(n_states=100)
    state_rows = [n for n, m in enumerate(messages) if m[0] == STATES]
    messages[state_rows[18]][2].header.stamp.sec -= 1
    messages[state_rows[43]][2].header.stamp.nanosec += 90_000_000
    messages.insert(state_rows[61] + 1, messages[state_rows[61]])
    data = bag_to_dataset(write_bag(tmp_path / "a", messages, BASIC), 0.01)
    assert data.metadata["counts"]["dropped_unordered_states"] == 3
    assert data.metadata["counts"]["state_messages"] == 101
    assert np.array_equal(data.observations, clean.observations)
    assert np.array_equal(data.next_observations, clean.next_observations)
    assert np.array_equal(data.actions, clean.actions)
    assert clean.metadata["counts"]["dropped_unordered_states"] == 0


def test_stamps_may_restart_in_a_new_episode(tmp_path):
    """A simulator reset restarts its clock: stamps only need to increase within an episode."""
    first = control_log(n_states=30)
    second = [(t, log + 100_000_000, m) for t, log, m in control_log(n_states=30)]  # same stamps, later receive
    events = [(EPISODES, T0, episode("start", 0)), (EPISODES, T0 + 50_000_000, episode("end", 0)),
              (EPISODES, T0 + 100_000_000, episode("start", 1))]
    data = bag_to_dataset(write_bag(tmp_path / "bag", first + second + events, WITH_EPISODES), 0.01)
    assert data.extras["episodes"].tolist() == [0, 0, 1, 1]


def test_bad_commands_and_episode_events_name_the_message(tmp_path):
    messages = control_log(n_states=30)
    third = [n for n, m in enumerate(messages) if m[0] == COMMANDS][2]
    messages[third] = (COMMANDS, messages[third][1], command(np.zeros(6)))
    with pytest.raises(BagError, match=r"topic /effort_controller/commands message #2 .*6 values, expected 7"):
        bag_to_dataset(write_bag(tmp_path / "a", messages, BASIC), 0.01)
    bad_event = control_log(n_states=30) + [(EPISODES, T0, episode("start", 0)),
                                            (EPISODES, T0 + 1, joint_state_free_string("not json"))]
    with pytest.raises(BagError, match=r"topic /sim2real/episode message #1 .*expected JSON"):
        bag_to_dataset(write_bag(tmp_path / "b", bad_event, WITH_EPISODES), 0.01)


def joint_state_free_string(text):
    from data_bag_factory import STORE
    return STORE.types["std_msgs/msg/String"](text)


def test_truncated_bag_and_no_transitions_are_errors(tmp_path):
    bag = write_bag(tmp_path / "bag", control_log(n_states=30), BASIC)
    with pytest.raises(BagError, match="no transitions at control period 1.0 s"):
        bag_to_dataset(bag, 1.0)
    with pytest.raises(ValueError, match="control_period must be a positive"):
        bag_to_dataset(bag, -0.01)
    data = (bag / "bag_0.mcap").read_bytes()
    (bag / "bag_0.mcap").write_bytes(data[:-100])
    with pytest.raises(BagError, match="bag-recover"):
        bag_to_dataset(bag, 0.01)


def test_metadata_is_json(tmp_path):
    data = bag_to_dataset(write_bag(tmp_path / "bag", control_log(n_states=30), BASIC), 0.01)
    assert json.loads(json.dumps(data.metadata)) == data.metadata


# --- the puck (push task): joint_state_puck_v1 -------------------------------------------------------------
WITH_PUCK = {**BASIC, PUCK: TYPES[PUCK]}
V0, ACCEL, VY, SPIN, TILT = 0.8, 3.0, 0.2, 2.0, 0.2  # m/s, m/s^2 (decelerating), m/s, rad/s about world z, rad


def _puck_orientation(t: float) -> Rotation:
    """Spinning about the world z axis at SPIN, tilted about its own x axis by TILT."""
    return Rotation.from_euler("z", 0.3 + SPIN * t) * Rotation.from_euler("x", TILT)


def _puck_expected(t: float) -> np.ndarray:
    """Analytic puck state at t [s] after T0 in the joint_state_puck_v1 order (angular velocity in the body frame)."""
    x, y, z, w = _puck_orientation(t).as_quat()
    return np.concatenate([[0.5 + V0 * t - 0.5 * ACCEL * t * t, VY * t, 0.02], [w, x, y, z],
                           [V0 - ACCEL * t, VY, 0.0], _puck_orientation(t).inv().apply([0.0, 0.0, SPIN])])


def _puck_log(stamps_ns, flip_every: int = 0):
    """Puck poses at these header stamps (received 0.15 ms later); every flip_every-th quaternion negated."""
    out = []
    for j, stamp in enumerate(stamps_ns):
        state = _puck_expected((stamp - T0) / 1e9)
        quat = -state[3:7] if flip_every and j % flip_every == 3 else state[3:7]
        out.append((PUCK, int(stamp) + 150_000, pose(int(stamp), state[:3], quat)))
    return out


def test_puck_pose_gives_the_puck_layout_at_the_joint_states_time(tmp_path):
    stamps = T0 + 1_000_000 * np.arange(100)  # with every joint state, as the sim bridge publishes them
    bag = write_bag(tmp_path / "bag", control_log(n_states=100) + _puck_log(stamps, flip_every=7), WITH_PUCK)
    data = bag_to_dataset(bag, 0.01)
    meta = data.metadata
    assert meta["state_layout"] == "joint_state_puck_v1" and data.observations.shape == (9, 27)
    assert meta["observation_names"][14:] == ["puck_x", "puck_y", "puck_z", "puck_qw", "puck_qx", "puck_qy",
                                              "puck_qz", "puck_vx", "puck_vy", "puck_vz", "puck_wx", "puck_wy",
                                              "puck_wz"]
    assert meta["source"]["puck_topic"] == PUCK and meta["counts"]["puck_messages"] == 100
    assert meta["counts"]["dropped_no_puck_state"] == 0 and len(data) == 9
    for k in range(9):
        assert np.array_equal(data.observations[k, :14], _expected_state(10 * k))
        assert np.allclose(data.next_observations[k, 14:], _puck_expected(0.01 * (k + 1)), atol=1e-9)
    # interior poses: central differences are exact for constant acceleration and constant spin (and the
    # negated quaternions were turned back); the first pose has only the difference after it
    for k in range(1, 9):
        assert np.allclose(data.observations[k, 14:], _puck_expected(0.01 * k), atol=1e-9)
    first = _puck_expected(0.0)
    first[7] = V0 - ACCEL * 0.0005  # the mean velocity over the first millisecond
    assert np.allclose(data.observations[0, 14:], first, atol=1e-9)


def test_puck_poses_between_states_are_interpolated_and_a_gap_drops_transitions(tmp_path):
    stamps = T0 - 1_000_000 + 4_000_000 * np.arange(26)  # 250 Hz, 1 ms before the joint states' grid
    stamps = stamps[(stamps < T0 + 45_000_000) | (stamps > T0 + 65_000_000)]  # no poses from 47 to 63 ms
    bag = write_bag(tmp_path / "bag", control_log(n_states=100) + _puck_log(stamps), WITH_PUCK)
    data = bag_to_dataset(bag, 0.01)
    # grid states at 50 and 60 ms have no puck state: transitions 40->50, 50->60, 60->70 ms are dropped
    assert data.metadata["counts"]["dropped_no_puck_state"] == 3
    assert np.allclose(data.extras["timestamps"] - T0 / 1e9, [0.0, 0.01, 0.02, 0.03, 0.07, 0.08])
    assert data.timeouts.tolist() == [False, False, False, True, False, True]
    for k, t in ((1, 0.01), (2, 0.02), (3, 0.03)):  # between poses that both have central differences
        assert np.allclose(data.observations[k, 14:], _puck_expected(t), atol=1e-5)
        assert np.array_equal(data.observations[k, :14], _expected_state(int(round(t * 1000))))


def test_puck_velocities_do_not_cross_episodes(tmp_path):
    """The simulator resets the puck and restarts its clock: each episode's poses are differenced apart."""
    stamps = T0 + 1_000_000 * np.arange(30)
    first = control_log(n_states=30) + _puck_log(stamps)
    later = 100_000_000
    second = [(t, log + later, m) for t, log, m in control_log(n_states=30)]
    for _, log, msg in _puck_log(stamps):
        msg.pose.position.x += 0.1  # the puck starts elsewhere; same stamps after the clock restart
        second.append((PUCK, log + later, msg))
    events = [(EPISODES, T0, episode("start", 0)), (EPISODES, T0 + 50_000_000, episode("end", 0)),
              (EPISODES, T0 + later, episode("start", 1))]
    data = bag_to_dataset(write_bag(tmp_path / "bag", first + second + events, {**WITH_PUCK, **WITH_EPISODES}),
                          0.01)
    assert data.extras["episodes"].tolist() == [0, 0, 1, 1]
    shifted = _puck_expected(0.01) + np.eye(13)[0] * 0.1
    assert np.allclose(data.observations[1, 14:], _puck_expected(0.01), atol=1e-9)
    assert np.allclose(data.observations[3, 14:], shifted, atol=1e-9)


def test_puck_topic_absent_empty_ignored_or_bad(tmp_path):
    stamps = T0 + 1_000_000 * np.arange(30)
    states = control_log(n_states=30)
    empty = write_bag(tmp_path / "empty", states, WITH_PUCK)  # a logger subscribed, nothing was published
    data = bag_to_dataset(empty, 0.01)
    assert data.metadata["state_layout"] == "joint_state_v1" and data.observations.shape[1] == 14
    with pytest.raises(BagError, match=r"topic /puck/pose has no messages"):
        bag_to_dataset(empty, 0.01, puck_topic=PUCK)
    full = write_bag(tmp_path / "full", states + _puck_log(stamps), WITH_PUCK)
    assert bag_to_dataset(full, 0.01, puck_topic="").metadata["state_layout"] == "joint_state_v1"
    with pytest.raises(BagError, match=r"topic /mocap/puck is missing"):
        bag_to_dataset(full, 0.01, puck_topic="/mocap/puck")
    wrong = write_bag(tmp_path / "wrong", states, {**BASIC, PUCK: TYPES[COMMANDS]})
    with pytest.raises(BagError, match=r"topic /puck/pose has message type std_msgs/msg/Float64MultiArray, "
                                       r"expected geometry_msgs/msg/PoseStamped"):
        bag_to_dataset(wrong, 0.01)
    poses = _puck_log(stamps)
    poses[5][2].header.stamp.sec -= 1
    backwards = bag_to_dataset(write_bag(tmp_path / "backwards", states + poses, WITH_PUCK), 0.01)
    assert backwards.metadata["counts"]["dropped_unordered_puck_poses"] == 1
    assert np.isfinite(backwards.observations).all()
    poses = _puck_log(stamps)
    poses[12][2].pose.orientation.w = float("nan")
    data = bag_to_dataset(write_bag(tmp_path / "nan", states + poses, WITH_PUCK), 0.01)
    assert data.metadata["counts"]["dropped_nonfinite_puck_poses"] == 1 and np.isfinite(data.observations).all()


def test_images_ride_with_the_transitions_whose_state_they_precede(tmp_path):
    """Images at 40 Hz, each filled with its own number: a transition takes the newest image stamped at or before
    its state; before the first image there is none (dropped, and the trajectory is cut there); a repeated stamp
    counts once; a wrong encoding is refused naming the message."""
    stamps = T0 + 5_000_000 + 25_000_000 * np.arange(4)  # 5, 30, 55, 80 ms
    frames = [(CAMERA, int(t) + 100, image(int(t), np.full((6, 8, 3), k, dtype=np.uint8)))
              for k, t in enumerate(stamps)]
    frames.append((CAMERA, int(stamps[1]) + 200, image(int(stamps[1]), np.full((6, 8, 3), 99, dtype=np.uint8))))
    types = {**BASIC, CAMERA: TYPES[CAMERA]}
    data = bag_to_dataset(write_bag(tmp_path / "bag", control_log(n_states=100) + frames, types), 0.01,
                          image_topic=CAMERA)
    counts = data.metadata["counts"]
    assert counts["image_messages"] == 5 and counts["dropped_repeated_images"] == 1 and counts["dropped_no_image"] == 1
    assert np.allclose(data.extras["timestamps"] - T0 / 1e9, 0.01 * np.arange(1, 9))
    assert data.extras["images"].shape == (8, 6, 8, 3) and data.extras["images"].dtype == np.uint8
    assert data.extras["images"][:, 0, 0, 0].tolist() == [0, 0, 1, 1, 1, 2, 2, 3]  # 10-20 ms: #0, 30-50: #1, ...
    assert np.allclose(data.extras["image_ages"], [0.005, 0.015, 0.0, 0.01, 0.02, 0.005, 0.015, 0.0])
    assert data.metadata["source"]["image_topic"] == CAMERA
    assert len(bag_to_dataset(write_bag(tmp_path / "old", control_log(n_states=100) + frames, types), 0.01,
                              image_topic=CAMERA, max_image_age=0.012)) == 5
    grey = [(CAMERA, T0, image(T0, np.zeros((6, 8, 3), dtype=np.uint8), encoding="mono8"))]
    with pytest.raises(BagError, match="message #0.*rgb8"):
        bag_to_dataset(write_bag(tmp_path / "grey", control_log(n_states=100) + grey, types), 0.01,
                       image_topic=CAMERA)
