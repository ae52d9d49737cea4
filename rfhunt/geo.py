"""Small geodesy for city-sized areas: a local east-north tangent plane around a reference.

Within tens of kilometres the equirectangular tangent plane is accurate to well under a
metre per kilometre, far below what received-power localization resolves.
"""

from __future__ import annotations

import numpy as np

EARTH_RADIUS_M = 6_371_008.8


def to_enu(lat: np.ndarray | float, lon: np.ndarray | float, lat0: float, lon0: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> (east_m, north_m) relative to (lat0, lon0)."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    east = np.radians(lon - lon0) * EARTH_RADIUS_M * np.cos(np.radians(lat0))
    north = np.radians(lat - lat0) * EARTH_RADIUS_M
    return east, north


def from_enu(east_m: np.ndarray | float, north_m: np.ndarray | float, lat0: float, lon0: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """(east_m, north_m) relative to (lat0, lon0) -> WGS84 (lat, lon) degrees."""
    lat = lat0 + np.degrees(np.asarray(north_m, dtype=float) / EARTH_RADIUS_M)
    lon = lon0 + np.degrees(np.asarray(east_m, dtype=float) / (EARTH_RADIUS_M * np.cos(np.radians(lat0))))
    return lat, lon


def distance_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle (haversine) distance in metres, vectorized."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def route_position(route: np.ndarray, speed_mps: float, t_s: float, loop: bool = True
                   ) -> tuple[float, float]:
    """Where a vehicle driving ``route`` (N x [lat, lon]) at ``speed_mps`` is after ``t_s``.

    With ``loop`` the vehicle drives back to the start and round again; otherwise it stops
    at the last point.
    """
    pts = np.asarray(route, dtype=float)
    if loop and not np.allclose(pts[0], pts[-1]):
        pts = np.vstack([pts, pts[:1]])
    lat0, lon0 = pts[0]
    e, n = to_enu(pts[:, 0], pts[:, 1], lat0, lon0)
    seg = np.hypot(np.diff(e), np.diff(n))
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    s = speed_mps * max(t_s, 0.0)
    s = (s % total) if (loop and total > 0) else min(s, total)
    lat, lon = from_enu(np.interp(s, cum, e), np.interp(s, cum, n), lat0, lon0)
    return float(lat), float(lon)
