"""Rogue-cell verdicts: every GSM downlink cell scored from its indicators, with reasons.

Score
    The sum of the weights of the indicators that fired (:mod:`collector.indicators`;
    weights in :data:`DEFAULT_WEIGHTS`). A cell scoring at least ``rogue_score`` is
    ``rogue``, at least ``suspicious_score`` ``suspicious``; below that it is ``known`` when
    its identity matches the known network on its ARFCN and BSIC (or, never decoded, its
    ARFCN is in the BCCH plan around it), else ``unverified`` (nothing alarming, nothing to
    confirm it either). The weights and thresholds were calibrated on simulated scenarios
    (``bench/bench_rogue.py --calibrate``; see bench/RESULTS.md), on seeds other than
    those the figures are reported on.

Clock residuals
    A decoded cell's ``ppm`` is its carrier's frequency error as one sensor received it:
    that sensor's remaining LO error plus the cell's own. The captures of one decode pass of
    one sensor share the LO error: a pass is the sensor's decodes with one LO correction
    (``sensor_ppm``), cut where a gap exceeds :data:`PASS_GAP_S`. The median over the pass's
    trusted cells (else over all its other cells, if two or more) estimates the LO error; what
    is left is the cell's own error.

Times are Unix seconds (UTC), frequency errors ppm.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collector.cells import CellEvidence, CellTracker, format_cgi
from collector.indicators import (
    HEARING_RADIUS_M,
    INDICATORS,
    hearing_radius_m,
    UNDECODED_INDICATORS,
    CellView,
    Network,
    is_trusted,
)
from collector.judge import Judgement
from collector.refindex import ReferenceIndex
from collector.store import EmitterRow
from rfhunt import geo

#: Weight of each indicator (name as :class:`collector.indicators.Fired` gives it).
DEFAULT_WEIGHTS: dict[str, float] = {
    "unknown_identity": 2.0,
    "identity_elsewhere": 4.0,
    "identity_other_channel": 4.0,
    "identity_on_two_channels": 4.0,
    "second_cell_on_channel": 1.5,
    "identity_change": 4.0,
    "identity_cycling": 5.0,
    "foreign_network": 3.0,
    "lonely_lac": 1.5,
    "no_neighbours": 2.5,
    "neighbours_not_reciprocal": 2.0,
    "reselection_pull": 1.5,
    "reselection_pull_strong": 3.0,
    "short_t3212": 1.0,
    "short_t3212_strong": 2.0,
    "power_above_baseline": 2.5,
    "new_cell": 1.0,
    "short_lifetime": 1.5,
    "moving_power": 3.0,
    "moving_position": 3.0,
    "clock_offset": 3.0,
    "clock_offset_strong": 4.0,
    "arfcn_outside_plan": 1.5,
}
#: A pass of one sensor's decodes ends after a gap this long, s.
PASS_GAP_S = 15.0
#: A located position counts when its 95 % ellipse's semi-major axis is below this, m.
GOOD_FIX_M = 1500.0


@dataclass(frozen=True)
class RogueModel:
    """Weights and thresholds of the rogue-cell score."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    suspicious_score: float = 3.5
    rogue_score: float = 6.0


DEFAULT_MODEL = RogueModel()


def _position(em: EmitterRow, ev: CellEvidence) -> tuple[float, float, float, float, float, float]:
    """(lat, lon, uncertainty m) of the best position, and (lat, lon, radius m) of the
    best-hearing sensor of the last ten minutes (by the cell's decodes when there are some):
    the located position when its 95 % ellipse is smaller than :data:`GOOD_FIX_M` and it lies
    within reach of that sensor, else the sensor's."""
    # its own decodes say which sensor hears it best (a sweep measures whatever is on the ARFCN)
    last = ev.last_utc or 0.0
    samples = [b for b in ev.broadcasts if b.t_utc >= last - 600.0] or [p for p in ev.powers
                                                                        if p.t_utc >= last - 600.0]
    if samples:
        best = max(samples, key=lambda p: p.power_dbm)
        near = (best.sensor_lat, best.sensor_lon, hearing_radius_m(best.power_dbm))
    else:
        near = (em.lat or 0.0, em.lon or 0.0, HEARING_RADIUS_M)
    if (em.lat is not None and em.lon is not None and not em.underdetermined and em.semi_major_m is not None
            and em.semi_major_m <= GOOD_FIX_M
            and float(geo.distance_m(em.lat, em.lon, near[0], near[1])) <= near[2] + em.semi_major_m):
        return em.lat, em.lon, em.semi_major_m, *near
    return near[0], near[1], near[2], *near


