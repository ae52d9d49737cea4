"""Every station of a capture: the validation recordings made with GNU Radio and gr-rds, and
the multiplex measurements on signals of known make-up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.fm.mpx import _order_statistic_abs, analyze_mpx
from dsp.fm.rds import RdsConfig
from dsp.fm.station import StationCandidates, analyze_stations, detect_stations, scan_capture
from dsp.fm.tx import PILOT_LEVEL, RDS_LEVEL, fm_broadcast_iq
from rfhunt.errors import DspError
from sensors.sources.recording import RecordingSource
from tests.shared_data import DATA_DIR, requires

FM_DIR = DATA_DIR / "fm"
BAND = FM_DIR / "fm_band_2400k.sigmf-meta"
SINGLE = FM_DIR / "fm_rds_single_250k.sigmf-meta"


def _truth():
    return json.loads((FM_DIR / "truth.json").read_text())


def _read(meta):
    src = RecordingSource(meta)
    try:
        return src.read(src.remaining_samples)
    finally:
        src.close()


@pytest.fixture(scope="module")
def band_analysis():
    block = _read(BAND)
    return block, scan_capture(block.samples, block.sample_rate_hz, block.center_freq_hz)


@requires(BAND)
def test_band_recording_every_station_pi_ps_and_stereo(band_analysis):
    """gr-rds made these: every station found, nothing else; each PI and PS decoded; stereo
    told from mono; the black radio's over-deviation seen."""
    block, an = band_analysis
    truth = [s for s in _truth()["stations"] if s["file"] == "fm_band_2400k"]
    assert [s.freq_hz for s in an.stations] == [s["frequency_hz"] for s in truth]
    for st, tr in zip(an.stations, truth):
        assert st.pilot == tr["stereo"] == tr["pilot"]["present"]
        if tr["rds"]:
            assert st.rds.pi == int(tr["rds"]["pi"], 16)
            assert st.rds.ps == tr["rds"]["ps"]
            assert st.rds.pty == tr["rds"]["pty"]
            assert st.rds.rt == tr["rds"]["radiotext"]
            assert st.rds.n_errors == 0 and st.rds_present
            assert st.pilot_deviation_hz == pytest.approx(tr["pilot"]["deviation_hz"], rel=0.05)
        else:
            assert st.rds.pi is None and st.rds.ps is None and not st.rds_present
        # level and SNR against the truth (the noise is white, the SNR is in 200 kHz)
        assert st.signal_dbfs == pytest.approx(tr["level"]["carrier_power_dbfs"], abs=0.3)
        assert st.snr_db == pytest.approx(tr["level"]["snr_db_in_200khz"], abs=0.5)
        # the 2 ppm LO error puts each carrier about -196 Hz off
        assert st.freq_error_hz == pytest.approx(tr["apparent_frequency_hz_with_lo_error"] - tr["frequency_hz"], abs=10)
        over = tr["deviation"]["over_deviated"]
        assert (st.peak_deviation_hz > 82.5e3) == over
        assert st.rms_deviation_hz == pytest.approx(tr["deviation"]["audio_part_rms_dev_hz"], rel=0.1)
    cnr, gd, black = an.stations
    assert black.occupied_bw_hz > 1.5 * cnr.occupied_bw_hz
    assert 80e3 < cnr.occupied_bw_hz < 140e3


@requires(SINGLE)
def test_single_station_recording():
    block = _read(SINGLE)
    tr = next(s for s in _truth()["stations"] if s["file"] == "fm_rds_single_250k")
    an = scan_capture(block.as_complex64(), block.sample_rate_hz, block.center_freq_hz)
    assert len(an.stations) == 1
    st = an.stations[0]
    assert st.freq_hz == tr["frequency_hz"] and abs(st.freq_error_hz) < 20
    assert st.pilot and st.rds.pi == 0xC201 and st.rds.ps == tr["rds"]["ps"] and st.rds.rt == tr["rds"]["radiotext"]
    assert st.signal_dbfs == pytest.approx(0.0, abs=0.3)


def test_noise_alone_has_no_station():
    rng = np.random.default_rng(2)
    x = (0.05 * (rng.standard_normal(480_000) + 1j * rng.standard_normal(480_000))).astype(np.complex64)
    x += np.complex64(0.01)  # a DC spike is not a station
    assert detect_stations(x, 2.4e6, 98e6).freq_hz.size == 0
    assert scan_capture(x, 2.4e6, 98e6).stations == []


