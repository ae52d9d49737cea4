"""Localisation from received power with unknown transmit power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.localize import ellipse_points, inside_ellipse, locate
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
    se, sn = ring(5, 2000.0)
    slat, slon = from_enu(se, sn, LAT0, LON0)
    tx_e, tx_n = 300.0, -200.0
    tlat, tlon = (float(v) for v in from_enu(tx_e, tx_n, LAT0, LON0))
    errors, covered, trials = [], 0, 300
    for _ in range(trials):
        p = powers(se, sn, tx_e, tx_n, noise=rng.normal(0.0, 4.0, se.size))
        loc = locate(slat, slon, p, path_loss_exponent=3.0, shadowing_db=4.0)
        errors.append(error_m(loc, tx_e, tx_n))
        if loc.semi_major_m is not None:
            covered += inside_ellipse(tlat, tlon, loc.lat, loc.lon, loc.semi_major_m, loc.semi_minor_m,
                                      loc.orientation_deg)
    # 4 dB shadowing with n = 3 is ~30 % range error per sensor; 5 sensors 2 km out.
    assert np.median(errors) < 800.0
    assert 0.85 <= covered / trials <= 0.99


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
