"""Evidence snippets: short IQ (or audio) recordings tied to a detection, kept for a case.

A snippet is stored content-addressed: its bytes (little-endian complex64 ``cf32_le`` for
IQ, float32 for audio) are named by their SHA-512. With a SQLite file database they go in
an ``evidence/`` folder beside the file (``evidence/ab/abcdef....cf32``; the row keeps the
path relative to the database's folder); otherwise (PostgreSQL, in-memory SQLite, or
``inline=True``) into the row's ``blob`` column. Reading back checks the SHA-512.

The table is defined on :class:`collector.store.Base` and created by migration ``0004``.
Sensors send their snippets over the wire in chunks (:class:`rfhunt.records.EvidenceChunk`);
:mod:`collector.evidence_ingest` joins them and keeps them here.

Units: times Unix seconds (UTC), frequencies and rates Hz, positions WGS84 degrees.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from sqlalchemy import Double, ForeignKey, Integer, LargeBinary, String, insert, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column

from collector.store import Base, DetectionModel, Store
from rfhunt.errors import StoreError

#: Kinds of evidence and the numpy dtype of their stored samples.
KINDS = {"iq": np.dtype("<c8"), "audio": np.dtype("<f4")}
#: File suffix of each kind in the evidence folder.
SUFFIX = {"iq": ".cf32", "audio": ".f32"}
EVIDENCE_DIRNAME = "evidence"


class EvidenceModel(Base):
    """One evidence snippet (see module notes); ``path`` or ``blob`` holds the samples."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detection_id: Mapped[int] = mapped_column(ForeignKey("detections.id"), index=True)
    # no foreign key: association may merge emitters and delete one; the detection's own
    # emitter_id is the live link, this one what it was when the snippet was taken
    emitter_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    sample_rate_hz: Mapped[float] = mapped_column(Double)
    center_freq_hz: Mapped[float] = mapped_column(Double)
    t_utc: Mapped[float] = mapped_column(Double)
    sensor_id: Mapped[str] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Double, nullable=True)
    lon: Mapped[float | None] = mapped_column(Double, nullable=True)
    n_samples: Mapped[int] = mapped_column(Integer)
    sha512: Mapped[str] = mapped_column(String(128), index=True)
    path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@dataclass(frozen=True)
class EvidenceRow:
    """A stored snippet's description (the samples come from :func:`read_evidence`).

    Attributes
    ----------
    emitter_id : int or None
        The emitter its detection belongs to now (or, for a detection not associated, the
        one given when it was added).
    sample_rate_hz, center_freq_hz : float
        Hz.
    t_utc : float
        Time of the first sample, Unix seconds.
    lat, lon : float or None
        Where the sensor was, WGS84 degrees.
    sha512 : str
        Hex SHA-512 of the stored bytes.
    path : str or None
        File of the bytes, relative to the database's folder (None: kept in the row).
    """

    id: int
    detection_id: int
    emitter_id: int | None
    kind: str
    sample_rate_hz: float
    center_freq_hz: float
    t_utc: float
    sensor_id: str
    lat: float | None
    lon: float | None
    n_samples: int
    sha512: str
    path: str | None


_COLS = [f.name for f in fields(EvidenceRow)]


def evidence_root(store: Store) -> Path | None:
    """Folder the files of a SQLite file database live under (its own folder), or None when
    snippets go into the database (PostgreSQL, in-memory SQLite)."""
    url = make_url(store.engine.url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent


def add_evidence(store: Store, detection_id: int, samples: np.ndarray, *, sample_rate_hz: float,
                 center_freq_hz: float, kind: str = "iq", t_utc: float | None = None,
                 emitter_id: int | None = None, inline: bool = False) -> EvidenceRow:
    """Keep a snippet as evidence of a stored detection.

    Parameters
    ----------
    store : Store
    detection_id : int
        The detection it documents; its sensor, position, time and emitter are copied.
    samples : ndarray
        Complex IQ (stored as complex64, full scale 1) for ``kind="iq"``, real audio
        (stored as float32) for ``kind="audio"``.
    sample_rate_hz, center_freq_hz : float
        Hz (for audio, ``center_freq_hz`` is the station's frequency).
    kind : {"iq", "audio"}
    t_utc : float, optional
        Time of the first sample, Unix s (default: the detection's time).
    emitter_id : int, optional
        Emitter to record when the detection has none yet.
    inline : bool
        Keep the bytes in the database even when a folder could hold them.

    Returns
    -------
    EvidenceRow

    Raises
    ------
    StoreError
        If the kind, the samples or the rates are invalid, the detection does not exist, or
        the database or the evidence folder refuse the write.
    """
    if kind not in KINDS:
        raise StoreError(f"evidence kind {kind!r} is not one of {', '.join(KINDS)}")
    arr = np.asarray(samples)
    if arr.ndim != 1 or arr.size == 0:
        raise StoreError(f"evidence samples must be a non-empty 1-D array, got shape {arr.shape}")
    if kind == "iq" and not np.iscomplexobj(arr):
        raise StoreError(f"IQ evidence must be complex, got {arr.dtype}")
    if kind == "audio" and np.iscomplexobj(arr):
        raise StoreError("audio evidence must be real")
    if not (sample_rate_hz > 0 and center_freq_hz > 0):
        raise StoreError(f"evidence needs positive rates: sample_rate_hz={sample_rate_hz}, "
                         f"center_freq_hz={center_freq_hz}")
    payload = np.ascontiguousarray(arr, dtype=KINDS[kind]).tobytes()
    digest = hashlib.sha512(payload).hexdigest()
    det_t = DetectionModel.__table__
    try:
        with store.engine.connect() as conn:
            det = conn.execute(select(det_t.c.sensor_id, det_t.c.t_utc, det_t.c.sensor_lat, det_t.c.sensor_lon,
                                      det_t.c.emitter_id).where(det_t.c.id == detection_id)).first()
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.url} refused a read: {str(exc).splitlines()[0]}") from None
    if det is None:
        raise StoreError(f"no detection with id {detection_id} to attach evidence to")
    rel_path, blob = place_payload(store, payload, digest, kind, inline=inline)
    values = {
        "detection_id": detection_id, "emitter_id": det.emitter_id if det.emitter_id is not None else emitter_id,
        "kind": kind, "sample_rate_hz": float(sample_rate_hz), "center_freq_hz": float(center_freq_hz),
        "t_utc": float(det.t_utc if t_utc is None else t_utc), "sensor_id": det.sensor_id,
        "lat": det.sensor_lat, "lon": det.sensor_lon, "n_samples": int(arr.size), "sha512": digest,
        "path": rel_path, "blob": blob,
    }
    ev_t = EvidenceModel.__table__
    try:
        with store.engine.begin() as conn:
            new_id = conn.execute(insert(ev_t).values(**values).returning(ev_t.c.id)).scalar_one()
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.url} refused a write: {str(exc).splitlines()[0]}") from None
    return EvidenceRow(id=new_id, **{k: values[k] for k in _COLS if k != "id"})


