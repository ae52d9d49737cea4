"""Localization against the physical limit (issue 8): Monte Carlo over simulated geometries,
RMSE and CEP50/CEP95 of :func:`collector.localize.locate` against the Cramér–Rao bound of
each geometry and shadowing, the coverage of its 95 % ellipse, and the baseline open
fake-base-station hunters use (unweighted least squares on free-space distances).

Run: .venv/bin/python bench/bench_locate.py [--quick] [--only main|edge|extra]

Model of the truth: log-distance path loss with exponent n = 3.0 (known to the estimator),
an unknown transmit power, log-normal shadowing of sigma = 6 dB, independent between fixed
sensors 1-2 km apart, and along a drive-by route correlated with distance (Gudmundson:
exp(-d / 50 m)). The bound is that of (x, y, P0) with P0 unknown, the shadowing covariance
included: ``CRB = (J^T Sigma^-1 J)^-1``, position part ``sqrt(trace of its 2x2 block)``.
Each configuration draws several geometries and many shadowing draws per geometry; the
ratio RMSE / bound is taken per geometry and its median reported. Nothing asserts; the
script prints figures.

Where the bound cannot be reached, the script says why: "multi" is the share of trials
whose likelihood had several plausible maxima (``Location.modes``), "best-of modes" the
RMSE / bound had an oracle picked the reported mode nearest the truth, and "genie local"
that of the Gaussian maximum-likelihood fit started at the truth (a local estimator, not
a usable one). Extra rows (more sensors, less shadowing) show the threshold effect: the
same estimator as the evidence grows.

Transmit-power prior (issue 8): every configuration runs the estimator twice on the same
draws, without and with an EIRP prior (``locate(eirp_prior_dbm=...)``). The true EIRP of
each trial is drawn from the prior's own density (:class:`EirpDraw`: uniform in dB over the
range, soft flanks beyond), so the prior is right in distribution, and beside the CRB the
script reports the Bayesian (Van Trees) bound ``BCRB = (FIM + J_prior e3 e3^T)^-1`` whose
``J_prior`` is that density's Fisher information: the bound an estimator that knows the
prior can aim at. Ranges: the default gsm_downlink range (10-62 dBm: macro cells
included), a fake-cell hunter's (20-50 dBm) and an EIRP known to +-3 dB (40-46 dBm); then
a wrong prior (20-50 dBm with the truth fixed at 50, 56 and 65 dBm). "far" is the share of
trials more than 3 CRB off: the wrong maximum. The baseline keeps its nominal 43 dBm.
"""

from __future__ import annotations

import argparse
import math
import os
import platform

import numpy as np
from scipy.optimize import least_squares

from collector.localize import DEFAULT_EIRP_DBM, eirp_prior_cost, fspl_1m_db, inside_ellipse, locate
from rfhunt.geo import from_enu, to_enu

LAT0, LON0 = 22.54, 114.05
N_EXP = 3.0
SIGMA_DB = 6.0
DECORR_M = 50.0
EIRP_DBM = 43.0
FREQ_HZ = 947e6
P0_DBM = EIRP_DBM - fspl_1m_db(FREQ_HZ)  # power 1 m away


def crb_position(x, y, ex, ey, cov) -> float:
    """sqrt(trace) of the position block of the CRB of (x, y, P0)."""
    d = np.maximum(np.hypot(ex - x, ey - y), 1.0)
    k = 10 * N_EXP / math.log(10)
    # d(P_i)/d(ex) = -k (ex - x_i) / d_i^2 ; d/dP0 = 1
    jac = np.stack((-k * (ex - x) / d**2, -k * (ey - y) / d**2, np.ones_like(x)), axis=1)
    fim = jac.T @ np.linalg.solve(cov, jac)
    inv = np.linalg.inv(fim)
    return float(math.sqrt(inv[0, 0] + inv[1, 1]))


