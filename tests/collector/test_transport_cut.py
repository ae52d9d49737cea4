"""A network cut between a sensor and its collector (issue 7): the sensor goes on producing
records while nothing gets through, and delivers every one exactly once afterwards.

The cut is a TCP relay between the two that stops moving bytes (in both directions, old
and new connections alike) for longer than the ZMTP heartbeat timeout, as a dead link
does: the sensor's heartbeats find the connection dead, it reconnects when the link is
back and resends what was never acknowledged. Real sockets, a SQLite file.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time

import pytest
import zmq

from collector.config import CollectorConfig
from collector.service import Collector
from rfhunt.records import Detection
from sensors.outbox import Outbox
from sensors.publish import Publisher

T0 = 1_750_000_000.0


class Relay:
    """A TCP relay from a local port to ``target``; while :attr:`cut` is set it moves
    nothing (bytes wait in the kernel's buffers, as behind a dead link)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.cut = threading.Event()
        self._stop = threading.Event()
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self._lsock.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._lsock, selectors.EVENT_READ)
        self._peer: dict[socket.socket, socket.socket] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _close(self, s: socket.socket) -> None:
        for x in (s, self._peer.pop(s, None)):
            if x is not None:
                self._peer.pop(x, None)
                try:
                    self._sel.unregister(x)
                except (KeyError, ValueError):
                    pass
                x.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.cut.is_set():
                time.sleep(0.01)
                continue
            for key, _ in self._sel.select(0.05):
                s = key.fileobj
                if s is self._lsock:
                    down, _ = self._lsock.accept()
                    try:
                        up = socket.create_connection(self.target)
                    except OSError:
                        down.close()
                        continue
                    self._peer[down], self._peer[up] = up, down
                    self._sel.register(down, selectors.EVENT_READ)
                    self._sel.register(up, selectors.EVENT_READ)
                    continue
                if s not in self._peer:
                    continue
                try:
                    data = s.recv(65536)
                    if data:
                        self._peer[s].sendall(data)
                        continue
                except OSError:
                    pass
                self._close(s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in list(self._peer):
            self._close(s)
        self._lsock.close()


def det(seq: int) -> Detection:
    return Detection("s1", seq, T0 + seq, 22.54, 114.05, "fm", 98e6 + 0.2e6 * (seq % 3), None, 200e3, -60.0, 20.0)


@pytest.mark.slow
def test_sensor_rides_out_a_network_cut_and_delivers_everything_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="rfhunt.sensor")
    ctx = zmq.Context()
    col = Collector(CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*",
                                    relocate_interval_s=0.5), context=ctx)
    stop = threading.Event()
    th = threading.Thread(target=col.run, args=(stop, 20), daemon=True)
    th.start()
    relay = Relay(("127.0.0.1", int(col.endpoint.rsplit(":", 1)[1])))
    pub = Publisher(f"tcp://127.0.0.1:{relay.port}", "s1", outbox=Outbox(tmp_path / "s1.sqlite", first_seq=1),
                    resend_after_s=1.0, context=ctx, heartbeat_ivl_s=0.2, heartbeat_timeout_s=0.8)
    try:
        for s in range(1, 101):
            pub.send(det(s))
        assert pub.flush(timeout_s=15)
        relay.cut.set()
        t_cut = time.monotonic()
        seq = 100
        while time.monotonic() - t_cut < 3.0:  # cut well past the heartbeat timeout; scanning goes on
            seq += 1
            pub.send(det(seq))
            pub.pump(20)
        assert pub.pending == seq - 100 and pub.acked == 100  # nothing got through meanwhile
        # the heartbeats found the link dead
        assert any("event=disconnected" in r.getMessage() for r in caplog.records)
        relay.cut.clear()
        assert pub.flush(timeout_s=30), f"{pub.pending} records still in the outbox"
        stop.set()
        th.join(10)
        stats = col.stats()
        rows = col.store.detections()
    finally:
        stop.set()
        pub.close()
        relay.close()
        col.close()
        ctx.term()
    assert sorted(d.seq for d in rows) == list(range(1, seq + 1))  # every record, once
    assert stats["stored"] == seq and stats["received"] == seq + stats["duplicates"]
