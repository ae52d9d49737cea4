"""CurveZMQ: only enrolled sensors get in; enrolling and revoking work without a restart.
Real sockets, real keys."""

from __future__ import annotations

import json
import time

import pytest
import zmq

from collector.auth import SensorGate
from rfhunt.errors import ConfigError
from rfhunt.keys import enroll, enrolled, load_public, new_keypair, revoke
from rfhunt.records import Detection
from sensors.publish import Publisher

T0 = 1_750_000_000.0


def det(seq: int, sensor: str) -> Detection:
    return Detection(sensor, seq, T0, 22.54, 114.05, "fm", 98e6, None, 200e3, -60.0, 20.0)


@pytest.fixture
def keys(tmp_path):
    k = tmp_path / "keys"
    new_keypair("collector", k)
    new_keypair("roof-01", k)
    new_keypair("stranger", k)
    return k


def _router(ctx, gate):
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.LINGER, 0)
    gate.secure(r)
    port = r.bind_to_random_port("tcp://127.0.0.1")
    return r, f"tcp://127.0.0.1:{port}"


def _receive(router, seconds, pubs=()):
    """Messages reaching the router in ``seconds`` (acked like the collector does), the
    publishers ``pubs`` pumped meanwhile (they send what their outbox holds once connected)."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for p in pubs:
            p.pump(0)
        if router.poll(50):
            frames = router.recv_multipart(copy=False)
            body = json.loads(frames[-1].bytes)
            got.append((body["sensor_id"], frames[-1].get("User-Id")))
            router.send_multipart([frames[0].bytes, json.dumps({"ok": True, "seq": body["seq"]}).encode()])
    return got


def test_only_enrolled_sensors_get_in_and_enrolment_changes_need_no_restart(keys, tmp_path):
    enrolled_dir = tmp_path / "enrolled"
    enroll(keys / "roof-01.key", enrolled_dir)
    ctx = zmq.Context()
    gate = SensorGate(ctx, keys / "collector.key_secret", enrolled_dir)
    router, endpoint = _router(ctx, gate)
    server_key = str(keys / "collector.key")
    roof = Publisher(endpoint, "roof-01", context=ctx, resend_after_s=0.3,
                     secret_key_file=str(keys / "roof-01.key_secret"), server_key_file=server_key)
    stranger = Publisher(endpoint, "stranger", context=ctx, resend_after_s=0.3, auth_retry_s=0.5,
                         secret_key_file=str(keys / "stranger.key_secret"), server_key_file=server_key)
    plain = ctx.socket(zmq.DEALER)  # no CURVE at all
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(endpoint)
    try:
        roof.send(det(1, "roof-01"))
        stranger.send(det(1, "stranger"))
        plain.send(b'{"sensor_id": "plain", "seq": 1}', zmq.NOBLOCK)
        got, deadline = [], time.monotonic() + 15  # a loaded machine may take seconds to shake hands
        while not got and time.monotonic() < deadline:
            got = _receive(router, 0.5, (roof, stranger))
        got += _receive(router, 1.0, (roof, stranger))  # the stranger had as long to try
        assert {g[0] for g in got} == {"roof-01"}  # at least once: a resend may race the ack
        assert got[0][1] == load_public(keys / "roof-01.key").decode()  # the peer's key, for the service
        while roof.acked < 1 and time.monotonic() < deadline:
            roof.pump(100)
        assert roof.acked == 1 and stranger.pending == 1
        assert gate.counters()["refused"] >= 1
        # Enrol the stranger: its queued record arrives on its next attempt (the sensor
        # connects again auth_retry_s after a refusal), no restart of either side.
        time.sleep(0.05)
        enroll(keys / "stranger.key", enrolled_dir)
        deadline = time.monotonic() + 15
        got = []
        while not got and time.monotonic() < deadline:
            got = _receive(router, 0.2, (stranger,))
        assert {g[0] for g in got} == {"stranger"}
        # Revoke roof-01: the gate no longer counts its key as enrolled.
        assert gate.is_enrolled(load_public(keys / "roof-01.key"))
        time.sleep(0.05)
        revoke("roof-01", enrolled_dir)
        assert not gate.is_enrolled(load_public(keys / "roof-01.key"))
        assert set(enrolled(enrolled_dir).values()) == {"stranger"}
    finally:
        roof.close()
        stranger.close()
        plain.close(0)
        router.close(0)
        gate.stop()
        ctx.term()


def test_key_files_and_their_errors(keys, tmp_path):
    with pytest.raises(ConfigError, match="exists already"):
        new_keypair("roof-01", keys)
    with pytest.raises(ConfigError, match="key name"):
        new_keypair("../evil", keys)
    with pytest.raises(ConfigError, match="never the secret"):
        enroll(keys / "roof-01.key_secret", tmp_path / "e")
    with pytest.raises(ConfigError, match="not a CurveZMQ certificate"):
        load_public(tmp_path / "nothing.key")
    with pytest.raises(ConfigError, match="no sensor named"):
        revoke("roof-01", tmp_path / "e")
    assert (keys / "roof-01.key_secret").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="both"):
        Publisher("tcp://127.0.0.1:1", "x", secret_key_file=str(keys / "roof-01.key_secret"))


def test_keys_commands(tmp_path, capsys):
    from rfhunt.cli import main

    k, e = tmp_path / "k", tmp_path / "e"
    assert main(["keys", "new", "roof-01", "--dir", str(k)]) == 0
    assert main(["keys", "enroll", str(k / "roof-01.key"), "--dir", str(e)]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "--dir", str(e)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "roof-01"
    assert main(["keys", "revoke", "roof-01", "--dir", str(e)]) == 0
    assert main(["keys", "revoke", "roof-01", "--dir", str(e)]) == 2
    assert "no sensor named 'roof-01'" in capsys.readouterr().err
