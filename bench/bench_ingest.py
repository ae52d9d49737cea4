"""Collector ingest benchmark (issue 7): sustained detections per second from 1, 10 and 100
sensors into SQLite and PostgreSQL, and the latency from a sensor's send to the
acknowledgement the collector gives after its database commit.

Run: .venv/bin/python bench/bench_ingest.py [--quick] [--db sqlite|postgresql|both] [--sensors 1 10 100]
     [--profile PREFIX]   (cProfile of the collector's receiving thread, one file per run)

The collector runs in its own process (``collector.service.Collector`` on a real TCP
socket); the sensors are DEALER sockets of this process, each keeping a window of
unacknowledged records in flight, sending pre-encoded records (so the figures are the
collector's, not the encoder's). After each run the database is counted: every record
must be stored exactly once. PostgreSQL runs need a server at 127.0.0.1:5432 (a fresh
database is created and dropped). Nothing here asserts a time; the script prints figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time
import uuid

import numpy as np
import zmq

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
T0 = 1_750_000_000.0


def _collector_proc(db_url: str, port_q, stop_ev, result_q, profile: str | None = None) -> None:
    import cProfile
    import logging
    import threading

    logging.basicConfig(level=logging.WARNING)
    from collector.config import CollectorConfig
    from collector.service import Collector

    cfg = CollectorConfig(db_url=db_url, bind="tcp://127.0.0.1:0", pub_bind=None, relocate_interval_s=5.0)
    with Collector(cfg) as col:
        port_q.put(col.endpoint)
        stop = threading.Event()
        prof = cProfile.Profile() if profile else None

        def serve() -> None:
            if prof is not None:
                prof.runcall(col.run, stop, 20)
            else:
                col.run(stop, 20)

        th = threading.Thread(target=serve, daemon=True)
        t_cpu = time.process_time()
        th.start()
        stop_ev.wait()
        stop.set()
        th.join()
        if prof is not None:
            prof.dump_stats(profile)
        result_q.put({"stats": col.stats(), "cpu_s": time.process_time() - t_cpu})


def _messages(n_sensors: int, n_total: int) -> list[list[bytes]]:
    from rfhunt.records import Detection, encode

    rng = np.random.default_rng(1)
    per = n_total // n_sensors
    out = []
    for s in range(n_sensors):
        lat, lon = 22.50 + 0.01 * (s % 10), 114.00 + 0.01 * (s // 10)
        msgs = []
        for k in range(per):
            arfcn = int(rng.integers(1, 40))
            msgs.append(encode(Detection(f"sensor-{s:03d}", k + 1, T0 + k * 0.05, lat, lon, "gsm_downlink",
                                         935e6 + 0.2e6 * arfcn, arfcn, 200e3, float(rng.normal(-70, 6)), 20.0,
                                         {"bsic": arfcn % 64})))
        out.append(msgs)
    return out


def _drive(endpoint: str, msgs: list[list[bytes]], window: int, timeout_s: float) -> tuple[float, np.ndarray, int]:
    """Send everything with up to ``window`` records in flight per sensor; returns (wall s,
    latencies s, acks)."""
    import json

    ctx = zmq.Context()
    socks = []
    for s in range(len(msgs)):
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.setsockopt(zmq.SNDHWM, 0)
        d.setsockopt(zmq.RCVHWM, 0)
        d.setsockopt_string(zmq.IDENTITY, f"sensor-{s:03d}")
        d.connect(endpoint)
        socks.append(d)
    poller = zmq.Poller()
    for d in socks:
        poller.register(d, zmq.POLLIN)
    nxt = [0] * len(socks)
    inflight = [0] * len(socks)
    sent_at: list[dict[int, float]] = [{} for _ in socks]
    lat = []
    total = sum(len(m) for m in msgs)
    acks = 0
    t_start = time.perf_counter()
    deadline = t_start + timeout_s
    index = {d: i for i, d in enumerate(socks)}
    while acks < total and time.perf_counter() < deadline:
        for i, d in enumerate(socks):
            while inflight[i] < window and nxt[i] < len(msgs[i]):
                d.send(msgs[i][nxt[i]], zmq.NOBLOCK)
                nxt[i] += 1
                inflight[i] += 1
                sent_at[i][nxt[i]] = time.perf_counter()
        for d, _ in poller.poll(50):
            i = index[d]
            while True:
                try:
                    reply = d.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                ack = json.loads(reply)
                t = sent_at[i].pop(ack.get("seq"), None)
                if t is not None and ack.get("ok"):
                    lat.append(time.perf_counter() - t)
                    acks += 1
                    inflight[i] -= 1
    wall = time.perf_counter() - t_start
    for d in socks:
        d.close(0)
    ctx.term()
    return wall, np.asarray(lat), acks


def _count_rows(db_url: str) -> int:
    import sqlalchemy as sa

    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        n = c.execute(sa.text("SELECT COUNT(*) FROM detections")).scalar_one()
        dup = c.execute(sa.text("SELECT COUNT(*) FROM (SELECT sensor_id, seq FROM detections GROUP BY sensor_id, seq "
                                "HAVING COUNT(*) > 1) AS d")).scalar_one()
    eng.dispose()
    return int(n) - int(dup)


def _pg_db() -> tuple[str, callable] | None:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN).close()
    except Exception:  # noqa: BLE001 - no server: PostgreSQL columns skipped
        return None
    name = f"rfhunt_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


def run_one(db: str, n_sensors: int, n_total: int, tmpdir: str, profile: str | None = None,
            window: int | None = None) -> dict | None:
    drop = None
    if db == "sqlite":
        url = f"sqlite:///{tmpdir}/ingest-{n_sensors}-{uuid.uuid4().hex[:6]}.db"
    else:
        made = _pg_db()
        if made is None:
            return None
        url, drop = made
    msgs = _messages(n_sensors, n_total)
    n_total = sum(len(m) for m in msgs)
    ctx = mp.get_context("spawn")
    port_q, result_q, stop_ev = ctx.Queue(), ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_collector_proc, args=(url, port_q, stop_ev, result_q, profile))
    proc.start()
    try:
        endpoint = port_q.get(timeout=60)
        wall, lat, acks = _drive(endpoint, msgs, window=window or max(50, 2000 // n_sensors), timeout_s=600)
        stop_ev.set()
        res = result_q.get(timeout=600)
        proc.join(60)
        rows = _count_rows(url)
    finally:
        if proc.is_alive():
            proc.terminate()
        if drop is not None:
            drop()
    return {"db": db, "sensors": n_sensors, "records": n_total, "acks": acks, "rows": rows, "wall_s": wall,
            "rate": acks / wall, "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat.size else float("nan"),
            "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else float("nan"),
            "collector_cpu_s": res["cpu_s"]}


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer records")
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--sensors", type=int, nargs="+", default=[1, 10, 100], help="sensor counts to run")
    ap.add_argument("--window", type=int, default=None,
                    help="records in flight per sensor (default: 2000 in all, at least 50 per sensor: saturation)")
    ap.add_argument("--profile", metavar="PREFIX",
                    help="write the collector's cProfile stats to PREFIX-DB-SENSORS.prof")
    args = ap.parse_args()
    n_total = 20_000 if args.quick else 100_000
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{n_total} detections per run; goals: >= 5000/s into SQLite, >= 20000/s into PostgreSQL, nothing lost")
    print(f"{'db':<10} {'sensors':>7} {'records':>8} {'stored once':>11} {'det/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'collector CPU s':>15}")
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        for db in dbs:
            for n_sensors in args.sensors:
                prof = f"{args.profile}-{db}-{n_sensors}.prof" if args.profile else None
                r = run_one(db, n_sensors, n_total, tmp, prof, args.window)
                if r is None:
                    print(f"{db:<10} no server at 127.0.0.1:5432: skipped")
                    break
                ok = "yes" if r["rows"] == r["records"] == r["acks"] else f"NO ({r['rows']})"
                print(f"{db:<10} {n_sensors:>7} {r['records']:>8} {ok:>11} {r['rate']:>8.0f} {r['p50_ms']:>7.1f} "
                      f"{r['p99_ms']:>7.1f} {r['collector_cpu_s']:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
