"""Evidence that sensors send: requests out, chunks in, snippets kept.

An operator (``rfhunt evidence request``) or the collector's own judgement (an FM carrier
judged ``unlicensed`` or ``suspicious``, a GSM cell judged ``suspicious`` or ``rogue``) files
an **evidence request** for a carrier: a row
in ``evidence_requests``. The collector sends every open request to its sensors
(:class:`rfhunt.records.EvidenceRequest`); a sensor that finds the carrier records the
snippets (an FM station's demodulated audio and channel IQ; a GSM cell's channel IQ) and
sends them as
:class:`rfhunt.records.EvidenceChunk` records, which travel like detections: outbox,
acknowledgement after commit, stored once per (sensor_id, seq).

Chunks wait in ``evidence_parts`` until the last one of a snippet arrives; then, in one
transaction, the parts are taken (their bytes cleared, their rows kept so that a chunk
sent again is still known as a duplicate), joined, checked against the snippet's
SHA-512 and kept with :mod:`collector.evidence` as evidence of the detection the sensor
named. A snippet whose detection has not arrived yet waits for it; one whose bytes do not
match its SHA-512 is discarded and counted; parts of a snippet that never completes are
dropped after ``part_ttl_s``.

Both tables are defined on :class:`collector.store.Base` and created by migration ``0005``.
Units: times Unix seconds (UTC), frequencies Hz.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (BigInteger, Boolean, Double, Index, Integer, LargeBinary, String, UniqueConstraint, and_,
                        delete, func, insert, select, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from collector.evidence import EvidenceModel, EvidenceRow, place_payload
from collector.store import Base, DetectionModel, Store
from rfhunt.errors import StoreError
from rfhunt.records import EVIDENCE_KINDS, MAX_EVIDENCE_SECONDS, EvidenceChunk, EvidenceRequest

log = logging.getLogger("rfhunt.collector")

#: Parts of a snippet that is still incomplete after this long are dropped, s.
PART_TTL_S = 86400.0
#: Verdicts on which the collector asks for evidence by itself ...
AUTO_VERDICTS = ("unlicensed", "suspicious", "rogue")
#: ... of emitters of these kinds (the ones sensors record snippets of).
AUTO_KINDS = ("fm", "gsm_downlink")
#: Carriers sensors record evidence of: an FM station (monitor scan), a GSM cell (decode scan).
SERVED_KINDS = AUTO_KINDS


class EvidencePartModel(Base):
    """One received chunk (see the module notes); ``data`` is cleared once it is used."""

    __tablename__ = "evidence_parts"
    __table_args__ = (UniqueConstraint("sensor_id", "seq", name="uq_evidence_parts_sensor_seq"),
                      Index("ix_evidence_parts_snippet", "sensor_id", "detection_seq", "sha512"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sensor_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    detection_seq: Mapped[int] = mapped_column(BigInteger)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))
    sample_rate_hz: Mapped[float] = mapped_column(Double)
    center_freq_hz: Mapped[float] = mapped_column(Double)
    t_utc: Mapped[float] = mapped_column(Double)
    n_samples: Mapped[int] = mapped_column(Integer)
    sha512: Mapped[str] = mapped_column(String(128))
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    received_utc: Mapped[float] = mapped_column(Double)


class EvidenceRequestModel(Base):
    """One request for evidence of a carrier; sent to sensors while open."""

    __tablename__ = "evidence_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_utc: Mapped[float] = mapped_column(Double)
    expires_utc: Mapped[float] = mapped_column(Double, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    freq_hz: Mapped[float] = mapped_column(Double)
    seconds: Mapped[float] = mapped_column(Double)
    want: Mapped[str] = mapped_column(String(32))
    emitter_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    sensor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(256))
    served_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    served_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


@dataclass(frozen=True)
class RequestRow:
    """A stored evidence request.

    ``state`` is ``"served"`` (a snippet answering it was kept), ``"expired"`` or ``"open"``
    at the time it was read.
    """

    id: int
    created_utc: float
    expires_utc: float
    kind: str
    freq_hz: float
    seconds: float
    want: tuple[str, ...]
    emitter_id: int | None
    sensor_id: str | None
    reason: str
    served_utc: float | None
    served_by: str | None
    state: str

    @property
    def request_id(self) -> str:
        """The id sensors see."""
        return f"r{self.id}"

    def wire(self) -> EvidenceRequest:
        """The message for sensors."""
        return EvidenceRequest(self.request_id, self.kind, self.freq_hz, self.seconds, self.want, self.expires_utc)


@dataclass
class AssembleResult:
    """What one pass of :func:`assemble` did."""

    kept: list[EvidenceRow] = field(default_factory=list)
    corrupt: int = 0
    waiting: int = 0  # complete snippets whose detection has not arrived yet


class _Waiting(Exception):
    """A complete snippet's detection is not stored yet (rolls its transaction back)."""


