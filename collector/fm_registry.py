"""The FM licence registry in the collector's database, and what the FM judge reads there.

``rfhunt registry import FILE`` reads a CSV with the header
``frequency_hz,name,pi,lat,lon,erp_w,licence`` (any column order; UTF-8, a BOM is fine):

* ``frequency_hz``: carrier, Hz, in the FM broadcast band :data:`FM_BAND_HZ`;
* ``name``: station name, 1-128 characters;
* ``pi``: RDS programme identification in hex (``C201``, ``0xC201``; 1-4 digits, stored as
  4 upper-case digits), or empty when the station sends no RDS or it is not known;
* ``lat``, ``lon``: transmitter site, WGS84 degrees;
* ``erp_w``: effective radiated power, W (> 0), or empty;
* ``licence``: licence number, up to 64 characters, or empty.

Every bad row is reported at once (up to :data:`MAX_REPORTED_ERRORS`), each as
``FILE:LINE:COLUMN: name: message`` (COLUMN is the 1-based field number), and nothing is
stored. A (frequency, site) may appear once per file. Rows go to the table ``fm_stations``
(one row per frequency and site: importing again updates them; ``replace`` drops the
table's rows first).

The judge compares FM emitters with the database's stations plus those of the collector's
configured CSV (``[reference] fm_registry_csv``): :func:`load_fm_reference`. What else the
FM verdict needs from the store (each emitter's latest detection, the carriers heard with
it and its on-air schedule) comes from :func:`fm_evidence`.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Double, Integer, String, UniqueConstraint, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from collector.fm_verdict import KnownSignature
from collector.reference import FM_COLUMNS, FmStation, Reference
from collector.store import Base, DetectionRow, EmitterRow, Store
from rfhunt.errors import ConfigError, StoreError

#: The FM broadcast band a registry frequency must lie in, Hz (inclusive).
FM_BAND_HZ = (87.0e6, 108.0e6)
MAX_NAME_CHARS = 128
MAX_LICENCE_CHARS = 64
#: Bad rows listed in one error before the rest are only counted.
MAX_REPORTED_ERRORS = 20
_HEX_PI = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{1,4})")


class FmStationModel(Base):
    """A licensed FM transmitter imported from a registry file (one row per frequency and site)."""

    __tablename__ = "fm_stations"
    __table_args__ = (UniqueConstraint("frequency_hz", "lat", "lon", name="uq_fm_stations_freq_site"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    frequency_hz: Mapped[float] = mapped_column(Double)
    name: Mapped[str] = mapped_column(String(MAX_NAME_CHARS))
    pi: Mapped[str | None] = mapped_column(String(4), nullable=True)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    erp_w: Mapped[float | None] = mapped_column(Double, nullable=True)
    licence: Mapped[str | None] = mapped_column(String(MAX_LICENCE_CHARS), nullable=True)
    source: Mapped[str] = mapped_column(String(256))
    imported_utc: Mapped[float] = mapped_column(Double)


# ------------------------------------------------------------------------------ parsing
def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number ({what})") from None
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number ({what})")
    return v


def parse_frequency_hz(text: str) -> float:
    """A registry frequency (Hz) in :data:`FM_BAND_HZ`; ValueError otherwise."""
    v = _number(text, "Hz")
    lo, hi = FM_BAND_HZ
    if not lo <= v <= hi:
        hint = " (the column is Hz: 97.1 MHz is 97100000)" if lo / 1e6 <= v <= hi / 1e6 else ""
        raise ValueError(f"{text} Hz is outside the FM band {lo / 1e6:g}-{hi / 1e6:g} MHz{hint}")
    return v


def parse_pi(text: str) -> str | None:
    """An RDS PI in hex (1-4 digits, optional ``0x``) as 4 upper-case digits; None for empty."""
    if text == "":
        return None
    m = _HEX_PI.fullmatch(text)
    if not m:
        raise ValueError(f"RDS PI {text!r} must be 1 to 4 hex digits, e.g. C201")
    return m.group(1).upper().zfill(4)


def _lat(text: str) -> float:
    v = _number(text, "degrees")
    if not -90 <= v <= 90:
        raise ValueError(f"latitude {text} is outside [-90, 90]")
    return v


def _lon(text: str) -> float:
    v = _number(text, "degrees")
    if not -180 <= v <= 180:
        raise ValueError(f"longitude {text} is outside [-180, 180]")
    return v


def _erp(text: str) -> float | None:
    if text == "":
        return None
    v = _number(text, "W")
    if v <= 0:
        raise ValueError(f"ERP {text} W must be positive")
    return v


def _control(text: str) -> bool:
    """Whether ``text`` holds a control, format or unassigned character (Unicode class C)."""
    return any(unicodedata.category(c).startswith("C") for c in text)


def _name(text: str) -> str:
    if not text:
        raise ValueError("empty (every station needs a name)")
    if len(text) > MAX_NAME_CHARS or _control(text):
        raise ValueError(f"must be 1-{MAX_NAME_CHARS} characters, no control characters")
    return text


def _licence(text: str) -> str:
    if len(text) > MAX_LICENCE_CHARS or _control(text):
        raise ValueError(f"must be at most {MAX_LICENCE_CHARS} characters, no control characters")
    return text


_PARSERS = {"frequency_hz": parse_frequency_hz, "name": _name, "pi": parse_pi, "lat": _lat, "lon": _lon,
            "erp_w": _erp, "licence": _licence}


def parse_registry_text(text: str, name: str = "<registry>") -> list[FmStation]:
    """Parse a registry CSV held in a string (see the module notes); ``name`` is the file name
    the errors give. An empty ``licence`` becomes ``""``.

    Raises
    ------
    ConfigError
        Naming ``name:line:column`` of every bad row (all of them, up to
        :data:`MAX_REPORTED_ERRORS`), a bad header, or a (frequency, site) given twice.
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ConfigError(f"{name}:1: unreadable CSV: {exc}") from None
    if header is None or not any(h.strip() for h in header):
        raise ConfigError(f"{name}:1: empty file, expected the header {','.join(FM_COLUMNS)}")
    header = [h.strip() for h in header]
    missing = [c for c in FM_COLUMNS if c not in header]
    unknown = [c for c in header if c not in FM_COLUMNS]
    twice = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or twice:
        raise ConfigError(f"{name}:1: header must be {','.join(FM_COLUMNS)}"
                          + (f"; missing {','.join(missing)}" if missing else "")
                          + (f"; unknown {','.join(unknown)}" if unknown else "")
                          + (f"; repeated {','.join(twice)}" if twice else ""))
    errors: list[str] = []
    n_errors = 0
    stations: list[FmStation] = []
    seen: dict[tuple[float, float, float], int] = {}
    line = 1
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue
            row_errors = []
            if len(record) != len(header):
                row_errors.append(f"{name}:{line}:{min(len(record), len(header)) + 1}: {len(record)} fields, "
                                  f"expected {len(header)} ({','.join(header)})")
            else:
                values = {}
                for col, (field, raw) in enumerate(zip(header, record), start=1):
                    try:
                        values[field] = _PARSERS[field](raw.strip())
                    except ValueError as exc:
                        row_errors.append(f"{name}:{line}:{col}: {field}: {exc}")
                if not row_errors:
                    key = (values["frequency_hz"], values["lat"], values["lon"])
                    if key in seen:
                        row_errors.append(f"{name}:{line}:1: {key[0] / 1e6:.2f} MHz at ({key[1]}, {key[2]}) is "
                                          f"already on line {seen[key]}")
                    else:
                        seen[key] = line
                        stations.append(FmStation(**values))
            n_errors += len(row_errors)
            errors.extend(row_errors[:max(MAX_REPORTED_ERRORS - len(errors), 0)])
    except csv.Error as exc:
        n_errors += 1
        errors.append(f"{name}:{reader.line_num or line}: unreadable CSV: {exc}")
    if n_errors:
        more = f"\n... and {n_errors - len(errors)} more" if n_errors > len(errors) else ""
        raise ConfigError(f"{name}: {n_errors} bad value(s) in the FM registry, nothing imported:\n"
                          + "\n".join(errors) + more)
    return stations


