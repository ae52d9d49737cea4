"""The collector's database: sensors, their tracks, detections, emitters, reference and
baseline cells, and rogue-cell alerts.

SQLAlchemy 2.0 models over SQLite (default, WAL journal) or PostgreSQL with one schema,
kept under the alembic migrations shipped in ``collector/migrations``; :meth:`Store.open`
upgrades the database to the newest revision. Readers get frozen dataclasses, never ORM
objects, so nothing leaks a session.

Units: times are Unix seconds (UTC, float), positions WGS84 degrees, frequencies Hz,
powers dBm, distances metres, angles degrees clockwise from north.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
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
    Index,
    Integer,
    String,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from collector.reference import GsmCell
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
    score: Mapped[float | None] = mapped_column(Double, nullable=True)
    indicators: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    identity: Mapped[str | None] = mapped_column(String(128), nullable=True)


class DetectionModel(Base):
    """One stored :class:`~rfhunt.records.Detection`; (sensor_id, seq) is unique."""

    __tablename__ = "detections"
    __table_args__ = (UniqueConstraint("sensor_id", "seq", name="uq_detections_sensor_seq"),
                      Index("ix_detections_sensor_channel_t", "sensor_id", "channel", "t_utc"))
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


class ReferenceCellModel(Base):
    """A cell of an imported reference list (operator list or OpenCelliD/MLS export).

    One row per (source, MCC, MNC, LAC, CID); importing again updates it.
    """

    __tablename__ = "reference_cells"
    __table_args__ = (UniqueConstraint("source", "mcc", "mnc", "lac", "cid", name="uq_reference_cells_source_cgi"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    mcc: Mapped[int] = mapped_column(Integer)
    mnc: Mapped[int] = mapped_column(Integer)
    lac: Mapped[int] = mapped_column(Integer)
    cid: Mapped[int] = mapped_column(BigInteger)
    arfcn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bsic: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    range_m: Mapped[float | None] = mapped_column(Double, nullable=True)
    imported_utc: Mapped[float] = mapped_column(Double)


class BaselineCellModel(Base):
    """A cell the monitoring history knows: seen repeatedly, never alarming.

    ``power`` maps a fixed sensor's id to ``{"n", "mean_dbm", "std_db", "lat", "lon"}``: the
    distribution of the cell's received power there, and where the sensor stood.
    """

    __tablename__ = "baseline_cells"
    __table_args__ = (UniqueConstraint("mcc", "mnc", "lac", "cid", "arfcn", "bsic", name="uq_baseline_cells_cell"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mcc: Mapped[int] = mapped_column(Integer)
    mnc: Mapped[int] = mapped_column(Integer)
    lac: Mapped[int] = mapped_column(Integer)
    cid: Mapped[int] = mapped_column(BigInteger)
    arfcn: Mapped[int] = mapped_column(Integer)
    bsic: Mapped[int] = mapped_column(Integer)
    first_seen_utc: Mapped[float] = mapped_column(Double)
    last_seen_utc: Mapped[float] = mapped_column(Double)
    n_sightings: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float | None] = mapped_column(Double, nullable=True)
    lon: Mapped[float | None] = mapped_column(Double, nullable=True)
    power: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    learned_utc: Mapped[float] = mapped_column(Double)


class AlertModel(Base):
    """A rogue-cell alert: one per emitter, updated as its evidence grows."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    emitter_id: Mapped[int] = mapped_column(ForeignKey("emitters.id"), unique=True)
    raised_utc: Mapped[float] = mapped_column(Double)
    updated_utc: Mapped[float] = mapped_column(Double)
    first_seen_utc: Mapped[float | None] = mapped_column(Double, nullable=True)
    verdict: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Double)
    channel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    identity: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lat: Mapped[float | None] = mapped_column(Double, nullable=True)
    lon: Mapped[float | None] = mapped_column(Double, nullable=True)
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    n_updates: Mapped[int] = mapped_column(Integer, default=1)


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
    score : float or None
        Rogue-cell score of a GSM downlink cell (sum of the weights of the indicators that
        fired; see :mod:`collector.rogue`).
    indicators : tuple of dict
        The indicators that fired: ``{"name", "weight", "reason", "evidence"}`` each.
    identity : str or None
        The cell identity decoded from the air, ``MCC-MNC-LAC-CID`` (the latest; LAC-cycling
        cells show several over time).
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
    score: float | None = None
    indicators: tuple[dict[str, Any], ...] = ()
    identity: str | None = None


@dataclass(frozen=True)
class BaselineCellRow:
    """A learned cell (see :class:`BaselineCellModel`); times Unix s, position degrees."""

    id: int
    mcc: int
    mnc: int
    lac: int
    cid: int
    arfcn: int
    bsic: int
    first_seen_utc: float
    last_seen_utc: float
    n_sightings: int
    lat: float | None
    lon: float | None
    power: dict[str, Any]
    learned_utc: float

    @property
    def cgi(self) -> tuple[int, int, int, int]:
        """(MCC, MNC, LAC, CID)."""
        return (self.mcc, self.mnc, self.lac, self.cid)


@dataclass(frozen=True)
class AlertRow:
    """A stored rogue-cell alert (see :class:`AlertModel`)."""

    id: int
    emitter_id: int
    raised_utc: float
    updated_utc: float
    first_seen_utc: float | None
    verdict: str
    score: float
    channel: int | None
    identity: str | None
    lat: float | None
    lon: float | None
    indicators: tuple[dict[str, Any], ...]
    n_updates: int


@dataclass(frozen=True)
class CellSighting:
    """Where and when a sensor decoded a cell's identity: what association needs."""

    sensor_id: str
    channel: int
    t_utc: float
    emitter_id: int
    sensor_lat: float
    sensor_lon: float


_DETECTION_FIELDS = tuple(f.name for f in fields(DetectionRow))

