"""GOIP gateways and modem pools from GSM uplink detections: place-clusters and a verdict.

A GOIP gateway is many handsets in one box. At every sensor their bursts arrive over one
path, so the *pattern* of received powers across the sensors (each sensor's power minus
their mean) is the same for all its channels, and, the handsets sharing one cell's power
control, so is the level. Ordinary phones are spread over streets and buildings: their
patterns differ by the shadowing between their spots (several dB per sensor) and their
levels by power control (5-33 dBm). This module works on the sensors' per-capture link
detections (``gsm_uplink`` with the features ``timeslot``, ``n_bursts``, ``n_access``,
``access_t_s`` that :mod:`sensors.sim.uplink_world` publishes; a detection without a
``timeslot`` counts as one link per ARFCN):

1. **Links.** Detections of one capture instant (sensors capture on a common schedule;
   times within :attr:`GoipModel.capture_tolerance_s` are one instant) on one ARFCN and
   timeslot are one link observation, with a power at each sensor that heard it.
2. **Place-clusters.** Link observations heard by :attr:`GoipModel.min_sensors` or more
   are clustered in time order: one joins the cluster whose pattern it matches best (RMS
   of the differences over the sensors both have, their mean removed: at most
   :attr:`GoipModel.pattern_tol_db`) provided its level (that mean difference) is within
   :attr:`GoipModel.level_tol_db` of the cluster's current level, which follows slow power
   control, and no sensor that missed it should have heard it well
   (:attr:`GoipModel.missed_db`); otherwise it starts a cluster. Clusters idle for
   :attr:`GoipModel.cluster_gap_s` take no more links; at the end clusters whose patterns
   and levels agree are agglomerated (across silences of up to a day). Access bursts
   (call set-ups) heard at the same instant by several sensors join the cluster whose
   pattern they match.
3. **Indicators** of each cluster. Only links on its serving cell's ARFCNs count (the few
   ARFCNs holding most of its links; a cluster spread over many is a mixture of passing
   phones). ``concurrent``: at least :attr:`GoipModel.min_links` links at once in
   :attr:`GoipModel.min_concurrent_captures` captures or more (a link heard in the
   captures before and after counts in between); ``one_level``: the levels of the links
   on the air together agree within :attr:`GoipModel.one_level_db` (rms; the
   handsets of one box share their cell's power control, phones do not); ``busy`` (mean
   links at once); ``persistent`` (on the air in most captures for 45 minutes or more;
   ``long`` after four hours); ``setup_rate`` (new links and access bursts per
   channel-hour); ``night`` (as busy at night, 00-05 local solar time, as by day, 09-18,
   from its first capture to the end of the window) and, against, ``daily_rhythm``
   (quiet at night: a crowd). Their weights (:attr:`GoipModel.weights`) add up to the
   score. Capture instants are known from the detections: an hour without any uplink
   detection anywhere does not count.
4. **Verdict.** ``goip`` when ``concurrent`` fired and the score reaches
   :attr:`GoipModel.goip_score` (concurrent, one level, busy and persistent: an hour of
   evidence); ``crowd`` when the cluster follows a daily rhythm; ``goip_suspect`` when
   ``concurrent`` fired but the rest of the evidence is not in yet; otherwise ``uplink``.
   Each ``goip`` and ``goip_suspect`` cluster is located with
   :func:`collector.localize.locate` from its pattern's powers.

:func:`judge_uplink_emitters` turns the clusters into verdicts of the store's uplink
emitters (one per ARFCN, see :mod:`collector.association`): an emitter takes the most
alarming verdict of the clusters using its ARFCN, with the cluster's reasons and place.
:func:`emitter_clusters` is the fallback when no detections are at hand: located uplink
emitters within 300 m of each other (or mutually inside their ellipses) as one place.

Times are Unix seconds; powers dBm; positions WGS84 degrees.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from collector.localize import inside_ellipse, locate
from rfhunt import geo
from rfhunt.errors import DspError

#: Verdicts of a cluster, least to most alarming.
VERDICT_RANK = {"uplink": 0, "crowd": 1, "goip_suspect": 2, "goip": 3}


class UplinkDetection(Protocol):
    """What a detection must offer (:class:`rfhunt.records.Detection`,
    :class:`collector.store.DetectionRow`)."""

    sensor_id: str
    t_utc: float
    sensor_lat: float
    sensor_lon: float
    kind: str
    channel: int | None
    power_dbm: float
    features: dict[str, Any]


@dataclass(frozen=True)
class GoipModel:
    """Clustering tolerances, indicator thresholds and weights (module notes).

    Attributes
    ----------
    capture_tolerance_s : float
        Detections closer in time than this belong to one capture instant, s.
    min_sensors : int
        Sensors that must hear a link (and that a link shares with a cluster) to place it.
    pattern_tol_db, level_tol_db : float
        Largest RMS pattern difference and level difference for a link to join a cluster, dB.
    merge_tol_db, merge_gap_s : float
        Clusters at most ``merge_gap_s`` apart in time whose prototypes' patterns differ by at most this
        (RMS) and levels by at most ``level_tol_db`` are one place, dB.
    missed_db : float
        A link not heard by a sensor where the cluster would arrive this much above the
        link's weakest heard power does not join it, dB.
    level_follow : float
        Weight of each new link in the cluster's level (power control drifts slowly).
    cluster_gap_s : float
        A cluster idle this long takes no more links, s.
    same_level_db : float
        Links at once count for ``concurrent`` when their levels lie within this of each
        other, dB.
    one_level_db : float
        ``one_level``: the levels of links on the air together spread by at most this
        (rms about each capture's mean, pooled over the captures), dB.
    serving_arfcns, serving_share : int, float
        The ``serving_arfcns`` ARFCNs holding most of a cluster's links (each at least a fifth
        as many as the first) are its serving cell's TRXs; only links on them count, and unless
        they hold ``serving_share`` of the links the cluster is a mixture of places (passing
        phones of many cells), never ``goip``.
    min_links : int
        Links at once from one place that make it ``concurrent``.
    min_concurrent_captures : int
        Captures with ``min_links`` at once that ``concurrent`` needs.
    busy_links : float
        Mean links at once over the span for ``busy``.
    persistent_s, long_s, persistent_fraction : float
        ``persistent``: on the air in this fraction of the captures of a span of
        ``persistent_s`` or more; ``long``: a span of ``long_s`` or more.
    setups_per_channel_h : float
        ``setup_rate``: new links and access bursts per channel-hour.
    night_ratio, rhythm_ratio : float
        Mean links at night over mean links by day at or above ``night_ratio`` is
        ``night``; below ``rhythm_ratio`` is ``daily_rhythm``.
    min_part_captures : int
        Captures needed both at night and by day to judge the ratio.
    weights : dict
        Score of each indicator.
    goip_score : float
        Score at which a ``concurrent`` cluster is ``goip``.
    path_loss_exponent, shadowing_db : float
        For :func:`~collector.localize.locate`.
    """

    capture_tolerance_s: float = 5.0
    min_sensors: int = 3
    pattern_tol_db: float = 3.0
    level_tol_db: float = 4.0
    missed_db: float = 6.0
    merge_tol_db: float = 2.5
    merge_gap_s: float = 86400.0
    level_follow: float = 0.1
    cluster_gap_s: float = 1800.0
    same_level_db: float = 6.0
    one_level_db: float = 2.1
    serving_arfcns: int = 6
    serving_share: float = 0.6
    min_links: int = 4
    min_concurrent_captures: int = 2
    busy_links: float = 1.5
    persistent_s: float = 2700.0
    long_s: float = 4 * 3600.0
    persistent_fraction: float = 0.8
    setups_per_channel_h: float = 15.0
    night_ratio: float = 0.5
    rhythm_ratio: float = 0.25
    min_part_captures: int = 30
    weights: Mapping[str, float] = field(default_factory=lambda: {
        "concurrent": 2.0, "one_level": 1.0, "busy": 1.0, "persistent": 1.0, "long": 0.5, "setup_rate": 0.5,
        "night": 1.5,
        "daily_rhythm": -3.0})
    goip_score: float = 5.0
    path_loss_exponent: float = 3.0
    shadowing_db: float = 6.0


DEFAULT_GOIP_MODEL = GoipModel()


@dataclass(frozen=True)
class UplinkCluster:
    """A place-cluster of uplink links and its verdict.

    Attributes
    ----------
    id : int
        Index of the cluster in this judgement.
    verdict : str
        ``goip``, ``goip_suspect``, ``crowd`` or ``uplink``.
    score : float
    reasons : tuple of str
    indicators : tuple of dict
        ``{"name", "weight", "reason", "evidence"}`` of each indicator that fired.
    arfcns : tuple of int
        ARFCNs of its links.
    n_links : int
        Link observations (link x capture) in it.
    first_utc, last_utc : float
        First and last capture with one of its links.
    concurrent_max : int
        Most links at once.
    concurrent_mean : float
        Mean links at once over the captures of its span.
    sensors : tuple of str
        Sensors that heard it.
    power_dbm : tuple of float
        Its typical received power at each of ``sensors``.
    lat, lon : float or None
        Located position (None if it could not be located).
    semi_major_m, semi_minor_m, orientation_deg : float or None
        95 % ellipse of the position.
    detection_index : tuple of int
        Indices into the detections given of its links' (and access bursts') detections.
    """

    id: int
    verdict: str
    score: float
    reasons: tuple[str, ...]
    indicators: tuple[dict[str, Any], ...]
    arfcns: tuple[int, ...]
    n_links: int
    first_utc: float
    last_utc: float
    concurrent_max: int
    concurrent_mean: float
    sensors: tuple[str, ...]
    power_dbm: tuple[float, ...]
    lat: float | None
    lon: float | None
    semi_major_m: float | None = None
    semi_minor_m: float | None = None
    orientation_deg: float | None = None
    detection_index: tuple[int, ...] = ()


def _feature(det: UplinkDetection, name: str, default: float) -> float:
    v = (det.features or {}).get(name, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else default


@dataclass
class _Links:
    """Link observations: (capture, ARFCN, timeslot or access key) -> powers at the sensors."""

    cap: np.ndarray          # capture instant index
    arfcn: np.ndarray
    key: np.ndarray          # timeslot, or the access burst's time bin
    power: np.ndarray        # (n, n_sensors), NaN where not heard
    dets: list[list[int]]    # detection indices


def _gather(dets: Sequence[UplinkDetection], sensor_ix: dict[str, int], cap_of: np.ndarray,
            rows: np.ndarray, access: bool) -> _Links:
    groups: dict[tuple[int, int, int], int] = {}
    cap, arfcn, key, dlist = [], [], [], []
    pw: list[dict[int, float]] = []
    for i in rows:
        d = dets[i]
        if access:
            t = _feature(d, "access_t_s", math.nan)
            k = -1 - int(i) if not math.isfinite(t) else int(round(t / 0.02))
        else:
            k = int(_feature(d, "timeslot", -1))
        g = (int(cap_of[i]), int(d.channel), k)
        j = groups.get(g)
        if j is None:
            j = groups[g] = len(cap)
            cap.append(g[0])
            arfcn.append(g[1])
            key.append(k)
            dlist.append([])
            pw.append({})
        s = sensor_ix[d.sensor_id]
        pw[j][s] = max(pw[j].get(s, -math.inf), float(d.power_dbm))
        dlist[j].append(int(i))
    power = np.full((len(cap), len(sensor_ix)), np.nan)
    for j, p in enumerate(pw):
        for s, v in p.items():
            power[j, s] = v
    return _Links(np.asarray(cap, np.int64), np.asarray(arfcn, np.int64), np.asarray(key, np.int64), power, dlist)


def _link_id(arfcn: np.ndarray, key: np.ndarray) -> np.ndarray:
    """One integer per (ARFCN, timeslot or access key); keys may be negative (an access
    burst without a time) or larger than a timeslot, so they get their own 2**24 range."""
    return arfcn.astype(np.int64) * (1 << 25) + (key.astype(np.int64) + (1 << 24))


def _nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    """Median ignoring NaN; NaN (without a warning) where all are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=axis)


