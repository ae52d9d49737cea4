"""Channel powers, noise floor and CFAR detection on seeded signals with known truth."""

import numpy as np
import pytest

from dsp.spectrum import cfar_threshold_db, channel_powers, detect_carriers, noise_floor_density, power_spectrum
from rfhunt.errors import DspError

FS = 2.4e6
FC = 936.1e6
CH = FC + 200e3 * np.arange(-4, 4) + 100e3  # 8 GSM-like channels, DC between two of them


def noise(n, power_dbfs, rng):
    s = np.sqrt(10 ** (power_dbfs / 10) / 2)
    return (s * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)


def qpsk_carrier(n, offset_hz, power_dbfs, rng, symbol_rate=135e3):
    """A band-limited random carrier of known power (about 150 kHz wide)."""
    sps = int(FS / symbol_rate)
    sym = (rng.choice([-1, 1], n // sps + 2) + 1j * rng.choice([-1, 1], n // sps + 2)) / np.sqrt(2)
    x = np.repeat(sym, sps)[:n]
    k = np.hanning(2 * sps)
    x = np.convolve(x, k / np.sqrt(np.sum(k**2) / sps), mode="same")
    x *= np.sqrt(10 ** (power_dbfs / 10) / np.mean(np.abs(x) ** 2))
    return (x * np.exp(2j * np.pi * offset_hz * np.arange(n) / FS)).astype(np.complex64)


def gmsk_like(n, offset_hz, power_dbfs, rng, bt=0.3, rate=1625e3 / 6):
    """GMSK by filtering NRZ frequency with a Gaussian and integrating (h = 0.5)."""
    t = np.arange(n) / FS
    nrz = rng.choice([-1.0, 1.0], int(n * rate / FS) + 2)[(t * rate).astype(int)]
    sigma = np.sqrt(np.log(2)) / (2 * np.pi * bt) * FS / rate
    k = np.exp(-0.5 * (np.arange(-int(4 * sigma), int(4 * sigma) + 1) / sigma) ** 2)
    freq = np.convolve(nrz, k / k.sum(), mode="same")
    phase = np.cumsum(freq) * np.pi / 2 * rate / FS
    x = np.sqrt(10 ** (power_dbfs / 10)) * np.exp(1j * (phase + 2 * np.pi * offset_hz * t))
    return x.astype(np.complex64)


def test_power_spectrum_parseval_and_errors():
    rng = np.random.default_rng(1)
    x = noise(4096, -20, rng)
    pw = power_spectrum(x, 256)
    assert pw.shape == (16, 256)
    assert 10 * np.log10(pw.sum(axis=1).mean()) == pytest.approx(-20, abs=0.3)
    with pytest.raises(DspError, match="1-D complex"):
        power_spectrum(np.zeros(100), 16)
    with pytest.raises(DspError, match="shorter than one"):
        power_spectrum(np.zeros(10, np.complex64), 16)
    with pytest.raises(DspError, match="nfft"):
        power_spectrum(np.zeros(100, np.complex64), 8)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_noise_floor_is_unbiased_with_half_the_band_occupied(dtype):
    rng = np.random.default_rng(2)
    n = 48_000
    x = noise(n, -60, rng).astype(dtype)
    for ch in CH[::2]:
        x += qpsk_carrier(n, ch - FC, -30, rng)
    cp = channel_powers(x, FS, FC, CH, 180e3)
    expected = -60 + 10 * np.log10(180e3 / FS)
    assert np.allclose(cp.noise_dbfs, expected, atol=0.6)


def test_channel_power_accuracy_and_detection():
    rng = np.random.default_rng(3)
    n = 48_000
    x = noise(n, -60, rng)
    truth = {CH[0]: -40.0, CH[3]: -55.0, CH[6]: -62.0}
    for f, p in truth.items():
        x += qpsk_carrier(n, f - FC, p, rng)
    cp = channel_powers(x, FS, FC, CH, 180e3)
    found = detect_carriers(cp)
    assert set(np.round(found.freq_hz)) == set(np.round(list(truth)))
    for f, p in zip(found.freq_hz, found.signal_dbfs):
        # ~97 % of the carrier's power lies inside 180 kHz
        assert p == pytest.approx(truth[min(truth, key=lambda t: abs(t - f))], abs=0.6)


def test_no_false_alarms_on_noise_and_dc_spike():
    hits = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        x = noise(48_000, -60, rng) + np.complex64(10 ** (-45 / 20))  # a DC spike 15 dB over the noise
        cp = channel_powers(x, FS, FC, CH, 180e3)
        hits += detect_carriers(cp).index.size
    assert hits == 0


def test_cfar_threshold_matches_pfa():
    rng = np.random.default_rng(4)
    a = 50
    samples = rng.exponential(size=(200_000, a)).mean(axis=1)
    thr = 10 ** (cfar_threshold_db(a, 1e-3) / 10)
    assert np.mean(samples > thr) == pytest.approx(1e-3, rel=0.3)
    with pytest.raises(DspError):
        cfar_threshold_db(10, 0.0)


def test_bursty_uplink_detection_and_duty_cycle():
    rng = np.random.default_rng(5)
    n = int(FS * 0.02)
    x = noise(n, -60, rng)
    burst = qpsk_carrier(n, CH[2] - FC, -45, rng)
    t = np.arange(n) / FS
    on = (t % 4.615e-3) < 0.577e-3  # one timeslot per TDMA frame
    x += burst * on
    cp = channel_powers(x, FS, FC, CH, 180e3)
    mean_only = detect_carriers(cp)
    bursts = detect_carriers(cp, bursty=True)
    assert CH[2] in bursts.freq_hz
    i = int(np.flatnonzero(bursts.freq_hz == CH[2])[0])
    assert bursts.signal_dbfs[i] == pytest.approx(-45, abs=1.5)
    assert 0.08 <= bursts.duty_cycle[i] <= 0.2
    # the mean power of a 1/8 duty-cycle burst is about 9 dB lower
    j = int(np.flatnonzero(cp.freq_hz == CH[2])[0])
    assert cp.power_dbfs[j] < -52
    assert set(bursts.freq_hz) == {CH[2]} and set(mean_only.freq_hz) <= {CH[2]}


def test_adjacent_skirt_is_not_a_carrier():
    rng = np.random.default_rng(6)
    n = 48_000
    x = noise(n, -75, rng) + gmsk_like(n, CH[4] - FC, -20, rng)
    cp = channel_powers(x, FS, FC, CH, 180e3)
    found = detect_carriers(cp)
    assert list(found.freq_hz) == [CH[4]]


def test_noise_floor_errors():
    with pytest.raises(DspError, match="no spectrum bins"):
        noise_floor_density(np.ones(10), 5, np.zeros(10, bool))


def test_channel_powers_rejects_bad_arguments():
    x = np.zeros(4096, np.complex64)
    with pytest.raises(DspError, match="positive"):
        channel_powers(x, -1, FC, CH, 180e3)
    with pytest.raises(DspError, match="under two"):
        channel_powers(x, FS, FC, CH, 10e3)


def test_skirt_at_the_span_edge_is_not_a_carrier():
    """The neighbour lies outside the usable span, so only the skirt's own shape tells."""
    rng = np.random.default_rng(7)
    n = 48_000
    edge = CH[-1]  # 700 kHz from the centre: the last channel inside the 80 % span
    x = noise(n, -75, rng) + gmsk_like(n, edge + 200e3 - FC, -20, rng)
    cp = channel_powers(x, FS, FC, CH, 180e3)
    assert CH[-1] in cp.freq_hz and cp.snr_db[cp.freq_hz == CH[-1]][0] > 20  # the skirt is strong
    assert detect_carriers(cp).freq_hz.size == 0