def place_payload(store: Store, payload: bytes, digest: str, kind: str, *, inline: bool = False
                  ) -> tuple[str | None, bytes | None]:
    """Put a snippet's bytes where they are kept: ``(path, None)`` with the file written
    (content-addressed, so writing it again is harmless) beside a SQLite file database,
    else ``(None, payload)`` for the row's ``blob``.

    Raises
    ------
    StoreError
        If the file cannot be written.
    """
    root = None if inline else evidence_root(store)
    if root is None:
        return None, payload
    rel = Path(EVIDENCE_DIRNAME) / digest[:2] / f"{digest}{SUFFIX[kind]}"
    target = root / rel
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            tmp.write_bytes(payload)
            os.replace(tmp, target)
    except OSError as exc:
        raise StoreError(f"cannot write evidence file {target}: {exc.strerror or exc}") from None
    return rel.as_posix(), None


def _select():
    ev_t, det_t = EvidenceModel.__table__, DetectionModel.__table__
    cols = [ev_t.c[name] for name in _COLS if name != "emitter_id"]
    live = det_t.c.emitter_id
    return select(*cols, live.label("live_emitter"), ev_t.c.emitter_id).join(
        det_t, det_t.c.id == ev_t.c.detection_id).order_by(ev_t.c.t_utc, ev_t.c.id), ev_t, det_t


def _rows(store: Store, stmt) -> list[EvidenceRow]:
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.url} refused a read: {str(exc).splitlines()[0]}") from None
    out = []
    for r in rows:
        m = dict(r._mapping)
        live, given = m.pop("live_emitter"), m.pop("emitter_id")
        out.append(EvidenceRow(emitter_id=live if live is not None else given, **m))
    return out


def evidence_for_emitter(store: Store, emitter_id: int) -> list[EvidenceRow]:
    """Snippets of an emitter's detections (or recorded for it), oldest first."""
    stmt, ev_t, det_t = _select()
    stmt = stmt.where(or_(det_t.c.emitter_id == emitter_id,
                          (det_t.c.emitter_id.is_(None)) & (ev_t.c.emitter_id == emitter_id)))
    return _rows(store, stmt)


def evidence(store: Store, evidence_id: int) -> EvidenceRow | None:
    """One snippet's description by id, or None."""
    stmt, ev_t, _ = _select()
    rows = _rows(store, stmt.where(ev_t.c.id == evidence_id))
    return rows[0] if rows else None


def read_evidence(store: Store, row: EvidenceRow | int) -> np.ndarray:
    """The samples of a snippet (complex64 IQ or float32 audio), checked against its SHA-512.

    Raises
    ------
    StoreError
        If the snippet does not exist, its file is missing, or its bytes do not match the
        stored SHA-512 (the message names the file or the row).
    """
    if not isinstance(row, EvidenceRow):
        found = evidence(store, int(row))
        if found is None:
            raise StoreError(f"no evidence with id {row}")
        row = found
    if row.path is not None:
        root = evidence_root(store)
        target = (root or Path.cwd()) / row.path
        try:
            payload = target.read_bytes()
        except OSError as exc:
            raise StoreError(f"evidence {row.id}: cannot read {target}: {exc.strerror or exc}") from None
        where = str(target)
    else:
        ev_t = EvidenceModel.__table__
        try:
            with store.engine.connect() as conn:
                payload = conn.execute(select(ev_t.c.blob).where(ev_t.c.id == row.id)).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise StoreError(f"database {store.url} refused a read: {str(exc).splitlines()[0]}") from None
        if payload is None:
            raise StoreError(f"evidence {row.id} has neither a file nor stored bytes")
        where = f"evidence row {row.id}"
    if hashlib.sha512(payload).hexdigest() != row.sha512:
        raise StoreError(f"{where}: bytes do not match the evidence's SHA-512 (altered or corrupt)")
    dtype = KINDS.get(row.kind)
    if dtype is None or len(payload) % dtype.itemsize:
        raise StoreError(f"{where}: {len(payload)} bytes are not whole {row.kind} samples")
    return np.frombuffer(payload, dtype=dtype).astype(dtype.newbyteorder("="))
