"""Associating detections with emitters.

An emitter is identified by what the detections can tell:

* GSM downlink with a decoded identity (``features["decoded"]`` and a ``bsic``, from a decode
  scan): ``(ARFCN, BSIC)``, key ``gsm_downlink:arfcn:A:bsic:B``. The BSIC comes with every
  SCH, so a cell that cycles its LAC or CID stays one emitter, while a clone of a real cell
  on another ARFCN, or a second cell on the same ARFCN with another BSIC, is another one.
* GSM downlink power measurements (a sweep; no identity): the cell that the **same sensor**
  decoded on that ARFCN last (up to :data:`IDENTITY_HOLD_S` before), or decodes soon after
  (up to :data:`IDENTITY_AHEAD_S`: the detection is then moved over when that decode
  arrives); failing that, the cell decoded on that ARFCN by the sensor nearest to this one
  within the same times; failing that, the carrier itself, ``gsm_downlink:arfcn:A``.
* Other GSM (uplink, or a downlink without a channel): ``(kind, ARFCN)``; a GSM detection
  without a channel gets the ARFCN of its frequency (so it joins the detections of the same
  carrier that came with one), and only off the GSM900/DCS1800 rasters falls back on its
  frequency on the 200 kHz raster;
* FM: ``(kind, frequency on the 100 kHz raster)``.

:func:`association_key` decides for one detection on its own; :func:`associate_detections`
adds the identity look-up of power measurements. Times are Unix seconds.
"""

from __future__ import annotations

import bisect
import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from collector.store import CellSighting, DetectionRow, Store
from dsp.bands import (
    FM_RASTER_HZ,
    GSM_CHANNEL_HZ,
    downlink_hz_to_arfcn,
    uplink_hz_to_arfcn,
)
from rfhunt.geo import distance_m
from rfhunt.records import Detection

log = logging.getLogger(__name__)

#: A detection as received or as stored: association reads only the wire fields.
Detected = Detection | DetectionRow

_HZ_TO_ARFCN = {"gsm_downlink": downlink_hz_to_arfcn, "gsm_uplink": uplink_hz_to_arfcn}

#: A power measurement takes the cell its sensor decoded on the ARFCN up to this long before, s.
IDENTITY_HOLD_S = 1800.0
#: ... or the cell its sensor decodes up to this long after it (the measurement is moved then), s.
IDENTITY_AHEAD_S = 120.0


@dataclass(frozen=True)
class EmitterKey:
    """What gathers detections into one emitter.

    Attributes
    ----------
    key : str
        Stable text form, unique per emitter (stored as ``emitters.assoc_key``).
    kind : str
    freq_hz : float
        Nominal carrier frequency of the emitter, Hz.
    channel : int or None
        ARFCN for GSM kinds.
    """

    key: str
    kind: str
    freq_hz: float
    channel: int | None


def _raster(freq_hz: float, step_hz: float) -> float:
    return round(freq_hz / step_hz) * step_hz


def decoded_bsic(det: DetectionRow) -> int | None:
    """The BSIC of a decoded GSM downlink detection, or None for a power measurement."""
    f = det.features or {}
    bsic = f.get("bsic")
    if det.kind != "gsm_downlink" or f.get("decoded") is not True or isinstance(bsic, bool) \
            or not isinstance(bsic, int) or not 0 <= bsic <= 63:
        return None
    return bsic


def channel_of(det: DetectionRow) -> int | None:
    """The detection's ARFCN: its channel, else the ARFCN of its frequency (None off the rasters)."""
    if det.channel is not None or det.kind not in _HZ_TO_ARFCN:
        return det.channel
    arfcn = int(_HZ_TO_ARFCN[det.kind](det.freq_hz))
    return arfcn if arfcn >= 0 else None


def cell_key(channel: int, bsic: int, freq_hz: float) -> EmitterKey:
    """The key of the GSM cell decoded on ``channel`` with ``bsic``."""
    return EmitterKey(f"gsm_downlink:arfcn:{channel}:bsic:{bsic}", "gsm_downlink", freq_hz, channel)


