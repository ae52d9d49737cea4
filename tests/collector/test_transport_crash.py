"""Exactly-once storage across a collector crash (issue 7): ``kill -9`` of a running
``rfhunt collector`` in the middle of a stream of 100 000 detections from a sensor's
outbox, then a restart; every detection ends up stored exactly once.

Real processes, real TCP sockets, a SQLite file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest
import zmq

from rfhunt.records import Detection, encode
from sensors.outbox import Outbox
from sensors.publish import Publisher
from tests.procs import free_port, rfhunt_process, stored_detections

T0 = 1_750_000_000.0
N = 100_000


@pytest.mark.slow
def test_kill_9_of_the_collector_mid_stream_loses_and_doubles_nothing(tmp_path):
    db = tmp_path / "c.db"
    port = free_port()
    cfg = tmp_path / "collector.toml"
    # relocation once an hour: this test is about storage, not the analysis
    cfg.write_text(f'[collector]\ndb_url = "sqlite:///{db}"\nbind = "tcp://127.0.0.1:{port}"\n'
                   "relocate_interval_s = 3600\n[judge]\nbaseline_interval_s = 0\n")
    ob = Outbox(tmp_path / "s1.sqlite", first_seq=1, max_records=2 * N)
    ob.put_many((k, encode(Detection("s1", k, T0 + k * 0.01, 22.54, 114.05, "fm", 88e6 + 0.2e6 * (k % 5), None,
                                     200e3, -60.0 - k % 7, 20.0)), False) for k in range(1, N + 1))
    ctx = zmq.Context()
    pub = Publisher(f"tcp://127.0.0.1:{port}", "s1", outbox=ob, resend_after_s=30.0, context=ctx)
    log = tmp_path / "collector.log"
    proc = rfhunt_process(["collector", "--config", str(cfg)], log)
    killed_at = None
    try:
        deadline = time.monotonic() + 120
        next_count = 0.0
        while time.monotonic() < deadline:
            pub.pump(20)
            if killed_at is None and time.monotonic() >= next_count:
                next_count = time.monotonic() + 0.25
                rows, _ = stored_detections(db)
                if rows >= N // 4:  # well into the stream: kill -9, restart
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    killed_at = stored_detections(db)[0]
                    proc = rfhunt_process(["collector", "--config", str(cfg)], log)
            elif pub.pending == 0:
                break
        assert killed_at is not None and killed_at < N, "the collector was not killed mid-stream"
        assert pub.pending == 0, f"outbox still holds {pub.pending} records"
        rows, distinct = stored_detections(db)
        assert rows == distinct == N
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT MIN(seq), MAX(seq) FROM detections").fetchone() == (1, N)
        assert pub.acked == N
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        pub.close()
        ob.close()
        ctx.term()
