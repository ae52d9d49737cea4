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

Transmit-power (EIRP) prior
    Optional (``eirp_prior_dbm`` and ``freq_hz``): a soft range of the emitter's EIRP,
    turned into a range of P0 by the free-space loss at 1 m, ``P0 = EIRP - 20 log10(4 pi
    f / c)``. Its negative log is flat inside the range and ``0.5 rho(e / s)`` outside (``e``
    the dB beyond the nearer edge, ``s`` = :data:`EIRP_SOFT_DB`, ``rho`` the same
    ``soft_l1`` as the likelihood): Gaussian just beyond an edge, then only linear, so an
    emitter whose power lies outside the range is pulled a little, not clamped. The prior is
    part of the fit (an extra residual), of the grid's profile, of the choice between maxima
    and of their deviances (a far maximum that needs an implausibly strong transmitter loses),
    and of the ellipse's information (its curvature, weighted by the robust loss, where the
    fitted P0 lies beyond an edge; inside the range it adds nothing). It can break the
    ambiguity between maxima only where their P0 differ by more than the range leaves open:
    with 4-8 fixed sensors the far maximum needs 5-25 dB more (median 10), so a 30-50 dB
    wide range rejects it only for emitters near its top, and a far maximum on a ridge of
    the likelihood slides inwards to the edge rather than losing; the mirror image across
    a straight street has the same distances to it, hence nearly the same P0 (1-8 dB more
    on the bench's two-street drive-by), and no transmit-power knowledge breaks it (see
    bench/bench_locate.py).

    Prior-data conflict: when the fitted P0 lies beyond the range, the likelihood alone is
    refined from the fit; if its P0 lies beyond the range by more than :data:`CONFLICT_Z`
    times the spread the prior predicts (``sqrt(EIRP_SOFT_DB^2 + var P0)``), the ellipse
    grows to hold that maximum too, as another mode's. A wrong prior (a transmitter
    stronger than the range, a sensor calibrated low, a wrong ``n``: the intercept moves by
    ``10 dn log10 d``, 15 dB at 1 km for dn = 0.5) then biases the position, towards the
    sensors, but the ellipse keeps its coverage (92-98 % with the truth at the edge of the
    range and 6, 15 or 30 dB beyond it, against 81 % without this rule at 15 dB).

    Default ranges (:data:`DEFAULT_EIRP_DBM`) are *effective* EIRPs: what the configured
    log-distance model's intercept sees, which is the nameplate EIRP less the excess of the
    real path loss over ``FSPL(1 m) + 10 n log10 d`` (about 5 dB for a rooftop antenna at
    1-3 km; 10-25 dB for an antenna at street level in clutter, per COST-231 Hata /
    Walfisch-Ikegami at 900 MHz), so the lower edges sit well below nameplate minima:

    ``gsm_downlink`` 10-62 dBm
        Legitimate macro cells: TRX 20-60 W (43-48 dBm; 3GPP TS 45.005 normal-BTS classes
        reach 58 dBm) + sector antenna 15-18 dBi - feeder 2-4 dB = 55-62 dBm on boresight,
        less below the tilted beam; micro/pico BTS (TS 45.005 M1-M3, P1: 13-32 dBm).
        Fake base stations / SMS blasters: SDR + power amplifier of 1-20 W (30-43 dBm)
        and 0-9 dBi antennas, 30-52 dBm, in a car (street level, so 10-25 dB of clutter
        below that in effect). The range must hold the legitimate cells, which are located
        too (an operator who hunts only fake cells may narrow it, e.g. to 20-50).
    ``gsm_uplink`` -10-36 dBm
        Handsets: GSM 900 power class 4 at most 33 dBm, DCS 1800 class 1 at most 30 dBm,
        power control down to 5 / 0 dBm (TS 45.005 4.1.1), antenna -3-0 dBi and body loss
        3-8 dB; GOIP/SIM-box gateways: the same modules at 33 dBm with 0-3 dBi external
        antennas.
    ``fm`` 10-83 dBm
        Licensed: from low-power community stations (1-100 W ERP) to regional transmitters
        of 100-250 kW ERP (80-84 dBm ERP, EIRP = ERP + 2.15 dB); pirates: 10 W-1 kW
        transmitters with 0-6 dBi antennas (40-66 dBm). So wide a range breaks few
        ambiguities; the registry's ERP of a licensed station would be a far better prior.

    :data:`EIRP_SOFT_DB` (3 dB) is the soft edge: the absolute calibration of an RTL-SDR
    sensor (+-2-3 dB after calibration) and its antenna and cable (+-2 dB). The collector
    applies no prior unless configured (``[localization] eirp_dbm``): the effective EIRP
    depends on the sensors' calibration and the configured ``n`` as much as on the
    transmitter, and with ranges wide enough to be safe the prior improves the RMSE little.
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
_C_M_S = 299_792_458.0
#: Soft edge of the EIRP prior, dB: the standard deviation of its Gaussian flanks (sensor
#: calibration, antenna and cable); beyond ``ROBUST_SCALE`` of it the penalty is linear.
EIRP_SOFT_DB = 3.0
#: Prior-data conflict threshold (see :func:`locate`): the likelihood's P0 beyond the EIRP
#: range by more than this many of the spread the prior predicts.
CONFLICT_Z = 1.0
#: Default effective EIRP range per detection kind, dBm (sources: the module docstring).
DEFAULT_EIRP_DBM: dict[str, tuple[float, float]] = {
    "gsm_downlink": (10.0, 62.0),
    "gsm_uplink": (-10.0, 36.0),
    "fm": (10.0, 83.0),
}


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
        Twice the negative log-posterior ratio to the best mode (0 for the best): the
        likelihood in units of the fit's shadowing sigma, the weak position prior of
        :func:`locate` and the EIRP prior when one is given; comparable to ``chi2(2)``:
        6 is a 95 % region's edge.
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
                  whiten: NDArray, p0_range: tuple[float, float] | None = None) -> NDArray:
    """Robust cost of the profile posterior at grid points (gx, gy): the whitened
    residuals after the generalized-least-squares P0 of each point, loss :func:`_rho`;
    with ``p0_range`` (dBm) the P0 prior profiled too, in the Gaussian approximation (the
    GLS P0 has variance ``sigma^2 / w1.w1``, so ``e`` dB beyond the range costs
    ``0.5 rho(e / sqrt(EIRP_SOFT_DB^2 + sigma^2 / w1.w1))``)."""
    d = np.hypot(gx[:, None] - x[None, :], gy[:, None] - y[None, :])
    u = (p[None, :] + 10.0 * n * np.log10(np.maximum(d, _MIN_DISTANCE_M))) @ whiten.T
    w1 = whiten @ np.ones(x.size)
    p0 = (u @ w1) / float(w1 @ w1)
    r = (u - p0[:, None] * w1[None, :]) / sigma
    cost = 0.5 * np.sum(_rho(r, ROBUST_SCALE), axis=1)
    if p0_range is not None:
        scale = math.sqrt(EIRP_SOFT_DB**2 + sigma**2 / float(w1 @ w1))
        cost = cost + 0.5 * _rho(_eirp_excess(p0, *p0_range) / scale, ROBUST_SCALE)
    return cost


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


