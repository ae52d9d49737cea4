"""Sensor nodes on the GSM uplink: per-link detections from IQ, clustered by the collector.

A simulated town with three rooftop sensors, a GOIP gateway (four handsets in one box, each
in a call on its own ARFCN and timeslot) and a lone handset elsewhere. Every node sweeps the
GSM900 uplink twice; its published records must name the links the world transmits, count
the bursts a capture holds, and let :func:`collector.goip.cluster_uplinks` put the gateway's
links in one place, apart from the lone handset.
"""

import collections
import math

import numpy as np
import pytest

from collector.goip import cluster_uplinks
from dsp.bands import BANDS, arfcn_to_uplink_hz
from dsp.gsm import constants as gc
from dsp.gsm.tx import gsm_uplink_iq, uplink_burst_start
from rfhunt.errors import ConfigError
from rfhunt.records import Detection, Heartbeat, decode, encode
from sensors.config import ScanSpec, SensorConfig, parse_sensor_config
from sensors.gps import SourcePosition
from sensors.node import SensorNode
from sensors.scan import measure_uplink_links, scan_band
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import GSM_FRAME_S, World
from sensors.sources.base import IQBlock

SCENARIO = """
[scenario]
name = "goip block"
seed = 7
duration_s = 600

[area]
center_lat = 30.0
center_lon = 120.0

[propagation]
path_loss_exponent = 3.0
shadowing_db = 3.0

[[sensors]]
id = "n"
lat = 30.006
lon = 120.0
[[sensors]]
id = "se"
lat = 29.997
lon = 120.005
[[sensors]]
id = "sw"
lat = 29.997
lon = 119.995

[[emitters]]
id = "gw"
type = "goip"
lat = 30.0005
lon = 120.0008
power_dbm = 30
arfcns = [40, 42, 44, 46]
activity = 1.0
call_mean_s = 5000

[[emitters]]
id = "lone"
type = "goip"
lat = 29.9985
lon = 119.9965
power_dbm = 33
arfcns = [60]
activity = 1.0
call_mean_s = 5000
"""

UPLINK = ScanSpec("gsm900-ul", 2.4e6, 0.1, 49.6)
N_SCANS = 2


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    path = tmp_path_factory.mktemp("uplink") / "town.toml"
    path.write_text(SCENARIO)
    world = World(load_scenario(path))
    records = {}
    for k, sid in enumerate(("n", "se", "sw")):
        src = SimulatedSource(world, sid, seed=10 + k)
        out = []
        cfg = SensorConfig(sid, f"sim:{sid}@{path}", scan_interval_s=10.0, heartbeat_s=60.0, max_scans=N_SCANS,
                           scans=(UPLINK,))
        stats = SensorNode(cfg, src, SourcePosition(src), out.append).run()
        assert stats.scans_done == N_SCANS and stats.errors == 0
        records[sid] = [decode(encode(r)) for r in out]  # every record passes the wire's checks
    return world, records


def dets_of(records):
    return [r for r in records if isinstance(r, Detection)]


def truth_timeslot(world, em, channel):
    """Timeslot number of ``em``'s handset ``channel`` on the UTC slot grid the nodes use:
    the UTC start of its burst (bit 0) over the slot length, rounded."""
    offset, _ = world._tdma[em.id]  # the gateway's TDMA clock runs ``offset`` s ahead of the scenario's
    sym = int(uplink_burst_start(0, channel % 8))
    t_utc = world.scenario.start_utc - offset + sym / gc.SYMBOL_RATE_HZ
    slot_s = 156.25 / gc.SYMBOL_RATE_HZ
    frac = (t_utc / slot_s) % 1.0
    assert 0.1 < frac < 0.9, "the gateway's slots sit on a half-slot of the UTC grid: pick another seed"
    return int(math.floor(t_utc / slot_s + 0.5)) % 8


