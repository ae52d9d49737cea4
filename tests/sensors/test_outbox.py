"""The sensor's outbox and publisher: nothing is lost to a missing collector, a network cut
or a killed sensor process; real ZeroMQ sockets, a real collector on a SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import zmq

from collector.config import CollectorConfig
from collector.service import Collector
from collector.store import Store
from rfhunt.errors import ConfigError
from rfhunt.records import Detection, Heartbeat, encode
from sensors.outbox import Outbox
from sensors.publish import Publisher

T0 = 1_750_000_000.0


def det(seq: int, sensor: str = "s1") -> Detection:
    return Detection(sensor, seq, T0 + seq * 1e-3, 22.54, 114.05, "gsm_downlink", 947.4e6, 62, 200e3, -70.0, 20.0,
                     {"bsic": 7})


def hb(seq: int, sensor: str = "s1") -> Heartbeat:
    return Heartbeat(sensor, seq, T0 + seq * 1e-3, 22.54, 114.05, False, "ok", 10**6, 0, 1)


def test_outbox_persists_records_and_sequence_numbers(tmp_path):
    path = tmp_path / "ob" / "s1.sqlite"
    ob = Outbox(path, first_seq=100)
    seqs = [ob.next_seq() for _ in range(3)]
    assert seqs == [100, 101, 102]
    ob.put_many([(s, encode(det(s)), False) for s in seqs])
    ob.ack([101])
    ob.close()
    ob = Outbox(path)  # reopened: what was not acknowledged is still there, numbering goes on
    assert ob.depth == 2 and [s for s, _ in ob.due(0.0)] == [100, 102]
    assert ob.next_seq() == 103
    # Numbers issued by a record put with a higher seq are not reused either.
    ob.put(500, encode(det(500)))
    assert ob.next_seq() == 501
    ob.close()


def test_outbox_full_drops_heartbeats_first_then_oldest_detections(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite", max_records=5, first_seq=1)
    ob.put_many([(1, encode(det(1)), False), (2, encode(hb(2)), True), (3, encode(det(3)), False),
                 (4, encode(hb(4)), True), (5, encode(det(5)), False)])
    assert ob.put(6, encode(det(6))) == 1 and [s for s, _ in ob.due(0.0)] == [1, 3, 4, 5, 6]
    assert ob.put_many([(7, encode(det(7)), False), (8, encode(det(8)), False)]) == 2
    assert [s for s, _ in ob.due(0.0)] == [3, 5, 6, 7, 8]
    assert ob.stats().dropped == 3 and ob.depth == 5
    ob.close()
    with pytest.raises(ConfigError, match="max_records"):
        Outbox(None, max_records=0)
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot open"):
        Outbox(bad)


def _collector(db_url: str, bind: str, ctx: zmq.Context) -> Collector:
    return Collector(CollectorConfig(db_url=db_url, bind=bind, pub_bind=None), context=ctx)


def _run(col: Collector) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    th = threading.Thread(target=col.run, args=(stop, 20), daemon=True)
    th.start()
    return th, stop


def _free_endpoint() -> str:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.ROUTER)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    s.close(0)
    return f"tcp://127.0.0.1:{port}"


def _stored_seqs(db_url: str, sensor: str = "s1") -> list[int]:
    with Store.open(db_url) as st:
        return sorted(d.seq for d in st.detections() if d.sensor_id == sensor)


def test_records_sent_before_the_collector_starts_and_across_its_restart_arrive_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    endpoint = _free_endpoint()
    ctx = zmq.Context()
    pub = Publisher(endpoint, "s1", outbox=Outbox(tmp_path / "s1.sqlite", first_seq=1), resend_after_s=0.5,
                    context=ctx)
    try:
        for s in range(1, 201):          # no collector yet: the sensor goes on
            pub.send(det(s))
        assert pub.pending == 200
        col = _collector(db, endpoint, ctx)
        th, stop = _run(col)
        assert pub.flush(timeout_s=20.0)
        stop.set()
        th.join()
        col.close()
        for s in range(201, 401):        # collector down again ("restart")
            pub.send(det(s))
        col = _collector(db, endpoint, ctx)
        th, stop = _run(col)
        for s in range(401, 501):
            pub.send(det(s))
        assert pub.flush(timeout_s=20.0)
        stop.set()
        th.join()
        stats = col.stats()
        col.close()
    finally:
        pub.close()
        ctx.term()
    assert _stored_seqs(db) == list(range(1, 501))
    assert pub.outbox.stats().acked == 500 and stats["stored"] <= 300


SENDER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from tests.sensors.test_outbox import det
    from sensors.outbox import Outbox
    from sensors.publish import Publisher
    pub = Publisher({endpoint!r}, "s1", outbox=Outbox({path!r}, first_seq=1), resend_after_s=0.5)
    for s in range(1, 3001):
        pub.send(det(s))
    print("queued", flush=True)
    time.sleep(60)
""")


