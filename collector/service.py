"""The collector service: receive records over ZeroMQ, store, associate, locate, judge.

Protocol
    Sensors connect a DEALER socket to the collector's ROUTER (``bind`` in the config)
    and send single-frame messages, each ``rfhunt.records.encode(record)``. Every
    message gets one reply frame, a JSON object:

    * ``{"ok": true, "seq": N, "dup": false}`` once the record is **committed** (``dup``
      true when (sensor_id, seq) was already stored, or a heartbeat is not newer than the
      last one);
    * ``{"ok": false, "seq": N | null, "error": "..."}`` when the message is rejected
      (``seq`` salvaged from the JSON if it has an integer one) or the database refused
      the batch (then the sensor should resend).

    Messages over 16x the wire limit make ZeroMQ drop the connection (``MAXMSGSIZE``)
    instead of being read; smaller oversize ones are rejected with a reply.

Processing
    Queued messages are drained (up to ``max_batch``) and stored in one transaction, then
    acknowledged. New detections are associated with emitters at once; touched emitters
    are re-located and all verdicts re-judged at most once per ``relocate_interval_s``,
    and once more when :meth:`Collector.run` ends. With ``pub_bind`` set, each updated
    emitter is published on a PUB socket as ``[b"emitter", json]``.

Nothing a sensor sends stops the service: every failure is logged as ``key=value``
pairs and counted in :attr:`Collector.counters`.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import zmq

from collector.association import associate
from collector.config import CollectorConfig
from collector.judge import judge
from collector.localize import locate
from collector.reference import Reference, load_reference
from collector.store import EmitterRow, Store
from rfhunt.errors import RfhuntError, StoreError, WireError
from rfhunt.records import MAX_MESSAGE_BYTES, Detection, Heartbeat, decode

log = logging.getLogger(__name__)

#: ZeroMQ drops peers sending messages larger than this (bytes) without reading them.
ZMQ_MAX_MESSAGE_BYTES = 16 * MAX_MESSAGE_BYTES

# First words of rfhunt.records.decode's messages -> reason class for the counters.
_REASON_PREFIXES = (
    ("message of", "oversize"),
    ("message is not UTF-8 JSON", "not_json"),
    ("message is not a JSON object", "not_object"),
    ("non-finite number", "not_json"),
    ("unsupported wire version", "version"),
    ("unknown message type", "type"),
)


def reason_class(error: WireError) -> str:
    """Short class of a wire error, for counting (``oversize``, ``not_json``, ``field``, ...)."""
    text = str(error)
    for prefix, cls in _REASON_PREFIXES:
        if text.startswith(prefix):
            return cls
    return "field"


def _salvage_seq(payload: bytes) -> int | None:
    """The integer ``seq`` of a rejected message, if it is a JSON object that has one."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    seq = obj.get("seq") if isinstance(obj, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def relocate_emitters(
    store: Store, config: CollectorConfig, emitter_ids: Iterable[int], *, now_utc: float | None = None
) -> set[int]:
    """Re-locate the given emitters from all their detections; return those updated."""
    now = time.time() if now_utc is None else now_utc
    done = set()
    for emitter_id in sorted(set(emitter_ids)):
        em = store.emitter(emitter_id)
        dets = store.detections(emitter_id=emitter_id)
        if em is None or not dets:
            continue
        n_exp = config.path_loss_exponent[em.kind]
        loc = locate(
            [d.sensor_lat for d in dets], [d.sensor_lon for d in dets], [d.power_dbm for d in dets],
            path_loss_exponent=n_exp, shadowing_db=config.shadowing_db,
        )
        store.update_emitter(
            emitter_id, lat=loc.lat, lon=loc.lon, semi_major_m=loc.semi_major_m, semi_minor_m=loc.semi_minor_m,
            orientation_deg=loc.orientation_deg, est_power_dbm=loc.p0_dbm, path_loss_exponent=n_exp,
            rms_residual_db=loc.rms_residual_db, underdetermined=loc.underdetermined, updated_utc=now,
        )
        log.info(
            "located emitter=%d kind=%s points=%d lat=%.6f lon=%.6f semi_major_m=%s underdetermined=%s",
            emitter_id, em.kind, loc.n_points, loc.lat, loc.lon,
            "none" if loc.semi_major_m is None else f"{loc.semi_major_m:.0f}", loc.underdetermined,
        )
        done.add(emitter_id)
    return done


