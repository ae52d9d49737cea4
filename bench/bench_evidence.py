"""Evidence transfer benchmark (issue 5): how long a sensor's evidence takes to reach the
collector's store over a real socket, as the wire carries it (chunks through the outbox,
acknowledged after commit, joined and checked against the SHA-512).

Run: .venv/bin/python bench/bench_evidence.py [--db sqlite|postgresql|both] [--repeat 3]

The collector runs in a thread of this process on a TCP socket; one publisher sends the
snippets of one FM request (5 s of 48 kHz audio and 5 s of 266.7 kS/s channel IQ: 11.6 MB)
and of one GSM request (1 s of 1.0833 MS/s channel IQ: 8.7 MB). Figures: wall time from the
first chunk sent to the snippet kept, MB/s of snippet bytes, and seconds of evidence per
second of wall time. Nothing here asserts a time; the script prints figures.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import platform
import tempfile
import threading
import time
import uuid

import numpy as np
import zmq

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
T0 = 1_750_000_000.0

SNIPPETS = {  # name: (kind, seconds, sample rate, complex)
    "FM audio 5 s": ("audio", 5.0, 48_000.0),
    "FM channel IQ 5 s": ("iq", 5.0, 266_666.7),
    "GSM channel IQ 1 s": ("iq", 1.0, 1_083_333.3),
}


def _pg_url() -> str | None:
    try:
        import psycopg

        name = f"rfhunt_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    except Exception as exc:  # noqa: BLE001 - no server: skip that database, say so
        print(f"PostgreSQL skipped: {exc}")
        return None


def _drop_pg(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(db_url: str, repeat: int) -> list[tuple[str, float, float, float]]:
    from collector.config import CollectorConfig
    from collector.service import Collector
    from rfhunt.records import Detection, evidence_chunks
    from sensors.publish import Publisher

    ctx = zmq.Context()
    col = Collector(CollectorConfig(db_url=db_url, bind="tcp://127.0.0.1:*", auto_verdicts=()), context=ctx)
    stop = threading.Event()
    th = threading.Thread(target=col.run, args=(stop, 20), daemon=True)
    th.start()
    pub = Publisher(col.endpoint, "bench-1", context=ctx)
    rng = np.random.default_rng(1)
    seq = itertools.count(1)
    out = []
    try:
        for name, (kind, seconds, rate) in SNIPPETS.items():
            n = int(seconds * rate)
            x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) * 0.1 if kind == "iq" \
                else (0.3 * rng.standard_normal(n)).astype(np.float32)
            walls = []
            for _ in range(repeat):
                det = Detection("bench-1", next(seq), T0, 22.5, 114.0, "fm", 98e6, None, 200e3, -60.0, 30.0, {})
                pub.send(det)
                chunks = evidence_chunks(x, kind=kind, sensor_id="bench-1", seqs=seq, t_utc=T0, sensor_lat=22.5,
                                         sensor_lon=114.0, detection_seq=det.seq, sample_rate_hz=rate,
                                         center_freq_hz=98e6)
                kept = col.stats()["evidence_kept"]
                t0 = time.perf_counter()
                for c in chunks:
                    pub.send(c)
                while col.stats()["evidence_kept"] == kept and time.perf_counter() - t0 < 120:
                    pub.pump(5)
                walls.append(time.perf_counter() - t0)
            wall = float(np.median(walls))
            mb = x.nbytes / 1e6
            out.append((name, mb, wall, seconds / wall))
    finally:
        stop.set()
        th.join(30)
        col.close()
        pub.close()
        ctx.term()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    targets = []
    if args.db in ("sqlite", "both"):
        targets.append(("SQLite", None))
    if args.db in ("postgresql", "both"):
        targets.append(("PostgreSQL", "pg"))
    print("| database | snippet | MB | wall s (median) | MB/s | s of evidence per s |")
    print("|---|---|---|---|---|---|")
    for label, kind in targets:
        if kind is None:
            tmp = tempfile.TemporaryDirectory()
            url = f"sqlite:///{tmp.name}/bench.db"
        else:
            url = _pg_url()
            if url is None:
                continue
        try:
            for name, mb, wall, ratio in run(url, args.repeat):
                print(f"| {label} | {name} | {mb:.1f} | {wall:.2f} | {mb / wall:.1f} | {ratio:.1f} |")
        finally:
            if kind is None:
                tmp.cleanup()
            else:
                _drop_pg(url)


if __name__ == "__main__":
    main()
