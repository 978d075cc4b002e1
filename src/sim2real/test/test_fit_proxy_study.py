"""The proxy recovery study: data from the proxy, both families fitted, the report's tables."""
import numpy as np

from sim2real.studies.proxy_recovery import families, proxy_data, run_proxy_study, shipped_proxies
from sim2real_core.sim.reality import load_reality


def test_proxy_data_are_consecutive_episodes_of_the_proxy():
    data = proxy_data("fr3_mild", episodes=3, steps=20, seed=1)
    assert len(data) == 60 and data.ends.sum() == 3 and data.ends[19] and data.ends[-1]
    np.testing.assert_array_equal(data.observations[1:20], data.next_observations[:19])
    np.testing.assert_array_equal(data.previous_actions[1:20], data.actions[:19])
    assert not data.previous_actions[20].any()  # an episode starts after no command


def test_the_full_family_holds_the_classic_one_and_the_proxies_truth():
    spaces = families()
    assert set(spaces["classic"].names) < set(spaces["full"].names)
    assert {p.kind for p in spaces["full"]} >= {"dof_stribeck", "dof_drag", "command_latency", "encoder_offset"}
    for proxy in shipped_proxies():
        truth = load_reality(proxy)
        assert set(spaces["full"].names) <= set(truth.space.names)


def test_quick_study_fits_both_families_and_reports_them(tmp_path):
    results = run_proxy_study(tmp_path, ["fr3_mild"], ("sysid",), quick=True, progress=lambda _: None)
    entry = results["proxies"]["fr3_mild"]
    assert set(entry["fits"]) == {"sysid classic", "sysid full"}
    for family in ("classic", "full"):
        fit, nominal = entry["fits"][f"sysid {family}"], entry[f"nominal {family}"]
        # even a short fit predicts the held-out episodes far better than the nominal model
        assert fit["held_out_error"][50] < nominal["held_out_error"][50] / 2
    text = (tmp_path / "proxy_study.md").read_text()
    assert "| fr3_mild | sysid full | 52 |" in text and "nominal (classic family)" in text