def read_registry(path: str | Path) -> list[FmStation]:
    """Read and check a registry file (see :func:`parse_registry_text`).

    Raises
    ------
    ConfigError
        On an unreadable file (not UTF-8, missing) or any bad row.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the FM registry: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    return parse_registry_text(text, str(path))


# ------------------------------------------------------------------------------ database
@dataclass(frozen=True)
class RegistryImport:
    """What :func:`import_registry` did: stations read from the file, rows written, rows
    dropped first (``replace``)."""

    path: Path
    read: int
    stored: int
    replaced: int = 0


def _write(store: Store, work) -> object:
    try:
        with Session(store.engine) as session, session.begin():
            return work(session)
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.url} refused the FM registry: {str(exc).splitlines()[0]}") from None


def _read(store: Store, work) -> object:
    try:
        with Session(store.engine) as session:
            return work(session)
    except SQLAlchemyError as exc:
        raise StoreError(f"database {store.url} refused to read the FM registry: "
                         f"{str(exc).splitlines()[0]}") from None


def store_stations(store: Store, stations: Sequence[FmStation], *, source: str, replace_all: bool = False,
                   imported_utc: float | None = None) -> tuple[int, int]:
    """Write ``stations`` (one row per frequency and site, updated when there); with
    ``replace_all`` drop every row first, in the same transaction. Returns (written, dropped).

    Raises
    ------
    StoreError
        If the database refuses.
    """
    now = time.time() if imported_utc is None else imported_utc
    rows = list({(s.frequency_hz, s.lat, s.lon): {
        "frequency_hz": s.frequency_hz, "name": s.name, "pi": s.pi, "lat": s.lat, "lon": s.lon, "erp_w": s.erp_w,
        "licence": s.licence or None, "source": source[:256], "imported_utc": now} for s in stations}.values())

    def work(session: Session) -> tuple[int, int]:
        dropped = session.execute(delete(FmStationModel)).rowcount if replace_all else 0
        dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
        for i in range(0, len(rows), 500):
            stmt = dialect.insert(FmStationModel).values(rows[i:i + 500])
            stmt = stmt.on_conflict_do_update(
                index_elements=["frequency_hz", "lat", "lon"],
                set_={k: getattr(stmt.excluded, k) for k in ("name", "pi", "erp_w", "licence", "source",
                                                             "imported_utc")})
            session.execute(stmt)
        return len(rows), dropped

    return _write(store, work)  # type: ignore[return-value]


def import_registry(store: Store, path: str | Path, *, replace_all: bool = False) -> RegistryImport:
    """Check a registry file and store its stations (see the module notes).

    Parameters
    ----------
    store : Store
    path : str or Path
    replace_all : bool
        Drop every station already in the database first (stations gone from the file go).

    Raises
    ------
    ConfigError
        On an unreadable file or any bad row (nothing is stored then).
    StoreError
        If the database refuses.
    """
    path = Path(path)
    stations = read_registry(path)
    stored, dropped = store_stations(store, stations, source=path.name, replace_all=replace_all)
    return RegistryImport(path, len(stations), stored, dropped)


@dataclass(frozen=True)
class RegistryEntry:
    """A stored station, with where and when it was imported from."""

    station: FmStation
    source: str
    imported_utc: float


def registry_entries(store: Store) -> list[RegistryEntry]:
    """The database's FM stations, by frequency then name."""
    stmt = select(FmStationModel).order_by(FmStationModel.frequency_hz, FmStationModel.name, FmStationModel.id)
    return _read(store, lambda s: [  # type: ignore[return-value]
        RegistryEntry(FmStation(r.frequency_hz, r.name, r.pi, r.lat, r.lon, r.erp_w, r.licence or ""), r.source,
                      r.imported_utc) for r in s.scalars(stmt)])


