"""The simulated world's GSM additions for rogue cells, the observation-level simulator and
the randomized cities."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.gsm.bcch import bcch_payload  # noqa: F401  (the world's BCCH builder must import)
from dsp.gsm.si import parse_l2_frame
from rfhunt.errors import ConfigError
from rfhunt.records import Detection, Heartbeat, encode
from sensors.scan import CELL_FEATURES
from sensors.sim.observe import ObservationModel, Observer
from sensors.sim.random_city import FAKE_KINDS, random_city
from sensors.sim.scenario import parse_scenario
from sensors.sim.world import World

BASE = {
    "area": {"center_lat": 22.54, "center_lon": 114.05},
    "sensors": [{"id": "s1", "lat": 22.55, "lon": 114.05}, {"id": "s2", "lat": 22.53, "lon": 114.05}],
    "emitters": [
        {"id": "c1", "type": "gsm_cell", "lat": 22.54, "lon": 114.04, "power_dbm": 45, "arfcn": 12, "lac": 9510,
         "cid": 20311, "bsic": 21, "t3212_s": 7200},
        {"id": "c2", "type": "gsm_cell", "lat": 22.54, "lon": 114.06, "power_dbm": 45, "arfcn": 25, "lac": 9510,
         "cid": 20312, "bsic": 34},
        {"id": "clone", "type": "fake_bts", "lat": 22.545, "lon": 114.05, "power_dbm": 35, "arfcn": 63,
         "clone_of": "c2", "t3212_s": 360, "neighbours": [12], "start_s": 100, "stop_s": 400, "cro_db": 60},
    ],
}


def scenario(**changes):
    data = {**BASE, "emitters": [dict(e) for e in BASE["emitters"]]}
    for k, v in changes.items():
        data["emitters"][2][k] = v
    return parse_scenario(data, "test.toml")


def test_new_gsm_keys():
    sc = scenario()
    c1, c2, clone = sc.emitters
    assert (clone.mcc, clone.mnc, clone.lac, clone.cid, clone.bsic) == (460, 0, 9510, 20312, 34)
    assert clone.t3212_s == 360 and clone.neighbours == (12,) and c1.t3212_s == 7200 and c2.t3212_s == 3600
    assert not clone.on_air(99.9) and clone.on_air(100.0) and not clone.on_air(400.0)
    assert scenario(bsic=5).emitters[2].bsic == 5      # a clone may keep its own BSIC


@pytest.mark.parametrize("change, words", [
    ({"t3212_s": 100}, "emitters[2].t3212_s: 100 is not a multiple of 360"),
    ({"stop_s": 50}, "emitters[2].stop_s: 50.0 is not after start_s 100.0"),
    ({"clone_of": "nobody"}, "emitters[2].clone_of: no gsm_cell 'nobody'"),
    ({"neighbours": [12, 300]}, "emitters[2].neighbours: 300 is not a GSM900"),
    ({"neighbours": "12"}, "emitters[2].neighbours: must be a list"),
])
def test_mistakes_in_the_new_keys_are_named(change, words):
    with pytest.raises(ConfigError) as info:
        scenario(**change)
    assert "test.toml" in str(info.value) and words in str(info.value)


def _si(world, em, t, kind):
    return parse_l2_frame(world.system_information(em, t)[kind]).to_dict()


def test_the_world_broadcasts_them():
    world = World(scenario())
    c1, c2, clone = world.scenario.emitters
    assert _si(world, clone, 200.0, "SI3")["control_channel"]["t3212_s"] == 360
    assert _si(world, c1, 0.0, "SI3")["control_channel"]["t3212_s"] == 7200
    assert _si(world, clone, 200.0, "SI2")["neighbours"]["arfcns"] == [12]
    assert _si(world, c1, 0.0, "SI2")["neighbours"]["arfcns"] == [25]   # the operator's other cell
    on = {c.emitter_id for c in world.carriers_at("s1", 200.0)}
    off = {c.emitter_id for c in world.carriers_at("s1", 50.0)}
    assert on == {"c1", "c2", "clone"} and off == {"c1", "c2"}
    fs, n = 2.4e6, 16384

    def band_power(t_s: float) -> float:   # ARFCN 63 (947.6 MHz) sits 400 kHz below the tuning
        x = world.capture("s1", t_s, 948.0e6, fs, n, 30.0, np.random.default_rng(1))
        spec = np.abs(np.fft.fftshift(np.fft.fft(x))) ** 2
        f = np.fft.fftshift(np.fft.fftfreq(n, 1 / fs))
        return float(spec[np.abs(f + 400e3) < 90e3].sum())

    assert band_power(200.0) > 10 * band_power(50.0)   # the clone transmits only while on air


def test_observer_publishes_what_a_decode_scan_does():
    world = World(scenario())
    obs = Observer(world, seed=3).run(0.0, 600.0, scan_interval_s=20.0, decode_every=1)
    dets = [o for o in obs if isinstance(o.record, Detection)]
    assert any(isinstance(o.record, Heartbeat) for o in obs)
    for o in obs:
        encode(o.record)                                # every record passes the wire checks
    decoded = [o for o in dets if o.record.features.get("decoded")]
    assert {o.truth_id for o in decoded} == {"c1", "c2", "clone"}
    clone = [o.record for o in decoded if o.truth_id == "clone"]
    assert all(100.0 <= r.t_utc - world.scenario.start_utc <= 400.0 for r in clone)
    extra = {"decoded", "bsic", "ppm", "freq_offset_hz", "n_frames", "si_types", "neighbours", "n_neighbours",
             "gain_db", "noise_dbm", "sensor_ppm"}
    for r in clone:
        f = r.features
        assert set(f) <= set(CELL_FEATURES) | extra
        assert f["bsic"] == 34 and f.get("mcc", "460") == "460" and f.get("mnc", "00") == "00"
        if "cid" in f:
            assert f["cid"] == 20312 and f["t3212_s"] == 360
        if "SI2" in f["si_types"]:
            assert f["neighbours"] == "12"
    # the cells of one decode pass share the sensor's LO error: ppm differences are the cells' own
    s1 = [o.record for o in decoded if o.record.sensor_id == "s1"]
    passes: dict[float, dict[str, float]] = {}
    for r in s1:
        passes.setdefault(r.features["sensor_ppm"], {})[
            next(o.truth_id for o in decoded if o.record is r)] = r.features["ppm"]
    diffs = [p["clone"] - p["c2"] for p in passes.values() if "clone" in p and "c2" in p]
    assert diffs and all(abs(d - (world.scenario.emitters[2].ppm - world.scenario.emitters[1].ppm)) < 0.2
                         for d in diffs)
    assert np.std([p["c2"] for p in passes.values() if "c2" in p]) > 1.0   # while the LO error wanders


def test_decoding_needs_snr():
    world = World(scenario())
    deaf = ObservationModel(noise_floor_dbm=-40.0)
    assert [o for o in Observer(world, deaf).run(0.0, 300.0) if isinstance(o.record, Detection)] == []


def test_random_cities_are_reproducible_and_honest():
    a = random_city(7, FAKE_KINDS)
    b = random_city(7, FAKE_KINDS)
    assert a.scenario == b.scenario and a.reference == b.reference
    fakes = {e.id: e for e in a.scenario.emitters if e.type == "fake_bts"}
    assert sorted(a.fakes.values()) == sorted(FAKE_KINDS) and set(fakes) == set(a.fakes)
    for fid, kind in a.fakes.items():
        f = fakes[fid]
        assert f.start_s >= a.history_s and f.stop_s > f.start_s
        assert (kind == "car") == f.mobile and (kind == "lac_cycling") == (f.lac_change_s > 0)
    clone = fakes[next(k for k, v in a.fakes.items() if v == "clone")]
    assert any((c.mcc, c.mnc, c.lac, c.cid) == (clone.mcc, clone.mnc, clone.lac, clone.cid)
               for c in a.scenario.emitters if c.type == "gsm_cell")
    legit = [e for e in a.scenario.emitters if e.type == "gsm_cell"]
    # neighbour lists are reciprocal
    by_arfcn = {c.arfcn: c for c in legit}
    assert all(c.arfcn in by_arfcn[n].neighbours for c in legit for n in c.neighbours)
    # the reference has gaps and no fake
    assert 0.6 * len(legit) < len(a.reference) <= len(legit)
    assert not {(r.mcc, r.mnc, r.lac, r.cid) for r in a.reference} & {
        (f.mcc, f.mnc, f.lac, f.cid) for f in fakes.values() if a.fakes[f.id] != "clone"}
    # over many cities, every trait comes in both flavours: some fakes are disciplined
    traits = {"gps_clock": set(), "no_cro": set(), "copied_neighbours": set()}
    for seed in range(40):
        for f in (e for e in random_city(seed, FAKE_KINDS).scenario.emitters if e.type == "fake_bts"):
            traits["gps_clock"].add(abs(f.ppm) < 0.1)
            traits["no_cro"].add(f.cro_db <= 10)
            traits["copied_neighbours"].add(bool(f.neighbours))
    assert all(v == {True, False} for v in traits.values())
