"""Rogue-cell indicators: each a test of one GSM downlink cell against the known network, the
other cells heard, and physics, with a human-readable reason and the evidence behind it.

Every indicator function takes a :class:`CellView` (one emitter) and the :class:`Network`
(everything else) and returns ``None`` or a :class:`Fired` whose ``name`` selects its weight
(see :data:`collector.rogue.DEFAULT_WEIGHTS`). Thresholds are module constants, in the units
their names say; the table in :data:`INDICATORS` is the order they are tried in.

Times are Unix seconds (UTC), powers dBm, distances metres, frequency errors ppm.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collector.cells import CGI, CellEvidence, format_cgi
from collector.refindex import AREA_RADIUS_M, ReferenceIndex
from collector.store import EmitterRow
from rfhunt import geo

#: A cell whose known site is further than its range + our uncertainty + this is "elsewhere", m.
FAR_MARGIN_M = 3000.0
#: Uncertainty of a position that is only "near the sensor that hears it best", m, when no
#: power tells better (see :func:`hearing_radius_m`).
HEARING_RADIUS_M = 4000.0


def hearing_radius_m(power_dbm: float) -> float:
    """How far a cell received at ``power_dbm`` can be, m: a 50 dBm EIRP cell, 32 dB of loss
    in the first metre (900 MHz), exponent 3, and 12 dB of luck: 1 km at -60 dBm, 10 km at
    -90 dBm."""
    return float(10 ** ((50.0 - 32.0 + 12.0 - power_dbm) / 30.0))
#: Two sightings of one identity on two channels count as simultaneous within this, s.
OVERLAP_SLACK_S = 900.0
#: Identity changes count within this window, s.
CHANGE_WINDOW_S = 3600.0
#: C2 bonus (CRO, less nothing) above which reselection pulls phones in, dB (the issue says 40).
PULL_DB = 40.0
#: ... and above which it is unusual for a real network, dB.
PULL_UNUSUAL_DB = 20.0
#: T3212 below this is short, s (real networks use 30 min to several hours) ...
T3212_SHORT_S = 1800
#: ... and at most this abnormally short, s.
T3212_ABNORMAL_S = 720
#: Power above the baseline's mean by more than max(this, 3 sigma) is "far above", dB.
POWER_EXCESS_DB = 10.0
#: Window of the motion and power tests, s.
MOTION_WINDOW_S = 600.0
#: Standard deviation of a fixed sensor's received power that a fixed site does not give, dB.
MOTION_STD_DB = 4.0
#: ... or the peak-to-peak swing at one sensor, dB.
MOTION_SPAN_DB = 15.0
#: A fixed sensor has not moved if its positions stay within this, m.
FIXED_SENSOR_M = 50.0
#: Short-window positions further apart than this and twice their ellipses move, m ...
MOTION_MIN_M = 1000.0
#: ... when their ellipses' semi-major axes are below this, m.
MOTION_FIX_M = 800.0
#: A cell on air less than this ...
SHORT_LIFE_S = 1800.0
#: ... and silent this long while its sensors kept listening lived a short life, s.
SILENT_S = 300.0
#: Clock error beyond the other cells of the same captures that real BTSs never show, ppm ...
CLOCK_PPM = 0.2
#: ... and far beyond, ppm.
CLOCK_STRONG_PPM = 1.0
#: Baseline cells with powers learned at a sensor before "new cell" means anything there.
MATURE_CELLS = 3


@dataclass(frozen=True)
class Fired:
    """An indicator that fired: its name (selects the weight), reason and evidence."""

    name: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellView:
    """One GSM downlink emitter as the indicators see it.

    Attributes
    ----------
    em : EmitterRow
    ev : CellEvidence
    lat, lon : float
        Best position: the located one, else the best-hearing sensor's.
    uncertainty_m : float
        How far the cell may be from (lat, lon).
    near_lat, near_lon, near_radius_m : float
        The best-hearing sensor's position and how far the cell can be from it
        (:func:`hearing_radius_m`): the check a confident but wrong fix cannot fool.
    trusted : bool
        Its one identity matches the known network on this ARFCN/BSIC, at a plausible place.
    clock_ppm : list of float
        Its carrier's frequency error beyond the other cells of the same captures, per capture.
    """

    em: EmitterRow
    ev: CellEvidence
    lat: float
    lon: float
    uncertainty_m: float
    near_lat: float = 0.0
    near_lon: float = 0.0
    near_radius_m: float = HEARING_RADIUS_M
    trusted: bool = False
    clock_ppm: list[float] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.em.id

    @property
    def channel(self) -> int | None:
        return self.em.channel

    @property
    def network(self) -> tuple[int, int] | None:
        """(MCC, MNC) of the latest decode that gave them."""
        for b in reversed(self.ev.broadcasts):
            if b.mcc is not None and b.mnc is not None:
                return (b.mcc, b.mnc)
        return None


@dataclass
class Network:
    """Everything a cell is compared with.

    Attributes
    ----------
    ref : ReferenceIndex
    views : dict
        Emitter id -> CellView of every GSM downlink emitter with evidence.
    now_utc : float
        Newest data time.
    sensor_clock : dict
        Sensor id -> its newest detection time.
    mobile_sensors : set of str
        Sensors known to move (their powers say nothing about the emitter moving).
    """

    ref: ReferenceIndex
    views: dict[int, CellView]
    now_utc: float
    sensor_clock: dict[str, float] = field(default_factory=dict)
    mobile_sensors: set[str] = field(default_factory=set)
    by_channel: dict[int | None, list[CellView]] = field(default_factory=dict)
    by_cgi: dict[CGI, list[CellView]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for v in self.views.values():
            self.by_channel.setdefault(v.channel, []).append(v)
            for c in v.ev.cgis():
                self.by_cgi.setdefault(c, []).append(v)


def _km(m: float) -> str:
    return f"{m / 1e3:.1f} km"


def _known_far(v: CellView, lat: float | None, lon: float | None, range_m: float | None) -> float | None:
    """How far beyond all slack a known site is (m, > 0 means elsewhere: beyond the best
    position's uncertainty and beyond the best-hearing sensor's reach); None without a site."""
    if lat is None or lon is None:
        return None
    slack = (range_m or 0.0) + FAR_MARGIN_M
    d_fix = float(geo.distance_m(v.lat, v.lon, lat, lon)) - v.uncertainty_m - slack
    d_near = float(geo.distance_m(v.near_lat, v.near_lon, lat, lon)) - v.near_radius_m - slack
    return min(d_fix, d_near)


def is_trusted(v: CellView, ref: ReferenceIndex) -> bool:
    """Whether the cell's one identity is known on its ARFCN and BSIC at a plausible place."""
    cgis = v.ev.cgis()
    if len(cgis) != 1 or len({b.bsic for b in v.ev.broadcasts}) != 1:
        return False
    (c,) = cgis
    bsic = v.ev.bsic
    for k in ref.known(c):
        if k.source == "baseline":
            if k.arfcn == v.channel and k.bsic == bsic:
                return True
            continue
        if (k.arfcn is None or k.arfcn == v.channel) and (k.bsic is None or k.bsic == bsic):
            far = _known_far(v, k.lat, k.lon, k.range_m)
            if far is None or far <= 0:
                return True
    return False


