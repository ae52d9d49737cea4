"""The receiver's IQ-imbalance image of a strong carrier is not reported as a carrier of
its own, while a real weak station in the same capture still is."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.bands import band
from dsp.fm.tx import fm_broadcast_iq
from dsp.spectrum import channel_powers
from sensors.scan import IMAGE_REJECTION_DB, iq_image, measure_block
from sensors.sources.base import IQBlock

FS = 2.4e6
FC = 98.0e6


def _capture(imbalance_db: float, *, weak_dbfs: float = -55.0, strong_dbfs: float = -8.0, seed: int = 1,
             noise_dbfs: float = -75.0, n: int = 48_000):
    t = np.arange(n) / FS
    rng = np.random.default_rng(seed)
    strong = fm_broadcast_iq(0.0, n, FS, stereo=True, audio_seed=1) * np.exp(2j * np.pi * 0.6e6 * t)
    weak = fm_broadcast_iq(0.0, n, FS, stereo=False, audio_seed=2) * np.exp(-2j * np.pi * 0.3e6 * t)
    x = 10 ** (strong_dbfs / 20) * strong + 10 ** (weak_dbfs / 20) * weak
    x += 10 ** (noise_dbfs / 20) * (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)
    g = 10 ** (imbalance_db / 40)  # the receiver's gain imbalance between I and Q
    x = x.real * g + 1j * x.imag / g
    return IQBlock(x.astype(np.complex64), FC, FS, 20.0, 1.75e9)


def _found(block):
    fm = band("fm")
    chans = fm.channel_freqs_hz()
    chans = chans[np.abs(chans - FC) < FS / 2]
    return {round(m.freq_hz) for m in measure_block(block, fm, chans, calibration_db=0.0)}


@pytest.mark.parametrize("imbalance_db", [0.1, 0.3])
def test_the_image_of_a_strong_station_is_not_a_station(imbalance_db):
    found = _found(_capture(imbalance_db))
    assert round(FC + 0.6e6) in found and round(FC - 0.3e6) in found   # the two real stations
    assert round(FC - 0.6e6) not in found                               # not the strong one's image


def test_without_the_test_the_image_would_be_reported():
    """The capture does show the image as a carrier: the test above can fail."""
    block = _capture(0.3)
    fm = band("fm")
    chans = fm.channel_freqs_hz()
    chans = chans[np.abs(chans - FC) < FS / 2]
    cp = channel_powers(block.samples, FS, FC, chans, fm.bandwidth_hz, nfft=256)
    k = int(np.argmin(np.abs(cp.freq_hz - (FC - 0.6e6))))
    assert cp.snr_db[k] > 10  # a carrier-like level at the mirror frequency
    assert iq_image(block.samples, FS, cp, np.array([FC - 0.6e6]), np.array([cp.power_dbfs[k]]), FC,
                    fm.bandwidth_hz)[0]


@pytest.mark.parametrize("n", [48_000, 1_440_000])  # a 20 ms power sweep, a 0.6 s monitor dwell
def test_an_image_barely_over_the_noise_is_still_an_image(n):
    """0.1 dB of imbalance, the image 8 dB over the noise in its channel (as the demo's car
    saw 101.3 MHz mirrored onto 102.6 MHz)."""
    block = _capture(0.1, noise_dbfs=-50.0, n=n)
    fm = band("fm")
    chans = fm.channel_freqs_hz()
    chans = chans[np.abs(chans - FC) < FS / 2]
    cp = channel_powers(block.samples, FS, FC, chans, fm.bandwidth_hz, nfft=256)
    k = int(np.argmin(np.abs(cp.freq_hz - (FC - 0.6e6))))
    assert 5 < cp.snr_db[k] < 12
    assert iq_image(block.samples, FS, cp, np.array([FC - 0.6e6]), np.array([cp.power_dbfs[k]]), FC,
                    fm.bandwidth_hz)[0]
    assert round(FC - 0.6e6) not in _found(block)


@pytest.mark.parametrize("weak_dbfs", [-28.0, -48.0])
def test_a_real_station_at_the_mirror_of_a_strong_one_is_kept(weak_dbfs):
    """A real station at the mirror frequency, 20 dB under the strong one (less than the image
    margin) or 40 dB under it (as weak as an image, but with a programme of its own), stays."""
    assert IMAGE_REJECTION_DB > 20
    block = _capture(0.0)
    fm = band("fm")
    chans = fm.channel_freqs_hz()
    chans = chans[np.abs(chans - FC) < FS / 2]
    # put the weak station on the mirror: shift it from -0.3 MHz to -0.6 MHz
    n = block.samples.size
    t = np.arange(n) / FS
    x = 10 ** (-8 / 20) * fm_broadcast_iq(0.0, n, FS, audio_seed=1) * np.exp(2j * np.pi * 0.6e6 * t)
    x += 10 ** (weak_dbfs / 20) * fm_broadcast_iq(0.0, n, FS, stereo=False, audio_seed=2) * np.exp(-2j * np.pi * 0.6e6 * t)
    x += 10 ** (-75 / 20) * np.random.default_rng(3).standard_normal(n)
    found = _found(IQBlock(x.astype(np.complex64), FC, FS, 20.0, 1.75e9))
    assert {round(FC + 0.6e6), round(FC - 0.6e6)} <= found


def test_iq_image_handles_empty_input():
    fm = band("fm")
    chans = fm.channel_freqs_hz()
    chans = chans[np.abs(chans - FC) < FS / 2]
    block = _capture(0.1)
    cp = channel_powers(block.samples, FS, FC, chans, fm.bandwidth_hz, nfft=256)
    assert iq_image(block.samples, FS, cp, np.array([]), np.array([]), FC, fm.bandwidth_hz).shape == (0,)