@pytest.mark.slow
def test_node_publishes_one_detection_per_active_link(town):
    world, records = town
    sc = world.scenario
    emitters = {e.id: e for e in sc.emitters}
    gw, lone = emitters["gw"], emitters["lone"]
    truth_ts = {a: truth_timeslot(world, gw, i) for i, a in enumerate(gw.arfcns)}
    truth_ts[60] = truth_timeslot(world, lone, 0)
    for sid, recs in records.items():
        dets = dets_of(recs)
        assert any(isinstance(r, Heartbeat) for r in recs)
        assert all(d.kind == "gsm_uplink" for d in dets)
        # one detection per link and sweep: the gateway's four and the lone handset's, nothing else
        per_link = collections.Counter((d.channel, d.features["timeslot"]) for d in dets)
        assert per_link == {(a, ts): N_SCANS for a, ts in truth_ts.items()}, sid
        # the handsets of one box sit on consecutive timeslots (channel i on TS i of the gateway's frame)
        for i, a in enumerate(gw.arfcns):
            assert (truth_ts[a] - truth_ts[gw.arfcns[0]]) % 8 == i
        sensor = sc.sensor(sid)
        for d in dets:
            f = d.features
            assert d.freq_hz == pytest.approx(float(arfcn_to_uplink_hz(d.channel)))
            assert (d.sensor_lat, d.sensor_lon) == (sensor.lat, sensor.lon)
            # bursts counted: one per TDMA frame the capture holds, but the idle frame of 26
            frames = f["capture_s"] / GSM_FRAME_S
            assert f["capture_s"] == pytest.approx(UPLINK.dwell_s, rel=0.01)
            assert frames * 25 / 26 - 1.5 <= f["n_bursts"] <= frames + 1
            assert f["duty"] == pytest.approx(min(f["n_bursts"] / frames, 1.0), abs=0.01)
            # calls under way, no set-ups (near the threshold a normal burst cut by noise passes
            # for an access burst: the lone handset is 10 dB over the noise at n)
            assert "access_t_s" not in f and (f["n_access"] == 0 or d.snr_db < 15.0)
            # the time base is the capture's: t_utc is its middle, inside the simulated run
            assert sc.start_utc < d.t_utc < sc.start_utc + N_SCANS * 10.0 + 5.0
            # power at the antenna as the world sends it
            em = gw if d.channel in gw.arfcns else lone
            expect = em.power_dbm + world.path_gain_db(em, d.freq_hz, (sensor.lat, sensor.lon),
                                                       d.t_utc - sc.start_utc)
            assert d.power_dbm == pytest.approx(expect, abs=1.5), (sid, d.channel)
            assert d.snr_db > 8.0
    # the nodes keep one schedule: a link's capture has one time at every sensor (one capture instant)
    times = {sid: sorted({(d.channel, d.t_utc) for d in dets_of(r)}) for sid, r in records.items()}
    assert times["n"] == times["se"] == times["sw"]
    # each sweep captures a link once; the two sweeps are a scan interval apart
    t40 = sorted(t for a, t in times["n"] if a == 40)
    assert t40[1] - t40[0] == pytest.approx(10.0, abs=0.5)


@pytest.mark.slow
def test_collector_clusters_the_gateway_into_one_place(town):
    world, records = town
    dets = [d for recs in records.values() for d in dets_of(recs)]
    clusters = cluster_uplinks(dets)
    gw = [c for c in clusters if set(c.arfcns) & {40, 42, 44, 46}]
    assert len(gw) == 1, clusters
    (c,) = gw
    assert c.arfcns == (40, 42, 44, 46)
    assert c.n_links == 4 * N_SCANS and set(c.sensors) == {"n", "se", "sw"}
    assert c.concurrent_max == 4 and c.verdict == "goip_suspect", c.reasons
    assert all(dets[i].channel in (40, 42, 44, 46) for i in c.detection_index)
    assert c.lat is not None and c.lon is not None  # located from the three sensors' powers
    # the lone handset is another place
    assert all(60 not in cl.arfcns for cl in gw)
    others = [cl for cl in clusters if 60 in cl.arfcns]
    assert others and all(cl.verdict == "uplink" for cl in others)


@pytest.mark.slow
def test_links_off_gives_per_carrier_power_detections(town):
    world, _ = town
    src = SimulatedSource(world, "n", seed=3)
    found, _ = scan_band(src, ScanSpec("gsm900-ul", 2.4e6, 0.02, 49.6, links=False), calibration_db=-5.0)
    assert {40, 42, 44, 46} <= {m.channel for m in found}
    assert found and all("timeslot" not in m.features and "duty_cycle" in m.features for m in found)