# ------------------------------------------------------------------------------ identity
def unknown_identity(v: CellView, net: Network) -> Fired | None:
    """Identity unknown to the reference and the baseline (where its network is known)."""
    netw = v.network
    if netw is None or net.ref.empty or net.ref.cells_of_network(*netw, v.lat, v.lon) == 0:
        return None
    cgis = v.ev.cgis()
    if cgis:
        unknown = [c for c in cgis if not net.ref.known(c)]
        if len(unknown) < len(cgis):
            return None
        shown = ", ".join(format_cgi(c) for c in unknown[:4]) + (" ..." if len(unknown) > 4 else "")
        return Fired("unknown_identity", f"identity {shown} is in no reference list nor in the learned baseline",
                     {"identities": [format_cgi(c) for c in unknown]})
    lais = v.ev.lais()
    if lais and not any(net.ref.lai_known(*lai) for lai in lais):
        shown = ", ".join(f"{m:03d}-{n:02d}-{lac}" for m, n, lac in lais)
        return Fired("unknown_identity", f"location area {shown} has no known cell",
                     {"location_areas": sorted(shown.split(", "))})
    return None


def identity_elsewhere(v: CellView, net: Network) -> Fired | None:
    """A known identity heard far from every place it is known at (a trusted cell is where
    it always was)."""
    if v.trusted:
        return None
    for c in v.ev.cgis():
        sites = [(k, _known_far(v, k.lat, k.lon, k.range_m)) for k in net.ref.known(c)]
        sites = [(k, f) for k, f in sites if f is not None]
        if sites and all(f > 0 for _, f in sites):
            k = min(sites, key=lambda t: t[1])[0]
            d = float(geo.distance_m(v.lat, v.lon, k.lat, k.lon))
            return Fired("identity_elsewhere", f"identity {format_cgi(c)} is known {_km(d)} from where it is heard "
                         f"({k.source})", {"identity": format_cgi(c), "distance_m": round(d),
                                           "known_lat": k.lat, "known_lon": k.lon, "source": k.source})
    return None


