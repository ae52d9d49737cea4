"""The sensor node on the simulated world: directly, and over a real rtl_tcp socket."""

import threading

import numpy as np
import pytest

from rfhunt.errors import ConfigError
from rfhunt.records import Detection, Heartbeat, decode, encode
from sensors.config import ScanSpec, SensorConfig, load_sensor_config, parse_sensor_config
from sensors.gps import FixedPosition, GpsdPosition, SourcePosition
from sensors.node import SensorNode
from sensors.scan import scan_band
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World
from sensors.sources.rtltcp import RtlTcpServer, RtlTcpSource

WORLD = World(load_scenario())
GSM = ScanSpec("gsm900-dl", 2.4e6, 0.02, 42.1)


def expected_cells(sensor_id, floor_dbm=-92.0):
    """ARFCNs of cells the sensor receives well above its noise floor (from the truth)."""
    sc = WORLD.scenario
    return {e.arfcn for e in sc.emitters if e.kind == "gsm_downlink"
            and e.power_dbm + WORLD.path_gain_db(e, e.carrier_freqs_hz()[0], WORLD.sensor_position(sensor_id, 0), 0)
            > floor_dbm}


def test_scan_finds_the_cells_with_their_power():
    src = SimulatedSource(WORLD, "roof-se", seed=3)
    found, dropped = scan_band(src, GSM, calibration_db=-5.0, ppm=1.7)
    assert dropped == 0
    chans = {m.channel for m in found}
    assert expected_cells("roof-se") <= chans
    truth = {c.freq_hz: c.power_dbm for c in WORLD.carriers_at("roof-se", 0)}
    for m in found:
        if m.freq_hz in truth and m.snr_db > 10:
            assert m.power_dbm == pytest.approx(truth[m.freq_hz], abs=1.5)


def test_node_emits_valid_records_and_tracks_its_lo_error():
    src = SimulatedSource(WORLD, "car-1", seed=4)  # its dongle is 45 ppm off
    out = []
    cfg = SensorConfig("car-1", "sim:car-1", scan_interval_s=20.0, heartbeat_s=20.0, max_scans=6,
                       scans=(GSM,))
    node = SensorNode(cfg, src, SourcePosition(src), out.append)
    stats = node.run()
    assert stats.scans_done == 6
    # the spectral-centroid estimate leans about +9 kHz on a BCCH carrier (the fixed dummy
    # bursts of timeslots 1-7 have an asymmetric spectrum): within 12 ppm, a twentieth of a
    # channel, from 45 ppm off at the start; FCCH-based estimation will replace it
    assert abs(node.ppm - 45.0) < 12.0
    dets = [r for r in out if isinstance(r, Detection)]
    hbs = [r for r in out if isinstance(r, Heartbeat)]
    assert dets and len(hbs) >= 3 and hbs[0].mobile
    assert [r.seq for r in out] == list(range(out[0].seq, out[0].seq + len(out)))
    # a node started again later never reuses a sequence number (the collector would drop it)
    again = []
    SensorNode(cfg, SimulatedSource(WORLD, "car-1", seed=4), SourcePosition(src), again.append).heartbeat()
    assert again[0].seq > out[-1].seq
    for r in out:
        assert decode(encode(r)) == r
    # the car moves: detections carry different positions
    assert len({(d.sensor_lat, d.sensor_lon) for d in dets}) >= 5
    # simulated time advanced by the schedule, not the wall clock
    assert hbs[-1].t_utc - hbs[0].t_utc == pytest.approx(6 * 20.0, abs=21.0)


def test_sensor_path_over_a_real_rtl_tcp_socket():
    """The simulated dongle served by rtl_tcp, read by rfhunt's rtl_tcp client, scanned."""
    served = SimulatedSource(WORLD, "roof-se", seed=5)
    with RtlTcpServer(served, paced=False) as server:
        host, port = server.address
        client = RtlTcpSource(host, port, check_realtime=False)
        try:
            found, dropped = scan_band(client, GSM, calibration_db=-5.0, ppm=1.7)
        finally:
            client.close()
    assert dropped == 0
    assert expected_cells("roof-se") <= {m.channel for m in found}
    # the server saw our tuning commands: frequency and gain reached the simulated tuner
    assert served.gain_db == pytest.approx(42.1)
    assert 925e6 < served.center_freq_hz < 960e6


def test_sensor_config_errors_name_the_key(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[sensor]\nid = "a"\nsource = "rtltcp:127.0.0.1:1234"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match=r"s.toml: sensor: unknown key 'colour'"):
        load_sensor_config(p)
    with pytest.raises(ConfigError, match=r"scan\[0\].band: 'lte'"):
        parse_sensor_config({"sensor": {"id": "a", "source": "x"}, "scan": [{"band": "lte"}]})
    with pytest.raises(ConfigError, match="sensor.source"):
        parse_sensor_config({"sensor": {"id": "a"}})
    cfg = load_sensor_config("deploy/sensor.toml")
    assert cfg.sensor_id == "roof-01" and len(cfg.scans) == 5 and cfg.lat == pytest.approx(22.5566)
    assert [s.decode for s in cfg.scans] == [False, False, False, True, True]
    assert (cfg.scans[4].band, cfg.scans[4].dwell_s, cfg.scans[4].every) == ("fm", 1.0, 5)