def _band(stations, seconds=0.1, fs=2.4e6, noise_dbfs=-55.0, seed=0):
    """Stations (offset_hz, level_dbfs) on receiver noise."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = (10 ** (noise_dbfs / 20) / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n)))
    for i, (off, level) in enumerate(stations):
        x = x + 10 ** (level / 20) * fm_broadcast_iq(3.0, n, fs, audio_seed=i) * np.exp(2j * np.pi * off * t)
    return x.astype(np.complex64)


@pytest.mark.parametrize("stations, want_mhz", [
    # two strong stations 400 kHz apart: the point half-way holds only their skirts
    ([(-200e3, -10.0), (200e3, -10.0)], [97.8, 98.2]),
    # a weak station 300 kHz from a strong one, whose skirt 200 kHz out is stronger than it
    ([(-300e3, -12.0), (0.0, -32.0)], [97.7, 98.0]),
    # adjacent channels, 200 kHz apart (found down to about 9 dB under the neighbour, whose
    # skirt 100 kHz out is about 3 dB under it)
    ([(-100e3, -15.0), (100e3, -22.0)], [97.9, 98.1]),
    # off the raster by half a step: one station, named after the nearer raster point
    ([(250e3, -20.0)], [(98.2, 98.3)]),
])
def test_each_station_once_and_no_skirt_as_a_station(stations, want_mhz):
    found = detect_stations(_band(stations), 2.4e6, 98e6)
    got = list(np.round(found.freq_hz / 1e6, 1))
    assert len(got) == len(want_mhz)
    assert all(g in w if isinstance(w, tuple) else g == w for g, w in zip(got, want_mhz))


def test_stations_near_the_edge_are_left_out():
    n = 240_000
    t = np.arange(n) / 2.4e6
    x = (0.3 * fm_broadcast_iq(0.0, n, 2.4e6) * np.exp(2j * np.pi * 1.1e6 * t)).astype(np.complex64)
    x += (0.3 * fm_broadcast_iq(0.0, n, 2.4e6, audio_seed=4) * np.exp(-2j * np.pi * 0.5e6 * t)).astype(np.complex64)
    found = detect_stations(x, 2.4e6, 98e6)
    assert list(found.freq_hz) == [97.5e6]
    with pytest.raises(DspError, match="edge"):
        z = np.zeros(1)
        analyze_stations(x, 2.4e6, 98e6, StationCandidates(np.array([99.1e6]), z, z, z, z))


@pytest.mark.parametrize("stereo, rds, deviation_hz", [
    (True, RdsConfig(0x1234, "TESTING "), 75e3), (False, None, 75e3), (False, RdsConfig(0x4321, "MONO RDS"), 100e3),
    (True, None, 50e3),
])
def test_multiplex_measurements(stereo, rds, deviation_hz):
    """Pilot, RDS level, peak deviation and carrier offset of the simulator's stations, whose
    make-up is known exactly."""
    fs = 2.4e6 / 9
    n = int(fs * 1.0)
    x = fm_broadcast_iq(50.0, n + 1, fs, deviation_hz=deviation_hz, stereo=stereo, rds=rds, audio_seed=9)
    offset = 1234.5
    x = x * np.exp(2j * np.pi * offset * np.arange(n + 1) / fs).astype(np.complex64)
    from dsp.fm.demod import discriminate

    an = analyze_mpx(discriminate(x[None, :], fs), fs)
    f = an.features
    assert bool(f.pilot[0]) == stereo
    if stereo:
        assert f.pilot_deviation_hz[0] == pytest.approx(PILOT_LEVEL * deviation_hz, rel=0.03)
        assert f.pilot_snr_db[0] > 40
    if rds is not None:
        assert f.rds_deviation_hz[0] == pytest.approx(RDS_LEVEL * deviation_hz, rel=0.25)
        assert f.rds_snr_db[0] > 20
    else:
        assert not f.rds_snr_db[0] > 0
    # the simulator's comb peaks reach the full deviation once per programme period
    assert f.peak_deviation_hz[0] == pytest.approx(deviation_hz, rel=0.08)
    assert f.carrier_offset_hz[0] == pytest.approx(offset, abs=5)
    assert an.rds_baseband.shape[1] == pytest.approx(n / 32, abs=2)


def test_a_capture_too_short_is_refused_by_name():
    z = np.zeros(1)
    with pytest.raises(DspError, match="too short for FM analysis.*36873"):
        analyze_stations(np.full(30000, 0.1, np.complex64), 2.4e6, 98e6, StationCandidates(np.array([98.1e6]), z, z,
                                                                                            z, z))


def test_multiplex_needs_a_segment():
    with pytest.raises(DspError, match="4096"):
        analyze_mpx(np.zeros((1, 1000), np.float32), 250e3)
    with pytest.raises(DspError, match="2-D"):
        analyze_mpx(np.zeros(5000, np.float32), 250e3)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5000), st.integers(0, 200), st.integers(0, 2**32 - 1))
def test_peak_order_statistic_is_the_partition_one(rows, n, from_top, seed):
    """The peak deviation's pre-selected order statistic equals a full partition's, ties and
    all (values drawn from a few levels make many)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n)).astype(np.float32)
    if seed % 2:
        x = np.round(x * 2) / 2
    k = max(n - 1 - from_top, 0)
    np.testing.assert_array_equal(_order_statistic_abs(x, k), np.partition(np.abs(x), k, axis=1)[:, k])