def registry_stations(store: Store) -> list[FmStation]:
    """The database's FM stations (see :func:`registry_entries`)."""
    return [e.station for e in registry_entries(store)]


def registry_summary(store: Store) -> tuple[int, float | None]:
    """(number of stored stations, newest import time): changes whenever an import does, so
    a running collector can tell when to reload the registry."""
    stmt = select(func.count(FmStationModel.id), func.max(FmStationModel.imported_utc))
    return _read(store, lambda s: tuple(s.execute(stmt).one()))  # type: ignore[return-value]


def merge_registries(first: Iterable[FmStation], second: Iterable[FmStation]) -> tuple[FmStation, ...]:
    """Stations of ``first``, then those of ``second`` on a (frequency, site) ``first`` lacks."""
    out = list(first)
    have = {(s.frequency_hz, s.lat, s.lon) for s in out}
    out += [s for s in second if (s.frequency_hz, s.lat, s.lon) not in have]
    return tuple(out)


def load_fm_reference(store: Store, reference: Reference) -> Reference:
    """``reference`` (from the configured files) with the database's FM stations added: the
    registry the judge uses. A station in both keeps the database's entry."""
    return replace(reference, fm_stations=merge_registries(registry_stations(store), reference.fm_stations))


# ------------------------------------------------------------------------------ FM evidence
#: Detections of other FM emitters by the same sensor within this many seconds of an
#: emitter's latest detection are the carriers of its sweep (intermodulation test).
SWEEP_WINDOW_S = 120.0
#: History worth reading for the FM verdicts (schedules need days of it), s: pass
#: ``since_utc = now - EVIDENCE_HISTORY_S`` to :func:`fm_evidence`.
EVIDENCE_HISTORY_S = 14 * 86400.0
#: An emitter is known to send the pilot (RDS) when at least this share of its detections
#: older than :data:`HISTORY_AGE_S` before its latest one, and at least
#: :data:`HISTORY_MIN_DETECTIONS` of them, showed it.
HISTORY_SHARE = 0.8
HISTORY_AGE_S = 86400.0
HISTORY_MIN_DETECTIONS = 5