def powers(rng, x, y, ex, ey, chol, p0_dbm: float = P0_DBM) -> np.ndarray:
    """Received powers (dBm): P0 (power 1 m away, dBm) less the log-distance loss, plus shadowing."""
    d = np.maximum(np.hypot(ex - x, ey - y), 1.0)
    return p0_dbm - 10 * N_EXP * np.log10(d) + chol @ rng.standard_normal(x.size)


def genie_local_mle(x, y, p, cov, ex, ey, p0_dbm: float = P0_DBM) -> tuple[float, float]:
    """Not an estimator: the Gaussian maximum-likelihood fit of (x, y, P0) on all the points
    with the true shadowing covariance, started at the truth, so it stays in the truth's
    basin of the likelihood. Its RMSE is what the bound describes once the global
    ambiguities (a far position explaining the powers as well) are taken away by an oracle."""
    whiten = np.linalg.inv(np.linalg.cholesky(cov))
    k = 10 * N_EXP / math.log(10)

    def res(q):
        d = np.maximum(np.hypot(q[0] - x, q[1] - y), 1.0)
        return whiten @ (p - (q[2] - 10 * N_EXP * np.log10(d)))

    def jac(q):
        d2 = np.maximum((q[0] - x) ** 2 + (q[1] - y) ** 2, 1.0)
        j = np.stack((-k * (q[0] - x) / d2, -k * (q[1] - y) / d2, np.ones_like(x)), axis=1)
        return -whiten @ j

    out = least_squares(res, np.array([ex, ey, p0_dbm]), jac=jac, x_scale="jac")
    return float(out.x[0]), float(out.x[1])


def baseline_free_space(x, y, p) -> tuple[float, float]:
    """Open hunters' way: distance from free-space path loss of a nominal BTS EIRP, then
    unweighted least squares on those distances, started at the strongest sensor."""
    d = 10 ** ((P0_DBM - p) / 20.0)  # free space: n = 2
    i = int(np.argmax(p))
    res = least_squares(lambda q: np.hypot(q[0] - x, q[1] - y) - d, np.array([x[i] + 1.0, y[i] + 1.0]))
    return float(res.x[0]), float(res.x[1])


def geometry_fixed(rng, k: int):
    """k rooftop sensors on a ring of 1-2 km around the area's centre, the emitter inside."""
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    r = rng.uniform(1000, 2000, k)
    x, y = r * np.cos(ang), r * np.sin(ang)
    ex, ey = rng.uniform(-700, 700, 2)
    return x, y, ex, ey, SIGMA_DB**2 * np.eye(k)


def geometry_drive(rng):
    """A car driving 3 km past the emitter on two streets at right angles (1.5 km each, the
    corner 150-500 m from the emitter; one straight street alone leaves the emitter's side
    of it undecided), one measurement every 10 m (300 points), shadowing correlated along
    the route."""
    s = np.arange(0.0, 3000.0, 10.0)
    leg = s < 1500.0
    x0 = np.where(leg, s - 1500.0, 0.0)
    y0 = np.where(leg, 0.0, s - 1500.0)
    heading = rng.uniform(0, 2 * np.pi)
    c, sn = np.cos(heading), np.sin(heading)
    x, y = c * x0 - sn * y0, sn * x0 + c * y0
    # The emitter in the quadrant the two streets bound (x < 0, y > 0 before rotation).
    r, b = rng.uniform(150, 500), rng.uniform(np.pi / 8, 3 * np.pi / 8)
    ex0, ey0 = -r * np.cos(b), r * np.sin(b)
    ex, ey = c * ex0 - sn * ey0, sn * ex0 + c * ey0
    dist = np.abs(s[:, None] - s[None, :])  # along the route
    return x, y, ex, ey, SIGMA_DB**2 * np.exp(-dist / DECORR_M)


