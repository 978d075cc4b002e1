"""Automatic domain randomization widens the range of a parameter the policy handles, not of one it cannot."""
import numpy as np
import pytest

from sim2real_core.randomization.adr import ADRConfig, AutomaticDomainRandomization, Probe
from sim2real_core.sim.parameters import ParameterSpace


def space(*names: str) -> ParameterSpace:
    return ParameterSpace.from_list([{"name": name, "nominal": 1.0, "bounds": [0.0, 2.0], "kind": "action_noise_std"}
                                     for name in names])


SPACE = space("handled", "partly")


def run(adr: AutomaticDomainRandomization, succeeds, episodes: int = 6000) -> None:
    """Episodes drawn by ADR whose success (0 or 1, 95 % where `succeeds`) it records."""
    rng = np.random.default_rng(1)
    for _ in range(episodes):
        values, probe = adr.sample()
        assert np.all(values >= adr.low) and np.all(values <= adr.high)
        adr.record(probe, float(succeeds(values) and rng.random() < 0.95))


def test_adr_widens_what_the_policy_handles_as_far_as_it_handles_it():
    adr = AutomaticDomainRandomization(SPACE, ADRConfig(step=0.05, buffer_size=10), seed=0)
    run(adr, lambda values: abs(values[1] - 1.0) <= 0.3)  # `handled` never matters, `partly` within 0.3 of nominal
    widths = adr.widths()
    assert widths["handled"] == pytest.approx(1.0)  # the whole box [0, 2]
    assert 0.2 <= widths["partly"] <= 0.4  # +-0.3 of nominal is 0.3 of the box, give or take a step
    dist = adr.distribution()
    assert dist.family == "uniform" and dist.method == "adr"
    assert np.allclose(dist.low, adr.low) and np.allclose(dist.high, adr.high)
    assert {d["parameter"] for d in adr.decisions} == {"handled", "partly"}


def test_adr_does_not_widen_what_the_policy_cannot_handle():
    adr = AutomaticDomainRandomization(space("not_handled"), ADRConfig(step=0.05, buffer_size=10), seed=0)
    run(adr, lambda values: abs(values[0] - 1.0) <= 0.02)  # fails as soon as it leaves nominal by a step
    assert adr.widths()["not_handled"] <= 0.1  # at most one step out at each edge, then back
    assert any(d["value"] == 1.0 for d in adr.decisions)  # it tried an edge and came back to nominal


def test_an_edge_moves_only_on_a_full_buffer_and_stays_within_bounds():
    adr = AutomaticDomainRandomization(SPACE, ADRConfig(step=0.5, buffer_size=3))
    for _ in range(2):
        adr.record(Probe(0, 1), 1.0)
    assert adr.high[0] == 1.0
    for _ in range(3 * 5):
        adr.record(Probe(0, 1), 1.0)
    assert adr.high[0] == 2.0  # the bound, not beyond
    for _ in range(3 * 5):
        adr.record(Probe(0, 1), 0.0)
    assert adr.high[0] == 1.0  # back to nominal, not below it
    adr.record(None, 0.0)  # an episode that probed no edge changes nothing
    with pytest.raises(ValueError, match="finite"):
        adr.record(Probe(0, 0), float("nan"))
    with pytest.raises(ValueError, match="low_threshold"):
        ADRConfig(low_threshold=0.9, high_threshold=0.8)
