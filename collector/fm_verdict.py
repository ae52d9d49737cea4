"""Verdict on one FM carrier from what a sensor measured and the licence registry.

A pure function (:func:`fm_verdict`): no database, no clock. Verdicts, each with reasons:

* ``intermod``: the carrier sits on a third-order intermodulation product (``2 f1 - f2``
  or ``f1 + f2 - f3``) of carriers whose mean level in that sum (``(2 P1 + P2) / 3``) is at
  least ``im_min_parent_excess_db`` above it, and a
  gain test showed its level moving with the receiver's gain (a real carrier's level at
  the antenna does not; a third-order product's grows about 2 dB per dB of gain). Without
  a gain test the product is still called ``intermod`` (reason: "not confirmed by a gain
  test") so that it never raises an alarm; one whose level does not move with gain is a
  real transmitter and is judged like any other.
* ``unlicensed``: no registry entry within ``freq_tolerance_hz`` of the carrier within
  ``area_radius_m`` of the sensor (any distance when the sensor's position is unknown).
* ``suspicious``: a licensed frequency with the wrong signature: an RDS PI other than the
  registry's; no RDS although the registry gives the station a PI (or its history says it
  sends RDS), no stereo pilot although its history says it sends one, when the carrier is
  strong enough (``min_snr_for_signature_db``) for them to be seen; a level far above what
  the licensed site can give at the sensor (free-space path loss from its ERP, plus
  ``level_margin_db``: real paths lose more, so only a transmitter much nearer than the
  licensed site exceeds it); a peak deviation over ``max_deviation_khz``.
* ``licensed``: the registry entry matches and nothing is wrong.
* ``unknown``: no registry to compare with.

Frequencies are Hz, powers dBm at the antenna, positions WGS84 degrees (lat, lon).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.reference import FmStation
from rfhunt import geo

VERDICTS = ("licensed", "unlicensed", "suspicious", "intermod", "unknown")
C_M_S = 299_792_458.0
#: ERP is referred to a half-wave dipole; EIRP is 2.15 dB more.
DIPOLE_GAIN_DB = 2.15


@dataclass(frozen=True)
class FmVerdictParams:
    """Thresholds of :func:`fm_verdict` (see the module notes)."""

    freq_tolerance_hz: float = 50e3
    area_radius_m: float = 100e3
    max_deviation_khz: float = 82.5
    level_margin_db: float = 10.0
    path_loss_exponent: float = 2.0
    min_snr_for_signature_db: float = 20.0
    im_freq_tolerance_hz: float = 5e3
    im_min_parent_excess_db: float = 20.0
    im_min_slope_db_per_db: float = 1.0


@dataclass(frozen=True)
class FmObservation:
    """What a sensor measured on one FM carrier.

    Attributes
    ----------
    freq_hz : float
        Carrier (or raster) frequency, Hz.
    power_dbm : float
        Level at the antenna, dBm.
    snr_db : float, optional
    deviation_khz : float, optional
        Peak deviation, kHz.
    pilot : bool, optional
        19 kHz stereo pilot present.
    rds : bool, optional
        RDS present.
    rds_pi : str, optional
        Decoded PI, 4 hex digits.
    gain_slope_db_per_db : float, optional
        Change of the measured level (dBm) per dB of receiver gain, from captures at two
        gains: about 0 for a real carrier, about 2 for a third-order product.
    """

    freq_hz: float
    power_dbm: float
    snr_db: float | None = None
    deviation_khz: float | None = None
    pilot: bool | None = None
    rds: bool | None = None
    rds_pi: str | None = None
    gain_slope_db_per_db: float | None = None

    @classmethod
    def from_features(cls, freq_hz: float, power_dbm: float, snr_db: float | None,
                      features: Mapping[str, object]) -> FmObservation:
        """Build from a Detection's fields and its FM features (``deviation_khz``, ``pilot``,
        ``rds``, ``rds_pi``, ``gain_slope_db_per_db``); missing ones stay unknown."""
        def get(key, kind):
            v = features.get(key)
            return v if isinstance(v, kind) and not (kind is not bool and isinstance(v, bool)) else None
        pi = get("rds_pi", str)
        return cls(freq_hz=float(freq_hz), power_dbm=float(power_dbm),
                   snr_db=None if snr_db is None else float(snr_db),
                   deviation_khz=get("deviation_khz", (int, float)), pilot=get("pilot", bool),
                   rds=get("rds", bool), rds_pi=pi.upper() if pi else None,
                   gain_slope_db_per_db=get("gain_slope_db_per_db", (int, float)))


@dataclass(frozen=True)
class KnownSignature:
    """What a licensed station is known (from its history) to send; None: not known."""

    pilot: bool | None = None
    rds: bool | None = None


@dataclass(frozen=True)
class FmVerdict:
    """A verdict, why, and the registry entry it was compared with (if any)."""

    verdict: str
    reasons: tuple[str, ...]
    station: FmStation | None = None


@dataclass(frozen=True)
class IntermodProduct:
    """A third-order product landing on a carrier: ``2 f1 - f2`` (``f3`` None) or ``f1 + f2 - f3``."""

    f1_hz: float
    f2_hz: float
    f3_hz: float | None
    weakest_parent_dbm: float

    def describe(self) -> str:
        mhz = lambda f: f"{f / 1e6:.1f}"  # noqa: E731
        if self.f3_hz is None:
            return f"2x{mhz(self.f1_hz)} - {mhz(self.f2_hz)} MHz"
        return f"{mhz(self.f1_hz)} + {mhz(self.f2_hz)} - {mhz(self.f3_hz)} MHz"


def intermod_products(freq_hz: float, power_dbm: float, carriers: Sequence[tuple[float, float]],
                      params: FmVerdictParams = FmVerdictParams()) -> list[IntermodProduct]:
    """Third-order products of strong carriers that land on ``freq_hz``.

    Parameters
    ----------
    freq_hz, power_dbm : float
        The carrier under judgement.
    carriers : sequence of (freq_hz, power_dbm)
        Every carrier the sensor saw in the same sweep (the one judged may be among them).
    params : FmVerdictParams

    Returns
    -------
    list of IntermodProduct
        Strongest parents first.
    """
    # A third-order product's level follows 2 P1 + P2 (or P1 + P2 + P3): one very strong
    # parent (a car passing under a black radio's antenna) makes a product above a weak
    # second parent, so the test is on the parents' mean level in that sum, not on each.
    others = [(f, p) for f, p in carriers if abs(f - freq_hz) > params.im_freq_tolerance_hz]
    need = power_dbm + params.im_min_parent_excess_db
    tol = params.im_freq_tolerance_hz
    out = [IntermodProduct(f1, f2, None, min(p1, p2)) for (f1, p1), (f2, p2) in itertools.permutations(others, 2)
           if abs(2 * f1 - f2 - freq_hz) <= tol and (2 * p1 + p2) / 3 >= need]
    for (i, (f1, p1)), (j, (f2, p2)) in itertools.combinations(enumerate(others), 2):
        for k, (f3, p3) in enumerate(others):
            if k not in (i, j) and abs(f1 + f2 - f3 - freq_hz) <= tol and (p1 + p2 + p3) / 3 >= need:
                out.append(IntermodProduct(f1, f2, f3, min(p1, p2, p3)))
    return sorted(out, key=lambda p: -p.weakest_parent_dbm)


def expected_level_dbm(station: FmStation, freq_hz: float, sensor_lat: float, sensor_lon: float,
                       path_loss_exponent: float = 2.0) -> float | None:
    """Level (dBm) a licensed site gives at the sensor by ``ERP + 2.15 dB - 20 log10(4 pi f / c)
    - 10 n log10(d / 1 m)`` (free space for n = 2: an upper bound); None without an ERP."""
    if station.erp_w is None or station.erp_w <= 0:
        return None
    d = max(float(geo.distance_m(station.lat, station.lon, sensor_lat, sensor_lon)), 1.0)
    erp_dbm = 10 * math.log10(station.erp_w * 1e3)
    return erp_dbm + DIPOLE_GAIN_DB - 20 * math.log10(4 * math.pi * freq_hz / C_M_S) \
        - 10 * path_loss_exponent * math.log10(d)


def _signature_notes(obs: FmObservation, params: FmVerdictParams) -> list[str]:
    """What stands out in a carrier's own signature, for an unlicensed one's reasons."""
    notes = []
    if obs.pilot is False:
        notes.append("mono (no 19 kHz pilot)")
    elif obs.pilot:
        notes.append("stereo")
    if obs.rds_pi:
        notes.append(f"RDS PI {obs.rds_pi}")
    elif obs.rds is False:
        notes.append("no RDS")
    if obs.deviation_khz is not None and obs.deviation_khz > params.max_deviation_khz:
        notes.append(f"over-deviated: peak {obs.deviation_khz:.0f} kHz")
    return notes


def fm_verdict(obs: FmObservation, registry: Sequence[FmStation] | None, *, sensor_lat: float | None = None,
               sensor_lon: float | None = None, carriers: Sequence[tuple[float, float]] = (),
               known: Mapping[str, KnownSignature] | None = None, history: KnownSignature | None = None,
               params: FmVerdictParams = FmVerdictParams()) -> FmVerdict:
    """Judge one FM carrier (see the module notes).

    Parameters
    ----------
    obs : FmObservation
    registry : sequence of FmStation or None
        The licence registry (``collector.reference.read_fm_registry``); None when there is
        none (verdict ``unknown`` unless the carrier is an intermodulation product).
    sensor_lat, sensor_lon : float, optional
        Where the sensor was (WGS84 degrees): limits the registry to the area and predicts
        licensed levels.
    carriers : sequence of (freq_hz, power_dbm)
        Every carrier of the same sweep, for the intermodulation test.
    known : mapping of licence to KnownSignature, optional
        What licensed stations have been seen sending before.
    history : KnownSignature, optional
        What this carrier's frequency has been seen sending before (the collector's emitter
        history); used for the licensed station found when ``known`` does not name it.
    params : FmVerdictParams

    Returns
    -------
    FmVerdict
    """
    where = sensor_lat is not None and sensor_lon is not None
    genuine_note = None
    products = intermod_products(obs.freq_hz, obs.power_dbm, carriers, params)
    if products:
        im = products[0]
        level = dict(carriers)
        strongest = max(level.get(f, im.weakest_parent_dbm) for f in (im.f1_hz, im.f2_hz, im.f3_hz) if f is not None)
        what = f"on the third-order product {im.describe()} of carriers up to " \
               f"{strongest - obs.power_dbm:.0f} dB stronger"
        slope = obs.gain_slope_db_per_db
        if slope is None:
            return FmVerdict("intermod", (what, "not confirmed by a gain test"))
        if slope >= params.im_min_slope_db_per_db:
            return FmVerdict("intermod", (what, f"its level moved {slope:.1f} dB per dB of receiver gain "
                                                "(a real carrier's does not): the sensor's own product"))
        genuine_note = f"{what}, but its level does not move with gain ({slope:.1f} dB/dB): a real transmitter"
    if registry is None:
        reasons = ["no licence registry to compare with", *_signature_notes(obs, params)]
        return FmVerdict("unknown", tuple(r for r in [genuine_note, *reasons] if r))
    mhz = f"{obs.freq_hz / 1e6:.2f} MHz"
    area = list(registry)
    if where:
        area = [s for s in area if geo.distance_m(s.lat, s.lon, sensor_lat, sensor_lon) <= params.area_radius_m]
    near = [s for s in area if abs(s.frequency_hz - obs.freq_hz) < params.freq_tolerance_hz]
    if not near:
        scope = f"within {params.area_radius_m / 1e3:.0f} km" if where else "in the registry"
        reasons = [f"no licensed station on {mhz} {scope}"]
        notes = _signature_notes(obs, params)
        owners = [s for s in registry if obs.rds_pi and s.pi == obs.rds_pi]
        if owners:
            reasons.append(f"sends the RDS PI {obs.rds_pi} of {owners[0].name} "
                           f"({owners[0].frequency_hz / 1e6:.2f} MHz)")
            notes = [n for n in notes if not n.startswith("RDS PI")]
        reasons.extend(notes)
        if genuine_note:
            reasons.append(genuine_note)
        return FmVerdict("unlicensed", tuple(reasons))
    if where:
        best = min(near, key=lambda s: (abs(s.frequency_hz - obs.freq_hz),
                                        geo.distance_m(s.lat, s.lon, sensor_lat, sensor_lon)))
    else:
        best = min(near, key=lambda s: abs(s.frequency_hz - obs.freq_hz))
    licence = f" (licence {best.licence})" if best.licence else ""
    listed = f"registry lists {best.name}{licence} on {best.frequency_hz / 1e6:.2f} MHz"
    strong = obs.snr_db is None or obs.snr_db >= params.min_snr_for_signature_db
    sig = (known or {}).get(best.licence) if best.licence else None
    sig = sig or history or KnownSignature()
    issues, fine = [], []
    if best.pi:
        if obs.rds_pi and obs.rds_pi != best.pi:
            issues.append(f"RDS PI {obs.rds_pi}, but {best.name} sends {best.pi}")
        elif obs.rds_pi == best.pi:
            fine.append(f"RDS PI {obs.rds_pi} matches")
        elif obs.rds is False and strong:
            issues.append(f"no RDS, but {best.name} sends PI {best.pi}")
    elif sig.rds and obs.rds is False and strong:
        issues.append(f"no RDS, but {best.name} is known to send it")
    if sig.pilot and obs.pilot is False and strong:
        issues.append(f"no stereo pilot, but {best.name} is known to send one")
    if obs.deviation_khz is not None and obs.deviation_khz > params.max_deviation_khz:
        issues.append(f"peak deviation {obs.deviation_khz:.0f} kHz is over the {params.max_deviation_khz:g} kHz limit")
    if where:
        expect = expected_level_dbm(best, obs.freq_hz, sensor_lat, sensor_lon, params.path_loss_exponent)
        if expect is not None and obs.power_dbm > expect + params.level_margin_db:
            d_km = geo.distance_m(best.lat, best.lon, sensor_lat, sensor_lon) / 1e3
            issues.append(f"{obs.power_dbm:.0f} dBm here is {obs.power_dbm - expect:.0f} dB above the most "
                          f"{best.name} ({best.erp_w:g} W ERP, {d_km:.1f} km away) can give: a nearer transmitter")
    tail = [genuine_note] if genuine_note else []
    if issues:
        return FmVerdict("suspicious", tuple([listed, *issues, *tail]), best)
    return FmVerdict("licensed", tuple([listed, *fine, *tail]), best)


def judge_fm_emitter(freq_hz: float, registry: Sequence[FmStation] | None, *, latest: object | None = None,
                     emitter_lat: float | None = None, emitter_lon: float | None = None,
                     carriers: Sequence[tuple[float, float]] = (), known: Mapping[str, KnownSignature] | None = None,
                     history: KnownSignature | None = None, night: str | None = None,
                     params: FmVerdictParams = FmVerdictParams()) -> FmVerdict:
    """Verdict on a collector's FM emitter: :func:`fm_verdict` from what the store holds.

    Parameters
    ----------
    freq_hz : float
        The emitter's frequency (its raster point), Hz.
    registry : sequence of FmStation or None
        The licence registry (database and configured CSV); None: none at all.
    latest : collector.store.DetectionRow, optional
        The emitter's newest detection: its level, SNR and FM features
        (:meth:`FmObservation.from_features`), and the sensor's position, which limits the
        registry to the area and predicts the licensed level. Without it the carrier is
        judged on its frequency alone, in the area of the emitter's located position if any.
    emitter_lat, emitter_lon : float, optional
        The emitter's located position (WGS84 degrees), used when there is no detection.
    carriers : sequence of (freq_hz, power_dbm)
        The carriers the same sensor heard in the same sweep (intermodulation test).
    known : mapping of licence to KnownSignature, optional
    history : KnownSignature, optional
        What the emitter was seen sending before (see :func:`fm_verdict`).
    night : str, optional
        The emitter's on-air schedule when it is on the air only at night (e.g. "on air
        20:30-07:30 on 5 of 6 nights"): added to the reasons of an unlicensed or suspicious
        verdict, as black radios run on timers.
    params : FmVerdictParams

    Returns
    -------
    FmVerdict
    """
    if latest is not None:
        obs = FmObservation.from_features(freq_hz, latest.power_dbm, latest.snr_db, latest.features or {})
        lat, lon = latest.sensor_lat, latest.sensor_lon
    else:
        obs = FmObservation(float(freq_hz), math.nan)  # no level: no intermodulation or level test
        lat, lon = emitter_lat, emitter_lon
        carriers = ()
    v = fm_verdict(obs, registry, sensor_lat=lat, sensor_lon=lon, carriers=carriers, known=known, history=history,
                   params=params)
    if night and v.verdict in ("unlicensed", "suspicious"):
        v = FmVerdict(v.verdict, (*v.reasons, f"{night}, at night only (black radios run on timers)"), v.station)
    return v
