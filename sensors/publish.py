"""Sending a sensor's records to the collector over ZeroMQ (DEALER -> collector's ROUTER).

Every record goes into the sensor's :class:`~sensors.outbox.Outbox` (on disk) before it is
sent, and leaves it only when the collector acknowledges it, which the collector does after
its database commit: at-least-once delivery, and the collector's unique (sensor_id, seq)
makes storage exactly-once. Records not acknowledged within ``resend_after_s`` are sent
again, and all of them at once when the connection comes back (the socket's monitor
reports the reconnect), so a network cut of minutes or a collector restart loses nothing.
A record the collector rejects as malformed is dropped (resending it cannot help) and
counted; one it refuses for a reason that is not the record's (``"retry": true`` in the
reply: its database refused the write, or this sensor's key is not enrolled at the moment)
stays in the outbox and is sent again.

The collector also sends evidence requests on this socket
(:class:`rfhunt.records.EvidenceRequest`); :meth:`Publisher.take_requests` hands them to
the node, each once.
"""

from __future__ import annotations

import json
import logging
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from rfhunt.errors import ConfigError, WireError
from rfhunt.keys import load_public, load_secret
from rfhunt.records import Detection, EvidenceChunk, EvidenceRequest, Heartbeat, decode_request, encode
from sensors.outbox import Outbox

log = logging.getLogger("rfhunt.sensor")