def fspl_1m_db(freq_hz: float) -> float:
    """Free-space path loss over 1 m, dB: ``20 log10(4 pi f / c)`` (31.5 dB at 900 MHz,
    12.4 dB at 100 MHz); P0 = EIRP - this.

    Parameters
    ----------
    freq_hz : float
        Carrier frequency, Hz.
    """
    return 20.0 * math.log10(4.0 * math.pi * float(freq_hz) / _C_M_S)


def _eirp_excess(p0: NDArray, lo: float, hi: float) -> NDArray:
    """dB by which P0 (dBm) lies beyond the prior's range [lo, hi] of P0 (0 inside)."""
    return np.maximum(lo - p0, 0.0) + np.maximum(p0 - hi, 0.0)


def eirp_prior_cost(eirp_dbm: ArrayLike, eirp_range_dbm: tuple[float, float],
                    soft_db: float = EIRP_SOFT_DB) -> NDArray:
    """Negative log of the (unnormalised) EIRP prior of :func:`locate`.

    Parameters
    ----------
    eirp_dbm : array_like
        EIRP values, dBm.
    eirp_range_dbm : (float, float)
        The prior's range (low, high), dBm.
    soft_db : float
        Soft edge, dB.

    Returns
    -------
    ndarray
        0 inside the range; ``0.5 rho(e / soft_db)`` at ``e`` dB outside it (``rho`` the
        ``soft_l1`` loss of scale :data:`ROBUST_SCALE`).
    """
    e = _eirp_excess(np.asarray(eirp_dbm, dtype=float), float(eirp_range_dbm[0]), float(eirp_range_dbm[1]))
    return 0.5 * _rho(e / soft_db, ROBUST_SCALE)


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
    eirp_prior_dbm: tuple[float, float] | None = None,
    freq_hz: float | None = None,
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
    eirp_prior_dbm : (float, float), optional
        Soft range (low, high) of the emitter's effective EIRP, dBm (see the module
        docstring and :data:`DEFAULT_EIRP_DBM`); None (default): P0 free, the likelihood
        alone.
    freq_hz : float, optional
        Carrier frequency, Hz; required with ``eirp_prior_dbm`` (P0 = EIRP - FSPL(1 m)).

    Returns
    -------
    Location
        With ``underdetermined=True`` (position of the strongest distinct position, no
        ellipse) when fewer than three distinct positions are available; ``modes`` lists
        the distinct local maxima of the posterior when there is more than one plausible.

    Raises
    ------
    DspError
        If the arrays differ in length, are empty or hold non-finite values, the model
        parameters are not positive, ``decorrelation_m`` is negative or not finite, or the
        EIRP prior is not a finite (low, high) with low < high, or comes without a
        positive ``freq_hz``.
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
    p0_range: tuple[float, float] | None = None
    if eirp_prior_dbm is not None:
        try:
            lo, hi = (float(v) for v in eirp_prior_dbm)
        except (TypeError, ValueError):
            raise DspError(f"eirp_prior_dbm must be (low, high) dBm, got {eirp_prior_dbm!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DspError(f"eirp_prior_dbm must be finite with low < high, got {eirp_prior_dbm!r}")
        if freq_hz is None or not (math.isfinite(freq_hz) and freq_hz > 0):
            raise DspError(f"an EIRP prior needs the carrier frequency freq_hz > 0, got {freq_hz!r}")
        loss = fspl_1m_db(freq_hz)
        p0_range = (lo - loss, hi - loss)

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
        _profile_cost(gx[i:i + chunk], gy[i:i + chunk], x, y, p, n_exp, sigma, gwhiten, p0_range)
        for i in range(0, gx.size, chunk)
    ])

    def residuals(theta: NDArray) -> NDArray:
        return whiten @ (p - _model_jacobian(theta, x, y, n_exp)[0]) / sigma

    def jacobian(theta: NDArray) -> NDArray:
        return -whiten @ _model_jacobian(theta, x, y, n_exp)[1] / sigma

    def eirp_cost(p0: float) -> float:
        """The EIRP prior's negative log at P0 = ``p0`` (0 without a prior)."""
        if p0_range is None:
            return 0.0
        return float(0.5 * _rho(_eirp_excess(np.array(p0), *p0_range) / EIRP_SOFT_DB, ROBUST_SCALE))

    # With an EIRP prior, its residual (dB beyond the range, in soft-edge units) joins the
    # fit's: the same soft_l1 loss makes the prior's negative log that of eirp_cost.
    def residuals_post(theta: NDArray) -> NDArray:
        e = _eirp_excess(np.array([theta[2]]), *p0_range) / EIRP_SOFT_DB
        return np.concatenate([residuals(theta), e])

    def jacobian_post(theta: NDArray) -> NDArray:
        lo_, hi_ = p0_range
        g = (1.0 if theta[2] > hi_ else -1.0 if theta[2] < lo_ else 0.0) / EIRP_SOFT_DB
        return np.vstack([jacobian(theta), [[0.0, 0.0, g]]])

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
        if p0_range is None:
            res = least_squares(residuals, start, jac=jacobian, loss="soft_l1", f_scale=ROBUST_SCALE,
                                x_scale="jac")
        else:
            start[2] = min(max(start[2], p0_range[0]), p0_range[1])
            res = least_squares(residuals_post, start, jac=jacobian_post, loss="soft_l1", f_scale=ROBUST_SCALE,
                                x_scale="jac")
            res.cost = float(0.5 * np.sum(_rho(residuals(res.x), ROBUST_SCALE)))  # the likelihood's part
        fits.append(res)
    fits.sort(key=lambda f: f.cost + prior_cost(f.x[0], f.x[1]) + eirp_cost(f.x[2]))
    distinct: list = []
    for f in fits:
        if all(math.hypot(f.x[0] - g.x[0], f.x[1] - g.x[1]) > 2.0 * step for g in distinct):
            distinct.append(f)
    dof = npts - 3

    def sigma_of(th: NDArray) -> float:
        """``max(sigma, s)``, ``s`` the whitened residual standard deviation at ``th``."""
        rw_ = whiten @ (p - _model_jacobian(th, x, y, n_exp)[0])
        return max(sigma, float(np.sqrt(np.sum(rw_ * rw_) / dof)) if dof > 0 else 0.0)

    def deviances(best: int, sig: float) -> NDArray:
        """Deviance of each distinct maximum from ``distinct[best]``, the likelihood's part
        on the scale ``sig``, the priors' not."""
        pos = np.array([f.cost + prior_cost(f.x[0], f.x[1]) for f in distinct])
        eirp = np.array([eirp_cost(f.x[2]) for f in distinct])
        return 2.0 * (pos - pos[best]) * (sigma / sig) ** 2 + 2.0 * (eirp - eirp[best])

    if p0_range is not None:
        # The likelihood's scale is the best maximum's sigma_eff and the EIRP prior's is
        # not: on that scale another maximum may come out more probable; it is then the best.
        for _ in range(len(distinct)):
            dv = deviances(0, sigma_of(distinct[0].x))
            k = int(np.argmin(dv))
            if dv[k] >= 0.0:
                break
            distinct.insert(0, distinct.pop(k))
    theta = distinct[0].x

    model, jac = _model_jacobian(theta, x, y, n_exp)
    r = p - model
    rms = float(np.sqrt(np.mean(r * r)))
    rw = whiten @ r
    sigma_eff = sigma_of(theta)

    def position_cov(th: NDArray) -> NDArray | None:
        """2 x 2 position block of the inverse of the posterior's information at ``th``
        (m^2): the Fisher information plus, where P0 lies beyond the EIRP prior's range,
        the prior's curvature ``w / EIRP_SOFT_DB^2`` on P0 (``w`` the soft_l1 weight
        ``1 / sqrt(1 + (e / (ROBUST_SCALE EIRP_SOFT_DB))^2)``: a P0 far beyond the range,
        where data and prior disagree, gets little of the prior's information)."""
        jw = whiten @ _model_jacobian(th, x, y, n_exp)[1]
        info = jw.T @ jw / sigma_eff**2
        if p0_range is not None:
            e = float(_eirp_excess(np.array(th[2]), *p0_range)) / EIRP_SOFT_DB
            if e > 0:
                info[2, 2] += 1.0 / (EIRP_SOFT_DB**2 * math.sqrt(1.0 + (e / ROBUST_SCALE) ** 2))
        sc = np.sqrt(np.diag(info))
        if not (np.all(sc > 0) and np.linalg.cond(info / np.outer(sc, sc)) < 1e10):
            return None
        c = (np.linalg.inv(info / np.outer(sc, sc)) / np.outer(sc, sc))[:2, :2]
        return 0.5 * (c + c.T)

    modes: list[Mode] = []
    # Other modes inside the 95 % posterior region, both under the shadowing sigma
    # (deviance <= chi2(2) 95 %) and by the F test of nonlinear least squares with sigma
    # estimated from the residuals (N - 3 dof: the sum of squares rises by at most
    # 2 s^2 F(2, N - 3)): when the residuals show cleaner data than the configured sigma,
    # the modes they rule out are not held.
    near: list[NDArray] = []
    ss_best = float(rw @ rw)
    lr_max = 2.0 * f_dist.ppf(0.95, 2, dof) * ss_best / dof if dof > 0 else math.inf
    for f, dev in zip(distinct, deviances(0, sigma_eff)):
        dev = max(float(dev), 0.0)
        if dev <= _CHI2_2_99:
            mlat, mlon = from_enu(f.x[0], f.x[1], lat0, lon0)
            modes.append(Mode(float(mlat), float(mlon), float(f.x[2]), float(dev)))
            if (f is not distinct[0] and dev <= _CHI2_2_95
                    and float(np.sum(residuals(f.x) ** 2)) * sigma**2 - ss_best <= lr_max):
                near.append(f.x)
    # Prior-data conflict: the data put P0 beyond the EIRP range and the prior pulled the
    # fit back (so also the position, towards or away from the sensors). When the
    # likelihood's own maximum of this basin lies beyond the range by more than CONFLICT_Z times
    # the spread the prior predicts there (sqrt(EIRP_SOFT_DB^2 + var P0), var P0 from the
    # likelihood's information), the prior is taken to be the wrong one (a stronger
    # transmitter than the range allows, a sensor calibrated low): the ellipse also holds
    # that maximum, as another mode's, so that a wrong prior biases the position but does
    # not make it overconfident. A maximum poorly fixed in P0 (far, on a ridge) is no conflict.
    if p0_range is not None and float(_eirp_excess(np.array(theta[2]), *p0_range)) > 0.0:
        free = least_squares(residuals, theta, jac=jacobian, loss="soft_l1", f_scale=ROBUST_SCALE, x_scale="jac")
        jw = whiten @ _model_jacobian(free.x, x, y, n_exp)[1]
        try:
            var_p0 = float(np.linalg.inv(jw.T @ jw / sigma_eff**2)[2, 2])
        except np.linalg.LinAlgError:
            var_p0 = math.inf
        excess = float(_eirp_excess(np.array(free.x[2]), *p0_range))
        if excess > CONFLICT_Z * math.sqrt(EIRP_SOFT_DB**2 + max(var_p0, 0.0)):
            near.append(free.x)

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
    eirp_prior_dbm: tuple[float, float] | None = None,
    freq_hz: float | None = None,
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
    eirp_prior_dbm : (float, float), optional
        As for :func:`locate` (dBm), with ``freq_hz`` (Hz).
    freq_hz : float, optional
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
                     shadowing_db=shadowing_db, decorrelation_m=decorrelation_m, eirp_prior_dbm=eirp_prior_dbm,
                     freq_hz=freq_hz)
        if not fix.underdetermined:
            out.append((lo + 0.5 * window_s, fix))
    return out