def identity_other_channel(v: CellView, net: Network) -> Fired | None:
    """A known identity on an ARFCN/BSIC the known network does not give it (a clone)."""
    bsic = v.ev.bsic
    for c in v.ev.cgis():
        knowns = [k for k in net.ref.known(c) if k.arfcn is not None]
        if not knowns:
            continue
        if any(k.arfcn == v.channel and (k.bsic is None or k.bsic == bsic) for k in knowns):
            continue
        k = knowns[0]
        where = f"ARFCN {k.arfcn}" + ("" if k.bsic is None else f" BSIC {k.bsic}")
        return Fired("identity_other_channel", f"identity {format_cgi(c)} belongs to {where} ({k.source}); "
                     f"here it is on ARFCN {v.channel} BSIC {bsic}",
                     {"identity": format_cgi(c), "known_arfcn": k.arfcn, "known_bsic": k.bsic,
                      "arfcn": v.channel, "bsic": bsic})
    return None


def identity_on_two_channels(v: CellView, net: Network) -> Fired | None:
    """One identity broadcast on two ARFCNs (or with two BSICs) at the same time."""
    if v.trusted:
        return None
    mine = v.ev.cgis()
    for c, (first, last, _) in mine.items():
        for w in net.by_cgi.get(c, []):
            if w.id == v.id:
                continue
            f2, l2, _ = w.ev.cgis()[c]
            if first <= l2 + OVERLAP_SLACK_S and f2 <= last + OVERLAP_SLACK_S:
                return Fired("identity_on_two_channels", f"identity {format_cgi(c)} is also broadcast on ARFCN "
                             f"{w.channel} BSIC {w.ev.bsic}" + (" (the known cell)" if w.trusted else ""),
                             {"identity": format_cgi(c), "other_emitter": w.id, "other_arfcn": w.channel,
                              "other_bsic": w.ev.bsic, "other_known": w.trusted})
    return None


def second_cell_on_channel(v: CellView, net: Network) -> Fired | None:
    """Another cell on the same ARFCN at the same time and place, and this one not known."""
    if v.trusted or not v.ev.decoded:
        return None
    for w in net.by_channel.get(v.channel, []):
        if w.id == v.id or not w.ev.decoded or w.ev.bsic == v.ev.bsic:
            continue
        if not (v.ev.first_utc <= w.ev.last_utc + 300.0 and w.ev.first_utc <= v.ev.last_utc + 300.0):
            continue
        if not v.ev.sensors() & w.ev.sensors():
            continue
        return Fired("second_cell_on_channel", f"ARFCN {v.channel} also carries BSIC {w.ev.bsic} "
                     f"({w.ev.latest_identity() or 'identity not decoded'}) at the same time and place",
                     {"other_emitter": w.id, "other_bsic": w.ev.bsic, "other_identity": w.ev.latest_identity(),
                      "other_known": w.trusted})
    return None