def association_key(det: DetectionRow) -> EmitterKey:
    """The emitter a detection belongs to, from the detection alone (see the module notes)."""
    if det.kind == "fm":
        f = _raster(det.freq_hz, FM_RASTER_HZ)
        return EmitterKey(f"fm:{f:.0f}", "fm", f, None)
    channel = channel_of(det)
    bsic = decoded_bsic(det)
    if channel is not None and bsic is not None:
        return cell_key(channel, bsic, det.freq_hz)
    if channel is not None:
        return EmitterKey(f"{det.kind}:arfcn:{channel}", det.kind, det.freq_hz, channel)
    f = _raster(det.freq_hz, GSM_CHANNEL_HZ)
    return EmitterKey(f"{det.kind}:freq:{f:.0f}", det.kind, f, None)


@dataclass
class Association:
    """What one association pass did.

    Attributes
    ----------
    added : dict
        Emitter id -> the detections attached to it now (rows with ``emitter_id`` set).
    moved : set of int
        Emitters that gained or lost older detections (power measurements moved to the
        cell their sensor decoded after them): their detections must be read again.
    deleted : set of int
        Emitters left without detections by a move, and deleted.
    """

    added: dict[int, list[DetectionRow]] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)

    @property
    def touched(self) -> set[int]:
        """Emitters that exist and gained or lost detections."""
        return (set(self.added) | self.moved) - self.deleted


def _assign(store: Store, todo: dict[int, list[DetectionRow]], out: Association) -> None:
    if not todo:
        return
    store.assign_many({eid: [d.id for d in rows] for eid, rows in todo.items()})
    for eid, rows in todo.items():
        out.added.setdefault(eid, []).extend(_with_emitter(d, eid) for d in rows)


def _with_emitter(det: DetectionRow, emitter_id: int) -> DetectionRow:
    # a copy with one field changed, without dataclasses.replace's per-call overhead (a hot path)
    out = copy.copy(det)
    object.__setattr__(out, "emitter_id", emitter_id)
    return out


def _pick_sighting(det: Detected, own: list[CellSighting], own_times: list[float], others: list[CellSighting],
                   others_times: list[float]) -> CellSighting | None:
    """The decoded cell a power measurement belongs to (see the module notes); ``own`` are
    the sightings of its sensor on its ARFCN, ``others`` every sensor's there, each by time
    (``*_times`` their times)."""
    t = det.t_utc
    i = bisect.bisect_right(own_times, t)
    before = own[i - 1] if i > 0 and t - own_times[i - 1] <= IDENTITY_HOLD_S else None
    after = own[i] if i < len(own) and own_times[i] - t <= IDENTITY_AHEAD_S else None
    if before is not None or after is not None:
        if before is None or (after is not None and after.t_utc - t < t - before.t_utc):
            return after
        return before
    lo = bisect.bisect_left(others_times, t - IDENTITY_HOLD_S)
    hi = bisect.bisect_right(others_times, t + IDENTITY_AHEAD_S)
    if lo >= hi:
        return None
    return min(others[lo:hi], key=lambda s: (float(distance_m(det.sensor_lat, det.sensor_lon, s.sensor_lat,
                                                                 s.sensor_lon)), abs(s.t_utc - t)))


