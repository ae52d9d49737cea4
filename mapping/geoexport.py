"""An emitter's location, 95 % ellipse, track and the sensors that heard it as GeoJSON and KML.

GeoJSON follows RFC 7946: positions ``[lon, lat]`` (WGS84 degrees), polygon rings closed
and their exterior counter-clockwise. KML 2.2 writes ``lon,lat,0`` tuples, rings closed.
The track is drawn by :func:`emitter_track` from the emitter's detections: one fit of
:func:`collector.localize.locate` per time window heard at three distinct positions or more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from collector.localize import locate
from collector.store import DetectionRow, EmitterRow
from mapping.folium_map import KIND_LABELS, emitter_ellipse
from rfhunt.geo import distance_m

#: Time window of one track fix, s.
TRACK_WINDOW_S = 120.0
#: Smallest 95 % radius of a track fix when deciding whether the emitter moved, m.
MOVED_M = 300.0
KIND_LABELS_ZH = {"gsm_downlink": "GSM 下行", "gsm_uplink": "GSM 上行", "fm": "调频广播"}


@dataclass(frozen=True)
class SensorHeard:
    """A sensor that heard the emitter: where (mean of its positions), how often, how strong."""

    sensor_id: str
    lat: float
    lon: float
    n_detections: int
    max_power_dbm: float
    first_utc: float
    last_utc: float


def iso(t_utc: float | None) -> str | None:
    """ISO 8601 UTC of a Unix time, or None."""
    return None if t_utc is None else datetime.fromtimestamp(t_utc, UTC).isoformat(timespec="seconds")


def sensors_heard(dets: list[DetectionRow]) -> list[SensorHeard]:
    """Per sensor (by id) of ``dets``: mean position, count, strongest power, first/last time."""
    by: dict[str, list[DetectionRow]] = {}
    for d in dets:
        by.setdefault(d.sensor_id, []).append(d)
    return [SensorHeard(sid, float(np.mean([d.sensor_lat for d in ds])), float(np.mean([d.sensor_lon for d in ds])),
                        len(ds), max(d.power_dbm for d in ds), min(d.t_utc for d in ds), max(d.t_utc for d in ds))
            for sid, ds in sorted(by.items())]


def emitter_track(dets: list[DetectionRow], *, path_loss_exponent: float = 3.0, shadowing_db: float = 6.0,
                  window_s: float = TRACK_WINDOW_S) -> list[tuple[float, float, float, float | None]]:
    """The emitter's positions over time, ``(t_utc, lat, lon, semi_major_m)``: one fit per
    ``window_s`` of detections (dated at the window's middle) heard from three distinct
    positions or more; ``semi_major_m`` is the fit's 95 % semi-major axis (None: singular)."""
    if not dets:
        return []
    ts = np.array([d.t_utc for d in dets])
    out = []
    t0 = float(ts.min())
    k = np.floor((ts - t0) / window_s).astype(int)
    for w in np.unique(k):
        sel = [dets[i] for i in np.flatnonzero(k == w)]
        if len({(round(d.sensor_lat, 5), round(d.sensor_lon, 5)) for d in sel}) < 3:
            continue
        fix = locate([d.sensor_lat for d in sel], [d.sensor_lon for d in sel], [d.power_dbm for d in sel],
                     path_loss_exponent=path_loss_exponent, shadowing_db=shadowing_db)
        if not fix.underdetermined:
            out.append((t0 + (w + 0.5) * window_s, fix.lat, fix.lon, fix.semi_major_m))
    return out


def track_moved(track: list[tuple[float, float, float, float | None]]) -> bool:
    """True when two fixes of the track are too far apart to be one position: farther than
    the sum of their 95 % semi-major axes (each at least :data:`MOVED_M`)."""
    if len(track) < 2:
        return False
    lat = np.array([p[1] for p in track])
    lon = np.array([p[2] for p in track])
    a = np.array([max(MOVED_M, p[3] or 0.0) for p in track])
    d = distance_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    return bool(np.any(d > a[:, None] + a[None, :]))


def ring_lonlat(em: EmitterRow) -> list[list[float]] | None:
    """The ellipse as a closed, counter-clockwise ``[lon, lat]`` ring (RFC 7946), or None."""
    ring = emitter_ellipse(em)
    if ring is None:
        return None
    pts = [[lon, lat] for lat, lon in ring]
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    area2 = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    if area2 < 0:  # clockwise: reverse (the ring stays closed)
        pts = pts[::-1]
    return pts


def _emitter_props(em: EmitterRow) -> dict[str, Any]:
    return {
        "emitter_id": em.id, "kind": em.kind, "kind_label": KIND_LABELS.get(em.kind, em.kind),
        "kind_label_zh": KIND_LABELS_ZH.get(em.kind, em.kind), "freq_hz": em.freq_hz, "channel": em.channel,
        "identity": em.identity, "verdict": em.verdict, "score": em.score, "reasons": list(em.reasons),
        "first_seen_utc": iso(em.first_seen_utc), "last_seen_utc": iso(em.last_seen_utc),
        "n_detections": em.n_detections, "est_power_dbm_at_1m": em.est_power_dbm,
    }


def case_geojson(em: EmitterRow, heard: list[SensorHeard], track: list[tuple[float, float, float, float | None]] | None
                 ) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: the emitter (Point), its ellipse (Polygon), its track
    (LineString, when given with two fixes or more) and each sensor that heard it (Point)."""
    feats: list[dict[str, Any]] = []
    if em.lat is not None and em.lon is not None:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [em.lon, em.lat]},
                      "properties": {"role": "emitter", "name": f"发射源 / Emitter {em.id}", **_emitter_props(em)}})
    ring = ring_lonlat(em)
    if ring is not None:
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"role": "ellipse95", "name": f"95 % 置信椭圆 / 95 % ellipse, emitter {em.id}",
                                     "emitter_id": em.id, "semi_major_m": em.semi_major_m,
                                     "semi_minor_m": em.semi_minor_m, "orientation_deg": em.orientation_deg}})
    if track and len(track) >= 2:
        feats.append({"type": "Feature",
                      "geometry": {"type": "LineString", "coordinates": [[lon, lat] for _, lat, lon, _ in track]},
                      "properties": {"role": "track", "name": f"轨迹 / Track, emitter {em.id}", "emitter_id": em.id,
                                     "times_utc": [iso(p[0]) for p in track]}})
    for s in heard:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                      "properties": {"role": "sensor", "name": f"传感器 / Sensor {s.sensor_id}",
                                     "sensor_id": s.sensor_id, "n_detections": s.n_detections,
                                     "max_power_dbm": s.max_power_dbm, "first_utc": iso(s.first_utc),
                                     "last_utc": iso(s.last_utc)}})
    return {"type": "FeatureCollection", "features": feats}


def _kml_coords(lonlat: list[list[float]]) -> str:
    return " ".join(f"{lon:.7f},{lat:.7f},0" for lon, lat in lonlat)


def case_kml(em: EmitterRow, heard: list[SensorHeard], track: list[tuple[float, float, float, float | None]] | None) -> str:
    """KML 2.2 document of the same features as :func:`case_geojson`."""
    e = escape
    marks = []
    if em.lat is not None and em.lon is not None:
        props = _emitter_props(em)
        data = "".join(f'<Data name="{e(k)}"><value>{e(json.dumps(v, ensure_ascii=False) if isinstance(v, list) else str(v))}'
                       f"</value></Data>" for k, v in props.items() if v is not None)
        marks.append(f"<Placemark><name>{e(f'发射源 / Emitter {em.id}')}</name><styleUrl>#emitter</styleUrl>"
                     f"<ExtendedData>{data}</ExtendedData>"
                     f"<Point><coordinates>{_kml_coords([[em.lon, em.lat]])}</coordinates></Point></Placemark>")
    ring = ring_lonlat(em)
    if ring is not None:
        marks.append(f"<Placemark><name>{e('95 % 置信椭圆 / 95 % ellipse')}</name><styleUrl>#ellipse</styleUrl>"
                     f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{_kml_coords(ring)}</coordinates>"
                     f"</LinearRing></outerBoundaryIs></Polygon></Placemark>")
    if track and len(track) >= 2:
        marks.append(f"<Placemark><name>{e('轨迹 / Track')}</name><styleUrl>#track</styleUrl><LineString>"
                     f"<coordinates>{_kml_coords([[lon, lat] for _, lat, lon, _ in track])}</coordinates>"
                     f"</LineString></Placemark>")
    for s in heard:
        marks.append(f"<Placemark><name>{e(f'传感器 / Sensor {s.sensor_id}')}</name><styleUrl>#sensor</styleUrl>"
                     f"<description>{e(f'{s.n_detections} detections, max {s.max_power_dbm:.1f} dBm')}</description>"
                     f"<Point><coordinates>{_kml_coords([[s.lon, s.lat]])}</coordinates></Point></Placemark>")
    styles = ('<Style id="emitter"><IconStyle><color>ff0000ff</color></IconStyle></Style>'
              '<Style id="ellipse"><LineStyle><color>ff0000ff</color><width>2</width></LineStyle>'
              '<PolyStyle><color>400000ff</color></PolyStyle></Style>'
              '<Style id="track"><LineStyle><color>ff00a5ff</color><width>3</width></LineStyle></Style>'
              '<Style id="sensor"><IconStyle><color>ff333333</color></IconStyle></Style>')
    name = e(f"rfhunt 案件 / case: emitter {em.id}")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
            f"<name>{name}</name>{styles}{''.join(marks)}</Document></kml>\n")
