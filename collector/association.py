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
from collections.abc import Callable
from dataclasses import dataclass, field

from collector.store import CellSighting, DetectionRow, Store
from dsp.bands import (
    FM_RASTER_HZ,
    GSM_CHANNEL_HZ,
    downlink_hz_to_arfcn,
    uplink_hz_to_arfcn,
)
from rfhunt.geo import distance_m

log = logging.getLogger(__name__)

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


def _attach(store: Store, groups: dict[str, tuple[EmitterKey, list[DetectionRow]]], out: Association) -> None:
    todo: dict[int, list[DetectionRow]] = {}
    for key, rows in groups.values():
        emitter_id = store.get_or_create_emitter(key.key, key.kind, key.freq_hz, key.channel)
        todo.setdefault(emitter_id, []).extend(rows)
        log.debug("associate emitter=%d key=%s added=%d", emitter_id, key.key, len(rows))
    _assign(store, todo, out)


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


def _pick_sighting(det: DetectionRow, channel: int, own: list[CellSighting], others: list[CellSighting]
                   ) -> CellSighting | None:
    """The decoded cell a power measurement belongs to (see the module notes)."""
    t = det.t_utc
    times = [s.t_utc for s in own]
    i = bisect.bisect_right(times, t)
    before = own[i - 1] if i > 0 and t - own[i - 1].t_utc <= IDENTITY_HOLD_S else None
    after = own[i] if i < len(own) and own[i].t_utc - t <= IDENTITY_AHEAD_S else None
    if before is not None or after is not None:
        if before is None or (after is not None and after.t_utc - t < t - before.t_utc):
            return after
        return before
    near = [s for s in others if -IDENTITY_HOLD_S <= s.t_utc - t <= IDENTITY_AHEAD_S]
    if not near:
        return None
    return min(near, key=lambda s: (float(distance_m(det.sensor_lat, det.sensor_lon, s.sensor_lat, s.sensor_lon)),
                                    abs(s.t_utc - t)))


def associate_detections(store: Store, key_fn: Callable[[DetectionRow], EmitterKey] = association_key,
                         pending: list[DetectionRow] | None = None) -> Association:
    """Attach every unassociated detection in ``store`` to its emitter (see the module notes).

    Creates emitters as needed and keeps their counts and first/last seen times. With a
    ``key_fn`` other than :func:`association_key`, every detection goes by ``key_fn`` alone.
    ``pending``: only these unassociated detections (e.g. those just inserted, from
    :meth:`Store.take_new_detections`), saving the read of every unassociated one; a
    detection of them attached meanwhile (by another collector) is left where it is.
    """
    out = Association()
    pending = store.detections(unassociated=True) if pending is None else sorted(pending, key=lambda d: d.id)
    if not pending:
        return out
    by_identity = key_fn is association_key
    plain: dict[str, tuple[EmitterKey, list[DetectionRow]]] = {}
    sweeps: list[tuple[DetectionRow, int]] = []
    decoded: list[tuple[DetectionRow, EmitterKey]] = []
    for det in pending:
        key = key_fn(det)
        channel = channel_of(det) if det.kind == "gsm_downlink" else None
        if by_identity and channel is not None and decoded_bsic(det) is None:
            sweeps.append((det, channel))
            continue
        if by_identity and channel is not None:
            decoded.append((det, key))
        plain.setdefault(key.key, (key, []))[1].append(det)
    _attach(store, plain, out)
    if sweeps:
        t_lo = min(d.t_utc for d, _ in sweeps) - IDENTITY_HOLD_S
        t_hi = max(d.t_utc for d, _ in sweeps) + IDENTITY_AHEAD_S
        seen = store.cell_sightings({c for _, c in sweeps}, t_lo, t_hi)
        own: dict[tuple[str, int], list[CellSighting]] = {}
        by_channel: dict[int, list[CellSighting]] = {}
        for s in seen:
            own.setdefault((s.sensor_id, s.channel), []).append(s)
            by_channel.setdefault(s.channel, []).append(s)
        to_cell: dict[int, list[DetectionRow]] = {}
        rest: dict[str, tuple[EmitterKey, list[DetectionRow]]] = {}
        for det, channel in sweeps:
            pick = _pick_sighting(det, channel, own.get((det.sensor_id, channel), []), by_channel.get(channel, []))
            if pick is not None:
                to_cell.setdefault(pick.emitter_id, []).append(det)
            else:
                key = EmitterKey(f"gsm_downlink:arfcn:{channel}", "gsm_downlink", det.freq_hz, channel)
                rest.setdefault(key.key, (key, []))[1].append(det)
        _assign(store, to_cell, out)
        _attach(store, rest, out)
    if decoded:
        _move_waiting(store, decoded, out)
    return out


def _move_waiting(store: Store, decoded: list[tuple[DetectionRow, EmitterKey]], out: Association) -> None:
    """Move power measurements that went to a bare carrier ``gsm_downlink:arfcn:A`` for want of an
    identity to the cell their sensor decoded on A up to :data:`IDENTITY_AHEAD_S` after them."""
    carriers: dict[int, int | None] = {}
    for det, key in decoded:
        ch = key.channel
        if ch not in carriers:
            carriers[ch] = store.emitter_id_by_key(f"gsm_downlink:arfcn:{ch}")
    waiting = {ch: eid for ch, eid in carriers.items() if eid is not None}
    if not waiting:
        return
    t_lo = min(d.t_utc for d, _ in decoded) - IDENTITY_AHEAD_S
    t_hi = max(d.t_utc for d, _ in decoded)
    rows = store.detections(emitter_ids=waiting.values(), since_utc=t_lo, until_utc=t_hi)
    moves: dict[int, set[int]] = {}
    targets: dict[str, int | None] = {}
    for det, key in decoded:
        src = waiting.get(key.channel)
        if src is None:
            continue
        if key.key not in targets:
            targets[key.key] = store.emitter_id_by_key(key.key)
        target = targets[key.key]
        for r in rows:
            if r.emitter_id == src and r.sensor_id == det.sensor_id and 0 <= det.t_utc - r.t_utc <= IDENTITY_AHEAD_S:
                moves.setdefault(target, set()).add(r.id)
    for target, ids in moves.items():
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
