"""Collector ingest benchmark (issue 7): sustained detections per second from 1, 10 and 100
sensors into SQLite and PostgreSQL, and the latency from a sensor's send to the
acknowledgement the collector gives after its database commit.

Run: .venv/bin/python bench/bench_ingest.py [--quick] [--db sqlite|postgresql|both] [--sensors 1 10 100]
     [--profile PREFIX]   (cProfile of the collector's receiving thread, its CPU time, one file per run)
     [--max-batch N] [--repeat N] [--relocate-interval S]

Besides the rate and the latency it prints the CPU time per detection of the collector
process while the records came in (both its threads), of the PostgreSQL server processes
serving its database, and of the sending sensors (this process): on a loaded machine the
rate swings with the load, the CPU cost per detection much less.

The collector runs in its own process (``collector.service.Collector`` on a real TCP
socket); the sensors are DEALER sockets of this process, each keeping a window of
unacknowledged records in flight, sending pre-encoded records (so the figures are the
collector's, not the encoder's), and sending again a record unanswered for 3 s, as a
sensor's outbox does (the collector's ROUTER socket drops replies past its high-water mark
when its I/O thread falls behind; the count of resends is printed). After each run the
database is counted: every record must be stored exactly once. PostgreSQL runs need a
server at 127.0.0.1:5432 (a fresh database is created and dropped). Nothing here asserts
a time; the script prints figures.
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


def _collector_proc(db_url: str, port_q, stop_ev, result_q, profile: str | None = None,
                    max_batch: int | None = None, relocate_interval_s: float = 5.0) -> None:
    import cProfile
    import logging
    import threading

    logging.basicConfig(level=logging.WARNING)
    from collector.config import CollectorConfig
    from collector.service import Collector

    extra = {} if max_batch is None else {"max_batch": max_batch}
    cfg = CollectorConfig(db_url=db_url, bind="tcp://127.0.0.1:0", pub_bind=None,
                          relocate_interval_s=relocate_interval_s, **extra)
    with Collector(cfg) as col:
        port_q.put(col.endpoint)
        stop = threading.Event()
        # the thread's CPU time, not the wall clock: on a loaded machine waits for a core
        # would otherwise land on whatever line was running
        prof = cProfile.Profile(time.thread_time) if profile else None

        def serve() -> None:
            if prof is not None:
                prof.runcall(col.run, stop, 20)
            else:
                col.run(stop, 20)

        th = threading.Thread(target=serve, daemon=True)
        t_cpu = time.process_time()
        th.start()
        stop_ev.wait()
        cpu_ingest = time.process_time() - t_cpu  # the last ack is in: what the ingest took
        stop.set()
        th.join()
        if prof is not None:
            prof.dump_stats(profile)
        result_q.put({"stats": col.stats(), "cpu_s": time.process_time() - t_cpu, "cpu_ingest_s": cpu_ingest})


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


#: A sender sends a record again when it has had no reply for this long, s (as a sensor's
#: outbox does: the collector's ROUTER drops replies beyond its high-water mark when its I/O
#: thread falls behind, and the resend is then acknowledged as a duplicate).
RESEND_S = 3.0


def _drive(endpoint: str, msgs: list[list[bytes]], window: int, timeout_s: float
           ) -> tuple[float, np.ndarray, int, int]:
    """Send everything with up to ``window`` records in flight per sensor, sending again what
    has had no reply for :data:`RESEND_S`; returns (wall s, latencies s from the first send,
    acks, resends)."""
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
    last_try: list[dict[int, float]] = [{} for _ in socks]
    resends = 0
    next_check = time.perf_counter() + RESEND_S
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
                last_try[i].pop(ack.get("seq"), None)
                if t is not None and ack.get("ok"):
                    lat.append(time.perf_counter() - t)
                    acks += 1
                    inflight[i] -= 1
        now = time.perf_counter()
        if now >= next_check:
            next_check = now + 0.5
            for i, d in enumerate(socks):
                for seq, t in list(sent_at[i].items()):
                    if now - last_try[i].get(seq, t) >= RESEND_S:
                        d.send(msgs[i][seq - 1], zmq.NOBLOCK)
                        last_try[i][seq] = now
                        resends += 1
    wall = time.perf_counter() - t_start
    for d in socks:
        d.close(0)
    ctx.term()
    return wall, np.asarray(lat), acks, resends


def _count_rows(db_url: str) -> int:
    import sqlalchemy as sa

    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        n = c.execute(sa.text("SELECT COUNT(*) FROM detections")).scalar_one()
        dup = c.execute(sa.text("SELECT COUNT(*) FROM (SELECT sensor_id, seq FROM detections GROUP BY sensor_id, seq "
                                "HAVING COUNT(*) > 1) AS d")).scalar_one()
    eng.dispose()
    return int(n) - int(dup)


def _pg_backend_cpu(db_name: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to ``db_name`` (from
    /proc; empty when not readable)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db_name,))]
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(parts[11]) + int(parts[12])) / tick  # utime + stime
    return out


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


def default_window(n_sensors: int) -> int:
    """Records in flight per sensor: 2,000 in all, at least 50 per sensor."""
    return max(50, 2000 // n_sensors)


def run_one(db: str, n_sensors: int, n_total: int, tmpdir: str, profile: str | None = None,
            window: int | None = None, max_batch: int | None = None, relocate_interval_s: float = 5.0
            ) -> dict | None:
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
    proc = ctx.Process(target=_collector_proc, args=(url, port_q, stop_ev, result_q, profile, max_batch,
                                                     relocate_interval_s))
    proc.start()
    db_name = url.rsplit("/", 1)[1]
    try:
        endpoint = port_q.get(timeout=60)
        pg0 = _pg_backend_cpu(db_name) if db == "postgresql" else {}
        c0 = time.process_time()
        wall, lat, acks, resends = _drive(endpoint, msgs, window=window or default_window(n_sensors), timeout_s=600)
        driver_cpu = time.process_time() - c0
        pg1 = _pg_backend_cpu(db_name) if db == "postgresql" else {}
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
            "collector_cpu_s": res["cpu_s"], "collector_us": res["cpu_ingest_s"] / n_total * 1e6,
            "server_us": (sum(pg1.values()) - sum(pg0.get(p, 0.0) for p in pg1)) / n_total * 1e6 if pg1 else None,
            "driver_us": driver_cpu / n_total * 1e6, "resends": resends}


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
    ap.add_argument("--max-batch", type=int, default=None,
                    help="the collector's max_batch (default: the configuration's default)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each case")
    ap.add_argument("--relocate-interval", type=float, default=5.0,
                    help="the collector's relocate_interval_s (a long one keeps re-location and judging, "
                         "which share the process, out of the run)")
    args = ap.parse_args()
    n_total = 20_000 if args.quick else 100_000
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{n_total} detections per run; goals: >= 5000/s into SQLite, >= 20000/s into PostgreSQL, nothing lost")
    print("CPU us/det while the records came in: collector process (both threads), PostgreSQL backends, senders")
    print(f"{'db':<10} {'sensors':>7} {'records':>8} {'stored once':>11} {'det/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'collector':>9} {'server':>7} {'senders':>7} {'resent':>6}")
    dbs = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        for db in dbs:
            for n_sensors in args.sensors:
                for k in range(args.repeat):
                    prof = f"{args.profile}-{db}-{n_sensors}{'' if k == 0 else f'-{k}'}.prof" if args.profile else None
                    r = run_one(db, n_sensors, n_total, tmp, prof, args.window, args.max_batch,
                                args.relocate_interval)
                    if r is None:
                        print(f"{db:<10} no server at 127.0.0.1:5432: skipped")
                        break
                    ok = "yes" if r["rows"] == r["records"] == r["acks"] else f"NO ({r['rows']})"
                    server = "-" if r["server_us"] is None else f"{r['server_us']:.1f}"
                    print(f"{db:<10} {n_sensors:>7} {r['records']:>8} {ok:>11} {r['rate']:>8.0f} {r['p50_ms']:>7.1f} "
                          f"{r['p99_ms']:>7.1f} {r['collector_us']:>9.1f} {server:>7} {r['driver_us']:>7.1f} "
                          f"{r['resends']:>6}",
                          flush=True)


if __name__ == "__main__":
    main()