def test_access_bursts_are_call_setups():
    """A link with access bursts only is a set-up (n_bursts 0, the first one's time); access
    bursts on a link that also carries a call count on that link."""
    fs, n = 1.2e6, int(0.13 * 1.2e6)  # 28 TDMA frames
    fc = float(arfcn_to_uplink_hz(20)) + 200e3
    t0 = 1_767_000_000.0
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) * np.float32(1e-3)
    t = np.arange(n) / fs
    setup = lambda fn: np.where(np.asarray(fn) % 4 == 1, 2, 0).astype(np.int8)  # noqa: E731
    call = lambda fn: np.where(np.isin(np.asarray(fn) % 26, (5, 6, 7)), 2, 1).astype(np.int8)  # noqa: E731
    for arfcn, ts, kind in ((20, 2, setup), (21, 5, call)):
        w = gsm_uplink_iq(t0, n, fs, timeslot=ts, burst_kind=kind, seed=arfcn)
        df = float(arfcn_to_uplink_hz(arfcn)) - fc
        x += np.float32(0.05) * w * np.exp(2j * np.pi * df * t).astype(np.complex64)
    block = IQBlock(x, fc, fs, 30.0, t0, 0, "cf32")
    ms = measure_uplink_links(block, BANDS["gsm900-ul"], np.array([arfcn_to_uplink_hz(a) for a in (20, 21)]),
                              calibration_db=-5.0)
    by = {m.channel: m for m in ms}
    assert set(by) == {20, 21} and len(ms) == 2
    f20, f21 = by[20].features, by[21].features
    assert f20["n_bursts"] == 0 and f20["duty"] == 0.0 and f20["n_access"] >= 2
    assert 0.0 <= f20["access_t_s"] < 4 * GSM_FRAME_S
    assert 20 <= f21["n_bursts"] <= 26 and f21["n_access"] == 3 and "access_t_s" not in f21
    assert (f21["timeslot"] - f20["timeslot"]) % 8 == 3  # one slot grid for both


@pytest.mark.slow
@pytest.mark.parametrize("align", [True, False])
def test_aligned_nodes_started_apart_capture_together(town, align):
    """Nodes switched on at different times: with ``align_scans`` their scans start on the same
    UTC multiples of the interval, so each link is one capture instant for the collector."""
    world, _ = town
    sc = world.scenario
    dets = []
    for sid, t_s in (("n", 1.3), ("se", 3.7), ("sw", 8.2)):
        src = SimulatedSource(world, sid, t_s=t_s, seed=20)
        cfg = SensorConfig(sid, "sim", scan_interval_s=10.0, heartbeat_s=60.0, max_scans=N_SCANS, align_scans=align,
                           scans=(ScanSpec("gsm900-ul", 2.4e6, 0.02, 49.6),))
        SensorNode(cfg, src, SourcePosition(src), dets.append).run()
    dets = [d for d in dets if isinstance(d, Detection) and d.channel in (40, 42, 44, 46)]
    t = collections.defaultdict(list)
    for d in dets:
        t[d.sensor_id, d.channel].append(d.t_utc)
    spread = max(np.ptp([sorted(t[sid, a]) for sid in ("n", "se", "sw")], axis=0).max() for a in (40, 42, 44, 46))
    assert (spread < 1e-3) == align  # within a millisecond: one capture instant
    if align:  # scans at 10 and 20 s into the scenario (its start is on the minute)
        assert sorted(math.floor(x - sc.start_utc) for x in t["n", 40]) == [10, 20]
        (c,) = [c for c in cluster_uplinks(dets) if c.arfcns == (40, 42, 44, 46)]
        assert c.n_links == 4 * N_SCANS and c.verdict == "goip_suspect"


def test_links_key_is_checked():
    base = {"sensor": {"id": "a", "source": "x"}}
    cfg = parse_sensor_config({**base, "scan": [{"band": "gsm900-ul", "dwell_s": 0.1}]})
    assert cfg.scans[0].links is True
    cfg = parse_sensor_config({**base, "scan": [{"band": "gsm900-ul", "links": False, "dwell_s": 0.002}]})
    assert cfg.scans[0].links is False
    with pytest.raises(ConfigError, match=r"scan\[0\].links: only GSM uplink bands"):
        parse_sensor_config({**base, "scan": [{"band": "fm", "links": True}]})
    with pytest.raises(ConfigError, match=r"scan\[0\].links: must be true or false"):
        parse_sensor_config({**base, "scan": [{"band": "gsm900-ul", "links": 1}]})
    with pytest.raises(ConfigError, match=r"scan\[0\].dwell_s: 0.005 s is too short"):
        parse_sensor_config({**base, "scan": [{"band": "gsm900-ul", "dwell_s": 0.005}]})
    with pytest.raises(ConfigError, match=r"scan\[0\]: unknown key 'link'"):
        parse_sensor_config({**base, "scan": [{"band": "gsm900-ul", "link": True}]})
    cfg = parse_sensor_config({"sensor": {"id": "a", "source": "x", "align_scans": True, "scan_interval_s": 60}})
    assert cfg.align_scans is True and parse_sensor_config(base).align_scans is False
    with pytest.raises(ConfigError, match=r"sensor.align_scans: must be true or false"):
        parse_sensor_config({"sensor": {"id": "a", "source": "x", "align_scans": "yes"}})
    with pytest.raises(ConfigError, match=r"sensor.align_scans: needs a scan_interval_s above 0"):
        parse_sensor_config({"sensor": {"id": "a", "source": "x", "align_scans": True, "scan_interval_s": 0}})
