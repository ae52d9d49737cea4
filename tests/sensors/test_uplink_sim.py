"""Observation-level uplink simulator: traffic statistics and the records sensors publish."""

import collections

import numpy as np
import pytest

from rfhunt.records import decode, encode
from sensors.sim.scenario import EmitterSpec, Propagation, Scenario, SensorSpec
from sensors.sim.uplink_city import uplink_city
from sensors.sim.uplink_world import UplinkModel, UplinkObserver, UplinkTraffic, daily_rhythm, local_hour

LAT0, LON0 = 22.5431, 114.0579
MIDNIGHT_UTC = 20775 * 86400.0 - LON0 / 15 * 3600  # a local solar midnight at LON0


def scenario(emitters, hours=24.0, sensors=None):
    sensors = sensors or (SensorSpec("a", LAT0 + 0.004, LON0), SensorSpec("b", LAT0 - 0.004, LON0 - 0.004),
                          SensorSpec("c", LAT0 - 0.002, LON0 + 0.005))
    return Scenario(name="t", seed=7, start_utc=MIDNIGHT_UTC, duration_s=hours * 3600, center_lat=LAT0,
                    center_lon=LON0, radius_m=1000.0, propagation=Propagation(3.0, 6.0, 50.0),
                    sensors=tuple(sensors), emitters=tuple(emitters))


CROWD = EmitterSpec(id="crowd", type="phones", lat=LAT0, lon=LON0, power_dbm=33.0, arfcns=(10, 11, 12),
                    count=2000, radius_m=300.0, erlang=0.03, call_mean_s=100.0, night_factor=0.1)
GOIP = EmitterSpec(id="box", type="goip", lat=LAT0 + 0.001, lon=LON0, power_dbm=28.0, channels=8,
                   arfcns=(20, 20, 20, 20, 33, 33, 33, 33), activity=0.7, call_mean_s=120.0)


def test_daily_rhythm_profile():
    h = np.arange(24.0)
    r = daily_rhythm(h, 0.1)
    assert r.min() == pytest.approx(0.1) and r.max() == pytest.approx(1.0)
    assert r[3] == pytest.approx(0.1) and r[11] == pytest.approx(1.0)
    assert local_hour(MIDNIGHT_UTC, LON0) == pytest.approx(0.0, abs=1e-6)


def test_crowd_is_busy_by_day_and_quiet_at_night():
    tr = UplinkTraffic(scenario([CROWD]), seed=1)
    day = tr.concurrent("crowd", np.arange(10 * 3600, 17 * 3600, 60.0))
    night = tr.concurrent("crowd", np.arange(1 * 3600, 5 * 3600, 60.0))
    # busy hour: count * erlang = 60 calls at once; night a tenth of it
    assert day.mean() == pytest.approx(60, rel=0.15)
    assert night.mean() == pytest.approx(6, rel=0.35)
    # every call from its own spot inside the crowd's disk, at its own power-control level
    c = tr.calls
    assert np.hypot(c.east_m, c.north_m).max() <= 300.0 + 1e-6
    assert c.tx_dbm.min() >= 5.0 and c.tx_dbm.max() <= 33.0 and np.std(c.tx_dbm) > 6.0


def test_goip_duty_day_and_night():
    tr = UplinkTraffic(scenario([GOIP]), seed=2)
    t = np.arange(0, 24 * 3600, 30.0)
    busy = tr.concurrent("box", t)
    assert busy.mean() / 8 == pytest.approx(0.7, abs=0.08)
    night, day = busy[(t % 86400) < 5 * 3600], busy[((t % 86400) >= 9 * 3600) & ((t % 86400) < 18 * 3600)]
    assert night.mean() == pytest.approx(day.mean(), rel=0.15)
    c = tr.calls
    inside = (c.start_s > 0) & (c.end_s < 24 * 3600)  # not cut by the scenario's ends
    dur = (c.end_s - c.start_s)[inside]
    assert np.median(dur) == pytest.approx(120 * np.exp(-0.18), rel=0.15)  # log-normal, mean 120 s
    assert dur.min() >= 10.0
    # set-ups: every call plus failed attempts in the gaps
    assert tr.setups.t_s.size > len(c) * 1.05
    per_channel_h = tr.setups.t_s.size / 8 / 24
    assert 15 < per_channel_h < 40
    # one box: one place, one level (+-~1 dB per channel), links never doubled at once
    assert np.ptp(c.east_m) == 0 and np.std(c.tx_dbm) < 2.0
    mid = tr.active(43200.0, 43200.1)
    links = list(zip(c.arfcn[mid], c.timeslot[mid]))
    assert len(links) == len(set(links)) and set(c.arfcn) == {20, 33}


def test_observer_records_are_valid_and_the_box_is_one_level():
    obs = UplinkObserver(scenario([CROWD, GOIP], hours=0.5), seed=3).run(0.0, 1800.0)
    assert obs and all(o.record.kind == "gsm_uplink" for o in obs)
    for o in obs[:200]:
        assert decode(encode(o.record)) == o.record
    t = sorted({o.record.t_utc for o in obs})
    assert np.allclose(np.diff(t), 60.0)  # every sensor captures on the same schedule
    traffic = [o for o in obs if o.record.features["n_bursts"] > 0]
    access = [o for o in obs if o.record.features["n_access"] > 0]
    assert access and all(o.record.features["timeslot"] == 0 and "access_t_s" in o.record.features for o in access)
    assert all(0 < o.record.features["duty"] <= 1 for o in traffic)

    def spread(who):  # level spread of the links one sensor hears in one capture
        by = collections.defaultdict(list)
        for o in traffic:
            if o.truth_id == who:
                by[(o.record.sensor_id, o.record.t_utc)].append(o.record.power_dbm)
        return np.median([np.std(v) for v in by.values() if len(v) >= 3])

    assert spread("box") < 3.0 < spread("crowd")


def test_sensors_hear_less_far_away():
    far = (SensorSpec("near", LAT0 + 0.001, LON0 + 0.001), SensorSpec("far", LAT0 + 0.05, LON0))
    obs = UplinkObserver(scenario([GOIP], hours=0.2, sensors=far), seed=4).run(0.0, 600.0)
    n = collections.Counter(o.record.sensor_id for o in obs)
    assert n["near"] > 50 and n["far"] == 0


def test_random_city_has_crowds_and_the_gateways():
    city = uplink_city(5, (4, 16), duration_s=3600.0)
    sc = city.scenario
    assert 5 <= len(sc.sensors) <= 8
    assert sum(e.type == "phones" for e in sc.emitters) >= 6
    assert sorted(city.goips.values()) == [4, 16]
    assert all(len(e.arfcns) == e.channels for e in sc.emitters if e.type == "goip")
    assert UplinkModel().capture_every_s == 60.0