def crb_drive_averaged(x, y, ex, ey) -> float:
    """Bound for the estimator's own data: it averages the points of each 50 m cell into
    one (and counts it once), so the bound is the CRB of those cell means under the same
    correlated shadowing."""
    cell = np.floor(np.arange(x.size) * 10.0 / DECORR_M).astype(int)
    groups = [np.flatnonzero(cell == c) for c in np.unique(cell)]
    a = np.zeros((len(groups), x.size))
    for i, g in enumerate(groups):
        a[i, g] = 1.0 / g.size
    t = np.arange(x.size) * 10.0
    cov = SIGMA_DB**2 * np.exp(-np.abs(t[:, None] - t[None, :]) / DECORR_M)
    xm, ym = a @ x, a @ y
    return crb_position(xm, ym, ex, ey, a @ cov @ a.T)


def crb_matrix(x, y, ex, ey, cov) -> np.ndarray:
    """Fisher information of (x, y, P0), per m^2 / m dB / dB^2 (it does not depend on P0)."""
    d = np.maximum(np.hypot(ex - x, ey - y), 1.0)
    k = 10 * N_EXP / math.log(10)
    jac = np.stack((-k * (ex - x) / d**2, -k * (ey - y) / d**2, np.ones_like(x)), axis=1)
    return jac.T @ np.linalg.solve(cov, jac)


def bayes_bound(fim: np.ndarray, prior_info_db2: float) -> float:
    """Van Trees (Bayesian) bound of the position: sqrt(trace) of the 2x2 block of
    ``(FIM + diag(0, 0, J_prior))^-1``, ``J_prior`` the Fisher information (1/dB^2) of the
    density the true P0 is drawn from. The FIM does not depend on P0, so its average over
    the draws is itself."""
    inv = np.linalg.inv(fim + np.diag([0.0, 0.0, prior_info_db2]))
    return float(math.sqrt(inv[0, 0] + inv[1, 1]))


class EirpDraw:
    """True EIRPs drawn from the EIRP prior's own density, ``exp(-eirp_prior_cost)``:
    uniform in dB across the range (nothing makes one power of a kind's range likelier
    than another: amplifier, antenna and clutter vary) with the soft, robust flanks beyond
    it (outside the range: 14 % of the draws for 10-62 dBm, 22 % for 20-50, 58 % for
    40-46; more than 3 dB outside: 6, 9, 23 %). The estimator's prior is then
    the truth's distribution, the case a Bayesian bound describes; ``fisher_db2`` is that
    density's Fisher information (1/dB^2) for the Van Trees bound. With ``fixed`` every
    draw is that EIRP (a prior that may be wrong; no Bayesian bound)."""

    def __init__(self, rng_dbm: tuple[float, float], fixed: float | None = None) -> None:
        self.range, self.fixed = rng_dbm, fixed
        e = np.arange(rng_dbm[0] - 80.0, rng_dbm[1] + 80.0, 0.005)
        cost = eirp_prior_cost(e, rng_dbm)
        pdf = np.exp(-cost)
        pdf /= np.trapezoid(pdf, e)
        self.fisher_db2 = float(np.trapezoid(np.gradient(cost, e) ** 2 * pdf, e))
        cdf = np.cumsum(pdf)
        self._e, self._cdf = e, cdf / cdf[-1]

    def __call__(self, rng) -> float:
        if self.fixed is not None:
            return float(self.fixed)
        return float(np.interp(rng.uniform(), self._cdf, self._e))


