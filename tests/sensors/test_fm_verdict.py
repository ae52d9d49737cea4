"""The per-carrier FM verdict (collector.fm_verdict): licensed, unlicensed, suspicious,
intermod, each with its reasons."""

from __future__ import annotations

import math

import pytest

from collector.fm_verdict import (FmObservation, FmVerdictParams, KnownSignature, expected_level_dbm, fm_verdict,
                                  intermod_products)
from collector.reference import FmStation
from rfhunt.geo import from_enu

LAT0, LON0 = 22.54, 114.05
REG = (
    FmStation(97.1e6, "CNR-1", "C201", LAT0, LON0, 10000.0, "GD-001"),
    FmStation(98.4e6, "GDRADIO", "C3A5", 22.60, 114.10, None, "GD-002"),
    FmStation(99.0e6, "Far away", None, 31.2, 121.5, 1000.0, "SH-001"),
    FmStation(102.6e6, "Music", None, LAT0, LON0, 5000.0, "GD-003"),
)


def at(east_m, north_m):
    lat, lon = from_enu(east_m, north_m, LAT0, LON0)
    return float(lat), float(lon)


def obs(freq_hz, power_dbm=-50.0, **kw):
    kw.setdefault("snr_db", 30.0)
    return FmObservation(freq_hz, power_dbm, **kw)


def test_licensed_with_matching_pi():
    v = fm_verdict(obs(97.1e6, pilot=True, rds=True, rds_pi="C201", deviation_khz=62), REG,
                   sensor_lat=LAT0, sensor_lon=LON0 + 0.05)
    assert v.verdict == "licensed" and v.station.licence == "GD-001"
    assert any("GD-001" in r for r in v.reasons) and any("C201 matches" in r for r in v.reasons)


def test_carrier_error_within_tolerance_still_matches():
    assert fm_verdict(obs(98.4e6 + 20e3, rds=True, rds_pi="C3A5"), REG).verdict == "licensed"
    assert fm_verdict(obs(98.4e6 + 60e3, rds=True, rds_pi="C3A5"), REG).verdict == "unlicensed"


@pytest.mark.parametrize("o, words", [
    (obs(98.4e6, rds=True, rds_pi="C3A6"), "RDS PI C3A6, but GDRADIO sends C3A5"),
    (obs(98.4e6, rds=False, pilot=True), "no RDS, but GDRADIO sends PI C3A5"),
    (obs(97.1e6, rds=True, rds_pi="C201", deviation_khz=97.0), "peak deviation 97 kHz"),
])
def test_suspicious_signatures(o, words):
    v = fm_verdict(o, REG)
    assert v.verdict == "suspicious" and any(words in r for r in v.reasons), v.reasons
    assert v.reasons[0].startswith("registry lists")


def test_missing_rds_of_a_weak_station_is_not_held_against_it():
    assert fm_verdict(obs(98.4e6, snr_db=12.0, rds=False), REG).verdict == "licensed"
    assert fm_verdict(obs(98.4e6, snr_db=12.0, rds=None), REG).verdict == "licensed"


def test_known_history_pilot_and_rds():
    known = {"GD-003": KnownSignature(pilot=True, rds=True)}
    v = fm_verdict(obs(102.6e6, pilot=False, rds=False), REG, known=known)
    assert v.verdict == "suspicious"
    assert any("stereo pilot" in r for r in v.reasons) and any("known to send it" in r for r in v.reasons)
    assert fm_verdict(obs(102.6e6, pilot=True, rds=True), REG, known=known).verdict == "licensed"


def test_level_far_above_what_the_licensed_site_gives():
    sensor = at(5000, 0)  # 5 km from the 10 kW site: free space gives about -10 dBm at most
    top = expected_level_dbm(REG[0], 97.1e6, *sensor)
    assert top == pytest.approx(70 + 2.15 - 20 * math.log10(4 * math.pi * 97.1e6 / 299_792_458.0)
                                - 20 * math.log10(5000), abs=0.2)
    fine = fm_verdict(obs(97.1e6, top - 20, rds=True, rds_pi="C201"), REG, sensor_lat=sensor[0], sensor_lon=sensor[1])
    loud = fm_verdict(obs(97.1e6, top + 15, rds=True, rds_pi="C201"), REG, sensor_lat=sensor[0], sensor_lon=sensor[1])
    assert fine.verdict == "licensed"
    assert loud.verdict == "suspicious" and any("a nearer transmitter" in r for r in loud.reasons)
    assert expected_level_dbm(REG[1], 98.4e6, *sensor) is None  # no ERP: no level test


