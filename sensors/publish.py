"""Sending a sensor's records to the collector over ZeroMQ (DEALER -> collector's ROUTER).

The collector answers each message with a JSON acknowledgement after its database commit.
This publisher counts them; records not yet acknowledged are kept in memory and resent on
:meth:`Publisher.flush` until acknowledged or the deadline passes.
"""

from __future__ import annotations

import json
import logging
import time

import zmq

from rfhunt.records import Detection, Heartbeat, encode

log = logging.getLogger("rfhunt.sensor")


class Publisher:
    """A DEALER socket connected to the collector.

    Parameters
    ----------
    endpoint : str
        The collector's ROUTER endpoint, e.g. ``tcp://127.0.0.1:5555``.
    sensor_id : str
        Used as the socket identity so the collector can tell sensors apart.
    """

    def __init__(self, endpoint: str, sensor_id: str, *, context: zmq.Context | None = None) -> None:
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        self.sock.setsockopt(zmq.HEARTBEAT_IVL, 5000)
        self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15000)
        self.sock.setsockopt_string(zmq.IDENTITY, sensor_id)
        self.sock.connect(endpoint)
        self.endpoint = endpoint
        self.pending: dict[int, bytes] = {}
        self.sent = 0
        self.acked = 0
        self.rejected = 0

    def send(self, record: Detection | Heartbeat) -> None:
        data = encode(record)
        self.pending[record.seq] = data
        self.sock.send(data)
        self.sent += 1
        self._drain_acks(0)

    def _drain_acks(self, timeout_ms: int) -> None:
        while self.sock.poll(timeout_ms, zmq.POLLIN):
            timeout_ms = 0
            reply = self.sock.recv()
            try:
                ack = json.loads(reply)
            except ValueError:
                log.warning("event=bad_ack endpoint=%s reply=%r", self.endpoint, reply[:80])
                continue
            seq = ack.get("seq")
            if ack.get("ok"):
                if self.pending.pop(seq, None) is not None:
                    self.acked += 1
            else:
                self.rejected += 1
                self.pending.pop(seq, None)
                log.warning("event=rejected seq=%s error=%s", seq, ack.get("error"))

    def flush(self, timeout_s: float = 10.0, resend_after_s: float = 2.0) -> bool:
        """Wait until every sent record is acknowledged, resending stragglers.

        Returns True when nothing is pending.
        """
        deadline = time.monotonic() + timeout_s
        last_send = time.monotonic()
        while self.pending and time.monotonic() < deadline:
            self._drain_acks(100)
            if self.pending and time.monotonic() - last_send > resend_after_s:
                for data in list(self.pending.values()):
                    self.sock.send(data)
                last_send = time.monotonic()
        return not self.pending

    def close(self) -> None:
        self.sock.close()