def _changes(v: CellView, now_utc: float) -> tuple[int, list[tuple[float, str]]]:
    """The most identity changes one sensor saw in the window, and the identities it saw in order.

    A change is a new LAI, or a new CID where both decodes gave one (SI4 carries no CID).
    """
    per_sensor: dict[str, list] = {}
    for b in v.ev.broadcasts:
        if b.lai is not None and b.t_utc >= now_utc - CHANGE_WINDOW_S:
            per_sensor.setdefault(b.sensor_id, []).append(b)
    best: tuple[int, list[tuple[float, str]]] = (0, [])
    for seq in per_sensor.values():
        n, shown = 0, [(seq[0].t_utc, format_cgi((seq[0].mcc, seq[0].mnc, seq[0].lac, seq[0].cid)))]
        lai, cid = seq[0].lai, seq[0].cid
        for b in seq[1:]:
            if b.lai != lai or (b.cid is not None and cid is not None and b.cid != cid):
                n += 1
                shown.append((b.t_utc, format_cgi((b.mcc, b.mnc, b.lac, b.cid))))
            lai, cid = b.lai, b.cid if b.cid is not None else cid
        if n > best[0]:
            best = (n, shown)
    return best


def identity_change(v: CellView, net: Network) -> Fired | None:
    """LAC (or CID) changing on the same ARFCN within minutes (SMS blasters cycle the LAC)."""
    n, seq = _changes(v, net.now_utc)
    successor = None
    if not v.trusted and v.ev.decoded:
        for w in net.by_channel.get(v.channel, []):
            if w.id == v.id or w.trusted or not w.ev.decoded or not v.ev.sensors() & w.ev.sensors():
                continue
            gap = max(w.ev.first_utc - v.ev.last_utc, v.ev.first_utc - w.ev.last_utc)
            if 0 <= gap <= OVERLAP_SLACK_S and set(w.ev.cgis()) != set(v.ev.cgis()):
                successor = w
                break
    if n == 0 and successor is None:
        return None
    if n == 0:
        return Fired("identity_change", f"ARFCN {v.channel} changed identity within {OVERLAP_SLACK_S / 60:.0f} min: "
                     f"BSIC {successor.ev.bsic} {successor.ev.latest_identity()} and BSIC {v.ev.bsic} "
                     f"{v.ev.latest_identity()}", {"other_emitter": successor.id, "changes": 1})
    span = seq[-1][0] - seq[0][0] if len(seq) > 1 else 0.0
    name = "identity_cycling" if n >= 2 else "identity_change"
    shown = " → ".join(s for _, s in seq[:6]) + (" ..." if len(seq) > 6 else "")
    return Fired(name, f"identity changed {n} time{'s' if n > 1 else ''} on ARFCN {v.channel} in "
                 f"{span / 60:.1f} min: {shown}", {"changes": n, "identities": [s for _, s in seq],
                                                   "span_s": round(span, 1)})


def foreign_network(v: CellView, net: Network) -> Fired | None:
    """MCC/MNC of no network of the area."""
    netw = v.network
    if netw is None:
        return None
    ops = net.ref.operators_near(v.lat, v.lon, AREA_RADIUS_M)
    if not ops or netw in ops:
        return None
    shown = ", ".join(f"{m:03d}-{n:02d}" for m, n in sorted(ops))
    return Fired("foreign_network", f"network {netw[0]:03d}-{netw[1]:02d} operates no cell in this area "
                 f"(known here: {shown})", {"network": f"{netw[0]:03d}-{netw[1]:02d}", "known": shown.split(", ")})


def lonely_lac(v: CellView, net: Network) -> Fired | None:
    """A location area that no other known or heard cell shares."""
    lais = v.ev.lais()
    if not lais:
        return None
    my_cids = {c[3] for c in v.ev.cgis()}
    for (mcc, mnc, lac) in lais:
        others = len(net.ref.lac_cids.get((mcc, mnc, lac), set()) - my_cids)
        heard = {c[3] for w in net.views.values() if w.id != v.id for c in w.ev.cgis()
                 if c[:3] == (mcc, mnc, lac)} - my_cids
        network_size = net.ref.cells_of_network(mcc, mnc, v.lat, v.lon) + sum(
            1 for w in net.views.values() if w.id != v.id and w.network == (mcc, mnc))
        if others == 0 and not heard and network_size >= 3:
            return Fired("lonely_lac", f"LAC {lac} of {mcc:03d}-{mnc:02d} is used by no other known or heard cell",
                         {"lac": lac, "network_cells": network_size})
    return None


