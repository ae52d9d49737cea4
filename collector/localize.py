"""Locating an emitter from received powers (RSS) with an unknown transmit power.

Model: log-distance path loss with log-normal shadowing,

    P_i = P0 - 10 n log10(d_i / 1 m) + s_i,    s_i ~ N(0, sigma^2) (heavy-tailed in practice),

where ``P_i`` is the power (dBm) received at sensor position i, ``d_i`` the distance (m,
clamped to >= 1 m) to the emitter, ``n`` the configured path-loss exponent and ``P0``
(dBm) the unknown power received 1 m from the emitter. Positions are handled in a local
east/north tangent plane (metres) around the centroid of the sensor positions.

Repeated measurements at one position
    Powers reported from the same ``decorrelation_m``-square cell of the ground (50 m by
    default; with 0, the same point to ~0.1 m) are averaged in dB first and count as
    **one** point. Averaging removes fast fading and receiver noise, but
    shadowing belongs to the position, not to the measurement, so the averaged point keeps
    the full shadowing sigma (it is *not* shrunk by sqrt(N)). A fixed sensor reporting 50
    times therefore weighs as much as one that reported once.

Fit
    For a candidate position the maximum-likelihood P0 has the closed form
    ``mean(P_i + 10 n log10 d_i)``; the profile likelihood is scanned on a coarse grid
    (robust Cauchy loss, because shadowing has heavy tails) over the sensors' bounding box
    expanded by a few km, and the best grid cells seed :func:`scipy.optimize.least_squares`
    over (x, y, P0) with the ``soft_l1`` loss.

Correlation
    Shadowing at points closer than a few ``decorrelation_m`` is correlated,
    ``exp(-distance / decorrelation_m)``: the residuals are whitened with that correlation
    (generalized least squares) before the fit and the ellipse, so a drive-by's many
    neighbouring points do not pass for independent evidence.

Uncertainty
    The 95 % ellipse comes from the Fisher information of (x, y, P0),
    ``I = J^T W^T W J / sigma_eff^2`` (W the whitening), inverted and marginalised to (x, y) (the 2x2 block of the
    inverse, so the unknown P0 widens it honestly), scaled by ``chi2(2).ppf(0.95)``.
    ``sigma_eff = max(sigma_cfg, s)`` with ``s = sqrt(sum r_i^2 / (N - 3))`` the residual
    standard deviation corrected for the three fitted parameters: the configured sigma is
    the floor (few points estimate s poorly and must not make the ellipse optimistic),
    and residuals larger than expected (wrong n, multipath, a moving emitter) widen it.
    The ellipse is a linearisation: it ignores the mirror ambiguity of sensors on a
    straight line, for which the fit may pick the wrong side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares
from scipy.stats import chi2

from rfhunt.errors import DspError
from rfhunt.geo import from_enu, to_enu

_CHI2_2_95 = float(chi2.ppf(0.95, 2))
_MIN_DISTANCE_M = 1.0
#: Margin (m) added around the sensors' bounding box for the grid search, at least.
GRID_MARGIN_M = 3000.0
_GRID_N = 121


@dataclass(frozen=True)
class Location:
    """Result of :func:`locate`.

    Attributes
    ----------
    lat, lon : float
        Estimated emitter position, WGS84 degrees.
    p0_dbm : float or None
        Estimated power received 1 m from the emitter, dBm (None when underdetermined).
    semi_major_m, semi_minor_m : float or None
        Semi-axes of the 95 % confidence ellipse, metres (None when underdetermined or
        when the geometry gives a singular information matrix).
    orientation_deg : float or None
        Bearing of the major axis, degrees clockwise from north, in [0, 180).
    rms_residual_db : float or None
        RMS of the residuals at the distinct positions, dB.
    n_points : int
        Number of distinct sensor positions used.
    underdetermined : bool
        Fewer than three distinct positions: the position is the strongest one's.
    """

    lat: float
    lon: float
    p0_dbm: float | None
    semi_major_m: float | None
    semi_minor_m: float | None
    orientation_deg: float | None
    rms_residual_db: float | None
    n_points: int
    underdetermined: bool


# ----------------------------------------------------------------------------- geometry
def _major_minor_axes(orientation_deg: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Unit vectors (east, north) of the major and minor axes of an ellipse whose major
    axis bears ``orientation_deg`` clockwise from north."""
    th = math.radians(orientation_deg)
    return (math.sin(th), math.cos(th)), (math.cos(th), -math.sin(th))


