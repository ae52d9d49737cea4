"""The operator map's analysis layers: heatmaps, sensor coverage, emitter tracks, a time window.

Heatmaps are drawn where the sensors *were* when they detected something (the detections'
own positions): where the air was busy, and, per band, where it was strong. Positions are
``[lat, lon]`` (folium order), WGS84 degrees; times Unix seconds (UTC); powers dBm.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import folium
import numpy as np
from folium.plugins import HeatMap, HeatMapWithTime

from collector.store import DetectionRow, EmitterRow, SensorRow
from mapping.assets import use_local_plugin_assets
from mapping.folium_map import safe_text
from mapping.geoexport import emitter_track, track_moved
from rfhunt.errors import ConfigError
from rfhunt.geo import distance_m

BAND_LABELS = {"gsm_downlink": "GSM 下行 / downlink", "gsm_uplink": "GSM 上行 / uplink", "fm": "调频 / FM"}
#: Detections within this many degrees (about 11 m) are one heat point.
CELL_DEG = 1e-4
#: Most time steps of the animated heatmap.
MAX_FRAMES = 48
#: Verdicts whose emitters get no track (the network's own cells, licensed stations).
UNTRACKED = frozenset({"known", "licensed"})


@dataclass(frozen=True)
class TimeWindow:
    """Detections and emitters shown: ``since_utc <= t <= until_utc`` (either may be None)."""

    since_utc: float | None = None
    until_utc: float | None = None

    def contains(self, t_utc: float) -> bool:
        """True when ``t_utc`` is within the window."""
        return ((self.since_utc is None or t_utc >= self.since_utc)
                and (self.until_utc is None or t_utc <= self.until_utc))

    def has_emitter(self, em: EmitterRow) -> bool:
        """True when the emitter was seen within the window (or the window is open)."""
        if self.since_utc is not None and (em.last_seen_utc is None or em.last_seen_utc < self.since_utc):
            return False
        if self.until_utc is not None and (em.first_seen_utc is None or em.first_seen_utc > self.until_utc):
            return False
        return True

    def label(self) -> str:
        def iso(t: float | None) -> str:
            return "…" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M")
        return f"{iso(self.since_utc)} — {iso(self.until_utc)} UTC"


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")


def parse_time(text: str, now_utc: float) -> float:
    """A time for ``--since``/``--until``: ISO 8601 (UTC if no offset), Unix seconds, or a
    duration before ``now_utc`` such as ``90s``, ``30m``, ``2h``, ``7d``.

    Raises
    ------
    ConfigError
        If ``text`` is none of these.
    """
    t = text.strip()
    m = _RELATIVE.match(t)
    if m:
        return now_utc - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"time {text!r}: not ISO 8601, Unix seconds or a duration like 30m, 2h, 7d") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _cells(dets: list[DetectionRow]) -> dict[tuple[int, int], list[DetectionRow]]:
    out: dict[tuple[int, int], list[DetectionRow]] = defaultdict(list)
    for d in dets:
        out[(round(d.sensor_lat / CELL_DEG), round(d.sensor_lon / CELL_DEG))].append(d)
    return out


def detection_heat(dets: list[DetectionRow]) -> list[list[float]]:
    """``[lat, lon, weight]`` per position cell: its share of the detections (max 1)."""
    cells = _cells(dets)
    if not cells:
        return []
    top = max(len(v) for v in cells.values())
    return [[round(k[0] * CELL_DEG, 6), round(k[1] * CELL_DEG, 6), len(v) / top] for k, v in sorted(cells.items())]


def power_heat(dets: list[DetectionRow]) -> list[list[float]]:
    """``[lat, lon, weight]`` per position cell: its strongest received power, scaled to
    [0.05, 1] over the band's range of powers."""
    cells = _cells(dets)
    if not cells:
        return []
    best = {k: max(d.power_dbm for d in v) for k, v in cells.items()}
    lo, hi = min(best.values()), max(best.values())
    span = max(hi - lo, 1e-9)
    return [[round(k[0] * CELL_DEG, 6), round(k[1] * CELL_DEG, 6), 0.05 + 0.95 * (p - lo) / span]
            for k, p in sorted(best.items())]