def _err(store: Store, exc: SQLAlchemyError, what: str) -> StoreError:
    return StoreError(f"database {store.url} refused {what}: {str(exc).splitlines()[0]}")


# ---------------------------------------------------------------------------- requests
def add_request(store: Store, *, kind: str, freq_hz: float, now_utc: float, ttl_s: float = 3600.0,
                seconds: float = 5.0, want: Sequence[str] = ("audio", "iq"), emitter_id: int | None = None,
                sensor_id: str | None = None, reason: str = "operator") -> RequestRow:
    """File a request for evidence of the carrier ``freq_hz`` (Hz) of detection kind ``kind``.

    Parameters
    ----------
    ttl_s : float
        The request is sent to sensors for this long, s.
    seconds : float
        Length of each snippet, s (at most :data:`rfhunt.records.MAX_EVIDENCE_SECONDS`).
    want : sequence of {"audio", "iq"}
    sensor_id : str, optional
        Ask only this sensor (default: every sensor).

    Raises
    ------
    StoreError
        If a value is out of range or the database refuses the write.
    """
    if kind not in SERVED_KINDS:
        raise StoreError(f"evidence request: kind {kind!r} is not one sensors record evidence of "
                         f"({', '.join(SERVED_KINDS)})")
    if not 1.0 <= freq_hz <= 10e9:
        raise StoreError(f"evidence request: freq_hz {freq_hz!r} is not a frequency in Hz")
    if not 0.01 <= seconds <= MAX_EVIDENCE_SECONDS:
        raise StoreError(f"evidence request: seconds {seconds!r} is not in [0.01, {MAX_EVIDENCE_SECONDS:g}]")
    if not ttl_s > 0:
        raise StoreError(f"evidence request: ttl_s {ttl_s!r} must be positive")
    want = tuple(dict.fromkeys(want))
    bad = [w for w in want if w not in EVIDENCE_KINDS]
    if bad or not want:
        raise StoreError(f"evidence request: want {list(want)!r} must name kinds from {', '.join(EVIDENCE_KINDS)}")
    if kind != "fm" and "iq" not in want:
        raise StoreError(f"evidence request: a {kind} carrier has no audio; want must include 'iq'")
    values = dict(created_utc=float(now_utc), expires_utc=float(now_utc + ttl_s), kind=kind, freq_hz=float(freq_hz),
                  seconds=float(seconds), want=",".join(want), emitter_id=emitter_id, sensor_id=sensor_id,
                  reason=reason[:256], served_utc=None, served_by=None)
    t = EvidenceRequestModel.__table__
    try:
        with store.engine.begin() as conn:
            new_id = conn.execute(insert(t).values(**values).returning(t.c.id)).scalar_one()
    except SQLAlchemyError as exc:
        raise _err(store, exc, "an evidence request") from None
    log.info("event=evidence_requested request=r%d kind=%s freq_hz=%.0f emitter=%s sensor=%s reason=%r", new_id,
             kind, freq_hz, emitter_id, sensor_id or "any", reason)
    return _request_row({"id": new_id, **values}, now_utc)


def _request_row(m: dict, now_utc: float) -> RequestRow:
    state = "served" if m["served_utc"] is not None else "expired" if now_utc > m["expires_utc"] else "open"
    return RequestRow(m["id"], m["created_utc"], m["expires_utc"], m["kind"], m["freq_hz"], m["seconds"],
                      tuple(w for w in m["want"].split(",") if w), m["emitter_id"], m["sensor_id"], m["reason"],
                      m["served_utc"], m["served_by"], state)


def requests(store: Store, now_utc: float, *, open_only: bool = False, emitter_id: int | None = None
             ) -> list[RequestRow]:
    """Stored requests, newest first (``open_only``: those still to be sent)."""
    t = EvidenceRequestModel.__table__
    stmt = select(t).order_by(t.c.id.desc())
    if open_only:
        stmt = stmt.where(t.c.served_utc.is_(None), t.c.expires_utc >= now_utc)
    if emitter_id is not None:
        stmt = stmt.where(t.c.emitter_id == emitter_id)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise _err(store, exc, "a read") from None
    return [_request_row(dict(r._mapping), now_utc) for r in rows]