def ellipse_points(
    lat: float, lon: float, semi_major_m: float, semi_minor_m: float, orientation_deg: float, n: int = 72
) -> list[tuple[float, float]]:
    """Vertices ``(lat, lon)`` (degrees) of an ellipse, closed (first == last).

    Parameters
    ----------
    lat, lon : float
        Centre, WGS84 degrees.
    semi_major_m, semi_minor_m : float
        Semi-axes, metres.
    orientation_deg : float
        Bearing of the major axis, degrees clockwise from north.
    n : int
        Number of distinct vertices.
    """
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    a, b = semi_major_m * np.cos(t), semi_minor_m * np.sin(t)
    (ue, un), (ve, vn) = _major_minor_axes(orientation_deg)
    la, lo = from_enu(a * ue + b * ve, a * un + b * vn, lat, lon)
    pts = [(float(p), float(q)) for p, q in zip(la, lo)]
    return pts + [pts[0]]


# ----------------------------------------------------------------------------- fitting
def _distinct_positions(lat: NDArray, lon: NDArray, power: NDArray, cell_m: float = 0.0
                        ) -> tuple[NDArray, NDArray, NDArray]:
    """Average powers (dB) over repeated positions: the same point (rounded to 1e-6 deg,
    ~0.1 m) or, with ``cell_m`` > 0, the same ``cell_m``-square cell of the ground, inside
    which shadowing is one draw."""
    if cell_m > 0:
        e, n = to_enu(lat, lon, float(lat[0]), float(lon[0]))
        keys = np.column_stack([np.floor(e / cell_m), np.floor(n / cell_m)]).astype(np.int64)
    else:
        keys = np.round(np.column_stack([lat, lon]) * 1e6).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    count = np.bincount(inverse)
    mean_p = np.bincount(inverse, weights=power) / count
    mean_lat = np.bincount(inverse, weights=lat) / count
    mean_lon = np.bincount(inverse, weights=lon) / count
    return mean_lat, mean_lon, mean_p


def _profile_cost(gx: NDArray, gy: NDArray, x: NDArray, y: NDArray, p: NDArray, n: float, sigma: float) -> NDArray:
    """Cauchy cost of the profile likelihood at grid points (gx, gy)."""
    d = np.hypot(gx[:, None] - x[None, :], gy[:, None] - y[None, :])
    g = 10.0 * n * np.log10(np.maximum(d, _MIN_DISTANCE_M))
    p0 = np.mean(p[None, :] + g, axis=1, keepdims=True)
    r = (p[None, :] - p0 + g) / sigma
    return np.sum(np.log1p(r * r), axis=1)


def _model_jacobian(theta: NDArray, x: NDArray, y: NDArray, n: float) -> tuple[NDArray, NDArray]:
    """Model powers and their Jacobian wrt (x, y, P0)."""
    dx, dy = theta[0] - x, theta[1] - y
    d2 = dx * dx + dy * dy
    d = np.sqrt(d2)
    far = d >= _MIN_DISTANCE_M
    model = theta[2] - 10.0 * n * np.log10(np.maximum(d, _MIN_DISTANCE_M))
    k = np.where(far, -10.0 * n / math.log(10.0) / np.where(far, d2, 1.0), 0.0)
    jac = np.column_stack([k * dx, k * dy, np.ones_like(d)])
    return model, jac


