"""Associating detections with emitters.

For now an emitter is identified by what one capture can tell cheaply:

* GSM (downlink and uplink): ``(kind, ARFCN)``; a GSM detection without a channel gets
  the ARFCN of its frequency (so it joins the detections of the same carrier that came
  with one), and only off the GSM900/DCS1800 rasters falls back on its frequency on the
  200 kHz raster;
* FM: ``(kind, frequency on the 100 kHz raster)``.

:func:`association_key` is the one place that decides; a later refinement (decoded
cell identity, RDS PI, ...) replaces it and :func:`associate` takes any such function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from collector.store import DetectionRow, Store
from dsp.bands import (
    FM_RASTER_HZ,
    GSM_CHANNEL_HZ,
    downlink_hz_to_arfcn,
    uplink_hz_to_arfcn,
)

log = logging.getLogger(__name__)

_HZ_TO_ARFCN = {"gsm_downlink": downlink_hz_to_arfcn, "gsm_uplink": uplink_hz_to_arfcn}


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


def association_key(det: DetectionRow) -> EmitterKey:
    """The emitter a detection belongs to (see the module notes)."""
    if det.kind == "fm":
        f = _raster(det.freq_hz, FM_RASTER_HZ)
        return EmitterKey(f"fm:{f:.0f}", "fm", f, None)
    channel = det.channel
    if channel is None and det.kind in _HZ_TO_ARFCN:
        arfcn = int(_HZ_TO_ARFCN[det.kind](det.freq_hz))
        channel = arfcn if arfcn >= 0 else None
    if channel is not None:
        return EmitterKey(f"{det.kind}:arfcn:{channel}", det.kind, det.freq_hz, channel)
    f = _raster(det.freq_hz, GSM_CHANNEL_HZ)
    return EmitterKey(f"{det.kind}:freq:{f:.0f}", det.kind, f, None)


def associate(store: Store, key_fn: Callable[[DetectionRow], EmitterKey] = association_key) -> set[int]:
    """Attach every unassociated detection in ``store`` to its emitter.

    Creates emitters as needed and refreshes their counts and first/last seen times.

    Returns
    -------
    set of int
        Ids of the emitters that gained detections.
    """
    groups: dict[str, tuple[EmitterKey, list[int]]] = {}
    for det in store.detections(unassociated=True):
        key = key_fn(det)
        groups.setdefault(key.key, (key, []))[1].append(det.id)
    touched = set()
    for key, ids in groups.values():
        emitter_id = store.get_or_create_emitter(key.key, key.kind, key.freq_hz, key.channel)
        store.assign_detections(emitter_id, ids)
        touched.add(emitter_id)
        log.debug("associate emitter=%d key=%s added=%d", emitter_id, key.key, len(ids))
    return touched