def auto_requests(store: Store, emitters: Iterable, verdicts: dict, now_utc: float, *, ttl_s: float = 3600.0,
                  seconds: float = 5.0, gsm_seconds: float = 1.0, verdict_set: Sequence[str] = AUTO_VERDICTS
                  ) -> list[RequestRow]:
    """File a request for each FM station or GSM downlink cell judged one of ``verdict_set``
    that has none yet (one per emitter: the first snippets are the evidence; an operator
    asks for more). FM requests ask for ``seconds`` of audio and IQ, GSM ones for
    ``gsm_seconds`` of the cell's channel IQ.

    ``verdicts`` maps emitter id to an object with a ``verdict`` (a
    :class:`collector.judge.Judgement`); emitters are :class:`collector.store.EmitterRow`.
    """
    todo = [em for em in emitters if em.kind in AUTO_KINDS
            and getattr(verdicts.get(em.id), "verdict", None) in verdict_set]
    if not todo:
        return []
    t = EvidenceRequestModel.__table__
    try:
        with store.engine.connect() as conn:
            have = set(conn.execute(select(t.c.emitter_id).where(t.c.emitter_id.in_([em.id for em in todo]))).scalars())
    except SQLAlchemyError as exc:
        raise _err(store, exc, "a read") from None
    out = []
    for em in todo:
        if em.id in have:
            continue
        fm = em.kind == "fm"
        out.append(add_request(store, kind=em.kind, freq_hz=em.freq_hz, now_utc=now_utc, ttl_s=ttl_s,
                               seconds=seconds if fm else gsm_seconds, want=("audio", "iq") if fm else ("iq",),
                               emitter_id=em.id, reason=f"verdict {verdicts[em.id].verdict}"))
    return out


# ---------------------------------------------------------------------------- chunks
def store_chunks(store: Store, chunks: Sequence[EvidenceChunk], now_utc: float) -> list[bool]:
    """Keep received chunks in one transaction; per chunk, True if new, False if a duplicate
    (its (sensor_id, seq) was stored before).

    Raises
    ------
    StoreError
        If the database refuses the write (nothing of the batch is kept then).
    """
    if not chunks:
        return []
    rows = [dict(sensor_id=c.sensor_id, seq=c.seq, detection_seq=c.detection_seq, request_id=c.request_id,
                 kind=c.kind, sample_rate_hz=c.sample_rate_hz, center_freq_hz=c.center_freq_hz, t_utc=c.t_utc,
                 n_samples=c.n_samples, sha512=c.sha512, part=c.part, parts=c.parts, data=c.data, done=False,
                 received_utc=float(now_utc)) for c in chunks]
    t = EvidencePartModel.__table__
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    stmt = (dialect.insert(t).on_conflict_do_nothing(index_elements=["sensor_id", "seq"])
            .returning(t.c.sensor_id, t.c.seq))
    try:
        with store.engine.begin() as conn:
            new = {(sid, seq) for sid, seq in conn.execute(stmt, rows)}
    except SQLAlchemyError as exc:
        raise _err(store, exc, "evidence chunks") from None
    out, seen = [], set()
    for c in chunks:
        key = (c.sensor_id, c.seq)
        out.append(key in new and key not in seen)
        seen.add(key)
    return out


def assemble(store: Store, now_utc: float, *, sensors: Iterable[str] | None = None) -> AssembleResult:
    """Join every snippet whose chunks have all arrived and keep it as evidence.

    Parameters
    ----------
    sensors : iterable of str, optional
        Look only at these sensors' snippets (the collector passes the senders of the
        chunks it just stored; the periodic pass looks at all).

    Raises
    ------
    StoreError
        If the database refuses a read or a write.
    """
    t = EvidencePartModel.__table__
    snippet = (t.c.sensor_id, t.c.detection_seq, t.c.kind, t.c.sha512)
    stmt = (select(*snippet, func.max(t.c.parts)).where(t.c.done.is_(False)).group_by(*snippet)
            .having(func.count(func.distinct(t.c.part)) == func.max(t.c.parts)))
    if sensors is not None:
        names = sorted(set(sensors))
        if not names:
            return AssembleResult()
        stmt = stmt.where(t.c.sensor_id.in_(names))
    try:
        with store.engine.connect() as conn:
            ready = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise _err(store, exc, "a read") from None
    out = AssembleResult()
    for sensor_id, det_seq, kind, digest, parts in ready:
        _assemble_one(store, sensor_id, det_seq, kind, digest, parts, now_utc, out)
    return out


