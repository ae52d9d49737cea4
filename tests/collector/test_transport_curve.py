"""A running collector with CurveZMQ admits only enrolled sensors (issue 7, item 2).

Real sockets, real keys, a SQLite file: an enrolled sensor's records are stored; an unknown
key is refused at the handshake, logged and counted, and nothing of it is stored; a key
revoked while its sensor is connected is refused per message without a restart (and the
sensor keeps its records); a sensor may not write under another sensor's name.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import zmq

from collector.config import CollectorConfig, load_collector_config
from collector.service import Collector
from rfhunt.errors import ConfigError
from rfhunt.keys import enroll, new_keypair, revoke
from rfhunt.records import Detection
from sensors.publish import Publisher

T0 = 1_750_000_000.0


def det(seq: int, sensor: str) -> Detection:
    return Detection(sensor, seq, T0 + seq, 22.54, 114.05, "fm", 98e6, None, 200e3, -60.0, 20.0)


def _stored(collector: Collector) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for d in collector.store.detections():
        out.setdefault(d.sensor_id, []).append(d.seq)
    return {k: sorted(v) for k, v in out.items()}


def _pump_until(pubs, cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in pubs:
            p.pump(20)
        if cond():
            return True
    return cond()


def test_running_collector_admits_only_enrolled_keys(tmp_path, caplog):
    keys, enrolled_dir = tmp_path / "keys", tmp_path / "enrolled"
    for name in ("collector", "roof-01", "stranger"):
        new_keypair(name, keys)
    enroll(keys / "roof-01.key", enrolled_dir)
    # the collector's TOML: paths relative to the file
    cfg_file = tmp_path / "collector.toml"
    cfg_file.write_text('[collector]\ndb_url = "sqlite:///c.db"\nbind = "tcp://127.0.0.1:*"\n'
                        'secret_key = "keys/collector.key_secret"\nenrolled_dir = "enrolled"\n'
                        'relocate_interval_s = 0.2\n')
    cfg = load_collector_config(cfg_file)
    assert cfg.secret_key == tmp_path / "keys" / "collector.key_secret" and cfg.enrolled_dir == enrolled_dir
    ctx = zmq.Context()
    caplog.set_level(logging.INFO)
    collector = Collector(cfg, context=ctx)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop, 20), daemon=True)
    thread.start()
    server_key = str(keys / "collector.key")

    def publisher(name: str, key: str, **kw) -> Publisher:
        return Publisher(collector.endpoint, name, context=ctx, resend_after_s=0.3, secret_key_file=str(key),
                         server_key_file=server_key, **kw)

    roof = publisher("roof-01", keys / "roof-01.key_secret")
    stranger = publisher("stranger", keys / "stranger.key_secret")
    plain = ctx.socket(zmq.DEALER)  # no CURVE at all: the handshake fails, nothing is read
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(collector.endpoint)
    impostor = None
    try:
        for s in range(1, 6):
            roof.send(det(s, "roof-01"))
            stranger.send(det(s, "stranger"))
        plain.send(b"{}", zmq.NOBLOCK)
        assert _pump_until([roof, stranger], lambda: roof.pending == 0)
        assert _pump_until([stranger], lambda: collector.stats().get("refused", 0) >= 1)
        assert stranger.pending == 5 and stranger.acked == 0
        assert _stored(collector) == {"roof-01": [1, 2, 3, 4, 5]}
        assert any("event=refused reason=not_enrolled" in r.getMessage() for r in caplog.records)

        # Revoked while connected: refused per message, no restart; the sensor keeps its
        # records (the reply says retry) for the day it is enrolled again.
        revoke("roof-01", enrolled_dir)
        for s in range(6, 9):
            roof.send(det(s, "roof-01"))
        assert _pump_until([roof], lambda: roof.deferred >= 3)
        assert roof.pending == 3 and collector.stats()["rejected"].get("not_enrolled", 0) >= 3
        assert _stored(collector) == {"roof-01": [1, 2, 3, 4, 5]}
        enroll(keys / "roof-01.key", enrolled_dir)
        assert _pump_until([roof], lambda: roof.pending == 0)
        assert _stored(collector) == {"roof-01": list(range(1, 9))}

        # An enrolled key writing under another sensor's name is rejected for good.
        impostor = publisher("roof-02", keys / "roof-01.key_secret")
        impostor.send(det(1, "roof-02"))
        assert _pump_until([impostor], lambda: impostor.rejected == 1)
        assert impostor.pending == 0 and collector.stats()["rejected"]["identity"] == 1
        assert "roof-02" not in _stored(collector) and "stranger" not in _stored(collector)
    finally:
        stop.set()
        thread.join(10)
        for p in (roof, stranger, impostor):
            if p is not None:
                p.close()
        plain.close(0)
        collector.close()
        ctx.term()
    assert not thread.is_alive()
    stats = collector.stats()
    assert stats["stored"] == 8 and stats["refused"] >= 1 and stats["admitted"] >= 2


def test_curve_config_keys_go_together(tmp_path):
    (tmp_path / "enrolled").mkdir()
    new_keypair("collector", tmp_path)
    f = tmp_path / "c.toml"
    f.write_text('[collector]\nenrolled_dir = "enrolled"\n')
    with pytest.raises(ConfigError, match="secret_key and enrolled_dir go together"):
        load_collector_config(f)
    f.write_text('[collector]\nsecret_key = "collector.key_secret"\nenrolled_dir = "nowhere"\n')
    with pytest.raises(ConfigError, match="enrolled_dir: no such folder"):
        load_collector_config(f)
    f.write_text('[collector]\nsecret_key = "missing.key_secret"\nenrolled_dir = "enrolled"\n')
    with pytest.raises(ConfigError, match="secret_key: no such file"):
        load_collector_config(f)
    with pytest.raises(ConfigError, match="go together"):
        CollectorConfig(secret_key=tmp_path / "collector.key_secret")
