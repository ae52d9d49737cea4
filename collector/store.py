"""The collector's database: sensors, their tracks, detections and emitters.

SQLAlchemy 2.0 models over SQLite (default, WAL journal) or PostgreSQL with one schema,
kept under the alembic migrations shipped in ``collector/migrations``; :meth:`Store.open`
upgrades the database to the newest revision. Readers get frozen dataclasses, never ORM
objects, so nothing leaks a session.

Units: times are Unix seconds (UTC, float), positions WGS84 degrees, frequencies Hz,
powers dBm, distances metres, angles degrees clockwise from north.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from rfhunt.errors import StoreError
from rfhunt.records import Detection, Heartbeat

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    """Declarative base of the collector's tables."""


class SensorModel(Base):
    """A sensor node, with its last known state (``last_position_utc`` dates the position)."""

    __tablename__ = "sensors"
    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mobile: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    lat: Mapped[float | None] = mapped_column(Double, nullable=True)
    lon: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_position_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_heartbeat_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    samples_read: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dropped_samples: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    source_state: Mapped[str | None] = mapped_column(String(256), nullable=True)


class SensorPositionModel(Base):
    """One point of a sensor's track; one row per (sensor, time).

    Points are added for mobile sensors, and for others only when their position changes.
    The unique (sensor_id, t_utc) index also serves lookups by sensor.
    """

    __tablename__ = "sensor_positions"
    __table_args__ = (UniqueConstraint("sensor_id", "t_utc", name="uq_sensor_positions_sensor_t"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sensor_id: Mapped[str] = mapped_column(ForeignKey("sensors.sensor_id"))
    t_utc: Mapped[float] = mapped_column(Double)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)


class EmitterModel(Base):
    """A transmitter inferred from associated detections, with its location and verdict."""

    __tablename__ = "emitters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assoc_key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    freq_hz: Mapped[float] = mapped_column(Double)
    channel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_seen_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_seen_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    n_detections: Mapped[int] = mapped_column(Integer, default=0)
    lat: Mapped[float | None] = mapped_column(Double, nullable=True)
    lon: Mapped[float | None] = mapped_column(Double, nullable=True)
    semi_major_m: Mapped[float | None] = mapped_column(Double, nullable=True)
    semi_minor_m: Mapped[float | None] = mapped_column(Double, nullable=True)
    orientation_deg: Mapped[float | None] = mapped_column(Double, nullable=True)
    est_power_dbm: Mapped[float | None] = mapped_column(Double, nullable=True)
    path_loss_exponent: Mapped[float | None] = mapped_column(Double, nullable=True)
    rms_residual_db: Mapped[float | None] = mapped_column(Double, nullable=True)
    underdetermined: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_utc: Mapped[float | None] = mapped_column(Double, nullable=True)


class DetectionModel(Base):
    """One stored :class:`~rfhunt.records.Detection`; (sensor_id, seq) is unique."""

    __tablename__ = "detections"
    __table_args__ = (UniqueConstraint("sensor_id", "seq", name="uq_detections_sensor_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sensor_id: Mapped[str] = mapped_column(ForeignKey("sensors.sensor_id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    t_utc: Mapped[float] = mapped_column(Double, index=True)
    sensor_lat: Mapped[float] = mapped_column(Double)
    sensor_lon: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(String(16))
    freq_hz: Mapped[float] = mapped_column(Double)
    channel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bandwidth_hz: Mapped[float] = mapped_column(Double)
    power_dbm: Mapped[float] = mapped_column(Double)
    snr_db: Mapped[float] = mapped_column(Double)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    emitter_id: Mapped[int | None] = mapped_column(ForeignKey("emitters.id"), nullable=True, index=True)


@dataclass(frozen=True)
class SensorRow:
    """A sensor as stored (``None`` where nothing has told yet; ``mobile`` comes from heartbeats)."""

    sensor_id: str
    mobile: bool | None
    lat: float | None
    lon: float | None
    last_position_utc: float | None
    last_heartbeat_utc: float | None
    samples_read: int | None
    dropped_samples: int | None
    source_state: str | None


@dataclass(frozen=True)
class DetectionRow:
    """A stored detection: the wire fields plus the database ``id`` and ``emitter_id``."""

    id: int
    sensor_id: str
    seq: int
    t_utc: float
    sensor_lat: float
    sensor_lon: float
    kind: str
    freq_hz: float
    channel: int | None
    bandwidth_hz: float
    power_dbm: float
    snr_db: float
    features: dict[str, Any]
    emitter_id: int | None


@dataclass(frozen=True)
class EmitterRow:
    """An emitter as stored.

    Attributes
    ----------
    assoc_key : str
        The association key that gathers its detections (see :mod:`collector.association`).
    first_seen_utc, last_seen_utc, updated_utc : float or None
        Unix seconds, UTC.
    lat, lon : float or None
        Estimated position, WGS84 degrees.
    semi_major_m, semi_minor_m : float or None
        Semi-axes of the 95 % confidence ellipse, metres.
    orientation_deg : float or None
        Bearing of the major axis, degrees clockwise from north, in [0, 180).
    est_power_dbm : float or None
        Reference power P0 of the log-distance model: the power a sensor like ours would
        receive **1 m** from the emitter (so EIRP plus receive antenna gain minus cable loss,
        extrapolated along the fitted path-loss law), dBm.
    path_loss_exponent : float or None
        Exponent n used in the fit.
    rms_residual_db : float or None
        RMS of the fit residuals over distinct sensor positions, dB.
    underdetermined : bool or None
        True when fewer than three distinct positions heard it (position is then the
        strongest sensor's).
    verdict : str or None
        See :mod:`collector.judge`.
    reasons : list of str
        Human-readable reasons for the verdict.
    """

    id: int
    assoc_key: str
    kind: str
    freq_hz: float
    channel: int | None
    first_seen_utc: float | None
    last_seen_utc: float | None
    n_detections: int
    lat: float | None
    lon: float | None
    semi_major_m: float | None
    semi_minor_m: float | None
    orientation_deg: float | None
    est_power_dbm: float | None
    path_loss_exponent: float | None
    rms_residual_db: float | None
    underdetermined: bool | None
    verdict: str | None
    reasons: tuple[str, ...]
    updated_utc: float | None


#: Emitter columns :meth:`Store.update_emitter` may set.
EMITTER_UPDATABLE = frozenset(
    {
        "lat", "lon", "semi_major_m", "semi_minor_m", "orientation_deg", "est_power_dbm",
        "path_loss_exponent", "rms_residual_db", "underdetermined", "verdict", "reasons",
        "updated_utc",
    }
)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable URLs are shown cut at the '@'
        head, sep, tail = str(url).rpartition("@")
        return f"***@{tail}" if sep else str(url)


def _row(cls: type, obj: Any) -> Any:
    vals = {f.name: getattr(obj, f.name) for f in fields(cls)}
    if cls is EmitterRow:
        vals["reasons"] = tuple(obj.reasons or ())
    if cls is DetectionRow:
        vals["features"] = dict(obj.features or {})
    return cls(**vals)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


class Store:
    """The collector's database. Make one with :meth:`open`; close it with :meth:`close`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self._url = url
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` and upgrade its schema to the newest migration.

        Parameters
        ----------
        url : str
            SQLAlchemy URL, e.g. ``sqlite:///path/rfhunt.db`` or
            ``postgresql+psycopg://user@host/db``. SQLite files get the WAL journal.

        Raises
        ------
        StoreError
            If the URL is malformed, its driver is missing, the database does not answer,
            or the migration fails; the message names the URL with its password hidden.
        """
        shown = redact_url(url)
        try:
            parsed = make_url(url)
            engine = create_engine(parsed, pool_pre_ping=True)
        except (ArgumentError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot use database URL {shown}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - plugin loading raises assorted errors
            raise StoreError(f"cannot use database URL {shown}: {type(exc).__name__}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        elif engine.dialect.name != "postgresql":
            engine.dispose()
            raise StoreError(f"database URL {shown}: dialect {engine.dialect.name!r} unsupported (sqlite, postgresql)")
        try:
            with engine.begin() as conn:
                _upgrade(conn)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open database {shown}: {_short(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - alembic raises its own errors
            engine.dispose()
            raise StoreError(f"cannot migrate database {shown}: {type(exc).__name__}: {exc}") from None
        log.info("store open url=%s dialect=%s", shown, engine.dialect.name)
        return cls(engine, url)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return redact_url(self._url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tests and tools)."""
        return self._engine

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self) -> Session:
        return self._sessions()

    def _write(self, work: Any) -> Any:
        """Run ``work(session)`` in one transaction; database errors become StoreError."""
        try:
            with self._session() as session, session.begin():
                return work(session)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.url} refused a write: {_short(exc)}") from None

    def _read(self, work: Any) -> Any:
        try:
            with self._session() as session:
                return work(session)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.url} refused a read: {_short(exc)}") from None

    # ----------------------------------------------------------------- writing records
    def add_detection(self, det: Detection) -> bool:
        """Store one detection; return False if its (sensor_id, seq) was already stored."""
        return self._write(lambda s: self._add_detection(s, det))

    def add_heartbeat(self, hb: Heartbeat) -> bool:
        """Update the sensor's status from a heartbeat and add its position to the track.

        Returns False (and changes nothing but the track) when the heartbeat is not newer
        than the last one stored for the sensor: a resend or a late arrival.
        """
        return self._write(lambda s: self._add_heartbeat(s, hb))

    def add_batch(self, records: Sequence[Detection | Heartbeat]) -> list[bool]:
        """Store many records in one transaction; per record, True if stored, False if a duplicate."""

        def work(session: Session) -> list[bool]:
            out = []
            for rec in records:
                if isinstance(rec, Detection):
                    out.append(self._add_detection(session, rec))
                elif isinstance(rec, Heartbeat):
                    out.append(self._add_heartbeat(session, rec))
                else:
                    raise StoreError(f"cannot store {type(rec).__name__}: not a Detection or Heartbeat")
            return out

        return self._write(work)

    def _insert(self, session: Session, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING; True if a row went in."""
        dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
        key = next(iter(model.__table__.primary_key.columns))
        stmt = dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(key)
        return session.execute(stmt).first() is not None

    def _ensure_sensor(self, session: Session, sensor_id: str) -> SensorModel:
        self._insert(session, SensorModel, {"sensor_id": sensor_id}, ["sensor_id"])
        sensor = session.get(SensorModel, sensor_id, with_for_update=session.get_bind().dialect.name != "sqlite")
        assert sensor is not None
        return sensor

    def _track(self, session: Session, sensor: SensorModel, t_utc: float, lat: float, lon: float,
               mobile: bool | None = None) -> None:
        """Move the sensor if ``t_utc`` is its newest position; add a track point for a mobile
        sensor (``mobile``: what the record says, else what is stored) or a changed position."""
        moved = (sensor.lat, sensor.lon) != (lat, lon)
        if moved or (sensor.mobile if mobile is None else mobile):
            self._insert(
                session, SensorPositionModel,
                {"sensor_id": sensor.sensor_id, "t_utc": t_utc, "lat": lat, "lon": lon},
                ["sensor_id", "t_utc"],
            )
        if sensor.last_position_utc is None or t_utc >= sensor.last_position_utc:
            sensor.lat, sensor.lon, sensor.last_position_utc = lat, lon, t_utc

    def _add_detection(self, session: Session, det: Detection) -> bool:
        sensor = self._ensure_sensor(session, det.sensor_id)
        values = {f.name: getattr(det, f.name) for f in fields(Detection)}
        values["features"] = dict(det.features)
        stored = self._insert(session, DetectionModel, values, ["sensor_id", "seq"])
        if stored:
            self._track(session, sensor, det.t_utc, det.sensor_lat, det.sensor_lon)
        return stored

    def _add_heartbeat(self, session: Session, hb: Heartbeat) -> bool:
        sensor = self._ensure_sensor(session, hb.sensor_id)
        self._track(session, sensor, hb.t_utc, hb.sensor_lat, hb.sensor_lon, hb.mobile)
        if sensor.last_heartbeat_utc is not None and hb.t_utc <= sensor.last_heartbeat_utc:
            return False
        sensor.mobile = hb.mobile
        sensor.last_heartbeat_utc = hb.t_utc
        sensor.samples_read = hb.samples_read
        sensor.dropped_samples = hb.dropped_samples
        sensor.source_state = hb.source_state
        return True

    # ----------------------------------------------------------------- emitters
    def get_or_create_emitter(self, assoc_key: str, kind: str, freq_hz: float, channel: int | None) -> int:
        """Return the id of the emitter with ``assoc_key``, creating it if new."""

        def work(session: Session) -> int:
            self._insert(
                session, EmitterModel,
                {"assoc_key": assoc_key, "kind": kind, "freq_hz": freq_hz, "channel": channel,
                 "n_detections": 0, "reasons": []},
                ["assoc_key"],
            )
            return session.scalar(select(EmitterModel.id).where(EmitterModel.assoc_key == assoc_key))

        return self._write(work)

    def assign_detections(self, emitter_id: int, detection_ids: Sequence[int]) -> None:
        """Attach unassociated detections to an emitter and add them to its count and
        first/last seen times (only the given detections are read, never its history).

        Detections already attached to an emitter are left alone.
        """

        def work(session: Session) -> None:
            em = session.get(EmitterModel, emitter_id, with_for_update=session.get_bind().dialect.name != "sqlite")
            if em is None:
                raise StoreError(f"no emitter with id {emitter_id}")
            ids = list(detection_ids)
            for i in range(0, len(ids), 500):
                free = (DetectionModel.id.in_(ids[i:i + 500])) & DetectionModel.emitter_id.is_(None)
                n, first, last = session.execute(
                    select(func.count(DetectionModel.id), func.min(DetectionModel.t_utc),
                           func.max(DetectionModel.t_utc)).where(free)
                ).one()
                if not n:
                    continue
                session.execute(update(DetectionModel).where(free).values(emitter_id=emitter_id))
                em.n_detections = (em.n_detections or 0) + n
                em.first_seen_utc = first if em.first_seen_utc is None else min(em.first_seen_utc, first)
                em.last_seen_utc = last if em.last_seen_utc is None else max(em.last_seen_utc, last)

        self._write(work)

    def update_emitter(self, emitter_id: int, **values: Any) -> None:
        """Set location / verdict columns of one emitter (names in :data:`EMITTER_UPDATABLE`)."""
        bad = sorted(set(values) - EMITTER_UPDATABLE)
        if bad:
            raise StoreError(f"cannot update emitter column(s) {', '.join(bad)}")
        if "reasons" in values:
            values["reasons"] = list(values["reasons"])

        def work(session: Session) -> None:
            res = session.execute(update(EmitterModel).where(EmitterModel.id == emitter_id).values(**values))
            if res.rowcount != 1:
                raise StoreError(f"no emitter with id {emitter_id}")

        self._write(work)

    # ----------------------------------------------------------------- reading
    def emitters(self, kind: str | None = None) -> list[EmitterRow]:
        """All emitters (optionally of one kind), by id."""
        stmt = select(EmitterModel).order_by(EmitterModel.id)
        if kind is not None:
            stmt = stmt.where(EmitterModel.kind == kind)
        return self._read(lambda s: [_row(EmitterRow, e) for e in s.scalars(stmt)])

    def emitter(self, emitter_id: int) -> EmitterRow | None:
        """One emitter by id, or None."""

        def work(session: Session) -> EmitterRow | None:
            obj = session.get(EmitterModel, emitter_id)
            return None if obj is None else _row(EmitterRow, obj)

        return self._read(work)

    def detections(
        self, emitter_id: int | None = None, since_utc: float | None = None, *, unassociated: bool = False
    ) -> list[DetectionRow]:
        """Stored detections by id.

        Parameters
        ----------
        emitter_id : int, optional
            Only those attached to this emitter.
        since_utc : float, optional
            Only those with ``t_utc >= since_utc`` (Unix seconds).
        unassociated : bool
            Only those attached to no emitter yet.
        """
        stmt = select(DetectionModel).order_by(DetectionModel.id)
        if emitter_id is not None:
            stmt = stmt.where(DetectionModel.emitter_id == emitter_id)
        if since_utc is not None:
            stmt = stmt.where(DetectionModel.t_utc >= since_utc)
        if unassociated:
            stmt = stmt.where(DetectionModel.emitter_id.is_(None))
        return self._read(lambda s: [_row(DetectionRow, d) for d in s.scalars(stmt)])

    def sensors(self) -> list[SensorRow]:
        """All sensors by id."""
        stmt = select(SensorModel).order_by(SensorModel.sensor_id)
        return self._read(lambda s: [_row(SensorRow, x) for x in s.scalars(stmt)])

    def sensor_tracks(self, sensor_ids: Iterable[str] | None = None) -> dict[str, list[tuple[float, float, float]]]:
        """Each sensor's track as time-ordered ``(t_utc, lat, lon)`` tuples.

        Parameters
        ----------
        sensor_ids : iterable of str, optional
            Only these sensors' tracks (default: every sensor's).
        """
        stmt = select(
            SensorPositionModel.sensor_id, SensorPositionModel.t_utc, SensorPositionModel.lat, SensorPositionModel.lon
        ).order_by(SensorPositionModel.sensor_id, SensorPositionModel.t_utc)
        if sensor_ids is not None:
            wanted = sorted(set(sensor_ids))
            if not wanted:
                return {}
            stmt = stmt.where(SensorPositionModel.sensor_id.in_(wanted))

        def work(session: Session) -> dict[str, list[tuple[float, float, float]]]:
            out: dict[str, list[tuple[float, float, float]]] = {}
            for sid, t, lat, lon in session.execute(stmt):
                out.setdefault(sid, []).append((t, lat, lon))
            return out

        return self._read(work)


def _short(exc: BaseException) -> str:
    """First line of a database error, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
