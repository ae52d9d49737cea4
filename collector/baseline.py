"""Learning the baseline from the monitoring history: the cells seen repeatedly at a place.

A GSM downlink emitter becomes (or refreshes) a baseline cell when, within the last
``window_s`` of its history,

* every decode showed one identity (MCC, MNC, LAC, CID) and one BSIC: a cell that changes
  identity is not a real cell;
* it was decoded at least ``min_sightings`` times over at least ``min_span_s``;
* it is not ``rogue``, and none of the indicators of a fake base station's *behaviour* fired
  on it (:data:`BEHAVIOUR`: clock, reselection pull, short T3212, empty neighbour list,
  identity changes, motion, a foreign network). Disagreeing with the reference alone (an
  identity missing from it, an outdated ARFCN) does not stop a cell that broadcasts the same
  way for hours from being learned: operators' lists go stale, the air does not.

The baseline cell keeps the ARFCN and BSIC, the located position (when its 95 % ellipse is
under :data:`GOOD_FIX_M`), and for each fixed sensor
the distribution of the received power there (mean and standard deviation of the powers,
dB, with the sensor's position): what ``power_above_baseline`` compares with.

Times are Unix seconds (UTC), powers dBm, positions WGS84 degrees.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from collector.association import decoded_bsic
from collector.cells import Broadcast
from collector.store import Store
from rfhunt import geo

log = logging.getLogger(__name__)

#: Defaults: a cell is learned after 6 h of sightings (3 decodes or more) in the last 7 days.
MIN_SPAN_S = 6 * 3600.0
MIN_SIGHTINGS = 3
WINDOW_S = 7 * 86400.0
#: The cell's located position is kept when its 95 % ellipse's semi-major axis is below this, m.
GOOD_FIX_M = 1500.0
#: A sensor's samples count as fixed when all lie within this of their first, m.
FIXED_M = 50.0
#: Indicators of behaviour that keep a cell out of the baseline.
BEHAVIOUR = frozenset({
    "clock_offset", "clock_offset_strong", "reselection_pull", "reselection_pull_strong", "short_t3212",
    "short_t3212_strong", "no_neighbours", "identity_change", "identity_cycling", "moving_power",
    "moving_position", "foreign_network", "identity_on_two_channels", "power_above_baseline",
})


def learn_baseline(store: Store, *, now_utc: float | None = None, min_span_s: float = MIN_SPAN_S,
                   min_sightings: int = MIN_SIGHTINGS, window_s: float = WINDOW_S) -> int:
    """Learn (or refresh) the baseline from the store's history (see module notes).

    Parameters
    ----------
    store : Store
    now_utc : float, optional
        End of the history to learn from (default: the newest detection).
    min_span_s, min_sightings, window_s
        See module notes.

    Returns
    -------
    int
        Baseline cells written.
    """
    clocks = store.sensor_clocks()
    if now_utc is None:
        now_utc = max(clocks.values(), default=None)
        if now_utc is None:
            return 0
    mobile = {s.sensor_id for s in store.sensors() if s.mobile}
    old = {(b.mcc, b.mnc, b.lac, b.cid, b.arfcn, b.bsic): b for b in store.baseline_cells()}
    rows = []
    for em in store.emitters(kind="gsm_downlink"):
        if em.verdict == "rogue" or em.channel is None or ":bsic:" not in em.assoc_key:
            continue
        if any(i.get("name") in BEHAVIOUR for i in em.indicators):
            continue
        if em.last_seen_utc is None or em.last_seen_utc < now_utc - window_s:
            continue
        dets = store.detections(emitter_id=em.id, since_utc=now_utc - window_s, until_utc=now_utc)
        decoded = [b for b in (Broadcast.from_detection(d) for d in dets if decoded_bsic(d) is not None)
                   if b is not None]
        cgis = {b.cgi for b in decoded if b.cgi is not None}
        lais = {b.lai for b in decoded if b.lai is not None}
        bsics = {b.bsic for b in decoded}
        if len(cgis) != 1 or len(lais) != 1 or len(bsics) != 1 or len(decoded) < min_sightings:
            continue
        first, last = decoded[0].t_utc, decoded[-1].t_utc
        if last - first < min_span_s:
            continue
        (mcc, mnc, lac, cid), (bsic,) = next(iter(cgis)), bsics
        power = {}
        by_sensor: dict[str, list] = {}
        for d in dets:
            by_sensor.setdefault(d.sensor_id, []).append(d)
        for sid, ds in by_sensor.items():
            if sid in mobile or len(ds) < 3:
                continue
            lat = np.array([d.sensor_lat for d in ds])
            lon = np.array([d.sensor_lon for d in ds])
            if float(np.max(geo.distance_m(lat[0], lon[0], lat, lon))) > FIXED_M:
                continue
            p = np.array([d.power_dbm for d in ds])
            power[sid] = {"n": int(p.size), "mean_dbm": round(float(p.mean()), 2),
                          "std_db": round(float(p.std(ddof=1)), 2), "lat": float(lat[0]), "lon": float(lon[0])}
        located = (em.lat is not None and not em.underdetermined and em.semi_major_m is not None
                   and em.semi_major_m <= GOOD_FIX_M)
        key = (mcc, mnc, lac, cid, em.channel, bsic)
        prev = old.get(key)
        rows.append({"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid, "arfcn": em.channel, "bsic": bsic,
                     "first_seen_utc": min(first, prev.first_seen_utc) if prev else first,
                     "last_seen_utc": max(last, prev.last_seen_utc) if prev else last,
                     "n_sightings": len(decoded), "lat": em.lat if located else None,
                     "lon": em.lon if located else None, "power": power,
                     "learned_utc": time.time()})
    n = store.upsert_baseline(rows) if rows else 0
    log.info("baseline learned cells=%d", n)
    return n
