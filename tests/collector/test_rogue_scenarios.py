"""Scenario-level rogue-cell tests: randomized cities (observation-level simulation) through
the real collector; a legitimate-only network, and fake base stations of each kind.

The figures over hundreds of cities are in bench/RESULTS.md (bench/bench_rogue.py); these
cities are small (2 km radius, a 3-hour history) to keep the suite quick.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from sensors.sim.random_city import FAKE_KINDS, City, random_city
from sensors.sim.rogue_eval import evaluate_city

HISTORY_S = 3 * 3600.0
TEST_S = 300.0


def small_city(seed: int, kinds: tuple[str, ...]) -> City:
    return random_city(seed, kinds, history_s=HISTORY_S, test_s=TEST_S, radius_m=2000.0)


def run(city: City):
    logging.disable(logging.WARNING)
    try:
        return {r.truth_id: r for r in evaluate_city(city, history_interval_s=1800.0, relocate_every_s=120.0,
                                                     baseline_min_span_s=2 * 3600.0, seed=1)}
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.slow
def test_a_legitimate_network_raises_no_alarm():
    city = small_city(11, ())
    out = run(city)
    legit = [r for r in out.values() if r.detected]
    assert len(legit) >= 12
    assert [r.truth_id for r in legit if r.first_alarm_s is not None] == []
    # the learned baseline and the operators' lists make most cells "known"; none is rogue
    verdicts = [v for r in legit for v in r.final_verdicts]
    assert "rogue" not in verdicts and "suspicious" not in verdicts
    assert verdicts.count("known") >= 0.9 * len(verdicts)


@pytest.mark.slow
def test_each_kind_of_fake_is_rogue_within_a_minute():
    city = small_city(3, FAKE_KINDS)
    out = run(city)
    assert sorted(city.fakes.values()) == sorted(FAKE_KINDS)
    for fid, kind in city.fakes.items():
        fake = out[fid]
        assert fake.detected and fake.time_to_rogue_s is not None and fake.time_to_rogue_s <= 60.0, fake
        assert fake.final_verdicts and set(fake.final_verdicts) == {"rogue"}, fake
        expect = {"lac_cycling": {"identity_change", "identity_cycling"},
                  "clone": {"identity_other_channel", "identity_on_two_channels", "identity_elsewhere"}}.get(kind)
        assert not expect or expect & set(fake.indicators), (kind, fake.indicators)
    assert [r.truth_id for r in out.values() if r.kind in ("legit", "new") and r.first_alarm_s is not None] == []


@pytest.mark.slow
def test_a_disciplined_clone_is_still_caught():
    """A clone with a GPS-locked clock, no reselection offset, the victim's T3212 and
    neighbour list: its identity on a second ARFCN gives it away."""
    city = small_city(4, ("clone",))
    (fid,) = city.fakes
    sc = city.scenario
    fake = next(e for e in sc.emitters if e.id == fid)
    victim = next(e for e in sc.emitters if e.type == "gsm_cell" and e.cid == fake.cid and e.lac == fake.lac)
    tame = replace(fake, ppm=0.01, cro_db=0, t3212_s=victim.t3212_s, neighbours=victim.neighbours)
    city = replace(city, scenario=replace(sc, emitters=tuple(tame if e.id == fid else e for e in sc.emitters)))
    out = run(city)
    r = out[fid]
    assert r.time_to_rogue_s is not None and r.time_to_rogue_s <= 60.0, r
    assert {"identity_other_channel", "identity_on_two_channels"} <= set(r.indicators)
    assert not set(r.indicators) & {"clock_offset", "clock_offset_strong", "reselection_pull",
                                    "reselection_pull_strong", "short_t3212", "short_t3212_strong"}


def test_fake_kinds_are_the_four_of_the_issue():
    assert FAKE_KINDS == ("fixed", "car", "lac_cycling", "clone")