def _assemble_one(store: Store, sensor_id: str, det_seq: int, kind: str, digest: str, parts: int, now_utc: float,
                  out: AssembleResult) -> None:
    t, det_t, ev_t = EvidencePartModel.__table__, DetectionModel.__table__, EvidenceModel.__table__
    req_t = EvidenceRequestModel.__table__
    mine = and_(t.c.sensor_id == sensor_id, t.c.detection_seq == det_seq, t.c.kind == kind, t.c.sha512 == digest,
                t.c.done.is_(False))
    try:
        with store.engine.begin() as conn:
            # taking the parts comes first: the UPDATE takes the write lock (SQLite) or the
            # rows' locks (PostgreSQL), so a second pass, in this process or another
            # collector sharing the database, waits and then finds nothing left to take
            if not conn.execute(update(t).where(mine).values(done=True)).rowcount:
                return
            det = conn.execute(select(det_t.c.id, det_t.c.sensor_lat, det_t.c.sensor_lon, det_t.c.emitter_id)
                               .where(det_t.c.sensor_id == sensor_id, det_t.c.seq == det_seq)).first()
            if det is None:
                raise _Waiting  # rolls the taking back: the detection has not arrived yet
            key = and_(t.c.sensor_id == sensor_id, t.c.detection_seq == det_seq, t.c.kind == kind,
                       t.c.sha512 == digest, t.c.done.is_(True), t.c.data.is_not(None))
            rows = conn.execute(select(t.c.part, t.c.data, t.c.request_id, t.c.sample_rate_hz, t.c.center_freq_hz,
                                       t.c.t_utc, t.c.n_samples).where(key).order_by(t.c.part, t.c.id)).all()
            by_part = {}
            for r in rows:
                by_part.setdefault(r.part, r)
            conn.execute(update(t).where(key).values(data=None))
            first = by_part.get(0)
            payload = b"".join(by_part[k].data for k in range(parts) if k in by_part)
            if first is None or len(by_part) != parts or hashlib.sha512(payload).hexdigest() != digest or \
                    len(payload) != first.n_samples * EVIDENCE_KINDS[kind]:
                out.corrupt += 1
                log.error("event=evidence_corrupt sensor=%s detection_seq=%d kind=%s parts=%d bytes=%d "
                          "reason='bytes do not match the snippet's SHA-512 or length'", sensor_id, det_seq, kind,
                          parts, len(payload))
                return
            path, blob = place_payload(store, payload, digest, kind)
            values = {
                "detection_id": det.id, "emitter_id": det.emitter_id, "kind": kind,
                "sample_rate_hz": first.sample_rate_hz, "center_freq_hz": first.center_freq_hz, "t_utc": first.t_utc,
                "sensor_id": sensor_id, "lat": det.sensor_lat, "lon": det.sensor_lon, "n_samples": first.n_samples,
                "sha512": digest, "path": path, "blob": blob,
            }
            new_id = conn.execute(insert(ev_t).values(**values).returning(ev_t.c.id)).scalar_one()
            # every request the snippet answers (an operator's and the collector's own may ask
            # for the same carrier: the sensor sends the snippet once for each)
            answered = sorted({int(r.request_id[1:]) for r in rows
                               if r.request_id and r.request_id.startswith("r") and r.request_id[1:].isdigit()})
            request_id = ",".join(f"r{i}" for i in answered) or None
            if answered:
                conn.execute(update(req_t).where(req_t.c.id.in_(answered), req_t.c.served_utc.is_(None))
                             .values(served_utc=float(now_utc), served_by=sensor_id))
    except _Waiting:
        out.waiting += 1
        return
    except SQLAlchemyError as exc:
        raise _err(store, exc, "an evidence snippet") from None
    row = EvidenceRow(id=new_id, **{k: values[k] for k in ("detection_id", "emitter_id", "kind", "sample_rate_hz",
                                                            "center_freq_hz", "t_utc", "sensor_id", "lat", "lon",
                                                            "n_samples", "sha512", "path")})
    out.kept.append(row)
    log.info("event=evidence_kept evidence=%d sensor=%s detection=%d emitter=%s kind=%s seconds=%.1f request=%s",
             new_id, sensor_id, det.id, det.emitter_id, kind, first.n_samples / first.sample_rate_hz,
             request_id or "-")


def drop_stale_parts(store: Store, now_utc: float, ttl_s: float = PART_TTL_S) -> int:
    """Drop the parts of snippets still incomplete ``ttl_s`` after they arrived; returns how
    many (their senders gave up: outbox full, or the sensor's store lost)."""
    t = EvidencePartModel.__table__
    try:
        with store.engine.begin() as conn:
            n = conn.execute(delete(t).where(t.c.done.is_(False), t.c.received_utc < now_utc - ttl_s)).rowcount
    except SQLAlchemyError as exc:
        raise _err(store, exc, "a delete") from None
    if n:
        log.warning("event=evidence_parts_dropped parts=%d reason='snippet incomplete after %.0f s'", n, ttl_s)
    return n