def run(label: str, make, n_geo: int, n_draw: int, rng, sigma_db: float = SIGMA_DB,
        prior: tuple[float, float] | None = None, draw: EirpDraw | None = None) -> None:
    """One configuration: ``n_geo`` geometries x ``n_draw`` shadowing draws, the estimator
    without and (with ``prior``, dBm) with the EIRP prior on the same draws; true EIRPs
    from ``draw`` (default: the nominal 43 dBm)."""
    keys = ("none",) + (("prior",) if prior else ())
    ratio = {k: [] for k in keys}
    ratio_b = {k: [] for k in keys}
    ratio_mode = {k: [] for k in keys}
    cover = {k: [] for k in keys}
    errs = {k: [] for k in keys}
    multi = {k: [] for k in keys}
    far = {k: [] for k in keys}
    ratios_base, ratios_genie, errs_base, bounds, bbounds = [], [], [], [], []
    rms = lambda v: math.sqrt(np.mean(np.square(v)))  # noqa: E731
    loss = fspl_1m_db(FREQ_HZ)
    for _ in range(n_geo):
        x, y, ex, ey, cov = make(rng)
        cov = cov * (sigma_db / SIGMA_DB) ** 2
        chol = np.linalg.cholesky(cov)
        fim = crb_matrix(x, y, ex, ey, cov)
        bound = bayes_bound(fim, 0.0)
        bbound = bayes_bound(fim, draw.fisher_db2) if draw is not None and draw.fixed is None else bound
        e_geo = {k: [] for k in keys}
        em_geo = {k: [] for k in keys}
        eb_geo, eg_geo = [], []
        lat, lon = from_enu(x, y, LAT0, LON0)
        elat, elon = from_enu(ex, ey, LAT0, LON0)
        for _ in range(n_draw):
            p0 = (draw(rng) if draw is not None else EIRP_DBM) - loss
            p = powers(rng, x, y, ex, ey, chol, p0)
            for k in keys:
                loc = locate(lat, lon, p, path_loss_exponent=N_EXP, shadowing_db=sigma_db, decorrelation_m=DECORR_M,
                             eirp_prior_dbm=prior if k == "prior" else None, freq_hz=FREQ_HZ)
                px, py = to_enu(loc.lat, loc.lon, LAT0, LON0)
                e = float(math.hypot(px - ex, py - ey))
                e_geo[k].append(e)
                multi[k].append(len(loc.modes) > 1)
                far[k].append(e > 3.0 * bound)
                em = e  # oracle choice among the reported modes: how much of the error is the choice
                for m in loc.modes:
                    mx, my = to_enu(m.lat, m.lon, LAT0, LON0)
                    em = min(em, float(math.hypot(mx - ex, my - ey)))
                em_geo[k].append(em)
                if loc.semi_major_m is not None:
                    cover[k].append(bool(inside_ellipse(elat, elon, loc.lat, loc.lon, loc.semi_major_m,
                                                        loc.semi_minor_m, loc.orientation_deg)))
            bx, by = baseline_free_space(x, y, p)
            eb_geo.append(float(math.hypot(bx - ex, by - ey)))
            gx, gy = genie_local_mle(x, y, p, cov, ex, ey, p0)
            eg_geo.append(float(math.hypot(gx - ex, gy - ey)))
        for k in keys:
            ratio[k].append(rms(e_geo[k]) / bound)
            ratio_b[k].append(rms(e_geo[k]) / bbound)
            ratio_mode[k].append(rms(em_geo[k]) / bound)
            errs[k] += e_geo[k]
        ratios_base.append(rms(eb_geo) / bound)
        ratios_genie.append(rms(eg_geo) / bound)
        errs_base += eb_geo
        bounds.append(bound)
        bbounds.append(bbound)
    for k in keys:
        name = label if k == "none" else f"  with EIRP prior {prior[0]:g}-{prior[1]:g} dBm"
        tail = (f"{np.median(ratios_genie):>6.2f} | {np.median(ratios_base):>8.2f} "
                f"{np.percentile(errs_base, 50):>6.0f} {np.percentile(errs_base, 95):>6.0f}") if k == "none" else ""
        print(f"{name:<44} {np.median(bounds):>6.0f} {np.median(bbounds):>6.0f} {np.median(ratio[k]):>6.2f} "
              f"{np.median(ratio_b[k]):>6.2f} {np.percentile(errs[k], 50):>6.0f} {np.percentile(errs[k], 95):>6.0f} "
              f"{100 * np.mean(cover[k]):>6.1f} {100 * np.mean(multi[k]):>6.1f} {100 * np.mean(far[k]):>5.1f} "
              f"{np.median(ratio_mode[k]):>7.2f} {tail}", flush=True)


