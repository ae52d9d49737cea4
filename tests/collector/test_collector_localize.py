"""Localisation from received power with unknown transmit power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.localize import _cell_mean_correlation, ellipse_points, inside_ellipse, locate, track
from rfhunt.errors import DspError
from rfhunt.geo import from_enu, to_enu

LAT0, LON0 = 45.07, 7.68


def powers(se, sn, tx_e, tx_n, p0=30.0, n=3.0, noise=None):
    d = np.maximum(np.hypot(np.asarray(se) - tx_e, np.asarray(sn) - tx_n), 1.0)
    p = p0 - 10 * n * np.log10(d)
    return p if noise is None else p + noise


def ring(n=5, radius=2000.0):
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return radius * np.cos(ang), radius * np.sin(ang)


def error_m(loc, tx_e, tx_n):
    e, n = to_enu(loc.lat, loc.lon, LAT0, LON0)
    return float(np.hypot(e - tx_e, n - tx_n))


def test_enu_scale_matches_known_distance():
    # One degree of latitude at 45 deg is 111132 m on WGS84.
    _, north = to_enu(45.5, 7.0, 44.5, 7.0)
    assert north == pytest.approx(111_132, rel=2e-3)


def test_noiseless_fixed_sensors_exact():
    se, sn = ring(5)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    loc = locate(slat, slon, powers(se, sn, 300.0, -200.0), path_loss_exponent=3.0, shadowing_db=4.0)
    assert not loc.underdetermined and loc.n_points == 5
    assert error_m(loc, 300.0, -200.0) < 1.0
    assert loc.p0_dbm == pytest.approx(30.0, abs=1e-3)
    assert loc.rms_residual_db < 1e-3
    assert loc.semi_minor_m <= loc.semi_major_m and 0 <= loc.orientation_deg < 180


def test_monte_carlo_accuracy_and_ellipse_coverage():
    rng = np.random.default_rng(20261124)
    # Five sensors at unequal ranges (on one circle the likelihood has an exact second
    # maximum, see test_sensors_on_a_circle_report_the_inverse_image).
    ang = np.linspace(0, 2 * np.pi, 5, endpoint=False) + 0.3
    rad = np.array([1400.0, 2600.0, 1800.0, 2200.0, 1200.0])
    se, sn = rad * np.cos(ang), rad * np.sin(ang)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    tx_e, tx_n = 300.0, -200.0
    tlat, tlon = (float(v) for v in from_enu(tx_e, tx_n, LAT0, LON0))
    errors, covered, trials = [], 0, 200
    for _ in range(trials):
        p = powers(se, sn, tx_e, tx_n, noise=rng.normal(0.0, 4.0, se.size))
        loc = locate(slat, slon, p, path_loss_exponent=3.0, shadowing_db=4.0)
        errors.append(error_m(loc, tx_e, tx_n))
        if loc.semi_major_m is not None:
            covered += inside_ellipse(tlat, tlon, loc.lat, loc.lon, loc.semi_major_m, loc.semi_minor_m,
                                      loc.orientation_deg)
    # 4 dB shadowing with n = 3 is ~30 % range error per sensor; 5 sensors 1-3 km out.
    assert np.median(errors) < 800.0
    assert 0.88 <= covered / trials <= 0.99


def test_sensors_on_a_circle_report_the_inverse_image():
    # With P0 unknown only distance ratios count, and for sensors on a circle of radius R
    # the point q and its inverse image q R^2 / |q|^2 have the same ratios to every sensor.
    se, sn = ring(5, 2000.0)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    loc = locate(slat, slon, powers(se, sn, 300.0, -200.0), path_loss_exponent=3.0, shadowing_db=4.0)
    assert len(loc.modes) == 2
    best, other = loc.modes
    assert (best.lat, best.lon) == (loc.lat, loc.lon) and best.deviance == 0.0
    assert error_m(loc, 300.0, -200.0) < 1.0  # the weak prior picks the one among the sensors
    k = 2000.0**2 / (300.0**2 + 200.0**2)
    oe, on = to_enu(other.lat, other.lon, LAT0, LON0)
    assert math.hypot(oe - 300.0 * k, on + 200.0 * k) < 0.02 * 300.0 * k
    # same likelihood: the deviance is the weak prior's alone, well inside the 95 % region
    assert 0.0 < other.deviance < 6.0
    assert other.p0_dbm == pytest.approx(30.0 + 30.0 * math.log10(math.sqrt(k)), abs=0.1)  # distances x R/|q|
    # the 95 % ellipse holds both: the powers cannot tell them apart
    assert inside_ellipse(other.lat, other.lon, loc.lat, loc.lon, loc.semi_major_m, loc.semi_minor_m,
                          loc.orientation_deg)


def test_sensors_around_the_emitter_one_mode():
    gx, gy = np.meshgrid([-1500.0, 0.0, 1500.0], [-1500.0, 0.0, 1500.0])
    slat, slon = from_enu(gx.ravel(), gy.ravel(), LAT0, LON0)
    loc = locate(slat, slon, powers(gx.ravel(), gy.ravel(), 300.0, -200.0), path_loss_exponent=3.0,
                 shadowing_db=6.0)
    assert loc.modes == ()
    assert error_m(loc, 300.0, -200.0) < 1.0


def test_cell_means_keep_the_shadowing_correlation():
    # Five points 10 m apart in one 50 m cell, and one 100 m further: the covariance of
    # the means is A K A^T of the point correlation exp(-d / 50 m).
    xr = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 140.0])
    inverse = np.array([0, 0, 0, 0, 0, 1])
    c = _cell_mean_correlation(xr, np.zeros(6), inverse, 2, 50.0)
    lag = np.abs(xr[:5, None] - xr[None, :5])
    assert c[0, 0] == pytest.approx(np.mean(np.exp(-lag / 50.0)))  # 0.747: less than one point
    assert c[1, 1] == pytest.approx(1.0)
    assert c[0, 1] == pytest.approx(np.mean(np.exp(-(140.0 - xr[:5]) / 50.0)))
    assert c[0, 1] > math.exp(-(140.0 - 20.0) / 50.0)  # more than between the centroids


def test_mobile_route_hundreds_of_points():
    rng = np.random.default_rng(7)
    # A drive along an L-shaped route passing ~1 km from the transmitter, a point every 20 m.
    leg1 = np.column_stack([np.linspace(-4000, 4000, 400), np.full(400, -1000.0)])
    leg2 = np.column_stack([np.full(200, 4000.0), np.linspace(-1000, 3000, 200)])
    route = np.vstack([leg1, leg2])
    tx_e, tx_n = 500.0, 600.0
    slat, slon = from_enu(route[:, 0], route[:, 1], LAT0, LON0)
    p = powers(route[:, 0], route[:, 1], tx_e, tx_n, p0=20.0, n=3.0, noise=rng.normal(0, 6.0, len(route)))
    every = locate(slat, slon, p, path_loss_exponent=3.0, shadowing_db=6.0, decorrelation_m=0.0)
    assert every.n_points == len(np.unique(route, axis=0)) == 599  # the corner is visited twice
    loc = locate(slat, slon, p, path_loss_exponent=3.0, shadowing_db=6.0)
    # points 20 m apart share one shadowing draw per 50 m cell: 12 km of route -> about 240 cells
    assert 200 <= loc.n_points <= 260
    assert loc.semi_major_m > every.semi_major_m
    assert error_m(loc, tx_e, tx_n) < 300.0
    # The long leg leaves the side of the street nearly open: the mirror image across it
    # (1.6 km the other side) is a second maximum of the likelihood, reported as a mode.
    # (The residuals rule it out at 95 % by the F test, so the ellipse does not hold it.)
    assert len(loc.modes) == 2
    me, mn = to_enu(loc.modes[1].lat, loc.modes[1].lon, LAT0, LON0)
    assert math.hypot(me - tx_e, mn - (-2000.0 - tx_n)) < 600.0
    assert loc.modes[1].deviance < 9.3
    assert loc.semi_major_m < 1000.0
    tlat, tlon = from_enu(tx_e, tx_n, LAT0, LON0)
    assert inside_ellipse(float(tlat), float(tlon), loc.lat, loc.lon, loc.semi_major_m, loc.semi_minor_m,
                          loc.orientation_deg)


def test_repeated_reports_from_one_position_count_once():
    se, sn = ring(4, 1500.0)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    p = powers(se, sn, 100.0, 100.0)
    rng = np.random.default_rng(3)
    lat = np.repeat(slat, 50)
    lon = np.repeat(slon, 50)
    pw = np.repeat(p, 50) + rng.normal(0, 1.0, lat.size)
    once = locate(slat, slon, p, path_loss_exponent=3.0, shadowing_db=6.0)
    many = locate(lat, lon, pw, path_loss_exponent=3.0, shadowing_db=6.0)
    assert many.n_points == 4
    assert error_m(many, 100.0, 100.0) < 50.0
    # Shadowing is per position: fifty reports do not shrink the ellipse sqrt(50)-fold.
    assert many.semi_major_m == pytest.approx(once.semi_major_m, rel=0.1)


@pytest.mark.parametrize("n_positions", [1, 2])
def test_underdetermined(n_positions):
    lat = [45.0, 45.01][:n_positions] * 3
    lon = [7.0, 7.01][:n_positions] * 3
    p = [-60.0, -50.0][:n_positions] * 3
    loc = locate(lat, lon, p, path_loss_exponent=3.0, shadowing_db=6.0)
    assert loc.underdetermined and loc.semi_major_m is None and loc.p0_dbm is None
    assert (loc.lat, loc.lon) == pytest.approx((lat[n_positions - 1], lon[n_positions - 1]))  # the strongest


def test_bad_input():
    with pytest.raises(DspError):
        locate([], [], [], path_loss_exponent=3.0, shadowing_db=6.0)
    with pytest.raises(DspError):
        locate([1.0, 2.0], [1.0], [1.0], path_loss_exponent=3.0, shadowing_db=6.0)
    with pytest.raises(DspError):
        locate([1.0], [1.0], [math.nan], path_loss_exponent=3.0, shadowing_db=6.0)
    with pytest.raises(DspError):
        locate([1.0], [1.0], [1.0], path_loss_exponent=0.0, shadowing_db=6.0)


def test_ellipse_points_closed_lat_lon_and_oriented():
    pts = ellipse_points(45.0, 7.0, 1000.0, 200.0, 90.0, n=36)
    assert pts[0] == pts[-1] and len(pts) == 37
    e, n = to_enu([p[0] for p in pts], [p[1] for p in pts], 45.0, 7.0)
    assert np.max(np.abs(e)) == pytest.approx(1000.0, rel=1e-3)  # major axis points east
    assert np.max(np.abs(n)) == pytest.approx(200.0, rel=1e-3)
    assert all(44.9 < p[0] < 45.1 and 6.9 < p[1] < 7.1 for p in pts)  # (lat, lon) order
    assert inside_ellipse(45.0, 7.0 + 0.01, 45.0, 7.0, 1000.0, 200.0, 90.0)  # ~790 m east
    assert not inside_ellipse(45.0 + 0.005, 7.0, 45.0, 7.0, 1000.0, 200.0, 90.0)  # ~555 m north


def test_track_moving_emitter_one_fix_per_window():
    ang = np.array([0.1, 1.5, 2.2, 3.9, 5.0, 5.8])
    rad = np.array([1400.0, 2600.0, 1800.0, 2200.0, 1200.0, 2000.0])
    se, sn = rad * np.cos(ang), rad * np.sin(ang)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    path = [(-600.0, -300.0), (0.0, 0.0), (600.0, 300.0)]  # one position per 120 s
    t, lat, lon, pw = [], [], [], []
    for w, (e, n) in enumerate(path):
        for k in range(4):  # every sensor reports 4 times per window
            t += list(1.7e9 + 120.0 * w + 30.0 * k + np.arange(se.size))
            lat += list(slat)
            lon += list(slon)
            pw += list(powers(se, sn, e, n))
    t.append(1.7e9 + 500.0)  # one lone report in a 4th window: not a fix
    lat.append(slat[0])
    lon.append(slon[0])
    pw.append(-60.0)
    order = np.random.default_rng(1).permutation(len(t))  # any order
    fixes = track(np.array(t)[order], np.array(lat)[order], np.array(lon)[order], np.array(pw)[order],
                  path_loss_exponent=3.0, shadowing_db=6.0, window_s=120.0)
    assert [f[0] for f in fixes] == pytest.approx([1.7e9 + 60.0, 1.7e9 + 180.0, 1.7e9 + 300.0])
    for (_, fix), (e, n) in zip(fixes, path):
        assert error_m(fix, e, n) < 1.0
    overlapping = track(t, lat, lon, pw, path_loss_exponent=3.0, shadowing_db=6.0, window_s=120.0, step_s=60.0)
    # windows starting at 0, 60, ..., 300 s (the last holds the 3rd window's last reports);
    # from 360 s on at most the lone report
    assert [f[0] for f in overlapping] == pytest.approx([1.7e9 + 60.0 * k + 60.0 for k in range(6)])
    assert track([], [], [], [], path_loss_exponent=3.0, shadowing_db=6.0) == []


def test_track_bad_input():
    with pytest.raises(DspError):
        track([1.0, 2.0], [1.0], [1.0], [1.0], path_loss_exponent=3.0, shadowing_db=6.0)
    with pytest.raises(DspError):
        track([1.0], [1.0], [1.0], [1.0], path_loss_exponent=3.0, shadowing_db=6.0, window_s=0.0)
    with pytest.raises(DspError):
        track([math.nan], [1.0], [1.0], [1.0], path_loss_exponent=3.0, shadowing_db=6.0)