def clock_residuals(views: Mapping[int, CellView]) -> dict[int, list[float]]:
    """Each cell's carrier error beyond its sensor's LO error, per capture (see module notes)."""
    per_sensor: dict[str, list[tuple[float, float | None, float, int]]] = {}
    for v in views.values():
        for b in v.ev.broadcasts:
            if b.ppm is not None:
                per_sensor.setdefault(b.sensor_id, []).append((b.t_utc, b.sensor_ppm, b.ppm, v.id))
    out: dict[int, list[float]] = {}
    for entries in per_sensor.values():
        entries.sort(key=lambda e: (str(e[1]), e[0]))   # by LO correction, then time
        passes, cur = [], [entries[0]]
        for e in entries[1:]:
            if e[0] - cur[-1][0] > PASS_GAP_S or e[1] != cur[-1][1]:
                passes.append(cur)
                cur = []
            cur.append(e)
        passes.append(cur)
        for p in passes:
            trusted = [(q[2], q[3]) for q in p if views[q[3]].trusted]
            all_lo = statistics.median(x for x, _ in trusted) if trusted else None
            for _, _, ppm, eid in p:
                if views[eid].trusted:
                    anchors = [x for x, e in trusted if e != eid]
                    lo = statistics.median(anchors) if anchors else None
                else:
                    lo = all_lo
                if lo is None:
                    others = [q[2] for q in p if q[3] != eid]
                    lo = statistics.median(others) if len(others) >= 2 else None
                if lo is not None:
                    out.setdefault(eid, []).append(ppm - lo)
    return out


def build_views(emitters: Sequence[EmitterRow], tracker: CellTracker, ref: ReferenceIndex) -> dict[int, CellView]:
    """A :class:`CellView` of every GSM downlink emitter with evidence in the tracker."""
    views = {}
    for em in emitters:
        ev = tracker.cells.get(em.id)
        if em.kind != "gsm_downlink" or ev is None or not ev.powers:
            continue
        lat, lon, unc, nlat, nlon, nrad = _position(em, ev)
        views[em.id] = CellView(em, ev, lat, lon, unc, nlat, nlon, nrad)
    for v in views.values():
        v.trusted = is_trusted(v, ref)
    for eid, res in clock_residuals(views).items():
        views[eid].clock_ppm = res
    return views


def score_cell(v: CellView, net: Network, model: RogueModel = DEFAULT_MODEL) -> Judgement:
    """The verdict on one cell (see module notes)."""
    tests = INDICATORS if v.ev.decoded else UNDECODED_INDICATORS
    fired = [f for f in (t(v, net) for t in tests) if f is not None]
    indicators = [{"name": f.name, "weight": float(model.weights.get(f.name, 0.0)), "reason": f.reason,
                   "evidence": f.evidence} for f in fired]
    indicators = [i for i in indicators if i["weight"] > 0]
    indicators.sort(key=lambda i: -i["weight"])
    score = round(sum(i["weight"] for i in indicators), 2)
    identity = v.ev.latest_identity()
    if score >= model.rogue_score:
        verdict = "rogue"
    elif score >= model.suspicious_score:
        verdict = "suspicious"
    elif v.ev.decoded:
        verdict = "known" if v.trusted else "unverified"
    else:
        plan = net.ref.plan_near(v.lat, v.lon)
        verdict = "known" if plan is not None and v.channel in plan else "unverified"
    reasons = [i["reason"] for i in indicators]
    if verdict == "known":
        reasons.append(f"identity {identity} matches the known network on ARFCN {v.channel} BSIC {v.ev.bsic}"
                       if v.ev.decoded else f"ARFCN {v.channel} is in the operators' BCCH plan here (not decoded)")
    elif verdict == "unverified" and not reasons:
        reasons.append(f"identity {identity} is not in the known network, and nothing about it is alarming"
                       if v.ev.decoded else f"carrier on ARFCN {v.channel}; identity not decoded yet")
    return Judgement(verdict, tuple(reasons), score=score, indicators=tuple(indicators), identity=identity)


def judge_cells(emitters: Sequence[EmitterRow], tracker: CellTracker, ref: ReferenceIndex, *,
                model: RogueModel = DEFAULT_MODEL, mobile_sensors: set[str] | None = None,
                now_utc: float | None = None) -> dict[int, Judgement]:
    """Verdicts on every GSM downlink emitter the tracker has evidence of.

    Parameters
    ----------
    emitters : sequence of EmitterRow
        All emitters (others than GSM downlink are ignored).
    tracker : CellTracker
    ref : ReferenceIndex
    model : RogueModel
    mobile_sensors : set of str, optional
        Sensors known to move.
    now_utc : float, optional
        The newest data time (default: the tracker's).
    """
    views = build_views(emitters, tracker, ref)
    if not views:
        return {}
    now = now_utc if now_utc is not None else (tracker.newest_utc or 0.0)
    net = Network(ref, views, now, dict(tracker.sensor_clock), set(mobile_sensors or ()))
    return {eid: score_cell(v, net, model) for eid, v in views.items()}


__all__ = ["DEFAULT_MODEL", "DEFAULT_WEIGHTS", "RogueModel", "build_views", "clock_residuals", "format_cgi",
           "judge_cells", "score_cell"]