GSM_DEFAULT = DEFAULT_EIRP_DBM["gsm_downlink"]
FAKE_BTS = (20.0, 50.0)  # an operator hunting fake cells only: SDR + 1-20 W amplifier, 0-9 dBi
KNOWN_3DB = (40.0, 46.0)  # the EIRP known to +-3 dB (a registered station; one close pass measured it)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=("main", "extra", "edge"), help="run one group of rows")
    args = ap.parse_args()
    n_geo, n_draw = (6, 20) if args.quick else (20, 30)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"n = {N_EXP}, shadowing sigma = {SIGMA_DB} dB, P0 unknown; {n_geo} geometries x {n_draw} draws each; "
          f"{FREQ_HZ / 1e6:g} MHz")
    print(f"{'geometry':<44} {'CRB':>6} {'BCRB':>6} {'RMSE/':>6} {'RMSE/':>6} {'CEP50':>6} {'CEP95':>6} {'ell95':>6} "
          f"{'multi':>6} {'far':>5} {'best-of':>7} {'genie':>6} | {'baseline':>8} {'CEP50':>6} {'CEP95':>6}")
    print(f"{'':<44} {'m':>6} {'m':>6} {'CRB':>6} {'BCRB':>6} {'m':>6} {'m':>6} {'%':>6} "
          f"{'modal%':>6} {'%':>5} {'modes':>7} {'local':>6} | {'RMSE/CRB':>8} {'m':>6} {'m':>6}")
    if args.only in (None, "main"):
        for prior in (GSM_DEFAULT, FAKE_BTS, KNOWN_3DB):
            rng = np.random.default_rng(2026)  # the same geometries and shadowing for both ranges
            draw = EirpDraw(prior)
            print(f"-- true EIRP drawn from the prior's density over {prior[0]:g}-{prior[1]:g} dBm "
                  f"(J_prior = {draw.fisher_db2:.4f} / dB^2)")
            for k in (4, 6, 8):
                run(f"{k} fixed sensors, 1-2 km out", lambda r, k=k: geometry_fixed(r, k), n_geo, n_draw, rng,
                    prior=prior, draw=draw)
            run("car drive-by, 2 streets, 300 points", geometry_drive, n_geo, max(8, n_draw // 4), rng,
                prior=prior, draw=draw)
    if args.only in (None, "edge"):
        # A prior that is wrong: the true EIRP fixed at the range's edge, 6 dB and 15 dB beyond.
        for eirp in (50.0, 56.0, 65.0):
            rng = np.random.default_rng(2028)
            run(f"6 fixed, true EIRP {eirp:g} dBm (fixed)", lambda r: geometry_fixed(r, 6), n_geo, n_draw, rng,
                prior=FAKE_BTS, draw=EirpDraw(FAKE_BTS, fixed=eirp))
    if args.only in (None, "extra"):
        # The threshold effect: the same estimator as the evidence grows.
        rng = np.random.default_rng(2027)
        draw = EirpDraw(GSM_DEFAULT)
        for k in (16, 32):
            run(f"{k} fixed sensors, 1-2 km out", lambda r, k=k: geometry_fixed(r, k), n_geo, n_draw // 2, rng,
                prior=GSM_DEFAULT, draw=draw)
        for k in (6, 8):
            run(f"{k} fixed sensors, shadowing 3 dB", lambda r, k=k: geometry_fixed(r, k), n_geo, n_draw // 2, rng,
                sigma_db=3.0, prior=GSM_DEFAULT, draw=draw)
    print("Goal: RMSE at most 1.2 x the bound; the 95 % ellipse holds the truth in 90-98 % of trials.")
    print("BCRB: Van Trees bound with the Fisher information of the true EIRP's density added on P0.")
    print("multi: trials with several plausible modes; far: error > 3 x CRB (the wrong maximum); best-of modes:")
    print("RMSE/CRB had an oracle picked the reported mode nearest the truth; genie local: the Gaussian MLE")
    print("started at the truth. The drive-by bound uses all 300 correlated points; the estimator averages")
    print("each 50 m cell.")


if __name__ == "__main__":
    main()
