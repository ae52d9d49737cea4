"""Small geodesy for city-sized areas: a local east-north tangent plane around a reference,
great-circle distances, and positions along a driven route. Degrees are WGS84, given as
separate ``lat`` and ``lon`` arguments.
"""

from __future__ import annotations

import math

import numpy as np

#: Mean Earth radius for great-circle distances, m.
EARTH_RADIUS_M = 6_371_008.8
WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)


def _radii(lat0_deg: float) -> tuple[float, float]:
    """Meridian and prime-vertical radii of curvature of WGS84 (m) at ``lat0_deg``."""
    s = math.sin(math.radians(lat0_deg))
    w = 1.0 - WGS84_E2 * s * s
    return WGS84_A * (1.0 - WGS84_E2) / w**1.5, WGS84_A / math.sqrt(w)


def to_enu(lat, lon, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 degrees -> (east_m, north_m) in the tangent plane at (lat0, lon0).

    Uses the ellipsoid's radii of curvature at the origin; the error is under 0.1 % within
    about 50 km. Longitudes wrap across the antimeridian.
    """
    m, n = _radii(lat0)
    lat = np.asarray(lat, dtype=float)
    dlon = (np.asarray(lon, dtype=float) - lon0 + 180.0) % 360.0 - 180.0
    return np.radians(dlon) * n * math.cos(math.radians(lat0)), np.radians(lat - lat0) * m


def from_enu(east_m, north_m, lat0: float, lon0: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_enu`: (lat, lon) degrees of east/north metres around (lat0, lon0)."""
    m, n = _radii(lat0)
    lat = lat0 + np.degrees(np.asarray(north_m, dtype=float) / m)
    lon = lon0 + np.degrees(np.asarray(east_m, dtype=float) / (n * math.cos(math.radians(lat0))))
    return lat, (lon + 180.0) % 360.0 - 180.0


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
