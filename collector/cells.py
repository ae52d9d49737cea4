"""What the collector knows about each GSM downlink cell, gathered from its detections.

A decode scan's detection (``features["decoded"]``) carries what the cell broadcast: its
identity (MCC, MNC, LAC, CID, BSIC), its reselection parameters, T3212, its neighbour list
and its carrier's frequency error; a sweep's detection only its power. :class:`CellEvidence`
keeps both for one emitter, :class:`CellTracker` keeps the evidence of every GSM downlink
emitter up to date as association attaches (or moves) detections, within a sliding window
of ``window_s`` seconds of data time.

Times are Unix seconds (UTC), powers dBm, frequency errors ppm, positions WGS84 degrees.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.store import DetectionRow, Store

log = logging.getLogger(__name__)

#: Default evidence window: what is older than this before the newest detection is dropped, s.
DEFAULT_WINDOW_S = 6 * 3600.0
#: Power samples are kept this long (the power and motion tests look at the last 10 min), s;
#: first and last seen times and the sensors that heard a cell are kept for the whole window.
POWER_WINDOW_S = 1800.0

CGI = tuple[int, int, int, int]


def _int(v: Any) -> int | None:
    """An integer feature (decoded MCC/MNC come as digit strings), or None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit() and len(v) <= 6:
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _real(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _arfcns(text: Any) -> tuple[int, ...] | None:
    if not isinstance(text, str):
        return None
    out = []
    for part in text.split(","):
        part = part.strip()
        if part.isdigit() and len(part) <= 4:
            out.append(int(part))
    return tuple(sorted(set(out)))


def format_cgi(cgi: tuple[int | None, ...]) -> str:
    """``MCC-MNC-LAC-CID`` (``?`` where unknown), MCC on three digits, MNC on two or more."""
    mcc, mnc, lac, cid = cgi
    return (f"{'?' if mcc is None else f'{mcc:03d}'}-{'?' if mnc is None else f'{mnc:02d}'}-"
            f"{'?' if lac is None else lac}-{'?' if cid is None else cid}")


@dataclass(frozen=True)
class Broadcast:
    """What one decode of a cell showed.

    Attributes
    ----------
    t_utc : float
    sensor_id : str
    sensor_lat, sensor_lon : float
    power_dbm : float
    bsic : int
    mcc, mnc, lac, cid : int or None
        None when the SI3/SI4 carrying them was not decoded in that capture.
    ppm : float or None
        The carrier's frequency error as received: the sensor's remaining LO error plus the
        cell's own.
    sensor_ppm : float or None
        The sensor's LO correction when it published (changes between its decode passes).
    neighbours : tuple of int or None
        BCCH ARFCNs of the neighbour list; None when no SI2 was decoded.
    cro_db, temporary_offset_db, penalty_time_s, t3212_s : int or None
        C2 reselection parameters (``penalty_time_s`` None with CRO > 0: PENALTY_TIME 31,
        C2 = C1 - CRO) and the periodic location-update timer (0: none).
    """

    t_utc: float
    sensor_id: str
    sensor_lat: float
    sensor_lon: float
    power_dbm: float
    bsic: int
    mcc: int | None
    mnc: int | None
    lac: int | None
    cid: int | None
    ppm: float | None
    sensor_ppm: float | None
    neighbours: tuple[int, ...] | None
    cro_db: int | None
    temporary_offset_db: int | None
    penalty_time_s: int | None
    t3212_s: int | None

    @property
    def cgi(self) -> CGI | None:
        """(MCC, MNC, LAC, CID) when all four were decoded."""
        if None in (self.mcc, self.mnc, self.lac, self.cid):
            return None
        return (self.mcc, self.mnc, self.lac, self.cid)  # type: ignore[return-value]

    @property
    def lai(self) -> tuple[int, int, int] | None:
        """(MCC, MNC, LAC) when decoded."""
        if None in (self.mcc, self.mnc, self.lac):
            return None
        return (self.mcc, self.mnc, self.lac)  # type: ignore[return-value]

    @property
    def c2_bonus_db(self) -> int | None:
        """What C2 reselection adds to the cell once the penalty time has passed, dB:
        +CRO, or -CRO with PENALTY_TIME 31 (None when the parameters were not decoded)."""
        if self.cro_db is None:
            return None
        if self.cro_db > 0 and self.penalty_time_s is None:
            return -self.cro_db
        return self.cro_db

    @classmethod
    def from_detection(cls, det: DetectionRow) -> Broadcast | None:
        """The broadcast a decoded detection carries, or None for a power measurement."""
        f = det.features or {}
        bsic = _int(f.get("bsic"))
        if f.get("decoded") is not True or bsic is None:
            return None
        si = str(f.get("si_types") or "")
        has_si2 = any(t in ("SI2", "SI2bis", "SI2ter") for t in si.split(","))
        return cls(
            t_utc=det.t_utc, sensor_id=det.sensor_id, sensor_lat=det.sensor_lat, sensor_lon=det.sensor_lon,
            power_dbm=det.power_dbm, bsic=bsic, mcc=_int(f.get("mcc")), mnc=_int(f.get("mnc")),
            lac=_int(f.get("lac")), cid=_int(f.get("cid")), ppm=_real(f.get("ppm")),
            sensor_ppm=_real(f.get("sensor_ppm")),
            neighbours=_arfcns(f.get("neighbours", "")) if has_si2 else None,
            cro_db=_int(f.get("cro_db")), temporary_offset_db=_int(f.get("temporary_offset_db")),
            penalty_time_s=_int(f.get("penalty_time_s")), t3212_s=_int(f.get("t3212_s")))


@dataclass(frozen=True)
class PowerSample:
    """One received power of the cell (any detection)."""

    t_utc: float
    sensor_id: str
    sensor_lat: float
    sensor_lon: float
    power_dbm: float
    detection_id: int = 0


@dataclass(frozen=True)
class Fix:
    """A position of the emitter from a short window of its detections (motion evidence)."""

    t_utc: float
    lat: float
    lon: float
    semi_major_m: float | None


@dataclass
class CellEvidence:
    """Everything in the window about one GSM downlink emitter, in time order.

    ``broadcasts`` and ``fixes`` cover the evidence window, ``powers`` only the last
    :data:`POWER_WINDOW_S`; ``first_utc``, ``last_utc`` and :meth:`sensors` cover everything
    added (since the emitter entered the window).
    """

    emitter_id: int
    channel: int | None
    broadcasts: list[Broadcast] = field(default_factory=list)
    powers: list[PowerSample] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    first_utc: float | None = None
    last_utc: float | None = None
    decoded_ids: set[int] = field(default_factory=set, repr=False)
    _heard_by: set[str] = field(default_factory=set, repr=False)
    _seen: set[int] = field(default_factory=set, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def add(self, det: DetectionRow) -> None:
        """Add one detection (a detection id is added once)."""
        if det.id in self._seen:
            return
        self._seen.add(det.id)
        self._memo.clear()
        self._heard_by.add(det.sensor_id)
        self.first_utc = det.t_utc if self.first_utc is None else min(self.first_utc, det.t_utc)
        self.last_utc = det.t_utc if self.last_utc is None else max(self.last_utc, det.t_utc)
        p = PowerSample(det.t_utc, det.sensor_id, det.sensor_lat, det.sensor_lon, det.power_dbm, det.id)
        _insort(self.powers, p)
        b = Broadcast.from_detection(det)
        if b is not None:
            _insort(self.broadcasts, b)
            self.decoded_ids.add(det.id)

    def add_fix(self, fix: Fix) -> None:
        """Record a short-window position."""
        _insort(self.fixes, fix)
        self._memo.clear()

    def prune(self, before_utc: float, powers_before_utc: float | None = None) -> None:
        """Forget what is older than ``before_utc`` (power samples: than ``powers_before_utc``)."""
        self._memo.clear()
        cut = before_utc if powers_before_utc is None else max(before_utc, powers_before_utc)
        self.powers = [p for p in self.powers if p.t_utc >= cut]
        self.broadcasts = [b for b in self.broadcasts if b.t_utc >= before_utc]
        self.fixes = [f for f in self.fixes if f.t_utc >= before_utc]
        self._seen = {p.detection_id for p in self.powers}
        self.decoded_ids &= self._seen
        if self.first_utc is not None and self.first_utc < before_utc:
            times = [x.t_utc for x in (*self.powers, *self.broadcasts)]
            self.first_utc = min(times) if times else None
            if not times:
                self.last_utc = None

    @property
    def decoded(self) -> bool:
        """Whether any decode of the cell is in the window."""
        return bool(self.broadcasts)

    def _cached(self, name: str, make: Any) -> Any:
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    @property
    def bsic(self) -> int | None:
        """The BSIC most decodes show."""
        return self._cached("bsic", self._bsic)

    def _bsic(self) -> int | None:
        if not self.broadcasts:
            return None
        counts: dict[int, int] = {}
        for b in self.broadcasts:
            counts[b.bsic] = counts.get(b.bsic, 0) + 1
        return max(counts, key=lambda k: (counts[k], k))

    def cgis(self) -> dict[CGI, tuple[float, float, int]]:
        """Each full identity decoded: (first seen, last seen, decodes)."""
        return self._cached("cgis", lambda: self._spans("cgi"))

    def lais(self) -> dict[tuple[int, int, int], tuple[float, float, int]]:
        """Each (MCC, MNC, LAC) decoded: (first seen, last seen, decodes)."""
        return self._cached("lais", lambda: self._spans("lai"))

    def _spans(self, attr: str) -> dict[Any, tuple[float, float, int]]:
        """Each value of the broadcasts' ``attr`` (``cgi`` or ``lai``): (first seen, last
        seen, decodes)."""
        out: dict[Any, tuple[float, float, int]] = {}
        for b in self.broadcasts:
            c = getattr(b, attr)
            if c is None:
                continue
            first, last, n = out.get(c, (b.t_utc, b.t_utc, 0))
            out[c] = (min(first, b.t_utc), max(last, b.t_utc), n + 1)
        return out

    def latest_identity(self) -> str | None:
        """``MCC-MNC-LAC-CID`` of the latest decode that gave them all, else ``MCC-MNC-LAC-?`` of
        the latest that gave the LAI, or None."""
        for b in reversed(self.broadcasts):
            if b.cgi is not None:
                return format_cgi(b.cgi)
        for b in reversed(self.broadcasts):
            if b.lai is not None:
                return format_cgi((b.mcc, b.mnc, b.lac, None))
        return None

    def sensors(self) -> set[str]:
        """Sensors that heard it."""
        return self._heard_by


def _insort(items: list, item: Any) -> None:
    if not items or items[-1].t_utc <= item.t_utc:
        items.append(item)
    else:
        bisect.insort(items, item, key=lambda x: x.t_utc)


class CellTracker:
    """The evidence of every GSM downlink emitter, kept as detections are associated.

    Parameters
    ----------
    window_s : float
        Evidence older than this before the newest detection is forgotten, s.
    """

    def __init__(self, window_s: float = DEFAULT_WINDOW_S, power_window_s: float = POWER_WINDOW_S) -> None:
        self.window_s = float(window_s)
        self.power_window_s = float(power_window_s)
        self.cells: dict[int, CellEvidence] = {}
        self.sensor_clock: dict[str, float] = {}
        self.newest_utc: float | None = None

    def _cell(self, emitter_id: int, channel: int | None) -> CellEvidence:
        ev = self.cells.get(emitter_id)
        if ev is None:
            ev = self.cells[emitter_id] = CellEvidence(emitter_id, channel)
        return ev

    def add(self, detections: Iterable[DetectionRow]) -> None:
        """Add associated GSM downlink detections (others are ignored)."""
        for d in detections:
            if d.kind != "gsm_downlink" or d.emitter_id is None:
                continue
            self._cell(d.emitter_id, d.channel).add(d)
            self._clock(d.sensor_id, d.t_utc)

    def _clock(self, sensor_id: str, t_utc: float) -> None:
        if t_utc > self.sensor_clock.get(sensor_id, -float("inf")):
            self.sensor_clock[sensor_id] = t_utc
        if self.newest_utc is None or t_utc > self.newest_utc:
            self.newest_utc = t_utc

    def load(self, store: Store, emitter_ids: Iterable[int] | None = None) -> None:
        """(Re)read the window's detections from the store: of every GSM downlink emitter, or
        only of ``emitter_ids`` (their evidence is replaced; fixes are kept)."""
        if emitter_ids is None:
            newest = max(store.sensor_clocks().values(), default=None)
            if newest is None:
                return
            since = newest - self.window_s
            self.cells = {}
            self.add(store.detections(kind="gsm_downlink", since_utc=since))
            return
        ids = sorted(set(emitter_ids))
        if not ids:
            return
        since = None if self.newest_utc is None else self.newest_utc - self.window_s
        for eid in ids:
            old = self.cells.pop(eid, None)
            if old is not None:
                self._cell(eid, old.channel).fixes = old.fixes
        self.add(store.detections(emitter_ids=ids, since_utc=since, kind="gsm_downlink"))

    def update(self, store: Store, association: Any) -> None:
        """Take in what an association pass did (:class:`collector.association.Association`)."""
        for eid in association.deleted:
            self.cells.pop(eid, None)
        for rows in association.added.values():
            self.add(rows)
        if association.moved:
            self.load(store, association.moved)

    def record_fix(self, emitter_id: int, fix: Fix) -> None:
        """Record a short-window position of an emitter the tracker knows."""
        ev = self.cells.get(emitter_id)
        if ev is not None:
            ev.add_fix(fix)

    def prune(self) -> None:
        """Forget evidence older than the window (power samples: than the power window); drop
        emitters left with none."""
        if self.newest_utc is None:
            return
        before = self.newest_utc - self.window_s
        powers_before = self.newest_utc - self.power_window_s
        for eid in list(self.cells):
            ev = self.cells[eid]
            stale = (ev.powers and ev.powers[0].t_utc < powers_before) or (ev.first_utc is not None
                                                                          and ev.first_utc < before)
            if not stale:
                continue
            ev.prune(before, powers_before)
            if ev.last_utc is None:
                del self.cells[eid]