#: Emitter columns :meth:`Store.update_emitter` may set.
EMITTER_UPDATABLE = frozenset(
    {
        "lat", "lon", "semi_major_m", "semi_minor_m", "orientation_deg", "est_power_dbm",
        "path_loss_exponent", "rms_residual_db", "underdetermined", "verdict", "reasons",
        "updated_utc", "score", "indicators", "identity",
    }
)
#: Columns of one baseline cell :meth:`Store.upsert_baseline` writes.
BASELINE_COLUMNS = ("mcc", "mnc", "lac", "cid", "arfcn", "bsic", "first_seen_utc", "last_seen_utc", "n_sightings",
                    "lat", "lon", "power", "learned_utc")
#: Columns of an alert :meth:`Store.upsert_alert` writes.
ALERT_COLUMNS = ("raised_utc", "updated_utc", "first_seen_utc", "verdict", "score", "channel", "identity", "lat",
                 "lon", "indicators")


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
        vals["indicators"] = tuple(obj.indicators or ())
    if cls is AlertRow:
        vals["indicators"] = tuple(obj.indicators or ())
    if cls is BaselineCellRow:
        vals["power"] = dict(obj.power or {})
    if cls is DetectionRow:
        vals["features"] = dict(obj.features or {})
    return cls(**vals)


#: PostgreSQL advisory lock key held while a store migrates its database.
_MIGRATION_LOCK = 0x7266_6875_6E74  # "rfhunt"

#: Sensor columns a batch of records may change.
_SENSOR_STATE = ("mobile", "lat", "lon", "last_position_utc", "last_heartbeat_utc", "samples_read",
                 "dropped_samples", "source_state")

_DET_COLUMNS = ("sensor_id", "seq", "t_utc", "sensor_lat", "sensor_lon", "kind", "freq_hz", "channel",
                "bandwidth_hz", "power_dbm", "snr_db", "features", "emitter_id")
# One JSON array of the rows as the only parameter: the statement's text never changes (the
# driver parses it once, the server plans it once) and the server decodes the rows in C
# (faster, server and client, than unnest() of one array per column or COPY through a
# temporary table, measured). Floats survive exactly: Python writes the shortest text that
# reads back to the same double. A row without "emitter_id" goes in unassociated.
_PG_INSERT_DETECTIONS = (
    "INSERT INTO detections (" + ", ".join(_DET_COLUMNS) + ") "
    "SELECT " + ", ".join(_DET_COLUMNS) + " FROM json_to_recordset(%(rows)s::json) AS r("
    "sensor_id varchar, seq bigint, t_utc float8, sensor_lat float8, sensor_lon float8, kind varchar, "
    "freq_hz float8, channel int, bandwidth_hz float8, power_dbm float8, snr_db float8, features json, "
    "emitter_id int) "
    "ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING id, sensor_id, seq, emitter_id, t_utc"
)
# The emitters' counts and first/last seen times, raised by what a batch attached to them
# (increments, never overwrites: another collector may be adding to the same emitters).
_PG_COUNT_EMITTERS = (
    "UPDATE emitters AS e SET n_detections = COALESCE(e.n_detections, 0) + v.n, "
    "first_seen_utc = LEAST(e.first_seen_utc, v.lo), last_seen_utc = GREATEST(e.last_seen_utc, v.hi) "
    "FROM unnest(%(ids)s::int[], %(n)s::int[], %(lo)s::float8[], %(hi)s::float8[]) AS v(id, n, lo, hi) "
    "WHERE e.id = v.id"
)
# The sensors' states after a batch, one statement for all of them.
_PG_UPDATE_SENSORS = (
    "UPDATE sensors AS s SET " + ", ".join(f"{c} = r.{c}" for c in _SENSOR_STATE) + " "
    "FROM json_to_recordset(%(rows)s::json) AS r(sensor_id varchar, mobile boolean, lat float8, lon float8, "
    "last_position_utc float8, last_heartbeat_utc float8, samples_read bigint, dropped_samples bigint, "
    "source_state varchar) WHERE s.sensor_id = r.sensor_id"
)
_SQLITE_COUNT_EMITTERS = (
    "UPDATE emitters SET n_detections = COALESCE(n_detections, 0) + :n, "
    "first_seen_utc = MIN(COALESCE(first_seen_utc, :lo), :lo), last_seen_utc = MAX(COALESCE(last_seen_utc, :hi), :hi) "
    "WHERE id = :id"
)


#: Most parameters of one SQLite statement (999 before SQLite 3.32).
_SQLITE_MAX_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def _json_rows(rows: list[dict[str, Any]], what: str) -> str:
    """``rows`` as one JSON array for ``json_to_recordset``.

    Raises
    ------
    StoreError
        If a value is not finite (JSON has no NaN): the message names the ``what`` at fault.
    """
    try:
        return json.dumps(rows, separators=(",", ":"), allow_nan=False)
    except ValueError:
        bad = next((r for r in rows if _not_finite(r)), None)
        raise StoreError(f"cannot store {what} {bad!r:.200}: a number is not finite") from None


def _not_finite(row: dict[str, Any]) -> bool:
    try:
        json.dumps(row, allow_nan=False)
    except ValueError:
        return True
    return False


@functools.lru_cache(maxsize=32)
def _sqlite_insert_sql(n_rows: int) -> str:
    """SQLite: the INSERT of ``n_rows`` detections (qmark parameters, :data:`_DET_COLUMNS` per row)."""
    row = "(" + ", ".join("?" * len(_DET_COLUMNS)) + ")"
    return ("INSERT INTO detections (" + ", ".join(_DET_COLUMNS) + ") VALUES " + ", ".join([row] * n_rows)
            + " ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING id, sensor_id, seq, emitter_id, t_utc")