class Publisher:
    """A DEALER socket connected to the collector, backed by an outbox.

    Parameters
    ----------
    endpoint : str
        The collector's ROUTER endpoint, e.g. ``tcp://127.0.0.1:5555``.
    sensor_id : str
        Used as the socket identity so the collector can tell sensors apart.
    outbox : Outbox, optional
        Where records wait for their acknowledgement (default: one in memory, which does
        not survive the process).
    resend_after_s : float
        An unacknowledged record is sent again after this long, then after twice that, and
        so on up to :data:`sensors.outbox.MAX_RESEND_INTERVAL_S` (s); all at once when the
        connection comes back.
    context : zmq.Context, optional
    secret_key_file, server_key_file : str, optional
        The sensor's ``.key_secret`` certificate and the collector's public ``.key``: with
        both, the connection is CurveZMQ-encrypted and the collector admits the sensor only
        while its key is enrolled (:mod:`rfhunt.keys`).
    auth_retry_s : float
        After the collector refused this sensor's key (ZeroMQ does not retry that by
        itself), connect again this many seconds later: enrolling it takes effect then.
    heartbeat_ivl_s, heartbeat_timeout_s : float
        ZMTP heartbeats: a ping this often, and a connection that answers nothing for
        ``heartbeat_timeout_s`` is dropped and made again (a dead link is found), s.
    """

    def __init__(self, endpoint: str, sensor_id: str, *, outbox: Outbox | None = None,
                 resend_after_s: float = 5.0, context: zmq.Context | None = None,
                 secret_key_file: str | None = None, server_key_file: str | None = None,
                 auth_retry_s: float = 60.0, heartbeat_ivl_s: float = 5.0, heartbeat_timeout_s: float = 15.0) -> None:
        self.ctx = context or zmq.Context.instance()
        self.outbox = outbox if outbox is not None else Outbox(None)
        self._own_outbox = outbox is None
        self.resend_after_s = float(resend_after_s)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)  # what is unsent stays in the outbox
        self.sock.setsockopt(zmq.SNDHWM, 10_000)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection
        self.sock.setsockopt(zmq.HEARTBEAT_IVL, int(heartbeat_ivl_s * 1000))
        self.sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(heartbeat_timeout_s * 1000))
        self.sock.setsockopt(zmq.RECONNECT_IVL, 500)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 10_000)
        self.sock.setsockopt_string(zmq.IDENTITY, sensor_id)
        if (secret_key_file is None) != (server_key_file is None):
            self.sock.close(0)
            raise ConfigError("CurveZMQ needs both the sensor's secret key file and the collector's public key file")
        if secret_key_file is not None:
            public, secret = load_secret(secret_key_file)
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
            self.sock.curve_serverkey = load_public(server_key_file)
        self._monitor = self.sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self.sock.connect(endpoint)
        self.endpoint = endpoint
        self.sent = 0
        self.acked = 0
        self.rejected = 0
        self.deferred = 0
        self.resent = 0
        self.connected = False
        self._last_pump = 0.0
        self.auth_retry_s = float(auth_retry_s)
        self._refused_at: float | None = None
        self._requests: list[EvidenceRequest] = []
        self._request_ids: set[str] = set()

    # ---------------------------------------------------------------- sending
    def next_seq(self) -> int:
        """A sequence number never used before by this sensor's outbox."""
        return self.outbox.next_seq()

    def send(self, record: Detection | Heartbeat | EvidenceChunk) -> None:
        """Queue ``record`` in the outbox and send it (now if connected, else later)."""
        data = encode(record)
        dropped = self.outbox.put(record.seq, data, heartbeat=isinstance(record, Heartbeat))
        if dropped:
            log.warning("event=outbox_full dropped=%d depth=%d max=%d", dropped, self.outbox.depth,
                        self.outbox.max_records)
        if self._send_now(record.seq, data):
            self.outbox.mark_sent([record.seq], self.resend_after_s)
        self.pump(0)

    def _send_now(self, seq: int, data: bytes) -> bool:
        try:
            self.sock.send(data, zmq.NOBLOCK)
        except zmq.Again:  # no live connection (or its queue is full): the outbox keeps it
            return False
        self.sent += 1
        return True

    def pump(self, timeout_ms: int = 0) -> None:
        """Take acknowledgements and connection events, and resend what is due."""
        self._events()
        if self._refused_at is not None and time.monotonic() - self._refused_at >= self.auth_retry_s:
            self._refused_at = None
            self.sock.disconnect(self.endpoint)
            self.sock.connect(self.endpoint)
        self._drain_acks(timeout_ms)
        now = time.monotonic()
        if now - self._last_pump < 0.2:
            return
        self._last_pump = now
        went = []
        for seq, data in self.outbox.due(limit=2000):
            if not self._send_now(seq, data):
                break  # not connected: the rest stays due
            went.append(seq)
        if went:
            self.outbox.mark_sent(went, self.resend_after_s)
            self.resent += len(went)

    def _events(self) -> None:
        while self._monitor.poll(0):
            try:
                ev = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:  # pragma: no cover - poll said there was one
                break
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:  # messages can flow from now on
                self.connected = True
                self.outbox.reset_sent()  # everything not yet acknowledged goes again
                log.info("event=connected endpoint=%s outbox=%d", self.endpoint, self.outbox.depth)
            elif ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.connected = False
                self._refused_at = time.monotonic()
                log.error("event=refused endpoint=%s reason=not_enrolled (ask the collector's operator to "
                          "enroll this sensor's public key)", self.endpoint)
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self.connected = False
                log.warning("event=disconnected endpoint=%s outbox=%d", self.endpoint, self.outbox.depth)

    def _drain_acks(self, timeout_ms: int) -> None:
        acked = []
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return
        while True:
            try:
                reply = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                ack = json.loads(reply)
                seq = ack.get("seq")
            except (ValueError, AttributeError):
                log.warning("event=bad_ack endpoint=%s reply=%r", self.endpoint, reply[:80])
                continue
            if ack.get("type") == "evidence_request":
                self._take_request(ack)
                continue
            if ack.get("ok"):
                acked.append(seq)
            elif ack.get("retry") is True:
                # not the record's fault (the database refused it, or this sensor's key is not
                # enrolled now): it stays in the outbox and goes again after resend_after_s
                self.deferred += 1
                log.warning("event=deferred seq=%s reason=%s error=%s", seq, ack.get("reason"), ack.get("error"))
            else:
                self.rejected += 1
                if isinstance(seq, int):
                    self.outbox.ack([seq])  # malformed for good: resending cannot help
                log.warning("event=rejected seq=%s reason=%s error=%s", seq, ack.get("reason"), ack.get("error"))
        valid = [s for s in acked if isinstance(s, int)]
        if valid:
            self.acked += self.outbox.ack(valid)

    def _take_request(self, msg: dict) -> None:
        try:
            req = decode_request(msg)
        except (WireError, TypeError, ValueError) as exc:  # whatever comes, the sensor goes on
            log.warning("event=bad_request endpoint=%s error=%s", self.endpoint, exc)
            return
        if req.request_id not in self._request_ids:
            self._request_ids.add(req.request_id)
            self._requests.append(req)
            log.info("event=evidence_request request=%s kind=%s freq_hz=%.0f seconds=%.1f", req.request_id,
                     req.kind, req.freq_hz, req.seconds)

    def take_requests(self) -> list[EvidenceRequest]:
        """Evidence requests received since the last call (each request once, however often
        the collector sends it)."""
        out, self._requests = self._requests, []
        return out

    @property
    def pending(self) -> int:
        """Records waiting in the outbox for an acknowledgement."""
        return self.outbox.depth

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued record is acknowledged (resending as due); True when the
        outbox is empty. What is left stays in the outbox for the next start."""
        deadline = time.monotonic() + timeout_s
        while self.outbox.depth and time.monotonic() < deadline:
            self.pump(100)
        return self.outbox.depth == 0

    def close(self) -> None:
        self.sock.disable_monitor()
        self._monitor.close(0)
        self.sock.close(0)
        if self._own_outbox:
            self.outbox.close()