def known_signature(detections: Sequence[DetectionRow], before_utc: float) -> KnownSignature:
    """What detections made before ``before_utc`` say the transmitter on this frequency sends
    (see :data:`HISTORY_SHARE`): True where it always did, None where not known."""
    def known(key: str) -> bool | None:
        seen = [d.features.get(key) for d in detections if d.t_utc < before_utc]
        seen = [v for v in seen if isinstance(v, bool)]
        if len(seen) < HISTORY_MIN_DETECTIONS:
            return None
        return True if sum(seen) >= HISTORY_SHARE * len(seen) else None
    return KnownSignature(pilot=known("pilot"), rds=known("rds"))


@dataclass(frozen=True)
class FmEvidence:
    """What the FM verdict of one emitter uses besides the registry.

    Attributes
    ----------
    latest : DetectionRow or None
        The emitter's newest detection (its level, sensor position and FM features).
    carriers : tuple of (freq_hz, power_dbm)
        Every FM carrier the same sensor heard in the same sweep (within
        :data:`SWEEP_WINDOW_S`), this one included.
    schedule : collector.fm_schedule.Schedule or None
        Its on-air schedule.
    history : KnownSignature or None
        What it was seen sending up to a day before its latest detection
        (:func:`known_signature`).
    """

    latest: DetectionRow | None
    carriers: tuple[tuple[float, float], ...] = ()
    schedule: object | None = None
    history: KnownSignature | None = None


def fm_evidence(store: Store, emitters: Sequence[EmitterRow], *, since_utc: float | None = None,
                schedule_params: object | None = None) -> dict[int, FmEvidence]:
    """Per FM emitter of ``emitters``: its latest detection, the carriers heard with it and
    its on-air schedule (:func:`collector.fm_schedule.emitter_schedule`), from the store's
    detections since ``since_utc`` (all when None).

    Raises
    ------
    StoreError
        If the database refuses.
    """
    from collector.fm_schedule import ScheduleParams, emitter_schedule

    fm = [e for e in emitters if e.kind == "fm"]
    if not fm:
        return {}
    dets = store.detections(emitter_ids=[e.id for e in fm], since_utc=since_utc)
    by_emitter: dict[int, list[DetectionRow]] = {}
    for d in dets:
        by_emitter.setdefault(d.emitter_id, []).append(d)  # type: ignore[arg-type]
    by_sensor: dict[str, list[DetectionRow]] = {}
    for d in dets:
        by_sensor.setdefault(d.sensor_id, []).append(d)
    params = schedule_params if schedule_params is not None else ScheduleParams()
    out = {}
    for em in fm:
        own = sorted(by_emitter.get(em.id, []), key=lambda d: d.t_utc)
        if not own:
            out[em.id] = FmEvidence(None)
            continue
        latest = own[-1]
        sweep = [d for d in by_sensor[latest.sensor_id] if abs(d.t_utc - latest.t_utc) <= SWEEP_WINDOW_S]
        newest: dict[int, DetectionRow] = {}
        for d in sweep:  # one level per emitter: the detection nearest the latest in time
            cur = newest.get(d.emitter_id)  # type: ignore[arg-type]
            if cur is None or abs(d.t_utc - latest.t_utc) < abs(cur.t_utc - latest.t_utc):
                newest[d.emitter_id] = d  # type: ignore[index]
        carriers = tuple(sorted((d.freq_hz, d.power_dbm) for d in newest.values()))
        out[em.id] = FmEvidence(latest, carriers, emitter_schedule([d.t_utc for d in own], params),
                                known_signature(own, latest.t_utc - HISTORY_AGE_S))
    return out
