"""Verdicts on emitters, each with human-readable reasons.

* FM: :mod:`collector.fm_verdict`: ``licensed``, ``unlicensed``, ``suspicious`` (a licensed
  frequency with the wrong signature, level or schedule) or ``intermod`` (the sensor's own
  product: never alarming), with reasons.
* GSM downlink: the rogue-cell score of :mod:`collector.rogue` (``rogue``, ``suspicious``,
  ``known`` or ``unverified``, with the indicators that fired) when the caller has the cells'
  evidence (``cells``); without it, from the ARFCN alone: ``known`` if the BCCH plan of the
  reference has it within 35 km of the located position, else ``unverified`` with the
  ``arfcn_outside_plan`` indicator.
* GSM uplink: :mod:`collector.goip`. With the uplink detections of the evidence window
  (``uplink_detections``), the links are clustered into places by their power pattern
  across the sensors and each place is scored (concurrency, persistence, set-up rate,
  night activity): ``goip``, ``goip_suspect``, ``crowd`` or ``uplink``; each uplink emitter
  (one per ARFCN) takes the most alarming verdict of the places using its ARFCN. Without
  detections, the fallback: located emitters within 300 m of each other (or mutually inside
  their 95 % ellipses) are one place, ``goip_suspect`` from 4 channels, else ``uplink``;
  only uplinks located from three positions or more and heard within ``uplink_window_s``
  of the newest uplink take part, the others are ``uplink`` with the reason why.
* An emitter without a position yet gets ``pending`` where the verdict needs one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.goip import GOIP_MIN_CHANNELS, GoipModel, emitter_clusters, judge_uplink_emitters
from collector.reference import Reference
from collector.store import EmitterRow
from rfhunt import geo

FM_TOLERANCE_HZ = 50e3
GSM_KNOWN_RADIUS_M = 35e3
#: Uplinks last heard longer than this (s) before the newest uplink do not cluster.
DEFAULT_UPLINK_WINDOW_S = 3600.0

#: Verdicts that deserve attention (maps draw them in red tones).
ALARMING = frozenset({"rogue", "suspicious", "unlicensed", "goip", "goip_suspect"})


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


def uplink_clusters(emitters: Sequence[EmitterRow], uplink_window_s: float = DEFAULT_UPLINK_WINDOW_S
                    ) -> list[list[EmitterRow]]:
    """Connected components of co-located GSM uplink emitters: the fallback without
    detections (:func:`collector.goip.emitter_clusters`).

    Parameters
    ----------
    emitters : sequence of EmitterRow
    uplink_window_s : float
        Only uplinks last seen within this many seconds of the newest uplink count.
    """
    return emitter_clusters(emitters, uplink_window_s)


def judge(emitters: Sequence[EmitterRow], reference: Reference, *,
          uplink_window_s: float = DEFAULT_UPLINK_WINDOW_S,
          cells: Mapping[int, Judgement] | None = None, uplink_detections: Sequence[Any] | None = None,
          goip_model: GoipModel | None = None, uplink_verdicts: Mapping[int, Judgement] | None = None,
          fm_evidence: Mapping[int, Any] | None = None) -> dict[int, Judgement]:
    """Verdicts for all ``emitters`` (all of them: uplink clustering looks at the whole set).

    ``uplink_window_s``: see :func:`uplink_clusters`. ``cells``: rogue-cell verdicts of GSM
    downlink emitters (:func:`collector.rogue.judge_cells`); a GSM downlink emitter without
    one keeps its verdict (its evidence left the window), or if it never had one is judged
    from its ARFCN alone. ``uplink_detections``: the GSM uplink detections of the GOIP
    evidence window (see :func:`collector.goip.judge_uplink_emitters`), judged with
    ``goip_model``; without them the emitter-level fallback. ``uplink_verdicts``: GSM uplink
    verdicts judged earlier (the place clustering is slow and need not run every pass); they
    replace the clustering, and an uplink emitter without one keeps its verdict.
    ``fm_evidence``: per FM emitter id, its :class:`collector.fm_registry.FmEvidence`
    (latest detection, history, carriers of its sweep, schedule) for :func:`judge_fm`.
    """
    out: dict[int, Judgement] = {}
    index = None
    for em in emitters:
        if em.kind == "fm":
            out[em.id] = judge_fm(em, reference, (fm_evidence or {}).get(em.id))
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
    if uplink_verdicts is not None:
        out.update({e.id: uplink_verdicts[e.id] for e in emitters if e.kind == "gsm_uplink" and e.id in uplink_verdicts})
        return out
    kw = {} if goip_model is None else {"model": goip_model}
    ups, _ = judge_uplink_emitters(emitters, uplink_window_s=uplink_window_s, detections=uplink_detections, **kw)
    out.update(ups)
    return out