def test_gpsd_client_reads_tpv_fixes():
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def fake_gpsd():
        conn, _ = srv.accept()
        assert b"WATCH" in conn.recv(1024)
        conn.sendall(b'{"class":"VERSION","release":"3.25"}\n{"class":"TPV","mode":1}\n'
                     b'{"class":"TPV","mode":3,"lat":22.55,"lon":114.06,"alt":20.0}\n')
        threading.Event().wait(0.5)
        conn.close()

    t = threading.Thread(target=fake_gpsd, daemon=True)
    t.start()
    gps = GpsdPosition(f"127.0.0.1:{srv.getsockname()[1]}")
    try:
        for _ in range(50):
            try:
                pos = gps.position()
                break
            except Exception:
                threading.Event().wait(0.02)
        assert pos == (22.55, 114.06)
    finally:
        gps.close()
        srv.close()
    assert FixedPosition(1.0, 2.0).position() == (1.0, 2.0)


def test_simulated_tuner_limits():
    from rfhunt.errors import SourceError

    src = SimulatedSource(WORLD, "roof-nw")
    with pytest.raises(SourceError, match="cannot tune"):
        src.tune(2.4e9)
    with pytest.raises(SourceError, match="sample rate"):
        src.tune(100e6, 500e3)
    with pytest.raises(SourceError, match="before tune"):
        src.read(10)
    src.tune(100e6, 2.4e6, 33.0)
    assert src.gain_db == 32.8  # nearest R820T gain
    blk = src.read(4096)
    assert blk.native == "cu8" and blk.samples.dtype == np.uint8 and blk.n_samples == 4096


def test_sim_scheme_opens_a_simulated_sensor():
    from rfhunt.errors import ConfigError, SourceError
    from sensors.sources.open import open_source

    src = open_source("sim:car-1")
    assert isinstance(src, SimulatedSource) and src.sensor.mobile
    with pytest.raises(ConfigError, match="no sensor 'nobody'"):
        open_source("sim:nobody")
    with pytest.raises(SourceError, match="needs a sensor id"):
        open_source("sim:")


@pytest.mark.slow
def test_decode_scan_publishes_cell_identities():
    """A power sweep finds the carriers, then a decode sweep of the occupied hops reads every
    cell's identity; the fake base station's cycling LAC is the one on air at that moment."""
    src = SimulatedSource(WORLD, "car-1", seed=6)
    out = []
    import socket

    from sensors.gsmtap import decode_gsmtap

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # read only after the run
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    decode = ScanSpec("gsm900-dl", 2.4e6, 2.0, 42.1, decode=True, every=1)
    cfg = SensorConfig("car-1", "sim:car-1", scan_interval_s=5.0, heartbeat_s=60.0, max_scans=1,
                       scans=(GSM, decode), gsmtap=f"127.0.0.1:{rx.getsockname()[1]}")
    node = SensorNode(cfg, src, SourcePosition(src), out.append)
    node.run()
    tapped = []
    try:
        while True:
            tapped.append(decode_gsmtap(rx.recv(2048)))
    except socket.timeout:
        pass
    rx.close()
    cells = [r for r in out if isinstance(r, Detection) and r.features.get("decoded")]
    assert cells
    # every decoded frame also went out as GSMTAP, from the channels of the cells reported
    assert len(tapped) >= sum(d.features["n_frames"] for d in cells)
    assert {t.arfcn for t in tapped} >= {d.channel for d in cells}
    truth = {e.arfcn: e for e in WORLD.scenario.emitters if e.kind == "gsm_downlink"}
    t_s = cells[0].t_utc - WORLD.scenario.start_utc
    for d in cells:
        em = truth[d.channel]
        f = d.features
        assert (f["mcc"], f["mnc"], f["cid"], f["bsic"]) == (f"{em.mcc:03d}", f"{em.mnc:02d}", em.cid, em.bsic)
        assert f["lac"] in {em.lac_at(t) for t in (t_s - 30, t_s, t_s + 30)}
        assert f["cro_db"] == em.cro_db and decode_record_ok(d)
    # the fake base stations (strong near the car) are among the cells read, neighbour list empty
    # the FCCH offsets of the cells set the car's LO error (45 ppm) far better than spectra did
    assert abs(node.ppm - 45.0) < 0.5
    fakes = [d for d in cells if truth[d.channel].type == "fake_bts"]
    assert fakes and all(d.features["n_neighbours"] == 0 for d in fakes)
    legit = [d for d in cells if truth[d.channel].type == "gsm_cell"]
    assert legit and all(d.features["n_neighbours"] > 0 for d in legit)


def decode_record_ok(d):
    return decode(encode(d)) == d


def test_numbers_continue_from_the_outbox_when_the_clock_was_set_back(tmp_path):
    """A node whose clock is behind the last run's (a board without a real-time clock, booted
    before NTP) still numbers its records above every number it used before."""
    import time

    from sensors.outbox import Outbox

    ahead = time.time_ns() // 1000 + 10**12  # the last run's numbers, from a clock far ahead
    ob = Outbox(tmp_path / "o.sqlite", first_seq=ahead)
    src = SimulatedSource(WORLD, "roof-nw", seed=1)
    out = []
    node = SensorNode(SensorConfig("roof-nw", "sim:roof-nw", scans=()), src, SourcePosition(src), out.append,
                      first_seq=ob.next_seq())
    node.heartbeat()
    node.heartbeat()
    assert [r.seq for r in out] == [ahead, ahead + 1]
    fresh = []
    SensorNode(SensorConfig("roof-nw", "sim:roof-nw", scans=()), src, SourcePosition(src), fresh.append).heartbeat()
    assert abs(fresh[0].seq - time.time_ns() // 1000) < 60 * 10**6  # without an outbox: the clock
    ob.close()