# ------------------------------------------------------------------------------ broadcast content
def no_neighbours(v: CellView, net: Network) -> Fired | None:
    """An empty neighbour list (SI2 decoded)."""
    lists = [b.neighbours for b in v.ev.broadcasts if b.neighbours is not None]
    if not lists or any(lists):
        return None
    return Fired("no_neighbours", f"its neighbour list (SI2) is empty ({len(lists)} decode{'s' if len(lists) > 1 else ''})",
                 {"si2_decodes": len(lists)})


def neighbours_not_reciprocal(v: CellView, net: Network) -> Fired | None:
    """Neighbours that do not list the cell back."""
    listed = sorted({a for b in v.ev.broadcasts if b.neighbours for a in b.neighbours})
    if not listed:
        return None
    netw = v.network
    checkable, back = [], []
    for a in listed:
        for w in net.by_channel.get(a, []):
            if w.id == v.id or w.network != netw:
                continue
            theirs = {x for b in w.ev.broadcasts if b.neighbours for x in b.neighbours}
            if not theirs:
                continue
            checkable.append(a)
            if v.channel in theirs:
                back.append(a)
    checkable = sorted(set(checkable))
    if len(checkable) >= 2 and not back:
        return Fired("neighbours_not_reciprocal", f"lists {len(listed)} neighbours; none of the {len(checkable)} "
                     f"heard with their own lists (ARFCN {', '.join(map(str, checkable))}) lists ARFCN "
                     f"{v.channel} back", {"listed": listed, "checked": checkable})
    return None


def reselection_pull(v: CellView, net: Network) -> Fired | None:
    """C2 reselection parameters that pull phones in."""
    best = None
    for b in v.ev.broadcasts:
        bonus = b.c2_bonus_db
        if bonus is not None and (best is None or bonus > best[0]):
            best = (bonus, b)
    if best is None or best[0] <= PULL_UNUSUAL_DB:
        return None
    bonus, b = best
    pt = "" if b.penalty_time_s is None else f" after {b.penalty_time_s} s"
    name = "reselection_pull_strong" if bonus > PULL_DB else "reselection_pull"
    return Fired(name, f"CELL_RESELECT_OFFSET {b.cro_db} dB: C2 favours it by {bonus} dB{pt}",
                 {"cro_db": b.cro_db, "temporary_offset_db": b.temporary_offset_db,
                  "penalty_time_s": b.penalty_time_s, "c2_bonus_db": bonus})


def short_t3212(v: CellView, net: Network) -> Fired | None:
    """A periodic location-update timer shorter than real networks use."""
    vals = [b.t3212_s for b in v.ev.broadcasts if b.t3212_s]
    if not vals or min(vals) >= T3212_SHORT_S:
        return None
    t = min(vals)
    name = "short_t3212_strong" if t <= T3212_ABNORMAL_S else "short_t3212"
    return Fired(name, f"T3212 {t / 60:.0f} min: phones must register again every {t / 60:.0f} min", {"t3212_s": t})


# ------------------------------------------------------------------------------ power, time, motion
def _fixed(samples: list, mobile: bool) -> bool:
    if mobile or not samples:
        return False
    lat = np.array([p.sensor_lat for p in samples])
    lon = np.array([p.sensor_lon for p in samples])
    return float(np.max(geo.distance_m(lat[0], lon[0], lat, lon))) <= FIXED_SENSOR_M


def shares_channel(v: CellView, net: Network) -> bool:
    """Whether another emitter was heard on the cell's ARFCN in the motion window: a sweep then
    measures whichever is there (or both), so only the cell's own decodes tell its power."""
    since = net.now_utc - MOTION_WINDOW_S
    return any(w.id != v.id and w.ev.last_utc is not None and w.ev.last_utc >= since
               for w in net.by_channel.get(v.channel, []))


def _recent_by_sensor(v: CellView, net: Network) -> dict[str, list]:
    """The cell's powers of the motion window by sensor: every detection's, or only its
    decodes' when it is trusted or shares the ARFCN (:func:`shares_channel`): a sweep measures
    whatever is on the ARFCN, and a weak intruder there may never be decoded."""
    samples = v.ev.broadcasts if v.trusted or shares_channel(v, net) else v.ev.powers
    out: dict[str, list] = {}
    for p in samples:
        if p.t_utc >= net.now_utc - MOTION_WINDOW_S:
            out.setdefault(p.sensor_id, []).append(p)
    return out


