"""The ZeroMQ service end to end: a real DEALER, a real SQLite file, garbage included."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest
import zmq

from collector.config import CollectorConfig
from collector.localize import enu_from_geodetic, geodetic_from_enu, inside_ellipse
from collector.service import Collector, reason_class
from collector.store import Store
from rfhunt.errors import RfhuntError, StoreError, WireError
from rfhunt.records import Detection, Heartbeat, encode

LAT0, LON0 = 45.07, 7.68
TX_E, TX_N = 250.0, -150.0   # the transmitter, metres from (LAT0, LON0)
T0 = 1_750_000_000.0
STATED_ERROR_M = 600.0       # 5 sensors 2 km out, 3 dB shadowing: typical error 300-500 m


def scenario(seed: int = 11) -> tuple[list[Detection], list[Heartbeat]]:
    """200 detections of ARFCN 62 from 5 fixed sensors: log-distance powers + shadowing + noise."""
    rng = np.random.default_rng(seed)
    ang = np.linspace(0, 2 * np.pi, 5, endpoint=False) + 0.3
    se, sn = 2000 * np.cos(ang), 2000 * np.sin(ang)
    slat, slon = geodetic_from_enu(se, sn, LAT0, LON0)
    shadow = rng.normal(0.0, 3.0, 5)          # per position
    dets, hbs = [], []
    for i in range(5):
        d = np.hypot(se[i] - TX_E, sn[i] - TX_N)
        mean_p = 35.0 - 30.0 * np.log10(d) + shadow[i]
        sid = f"node{i}"
        hbs.append(Heartbeat(sid, 0, T0, float(slat[i]), float(slon[i]), False, "ok", 10**6, 0, 1))
        for k in range(40):
            dets.append(Detection(sid, k + 1, T0 + 10 * k, float(slat[i]), float(slon[i]), "gsm_downlink", 947.4e6,
                                  62, 200e3, float(mean_p + rng.normal(0, 1.0)), 25.0, {"bsic": 7}))
    return dets, hbs


def garbage(rng: np.random.Generator) -> list[list[bytes]]:
    good = json.loads(encode(scenario()[0][0]))
    wrong = [
        {**good, "seq": "12"}, {**good, "power_dbm": "loud"}, {**good, "sensor_lat": 200.0},
        {**good, "kind": "lte"}, {**good, "v": 99}, {**good, "type": "status"}, {**good, "extra": 1},
        [1, 2, 3], {**good, "features": {"x": [1]}}, {k: v for k, v in good.items() if k != "freq_hz"},
    ]
    frames = [[rng.bytes(int(rng.integers(1, 300)))] for _ in range(10)]
    frames += [[json.dumps(w).encode()] for w in wrong]
    frames.append([b"{" + b" " * 100_000 + b"}"])   # oversize (wire limit 64 KiB)
    frames.append([b"NaN"])
    frames.append([b""])
    frames.append([encode(scenario()[0][0]), b"second frame"])   # two frames
    return frames


def test_reason_classes():
    assert reason_class(WireError("message of 9 bytes is over")) == "oversize"
    assert reason_class(WireError("field 'seq' must be")) == "field"


def test_service_end_to_end(tmp_path):
    ctx = zmq.Context()
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*",
                          pub_bind="tcp://127.0.0.1:*", relocate_interval_s=0.2)
    collector = Collector(cfg, context=ctx)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"emitter")
    sub.connect(collector.pub_endpoint)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(collector.endpoint)
    try:
        dets, hbs = scenario()
        rng = np.random.default_rng(5)
        bad = garbage(rng)
        resend = dets[::10]
        messages = [[encode(r)] for r in hbs + dets[:100]] + bad + [[encode(r)] for r in dets[100:] + resend]
        for frames in messages:
            dealer.send_multipart(frames)
        replies = []
        deadline = time.monotonic() + 30
        while len(replies) < len(messages) and time.monotonic() < deadline:
            if dealer.poll(500):
                (body,) = dealer.recv_multipart()
                replies.append(json.loads(body))
        assert len(replies) == len(messages)
        oks = [r for r in replies if r["ok"]]
        errors = [r for r in replies if not r["ok"]]
        assert len(errors) == len(bad)
        assert all(isinstance(r["error"], str) and r["error"] for r in errors)
        assert sum(r["dup"] for r in oks) == len(resend)
        assert sorted(r["seq"] for r in oks if not r["dup"]) == sorted([h.seq for h in hbs] + [d.seq for d in dets])
        assert any(r["seq"] == 1 for r in errors)  # seq salvaged from a JSON reject

        # Still alive after the garbage: one more valid detection is acknowledged.
        extra = dataclasses.replace(dets[0], seq=1000, t_utc=T0 + 1000)
        dealer.send(encode(extra))
        assert dealer.poll(5000)
        assert json.loads(dealer.recv()) == {"ok": True, "seq": 1000, "dup": False}

        assert sub.poll(5000), "no emitter update on the live feed"
        topic, body = sub.recv_multipart()
        assert topic == b"emitter" and json.loads(body)["kind"] == "gsm_downlink"
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()
        stats = collector.stats()
        collector.close()
        dealer.close()
        sub.close()
        ctx.term()

    assert stats["received"] == len(messages) + 1
    assert stats["stored"] == len(hbs) + len(dets) + 1
    assert stats["duplicates"] == len(resend)
    assert sum(stats["rejected"].values()) == len(bad)
    assert stats["rejected"]["oversize"] == 1 and stats["rejected"]["framing"] == 1
    assert stats["rejected"]["not_json"] >= 1 and stats["rejected"]["field"] >= 1

    with Store.open(cfg.db_url) as store:
        assert len(store.detections()) == len(dets) + 1
        assert len(store.sensors()) == 5
        (em,) = store.emitters()
        assert em.n_detections == len(dets) + 1 and em.channel == 62 and em.verdict == "suspicious"
        e, n = enu_from_geodetic(em.lat, em.lon, LAT0, LON0)
        assert np.hypot(e - TX_E, n - TX_N) < STATED_ERROR_M
        tlat, tlon = geodetic_from_enu(TX_E, TX_N, LAT0, LON0)
        assert inside_ellipse(float(tlat), float(tlon), em.lat, em.lon, em.semi_major_m, em.semi_minor_m,
                              em.orientation_deg)


def test_bind_failure_is_reported(tmp_path):
    ctx = zmq.Context()
    try:
        cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*")
        first = Collector(cfg, context=ctx)
        try:
            taken = dataclasses.replace(cfg, bind=first.endpoint)
            with pytest.raises(RfhuntError, match=first.endpoint.replace(".", r"\.")):
                Collector(taken, context=ctx)
        finally:
            first.close()
    finally:
        ctx.term()


def test_database_refusal_is_replied_and_survived(tmp_path, monkeypatch):
    ctx = zmq.Context()
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*")
    collector = Collector(cfg, context=ctx)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(collector.endpoint)
    try:
        det = scenario()[0][0]

        def refuse(records):
            raise StoreError("database sqlite:///c.db refused a write: disk I/O error")

        monkeypatch.setattr(collector.store, "add_batch", refuse)
        dealer.send(encode(det))
        while collector.step(200) == 0:
            pass
        reply = json.loads(dealer.recv())
        assert reply["ok"] is False and reply["seq"] == det.seq and "refused" in reply["error"]
        monkeypatch.undo()
        dealer.send(encode(det))  # the sensor resends: now stored
        while collector.step(200) == 0:
            pass
        assert json.loads(dealer.recv()) == {"ok": True, "seq": det.seq, "dup": False}
        assert collector.stats()["rejected"] == {"store": 1}
    finally:
        collector.close()
        dealer.close()
        ctx.term()