def test_killed_sensor_delivers_its_outbox_after_restart(tmp_path):
    """kill -9 of a sensor that could not reach its collector: the records wait on disk and
    go out when the sensor comes back."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    endpoint = _free_endpoint()
    path = str(tmp_path / "s1.sqlite")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-c", SENDER.format(root=root, endpoint=endpoint, path=path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "queued"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    ctx = zmq.Context()
    col = _collector(db, endpoint, ctx)
    th, stop = _run(col)
    pub = Publisher(endpoint, "s1", outbox=Outbox(path), resend_after_s=0.5, context=ctx)
    try:
        assert pub.pending == 3000
        assert pub.flush(timeout_s=30.0)
        assert pub.next_seq() == 3001
    finally:
        stop.set()
        th.join()
        col.close()
        pub.close()
        ctx.term()
    assert _stored_seqs(db) == list(range(1, 3001))


def test_rejected_records_leave_the_outbox(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    endpoint = _free_endpoint()
    ctx = zmq.Context()
    col = _collector(db, endpoint, ctx)
    th, stop = _run(col)
    pub = Publisher(endpoint, "s1", resend_after_s=0.5, context=ctx)
    try:
        future = Detection("s1", 7, time.time() + 10 * 86400, 22.54, 114.05, "fm", 98e6, None, 200e3, -60.0, 20.0)
        pub.send(future)   # dated ten days ahead: the collector refuses it for good
        pub.send(det(8))
        assert pub.flush(timeout_s=10.0)
        assert pub.rejected == 1 and pub.acked == 1
    finally:
        stop.set()
        th.join()
        col.close()
        pub.close()
        ctx.term()


def test_sensor_config_outbox_keys():
    from sensors.config import parse_sensor_config

    base = {"sensor": {"id": "s1", "source": "sim:roof-nw"}, "position": {"lat": 22.5, "lon": 114.0}}
    cfg = parse_sensor_config(base, "t.toml")
    assert cfg.outbox is None and cfg.outbox_max_records == 1_000_000
    cfg = parse_sensor_config({**base, "sensor": {**base["sensor"], "outbox": "/tmp/x.sqlite",
                                                  "outbox_max_records": 50}}, "t.toml")
    assert (cfg.outbox, cfg.outbox_max_records) == ("/tmp/x.sqlite", 50)
    for key, bad in (("outbox", 3), ("outbox", ""), ("outbox_max_records", 0), ("outbox_max_records", True)):
        with pytest.raises(ConfigError, match=f"t.toml: sensor.{key}"):
            parse_sensor_config({**base, "sensor": {**base["sensor"], key: bad}}, "t.toml")


def test_resends_back_off_and_a_reconnect_makes_everything_due(tmp_path, monkeypatch):
    import sensors.outbox as ob_mod

    now = [T0]
    monkeypatch.setattr(ob_mod.time, "time", lambda: now[0])
    ob = Outbox(tmp_path / "o.sqlite", first_seq=1)
    ob.put_many([(s, encode(det(s)), False) for s in (1, 2)])
    assert [s for s, _ in ob.due()] == [1, 2]
    gaps = []
    for _ in range(8):  # send record 1 whenever it is due; see how long it waits each time
        sent_at = now[0]
        ob.mark_sent([1], resend_after_s=5.0)
        while [s for s, _ in ob.due() if s == 1] == []:
            now[0] += 0.5
        gaps.append(now[0] - sent_at)
    assert gaps == [5.0, 10.0, 20.0, 40.0, 80.0, 80.0, 80.0, 80.0]  # 5 s doubling, 4 doublings at most
    ob.mark_sent([1, 2], resend_after_s=5.0)
    assert ob.due() == []
    ob.reset_sent()  # the connection came back
    assert [s for s, _ in ob.due()] == [1, 2]
    plan = ob._db.execute("EXPLAIN QUERY PLAN SELECT seq, payload FROM outbox WHERE next_due <= ? "
                          "ORDER BY next_due, seq LIMIT ?", (T0, 10)).fetchall()
    assert "ix_outbox_due" in str(plan)  # not a scan of every record on each pump
    ob.close()


def test_an_outbox_of_the_first_version_opens_and_keeps_its_records(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY, heartbeat INTEGER NOT NULL, payload BLOB NOT NULL,
                             queued_utc REAL NOT NULL, last_sent REAL NOT NULL DEFAULT 0,
                             attempts INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('next_seq', 42);
    """)
    db.execute("INSERT INTO outbox VALUES (41, 0, ?, 1.0, 5.0, 3)", (encode(det(41)),))
    db.commit()
    db.close()
    ob = Outbox(path)
    assert ob.depth == 1 and [s for s, _ in ob.due()] == [41] and ob.next_seq() == 42
    ob.close()
