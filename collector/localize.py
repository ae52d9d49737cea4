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
    **one** point. Averaging removes fast fading and receiver noise, but shadowing
    belongs to the position, not to the measurement, so the mean is not shrunk by
    sqrt(N): a fixed sensor reporting 50 times weighs as much as one that reported once.

Correlation
    Shadowing at points closer than a few ``decorrelation_m`` is correlated,
    ``exp(-distance / decorrelation_m)`` (Gudmundson). The covariance of the cell means
    is computed from the points themselves, ``A K A^T`` (``K`` that correlation between
    the points, ``A`` the averaging): a spread-out cell's mean varies a little less than
    one point, and neighbouring cells are more correlated than the distance of their
    centroids says. The residuals are whitened with it (generalized least squares), so a
    drive-by's many neighbouring points do not pass for independent evidence. Far-apart
    fixed sensors get an identity.

Fit
    For a candidate position the P0 has a closed form (the generalized-least-squares mean
    of ``P_i + 10 n log10 d_i``); this profile likelihood (robust ``soft_l1`` loss of
    scale :data:`ROBUST_SCALE` sigmas, because shadowing has heavy tails) is scanned on a
    grid over the sensors' bounding box expanded by a few km. The grid's lowest local
    minima seed :func:`scipy.optimize.least_squares` over (x, y, P0), the same loss.

Several maxima
    With P0 unknown only ratios of distances count, and the likelihood is often
    multi-modal: for sensors on a circle a point inside and its inverse image outside
    (``q R^2 / |q|^2``, P0 higher by ``10 n log10(R / |q|)``) fit exactly alike; along a
    straight route the mirror image across it nearly so; and with 4-8 sensors and 6 dB
    of shadowing a far position with a stronger transmitter often explains the powers
    about as well (see bench/bench_locate.py). The distinct maxima are refined and
    returned in ``Location.modes``; a weak prior (the emitter is among or near the
    sensors: a robust Gaussian around their centroid, standard deviation the grid's
    half-width) picks the reported one. The prior moves no maximum; it only decides.

