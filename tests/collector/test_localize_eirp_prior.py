"""The transmit-power (EIRP) prior of the localization: seeded geometries with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.config import DEFAULT_EIRP_PRIOR, load_collector_config
from collector.localize import DEFAULT_EIRP_DBM, EIRP_SOFT_DB, eirp_prior_cost, fspl_1m_db, inside_ellipse, locate
from rfhunt.errors import ConfigError, DspError
from rfhunt.geo import from_enu, to_enu

LAT0, LON0 = 45.07, 7.68
FREQ_HZ = 947e6
N_EXP, SIGMA = 3.0, 6.0


def powers(x, y, tx_e, tx_n, eirp_dbm, noise=0.0):
    """Log-distance powers (dBm) of an emitter of ``eirp_dbm`` at 947 MHz, n = 3."""
    d = np.maximum(np.hypot(np.asarray(x) - tx_e, np.asarray(y) - tx_n), 1.0)
    return eirp_dbm - fspl_1m_db(FREQ_HZ) - 10 * N_EXP * np.log10(d) + noise


def error_m(loc, tx_e, tx_n):
    e, n = to_enu(loc.lat, loc.lon, LAT0, LON0)
    return float(np.hypot(e - tx_e, n - tx_n))


def covers(loc, tx_e, tx_n) -> bool:
    tlat, tlon = (float(v) for v in from_enu(tx_e, tx_n, LAT0, LON0))
    return bool(inside_ellipse(tlat, tlon, loc.lat, loc.lon, loc.semi_major_m, loc.semi_minor_m,
                               loc.orientation_deg))


def test_free_space_loss_at_one_metre():
    assert fspl_1m_db(947e6) == pytest.approx(31.97, abs=0.01)
    assert fspl_1m_db(100e6) == pytest.approx(12.45, abs=0.01)
    assert fspl_1m_db(1842e6) - fspl_1m_db(921e6) == pytest.approx(20 * math.log10(2))


def test_prior_cost_flat_inside_gaussian_edge_linear_tail():
    c = eirp_prior_cost(np.array([20.0, 35.0, 50.0, 50.3, 19.7, 80.0, 110.0]), (20.0, 50.0))
    assert np.all(c[:3] == 0.0)
    # just beyond an edge: Gaussian of sd EIRP_SOFT_DB
    assert c[3] == pytest.approx(0.5 * (0.3 / EIRP_SOFT_DB) ** 2, rel=1e-2)
    assert c[4] == pytest.approx(c[3], rel=1e-9)
    # far beyond: linear (30 dB more costs about 30 / (EIRP_SOFT_DB / 1.5) / 2 ... not quadratically more)
    assert c[6] - c[5] == pytest.approx(30.0 * 1.5 / EIRP_SOFT_DB, rel=0.02)


# Six fixed sensors 1-2 km around the emitter, 6 dB shadowing (drawn once, seed 11 of the
# search that found it): the likelihood has two maxima of nearly equal height, the truth
# (EIRP 45 dBm) and a far one 3.7 km away that needs 59 dBm. Without a prior the far one
# wins (by 0.09 of deviance: a coin toss); with the fake-cell range 20-50 dBm it loses.
MIRROR_X = np.array([1053.0, 781.0, 1167.0, -1620.0, -1101.0, 1359.0])
MIRROR_Y = np.array([192.0, 817.0, 1563.0, 7.0, -816.0, -658.0])
MIRROR_TX = (230.0, -310.0)
MIRROR_NOISE = np.array([-2.3, 2.8, 4.9, -1.2, -0.9, 4.1])


def test_prior_picks_the_truth_where_the_likelihood_picks_the_far_maximum():
    slat, slon = from_enu(MIRROR_X, MIRROR_Y, LAT0, LON0)
    p = powers(MIRROR_X, MIRROR_Y, *MIRROR_TX, 45.0, MIRROR_NOISE)
    free = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA)
    assert error_m(free, *MIRROR_TX) > 3000.0
    assert free.p0_dbm + fspl_1m_db(FREQ_HZ) > 55.0        # a far, strong transmitter
    assert len(free.modes) == 2
    prior = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA, eirp_prior_dbm=(20.0, 50.0),
                   freq_hz=FREQ_HZ)
    assert error_m(prior, *MIRROR_TX) < 300.0
    assert 40.0 < prior.p0_dbm + fspl_1m_db(FREQ_HZ) < 50.0
    # Both are still reported, and the far one is still inside the 95 % region (the prior
    # makes it less likely, not impossible): the ellipse holds it and the truth.
    assert len(prior.modes) == 2 and prior.modes[0].deviance == 0.0 < prior.modes[1].deviance < 6.0
    far = prior.modes[1]
    assert inside_ellipse(far.lat, far.lon, prior.lat, prior.lon, prior.semi_major_m, prior.semi_minor_m,
                          prior.orientation_deg)
    assert covers(prior, *MIRROR_TX)
    # the default gsm_downlink range (10-62 dBm, which holds legitimate macro cells) allows
    # 59 dBm: it does not decide here
    wide = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA,
                  eirp_prior_dbm=DEFAULT_EIRP_DBM["gsm_downlink"], freq_hz=FREQ_HZ)
    assert error_m(wide, *MIRROR_TX) > 3000.0


def test_implausibly_strong_far_fit_is_pulled_back():
    # Shadowing that happened to be strong at five of six sensors: the free fit puts a
    # 70 dBm transmitter 5 km out (one mode: no ambiguity reported); the prior brings the
    # position back. The data contradict the prior (70 dBm is 20 dB beyond it), so the
    # ellipse keeps holding the likelihood's maximum: the prior decides, but the region
    # does not claim a precision the powers deny.
    x = np.array([1203.0, -873.0, -1335.0, -420.0, 233.0, 1658.0])
    y = np.array([754.0, -685.0, -1435.0, -1627.0, -1177.0, -201.0])
    noise = np.array([9.3, 5.8, 13.1, 7.3, -6.1, 7.7])
    slat, slon = from_enu(x, y, LAT0, LON0)
    p = powers(x, y, 690.0, -410.0, 45.0, noise)
    free = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA)
    assert error_m(free, 690.0, -410.0) > 4000.0 and free.p0_dbm + fspl_1m_db(FREQ_HZ) > 65.0
    prior = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA, eirp_prior_dbm=(20.0, 50.0),
                   freq_hz=FREQ_HZ)
    assert error_m(prior, 690.0, -410.0) < 600.0
    assert covers(free, 690.0, -410.0) and covers(prior, 690.0, -410.0)
    assert inside_ellipse(free.lat, free.lon, prior.lat, prior.lon, prior.semi_major_m, prior.semi_minor_m,
                          prior.orientation_deg)


def test_prior_inside_its_range_changes_nothing():
    # A unimodal geometry whose fitted EIRP lies well inside the range: the prior is flat
    # there, the position and the ellipse are the likelihood's.
    gx, gy = np.meshgrid([-1500.0, 0.0, 1500.0], [-1500.0, 0.0, 1500.0])
    x, y = gx.ravel(), gy.ravel()
    slat, slon = from_enu(x, y, LAT0, LON0)
    p = powers(x, y, 300.0, -200.0, 35.0, np.random.default_rng(5).normal(0.0, SIGMA, x.size))
    free = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA)
    prior = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA, eirp_prior_dbm=(20.0, 50.0),
                   freq_hz=FREQ_HZ)
    assert 25.0 < free.p0_dbm + fspl_1m_db(FREQ_HZ) < 45.0
    assert (prior.lat, prior.lon) == pytest.approx((free.lat, free.lon), abs=1e-7)
    assert prior.semi_major_m == pytest.approx(free.semi_major_m, rel=1e-6)
    assert prior.semi_minor_m == pytest.approx(free.semi_minor_m, rel=1e-6)


def _coverage(true_eirp: float, prior: tuple[float, float] | None, trials: int, seed: int) -> tuple[float, float]:
    """Share of trials whose 95 % ellipse holds the truth, and the median error (m): six
    fixed sensors 1-2 km out, 6 dB shadowing, a new geometry every trial."""
    rng = np.random.default_rng(seed)
    hit, errs = 0, []
    for _ in range(trials):
        ang = np.sort(rng.uniform(0, 2 * np.pi, 6))
        r = rng.uniform(1000, 2000, 6)
        x, y = r * np.cos(ang), r * np.sin(ang)
        tx = rng.uniform(-700, 700, 2)
        slat, slon = from_enu(x, y, LAT0, LON0)
        p = powers(x, y, *tx, true_eirp, rng.normal(0.0, SIGMA, 6))
        loc = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA, eirp_prior_dbm=prior,
                     freq_hz=FREQ_HZ)
        hit += covers(loc, *tx)
        errs.append(error_m(loc, *tx))
    return hit / trials, float(np.median(errs))


@pytest.mark.parametrize("true_eirp", [50.0, 65.0])
def test_a_wrong_prior_does_not_make_the_ellipse_overconfident(true_eirp):
    # The prior says 20-50 dBm; the truth sits at its edge, or 15 dB beyond it (a stronger
    # transmitter than the operator thought, or a sensor calibrated 15 dB low). The fit is
    # pulled towards the range (closer to the sensors), but the prior's information is
    # weighed down where data and prior disagree (soft_l1), and the coverage stays near
    # that of the free fit.
    free_cov, free_err = _coverage(true_eirp, None, 120, 8)
    cov, err = _coverage(true_eirp, (20.0, 50.0), 120, 8)
    assert free_cov >= 0.88
    assert cov >= 0.85
    assert err < 1.5 * free_err


def test_bad_prior_raises():
    args = dict(lat=[45.0, 45.01, 45.02], lon=[7.0, 7.01, 7.0], power_dbm=[-60.0, -70.0, -65.0],
                path_loss_exponent=3.0, shadowing_db=6.0)
    with pytest.raises(DspError, match="freq_hz"):
        locate(**args, eirp_prior_dbm=(20.0, 50.0))
    with pytest.raises(DspError, match="low < high"):
        locate(**args, eirp_prior_dbm=(50.0, 20.0), freq_hz=FREQ_HZ)
    with pytest.raises(DspError, match="low < high"):
        locate(**args, eirp_prior_dbm=(math.nan, 20.0), freq_hz=FREQ_HZ)
    with pytest.raises(DspError, match="eirp_prior_dbm"):
        locate(**args, eirp_prior_dbm=(20.0,), freq_hz=FREQ_HZ)


def _config(tmp_path, body: str):
    path = tmp_path / "c.toml"
    path.write_text("[localization]\n" + body + "\n", encoding="utf-8")
    return load_collector_config(path)


def test_config_eirp_ranges(tmp_path):
    assert load_collector_config(None).eirp_dbm == DEFAULT_EIRP_PRIOR
    cfg = _config(tmp_path, "eirp_dbm = { gsm_downlink = [20, 50.5], gsm_uplink = true, fm = false }")
    assert cfg.eirp_dbm == {"gsm_downlink": (20.0, 50.5), "gsm_uplink": DEFAULT_EIRP_DBM["gsm_uplink"], "fm": None}
    cfg = _config(tmp_path, "eirp_dbm = { fm = [30, 66] }")
    assert cfg.eirp_dbm == {**DEFAULT_EIRP_PRIOR, "fm": (30.0, 66.0)}


@pytest.mark.parametrize("body, message", [
    ("eirp_dbm = [20, 50]", r"\[localization\] eirp_dbm must be a table"),
    ("eirp_dbm = { lte = [20, 50] }", r"eirp_dbm: unknown key 'lte'"),
    ("eirp_dbm = { gsm_uplink = [33] }", r"eirp_dbm\.gsm_uplink must be \[low, high\]"),
    ("eirp_dbm = { gsm_uplink = [0, 'x'] }", r"eirp_dbm\.gsm_uplink must be \[low, high\]"),
    ("eirp_dbm = { gsm_uplink = [true, 33] }", r"eirp_dbm\.gsm_uplink must be \[low, high\]"),
    ("eirp_dbm = { fm = [70, 20] }", r"eirp_dbm\.fm must have low < high"),
    ("eirp_dbm = { fm = [20, 200] }", r"eirp_dbm\.fm must lie within"),
    ("eirp_dbm = { fm = [nan, 20] }", r"eirp_dbm\.fm must be \[low, high\]"),
])
def test_config_eirp_errors_name_the_key(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, body)


def test_service_passes_the_kinds_prior_and_frequency(tmp_path, monkeypatch):
    import collector.service as service
    from collector.association import associate
    from collector.config import CollectorConfig
    from collector.store import Store
    from rfhunt.records import Detection

    calls = []
    real = service.locate
    monkeypatch.setattr(service, "locate", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    x, y = MIRROR_X, MIRROR_Y
    slat, slon = from_enu(x, y, LAT0, LON0)
    p = powers(x, y, *MIRROR_TX, 45.0, MIRROR_NOISE)
    dets = [Detection(f"n{i}", 1, 1.75e9 + i, float(slat[i]), float(slon[i]), "gsm_downlink", FREQ_HZ, 62, 200e3,
                      float(p[i]), 20.0) for i in range(x.size)]
    for eirp, off_by_m in (((20.0, 50.0), 300.0), (None, None)):
        cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / f'c{eirp is None}.db'}",
                              eirp_dbm={**DEFAULT_EIRP_PRIOR, "gsm_downlink": eirp})
        with Store.open(cfg.db_url) as store:
            store.add_batch(dets)
            (eid,) = associate(store)
            calls.clear()
            located, failed = service.relocate_emitters(store, cfg, [eid])
            assert located == {eid} and failed == {}
            assert calls[0]["eirp_prior_dbm"] == eirp and calls[0]["freq_hz"] == FREQ_HZ
            em = store.emitter(eid)
            e, n = to_enu(em.lat, em.lon, LAT0, LON0)
            err = math.hypot(e - MIRROR_TX[0], n - MIRROR_TX[1])
            assert err < off_by_m if off_by_m else err > 3000.0


def test_mirror_across_a_street_is_not_broken_by_the_prior():
    # A drive along an L-shaped route, the emitter 1.6 km north of its 8 km leg: the mirror
    # image across that leg has the same distances to it, hence nearly the same P0 (2.7 dB
    # more, for the short leg), and even the EIRP known to +-3 dB leaves that mode as it is.
    rng = np.random.default_rng(7)
    route = np.vstack([np.column_stack([np.linspace(-4000, 4000, 400), np.full(400, -1000.0)]),
                       np.column_stack([np.full(200, 4000.0), np.linspace(-1000, 3000, 200)])])
    slat, slon = from_enu(route[:, 0], route[:, 1], LAT0, LON0)
    true_eirp = 20.0 + fspl_1m_db(FREQ_HZ)
    p = powers(route[:, 0], route[:, 1], 500.0, 600.0, true_eirp, rng.normal(0, 6.0, len(route)))
    free = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA)
    known = locate(slat, slon, p, path_loss_exponent=N_EXP, shadowing_db=SIGMA,
                   eirp_prior_dbm=(true_eirp - 3.0, true_eirp + 3.0), freq_hz=FREQ_HZ)
    assert error_m(free, 500.0, 600.0) < 200.0 and error_m(known, 500.0, 600.0) < 200.0
    for loc in (free, known):
        assert len(loc.modes) == 2
        me, mn = to_enu(loc.modes[1].lat, loc.modes[1].lon, LAT0, LON0)
        assert math.hypot(me - 500.0, mn - (-2000.0 - 600.0)) < 600.0   # the mirror image
        assert abs(loc.modes[1].p0_dbm - loc.modes[0].p0_dbm) < 4.0
    assert known.modes[1].deviance == pytest.approx(free.modes[1].deviance, abs=0.1)