def power_above_baseline(v: CellView, net: Network) -> Fired | None:
    """Power far above what this identity usually gives at a sensor."""
    learned = [b for c in v.ev.cgis() for b in net.ref.baseline_by_cgi.get(c, [])]
    if not learned:
        return None
    worst = None
    for sid, samples in _recent_by_sensor(v, net).items():
        if not _fixed(samples, sid in net.mobile_sensors):
            continue
        mean_now = float(np.mean([p.power_dbm for p in samples]))
        for b in learned:
            st = (b.power or {}).get(sid)
            if not st or st.get("lat") is None:
                continue
            if float(geo.distance_m(st["lat"], st["lon"], samples[0].sensor_lat, samples[0].sensor_lon)) > FIXED_SENSOR_M:
                continue
            excess = mean_now - st["mean_dbm"]
            if excess > max(POWER_EXCESS_DB, 3 * st.get("std_db", 0.0)) and (worst is None or excess > worst[0]):
                worst = (excess, sid, mean_now, st["mean_dbm"])
    if worst is None:
        return None
    excess, sid, now_dbm, usual = worst
    return Fired("power_above_baseline", f"{now_dbm:.0f} dBm at {sid}, {excess:.0f} dB above this cell's usual "
                 f"{usual:.0f} dBm there", {"sensor": sid, "power_dbm": round(now_dbm, 1),
                                            "baseline_dbm": round(usual, 1), "excess_db": round(excess, 1)})


def new_cell(v: CellView, net: Network) -> Fired | None:
    """A cell the learned baseline does not have, where the baseline is mature."""
    if not v.ev.decoded or v.trusted or not net.ref.sensor_cells:
        return None
    if any((b.arfcn, b.bsic) == (v.channel, v.ev.bsic) for c in v.ev.cgis() for b in net.ref.baseline_by_cgi.get(c, [])):
        return None
    first = v.em.first_seen_utc if v.em.first_seen_utc is not None else v.ev.first_utc
    oldest = min((b.first_seen_utc for b in net.ref.baseline), default=None)
    if oldest is None or first is None or first <= max(b.last_seen_utc for b in net.ref.baseline) - 3600.0:
        return None
    mature = sorted(s for s in v.ev.sensors() if net.ref.sensor_cells.get(s, 0) >= MATURE_CELLS)
    if not mature:
        return None
    return Fired("new_cell", f"not among the cells learned at {', '.join(mature[:3])} since "
                 f"{_hours(first - oldest)} before it appeared", {"sensors": mature})


def _hours(s: float) -> str:
    return f"{s / 3600:.0f} h" if s < 2 * 86400 else f"{s / 86400:.0f} days"


def short_lifetime(v: CellView, net: Network) -> Fired | None:
    """On air briefly, then silent while the sensors that heard it kept listening."""
    first = v.em.first_seen_utc if v.em.first_seen_utc is not None else v.ev.first_utc
    last = v.ev.last_utc
    if first is None or last is None or last - first >= SHORT_LIFE_S:
        return None
    if not v.ev.decoded and any(w.id != v.id and (w.ev.last_utc or 0.0) > last for w in net.by_channel.get(v.channel, [])):
        return None  # a bare carrier whose ARFCN went on under a decoded cell: not off air
    listening = sorted(s for s in v.ev.sensors() if net.sensor_clock.get(s, -np.inf) >= last + SILENT_S)
    if not listening:
        return None
    return Fired("short_lifetime", f"on air {(last - first) / 60:.1f} min, then silent while "
                 f"{', '.join(listening[:3])} kept listening", {"lifetime_s": round(last - first, 1),
                                                               "sensors": listening})