def rejudge(store: Store, reference: Reference, *, now_utc: float | None = None) -> set[int]:
    """Judge every emitter again; store and return the ids whose verdict or reasons changed."""
    now = time.time() if now_utc is None else now_utc
    emitters = store.emitters()
    verdicts = judge(emitters, reference)
    changed = set()
    for em in emitters:
        j = verdicts.get(em.id)
        if j is None or (j.verdict == em.verdict and j.reasons == em.reasons):
            continue
        store.update_emitter(em.id, verdict=j.verdict, reasons=list(j.reasons), updated_utc=now)
        log.info("verdict emitter=%d kind=%s verdict=%s reason=%r", em.id, em.kind, j.verdict, j.reasons[0])
        changed.add(em.id)
    return changed


def emitter_json(em: EmitterRow) -> dict[str, Any]:
    """An emitter as a JSON-ready dict (the live feed's payload)."""
    out = asdict(em)
    out["reasons"] = list(em.reasons)
    return out


class Collector:
    """The receiving service. Binds its sockets on construction.

    Parameters
    ----------
    config : CollectorConfig
    store : Store, optional
        An open store to use instead of opening ``config.db_url`` (not closed by :meth:`close`).
    context : zmq.Context, optional
        ZeroMQ context (default: the process-wide instance).

    Raises
    ------
    StoreError, ConfigError
        If the store cannot be opened or a reference file is bad.
    rfhunt.errors.RfhuntError
        If an endpoint cannot be bound (message names it).
    """

    def __init__(self, config: CollectorConfig, *, store: Store | None = None, context: zmq.Context | None = None):
        self.config = config
        self.reference = load_reference(config.gsm_csv, config.fm_registry_csv)
        self._own_store = store is None
        self.store = Store.open(config.db_url) if store is None else store
        self.counters: dict[str, Any] = {"received": 0, "stored": 0, "duplicates": 0, "rejected": {}}
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._last_relocate = 0.0
        ctx = context or zmq.Context.instance()
        self._router = ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 1000)
        self._router.setsockopt(zmq.MAXMSGSIZE, ZMQ_MAX_MESSAGE_BYTES)
        self._pub: zmq.Socket | None = None
        try:
            self._router.bind(config.bind)
            if config.pub_bind:
                self._pub = ctx.socket(zmq.PUB)
                self._pub.setsockopt(zmq.LINGER, 0)
                self._pub.bind(config.pub_bind)
        except zmq.ZMQError as exc:
            self._close_sockets()
            if self._own_store:
                self.store.close()
            raise RfhuntError(f"cannot bind collector endpoint {config.bind} / {config.pub_bind}: {exc}") from None
        self.endpoint: str = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pub_endpoint: str | None = self._pub.getsockopt_string(zmq.LAST_ENDPOINT) if self._pub else None
        self._poller = zmq.Poller()
        self._poller.register(self._router, zmq.POLLIN)
        log.info("collector bound endpoint=%s pub=%s store=%s", self.endpoint, self.pub_endpoint, self.store.url)

    # ---------------------------------------------------------------- counters
    def stats(self) -> dict[str, Any]:
        """A copy of the counters: received, stored, duplicates, rejected {reason class: n}."""
        with self._lock:
            return copy.deepcopy(self.counters)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def _reject(self, identity: bytes, reason_cls: str, error: str, seq: int | None) -> None:
        with self._lock:
            rej = self.counters["rejected"]
            rej[reason_cls] = rej.get(reason_cls, 0) + 1
        log.warning("rejected peer=%s reason=%s seq=%s error=%r", identity.hex(), reason_cls, seq, error)
        self._reply(identity, {"ok": False, "seq": seq, "error": error})

    def _reply(self, identity: bytes, body: dict[str, Any]) -> None:
        try:
            self._router.send_multipart([identity, json.dumps(body).encode()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # peer gone or its queue full: it will resend
            log.warning("reply dropped peer=%s error=%r", identity.hex(), str(exc))

    # ---------------------------------------------------------------- the loop
    def run(self, stop_event: threading.Event, poll_timeout_ms: int = 100) -> None:
        """Serve until ``stop_event`` is set, then locate what is still pending."""
        log.info("collector running endpoint=%s", self.endpoint)
        while not stop_event.is_set():
            try:
                self.step(poll_timeout_ms)
            except Exception:  # noqa: BLE001 - log a bug, keep serving
                log.exception("collector step failed; going on")
                stop_event.wait(poll_timeout_ms / 1000.0)
        self.flush()
        log.info("collector stopped %s", self._summary())

    def step(self, timeout_ms: int = 100) -> int:
        """Wait up to ``timeout_ms`` for messages, handle a batch; return messages read."""
        n = 0
        if self._poller.poll(timeout_ms):
            n = self._handle_batch()
        if self._pending and time.monotonic() - self._last_relocate >= self.config.relocate_interval_s:
            self.flush()
        return n

    def flush(self) -> None:
        """Re-locate the emitters touched since the last pass and re-judge; publish changes."""
        pending, self._pending = self._pending, set()
        self._last_relocate = time.monotonic()
        try:
            located = relocate_emitters(self.store, self.config, pending)
            changed = rejudge(self.store, self.reference)
        except Exception as exc:  # noqa: BLE001 - one bad emitter must not stop the service
            log.error("relocate failed emitters=%d error=%r", len(pending), f"{type(exc).__name__}: {exc}")
            self._pending |= pending
            return
        if self._pub is not None:
            for emitter_id in sorted(located | changed):
                em = self.store.emitter(emitter_id)
                if em is not None:
                    try:
                        self._pub.send_multipart([b"emitter", json.dumps(emitter_json(em)).encode()], zmq.NOBLOCK)
                    except zmq.ZMQError as exc:
                        log.warning("publish dropped emitter=%d error=%r", emitter_id, str(exc))

    def _handle_batch(self) -> int:
        batch: list[tuple[bytes, Detection | Heartbeat]] = []
        n = 0
        while n < self.config.max_batch:
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            self._count("received")
            identity, payload = frames[0], frames[1:]
            if len(payload) != 1:
                self._reject(identity, "framing", f"expected 1 frame, got {len(payload)}", None)
                continue
            try:
                batch.append((identity, decode(payload[0])))
            except WireError as exc:
                self._reject(identity, reason_class(exc), str(exc), _salvage_seq(payload[0]))
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill the service
                log.exception("decoder failed peer=%s", identity.hex())
                self._reject(identity, "internal", f"{type(exc).__name__}: {exc}", None)
        if batch:
            self._store_batch(batch)
        return n

    def _store_batch(self, batch: list[tuple[bytes, Detection | Heartbeat]]) -> None:
        try:
            flags = self.store.add_batch([rec for _, rec in batch])
        except StoreError as exc:
            for identity, rec in batch:
                self._reject(identity, "store", str(exc), rec.seq)
            return
        stored = sum(flags)
        self._count("stored", stored)
        self._count("duplicates", len(flags) - stored)
        for (identity, rec), ok in zip(batch, flags):
            self._reply(identity, {"ok": True, "seq": rec.seq, "dup": not ok})
        log.info("stored batch=%d new=%d dup=%d", len(batch), stored, len(flags) - stored)
        if any(ok and isinstance(rec, Detection) for (_, rec), ok in zip(batch, flags)):
            try:
                self._pending |= associate(self.store)
            except StoreError as exc:
                log.error("association failed error=%r", str(exc))

    def _summary(self) -> str:
        s = self.stats()
        rej = " ".join(f"rejected_{k}={v}" for k, v in sorted(s["rejected"].items()))
        return f"received={s['received']} stored={s['stored']} duplicates={s['duplicates']} {rej}".strip()

    # ---------------------------------------------------------------- shutdown
    def _close_sockets(self) -> None:
        self._router.close()
        if self._pub is not None:
            self._pub.close()

    def close(self) -> None:
        """Close the sockets and (if this collector opened it) the store."""
        self._close_sockets()
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