def locate(
    lat: ArrayLike,
    lon: ArrayLike,
    power_dbm: ArrayLike,
    *,
    path_loss_exponent: float,
    shadowing_db: float,
    decorrelation_m: float = 50.0,
) -> Location:
    """Estimate an emitter's position from powers received at known positions.

    Parameters
    ----------
    lat, lon : array_like
        Sensor positions at each measurement, WGS84 degrees.
    power_dbm : array_like
        Received power of each measurement, dBm.
    path_loss_exponent : float
        n of the log-distance model (2 free space, 3-4 urban).
    shadowing_db : float
        Standard deviation of log-normal shadowing, dB (floor of the ellipse's sigma).
    decorrelation_m : float
        Shadowing decorrelation distance, m: measurements within one cell of this size (a
        car's drive-by points) are averaged into one point, since their shadowing is one
        draw and counting them apart would make the ellipse too small. 0 keeps every
        distinct position.

    Returns
    -------
    Location
        With ``underdetermined=True`` (position of the strongest distinct position, no
        ellipse) when fewer than three distinct positions are available.

    Raises
    ------
    DspError
        If the arrays differ in length, are empty or hold non-finite values, or the
        model parameters are not positive.
    """
    lat_a, lon_a, p_a = (np.asarray(v, dtype=float).ravel() for v in (lat, lon, power_dbm))
    if not (lat_a.size == lon_a.size == p_a.size) or lat_a.size == 0:
        raise DspError(f"locate needs equal, non-empty lat/lon/power arrays, got {lat_a.size}/{lon_a.size}/{p_a.size}")
    if not (np.all(np.isfinite(lat_a)) and np.all(np.isfinite(lon_a)) and np.all(np.isfinite(p_a))):
        raise DspError("locate got non-finite positions or powers")
    if not (path_loss_exponent > 0 and shadowing_db > 0):
        raise DspError(f"path_loss_exponent and shadowing_db must be > 0, got {path_loss_exponent}, {shadowing_db}")
    n_exp, sigma = float(path_loss_exponent), float(shadowing_db)

    plat, plon, p = _distinct_positions(lat_a, lon_a, p_a, float(decorrelation_m))
    npts = p.size
    if npts < 3:
        i = int(np.argmax(p))
        return Location(float(plat[i]), float(plon[i]), None, None, None, None, None, npts, True)

    lat0, lon0 = float(np.mean(plat)), float(np.mean(plon))
    x, y = to_enu(plat, plon, lat0, lon0)
    # Shadowing of nearby points is correlated (exp(-distance / decorrelation_m), as
    # Gudmundson measured): a drive-by's neighbouring cells are not independent draws.
    # The residuals are whitened with that correlation (generalized least squares), so the
    # fit weighs them right and the ellipse is not too small; far-apart fixed sensors keep
    # an identity whitening.
    if decorrelation_m > 0:
        dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        corr = np.exp(-dist / float(decorrelation_m))
        whiten = np.linalg.inv(np.linalg.cholesky(corr + 1e-9 * np.eye(npts)))
    else:
        whiten = np.eye(npts)

    # Coarse grid of the profile likelihood.
    span = max(float(np.ptp(x)), float(np.ptp(y)))
    margin = max(GRID_MARGIN_M, 0.5 * span)
    gxs = np.linspace(x.min() - margin, x.max() + margin, _GRID_N)
    gys = np.linspace(y.min() - margin, y.max() + margin, _GRID_N)
    gx, gy = (a.ravel() for a in np.meshgrid(gxs, gys))
    cost = np.concatenate([
        _profile_cost(gx[i:i + 4096], gy[i:i + 4096], x, y, p, n_exp, sigma) for i in range(0, gx.size, 4096)
    ])

    def residuals(theta: NDArray) -> NDArray:
        return whiten @ (p - _model_jacobian(theta, x, y, n_exp)[0]) / sigma

    def jacobian(theta: NDArray) -> NDArray:
        return -whiten @ _model_jacobian(theta, x, y, n_exp)[1] / sigma

    # Refine from the best few grid cells (distinct basins) and keep the lowest cost.
    best = None
    for idx in np.argsort(cost)[:5]:
        d = np.maximum(np.hypot(gx[idx] - x, gy[idx] - y), _MIN_DISTANCE_M)
        start = np.array([gx[idx], gy[idx], float(np.mean(p + 10.0 * n_exp * np.log10(d)))])
        res = least_squares(residuals, start, jac=jacobian, loss="soft_l1", f_scale=1.0, x_scale="jac")
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    theta = best.x

    model, jac = _model_jacobian(theta, x, y, n_exp)
    r = p - model
    rms = float(np.sqrt(np.mean(r * r)))
    dof = npts - 3
    rw, jac = whiten @ r, whiten @ jac
    s_hat = float(np.sqrt(np.sum(rw * rw) / dof)) if dof > 0 else 0.0
    sigma_eff = max(sigma, s_hat)
    semi_major = semi_minor = orient = None
    info = jac.T @ jac / sigma_eff**2
    scale = np.sqrt(np.diag(info))
    if np.all(scale > 0) and np.linalg.cond(info / np.outer(scale, scale)) < 1e10:
        cov = (np.linalg.inv(info / np.outer(scale, scale)) / np.outer(scale, scale))[:2, :2]
        evals, evecs = np.linalg.eigh(0.5 * (cov + cov.T))
        evals = np.maximum(evals, 0.0)
        semi_major = float(math.sqrt(_CHI2_2_95 * evals[1]))
        semi_minor = float(math.sqrt(_CHI2_2_95 * evals[0]))
        east, north = evecs[:, 1]
        orient = float(math.degrees(math.atan2(east, north)) % 180.0)
    elat, elon = from_enu(theta[0], theta[1], lat0, lon0)
    return Location(
        lat=float(elat), lon=float(elon), p0_dbm=float(theta[2]), semi_major_m=semi_major,
        semi_minor_m=semi_minor, orientation_deg=orient, rms_residual_db=rms, n_points=npts,
        underdetermined=False,
    )


def inside_ellipse(
    lat: float, lon: float, centre_lat: float, centre_lon: float,
    semi_major_m: float, semi_minor_m: float, orientation_deg: float,
) -> bool:
    """True if (lat, lon) lies inside the ellipse (all degrees / metres, bearing from north)."""
    e, n = (float(x) for x in to_enu(lat, lon, centre_lat, centre_lon))
    (ue, un), (ve, vn) = _major_minor_axes(orientation_deg)
    u, v = e * ue + n * un, e * ve + n * vn   # along the major and the minor axis
    a, b = max(semi_major_m, 1e-9), max(semi_minor_m, 1e-9)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0
