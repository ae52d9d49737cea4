"""The simulator's receiver intermodulation (third-order products of strong FM stations)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.fm.demod import channelize, discriminate
from dsp.fm.tx import fm_broadcast_iq, fm_mpx
from rfhunt.errors import DspError
from sensors.sim.fm_effects import iip3_dbm, im3_products, im3_waveform, receiver_intermod_iq


def test_third_order_power_law_and_gain():
    f = [97.1e6, 97.5e6]
    p = [-40.0, -45.0]
    at20 = {round(q.freq_hz): q for q in im3_products(f, p, gain_db=20.0, floor_dbm=-300)}
    assert set(at20) == {96_700_000, 97_900_000}
    ip3 = iip3_dbm(20.0)
    assert at20[96_700_000].power_dbm == pytest.approx(2 * -40 + -45 - 2 * ip3)
    assert at20[97_900_000].power_dbm == pytest.approx(2 * -45 + -40 - 2 * ip3)
    # referred to the antenna a product grows 2 dB per dB of gain
    at30 = {round(q.freq_hz): q for q in im3_products(f, p, gain_db=30.0, floor_dbm=-300)}
    assert at30[96_700_000].power_dbm - at20[96_700_000].power_dbm == pytest.approx(20.0)
    # three tones: f1 + f2 - f3 products, 6 dB over the two-tone law
    three = im3_products([97.1e6, 97.5e6, 98.3e6], [-40.0, -40.0, -40.0], gain_db=20.0, floor_dbm=-300)
    q = next(q for q in three if round(q.freq_hz) == 96_300_000)  # 97.1 + 97.5 - 98.3
    assert q.power_dbm == pytest.approx(-120 - 2 * ip3 + 6.02, abs=0.01)
    # a span keeps only what lands in the capture
    inside = im3_products(f, p, gain_db=20.0, lo_hz=97.0e6, half_span_hz=0.5e6, floor_dbm=-300)
    assert [round(q.freq_hz) for q in inside] == [96_700_000]
    assert im3_products([97.1e6, 97.5e6], [-70.0, -70.0], gain_db=0.0) == []  # under the floor: left out
    with pytest.raises(DspError, match="length"):
        im3_products([1.0], [1.0, 2.0], gain_db=0.0)


def test_product_waveform_carries_the_combined_modulation():
    fs, n = 1e6, 50_000
    w1 = fm_broadcast_iq(3.0, n, fs, audio_seed=1)
    w2 = fm_broadcast_iq(3.0, n, fs, audio_seed=2, stereo=False)
    prod = im3_waveform(w1, w1, w2)
    f = discriminate(prod, fs)
    want = 75e3 * (2 * fm_mpx(3.0, n, fs, audio_seed=1) - fm_mpx(3.0, n, fs, audio_seed=2, stereo=False))[1:]
    # the product's deviation reaches 225 kHz, more than a 1 MS/s discriminator holds at the peaks
    ok = np.abs(want) < 0.45 * fs
    np.testing.assert_allclose(f[ok], want[ok], atol=5.0)


def test_receiver_intermod_iq_lands_where_and_as_strong_as_it_should():
    fs, n = 2.4e6, 240_000
    lo = 97.5e6
    carriers = [(97.1e6, -30.0), (97.5e6, -32.0), (105e6, -80.0)]
    calls = []

    def waveform(i):
        calls.append(i)
        return fm_broadcast_iq(0.0, n, fs, audio_seed=i)

    x = receiver_intermod_iq(carriers, waveform, lo_hz=lo, sample_rate_hz=fs, t_s=0.0, n_samples=n,
                             gain_db=30.0, to_dbfs_db=35.0)
    assert x.dtype == np.complex64 and x.shape == (n,)
    assert sorted(set(calls)) == [0, 1]  # the weak, far station is never synthesised
    ch = channelize(x, fs, np.array([96.7e6 - lo, 97.9e6 - lo]))
    got = 10 * np.log10(np.mean(np.abs(ch.baseband) ** 2, axis=1))
    ip3 = iip3_dbm(30.0)
    want = np.array([2 * -30 - 32 - 2 * ip3, 2 * -32 - 30 - 2 * ip3]) + 35.0
    # the products are 225 kHz-deviated: the +-110 kHz channel holds most, not all, of them
    assert np.all(got <= want + 0.1) and np.all(got > want - 3.0)
    none = receiver_intermod_iq([(97.1e6, -90.0)], waveform, lo_hz=lo, sample_rate_hz=fs, t_s=0.0, n_samples=10,
                                gain_db=30.0, to_dbfs_db=35.0)
    assert not none.any()


def test_the_simulated_world_makes_its_receivers_intermodulate(tmp_path):
    """Two strong stations near a rooftop: the world's capture holds their third-order
    product at 2 f1 - f2, rising 3 dB per dB of gain (the stations 1 dB per dB), where no
    emitter transmits."""
    from sensors.sim.scenario import load_scenario
    from sensors.sim.world import World

    path = tmp_path / "fm.toml"
    path.write_text("""
[scenario]
name = "two stations"
seed = 7
start_utc = "2026-11-24T20:30:00+08:00"
duration_s = 60
[area]
center_lat = 22.54
center_lon = 114.05
radius_m = 3000
[[sensors]]
id = "roof"
lat = 22.54
lon = 114.05
[[emitters]]
id = "fm-a"
type = "fm"
name = "A"
lat = 22.541
lon = 114.051
power_dbm = 70
freq_hz = 97.1e6
[[emitters]]
id = "fm-b"
type = "fm"
name = "B"
lat = 22.539
lon = 114.049
power_dbm = 70
freq_hz = 97.5e6
""")
    world = World(load_scenario(path))
    fs, n = 2.4e6, 1 << 16
    win = np.hanning(n)

    def level_db(x: np.ndarray, f_hz: float, centre_hz: float) -> float:
        spec = np.abs(np.fft.fftshift(np.fft.fft(x * win))) ** 2
        freqs = np.fft.fftshift(np.fft.fftfreq(n, 1 / fs)) + centre_hz
        band = np.abs(freqs - f_hz) < 60e3
        return float(10 * np.log10(spec[band].sum()))

    def levels(gain_db: float) -> tuple[float, float, float]:
        x = world.capture("roof", 1.0, 97.3e6, fs, n, gain_db, np.random.default_rng(1))
        return tuple(level_db(x, f, 97.3e6) for f in (96.7e6, 97.1e6, 96.3e6))

    im_lo, a_lo, empty_lo = levels(10.0)
    im_hi, a_hi, empty_hi = levels(20.0)
    assert im_lo > empty_lo + 10.0                           # a product where nobody transmits
    assert (im_hi - im_lo) == pytest.approx(30.0, abs=4.0)   # third order: 3 dB per dB of gain
    assert (a_hi - a_lo) == pytest.approx(10.0, abs=1.5)
