"""Verdicts on emitters, each with human-readable reasons.

* FM: ``licensed`` if the registry has a station within +-50 kHz of the carrier, else
  ``unlicensed``.
* GSM downlink: the rogue-cell score of :mod:`collector.rogue` (``rogue``, ``suspicious``,
  ``known`` or ``unverified``, with the indicators that fired) when the caller has the cells'
  evidence (``cells``); without it, from the ARFCN alone: ``known`` if the BCCH plan of the
  reference has it within 35 km of the located position, else ``unverified`` with the
  ``arfcn_outside_plan`` indicator.
* GSM uplink: emitters (one per ARFCN) are grouped into clusters of co-located
  transmitters: two are linked when their positions lie within 300 m of each other or
  each lies inside the other's 95 % ellipse (mutual, so one badly located emitter with a
  huge ellipse does not swallow its neighbours); clusters are the connected components.
  A cluster of >= 4 channels makes each member ``goip_suspect``, else ``uplink``.
  Only uplinks that are really located (heard from three positions or more; an
  underdetermined one sits at the strongest sensor, so all phones one rooftop hears would
  look co-located) and heard within ``uplink_window_s`` of the newest uplink take part;
  the others are ``uplink`` with the reason why.
* An emitter without a position yet gets ``pending`` where the verdict needs one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.localize import inside_ellipse
from collector.reference import Reference
from collector.store import EmitterRow
from rfhunt import geo

FM_TOLERANCE_HZ = 50e3
GSM_KNOWN_RADIUS_M = 35e3
COLOCATED_M = 300.0
GOIP_MIN_CHANNELS = 4
#: Uplinks last heard longer than this (s) before the newest uplink do not cluster.
DEFAULT_UPLINK_WINDOW_S = 3600.0

#: Verdicts that deserve attention (maps draw them in red tones).
ALARMING = frozenset({"rogue", "suspicious", "unlicensed", "goip_suspect"})


@dataclass(frozen=True)
class Judgement:
    """A verdict and why.

    ``score``, ``indicators`` (``{"name", "weight", "reason", "evidence"}`` each) and
    ``identity`` (``MCC-MNC-LAC-CID``) come with GSM downlink verdicts.
    """

    verdict: str
    reasons: tuple[str, ...]
    score: float | None = None
    indicators: tuple[dict[str, Any], ...] = ()
    identity: str | None = None


def judge_fm(em: EmitterRow, reference: Reference, evidence: Any = None) -> Judgement:
    """FM verdict (:func:`collector.fm_verdict.judge_fm_emitter`): ``licensed``,
    ``unlicensed``, ``suspicious`` or ``intermod`` (never alarming), with reasons.

    ``reference.fm_stations`` is the licence registry (the configured CSV, plus the
    database's stations when the reference came from
    :func:`collector.fm_registry.load_fm_reference`); an empty one makes every carrier
    ``unlicensed``. ``evidence`` (a :class:`collector.fm_registry.FmEvidence`, from
    :func:`collector.fm_registry.fm_evidence`) adds the latest detection's level and
    signature (RDS PI, pilot, deviation), what it sent before (a pilot or RDS gone missing),
    the carriers of its sweep (intermodulation) and the on-air schedule; without it the carrier is judged on its frequency (within
    ``FM_TOLERANCE_HZ``) in the area of its located position.
    """
    from collector.fm_verdict import FmVerdictParams, judge_fm_emitter

    schedule = getattr(evidence, "schedule", None)
    v = judge_fm_emitter(em.freq_hz, reference.fm_stations, latest=getattr(evidence, "latest", None),
                         emitter_lat=em.lat, emitter_lon=em.lon, carriers=getattr(evidence, "carriers", ()),
                         history=getattr(evidence, "history", None),
                         night=schedule.summary if getattr(schedule, "night_only", False) else None,
                         params=FmVerdictParams(freq_tolerance_hz=FM_TOLERANCE_HZ))
    return Judgement(v.verdict, v.reasons)


def judge_gsm_downlink(em: EmitterRow, reference: Reference, index: Any = None) -> Judgement:
    """GSM downlink verdict from the BCCH plan around the located position only (no evidence).

    ``index`` is a :class:`collector.refindex.ReferenceIndex` of ``reference`` (built when
    not given).
    """
    from collector.refindex import ReferenceIndex
    from collector.rogue import DEFAULT_MODEL

    if em.lat is None or em.lon is None:
        return Judgement("pending", ("not located yet",))
    if em.channel is None:
        return Judgement("unverified", (f"carrier at {em.freq_hz / 1e6:.1f} MHz has no ARFCN to check",), score=0.0)
    index = index or ReferenceIndex(reference.gsm_cells)
    plan = index.plan_near(em.lat, em.lon)
    cells = [c for c in reference.gsm_cells if c.arfcn == em.channel]
    near = [(float(geo.distance_m(em.lat, em.lon, c.lat, c.lon)), c) for c in cells]
    near = [(d, c) for d, c in near if d <= GSM_KNOWN_RADIUS_M]
    if near:
        d, c = min(near, key=lambda t: t[0])
        return Judgement("known", (
            f"ARFCN {em.channel} is cell {c.mcc}-{c.mnc}-{c.lac}-{c.cid} {d / 1e3:.1f} km away",
        ), score=0.0)
    if plan is None:
        return Judgement("unverified", (f"carrier on ARFCN {em.channel}; no BCCH plan to check it against",),
                         score=0.0)
    w = float(DEFAULT_MODEL.weights["arfcn_outside_plan"])
    reason = f"ARFCN {em.channel} is not in the operator's BCCH plan here"
    ind = {"name": "arfcn_outside_plan", "weight": w, "reason": reason,
           "evidence": {"arfcn": em.channel, "plan_size": len(plan)}}
    verdict = "rogue" if w >= DEFAULT_MODEL.rogue_score else "suspicious" if w >= DEFAULT_MODEL.suspicious_score \
        else "unverified"
    return Judgement(verdict, (reason,), score=w, indicators=(ind,))


def _colocated(a: EmitterRow, b: EmitterRow) -> bool:
    if geo.distance_m(a.lat, a.lon, b.lat, b.lon) <= COLOCATED_M:
        return True

    def inside(p: EmitterRow, q: EmitterRow) -> bool:
        if q.semi_major_m is None or q.semi_minor_m is None or q.orientation_deg is None:
            return False
        return inside_ellipse(p.lat, p.lon, q.lat, q.lon, q.semi_major_m, q.semi_minor_m, q.orientation_deg)

    return inside(a, b) and inside(b, a)


def _located_uplinks(emitters: Sequence[EmitterRow]) -> list[EmitterRow]:
    return [e for e in emitters if e.kind == "gsm_uplink" and e.lat is not None and e.lon is not None]


def _left_out(em: EmitterRow, newest_utc: float | None, uplink_window_s: float) -> str | None:
    """Why a located uplink emitter takes no part in clustering, or None if it does."""
    if em.underdetermined:
        return "heard from fewer than 3 positions: too vaguely located to cluster"
    if newest_utc is not None and (em.last_seen_utc is None or em.last_seen_utc < newest_utc - uplink_window_s):
        return f"not heard in the {uplink_window_s / 3600:g} h before the newest uplink"
    return None


def _newest_uplink_utc(ups: Sequence[EmitterRow]) -> float | None:
    seen = [e.last_seen_utc for e in ups if e.last_seen_utc is not None]
    return max(seen) if seen else None


def uplink_clusters(emitters: Sequence[EmitterRow], uplink_window_s: float = DEFAULT_UPLINK_WINDOW_S
                    ) -> list[list[EmitterRow]]:
    """Connected components of co-located GSM uplink emitters (see module notes).

    Parameters
    ----------
    emitters : sequence of EmitterRow
    uplink_window_s : float
        Only uplinks last seen within this many seconds of the newest uplink count.
    """
    located = _located_uplinks(emitters)
    newest = _newest_uplink_utc(located)
    ups = [e for e in located if _left_out(e, newest, uplink_window_s) is None]
    parent = list(range(len(ups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ups)):
        for j in range(i + 1, len(ups)):
            if _colocated(ups[i], ups[j]):
                parent[find(i)] = find(j)
    groups: dict[int, list[EmitterRow]] = {}
    for i, e in enumerate(ups):
        groups.setdefault(find(i), []).append(e)
    return list(groups.values())


def judge(emitters: Sequence[EmitterRow], reference: Reference, *,
          uplink_window_s: float = DEFAULT_UPLINK_WINDOW_S,
          cells: Mapping[int, Judgement] | None = None) -> dict[int, Judgement]:
    """Verdicts for all ``emitters`` (all of them: uplink clustering looks at the whole set).

    ``uplink_window_s``: see :func:`uplink_clusters`. ``cells``: rogue-cell verdicts of GSM
    downlink emitters (:func:`collector.rogue.judge_cells`); a GSM downlink emitter without
    one keeps its verdict (its evidence left the window), or if it never had one is judged
    from its ARFCN alone.
    """
    out: dict[int, Judgement] = {}
    index = None
    for em in emitters:
        if em.kind == "fm":
            out[em.id] = judge_fm(em, reference)
        elif em.kind == "gsm_downlink":
            if cells is not None and em.id in cells:
                out[em.id] = cells[em.id]
                continue
            if cells is not None and em.verdict is not None:
                continue  # no evidence in the window (off air for hours): the last verdict stands
            if index is None:
                from collector.refindex import ReferenceIndex

                index = ReferenceIndex(reference.gsm_cells)
            out[em.id] = judge_gsm_downlink(em, reference, index)
        elif em.kind == "gsm_uplink" and (em.lat is None or em.lon is None):
            out[em.id] = Judgement("pending", ("not located yet",))
    located = _located_uplinks(emitters)
    newest = _newest_uplink_utc(located)
    for em in located:
        why = _left_out(em, newest, uplink_window_s)
        if why is not None:
            out[em.id] = Judgement("uplink", (why,))
    for cluster in uplink_clusters(emitters, uplink_window_s):
        channels = sorted({e.channel if e.channel is not None else round(e.freq_hz) for e in cluster})
        if len(channels) >= GOIP_MIN_CHANNELS:
            why = f"{len(channels)} uplink channels transmitting from one place"
            for e in cluster:
                others = ", ".join(str(c) for c in channels if c != e.channel)
                out[e.id] = Judgement("goip_suspect", (why, f"co-located with ARFCN {others}"))
        else:
            for e in cluster:
                n = len(cluster)
                out[e.id] = Judgement("uplink", (
                    "lone uplink transmitter" if n == 1 else f"{n} uplink channels from one place (< {GOIP_MIN_CHANNELS})",
                ))
    return out
