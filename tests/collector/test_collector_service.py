"""The ZeroMQ service end to end: a real DEALER, a real SQLite file, garbage included."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import numpy as np
import pytest
import zmq

from collector.association import associate
from collector.config import CollectorConfig
from collector.localize import inside_ellipse
from collector.service import Collector, relocate_emitters
from collector.store import Store
from rfhunt.errors import RfhuntError, StoreError, WireError
from rfhunt.geo import from_enu, to_enu
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
    slat, slon = from_enu(se, sn, LAT0, LON0)
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


def serve(collector: Collector, dealer: zmq.Socket, n_replies: int, timeout_s: float = 10.0) -> list[dict]:
    """Step the collector until the dealer has ``n_replies`` replies (fails after ``timeout_s``)."""
    replies: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(replies) < n_replies:
        assert time.monotonic() < deadline, f"only {len(replies)} of {n_replies} replies in {timeout_s} s"
        collector.step(50)
        while dealer.poll(0):
            replies.append(json.loads(dealer.recv()))
    return replies


@pytest.fixture
def wired(tmp_path):
    """A factory of (collector, dealer) pairs on a private context; all closed afterwards."""
    ctx = zmq.Context()
    made: list[tuple[Collector, zmq.Socket]] = []

    def make(**config) -> tuple[Collector, zmq.Socket]:
        cfg = CollectorConfig(**{"db_url": f"sqlite:///{tmp_path / 'c.db'}", "bind": "tcp://127.0.0.1:*", **config})
        collector = Collector(cfg, context=ctx)
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(collector.endpoint)
        made.append((collector, dealer))
        return collector, dealer

    yield make
    for collector, dealer in made:
        collector.close()
        dealer.close()
    ctx.term()


def hb_json(sensor_id: str, seq: int, t_utc: float, source_state: str = "ok") -> bytes:
    """A heartbeat message written by hand (so that it may hold what encode() refuses)."""
    return json.dumps({"v": 1, "type": "heartbeat", "sensor_id": sensor_id, "seq": seq, "t_utc": t_utc,
                       "sensor_lat": LAT0, "sensor_lon": LON0, "mobile": False, "source_state": source_state,
                       "samples_read": 1, "dropped_samples": 0, "scans_done": 1}).encode()


def lenient_decode(data: bytes) -> Heartbeat:
    """A decoder that checks nothing: what a decoder bug would let through."""
    obj = json.loads(data)
    return Heartbeat(**{k: v for k, v in obj.items() if k not in ("v", "type")})


def test_reason_class_and_seq_come_from_the_wire_error(wired, monkeypatch):
    collector, dealer = wired()

    def refuse(data):
        raise WireError("some new wording", reason="version", seq=3)

    monkeypatch.setattr("collector.service.decode", refuse)
    dealer.send(hb_json("n1", 9, T0))
    (reply,) = serve(collector, dealer, 1)
    assert reply == {"ok": False, "seq": 3, "error": "some new wording", "reason": "version"}  # no "retry"
    assert collector.stats()["rejected"] == {"version": 1}
    monkeypatch.undo()
    dealer.send(hb_json("n1", -5, T0))   # a seq the decoder cannot vouch for is not echoed
    (reply,) = serve(collector, dealer, 1)
    assert reply["ok"] is False and reply["seq"] is None
    assert collector.stats()["rejected"] == {"version": 1, "field": 1}


def test_a_record_the_database_refuses_costs_only_itself(wired, monkeypatch):
    collector, dealer = wired()
    real_add_batch = collector.store.add_batch

    def add_batch(records):
        if any(r.sensor_id == "evil" for r in records):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real_add_batch(records)

    monkeypatch.setattr(collector.store, "add_batch", add_batch)
    for frames in (hb_json("a", 1, T0), hb_json("evil", 1, T0), hb_json("b", 1, T0), hb_json("c", 1, T0)):
        dealer.send(frames)
    replies = serve(collector, dealer, 4)
    assert sorted(r["ok"] for r in replies) == [False, True, True, True]
    (bad,) = [r for r in replies if not r["ok"]]
    assert bad["seq"] == 1 and "UnicodeEncodeError" in bad["error"]
    assert collector.stats()["stored"] == 3 and collector.stats()["rejected"] == {"store": 1}
    assert sorted(s.sensor_id for s in collector.store.sensors()) == ["a", "b", "c"]


@pytest.mark.pg
def test_postgresql_refusing_a_text_costs_only_that_record(wired, monkeypatch, pg_url):
    collector, dealer = wired(db_url=pg_url)
    monkeypatch.setattr("collector.service.decode", lenient_decode)
    messages = [hb_json("a", 1, T0), hb_json("nul", 1, T0, "a\x00b"), hb_json("surrogate", 1, T0, "a\ud800b"),
                hb_json("b", 1, T0)]
    for m in messages:
        dealer.send(m)
    replies = serve(collector, dealer, len(messages))
    assert sorted(r["ok"] for r in replies) == [False, False, True, True]
    assert collector.stats()["rejected"] == {"store": 2}
    assert [s.sensor_id for s in collector.store.sensors()] == ["a", "b"]
    dealer.send(hb_json("a", 2, T0 + 1))  # still serving
    assert serve(collector, dealer, 1) == [{"ok": True, "seq": 2, "dup": False}]


def test_records_from_the_far_future_are_rejected(wired):
    collector, dealer = wired(max_future_s=3600.0)
    now = time.time()
    dealer.send(hb_json("n1", 1, now + 2 * 86400))
    (reply,) = serve(collector, dealer, 1)
    assert reply["ok"] is False and reply["seq"] == 1 and "ahead" in reply["error"]
    future_det = dataclasses.replace(scenario()[0][0], sensor_id="n1", seq=2, t_utc=now + 7200)
    dealer.send(encode(future_det))
    (reply,) = serve(collector, dealer, 1)
    assert reply["ok"] is False and reply["seq"] == 2
    assert collector.stats()["rejected"] == {"future": 2}
    # the sensor's clock is fixed: its position follows the next heartbeat, not frozen by the future one
    dealer.send(json.dumps({**json.loads(hb_json("n1", 3, now)), "sensor_lat": LAT0 + 0.01}).encode())
    assert serve(collector, dealer, 1) == [{"ok": True, "seq": 3, "dup": False}]
    dealer.send(hb_json("n1", 4, now + 60))  # a little ahead is fine
    assert serve(collector, dealer, 1) == [{"ok": True, "seq": 4, "dup": False}]
    (sensor,) = collector.store.sensors()
    assert sensor.last_position_utc == now + 60 and sensor.lat == LAT0


def test_one_emitter_failing_to_relocate_does_not_stop_the_others(wired, caplog):
    # no path-loss exponent for FM: relocating the FM emitter raises KeyError
    collector, dealer = wired(path_loss_exponent={"gsm_downlink": 3.0})
    dets, _ = scenario()
    fm = [dataclasses.replace(d, seq=1000 + i, kind="fm", freq_hz=98.1e6, channel=None) for i, d in enumerate(dets[:3])]
    for d in fm + dets[::40]:   # the FM emitter gets the lower id
        dealer.send(encode(d))
    serve(collector, dealer, len(fm) + len(dets[::40]))
    collector.flush()
    fm_em, gsm_em = sorted(collector.store.emitters(), key=lambda e: e.kind != "fm")
    assert fm_em.kind == "fm" and fm_em.lat is None
    assert gsm_em.lat is not None and gsm_em.verdict == "unverified"   # located and judged
    assert fm_em.verdict == "unlicensed"                                 # judged anyway
    assert collector._pending == {fm_em.id}                             # retried ...
    collector.flush()
    collector.flush()
    assert collector._pending == set()                                   # ... three times, then dropped
    assert any("relocate gave up" in r.getMessage() for r in caplog.records)


def test_service_end_to_end(tmp_path):
    ctx = zmq.Context()
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*",
                          pub_bind="tcp://127.0.0.1:*", relocate_interval_s=0.2)
    collector = Collector(cfg, context=ctx)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"emitter")
    sub.setsockopt(zmq.SUBSCRIBE, b"detection")
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

        feed: dict[bytes, list[dict]] = {}
        while sub.poll(5000 if b"emitter" not in feed else 200):
            topic, body = sub.recv_multipart()
            feed.setdefault(topic, []).append(json.loads(body))
        assert feed.get(b"emitter"), "no emitter update on the live feed"
        assert feed[b"emitter"][0]["kind"] == "gsm_downlink"
        # every new detection goes out once, with the emitter it was attached to
        assert feed.get(b"detection") and all(d["emitter_id"] is not None for d in feed[b"detection"])
        assert len({(d["sensor_id"], d["seq"]) for d in feed[b"detection"]}) == len(feed[b"detection"])
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
        assert em.n_detections == len(dets) + 1 and em.channel == 62 and em.verdict == "unverified"
        e, n = to_enu(em.lat, em.lon, LAT0, LON0)
        assert np.hypot(e - TX_E, n - TX_N) < STATED_ERROR_M
        tlat, tlon = from_enu(TX_E, TX_N, LAT0, LON0)
        assert inside_ellipse(float(tlat), float(tlon), em.lat, em.lon, em.semi_major_m, em.semi_minor_m,
                              em.orientation_deg)


def test_relocation_fits_only_the_recent_window(tmp_path):
    # Three old positions heard it two hours ago; in the last hour only one position did.
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", locate_window_s=3600.0)
    se, sn = np.array([2000.0, -2000.0, 0.0, 300.0]), np.array([0.0, 0.0, 2000.0, -300.0])
    slat, slon = from_enu(se, sn, LAT0, LON0)
    old = [Detection(f"n{i}", 1, T0, float(slat[i]), float(slon[i]), "gsm_downlink", 947.4e6, 62, 200e3,
                     -80.0, 20.0) for i in range(3)]
    new = [Detection("n3", k, T0 + 7200 + k, float(slat[3]), float(slon[3]), "gsm_downlink", 947.4e6, 62, 200e3,
                     -50.0, 20.0) for k in range(1, 4)]
    with Store.open(cfg.db_url) as store:
        store.add_batch(old + new)
        (eid,) = associate(store)
        calls = []
        real = store.detections
        store.detections = lambda **kw: calls.append(kw) or real(**kw)   # type: ignore[method-assign]
        located, failed = relocate_emitters(store, cfg, [eid])
        assert located == {eid} and failed == {}
        assert calls == [{"emitter_id": eid, "since_utc": T0 + 7203 - 3600.0}]
        em = store.emitter(eid)
        assert em.underdetermined is True and (em.lat, em.lon) == (float(slat[3]), float(slon[3]))


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
        (reply,) = serve(collector, dealer, 1)
        assert reply["ok"] is False and reply["seq"] == det.seq and "refused" in reply["error"]
        monkeypatch.undo()
        dealer.send(encode(det))  # the sensor resends: now stored
        assert serve(collector, dealer, 1) == [{"ok": True, "seq": det.seq, "dup": False}]
        assert collector.stats()["rejected"] == {"store": 1}
    finally:
        collector.close()
        dealer.close()
        ctx.term()