def _capture_instants(t: np.ndarray, tol_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(instant index of each time, time of each instant)."""
    order = np.argsort(t, kind="stable")
    ts = t[order]
    new = np.concatenate(([True], np.diff(ts) > tol_s))
    idx = np.cumsum(new) - 1
    out = np.empty(t.size, np.int64)
    out[order] = idx
    times = np.array([ts[idx == k].mean() for k in range(int(idx[-1]) + 1)]) if t.size else np.zeros(0)
    return out, times


class _Clusters:
    """Growing place-clusters (module notes, step 2)."""

    def __init__(self, n_sensors: int, model: GoipModel) -> None:
        self.m = model
        self.sum = np.zeros((0, n_sensors))
        self.cnt = np.zeros((0, n_sensors))
        self.level = np.zeros(0)
        self.last = np.zeros(0)
        self.active = np.zeros(0, bool)

    def _match(self, p: np.ndarray, cand: np.ndarray, use_level: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Best cluster among ``cand`` (-1: none), pattern RMS and level offset of each link of
        ``p`` ((n, n_sensors), NaN where not heard)."""
        n = p.shape[0]
        if cand.size == 0 or n == 0:
            return np.full(n, -1), np.full(n, np.inf), np.zeros(n)
        heard = np.isfinite(p)
        pz = np.where(heard, p, 0.0)
        cnt = self.cnt[cand]
        known = cnt > 0
        mean = np.divide(self.sum[cand], cnt, out=np.zeros_like(cnt), where=known)            # (K, S)
        common = heard[:, None, :] & known[None, :, :]                                         # (n, K, S)
        nc = common.sum(axis=2)
        d = np.where(common, pz[:, None, :] - mean[None, :, :], 0.0)
        off = d.sum(axis=2) / np.maximum(nc, 1)
        rms = np.sqrt(np.where(common, (d - off[:, :, None]) ** 2, 0.0).sum(axis=2) / np.maximum(nc, 1))
        ok = (nc >= self.m.min_sensors) & (rms <= self.m.pattern_tol_db)
        if use_level:
            ok &= np.abs(off - self.level[cand][None, :]) <= self.m.level_tol_db
        # a sensor that did not hear the link, where the cluster would arrive well above the
        # link's weakest heard power, should have heard it: not this place
        weakest = np.where(heard, p, np.inf).min(axis=1)
        expect = mean[None, :, :] + off[:, :, None]
        missed = (~heard[:, None, :]) & known[None, :, :] & (expect > weakest[:, None, None] + self.m.missed_db)
        ok &= ~missed.any(axis=2)
        cost = np.where(ok, rms, np.inf)
        k = np.argmin(cost, axis=1)
        rows = np.arange(n)
        found = np.isfinite(cost[rows, k])
        return np.where(found, cand[k], -1), cost[rows, k], np.where(found, off[rows, k], 0.0)

    def _new(self, p: np.ndarray, t: float) -> int:
        heard = np.isfinite(p)
        self.sum = np.vstack((self.sum, np.where(heard, p, 0.0)))
        self.cnt = np.vstack((self.cnt, heard.astype(float)))
        self.level = np.append(self.level, 0.0)
        self.last = np.append(self.last, t)
        self.active = np.append(self.active, True)
        return self.level.size - 1

    def _join(self, k: int, p: np.ndarray, off: float, t: float) -> None:
        heard = np.isfinite(p)
        self.sum[k] += np.where(heard, p - off, 0.0)
        self.cnt[k] += heard
        self.level[k] += self.m.level_follow * (off - self.level[k])
        self.last[k] = t

    def add_capture(self, p: np.ndarray, t: float) -> np.ndarray:
        """Cluster the links of one capture instant (rows of ``p``); their cluster indices."""
        # a cluster of one link stays open for a few captures only (most are passing phones)
        self.active &= (self.last >= t - self.m.cluster_gap_s) & ((self.cnt.max(axis=1, initial=0) >= 2)
                                                                   | (self.last >= t - 180.0))
        k, _, off = self._match(p, np.flatnonzero(self.active), True)
        out = np.empty(p.shape[0], np.int64)
        for j in np.flatnonzero(k >= 0):
            self._join(int(k[j]), p[j], float(off[j]), t)
            out[j] = k[j]
        new: list[int] = []
        for j in np.flatnonzero(k < 0):  # the rest: among the clusters this capture started
            kk, _, oo = self._match(p[j:j + 1], np.asarray(new, np.int64), True)
            if kk[0] >= 0:
                self._join(int(kk[0]), p[j], float(oo[0]), t)
                out[j] = kk[0]
            else:
                out[j] = self._new(p[j], t)
                new.append(int(out[j]))
        return out

    def prototype(self, k: int) -> np.ndarray:
        """Typical received power of cluster ``k`` at each sensor now (NaN: never heard)."""
        c = self.cnt[k]
        return np.where(c > 0, self.sum[k] / np.maximum(c, 1), np.nan) + self.level[k]


def _merge(cl: _Clusters, members: list[list[int]], first: np.ndarray, last: np.ndarray, model: GoipModel
           ) -> list[list[int]]:
    """Agglomerate clusters whose prototypes agree in pattern and level and whose times are
    at most ``merge_gap_s`` apart (one place, silent for a while), closest pair first, the
    merged prototype weighted by the links behind it (so that passing phones do not chain
    places together)."""
    big = [k for k, m in enumerate(members) if len(m) >= 3]
    if len(big) < 2:
        return [sorted(m) for m in members]
    proto = np.vstack([cl.prototype(k) for k in big])
    weight = np.vstack([cl.cnt[k] for k in big])
    t0 = np.array([first[k] for k in big])
    t1 = np.array([last[k] for k in big])
    groups = {i: list(members[k]) for i, k in enumerate(big)}
    alive = np.ones(len(big), bool)

    def dist(i: int) -> np.ndarray:
        common = np.isfinite(proto[i])[None, :] & np.isfinite(proto)
        nc = common.sum(axis=1)
        d = np.where(common, np.nan_to_num(proto[i])[None, :] - np.nan_to_num(proto), 0.0)
        off = d.sum(axis=1) / np.maximum(nc, 1)
        rms = np.sqrt(np.where(common, (d - off[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(nc, 1))
        overlap = (t0 <= t1[i] + model.merge_gap_s) & (t0[i] <= t1 + model.merge_gap_s)
        ok = alive & overlap & (nc >= model.min_sensors) & (np.abs(off) <= model.level_tol_db) \
            & (rms <= model.merge_tol_db)
        ok[i] = False
        return np.where(ok, rms, np.inf)

    dm = np.vstack([dist(i) for i in range(len(big))])
    while True:
        flat = int(np.argmin(dm))
        i, j = divmod(flat, len(big))
        if not np.isfinite(dm[i, j]):
            break
        wi, wj = weight[i], weight[j]
        both = wi + wj
        merged = np.where(both > 0, (np.nan_to_num(proto[i]) * wi + np.nan_to_num(proto[j]) * wj)
                          / np.maximum(both, 1e-9), np.nan)
        proto[i], weight[i] = merged, both
        t0[i], t1[i] = min(t0[i], t0[j]), max(t1[i], t1[j])
        groups[i].extend(groups.pop(j))
        alive[j] = False
        dm[j, :] = np.inf
        dm[:, j] = np.inf
        dm[i, :] = dist(i)
        dm[:, i] = dm[i, :]
    out = [sorted(g) for g in groups.values()]
    out.extend(sorted(m) for k, m in enumerate(members) if len(m) < 3)
    return out


def cluster_uplinks(detections: Sequence[UplinkDetection], model: GoipModel = DEFAULT_GOIP_MODEL
                    ) -> list[UplinkCluster]:
    """Place-clusters of the uplink links in ``detections`` with their verdicts (module notes).

    Parameters
    ----------
    detections : sequence
        Detections of any kinds (only ``gsm_uplink`` ones with a channel are used), e.g.
        the store's uplink detections of the last day.
    model : GoipModel

    Returns
    -------
    list of UplinkCluster
        Clusters of two links or more, most alarming first (then by score).
    """
    ups = np.array([i for i, d in enumerate(detections) if d.kind == "gsm_uplink" and d.channel is not None],
                   np.int64)
    if ups.size == 0:
        return []
    sensor_ids = sorted({detections[i].sensor_id for i in ups})
    six = {s: k for k, s in enumerate(sensor_ids)}
    s_lat = np.zeros(len(sensor_ids))
    s_lon = np.zeros(len(sensor_ids))
    for s in sensor_ids:  # fixed rooftops: the median of the reported positions
        rows = [detections[i] for i in ups if detections[i].sensor_id == s]
        s_lat[six[s]] = float(np.median([d.sensor_lat for d in rows]))
        s_lon[six[s]] = float(np.median([d.sensor_lon for d in rows]))
    t = np.array([float(detections[i].t_utc) for i in ups])
    cap_local, cap_t = _capture_instants(t, model.capture_tolerance_s)
    cap_of = np.zeros(len(detections), np.int64)
    cap_of[ups] = cap_local
    is_access = np.array([_feature(detections[i], "n_access", 0) > 0 and _feature(detections[i], "n_bursts", 0) <= 0
                          for i in ups])
    traffic = _gather(detections, six, cap_of, ups[~is_access], access=False)
    access = _gather(detections, six, cap_of, ups[is_access], access=True)
    # --- step 2: place-clusters, in time order
    cl = _Clusters(len(sensor_ids), model)
    heard_n = np.isfinite(traffic.power).sum(axis=1)
    label = np.full(traffic.cap.size, -1, np.int64)
    placed = np.flatnonzero(heard_n >= model.min_sensors)
    placed = placed[np.lexsort((traffic.key[placed], traffic.arfcn[placed], traffic.cap[placed]))]
    for rows in np.split(placed, np.flatnonzero(np.diff(traffic.cap[placed])) + 1):
        if rows.size:
            label[rows] = cl.add_capture(traffic.power[rows], float(cap_t[traffic.cap[rows[0]]]))
    n_cl = cl.level.size
    members: list[list[int]] = [[] for _ in range(n_cl)]
    for j in np.flatnonzero(label >= 0):
        members[label[j]].append(int(j))
    first = np.array([cap_t[traffic.cap[m]].min() if m else np.inf for m in members])
    last = np.array([cap_t[traffic.cap[m]].max() if m else -np.inf for m in members])
    groups = [m for m in _merge(cl, members, first, last, model) if len(m) >= 2]
    # prototypes of the merged groups: median power at each sensor after removing each link's level
    protos = []
    for m in groups:
        p = traffic.power[m]
        ref = _nanmedian(p, axis=0)
        off = np.nan_to_num(_nanmedian(p - ref[None, :], axis=1))
        protos.append(_nanmedian(p - off[:, None], axis=0) + float(np.median(off)))
    # access bursts heard by enough sensors join the group whose pattern they match
    acc_of: list[list[int]] = [[] for _ in groups]
    if groups and access.cap.size:
        pc = _Clusters(len(sensor_ids), model)
        pc.sum = np.nan_to_num(np.vstack(protos))
        pc.cnt = np.isfinite(np.vstack(protos)).astype(float)
        pc.level = np.zeros(len(groups))
        cand = np.arange(len(groups))
        g_first = np.array([cap_t[traffic.cap[m]].min() for m in groups])
        g_last = np.array([cap_t[traffic.cap[m]].max() for m in groups])
        for j in range(access.cap.size):
            p = access.power[j]
            if np.isfinite(p).sum() < model.min_sensors:
                continue
            tj = cap_t[access.cap[j]]
            live = cand[(g_first <= tj + 60.0) & (g_last >= tj - 60.0)]
            k = int(pc._match(p[None, :], live, False)[0][0])
            if k >= 0:
                acc_of[k].append(j)
    out = []
    for g, m in enumerate(groups):
        out.append(_judge_group(g, m, acc_of[g], traffic, access, cap_t, protos[g], sensor_ids, s_lat, s_lon,
                                model))
    out.sort(key=lambda c: (-VERDICT_RANK[c.verdict], -c.score, c.first_utc))
    return [UplinkCluster(**{**c.__dict__, "id": k}) for k, c in enumerate(out)]


def _judge_group(gid: int, m: list[int], acc: list[int], traffic: _Links, access: _Links, cap_t: np.ndarray,
                 proto: np.ndarray, sensor_ids: list[str], s_lat: np.ndarray, s_lon: np.ndarray,
                 model: GoipModel) -> UplinkCluster:
    w = model.weights
    # the place's cells: the ARFCNs holding most of its links (one cell's TRXs for a
    # gateway; links of other cells are passing phones that matched by chance)
    a_all, a_n = np.unique(traffic.arfcn[m], return_counts=True)
    top = np.argsort(-a_n, kind="stable")[:model.serving_arfcns]
    top = top[a_n[top] >= 0.2 * a_n[top[0]]]  # a TRX of the cell carries a fair share
    serving = set(a_all[top].tolist())
    serving_share = float(a_n[top].sum() / len(m))
    m_all = m
    m = [j for j in m if traffic.arfcn[j] in serving]
    caps = traffic.cap[m]
    c0, c1 = int(caps.min()), int(caps.max())
    span_caps = np.arange(c0, c1 + 1)
    # links at once per capture of the span (distinct ARFCN x timeslot)
    links = np.unique(np.stack((caps, _link_id(traffic.arfcn[m], traffic.key[m]))), axis=1)
    # a link heard in the captures before and after one that missed it was on the air then too
    lk_ids, lk_ix = np.unique(links[1], return_inverse=True)
    n_after = cap_t.size - c0  # captures from the first one to the end of the window
    present = np.zeros((lk_ids.size, n_after + 2), bool)
    present[lk_ix, links[0] - c0 + 1] = True
    present[:, 1:-1] |= present[:, :-2] & present[:, 2:]
    conc_after = present[:, 1:-1].sum(axis=0)
    conc = conc_after[:span_caps.size]
    span_s = float(cap_t[c1] - cap_t[c0])
    active_frac = float(np.count_nonzero(conc) / span_caps.size)
    # ... and at one level: the handsets of one box share their cell's power control, so
    # count the most links at once whose levels lie within ``same_level_db`` of each other
    level = _nanmedian(traffic.power[m] - proto[None, :], axis=1)
    lv = np.full((lk_ids.size, n_after + 2), np.nan)
    obs_ix = np.unique(np.stack((traffic.cap[m], _link_id(traffic.arfcn[m], traffic.key[m]))), axis=1, return_index=True)[1]
    lv[np.searchsorted(lk_ids, (_link_id(traffic.arfcn[m], traffic.key[m]))[obs_ix]), traffic.cap[m][obs_ix] - c0 + 1] = \
        level[obs_ix]
    gap = np.isnan(lv[:, 1:-1]) & present[:, 1:-1]
    lv[:, 1:-1][gap] = ((lv[:, :-2] + lv[:, 2:]) / 2)[gap]
    same = conc.copy()
    for k in np.flatnonzero(conc >= model.min_links):
        v = np.sort(lv[:, k + 1][np.isfinite(lv[:, k + 1])])
        same[k] = int((np.searchsorted(v, v + model.same_level_db, side="right") - np.arange(v.size)).max()) \
            if v.size else 0
    n_conc = int(np.count_nonzero(same >= model.min_links))
    # spread of the levels of the links on the air together (rms, pooled over the captures
    # with two or more): a box's handsets within a dB or two, passing phones all over the
    # level window
    obs_lv = lv[:, 1:-1]
    k_obs = np.isfinite(obs_lv).sum(axis=0)
    multi = k_obs >= 2
    if multi.any():
        dev = obs_lv[:, multi] - np.nanmean(np.where(np.isfinite(obs_lv[:, multi]), obs_lv[:, multi], np.nan), axis=0)
        level_sd = float(math.sqrt(np.nansum(dev ** 2) / max(int((k_obs[multi] - 1).sum()), 1)))
    else:
        level_sd = math.inf
    c_mean = float(conc.mean())
    # set-ups: links that were not on the air at the cluster's previous capture, and access bursts
    by_cap: dict[int, set[int]] = {}
    for c, lk in links.T:
        by_cap.setdefault(int(c), set()).add(int(lk))
    new_links = sum(len(lks - by_cap.get(c - 1, set())) for c, lks in by_cap.items() if c > c0)
    n_access = len(acc)
    chan_h = c_mean * span_s / 3600.0
    setup_rate = (new_links + n_access) / chan_h if chan_h > 0 else 0.0
    # night and day (local solar time at the sensors' mean longitude), from the cluster's
    # first capture to the end of the window: a place that falls silent at night shows it
    hour = np.mod(cap_t[c0:] / 3600.0 + float(np.mean(s_lon)) / 15.0, 24.0)
    night = hour < 5.0
    day = (hour >= 9.0) & (hour < 18.0)
    heard = np.isfinite(proto)
    sens = tuple(s for s, h in zip(sensor_ids, heard) if h)
    pw = tuple(round(float(v), 1) for v in proto[heard])
    arfcns = tuple(sorted({int(a) for a in traffic.arfcn[m]}))
    # each indicator: (name, fired, reason, evidence)
    ind: list[dict[str, Any]] = []

    def fire(name: str, reason: str, **evidence: Any) -> None:
        ind.append({"name": name, "weight": float(w.get(name, 0.0)), "reason": reason, "evidence": evidence})

    concurrent = n_conc >= model.min_concurrent_captures and serving_share >= model.serving_share
    if concurrent:
        fire("concurrent", f"{int(same.max())} uplink channels at once from one place at one level "
             f"({n_conc} captures with {model.min_links} or more within {model.same_level_db:g} dB), ARFCN "
             f"{', '.join(map(str, arfcns))}", concurrent_max=int(same.max()), captures=n_conc)
    if level_sd <= model.one_level_db:
        fire("one_level", f"links on the air together within {level_sd:.1f} dB of each other (rms): handsets "
             "sharing one cell's power control", level_sd_db=round(level_sd, 2))
    if c_mean >= model.busy_links:
        fire("busy", f"{c_mean:.1f} channels on the air on average over {span_s / 3600:.1f} h", mean=round(c_mean, 2))
    if span_s >= model.persistent_s and active_frac >= model.persistent_fraction:
        fire("persistent", f"on the air in {100 * active_frac:.0f} % of the captures for {span_s / 3600:.1f} h",
             span_h=round(span_s / 3600, 2), active_fraction=round(active_frac, 3))
        if span_s >= model.long_s:
            fire("long", f"active for {span_s / 3600:.1f} h (>= {model.long_s / 3600:g} h)",
                 span_h=round(span_s / 3600, 2))
    if setup_rate >= model.setups_per_channel_h and chan_h >= 1.0:
        fire("setup_rate", f"{setup_rate:.0f} call set-ups per channel-hour ({new_links} new links, {n_access} "
             "access bursts)", per_channel_h=round(setup_rate, 1))
    n_night, n_day = int(night.sum()), int(day.sum())
    if n_night >= model.min_part_captures and n_day >= model.min_part_captures:
        cd, cn = float(conc_after[day].mean()), float(conc_after[night].mean())
        ratio = cn / cd if cd > 0 else math.inf
        if ratio >= model.night_ratio and cn >= 1.0:
            fire("night", f"as busy at night as by day ({cn:.1f} vs {cd:.1f} channels at once)",
                 ratio=round(min(ratio, 99.0), 2))
        elif ratio < model.rhythm_ratio and cd >= 1.0:
            fire("daily_rhythm", f"quiet at night ({cn:.1f} vs {cd:.1f} channels at once by day): "
                 "the rhythm of ordinary phones", ratio=round(ratio, 2))
    score = float(sum(i["weight"] for i in ind))
    names = {i["name"] for i in ind}
    if concurrent and score >= model.goip_score:
        verdict = "goip"
    elif "daily_rhythm" in names:
        verdict = "crowd"
    elif concurrent:
        verdict = "goip_suspect"
    else:
        verdict = "uplink"
    lat = lon = smaj = smin = orient = None
    if heard.sum() >= 1 and verdict in ("goip", "goip_suspect"):
        try:
            fix = locate(s_lat[heard], s_lon[heard], proto[heard], path_loss_exponent=model.path_loss_exponent,
                         shadowing_db=model.shadowing_db)
            lat, lon = float(fix.lat), float(fix.lon)
            smaj, smin, orient = fix.semi_major_m, fix.semi_minor_m, fix.orientation_deg
        except DspError:
            pass
    reasons = [i["reason"] for i in ind]
    if serving_share < model.serving_share:
        reasons.insert(0, f"links spread over {a_all.size} ARFCNs ({100 * serving_share:.0f} % on the top "
                       f"{len(serving)}): phones of many cells, not one box")
    if not reasons:
        reasons = [f"{int(conc.max())} uplink channel(s) at most at once from one place "
                   f"(fewer than {model.min_links} in {model.min_concurrent_captures} captures)"]
    where = f"heard by {', '.join(sens)}" + ("" if lat is None else f"; located at {lat:.5f}, {lon:.5f}")
    reasons.append(where)
    dets = sorted({i for j in m_all for i in traffic.dets[j]} | {i for j in acc for i in access.dets[j]})
    return UplinkCluster(
        id=gid, verdict=verdict, score=round(score, 2), reasons=tuple(reasons), indicators=tuple(ind),
        arfcns=arfcns, n_links=len(m_all), first_utc=float(cap_t[c0]), last_utc=float(cap_t[c1]),
        concurrent_max=int(conc.max()), concurrent_mean=round(c_mean, 3), sensors=sens, power_dbm=pw,
        lat=lat, lon=lon, semi_major_m=smaj, semi_minor_m=smin, orientation_deg=orient,
        detection_index=tuple(dets))


# --- verdicts of the store's uplink emitters ----------------------------------------------------------

#: Fallback (no detections): located uplinks this close are one place, m.
COLOCATED_M = 300.0
#: Fallback: channels from one place that make it ``goip_suspect``.
GOIP_MIN_CHANNELS = 4


class _EmitterLike(Protocol):
    id: int
    kind: str
    channel: int | None
    freq_hz: float
    lat: float | None
    lon: float | None
    semi_major_m: float | None
    semi_minor_m: float | None
    orientation_deg: float | None
    underdetermined: bool
    last_seen_utc: float | None


def _colocated(a: _EmitterLike, b: _EmitterLike) -> bool:
    if geo.distance_m(a.lat, a.lon, b.lat, b.lon) <= COLOCATED_M:
        return True

    def inside(p: _EmitterLike, q: _EmitterLike) -> bool:
        if q.semi_major_m is None or q.semi_minor_m is None or q.orientation_deg is None:
            return False
        return inside_ellipse(p.lat, p.lon, q.lat, q.lon, q.semi_major_m, q.semi_minor_m, q.orientation_deg)

    return inside(a, b) and inside(b, a)


def located_uplinks(emitters: Iterable[_EmitterLike]) -> list[_EmitterLike]:
    """The GSM uplink emitters that have a position."""
    return [e for e in emitters if e.kind == "gsm_uplink" and e.lat is not None and e.lon is not None]


def left_out(em: _EmitterLike, newest_utc: float | None, uplink_window_s: float) -> str | None:
    """Why a located uplink emitter takes no part in the fallback clustering, or None."""
    if em.underdetermined:
        return "heard from fewer than 3 positions: too vaguely located to cluster"
    if newest_utc is not None and (em.last_seen_utc is None or em.last_seen_utc < newest_utc - uplink_window_s):
        return f"not heard in the {uplink_window_s / 3600:g} h before the newest uplink"
    return None


def newest_uplink_utc(ups: Sequence[_EmitterLike]) -> float | None:
    """Last time any of ``ups`` was heard (None if never)."""
    seen = [e.last_seen_utc for e in ups if e.last_seen_utc is not None]
    return max(seen) if seen else None


def emitter_clusters(emitters: Sequence[_EmitterLike], uplink_window_s: float) -> list[list[_EmitterLike]]:
    """Fallback without detections: connected components of co-located, well located uplink
    emitters heard within ``uplink_window_s`` of the newest uplink (two are linked when
    within :data:`COLOCATED_M` or each inside the other's 95 % ellipse)."""
    located = located_uplinks(emitters)
    newest = newest_uplink_utc(located)
    ups = [e for e in located if left_out(e, newest, uplink_window_s) is None]
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
    groups: dict[int, list[_EmitterLike]] = {}
    for i, e in enumerate(ups):
        groups.setdefault(find(i), []).append(e)
    return list(groups.values())


def judge_uplink_emitters(emitters: Sequence[_EmitterLike], *, uplink_window_s: float = 3600.0,
                          detections: Sequence[UplinkDetection] | None = None,
                          model: GoipModel = DEFAULT_GOIP_MODEL) -> tuple[dict[int, Any], list[UplinkCluster]]:
    """Verdicts (:class:`collector.judge.Judgement`) of the GSM uplink emitters, and the clusters.

    With ``detections`` (the uplink detections of the evidence window, e.g. the last 24 h)
    every uplink emitter takes the most alarming verdict of the place-clusters
    (:func:`cluster_uplinks`) that use its ARFCN, with that cluster's score, indicators and
    reasons (``uplink`` if none does). Without, the fallback: clusters of co-located
    emitters (:func:`emitter_clusters`), ``goip_suspect`` from :data:`GOIP_MIN_CHANNELS`
    channels, unlocated emitters ``pending``.
    """
    from collector.judge import Judgement

    out: dict[int, Any] = {}
    ups = [e for e in emitters if e.kind == "gsm_uplink"]
    if detections is not None:
        clusters = cluster_uplinks(detections, model)
        for em in ups:
            mine = [c for c in clusters if em.channel in c.arfcns]
            if not mine:
                out[em.id] = Judgement("uplink", ("no place-cluster of uplink links on this ARFCN in the window",))
                continue
            best = max(mine, key=lambda c: (VERDICT_RANK[c.verdict], c.score))
            out[em.id] = Judgement(best.verdict, (f"place-cluster {best.id} ({len(mine)} on this ARFCN)",
                                                  *best.reasons), score=best.score, indicators=best.indicators)
        return out, clusters
    for em in ups:
        if em.lat is None or em.lon is None:
            out[em.id] = Judgement("pending", ("not located yet",))
    located = located_uplinks(ups)
    newest = newest_uplink_utc(located)
    for em in located:
        why = left_out(em, newest, uplink_window_s)
        if why is not None:
            out[em.id] = Judgement("uplink", (why,))
    for cluster in emitter_clusters(ups, uplink_window_s):
        channels = sorted({e.channel if e.channel is not None else round(e.freq_hz) for e in cluster})
        if len(channels) >= GOIP_MIN_CHANNELS:
            why = f"{len(channels)} uplink channels transmitting from one place"
            for e in cluster:
                others = ", ".join(str(c) for c in channels if c != e.channel)
                out[e.id] = Judgement("goip_suspect", (why, f"co-located with ARFCN {others}"))
        else:
            n = len(cluster)
            for e in cluster:
                out[e.id] = Judgement("uplink", (
                    "lone uplink transmitter" if n == 1
                    else f"{n} uplink channels from one place (< {GOIP_MIN_CHANNELS})",))
    return out, []