def _choose(store: Store, dets: Sequence[Detected], key_fn: Callable[[Detected], EmitterKey]) -> list[int]:
    """The emitter of each detection (creating emitters as needed), by the rules of the
    module notes. The decoded detections among ``dets`` count as sightings for the power
    measurements among them, as those already attached to cells in ``store`` do."""
    by_identity = key_fn is association_key
    ids: list[int] = [0] * len(dets)
    plain: dict[str, tuple[EmitterKey, list[int]]] = {}
    sweeps: list[tuple[int, int]] = []  # (index, ARFCN)
    for i, det in enumerate(dets):
        if by_identity and det.kind == "gsm_downlink":
            channel = channel_of(det)
            if channel is not None and decoded_bsic(det) is None:
                sweeps.append((i, channel))
                continue
        key = key_fn(det)
        got = plain.get(key.key)
        if got is None:
            plain[key.key] = (key, [i])
        else:
            got[1].append(i)
    for key, idx in plain.values():
        eid = store.get_or_create_emitter(key.key, key.kind, key.freq_hz, key.channel)
        for i in idx:
            ids[i] = eid
    if not sweeps:
        return ids
    chans = {c for _, c in sweeps}
    t_lo = min(dets[i].t_utc for i, _ in sweeps) - IDENTITY_HOLD_S
    t_hi = max(dets[i].t_utc for i, _ in sweeps) + IDENTITY_AHEAD_S
    seen = store.cell_sightings(chans, t_lo, t_hi)  # by time, then id
    # the decodes of this batch, after those stored (their ids come later), in their order
    mine = [CellSighting(d.sensor_id, d.channel, d.t_utc, ids[i], d.sensor_lat, d.sensor_lon)
            for key, idx in plain.values() if ":bsic:" in key.key for i in idx
            if (d := dets[i]).channel in chans and t_lo <= d.t_utc <= t_hi]
    if mine:
        mine.sort(key=lambda s: s.t_utc)
        seen = sorted(seen + mine, key=lambda s: s.t_utc) if seen else mine  # stable: stored ones first
    own: dict[tuple[str, int], list[CellSighting]] = {}
    by_channel: dict[int, list[CellSighting]] = {}
    for s in seen:
        own.setdefault((s.sensor_id, s.channel), []).append(s)
        by_channel.setdefault(s.channel, []).append(s)
    own_times = {k: [s.t_utc for s in v] for k, v in own.items()}
    chan_times = {k: [s.t_utc for s in v] for k, v in by_channel.items()}
    carriers: dict[int, int] = {}
    for i, channel in sweeps:
        det = dets[i]
        pick = None
        if seen:
            k = (det.sensor_id, channel)
            pick = _pick_sighting(det, own.get(k, []), own_times.get(k, []), by_channel.get(channel, []),
                                  chan_times.get(channel, []))
        if pick is not None:
            ids[i] = pick.emitter_id
            continue
        eid = carriers.get(channel)
        if eid is None:
            key = EmitterKey(f"gsm_downlink:arfcn:{channel}", "gsm_downlink", det.freq_hz, channel)
            eid = carriers[channel] = store.get_or_create_emitter(key.key, key.kind, key.freq_hz, key.channel)
        ids[i] = eid
    return ids


def plan_emitters(store: Store, detections: Sequence[Detected],
                  key_fn: Callable[[Detected], EmitterKey] = association_key) -> list[int]:
    """The emitter each detection belongs to, chosen before it is stored.

    The ``assign`` function of :meth:`Store.keep_new_detections`: the detections of a batch
    then go in attached to these emitters (one write of each row), with the choice
    :func:`associate_detections` would make after the insert (the batch's own decoded cells
    count as sightings for its power measurements). Emitters are created as needed.
    :func:`associate_detections` given the rows as stored then only moves older power
    measurements to cells decoded after them.

    Parameters
    ----------
    detections : sequence of Detection or DetectionRow
        The detections, before they are stored.

    Returns
    -------
    list of int
        Emitter id per detection, in their order.
    """
    return _choose(store, detections, key_fn)