def test_unlicensed_and_its_reasons():
    v = fm_verdict(obs(98.9e6, pilot=False, rds=False, deviation_khz=96.0), REG, sensor_lat=LAT0, sensor_lon=LON0)
    assert v.verdict == "unlicensed" and v.station is None
    assert v.reasons[0] == "no licensed station on 98.90 MHz within 100 km"
    assert "mono (no 19 kHz pilot)" in v.reasons and "no RDS" in v.reasons
    assert any("over-deviated" in r for r in v.reasons)
    # a licence for the frequency far away does not cover this area
    assert fm_verdict(obs(99.0e6), REG, sensor_lat=LAT0, sensor_lon=LON0).verdict == "unlicensed"
    assert fm_verdict(obs(99.0e6), REG).verdict == "licensed"  # no position: the whole registry
    # a pirate relaying a licensed programme's RDS
    v = fm_verdict(obs(93.6e6, rds=True, rds_pi="C201"), REG)
    assert any("sends the RDS PI C201 of CNR-1" in r for r in v.reasons)


def test_intermodulation_products():
    carriers = [(97.1e6, -30.0), (97.5e6, -32.0), (93.6e6, -80.0)]
    prods = intermod_products(96.7e6, -90.0, carriers)
    assert [(p.f1_hz, p.f2_hz, p.f3_hz) for p in prods] == [(97.1e6, 97.5e6, None)]
    assert prods[0].describe() == "2x97.1 - 97.5 MHz"
    # parents must be much stronger than the product
    assert intermod_products(96.7e6, -40.0, carriers) == []
    three = intermod_products(96.3e6, -90.0, [(97.1e6, -30.0), (97.5e6, -30.0), (98.3e6, -30.0)])
    assert any(p.f3_hz == 98.3e6 for p in three)
    assert intermod_products(96.7e6, -90.0, carriers, FmVerdictParams(im_freq_tolerance_hz=1.0)) != []
    assert intermod_products(96.705e6, -90.0, carriers, FmVerdictParams(im_freq_tolerance_hz=1e3)) == []


def test_intermod_verdicts_never_alarm():
    carriers = [(97.1e6, -30.0), (97.5e6, -32.0)]
    unconfirmed = fm_verdict(obs(96.7e6, -90.0), REG, carriers=carriers)
    assert unconfirmed.verdict == "intermod" and "not confirmed by a gain test" in unconfirmed.reasons
    confirmed = fm_verdict(obs(96.7e6, -90.0, gain_slope_db_per_db=1.9), REG, carriers=carriers)
    assert confirmed.verdict == "intermod" and any("1.9 dB per dB" in r for r in confirmed.reasons)
    real = fm_verdict(obs(96.7e6, -90.0, gain_slope_db_per_db=0.1, pilot=False), REG, carriers=carriers)
    assert real.verdict == "unlicensed" and any("a real transmitter" in r for r in real.reasons)
    assert fm_verdict(obs(96.7e6, -90.0), None, carriers=carriers).verdict == "intermod"


def test_without_registry_the_verdict_is_unknown():
    v = fm_verdict(obs(97.1e6, pilot=True, rds_pi="C201"), None)
    assert v.verdict == "unknown" and v.reasons[0] == "no licence registry to compare with"


def test_observation_from_detection_features():
    o = FmObservation.from_features(97.1e6, -50.0, 30.0, {
        "deviation_khz": 61.5, "pilot": True, "rds": True, "rds_pi": "c201", "gain_slope_db_per_db": 0.1,
        "noise_dbm": -90.0})
    assert o == FmObservation(97.1e6, -50.0, 30.0, 61.5, True, True, "C201", 0.1)
    odd = FmObservation.from_features(97.1e6, -50.0, None, {"deviation_khz": True, "pilot": 1, "rds_pi": 5})
    assert (odd.deviation_khz, odd.pilot, odd.rds_pi, odd.snr_db) == (None, None, None, None)


def test_one_very_strong_parent_makes_a_product_above_the_weak_one():
    """A car under a black radio's antenna (101.3 MHz at -13 dBm): 2 x 101.3 - 106.2 = 96.4 MHz
    comes out at -54 dBm, above the weak 106.2 MHz parent (-60 dBm). The product level follows
    2 P1 + P2, so it is intermod; a carrier with no such parents is not."""
    carriers = [(89.7e6, -53.5), (96.4e6, -54.0), (101.3e6, -12.8), (106.2e6, -59.9)]
    (im, *_) = intermod_products(96.4e6, -54.0, carriers)
    assert (im.f1_hz, im.f2_hz, im.f3_hz) == (101.3e6, 106.2e6, None)
    v = fm_verdict(FmObservation(96.4e6, -54.0), [], carriers=carriers)
    assert v.verdict == "intermod" and "41 dB stronger" in v.reasons[0]
    weak = [(89.7e6, -53.5), (96.4e6, -54.0), (101.3e6, -40.0), (106.2e6, -59.9)]
    assert intermod_products(96.4e6, -54.0, weak) == []
