"""FM receive front end: the channelizer, the discriminator, de-emphasis and audio."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.fm.demod import (AUDIO_RATE_HZ, channel_plan, channelize, deemphasis, demodulate, discriminate,
                          fast_atan2, mono_audio)
from dsp.fm.tx import fm_broadcast_iq, fm_mpx
from rfhunt.errors import DspError
from sensors.sources.base import complex_to_cu8, cu8_to_complex64


def test_fast_atan2_matches_arctan2():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(200_000).astype(np.float32) * rng.choice([1e-3, 1, 1e3], 200_000).astype(np.float32)
    x = rng.standard_normal(200_000).astype(np.float32)
    err = fast_atan2(y, x) - np.arctan2(y, x)
    err = (err + np.pi) % (2 * np.pi) - np.pi  # +-pi is one angle
    assert np.abs(err).max() < 1.5e-5
    axes = fast_atan2(np.array([0, 1, 0, -1, 1, -1], np.float32), np.array([1, 0, -1, 0, -1, -1], np.float32))
    np.testing.assert_allclose(axes, [0, np.pi / 2, np.pi, -np.pi / 2, 3 * np.pi / 4, -3 * np.pi / 4], atol=2e-5)


_F32 = st.floats(width=32, allow_nan=False, allow_infinity=False).filter(lambda v: abs(v) < 1e30)


@settings(max_examples=200, deadline=None)
@given(_F32, _F32)
def test_fast_atan2_any_finite_input(y, x):
    got = float(fast_atan2(np.float32(y), np.float32(x)))
    assert -np.pi - 1e-4 <= got <= np.pi + 1e-4
    if abs(x) > 1e-20 or abs(y) > 1e-20:
        d = (got - math.atan2(y, x) + np.pi) % (2 * np.pi) - np.pi
        assert abs(d) < 2e-5


def test_channel_plan_rates():
    assert channel_plan(2.4e6)[:2] == (9, pytest.approx(266_666.67, abs=0.01))
    assert channel_plan(250e3)[:2] == (1, 250e3)
    assert channel_plan(2.048e6)[:2] == (8, 256e3)
    dec, rate, passband, stop = channel_plan(1.024e6)
    assert dec == 4 and passband < stop <= rate / 2
    with pytest.raises(DspError, match="sample_rate_hz"):
        channel_plan(200e3)


def _tones(n, fs, tones):
    t = np.arange(n) / fs
    return sum(a * np.exp(1j * (2 * np.pi * f * t + ph)) for f, a, ph in tones).astype(np.complex64)


@pytest.mark.parametrize("fs", [2.4e6, 2.048e6, 250e3])
def test_channelize_passes_the_channel_and_rejects_the_rest(fs):
    """Tones inside a station's channel come out exactly (amplitude, frequency, phase, time);
    tones of other channels do not."""
    n = int(0.05 * fs) + 123
    if fs > 1e6:
        stations = np.array([-700e3, 0.0, 300e3, 800e3])
        inside = [(-700e3 + 60e3, 0.3, 0.4), (300e3 - 90e3, 0.2, -1.0), (800e3 + 5e3, 0.1, 2.0), (17e3, 0.05, 0.1)]
        outside = [(-700e3 + 400e3, 0.4, 0.0)]  # 400 kHz from the first, 100 kHz from ... nothing else
    else:
        stations = np.array([0.0])
        inside = [(-80e3, 0.3, 0.4), (42e3, 0.2, 1.0)]
        outside = []
    x = _tones(n, fs, inside + outside)
    ch = channelize(x, fs, stations)
    assert ch.baseband.shape == (stations.size, n // ch.decimation)
    m = np.arange(ch.baseband.shape[1]) * ch.decimation / fs
    for s, centre in enumerate(ch.center_offset_hz):
        want = sum(a * np.exp(1j * (2 * np.pi * (f - centre) * m + ph)) for f, a, ph in inside
                   if abs(f - stations[s]) < 100e3)
        want = want if np.ndim(want) else np.zeros(m.size)
        err = np.abs(ch.baseband[s] - want)[64:-64]  # the capture's ends see the zeros beyond them
        assert err.max() < 2e-3, (s, err.max())
    assert ch.noise_bandwidth_hz == pytest.approx(2 * (ch.passband_hz + 0.375 * 25e3), rel=0.01)


@pytest.mark.parametrize("offset", [123_456.7, -400e3, 1_000.0])
def test_channelize_any_offset(offset):
    """Off the 50 kHz grid each segment of the filter bank turns by its own phase."""
    fs, n = 2.4e6, 200_000
    tone = offset + 31e3
    x = _tones(n, fs, [(tone, 0.5, 0.7)])
    ch = channelize(x, fs, np.array([offset]))
    m = np.arange(ch.baseband.shape[1]) * ch.decimation / fs
    want = 0.5 * np.exp(1j * (2 * np.pi * (tone - ch.center_offset_hz[0]) * m + 0.7))
    assert np.abs(ch.baseband[0] - want)[64:-64].max() < 2e-3


def test_channelize_cu8_bytes_like_complex():
    rng = np.random.default_rng(5)
    x = (0.3 * (rng.standard_normal(100_000) + 1j * rng.standard_normal(100_000))).astype(np.complex64)
    raw = complex_to_cu8(x)
    a = channelize(raw, 2.4e6, np.array([-500e3, 200e3]))
    b = channelize(cu8_to_complex64(raw), 2.4e6, np.array([-500e3, 200e3]))
    np.testing.assert_allclose(a.baseband, b.baseband, atol=1e-6)


@pytest.mark.parametrize("keep", [False, True])
def test_demodulate_streams_what_channelize_then_discriminate_give(keep):
    rng = np.random.default_rng(6)
    n = 300_000  # several batches of the filter bank, and a partial one
    x = fm_broadcast_iq(1.0, n, 2.4e6) * np.exp(2j * np.pi * -300e3 * np.arange(n) / 2.4e6)
    x = (x + 0.01 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    raw = complex_to_cu8(x * 0.5)
    offs = np.array([-300e3, 500e3])
    ch = channelize(raw, 2.4e6, offs)
    dm = demodulate(raw, 2.4e6, offs, keep_baseband=keep)
    # (the fast arctangent is within 1.2e-5 rad, 0.5 Hz at the channel rate)
    np.testing.assert_allclose(dm.mpx_hz, discriminate(ch.baseband, ch.sample_rate_hz), atol=1.0)
    np.testing.assert_allclose(dm.mean_power, np.mean(np.abs(ch.baseband) ** 2, axis=1), rtol=1e-4)
    assert dm.channels.baseband.shape == ((2, n // 9) if keep else (2, 0))
    if keep:
        np.testing.assert_array_equal(dm.channels.baseband, ch.baseband)


@pytest.mark.parametrize("simd", [False, True])
def test_demodulate_with_either_arctangent(monkeypatch, simd):
    """numpy's arctan2 (vectorized on AVX-512) or the polynomial: the same multiplex."""
    import dsp.fm.demod as demod_module

    monkeypatch.setattr(demod_module, "_SIMD_ATAN2", simd)
    n = 120_000
    x = fm_broadcast_iq(1.0, n, 2.4e6, audio_seed=3) * np.exp(2j * np.pi * 400e3 * np.arange(n) / 2.4e6)
    offs = np.array([400e3, -100e3, 0.0])
    ch = channelize(x.astype(np.complex64), 2.4e6, offs)
    dm = demodulate(x.astype(np.complex64), 2.4e6, offs)
    np.testing.assert_allclose(dm.mpx_hz, discriminate(ch.baseband, ch.sample_rate_hz), atol=1.0)
    assert dm.mpx_hz.shape == (3, n // 9 - 1) and dm.mpx_hz.dtype == np.float32


@pytest.mark.parametrize("iq, offsets, word", [
    (np.zeros(1000, np.complex64), [1.1e6], "edge"),
    (np.zeros(1001, np.uint8), [0.0], "cu8"),
    (np.zeros((2, 100), np.complex64), [0.0], "1-D"),
    (np.zeros(100, np.float32), [0.0], "complex"),
    (np.zeros(100, np.complex64), [np.nan], "finite"),
])
def test_channelize_bad_input(iq, offsets, word):
    with pytest.raises(DspError, match=word):
        channelize(iq, 2.4e6, np.array(offsets))


def test_discriminator_follows_the_multiplex():
    fs, dev = 250e3, 75e3
    x = fm_broadcast_iq(5.0, 20000, fs, deviation_hz=dev, audio_seed=3)
    mpx = fm_mpx(5.0, 20000, fs, audio_seed=3)
    got = discriminate(x, fs)
    assert got.dtype == np.float32 and got.shape == (19999,)
    # sample k of the discriminator is the phase step from k to k+1: the MPX at k+1
    np.testing.assert_allclose(got, mpx[1:] * dev, atol=2.0)
    stacked = discriminate(np.stack([x, x * np.exp(2j * np.pi * 1e3 * np.arange(x.size) / fs)]), fs)
    np.testing.assert_allclose(stacked[1] - stacked[0], 1e3, atol=2.0)


def test_deemphasis_is_first_order_at_50us():
    fs = 2.4e6 / 9
    n = int(fs)
    t = np.arange(n) / fs
    for f in (100.0, 1.0 / (2 * np.pi * 50e-6), 10e3, 15e3):
        want_db = -10 * np.log10(1 + (2 * np.pi * f * 50e-6) ** 2)
        y = deemphasis(np.sin(2 * np.pi * f * t), fs)[n // 2:]
        got_db = 20 * np.log10(np.sqrt(2) * y.std())
        assert got_db == pytest.approx(want_db, abs=0.1), f
    with pytest.raises(DspError):
        deemphasis(np.zeros(10), fs, tau_s=0.0)


def test_mono_audio_undoes_the_pre_emphasis():
    """The simulator pre-emphasises a harmonic comb; the audio path must give back the comb's
    normalised amplitudes (flat within a dB) at 48 kHz."""
    fs = 2.4e6 / 9
    n = int(fs * 0.5)
    from dsp.fm.tx import _audio_comb

    f0, amps_l, amps_r = _audio_comb(7, 50e-6)
    k = np.arange(1, amps_l.size + 1)
    plain = (amps_l + amps_r) / 2 / np.hypot(1.0, 2 * np.pi * k * f0 * 50e-6)
    x = fm_broadcast_iq(0.0, int(n * 9), 2.4e6, stereo=False, audio_seed=7)
    from dsp.fm.demod import channelize as ch_

    mpx = discriminate(ch_(x, 2.4e6, np.array([0.0])).baseband, fs)[0]
    audio = mono_audio(mpx, fs)
    assert audio.dtype == np.float32 and audio.size == pytest.approx(0.5 * AUDIO_RATE_HZ, rel=0.01)
    seg = audio[4800:].astype(np.float64)
    t = np.arange(seg.size) / AUDIO_RATE_HZ
    basis = np.concatenate([np.cos(2 * np.pi * np.outer(t, k * f0)), np.sin(2 * np.pi * np.outer(t, k * f0))], axis=1)
    coef = np.linalg.lstsq(basis, seg, rcond=None)[0]
    peaks = np.hypot(coef[:k.size], coef[k.size:])
    ratio_db = 20 * np.log10((peaks / peaks[0]) / (plain / plain[0]))
    assert np.abs(ratio_db).max() < 0.5
    with pytest.raises(DspError, match="1-D"):
        mono_audio(np.zeros((2, 10)), fs)
