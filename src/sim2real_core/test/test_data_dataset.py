"""Dataset files: .npz round trip without pickles, D4RL/DROPO .npy directories, and validation errors."""
import json

import numpy as np
import pytest

from sim2real_core.data.dataset import DatasetError, TransitionDataset, load_dataset, save_dataset


def _arrays(n=5, s=4, a=2):
    rng = np.random.default_rng(0)
    return {"observations": rng.normal(size=(n, s)), "next_observations": rng.normal(size=(n, s)),
            "actions": rng.normal(size=(n, a)), "terminals": np.eye(n)[-1].astype(bool), "timeouts": np.zeros(n, bool)}


def test_npz_round_trip_is_exact_and_loads_without_pickles(tmp_path):
    arrays = _arrays()
    data = TransitionDataset(**arrays, metadata={"robot": "fr3", "counts": {"x": 1}},
                             extras={"timestamps": np.arange(5) * 0.01, "episodes": np.zeros(5, int)})
    path = save_dataset(tmp_path / "d.npz", data)
    with np.load(path, allow_pickle=False) as raw:
        assert set(raw.files) >= {"observations", "actions", "next_observations", "terminals", "timeouts", "metadata"}
        assert json.loads(str(raw["metadata"]))["robot"] == "fr3"
    back = load_dataset(path)
    for name, values in arrays.items():
        assert np.array_equal(getattr(back, name), values)
    assert np.array_equal(back.extras["timestamps"], np.arange(5) * 0.01)
    assert back.metadata["counts"] == {"x": 1} and back.metadata["format"] == "sim2real.transitions"
    assert back.episode_ends.tolist() == [4]


def test_d4rl_dropo_npy_directory_without_timeouts(tmp_path):
    arrays = _arrays(n=6)
    arrays["terminals"] = arrays["terminals"].astype(np.float32)  # DROPO stores 0/1 floats
    del arrays["timeouts"]
    arrays["rewards"] = np.ones(6)
    for name, values in arrays.items():
        np.save(tmp_path / f"{name}.npy", values)
    data = load_dataset(tmp_path)
    assert len(data) == 6 and data.terminals.dtype == bool and data.terminals.tolist() == [False] * 5 + [True]
    assert not data.timeouts.any() and "absent" in data.metadata["timeouts"]
    assert np.array_equal(data.extras["rewards"], np.ones(6))
    assert data.metadata["source_path"] == str(tmp_path)


def test_one_dimensional_actions_become_a_column(tmp_path):
    arrays = _arrays()
    arrays["actions"] = np.arange(5.0)
    np.savez(tmp_path / "d.npz", **arrays)
    assert load_dataset(tmp_path / "d.npz").actions.shape == (5, 1)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(next_observations=a["next_observations"][:, :3]), r"next_observations has shape \(5, 3\)"),
    (lambda a: a.update(actions=a["actions"][:4]), "actions has 4 rows, observations 5"),
    (lambda a: a["observations"].__setitem__((3, 1), np.nan), "observations row 3 column 1 is nan"),
    (lambda a: a.update(terminals=np.array([0, 0, 2, 0, 1])), "terminals row 2 is 2, expected 0 or 1"),
    (lambda a: a.update(timeouts=np.zeros(4)), r"timeouts has shape \(4,\)"),
    (lambda a: a.pop("actions"), r"missing arrays \['actions'\]"),
    (lambda a: [a.update({k: v[:0]}) for k, v in list(a.items())], "dataset is empty"),
])
def test_invalid_datasets_name_file_and_array(tmp_path, change, message):
    arrays = _arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=f"{path}: .*{message}" if "missing" not in message else message):
        load_dataset(path)


def test_pickled_arrays_and_unreadable_files_are_refused(tmp_path):
    arrays = _arrays()
    arrays["observations"] = np.array([object()] * 5, dtype=object)
    np.savez(tmp_path / "pickle.npz", **arrays)
    with pytest.raises(DatasetError, match="pickle.npz: cannot read as .npz without pickles"):
        load_dataset(tmp_path / "pickle.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="junk.npz"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match="no such dataset"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no .npy files"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="end in .npz"):
        save_dataset(tmp_path / "d.txt", TransitionDataset(**_arrays()))


def test_the_dropo_repositorys_file_names_load(tmp_path):
    """datasets/hopper10000/ of github.com/gabrieletiboni/dropo: hoppermass_n10000_{observations,
    nextobservations,actions}.npy, and no terminals file."""
    arrays = _arrays(n=6)
    names = {"observations": "observations", "next_observations": "nextobservations", "actions": "actions"}
    for name, suffix in names.items():
        np.save(tmp_path / f"hoppermass_n6_{suffix}.npy", arrays[name])
    data = load_dataset(tmp_path)
    for name in names:
        assert np.array_equal(getattr(data, name), arrays[name])
    assert not data.terminals.any() and "absent" in data.metadata["terminals"]
    np.save(tmp_path / "hopper_n6_terminals.npy", arrays["terminals"])  # a second dataset's file beside it
    with pytest.raises(DatasetError, match=r"several datasets \(\['hopper_n6', 'hoppermass_n6'\]\)"):
        load_dataset(tmp_path)
    np.save(tmp_path / "observations.npy", arrays["observations"])
    with pytest.raises(DatasetError, match="hoppermass_n6_observations.npy and observations.npy both hold"):
        load_dataset(tmp_path)


def test_d4rl_hdf5_files_load_with_or_without_next_observations(tmp_path):
    import h5py

    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
    timeouts = np.zeros(10, bool)
    timeouts[4] = True  # episode 1 is rows 0-4 (row 4 has no recorded next state), episode 2 rows 5-9
    with h5py.File(tmp_path / "with.hdf5", "w") as f:
        f["observations"], f["actions"], f["next_observations"] = obs, actions, obs + 1
        f["terminals"], f["timeouts"], f["rewards"] = np.zeros(10, bool), timeouts, np.zeros(10)
        f["infos/qpos"] = np.zeros((10, 4))  # groups are skipped
    full = load_dataset(tmp_path / "with.hdf5")
    assert len(full) == 10 and np.array_equal(full.next_observations, obs + 1) and full.timeouts[4]
    with h5py.File(tmp_path / "without.hdf5", "w") as f:
        f["observations"], f["actions"] = obs, actions
        f["terminals"], f["timeouts"] = np.zeros(10, bool), timeouts
    derived = load_dataset(tmp_path / "without.hdf5")
    kept = [0, 1, 2, 3, 5, 6, 7, 8]  # not the timeout row, not the last row
    assert np.array_equal(derived.observations, obs[kept]) and np.array_equal(derived.actions, actions[kept])
    assert np.array_equal(derived.next_observations, obs[[k + 1 for k in kept]])
    assert "2 rows without one dropped" in derived.metadata["next_observations"]
    (tmp_path / "bad.hdf5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="bad.hdf5: not a readable HDF5 file"):
        load_dataset(tmp_path / "bad.hdf5")
