"""Operations (issue 7, item 6): ``rfhunt collector`` and ``rfhunt sensor`` stop cleanly on
SIGTERM without losing what is in flight, and report their counters.

A simulated sensor streams to a collector; the collector is stopped with SIGTERM in the
middle and started again while the sensor keeps scanning; then the sensor is stopped with
SIGTERM, then the collector. Every detection the sensor reports having made is stored
once. Real processes, real TCP sockets, a SQLite file.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from tests.procs import free_port, rfhunt_process, stored_detections


def _wait_for(cond, timeout_s: float, procs=()) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        for p in procs:
            assert p.poll() is None, f"process {p.args} ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


@pytest.mark.slow
def test_sigterm_of_collector_and_sensor_loses_nothing(tmp_path):
    db = tmp_path / "c.db"
    port = free_port()
    ccfg = tmp_path / "collector.toml"
    ccfg.write_text(f'[collector]\ndb_url = "sqlite:///{db}"\nbind = "tcp://127.0.0.1:{port}"\n'
                    "relocate_interval_s = 3600\nstats_interval_s = 0.5\n[judge]\nbaseline_interval_s = 0\n")
    scfg = tmp_path / "sensor.toml"
    scfg.write_text(f'[sensor]\nid = "car-1"\nsource = "sim:car-1"\ncollector = "tcp://127.0.0.1:{port}"\n'
                    f'scan_interval_s = 20\nheartbeat_s = 20\noutbox = "{tmp_path / "outbox.sqlite"}"\n'
                    '[[scan]]\nband = "gsm900-dl"\n')
    clog, slog = tmp_path / "collector.log", tmp_path / "sensor.log"
    collector = rfhunt_process(["collector", "--config", str(ccfg)], clog)
    sensor = rfhunt_process(["sensor", "--config", str(scfg)], slog)
    try:
        _wait_for(lambda: stored_detections(db)[0] >= 5, 60, [collector, sensor])
        assert _stop(collector) == 0  # in the middle of the stream
        first = stored_detections(db)[0]
        time.sleep(0.5)  # the sensor goes on scanning into its outbox meanwhile
        collector = rfhunt_process(["collector", "--config", str(ccfg)], clog)
        _wait_for(lambda: stored_detections(db)[0] >= first + 5, 60, [collector, sensor])
        assert _stop(sensor) == 0
        stop_line = re.search(r"event=stop sensor=car-1 scans=(\d+) detections=(\d+) sent=(\d+) acked=(\d+) "
                              r"outbox_depth=(\d+) outbox_dropped=(\d+)", slog.read_text())
        assert stop_line, slog.read_text()[-2000:]
        made, depth = int(stop_line.group(2)), int(stop_line.group(5))
        assert depth == 0  # the collector was up: the sensor flushed its outbox before exiting
        assert stored_detections(db) == (made, made)
        assert _stop(collector) == 0
    finally:
        for p in (collector, sensor):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    text = clog.read_text()
    assert "Traceback" not in text
    stops = re.findall(r"event=stopped received=(\d+) stored=(\d+) duplicates=(\d+) rejected=(\d+)", text)
    assert len(stops) == 2
    assert all(int(r) == int(s) + int(d) + int(j) for r, s, d, j in stops)
    assert re.search(r"event=stats received=\d+ stored=\d+", text)  # the periodic counters
    assert re.search(r"sensors_reporting=1 outbox_depth=\d+", text)  # from the sensor's heartbeats
    assert sum(int(s) for _, s, _, _ in stops) >= made  # detections, plus heartbeats
