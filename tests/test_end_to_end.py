"""A small city end to end: simulated sensors -> ZeroMQ -> collector on a SQLite file -> map.

Every emitter must be detected, located within the stated error and given the right verdict.
"""

import json

import pytest

from collector.store import Store
from rfhunt.demo import run_demo

SCENARIO = """
[scenario]
name = "test town"
seed = 42
duration_s = 200

[area]
center_lat = 30.0
center_lon = 120.0

[propagation]
path_loss_exponent = 3.0
shadowing_db = 3.0

[[sensors]]
id = "n"
lat = 30.012
lon = 120.0
receiver = { lo_ppm = 20.0 }
[[sensors]]
id = "e"
lat = 30.0
lon = 120.014
[[sensors]]
id = "s"
lat = 29.988
lon = 120.0
receiver = { lo_ppm = -8.0 }
[[sensors]]
id = "w"
lat = 30.0
lon = 119.986
[[sensors]]
id = "car"
speed_mps = 12
route = [[29.995, 119.994], [29.995, 120.006], [30.005, 120.006], [30.005, 119.994]]

[[emitters]]
id = "cell-a"
type = "gsm_cell"
lat = 30.004
lon = 119.997
power_dbm = 44
arfcn = 20
bsic = 11
[[emitters]]
id = "cell-b"
type = "gsm_cell"
lat = 29.997
lon = 120.005
power_dbm = 44
arfcn = 105
mnc = 1
bsic = 30
[[emitters]]
id = "fake"
type = "fake_bts"
lat = 30.001
lon = 120.002
power_dbm = 40
arfcn = 60
lac_change_s = 60
cro_db = 60
t3212_s = 360
ppm = 2.0
[[emitters]]
id = "radio"
type = "fm"
lat = 30.006
lon = 120.004
power_dbm = 60
freq_hz = 99.5e6
rds_pi = "C123"
rds_ps = "TOWN FM"
[[emitters]]
id = "black"
type = "fm"
lat = 29.998
lon = 119.996
power_dbm = 42
freq_hz = 95.3e6
licensed = false
stereo = false
deviation_khz = 100
[[emitters]]
id = "goip"
type = "goip"
lat = 30.002
lon = 119.999
power_dbm = 33
arfcns = [10, 30, 50, 70, 90]
activity = 1.0
call_mean_s = 1000
"""

EXPECTED_VERDICT = {"cell-a": "known", "cell-b": "known", "fake": "rogue", "radio": "licensed",
                    "black": "unlicensed", "goip": "goip_suspect"}


@pytest.mark.slow
def test_small_city_end_to_end(tmp_path):
    scen = tmp_path / "town.toml"
    scen.write_text(SCENARIO)
    out = tmp_path / "out"
    summary = run_demo(out, str(scen), scan_interval_s=20.0, quiet=True)
    assert summary["errors"] == []
    on_disk = json.loads((out / "summary.json").read_text())
    assert set(on_disk) >= {"db_url", "wall_s", "emitters"}
    rows = {r["truth_id"]: r for r in on_disk["emitters"]}
    assert on_disk["false_emitters"] == []  # nothing reported that is not there
    assert set(rows) == set(EXPECTED_VERDICT)
    for tid, verdict in EXPECTED_VERDICT.items():
        r = rows[tid]
        assert r["detected"], tid
        assert r["verdict"] == verdict, (tid, r)
        # inside a 2.6 km sensor square with 3 dB shadowing: well under 400 m
        assert r["error_m"] is not None and r["error_m"] < 400.0, (tid, r)
        if r["kind"] == "gsm_downlink":  # the identity the cell broadcast, decoded by the sensors
            assert r["identity_ok"], (tid, r)
            assert r["verdict_ok"], (tid, r)   # the fake rogue, the real cells neither suspicious nor rogue
    # the fake base station raised one alert, with the indicators an SMS blaster shows at IQ level
    (alert,) = on_disk["alerts"]
    assert alert["arfcn"] == 60 and {"clock_offset_strong", "reselection_pull_strong", "short_t3212_strong"} <= set(
        alert["indicators"])
    # the collector asked its sensors for evidence of the black radio and the fake, once each
    asked = {r["emitter_id"]: r["reason"] for r in on_disk["evidence_requests"]}
    assert asked == {rows["black"]["emitter_id"]: "verdict unlicensed", rows["fake"]["emitter_id"]: "verdict rogue"}
    assert {e["emitter_id"] for e in on_disk["evidence"]} <= set(asked)
    # the database is a real SQLite file the map and any later session can read
    store = Store.open(summary["db_url"])
    try:
        dets = store.detections()
        sensors = {s.sensor_id for s in store.sensors()}
        assert sensors == {"n", "e", "s", "w", "car"}
        assert len(store.sensor_tracks()["car"]) > 5
        # each (sensor, seq) stored once although sensors resend what is not yet acknowledged
        assert len({(d.sensor_id, d.seq) for d in dets}) == len(dets)
    finally:
        store.close()
    html = (out / "map.html").read_text()
    assert "L.polygon" in html and "L.control.layers" in html