def heat_frames(dets: list[DetectionRow], step_s: float | None = None) -> tuple[list[list[list[float]]], list[str]]:
    """Detections per time step for :class:`HeatMapWithTime`: ``(frames, labels)``; each
    frame ``[[lat, lon, weight], ...]`` and its label the step's start (ISO, UTC)."""
    if not dets:
        return [], []
    t = np.array([d.t_utc for d in dets])
    t0, t1 = float(t.min()), float(t.max())
    if step_s is None:
        step_s = max(60.0, float(np.ceil((t1 - t0 + 1.0) / MAX_FRAMES / 60.0)) * 60.0)
    k = np.floor((t - t0) / step_s).astype(int)
    frames, labels = [], []
    for i in range(int(k.max()) + 1):
        sel = [dets[j] for j in np.flatnonzero(k == i)]
        frames.append(detection_heat(sel))
        labels.append(datetime.fromtimestamp(t0 + i * step_s, UTC).isoformat(timespec="minutes"))
    return frames, labels


def coverage_radius_m(sensor: SensorRow, dets: list[DetectionRow], located: dict[int, EmitterRow]) -> float | None:
    """How far the sensor hears: the 90th percentile distance from where it stood to the
    located emitters of its detections, m (None if it heard no located emitter)."""
    dist = []
    for d in dets:
        em = located.get(d.emitter_id) if d.emitter_id is not None else None
        if d.sensor_id == sensor.sensor_id and em is not None:
            dist.append(float(distance_m(d.sensor_lat, d.sensor_lon, em.lat, em.lon)))
    return None if not dist else float(np.percentile(dist, 90))


def add_analysis_layers(fmap: folium.Map, sensors: list[SensorRow], emitters: list[EmitterRow],
                        dets: list[DetectionRow], *, time_step_s: float | None = None) -> list[str]:
    """Add the heatmaps, coverage circles and emitter tracks to ``fmap`` (each a layer of the
    layer control; heatmaps start hidden); returns the layer names added."""
    names: list[str] = []
    if dets:
        g = folium.FeatureGroup(name="检测热力图 / Detections heatmap")
        use_local_plugin_assets(HeatMap(detection_heat(dets), radius=25, blur=15, min_opacity=0.4)).add_to(g)
        g.add_to(fmap)
        names.append(g.layer_name)
        by_kind: dict[str, list[DetectionRow]] = defaultdict(list)
        for d in dets:
            by_kind[d.kind].append(d)
        for kind, ds in sorted(by_kind.items()):
            g = folium.FeatureGroup(name=safe_text(f"接收功率 / Received power: {BAND_LABELS.get(kind, kind)}"),
                                    show=False)
            use_local_plugin_assets(HeatMap(power_heat(ds), radius=25, blur=15, min_opacity=0.4)).add_to(g)
            g.add_to(fmap)
            names.append(g.layer_name)
        frames, labels = heat_frames(dets, time_step_s)
        if len(frames) >= 2:
            use_local_plugin_assets(HeatMapWithTime(
                frames, index=labels, name="检测随时间 / Detections over time", radius=18, min_opacity=0.3,
                auto_play=False, max_opacity=0.8, overlay=True, control=True, show=False,
            )).add_to(fmap)
            names.append("检测随时间 / Detections over time")

    located = {e.id: e for e in emitters if e.lat is not None and e.lon is not None}
    cov = folium.FeatureGroup(name="传感器覆盖 / Sensor coverage", show=False)
    for s in sensors:
        if s.lat is None or s.lon is None:
            continue
        r = coverage_radius_m(s, dets, located)
        if r is not None and r > 0:
            folium.Circle([s.lat, s.lon], radius=r, color="#1f77b4", weight=1, fill=True, fill_opacity=0.05,
                          tooltip=safe_text(f"{s.sensor_id}: 覆盖 / coverage {r:.0f} m (90 % of located emitters heard)"),
                          ).add_to(cov)
    cov.add_to(fmap)
    names.append(cov.layer_name)

    tracks = folium.FeatureGroup(name="发射源轨迹 / Emitter tracks")
    by_emitter: dict[int, list[DetectionRow]] = defaultdict(list)
    for d in dets:
        if d.emitter_id in located:
            by_emitter[d.emitter_id].append(d)
    for eid, ds in sorted(by_emitter.items()):
        em = located[eid]
        if em.verdict in UNTRACKED:
            continue
        track = emitter_track(ds, path_loss_exponent=em.path_loss_exponent or 3.0)
        if track_moved(track):
            folium.PolyLine([[lat, lon] for _, lat, lon, _ in track], color="#ff8c00", weight=3, opacity=0.9,
                            tooltip=safe_text(f"emitter {eid}: 轨迹 / track, {len(track)} fixes")).add_to(tracks)
    tracks.add_to(fmap)
    names.append(tracks.layer_name)
    return names
