"""Several collector processes sharing one PostgreSQL database (issue 7, item 4).

Two ``rfhunt collector`` processes on one fresh database receive the very same records
from three sensors at the same time: every (sensor_id, seq) is stored once, every emitter
exists once, every detection is attached to exactly one emitter and the emitters' counts
and first/last seen times match their detections (concurrent association increments, never
overwrites). Both stop cleanly on SIGTERM and report their counters. Real processes, real
TCP sockets, PostgreSQL at 127.0.0.1:5432 (skipped when no server answers).
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
import sqlalchemy as sa
import zmq

from rfhunt.records import Detection, encode
from tests.procs import free_port, rfhunt_process

pytestmark = [pytest.mark.pg, pytest.mark.slow]

T0 = 1_750_000_000.0
PER_SENSOR = 800


def _records() -> list[Detection]:
    """Three sensors; GSM cells on five ARFCNs (decoded half the time, power sweeps the
    other half) and two FM stations."""
    out = []
    for s, (lat, lon) in enumerate([(22.540, 114.050), (22.545, 114.060), (22.535, 114.058)]):
        for k in range(PER_SENSOR):
            t = T0 + k * 0.5
            if k % 7 == 6:
                f = 98.0e6 + (k % 2) * 0.4e6
                out.append(Detection(f"s{s}", k + 1, t, lat, lon, "fm", f, None, 200e3, -55.0 - s, 25.0))
                continue
            ch = 1 + k % 5
            feats = {"decoded": True, "bsic": 10 + ch} if k % 10 < 5 else {}
            out.append(Detection(f"s{s}", k + 1, t, lat, lon, "gsm_downlink", 935.2e6 + 0.2e6 * (ch - 1), ch, 200e3,
                                 -70.0 - s - ch, 20.0, feats))
    return out


def test_two_collectors_share_one_postgresql_without_duplicates(pg_url, tmp_path):
    recs = _records()
    procs, ports, logs = [], [], []
    for i in range(2):
        port = free_port()
        cfg = tmp_path / f"c{i}.toml"
        cfg.write_text(f'[collector]\ndb_url = "{pg_url}"\nbind = "tcp://127.0.0.1:{port}"\nmax_batch = 200\n'
                       "relocate_interval_s = 3600\n[judge]\nbaseline_interval_s = 0\n")
        log = tmp_path / f"c{i}.log"
        procs.append(rfhunt_process(["collector", "--config", str(cfg)], log, verbose=False))
        ports.append(port)
        logs.append(log)
    ctx = zmq.Context()
    socks = {}
    try:
        for i, port in enumerate(ports):
            for s in range(3):
                d = ctx.socket(zmq.DEALER)
                d.setsockopt(zmq.LINGER, 0)
                d.setsockopt(zmq.SNDHWM, 0)
                d.setsockopt_string(zmq.IDENTITY, f"s{s}")
                d.connect(f"tcp://127.0.0.1:{port}")
                socks[(i, f"s{s}")] = d
        for r in recs:  # the same record to both collectors, as they arrive
            for i in range(2):
                socks[(i, r.sensor_id)].send(encode(r))
        acked: dict[int, dict[tuple[str, int], bool]] = {0: {}, 1: {}}
        poller = zmq.Poller()
        for d in socks.values():
            poller.register(d, zmq.POLLIN)
        owner = {d: key for key, d in socks.items()}
        deadline = time.monotonic() + 90
        while sum(len(a) for a in acked.values()) < 2 * len(recs) and time.monotonic() < deadline:
            for p, log in zip(procs, logs):
                assert p.poll() is None, log.read_text()[-3000:]
            for d, _ in poller.poll(200):
                i, sid = owner[d]
                reply = json.loads(d.recv())
                assert reply["ok"], reply
                acked[i][(sid, reply["seq"])] = reply["dup"]
        assert len(acked[0]) == len(acked[1]) == len(recs)
        # each record is new at exactly one of the two
        keys = {(r.sensor_id, r.seq) for r in recs}
        assert all(acked[0][k] != acked[1][k] for k in keys)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(60) == 0
    finally:
        for d in socks.values():
            d.close(0)
        ctx.term()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    # the counters each reported on stopping add up
    stored = []
    for log in logs:
        text = log.read_text()
        m = re.search(r"event=stopped received=(\d+) stored=(\d+) duplicates=(\d+) rejected=0", text)
        assert m, text[-2000:]
        assert int(m.group(1)) == len(recs) == int(m.group(2)) + int(m.group(3))
        stored.append(int(m.group(2)))
    assert sum(stored) == len(recs)

    eng = sa.create_engine(pg_url)
    try:
        with eng.connect() as c:
            q = lambda sql: c.execute(sa.text(sql)).all()  # noqa: E731
            assert q("SELECT COUNT(*), COUNT(DISTINCT (sensor_id, seq)) FROM detections") == [(len(recs), len(recs))]
            assert q("SELECT COUNT(*) FROM detections WHERE emitter_id IS NULL") == [(0,)]
            assert q("SELECT COUNT(*) = COUNT(DISTINCT assoc_key) FROM emitters") == [(True,)]
            keys = {k for (k,) in q("SELECT assoc_key FROM emitters")}
            assert {f"gsm_downlink:arfcn:{ch}:bsic:{10 + ch}" for ch in range(1, 6)} <= keys
            assert {"fm:98000000", "fm:98400000"} <= keys
            # counts and first/last seen of every emitter match its detections
            bad = q("SELECT e.id, e.n_detections, COUNT(d.id) FROM emitters e LEFT JOIN detections d "
                    "ON d.emitter_id = e.id GROUP BY e.id HAVING e.n_detections <> COUNT(d.id) "
                    "OR e.first_seen_utc IS DISTINCT FROM MIN(d.t_utc) OR e.last_seen_utc IS DISTINCT FROM MAX(d.t_utc)")
            assert bad == []
            assert q("SELECT COUNT(*) FROM sensors") == [(3,)]
    finally:
        eng.dispose()
