"""Scenario files: the built-in city loads; every mistake is named with file and key path."""

import numpy as np
import pytest

from rfhunt.errors import ConfigError
from rfhunt.geo import distance_m, from_enu, route_position, to_enu
from sensors.sim.scenario import load_scenario

MINIMAL = """
[area]
center_lat = 22.5
center_lon = 114.0
[[sensors]]
id = "s1"
lat = 22.5
lon = 114.0
[[emitters]]
id = "c1"
type = "gsm_cell"
lat = 22.51
lon = 114.01
power_dbm = 43
arfcn = 20
"""


PHONES = """
[[emitters]]
id = "mall"
type = "phones"
lat = 22.501
lon = 114.002
power_dbm = 33
arfcns = [10, 11]
count = 800
radius_m = 150
erlang = 0.03
night_factor = 0.05
moving = 0.2
speed_mps = 12
power_min_dbm = 5
"""

GOIP = """
[[emitters]]
id = "box"
type = "goip"
lat = 22.502
lon = 114.003
power_dbm = 28
arfcns = [20, 20, 33, 33]
activity = 0.7
call_mean_s = 120
"""


def write(tmp_path, text):
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_default_city_has_what_the_demo_needs():
    sc = load_scenario()
    types = [e.type for e in sc.emitters]
    assert len(sc.sensors) >= 4 and sum(s.mobile for s in sc.sensors) >= 1
    for t in ("gsm_cell", "fake_bts", "fm", "goip"):
        assert t in types
    assert {(e.mcc, e.mnc) for e in sc.emitters if e.type == "gsm_cell"} == {(460, 0), (460, 1)}
    assert any(e.type == "fake_bts" and e.mobile for e in sc.emitters)
    assert any(e.type == "fm" and not e.licensed for e in sc.emitters)


def test_minimal(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL))
    assert sc.emitters[0].carrier_freqs_hz()[0] == pytest.approx(939e6)
    assert sc.emitters[0].kind == "gsm_downlink"


@pytest.mark.parametrize("mutation, words", [
    (MINIMAL.replace("arfcn = 20", "arfcn = 20\ncolour = 'red'"), "emitters[0]: unknown key 'colour'"),
    (MINIMAL.replace("arfcn = 20", "arfcn = 300"), "emitters[0].arfcn: 300 is not a GSM900 or DCS1800 ARFCN"),
    (MINIMAL.replace("arfcn = 20", "arfcn = 960"), "not a downlink channel"),
    (MINIMAL.replace('type = "gsm_cell"', 'type = "tv"'), "unknown emitter type 'tv'"),
    (MINIMAL.replace("power_dbm = 43", "power_dbm = 'high'"), "emitters[0].power_dbm: must be a number"),
    (MINIMAL.replace("lat = 22.5\nlon", "lat = 122.5\nlon"), "sensors[0].lat"),
    (MINIMAL.replace("[area]", "[area]\nzoom = 3"), "area: unknown key 'zoom'"),
    (MINIMAL + "\n[[sensors]]\nid = 's1'\nlat = 1.0\nlon = 1.0\n", "duplicate sensor id 's1'"),
    (MINIMAL + "\n[weather]\nrain = true\n", "unknown key 'weather'"),
    (MINIMAL.replace("[area]", "[area"), "not valid TOML"),
    (MINIMAL + '\n[[emitters]]\nid = "f"\ntype = "fm"\nlat = 1.0\nlon = 1.0\npower_dbm = 60\nfreq_hz = 98e6\n'
               'rds_pi = "XYZ"\nrds_ps = "A"\n', "rds_pi: 'XYZ' is not hexadecimal"),
    (MINIMAL + '\n[[emitters]]\nid = "g"\ntype = "goip"\nlat = 1.0\nlon = 1.0\npower_dbm = 30\narfcns = [1, 2]\n'
               'channels = 3\n', "3 channels but 2 ARFCNs"),
    (MINIMAL + '\n[[sensors]]\nid = "car"\nroute = [[22.5, 114.0]]\nspeed_mps = 5\n', "needs at least two points"),
    (MINIMAL + PHONES.replace("erlang = 0.03", "erlang = 2.0"), "emitters[1].erlang: 2.0 is outside [0, 1]"),
    (MINIMAL + PHONES.replace("count = 800", "count = 800\nchannels = 4"), "emitters[1]: unknown key 'channels'"),
    (MINIMAL + PHONES.replace("power_min_dbm = 5", "power_min_dbm = 40"), "power_min_dbm: 40.0 is above power_dbm"),
    (MINIMAL + PHONES.replace("arfcns = [10, 11]", "arfcns = []"), "emitters[1].arfcns: must be a non-empty list"),
    (MINIMAL + GOIP + "start_s = 100\nstop_s = 50\n", "emitters[1].stop_s: 50.0 is not after start_s 100.0"),
])
def test_mistakes_are_named(tmp_path, mutation, words):
    p = write(tmp_path, mutation)
    with pytest.raises(ConfigError) as ei:
        load_scenario(p)
    assert str(p) in str(ei.value)
    assert words in str(ei.value)


def test_phone_crowd_and_goip_keys(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL + PHONES + GOIP + "start_s = 600\nstop_s = 4200\n"))
    mall, box = sc.emitters[1], sc.emitters[2]
    assert (mall.type, mall.kind, mall.count, mall.radius_m, mall.erlang) == ("phones", "gsm_uplink", 800, 150.0, 0.03)
    assert (mall.night_factor, mall.moving, mall.speed_mps, mall.power_min_dbm) == (0.05, 0.2, 12.0, 5.0)
    assert mall.carrier_freqs_hz() == pytest.approx([892e6, 892.2e6])
    assert (box.channels, box.start_s, box.stop_s) == (4, 600.0, 4200.0)
    assert not box.on_air(300.0) and box.on_air(700.0) and not box.on_air(4300.0)
    # the IQ-level world leaves phone crowds to the observation-level simulator
    from sensors.sim.world import World

    world = World(sc)
    ids = {c.emitter_id for c in world.carriers_at("s1", 1000.0)}
    assert "box" in ids and "mall" not in ids


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario("/nonexistent/x.toml")


def test_fake_bts_lac_cycles():
    sc = load_scenario()
    fbs = next(e for e in sc.emitters if e.type == "fake_bts" and e.lac_change_s)
    lacs = {fbs.lac_at(t) for t in np.arange(0, 600, 10)}
    assert len(lacs) == int(np.ceil(600 / fbs.lac_change_s))
    assert fbs.lac_at(0) == fbs.lac_at(fbs.lac_change_s - 1)


def test_geo_round_trip_and_route():
    e, n = to_enu(22.55, 114.07, 22.5431, 114.0579)
    lat, lon = from_enu(e, n, 22.5431, 114.0579)
    assert (lat, lon) == pytest.approx((22.55, 114.07), abs=1e-9)
    assert float(np.hypot(e, n)) == pytest.approx(float(distance_m(22.55, 114.07, 22.5431, 114.0579)), rel=1e-3)
    route = [[22.54, 114.05], [22.54, 114.06]]
    length = float(np.hypot(*to_enu(22.54, 114.06, 22.54, 114.05)))  # the plane route_position drives in
    half = route_position(route, 10.0, length / 20, loop=False)
    assert half == pytest.approx((22.54, 114.055), abs=1e-6)
    assert route_position(route, 10.0, 1e6, loop=False) == pytest.approx((22.54, 114.06))
    # a loop comes back to the start after twice the length
    assert route_position(route, 10.0, 2 * length / 10, loop=True) == pytest.approx((22.54, 114.05), abs=1e-6)