def _track(st: dict[str, Any], t_utc: float, lat: float, lon: float, mobile: bool | None,
           points: list[dict[str, Any]], dirty: set[str]) -> None:
    """Move a sensor (its state dict ``st``) if ``t_utc`` is its newest position, and add a
    track point for a mobile sensor (``mobile``: what the record says, else what is stored)
    or a changed position to ``points``."""
    if (st["lat"], st["lon"]) != (lat, lon) or (st["mobile"] if mobile is None else mobile):
        points.append({"sensor_id": st["sensor_id"], "t_utc": t_utc, "lat": lat, "lon": lon})
    if st["last_position_utc"] is None or t_utc >= st["last_position_utc"]:
        if (st["lat"], st["lon"], st["last_position_utc"]) != (lat, lon, t_utc):
            st["lat"], st["lon"], st["last_position_utc"] = lat, lon, t_utc
            dirty.add(st["sensor_id"])


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
        self._emitter_ids: dict[str, int] = {}
        self._known_sensors: set[str] = set()  # sensors never go away: rows known to exist
        self._new_rows: list[DetectionRow] | None = None  # see keep_new_detections
        self._assign: Any = None  # see keep_new_detections

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
                if engine.dialect.name == "postgresql":
                    # collectors starting together on one database migrate it one at a time
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(k)s)", {"k": _MIGRATION_LOCK})
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
        return self.add_batch([det])[0]

    def add_heartbeat(self, hb: Heartbeat) -> bool:
        """Update the sensor's status from a heartbeat and add its position to the track.

        Returns False (and changes nothing but the track) when the heartbeat is not newer
        than the last one stored for the sensor: a resend or a late arrival.
        """
        return self.add_batch([hb])[0]

    def add_batch(self, records: Sequence[Detection | Heartbeat]) -> list[bool]:
        """Store many records in one transaction; per record, True if stored, False if a duplicate.

        The write is a handful of bulk statements whatever the batch size: the sensors'
        rows are created if new and read (locked on PostgreSQL) in one statement, the
        detections go in with one ``INSERT ... ON CONFLICT (sensor_id, seq) DO NOTHING``
        (so a record stored by another collector process sharing the database counts as a
        duplicate, never as a second row), then track points and sensor states in one
        statement each.

        With an ``assign`` function given to :meth:`keep_new_detections`, the detections go
        in attached to the emitters it chose for them: the emitters are locked (PostgreSQL,
        in id order), the INSERT writes each row's ``emitter_id``, and one more statement
        raises the emitters' counts and first/last seen times by the rows that went in. A
        detection whose emitter has meanwhile been deleted goes in unassociated.

        Raises
        ------
        StoreError
            If a record is not a Detection or Heartbeat, or the database refuses the batch
            (nothing of it is stored then).
        """
        for rec in records:
            if not isinstance(rec, (Detection, Heartbeat)):
                raise StoreError(f"cannot store {type(rec).__name__}: not a Detection or Heartbeat")
        if not records:
            return []
        plan = self._plan(records)
        new_rows: list[DetectionRow] = []
        out = self._write_core(lambda conn: self._add_batch(conn, records, new_rows, plan))
        self._known_sensors.update(rec.sensor_id for rec in records)  # committed now
        if self._new_rows is not None:
            self._new_rows.extend(new_rows)
        return out

    def keep_new_detections(self, keep: bool = True, *, assign: Any = None) -> None:
        """From now on remember the detections this store inserts, for
        :meth:`take_new_detections` (the collector's association reads them from there
        instead of reading them back from the database); ``keep=False`` stops that.

        Parameters
        ----------
        keep : bool
            Remember them (False: stop, and drop ``assign``).
        assign : callable, optional
            ``assign(store, detections) -> emitter id (or None) per detection``, called
            with the detections of each batch before its transaction (e.g.
            :func:`collector.association.plan_emitters`): they are inserted attached to
            those emitters (see :meth:`add_batch`), and handed over with ``emitter_id``
            set. If it raises, the batch goes in unassociated (and the error is logged).
            Once given, it stays until ``keep=False``.
        """
        if not keep:
            self._new_rows = None
            self._assign = None
            return
        if self._new_rows is None:
            self._new_rows = []
        if assign is not None:
            self._assign = assign

    def take_new_detections(self) -> list[DetectionRow]:
        """The detections inserted through this store since the last call (after
        :meth:`keep_new_detections`), as stored (unassociated, or attached to the emitter
        ``assign`` chose); in insertion order."""
        rows, self._new_rows = (self._new_rows or []), ([] if self._new_rows is not None else None)
        return rows

    def _plan(self, records: Sequence[Detection | Heartbeat]) -> list[int | None] | None:
        """The emitter of each detection of ``records`` (in their order) from the ``assign``
        function of :meth:`keep_new_detections`; None without one, or when it fails."""
        if self._assign is None:
            return None
        dets = [r for r in records if isinstance(r, Detection)]
        if not dets:
            return None
        try:
            plan = list(self._assign(self, dets))
        except Exception as exc:  # noqa: BLE001 - stored unassociated: associated after the insert
            log.warning("association before insert failed detections=%d error=%r; storing them unassociated",
                        len(dets), f"{type(exc).__name__}: {exc}")
            return None
        if len(plan) != len(dets):
            log.error("association before insert gave %d emitters for %d detections; storing them unassociated",
                      len(plan), len(dets))
            return None
        return plan

    def _write_core(self, work: Any) -> Any:
        """Run ``work(connection)`` in one Core transaction; database errors become StoreError."""
        try:
            with self._engine.begin() as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.url} refused a write: {_short(exc)}") from None

    def _add_batch(self, conn: Connection, records: Sequence[Detection | Heartbeat],
                   new_rows: list[DetectionRow], plan: list[int | None] | None = None) -> list[bool]:
        sensors = self._lock_sensors(conn, sorted({rec.sensor_id for rec in records}))
        dets = [r for r in records if isinstance(r, Detection)]
        if plan is not None:
            plan = self._lock_emitters(conn, plan)
        stored = self._insert_detections(conn, dets, plan)
        if plan is not None:
            self._count_emitters(conn, stored.values())
        keep = self._new_rows is not None
        new_row = object.__new__
        points: list[dict[str, Any]] = []
        dirty: set[str] = set()
        out, seen = [], set()
        for rec in records:
            st = sensors[rec.sensor_id]
            if isinstance(rec, Detection):
                key = (rec.sensor_id, rec.seq)
                got = stored.get(key)
                new = got is not None and key not in seen
                seen.add(key)
                if new:
                    if keep:
                        # DetectionRow(id, *wire fields, emitter_id) without the frozen __init__'s
                        # setattr per field (a hot path; the values are the checked record's)
                        row = new_row(DetectionRow)
                        row.__dict__.update(zip(_DETECTION_FIELDS, (
                            got[0], rec.sensor_id, rec.seq, rec.t_utc, rec.sensor_lat, rec.sensor_lon, rec.kind,
                            rec.freq_hz, rec.channel, rec.bandwidth_hz, rec.power_dbm, rec.snr_db, dict(rec.features),
                            got[1])))
                        new_rows.append(row)
                    _track(st, rec.t_utc, rec.sensor_lat, rec.sensor_lon, None, points, dirty)
                out.append(new)
                continue
            _track(st, rec.t_utc, rec.sensor_lat, rec.sensor_lon, rec.mobile, points, dirty)
            if st["last_heartbeat_utc"] is not None and rec.t_utc <= st["last_heartbeat_utc"]:
                out.append(False)
                continue
            st.update(mobile=rec.mobile, last_heartbeat_utc=rec.t_utc, samples_read=rec.samples_read,
                      dropped_samples=rec.dropped_samples, source_state=rec.source_state)
            dirty.add(rec.sensor_id)
            out.append(True)
        if points:
            pos_t = SensorPositionModel.__table__
            conn.execute(self._dialect.insert(pos_t).on_conflict_do_nothing(index_elements=["sensor_id", "t_utc"]),
                         points)
        if dirty:
            self._update_sensors(conn, [sensors[sid] for sid in sorted(dirty)])
        return out

    def _update_sensors(self, conn: Connection, states: list[dict[str, Any]]) -> None:
        """Write the sensors' states (dicts of ``sensor_id`` and :data:`_SENSOR_STATE`)."""
        if self._engine.dialect.name == "postgresql":
            # one statement for the batch's sensors (a batch from 100 sensors moves 100)
            conn.exec_driver_sql(_PG_UPDATE_SENSORS, {"rows": _json_rows(states, "sensor")})
            return
        sen_t = SensorModel.__table__
        conn.execute(update(sen_t).where(sen_t.c.sensor_id == bindparam("b_sid"))
                     .values({c: bindparam(f"b_{c}") for c in _SENSOR_STATE}),
                     [{"b_sid": st["sensor_id"], **{f"b_{c}": st[c] for c in _SENSOR_STATE}} for st in states])

    @property
    def _dialect(self) -> Any:
        return sqlite if self._engine.dialect.name == "sqlite" else postgresql

    def _lock_sensors(self, conn: Connection, sensor_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Create the sensors not yet known and read every one's state (locking the rows on
        PostgreSQL, in id order, so concurrent writers of one sensor take turns)."""
        sen_t = SensorModel.__table__
        new = [sid for sid in sensor_ids if sid not in self._known_sensors]
        if new:
            conn.execute(self._dialect.insert(sen_t).on_conflict_do_nothing(index_elements=["sensor_id"]),
                         [{"sensor_id": sid} for sid in new])
        stmt = select(sen_t.c.sensor_id, *(sen_t.c[c] for c in _SENSOR_STATE)).where(
            sen_t.c.sensor_id.in_(sensor_ids)).order_by(sen_t.c.sensor_id)
        if self._engine.dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        state = {row[0]: dict(zip(_SENSOR_STATE, row[1:])) for row in conn.execute(stmt)}
        missing = [sid for sid in sensor_ids if sid not in state]
        if missing:  # known to this store once, but gone (a database restored from a backup)
            self._known_sensors.difference_update(missing)
            return self._lock_sensors(conn, sensor_ids)
        for sid in sensor_ids:
            state[sid]["sensor_id"] = sid
        return state

    def _lock_emitters(self, conn: Connection, plan: list[int | None]) -> list[int | None]:
        """Lock the planned emitters (PostgreSQL: ``FOR UPDATE`` in id order, as
        :meth:`assign_many` and :meth:`move_detections` do, so their counts are raised in
        turn); an emitter no longer there (deleted by a move since the plan) is forgotten and
        its detections go in unassociated (None)."""
        wanted = sorted({e for e in plan if e is not None})
        if not wanted:
            return plan
        if self._engine.dialect.name == "postgresql":
            have = {r[0] for r in conn.exec_driver_sql(
                "SELECT id FROM emitters WHERE id = ANY(%(ids)s::int[]) ORDER BY id FOR UPDATE", {"ids": wanted})}
        else:
            em_t = EmitterModel.__table__
            have = set(conn.execute(select(em_t.c.id).where(em_t.c.id.in_(wanted))).scalars())
        if len(have) == len(wanted):
            return plan
        gone = set(wanted) - have
        self._forget_emitters(gone)
        log.info("association before insert: emitter(s) %s gone; their detections go in unassociated", sorted(gone))
        return [None if e in gone else e for e in plan]

    def _count_emitters(self, conn: Connection, inserted: Iterable[tuple[int, int | None, float]]) -> None:
        """Raise the emitters' counts and first/last seen times by the rows just inserted
        (``(id, emitter_id, t_utc)`` each)."""
        agg: dict[int, list[Any]] = {}
        for _, eid, t in inserted:
            if eid is None:
                continue
            a = agg.get(eid)
            if a is None:
                agg[eid] = [1, t, t]
            else:
                a[0] += 1
                if t < a[1]:
                    a[1] = t
                elif t > a[2]:
                    a[2] = t
        if not agg:
            return
        eids = sorted(agg)
        if self._engine.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_COUNT_EMITTERS, {
                "ids": eids, "n": [agg[e][0] for e in eids], "lo": [agg[e][1] for e in eids],
                "hi": [agg[e][2] for e in eids]})
        else:
            conn.exec_driver_sql(_SQLITE_COUNT_EMITTERS, [{"id": e, "n": agg[e][0], "lo": agg[e][1], "hi": agg[e][2]}
                                                          for e in eids])

    def _insert_detections(self, conn: Connection, dets: Sequence[Detection], plan: list[int | None] | None = None
                           ) -> dict[tuple[str, int], tuple[int, int | None, float]]:
        """Insert detections (attached to the emitters of ``plan``, one per detection, when
        given), skipping any (sensor_id, seq) already stored; returns ``(id, emitter_id,
        t_utc)`` as stored for each (sensor_id, seq) that went in.

        PostgreSQL gets one ``INSERT ... SELECT FROM json_to_recordset(rows)`` (a statement
        of fixed text whatever the batch size); SQLite a multi-row INSERT with RETURNING per
        page of rows.
        """
        if not dets:
            return {}
        if self._engine.dialect.name == "postgresql":
            if plan is None:
                body = [d.__dict__ for d in dets]
            else:
                body = []
                for d, e in zip(dets, plan):
                    r = d.__dict__.copy()
                    r["emitter_id"] = e
                    body.append(r)
            res = conn.exec_driver_sql(_PG_INSERT_DETECTIONS, {"rows": _json_rows(body, "detection")})
            # the driver's plain tuples: half the cost of SQLAlchemy rows per detection
            got = {(sid, seq): (i, e, t) for i, sid, seq, e, t in res.cursor.fetchall()}
            res.close()
            return got
        return self._insert_detections_sqlite(conn, dets, plan)

    def _insert_detections_sqlite(self, conn: Connection, dets: Sequence[Detection], plan: list[int | None] | None
                                  ) -> dict[tuple[str, int], tuple[int, int | None, float]]:
        """SQLite: multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING``
        through the driver, a page of rows per statement (SQLite binds at most 32,766
        parameters in one)."""
        out: dict[tuple[str, int], tuple[int, int | None, float]] = {}
        page = _SQLITE_MAX_PARAMS // len(_DET_COLUMNS)
        dumps = json.dumps  # as SQLAlchemy's JSON type writes it
        for k in range(0, len(dets), page):
            chunk = dets[k:k + page]
            eids = plan[k:k + page] if plan is not None else [None] * len(chunk)
            params: list[Any] = []
            for d, e in zip(chunk, eids):
                params += (d.sensor_id, d.seq, d.t_utc, d.sensor_lat, d.sensor_lon, d.kind, d.freq_hz, d.channel,
                           d.bandwidth_hz, d.power_dbm, d.snr_db, dumps(d.features), e)
            for i, sid, seq, e, t in conn.exec_driver_sql(_sqlite_insert_sql(len(chunk)), tuple(params)):
                out[(sid, seq)] = (i, e, t)
        return out

    def _insert(self, session: Session, model: type, values: dict[str, Any], conflict: list[str]) -> bool:
        """INSERT ... ON CONFLICT DO NOTHING; True if a row went in."""
        dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
        key = next(iter(model.__table__.primary_key.columns))
        stmt = dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=conflict).returning(key)
        return session.execute(stmt).first() is not None

    # ----------------------------------------------------------------- emitters
    def get_or_create_emitter(self, assoc_key: str, kind: str, freq_hz: float, channel: int | None) -> int:
        """Return the id of the emitter with ``assoc_key``, creating it if new.

        Ids are remembered per key (an emitter is only deleted by :meth:`move_detections`,
        which forgets it)."""
        known = self._emitter_ids.get(assoc_key)
        if known is not None:
            return known

        def work(session: Session) -> int:
            self._insert(
                session, EmitterModel,
                {"assoc_key": assoc_key, "kind": kind, "freq_hz": freq_hz, "channel": channel,
                 "n_detections": 0, "reasons": []},
                ["assoc_key"],
            )
            return session.scalar(select(EmitterModel.id).where(EmitterModel.assoc_key == assoc_key))

        eid = self._write(work)
        self._emitter_ids[assoc_key] = eid
        return eid

    def assign_detections(self, emitter_id: int, detection_ids: Sequence[int]) -> None:
        """Attach unassociated detections to an emitter and add them to its count and
        first/last seen times (only the given detections are read, never its history).

        Detections already attached to an emitter are left alone.
        """
        self.assign_many({emitter_id: detection_ids})

    def assign_many(self, assignments: dict[int, Sequence[int]]) -> None:
        """:meth:`assign_detections` for several emitters in one transaction.

        On PostgreSQL this is three statements whatever the number of detections (the
        emitters locked in id order, one ``UPDATE ... FROM unnest(...) WHERE emitter_id IS
        NULL`` of the detections, one of the emitters' counts), safe against another
        collector process assigning the same detections at the same time: a detection goes
        to whichever commits first, and counts are incremented, not overwritten.

        Raises
        ------
        StoreError
            If an emitter does not exist (then this store forgets the ids it cached for
            those emitters' keys).
        """
        if self._engine.dialect.name == "postgresql":
            self._write_core(lambda conn: self._assign_many_pg(conn, assignments))
            return
        det_t, em_t = DetectionModel.__table__, EmitterModel.__table__

        def work(session: Session) -> None:
            wanted = sorted(assignments)
            if not wanted:
                return
            stmt = select(em_t.c.id, em_t.c.n_detections, em_t.c.first_seen_utc, em_t.c.last_seen_utc).where(
                em_t.c.id.in_(wanted))
            if session.get_bind().dialect.name != "sqlite":
                stmt = stmt.with_for_update()
            state = {row[0]: list(row[1:]) for row in session.execute(stmt)}
            missing = [e for e in wanted if e not in state]
            if missing:
                self._forget_emitters(missing)
                raise StoreError(f"no emitter with id {missing[0]}")
            owner = {}
            for eid in wanted:
                for i in assignments[eid]:
                    owner.setdefault(i, eid)  # a detection given twice goes to the first emitter
            ids = sorted(owner)
            moves = []
            for k in range(0, len(ids), 500):
                free = select(det_t.c.id, det_t.c.t_utc).where(det_t.c.id.in_(ids[k:k + 500]),
                                                                det_t.c.emitter_id.is_(None))
                for did, t in session.execute(free):
                    eid = owner[did]
                    moves.append({"b_id": did, "b_e": eid})
                    st = state[eid]
                    st[0] = (st[0] or 0) + 1
                    st[1] = t if st[1] is None else min(st[1], t)
                    st[2] = t if st[2] is None else max(st[2], t)
            if not moves:
                return
            session.execute(update(det_t).where(det_t.c.id == bindparam("b_id")).values(emitter_id=bindparam("b_e")),
                            moves)
            touched = {m["b_e"] for m in moves}
            session.execute(
                update(em_t).where(em_t.c.id == bindparam("b_id")).values(
                    n_detections=bindparam("b_n"), first_seen_utc=bindparam("b_first"),
                    last_seen_utc=bindparam("b_last")),
                [{"b_id": e, "b_n": state[e][0], "b_first": state[e][1], "b_last": state[e][2]} for e in touched])

        self._write(work)

    def _forget_emitters(self, emitter_ids: Iterable[int]) -> None:
        gone = set(emitter_ids)
        self._emitter_ids = {k: v for k, v in self._emitter_ids.items() if v not in gone}

    def _assign_many_pg(self, conn: Connection, assignments: dict[int, Sequence[int]]) -> None:
        wanted = sorted(assignments)
        if not wanted:
            return
        have = {r[0] for r in conn.exec_driver_sql(
            "SELECT id FROM emitters WHERE id = ANY(%(ids)s::int[]) ORDER BY id FOR UPDATE", {"ids": wanted})}
        missing = [e for e in wanted if e not in have]
        if missing:
            self._forget_emitters(missing)
            raise StoreError(f"no emitter with id {missing[0]}")
        owner: dict[int, int] = {}
        for eid in wanted:
            for i in assignments[eid]:
                owner.setdefault(int(i), eid)  # a detection given twice goes to the first emitter
        if not owner:
            return
        ids = sorted(owner)
        res = conn.exec_driver_sql(
            "UPDATE detections AS d SET emitter_id = v.eid FROM unnest(%(ids)s::int[], %(eids)s::int[]) AS v(id, eid) "
            "WHERE d.id = v.id AND d.emitter_id IS NULL RETURNING d.emitter_id, d.t_utc",
            {"ids": ids, "eids": [owner[i] for i in ids]})
        agg: dict[int, list[Any]] = {}
        for eid, t in res:
            a = agg.get(eid)
            if a is None:
                agg[eid] = [1, t, t]
            else:
                a[0] += 1
                a[1] = min(a[1], t)
                a[2] = max(a[2], t)
        if not agg:
            return
        eids = sorted(agg)
        conn.exec_driver_sql(
            "UPDATE emitters AS e SET n_detections = COALESCE(e.n_detections, 0) + v.n, "
            "first_seen_utc = LEAST(e.first_seen_utc, v.lo), last_seen_utc = GREATEST(e.last_seen_utc, v.hi) "
            "FROM unnest(%(ids)s::int[], %(n)s::int[], %(lo)s::float8[], %(hi)s::float8[]) AS v(id, n, lo, hi) "
            "WHERE e.id = v.id",
            {"ids": eids, "n": [agg[e][0] for e in eids], "lo": [agg[e][1] for e in eids],
             "hi": [agg[e][2] for e in eids]})

    def update_emitter(self, emitter_id: int, **values: Any) -> None:
        """Set location / verdict columns of one emitter (names in :data:`EMITTER_UPDATABLE`)."""
        bad = sorted(set(values) - EMITTER_UPDATABLE)
        if bad:
            raise StoreError(f"cannot update emitter column(s) {', '.join(bad)}")
        if "reasons" in values:
            values["reasons"] = list(values["reasons"])
        if values.get("indicators") is not None:
            values["indicators"] = [dict(i) for i in values["indicators"]]

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

    def emitter_id_by_key(self, assoc_key: str) -> int | None:
        """Id of the emitter with ``assoc_key``, or None."""
        return self._read(lambda s: s.scalar(select(EmitterModel.id).where(EmitterModel.assoc_key == assoc_key)))

    def emitter_ids_by_keys(self, assoc_keys: Iterable[str]) -> dict[str, int]:
        """Association key -> id of the emitters with one of ``assoc_keys`` (one read; keys
        without an emitter are left out)."""
        wanted = sorted(set(assoc_keys))
        if not wanted:
            return {}
        stmt = select(EmitterModel.assoc_key, EmitterModel.id).where(EmitterModel.assoc_key.in_(wanted))
        return self._read(lambda s: {k: i for k, i in s.execute(stmt)})

    def emitter(self, emitter_id: int) -> EmitterRow | None:
        """One emitter by id, or None."""

        def work(session: Session) -> EmitterRow | None:
            obj = session.get(EmitterModel, emitter_id)
            return None if obj is None else _row(EmitterRow, obj)

        return self._read(work)

    def detections(
        self, emitter_id: int | None = None, since_utc: float | None = None, *, unassociated: bool = False,
        kind: str | None = None, until_utc: float | None = None, emitter_ids: Iterable[int] | None = None,
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
        kind : str, optional
            Only those of this kind.
        until_utc : float, optional
            Only those with ``t_utc <= until_utc``.
        emitter_ids : iterable of int, optional
            Only those attached to one of these emitters.
        """
        stmt = select(DetectionModel).order_by(DetectionModel.id)
        if emitter_id is not None:
            stmt = stmt.where(DetectionModel.emitter_id == emitter_id)
        if emitter_ids is not None:
            wanted = sorted(set(emitter_ids))
            if not wanted:
                return []
            stmt = stmt.where(DetectionModel.emitter_id.in_(wanted))
        if since_utc is not None:
            stmt = stmt.where(DetectionModel.t_utc >= since_utc)
        if until_utc is not None:
            stmt = stmt.where(DetectionModel.t_utc <= until_utc)
        if unassociated:
            stmt = stmt.where(DetectionModel.emitter_id.is_(None))
        if kind is not None:
            stmt = stmt.where(DetectionModel.kind == kind)
        # plain rows, not ORM objects: reading thousands of detections is a hot path
        cols = DetectionModel.__table__.c
        stmt = stmt.with_only_columns(*(cols[name] for name in _DETECTION_FIELDS))  # in DetectionRow's order
        i_feat = _DETECTION_FIELDS.index("features")

        def work(session: Session) -> list[DetectionRow]:
            out = []
            new = object.__new__
            for r in session.execute(stmt):
                vals = list(r)
                vals[i_feat] = dict(vals[i_feat] or {})
                row = new(DetectionRow)  # without the frozen __init__'s setattr per field (thousands of rows)
                row.__dict__.update(zip(_DETECTION_FIELDS, vals))
                out.append(row)
            return out

        return self._read(work)

    def cell_sightings(self, channels: Iterable[int], since_utc: float, until_utc: float,
                       key_prefix: str = "gsm_downlink:arfcn:") -> list[CellSighting]:
        """Detections on ``channels`` in [since_utc, until_utc] attached to an emitter whose
        association key starts with ``key_prefix`` and names a cell (contains ``:bsic:``),
        by time: where and when each sensor decoded which cell."""
        chans = sorted(set(channels))
        if not chans:
            return []
        # the cells first (a small table), then only their detections (by the emitter_id
        # index): the time range alone would scan every detection of the window
        cells_q = select(EmitterModel.id).where(EmitterModel.assoc_key.like(f"{key_prefix}%:bsic:%"))

        def work(session: Session) -> list[CellSighting]:
            cells = sorted(session.scalars(cells_q))
            if not cells:
                return []
            stmt = (select(DetectionModel.sensor_id, DetectionModel.channel, DetectionModel.t_utc,
                           DetectionModel.emitter_id, DetectionModel.sensor_lat, DetectionModel.sensor_lon)
                    .where(DetectionModel.emitter_id.in_(cells), DetectionModel.channel.in_(chans),
                           DetectionModel.t_utc >= since_utc, DetectionModel.t_utc <= until_utc)
                    .order_by(DetectionModel.t_utc, DetectionModel.id))
            return [CellSighting(*row) for row in session.execute(stmt)]

        return self._read(work)

    def sensor_clocks(self) -> dict[str, float]:
        """Each sensor's newest time, Unix s: its latest detection or heartbeat."""

        def work(session: Session) -> dict[str, float]:
            out: dict[str, float] = {}
            for sid, t in session.execute(select(DetectionModel.sensor_id, func.max(DetectionModel.t_utc))
                                          .group_by(DetectionModel.sensor_id)):
                out[sid] = t
            for sid, t in session.execute(select(SensorModel.sensor_id, SensorModel.last_heartbeat_utc)):
                if t is not None:
                    out[sid] = max(out.get(sid, t), t)
            return out

        return self._read(work)

    def move_detections(self, detection_ids: Sequence[int], to_emitter_id: int) -> set[int]:
        """Re-attach detections to another emitter, fixing both sides' counts and first/last
        seen times; an emitter left without detections is deleted (with its alert).

        Returns
        -------
        set of int
            The emitters deleted.
        """

        def work(session: Session) -> set[int]:
            ids = sorted(set(detection_ids))
            if not ids:
                return set()
            sources = set(session.scalars(select(DetectionModel.emitter_id).where(DetectionModel.id.in_(ids))))
            if session.get_bind().dialect.name != "sqlite":
                # lock both sides in id order, as assign_many does: counts recomputed below
                # cannot then lose another collector's concurrent increment
                session.execute(select(EmitterModel.id).where(
                    EmitterModel.id.in_(sorted((sources | {to_emitter_id}) - {None})))
                    .order_by(EmitterModel.id).with_for_update())
            session.execute(update(DetectionModel).where(DetectionModel.id.in_(ids)).values(emitter_id=to_emitter_id))
            deleted = set()
            for eid in sources | {to_emitter_id}:
                if eid is None:
                    continue
                n, first, last = session.execute(
                    select(func.count(DetectionModel.id), func.min(DetectionModel.t_utc), func.max(DetectionModel.t_utc))
                    .where(DetectionModel.emitter_id == eid)).one()
                if n == 0:
                    session.execute(delete(AlertModel).where(AlertModel.emitter_id == eid))
                    session.execute(delete(EmitterModel).where(EmitterModel.id == eid))
                    deleted.add(eid)
                else:
                    session.execute(update(EmitterModel).where(EmitterModel.id == eid)
                                    .values(n_detections=n, first_seen_utc=first, last_seen_utc=last))
            if deleted:
                self._emitter_ids = {k: v for k, v in self._emitter_ids.items() if v not in deleted}
            return deleted

        return self._write(work)

    # ----------------------------------------------------------------- reference cells
    def upsert_reference_cells(self, cells: Iterable[GsmCell], imported_utc: float) -> int:
        """Store reference cells (one row per source and CGI; a row already there is updated).

        Returns the number of rows written.
        """
        rows = [{"source": c.source, "mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid, "arfcn": c.arfcn,
                 "bsic": c.bsic, "lat": c.lat, "lon": c.lon, "range_m": c.range_m, "imported_utc": imported_utc}
                for c in cells]

        def work(session: Session) -> int:
            dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
            for i in range(0, len(rows), 1000):
                # one row per key in a statement (PostgreSQL refuses to update a row twice)
                chunk = list({(r["source"], r["mcc"], r["mnc"], r["lac"], r["cid"]): r
                              for r in rows[i:i + 1000]}.values())
                stmt = dialect.insert(ReferenceCellModel).values(chunk)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["source", "mcc", "mnc", "lac", "cid"],
                    set_={k: getattr(stmt.excluded, k) for k in ("arfcn", "bsic", "lat", "lon", "range_m",
                                                                 "imported_utc")})
                session.execute(stmt)
            return len(rows)

        return self._write(work)

    def reference_cells(self, source: str | None = None) -> list[GsmCell]:
        """Imported reference cells (optionally of one source), by id."""
        stmt = select(ReferenceCellModel).order_by(ReferenceCellModel.id)
        if source is not None:
            stmt = stmt.where(ReferenceCellModel.source == source)
        return self._read(lambda s: [
            GsmCell(r.mcc, r.mnc, r.lac, r.cid, r.arfcn, r.bsic, r.lat, r.lon, r.range_m, r.source)
            for r in s.scalars(stmt)])

    def reference_summary(self) -> dict[str, tuple[int, float]]:
        """Per source: (number of cells, time of the newest import)."""
        stmt = select(ReferenceCellModel.source, func.count(ReferenceCellModel.id),
                      func.max(ReferenceCellModel.imported_utc)).group_by(ReferenceCellModel.source)
        return self._read(lambda s: {src: (n, t) for src, n, t in s.execute(stmt)})

    def delete_reference_cells(self, source: str) -> int:
        """Drop every reference cell of ``source``; returns how many."""
        return self._write(lambda s: s.execute(delete(ReferenceCellModel)
                                               .where(ReferenceCellModel.source == source)).rowcount)

    # ----------------------------------------------------------------- baseline
    def upsert_baseline(self, cells: Iterable[dict[str, Any]]) -> int:
        """Store learned cells (dicts with :data:`BASELINE_COLUMNS`); one row per (CGI, ARFCN,
        BSIC), updated when already there. Returns the number written."""
        rows = []
        for c in cells:
            missing = [k for k in BASELINE_COLUMNS if k not in c]
            if missing:
                raise StoreError(f"baseline cell lacks {', '.join(missing)}")
            rows.append({k: c[k] for k in BASELINE_COLUMNS})

        def work(session: Session) -> int:
            dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
            keys = ["mcc", "mnc", "lac", "cid", "arfcn", "bsic"]
            for i in range(0, len(rows), 500):
                chunk = list({tuple(r[k] for k in keys): r for r in rows[i:i + 500]}.values())
                stmt = dialect.insert(BaselineCellModel).values(chunk)
                stmt = stmt.on_conflict_do_update(
                    index_elements=keys,
                    set_={k: getattr(stmt.excluded, k) for k in BASELINE_COLUMNS if k not in keys})
                session.execute(stmt)
            return len(rows)

        return self._write(work)

    def baseline_cells(self) -> list[BaselineCellRow]:
        """Every learned cell, by id."""
        stmt = select(BaselineCellModel).order_by(BaselineCellModel.id)
        return self._read(lambda s: [_row(BaselineCellRow, b) for b in s.scalars(stmt)])

    # ----------------------------------------------------------------- alerts
    def upsert_alert(self, emitter_id: int, **values: Any) -> tuple[AlertRow, bool]:
        """Raise the alert of an emitter, or update it (``n_updates`` counts the updates).

        ``values`` are :data:`ALERT_COLUMNS`; ``raised_utc`` is kept from the first time.

        Returns
        -------
        alert : AlertRow
        new : bool
            True when this raised it.
        """
        bad = sorted(set(values) - set(ALERT_COLUMNS))
        if bad:
            raise StoreError(f"cannot set alert column(s) {', '.join(bad)}")
        if values.get("indicators") is not None:
            values["indicators"] = [dict(i) for i in values["indicators"]]

        def work(session: Session) -> tuple[AlertRow, bool]:
            row = session.scalar(select(AlertModel).where(AlertModel.emitter_id == emitter_id))
            if row is None:
                missing = [k for k in ALERT_COLUMNS if k not in values]
                if missing:
                    raise StoreError(f"a new alert needs {', '.join(missing)}")
                row = AlertModel(emitter_id=emitter_id, n_updates=1, **values)
                session.add(row)
                session.flush()
                return _row(AlertRow, row), True
            for k, v in values.items():
                if k != "raised_utc":
                    setattr(row, k, v)
            row.n_updates = (row.n_updates or 0) + 1
            session.flush()
            return _row(AlertRow, row), False

        return self._write(work)

    def alerts(self) -> list[AlertRow]:
        """Every alert, oldest first."""
        stmt = select(AlertModel).order_by(AlertModel.raised_utc, AlertModel.id)
        return self._read(lambda s: [_row(AlertRow, a) for a in s.scalars(stmt)])

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