def associate_detections(store: Store, key_fn: Callable[[DetectionRow], EmitterKey] = association_key,
                         pending: list[DetectionRow] | None = None, *, sweep: bool = False) -> Association:
    """Attach every unassociated detection in ``store`` to its emitter (see the module notes).

    Creates emitters as needed and keeps their counts and first/last seen times. With a
    ``key_fn`` other than :func:`association_key`, every detection goes by ``key_fn`` alone.
    ``pending``: only these detections (e.g. those just inserted, from
    :meth:`Store.take_new_detections`), saving the read of every unassociated one; a
    detection of them attached meanwhile (by another collector) is left where it is, and
    one already attached as it was stored (:func:`plan_emitters`) is only reported in
    ``added``. ``sweep``: also every other unassociated detection of the store (with
    ``pending`` None that is what is done).
    """
    out = Association()
    rows = [] if pending is None else sorted(pending, key=lambda d: d.id)
    if pending is None or sweep:
        have = {d.id for d in rows}
        rows += [d for d in store.detections(unassociated=True) if d.id not in have]
        rows.sort(key=lambda d: d.id)
    if not rows:
        return out
    free = []
    for det in rows:
        if det.emitter_id is None:
            free.append(det)
        else:
            out.added.setdefault(det.emitter_id, []).append(det)
    if free:
        todo: dict[int, list[DetectionRow]] = {}
        for det, eid in zip(free, _choose(store, free, key_fn)):
            todo.setdefault(eid, []).append(det)
        _assign(store, todo, out)
    if key_fn is association_key:
        decoded = [(det, key_fn(det)) for det in rows if (det.features or {}).get("decoded") is True
                   and decoded_bsic(det) is not None and channel_of(det) is not None]
        if decoded:
            _move_waiting(store, decoded, out)
    return out


def _move_waiting(store: Store, decoded: list[tuple[DetectionRow, EmitterKey]], out: Association) -> None:
    """Move power measurements that went to a bare carrier ``gsm_downlink:arfcn:A`` for want of an
    identity to the cell their sensor decoded on A up to :data:`IDENTITY_AHEAD_S` after them."""
    carriers = store.emitter_ids_by_keys({f"gsm_downlink:arfcn:{key.channel}" for _, key in decoded})
    waiting = {ch: carriers[f"gsm_downlink:arfcn:{ch}"] for ch in {key.channel for _, key in decoded}
               if f"gsm_downlink:arfcn:{ch}" in carriers}
    if not waiting:
        return
    t_lo = min(d.t_utc for d, _ in decoded) - IDENTITY_AHEAD_S
    t_hi = max(d.t_utc for d, _ in decoded)
    # the carriers' detections by (carrier, sensor), by time
    by_src: dict[tuple[int, str], list[DetectionRow]] = {}
    for r in store.detections(emitter_ids=waiting.values(), since_utc=t_lo, until_utc=t_hi):
        by_src.setdefault((r.emitter_id, r.sensor_id), []).append(r)
    for lst in by_src.values():
        lst.sort(key=lambda r: r.t_utc)
    src_times = {k: [r.t_utc for r in lst] for k, lst in by_src.items()}
    targets = store.emitter_ids_by_keys({key.key for det, key in decoded if waiting.get(key.channel) is not None})
    moves: dict[int | None, set[int]] = {}
    for det, key in decoded:
        src = waiting.get(key.channel)
        if src is None:
            continue
        lst = by_src.get((src, det.sensor_id))
        if not lst:
            continue
        times = src_times[(src, det.sensor_id)]
        lo = bisect.bisect_left(times, det.t_utc - IDENTITY_AHEAD_S)
        hi = bisect.bisect_right(times, det.t_utc)
        if lo < hi:
            moves.setdefault(targets.get(key.key), set()).update(r.id for r in lst[lo:hi])
    for target, ids in moves.items():
        if target is None:  # the cell is not stored (its decode went elsewhere): nothing to move to
            continue
        deleted = store.move_detections(sorted(ids), target)
        out.moved |= {target} | {e for e in waiting.values()}
        out.deleted |= deleted
        log.info("associate moved=%d to emitter=%d deleted=%s", len(ids), target, sorted(deleted))
    out.moved -= out.deleted
    for e in out.deleted:
        out.added.pop(e, None)


def associate(store: Store, key_fn: Callable[[DetectionRow], EmitterKey] = association_key) -> set[int]:
    """Attach every unassociated detection in ``store`` to its emitter.

    Creates emitters as needed and refreshes their counts and first/last seen times (see
    :func:`associate_detections`).

    Returns
    -------
    set of int
        Ids of the emitters that gained (or, by a move, lost) detections.
    """
    return associate_detections(store, key_fn).touched