def moving_power(v: CellView, net: Network) -> Fired | None:
    """Powers at fixed sensors that swing as a fixed site's cannot."""
    swings = []
    for sid, samples in _recent_by_sensor(v, net).items():
        if len(samples) < 3 or samples[-1].t_utc - samples[0].t_utc < 40.0:
            continue
        if not _fixed(samples, sid in net.mobile_sensors):
            continue
        p = np.array([s.power_dbm for s in samples])
        swings.append((sid, float(np.std(p, ddof=1)), float(np.ptp(p))))
    moving = [s for s in swings if s[1] > MOTION_STD_DB]
    if len(moving) >= 2 or any(s[2] > MOTION_SPAN_DB for s in swings):
        shown = moving or [max(swings, key=lambda s: s[2])]
        return Fired("moving_power", "power at fixed sensors swings as a fixed site's cannot: " + ", ".join(
            f"{sid} {std:.1f} dB rms ({span:.0f} dB peak to peak)" for sid, std, span in shown[:3])
            + f" within {MOTION_WINDOW_S / 60:.0f} min",
            {"sensors": {sid: {"std_db": round(std, 1), "span_db": round(span, 1)} for sid, std, span in swings}})
    return None


def moving_position(v: CellView, net: Network) -> Fired | None:
    """Positions located from short windows that move."""
    fixes = [f for f in v.ev.fixes if f.t_utc >= net.now_utc - 3 * MOTION_WINDOW_S
             and f.semi_major_m is not None and f.semi_major_m <= MOTION_FIX_M]
    best = None
    for i, a in enumerate(fixes):
        for b in fixes[i + 1:]:
            if b.t_utc - a.t_utc < 120.0:
                continue
            d = float(geo.distance_m(a.lat, a.lon, b.lat, b.lon))
            slack = 2.0 * (a.semi_major_m + b.semi_major_m)  # fits from a few points are optimistic
            if d > max(MOTION_MIN_M, slack) and (best is None or d > best[0]):
                best = (d, a, b)
    if best is None:
        return None
    d, a, b = best
    return Fired("moving_position", f"located positions moved {d:.0f} m in {(b.t_utc - a.t_utc) / 60:.1f} min",
                 {"distance_m": round(d), "from": [round(a.lat, 6), round(a.lon, 6)],
                  "to": [round(b.lat, 6), round(b.lon, 6)], "seconds": round(b.t_utc - a.t_utc)})


def clock_offset(v: CellView, net: Network) -> Fired | None:
    """A carrier frequency error that real base stations never show (sensor LO error removed)."""
    if not v.clock_ppm:
        return None
    med = float(statistics.median(v.clock_ppm))
    if abs(med) <= CLOCK_PPM:
        return None
    name = "clock_offset_strong" if abs(med) > CLOCK_STRONG_PPM else "clock_offset"
    return Fired(name, f"carrier {med:+.2f} ppm off the other cells of the same captures ({len(v.clock_ppm)} "
                 f"capture{'s' if len(v.clock_ppm) > 1 else ''}); real base stations hold ±0.05 ppm",
                 {"residual_ppm": round(med, 3), "captures": len(v.clock_ppm)})


def arfcn_outside_plan(v: CellView, net: Network) -> Fired | None:
    """An ARFCN outside the operator's BCCH plan around it."""
    netw = v.network
    if netw is None and v.ev.decoded:
        return None
    plan = net.ref.plan_near(v.lat, v.lon, *(netw or (None, None)))
    if plan is None or v.channel in plan:
        return None
    who = f"{netw[0]:03d}-{netw[1]:02d}" if netw else "any operator"
    return Fired("arfcn_outside_plan", f"ARFCN {v.channel} is not a BCCH of {who} within "
                 f"{AREA_RADIUS_M / 1e3:.0f} km", {"arfcn": v.channel, "plan_size": len(plan)})


#: Every indicator, in the order they are tried.
INDICATORS: tuple[Callable[[CellView, Network], Fired | None], ...] = (
    identity_other_channel, identity_on_two_channels, identity_elsewhere, identity_change, unknown_identity,
    foreign_network, second_cell_on_channel, lonely_lac, no_neighbours, neighbours_not_reciprocal,
    reselection_pull, short_t3212, clock_offset, arfcn_outside_plan, power_above_baseline, new_cell,
    moving_power, moving_position, short_lifetime,
)
#: Indicators that need no decoded identity (a carrier only measured).
UNDECODED_INDICATORS = (arfcn_outside_plan, moving_power, moving_position, short_lifetime)