Uncertainty
    The 95 % ellipse comes from the Fisher information of (x, y, P0),
    ``I = J^T W^T W J / sigma_eff^2`` (W the whitening), inverted and marginalised to
    (x, y) (the 2x2 block of the inverse, so the unknown P0 widens it honestly), scaled
    by ``chi2(2).ppf(0.95)``. ``sigma_eff = max(sigma_cfg, s)`` with ``s`` the whitened
    residual standard deviation over N - 3 degrees of freedom: the configured sigma is
    the floor (few points estimate s poorly and must not make the ellipse optimistic),
    and residuals larger than expected (wrong n, multipath, a moving emitter) widen it.
    When another maximum lies in the 95 % likelihood region (deviance under
    ``chi2(2).ppf(0.95)`` with ``sigma_eff``, and within the F test ``2 s^2 F(2, N - 3)``
    on the residuals' own scale) the ellipse keeps its shape and grows until it holds
    that maximum's own 95 % ellipse: one ellipse around one maximum would claim a
    precision the powers do not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import minimum_filter
from scipy.optimize import least_squares
from scipy.stats import chi2
from scipy.stats import f as f_dist

from rfhunt.errors import DspError
from rfhunt.geo import from_enu, to_enu

_CHI2_2_95 = float(chi2.ppf(0.95, 2))
_CHI2_2_99 = float(chi2.ppf(0.99, 2))
#: Scale (in shadowing sigmas) of the robust ``soft_l1`` loss: about 95 % efficient for
#: Gaussian shadowing, and a residual of many sigmas weighs little.
ROBUST_SCALE = 1.5
_N_SEEDS = 6
_GRID_WHITEN_MAX = 400
_MIN_DISTANCE_M = 1.0
#: Margin (m) added around the sensors' bounding box for the grid search, at least.
GRID_MARGIN_M = 3000.0
_GRID_N = 121


@dataclass(frozen=True)
class Mode:
    """One local maximum of the likelihood (see :attr:`Location.modes`).

    Attributes
    ----------
    lat, lon : float
        Position, WGS84 degrees.
    p0_dbm : float
        Power 1 m from the emitter fitted at that position, dBm.
    deviance : float
        Twice the negative log-likelihood ratio to the best mode (0 for the best), the
        weak position prior of :func:`locate` included, in units of the fit's shadowing
        sigma; comparable to ``chi2(2)``: 6 is a 95 % region's edge.
    """

    lat: float
    lon: float
    p0_dbm: float
    deviance: float


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
    modes : tuple of Mode
        Empty when the likelihood has one plausible maximum; otherwise its distinct local
        maxima whose deviance from the best is below ``chi2(2).ppf(0.99)``, best first
        (the first is the reported position).
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
    modes: tuple[Mode, ...] = ()


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
def _cells(lat: NDArray, lon: NDArray, power: NDArray, cell_m: float = 0.0
           ) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Average powers (dB) over repeated positions: the same point (rounded to 1e-6 deg,
    ~0.1 m) or, with ``cell_m`` > 0, the same ``cell_m``-square cell of the ground.
    Returns the cell means (lat, lon, power) and each measurement's cell index."""
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
    return mean_lat, mean_lon, mean_p, inverse


def _cell_mean_correlation(xr: NDArray, yr: NDArray, inverse: NDArray, n_cells: int, decorrelation_m: float
                           ) -> NDArray:
    """Shadowing correlation of the cell means (in units of sigma^2).

    With point correlation ``K_ij = exp(-|r_i - r_j| / decorrelation_m)`` and ``A`` the
    averaging matrix of the cells, the covariance of the means is ``A K A^T``: a cell whose
    points are spread has a mean a little less variable than one point, and two
    neighbouring cells are more correlated than ``exp(-centroid distance / D)`` (the
    average of a convex function exceeds its value at the average distance). At most a
    few points per cell (evenly spread in input order) are used, to bound the cost.
    """
    per_cell = max(1, min(8, 4000 // max(n_cells, 1)))
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=n_cells)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick, owner = [], []
    for c in range(n_cells):
        m = min(int(counts[c]), per_cell)
        idx = starts[c] + np.round(np.linspace(0, counts[c] - 1, m)).astype(np.int64)
        pick.append(order[idx])
        owner.append(np.full(m, c))
    sel = np.concatenate(pick)
    own = np.concatenate(owner)
    k = np.exp(-np.hypot(xr[sel, None] - xr[None, sel], yr[sel, None] - yr[None, sel]) / decorrelation_m)
    a = np.zeros((n_cells, sel.size))
    a[own, np.arange(sel.size)] = 1.0 / np.bincount(own, minlength=n_cells)[own]
    return a @ k @ a.T


def _rho(r: NDArray, c: float) -> NDArray:
    """The ``soft_l1`` loss of :func:`scipy.optimize.least_squares` (scale ``c``) of residuals ``r``."""
    return 2.0 * c * c * (np.sqrt(1.0 + (r / c) ** 2) - 1.0)


def _profile_cost(gx: NDArray, gy: NDArray, x: NDArray, y: NDArray, p: NDArray, n: float, sigma: float,
                  whiten: NDArray) -> NDArray:
    """Robust cost of the profile likelihood at grid points (gx, gy): the whitened
    residuals after the generalized-least-squares P0 of each point, loss :func:`_rho`."""
    d = np.hypot(gx[:, None] - x[None, :], gy[:, None] - y[None, :])
    u = (p[None, :] + 10.0 * n * np.log10(np.maximum(d, _MIN_DISTANCE_M))) @ whiten.T
    w1 = whiten @ np.ones(x.size)
    p0 = (u @ w1) / float(w1 @ w1)
    r = (u - p0[:, None] * w1[None, :]) / sigma
    return 0.5 * np.sum(_rho(r, ROBUST_SCALE), axis=1)


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


def _grid_minima(cost: NDArray, shape: tuple[int, int], k: int) -> NDArray:
    """Flat indices of the ``k`` lowest local minima (3 x 3 neighbourhood) of a grid cost."""
    c2 = cost.reshape(shape)
    is_min = minimum_filter(c2, size=3, mode="nearest") >= c2
    idx = np.flatnonzero(is_min.ravel())
    return idx[np.argsort(cost[idx])][:k]


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
        car's drive-by points) are averaged into one point, and the cell means are
        weighed with the covariance that shadowing correlated as ``exp(-distance /
        decorrelation_m)`` gives them, so that neighbouring points do not pass for
        independent evidence. 0 keeps every distinct position, independent.

    Returns
    -------
    Location
        With ``underdetermined=True`` (position of the strongest distinct position, no
        ellipse) when fewer than three distinct positions are available; ``modes`` lists
        the distinct local maxima of the likelihood when there is more than one plausible.

    Raises
    ------
    DspError
        If the arrays differ in length, are empty or hold non-finite values, the model
        parameters are not positive, or ``decorrelation_m`` is negative or not finite.
    """
    lat_a, lon_a, p_a = (np.asarray(v, dtype=float).ravel() for v in (lat, lon, power_dbm))
    if not (lat_a.size == lon_a.size == p_a.size) or lat_a.size == 0:
        raise DspError(f"locate needs equal, non-empty lat/lon/power arrays, got {lat_a.size}/{lon_a.size}/{p_a.size}")
    if not (np.all(np.isfinite(lat_a)) and np.all(np.isfinite(lon_a)) and np.all(np.isfinite(p_a))):
        raise DspError("locate got non-finite positions or powers")
    if not (path_loss_exponent > 0 and shadowing_db > 0):
        raise DspError(f"path_loss_exponent and shadowing_db must be > 0, got {path_loss_exponent}, {shadowing_db}")
    if not (decorrelation_m >= 0 and math.isfinite(decorrelation_m)):
        raise DspError(f"decorrelation_m must be finite and >= 0, got {decorrelation_m}")
    n_exp, sigma = float(path_loss_exponent), float(shadowing_db)

    plat, plon, p, inverse = _cells(lat_a, lon_a, p_a, float(decorrelation_m))
    npts = p.size
    if npts < 3:
        i = int(np.argmax(p))
        return Location(float(plat[i]), float(plon[i]), None, None, None, None, None, npts, True)

    lat0, lon0 = float(np.mean(plat)), float(np.mean(plon))
    x, y = to_enu(plat, plon, lat0, lon0)
    # Shadowing of nearby points is correlated (exp(-distance / decorrelation_m), as
    # Gudmundson measured): the residuals are whitened with the covariance of the cell
    # means (generalized least squares), so the fit weighs them right and the ellipse is
    # not too small; far-apart fixed sensors keep an identity whitening.
    if decorrelation_m > 0:
        xr, yr = to_enu(lat_a, lon_a, lat0, lon0)
        corr = _cell_mean_correlation(xr, yr, inverse, npts, float(decorrelation_m))
        whiten = np.linalg.inv(np.linalg.cholesky(corr + 1e-6 * np.eye(npts)))
    else:
        whiten = np.eye(npts)

    # Grid of the profile likelihood over the sensors' box and a margin.
    span = max(float(np.ptp(x)), float(np.ptp(y)))
    margin = max(GRID_MARGIN_M, 0.5 * span)
    gxs = np.linspace(x.min() - margin, x.max() + margin, _GRID_N)
    gys = np.linspace(y.min() - margin, y.max() + margin, _GRID_N)
    step = max(float(gxs[1] - gxs[0]), float(gys[1] - gys[0]))
    gx, gy = (a.ravel() for a in np.meshgrid(gxs, gys))
    chunk = max(256, 2_000_000 // npts)
    # The grid only seeds the fits (which are whitened): past a few hundred points it
    # skips the whitening, whose cost grows as grid x points^2.
    gwhiten = whiten if npts <= _GRID_WHITEN_MAX else np.diag(np.diag(whiten))
    cost = np.concatenate([
        _profile_cost(gx[i:i + chunk], gy[i:i + chunk], x, y, p, n_exp, sigma, gwhiten)
        for i in range(0, gx.size, chunk)
    ])

    def residuals(theta: NDArray) -> NDArray:
        return whiten @ (p - _model_jacobian(theta, x, y, n_exp)[0]) / sigma

    def jacobian(theta: NDArray) -> NDArray:
        return -whiten @ _model_jacobian(theta, x, y, n_exp)[1] / sigma

    # Between maxima of the likelihood a weak prior decides: the emitter is among or near
    # the sensors, a (robust) Gaussian of standard deviation the grid's half-width around
    # the sensors' centroid. It does not move a maximum, but it picks between positions
    # the powers cannot tell apart, e.g. for sensors on a circle a point inside and its
    # inverse image outside (same distance ratios, so the same likelihood with the
    # transmit power unknown).
    prior_sd = 0.5 * max(float(gxs[-1] - gxs[0]), float(gys[-1] - gys[0]))

    def prior_cost(ex: float, ey: float) -> float:
        return float(0.5 * _rho(np.array(math.hypot(ex, ey) / prior_sd), ROBUST_SCALE))

    cost = cost + 0.5 * _rho(np.hypot(gx, gy) / prior_sd, ROBUST_SCALE)

    # Refine from the lowest local minima of the grid (distinct basins); keep them all.
    fits = []
    for idx in _grid_minima(cost, (gys.size, gxs.size), _N_SEEDS):
        d = np.maximum(np.hypot(gx[idx] - x, gy[idx] - y), _MIN_DISTANCE_M)
        start = np.array([gx[idx], gy[idx], float(np.mean(p + 10.0 * n_exp * np.log10(d)))])
        res = least_squares(residuals, start, jac=jacobian, loss="soft_l1", f_scale=ROBUST_SCALE, x_scale="jac")
        fits.append(res)
    fits.sort(key=lambda f: f.cost + prior_cost(f.x[0], f.x[1]))
    distinct: list = []
    for f in fits:
        if all(math.hypot(f.x[0] - g.x[0], f.x[1] - g.x[1]) > 2.0 * step for g in distinct):
            distinct.append(f)
    theta = distinct[0].x

    model, jac = _model_jacobian(theta, x, y, n_exp)
    r = p - model
    rms = float(np.sqrt(np.mean(r * r)))
    dof = npts - 3
    rw = whiten @ r
    s_hat = float(np.sqrt(np.sum(rw * rw) / dof)) if dof > 0 else 0.0
    sigma_eff = max(sigma, s_hat)

    def position_cov(th: NDArray) -> NDArray | None:
        """2 x 2 position block of the inverse Fisher information at ``th`` (m^2)."""
        jw = whiten @ _model_jacobian(th, x, y, n_exp)[1]
        info = jw.T @ jw / sigma_eff**2
        sc = np.sqrt(np.diag(info))
        if not (np.all(sc > 0) and np.linalg.cond(info / np.outer(sc, sc)) < 1e10):
            return None
        c = (np.linalg.inv(info / np.outer(sc, sc)) / np.outer(sc, sc))[:2, :2]
        return 0.5 * (c + c.T)

    modes: list[Mode] = []
    # Other modes inside the 95 % likelihood region, both under the shadowing sigma
    # (deviance <= chi2(2) 95 %) and by the F test of nonlinear least squares with sigma
    # estimated from the residuals (N - 3 dof: the sum of squares rises by at most
    # 2 s^2 F(2, N - 3)): when the residuals show cleaner data than the configured sigma,
    # the modes they rule out are not held.
    near: list[NDArray] = []
    ss_best = float(rw @ rw)
    lr_max = 2.0 * f_dist.ppf(0.95, 2, dof) * ss_best / dof if dof > 0 else math.inf
    for f in distinct:
        dev = 2.0 * (f.cost + prior_cost(f.x[0], f.x[1]) - distinct[0].cost - prior_cost(*theta[:2])) \
            * (sigma / sigma_eff) ** 2
        if dev <= _CHI2_2_99:
            mlat, mlon = from_enu(f.x[0], f.x[1], lat0, lon0)
            modes.append(Mode(float(mlat), float(mlon), float(f.x[2]), float(dev)))
            if (f is not distinct[0] and dev <= _CHI2_2_95
                    and float(np.sum(residuals(f.x) ** 2)) * sigma**2 - ss_best <= lr_max):
                near.append(f.x)

    semi_major = semi_minor = orient = None
    cov = position_cov(theta)
    if cov is not None:
        evals, evecs = np.linalg.eigh(cov)
        evals = np.maximum(evals, 0.0)
        q = _CHI2_2_95
        # A multi-modal likelihood: the ellipse (same shape) grows to hold the other
        # modes' own 95 % ellipses, so that it stays a 95 % region of the position.
        if near and evals[0] > 0:
            prec = np.linalg.inv(cov)
            t = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)
            for th in near:
                c2 = position_cov(th)
                if c2 is None:
                    continue
                l2, v2 = np.linalg.eigh(c2)
                ring_pts = (v2 * np.sqrt(_CHI2_2_95 * np.maximum(l2, 0.0))) @ np.vstack([np.cos(t), np.sin(t)])
                dpts = ring_pts + (th[:2] - theta[:2])[:, None]
                q = max(q, float(np.max(np.einsum("in,ij,jn->n", dpts, prec, dpts))))
        semi_major = float(math.sqrt(q * evals[1]))
        semi_minor = float(math.sqrt(q * evals[0]))
        east, north = evecs[:, 1]
        orient = float(math.degrees(math.atan2(east, north)) % 180.0)

    elat, elon = from_enu(theta[0], theta[1], lat0, lon0)
    return Location(
        lat=float(elat), lon=float(elon), p0_dbm=float(theta[2]), semi_major_m=semi_major,
        semi_minor_m=semi_minor, orientation_deg=orient, rms_residual_db=rms, n_points=npts,
        underdetermined=False, modes=tuple(modes) if len(modes) > 1 else (),
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


def track(
    t_utc: ArrayLike,
    lat: ArrayLike,
    lon: ArrayLike,
    power_dbm: ArrayLike,
    *,
    path_loss_exponent: float,
    shadowing_db: float,
    window_s: float = 120.0,
    step_s: float | None = None,
    decorrelation_m: float = 50.0,
) -> list[tuple[float, Location]]:
    """Positions of a (possibly moving) emitter over time: one :func:`locate` per window.

    Parameters
    ----------
    t_utc : array_like
        Time of each measurement, Unix seconds (any order).
    lat, lon, power_dbm : array_like
        As for :func:`locate`, one per measurement.
    path_loss_exponent, shadowing_db, decorrelation_m : float
        As for :func:`locate`.
    window_s : float
        Length of each window, s. Windows start at the earliest time.
    step_s : float, optional
        Start of one window to the next, s (default ``window_s``: back to back; smaller:
        overlapping, a smoother track whose fixes are not independent).

    Returns
    -------
    list of (float, Location)
        ``(t_utc of the window's middle, fix)`` in time order, for the windows whose
        measurements come from three distinct positions or more (others are left out,
        not guessed).

    Raises
    ------
    DspError
        If the arrays differ in length or hold non-finite values, or ``window_s`` /
        ``step_s`` is not positive; and as :func:`locate`.
    """
    t_a, lat_a, lon_a, p_a = (np.asarray(v, dtype=float).ravel() for v in (t_utc, lat, lon, power_dbm))
    if not (t_a.size == lat_a.size == lon_a.size == p_a.size):
        raise DspError(f"track needs equal t/lat/lon/power arrays, got {t_a.size}/{lat_a.size}/{lon_a.size}/{p_a.size}")
    step = window_s if step_s is None else step_s
    if not (window_s > 0 and step > 0 and math.isfinite(window_s) and math.isfinite(step)):
        raise DspError(f"track needs window_s and step_s > 0, got {window_s}, {step_s}")
    if t_a.size == 0:
        return []
    if not np.all(np.isfinite(t_a)):
        raise DspError("track got non-finite times")
    t0, t1 = float(t_a.min()), float(t_a.max())
    out: list[tuple[float, Location]] = []
    for k in range(int(math.floor((t1 - t0) / step)) + 1):
        lo = t0 + k * step
        sel = (t_a >= lo) & (t_a < lo + window_s)
        if np.count_nonzero(sel) < 3:
            continue
        fix = locate(lat_a[sel], lon_a[sel], p_a[sel], path_loss_exponent=path_loss_exponent,
                     shadowing_db=shadowing_db, decorrelation_m=decorrelation_m)
        if not fix.underdetermined:
            out.append((lo + 0.5 * window_s, fix))
    return out
