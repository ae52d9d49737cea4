"""FM receive front end: every station of a capture channelized at once, then discriminated.

:func:`channelize` is a fast-convolution filter bank (overlap-save): the capture is cut into
overlapping segments of ``L = D * M`` samples and transformed once; for each station the
``M`` bins around its carrier are weighted by a flat-topped channel filter and transformed
back, which filters, mixes down and decimates by ``D`` in one step. One forward FFT serves
all stations, and each costs only a short inverse FFT. :func:`discriminate` turns the
channel baseband into instantaneous frequency (the multiplex, in Hz of deviation) with a
polar discriminator. Its arctangent is numpy's float32 ``arctan2`` where that is vectorized
(AVX-512: SVML, about 1 ns a sample), else a polynomial (about 1e-5 rad worst-case error,
under 1 Hz at the channel rate) several times faster than numpy's scalar loop.
:func:`demodulate` discriminates each batch of the filter bank for all stations at once, in
the bank's own (station, segment, sample) layout.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft as sfft
from scipy import signal

from rfhunt.errors import DspError

#: The lowest capture rate the front end takes, Hz: it holds the whole multiplex (RDS
#: reaches 59.4 kHz) and most of a 75 kHz-deviation station's spectrum.
MIN_CHANNEL_RATE_HZ = 250e3
#: Captures are decimated by the largest integer that keeps the channel at this rate or more.
TARGET_CHANNEL_RATE_HZ = 256e3
#: Flat part of the channel filter, +-Hz around the carrier (cut further at low rates).
CHANNEL_PASS_HZ = 110e3
#: Width of the channel filter's raised-cosine edge, Hz.
CHANNEL_EDGE_HZ = 25e3
#: Inverse-FFT length per segment (output samples) and the part discarded at each end.
_BLOCK_OUT = 1024
_GUARD_OUT = 32
#: Segments transformed per batch (bounds memory: batch * L complex64 per array).
_BATCH = 32

# Odd minimax polynomial for atan(a), |a| <= 1 (Abramowitz & Stegun 4.4.47, |err| <= 1e-5).
_ATAN_COEF = (0.9998660, -0.3302995, 0.1801410, -0.0851330, 0.0208351)


@dataclass(frozen=True)
class Channels:
    """The baseband of every station of a capture.

    Attributes
    ----------
    baseband : ndarray, shape (n_stations, n_samples), complex64
        Each station mixed down by ``center_offset_hz`` and decimated; the sample ``n`` of
        every row is taken at ``n / sample_rate_hz`` s after the capture's first sample.
    sample_rate_hz : float
        Channel rate (the capture's rate divided by ``decimation``).
    decimation : int
    center_offset_hz : ndarray, shape (n_stations,)
        Frequency each row was mixed down by, relative to the capture's centre, Hz: the
        asked-for offset rounded to the FFT bin (a residual of at most half a bin, shown as
        a constant added to the discriminator's output).
    passband_hz : float
        Half-width of the flat part of the channel filter, Hz.
    noise_bandwidth_hz : float
        Equivalent noise bandwidth of the channel filter, Hz: white noise of density N0
        (per Hz) comes out with power ``N0 * noise_bandwidth_hz``.
    """

    baseband: np.ndarray
    sample_rate_hz: float
    decimation: int
    center_offset_hz: np.ndarray
    passband_hz: float
    noise_bandwidth_hz: float


def channel_plan(sample_rate_hz: float) -> tuple[int, float, float, float]:
    """Decimation, channel rate (Hz), flat half-band (Hz) and stop edge (Hz) for a capture rate:
    2.4 MS/s becomes 266.7 kS/s (flat to +-110 kHz, zero from +-135 kHz), 250 kS/s stays
    (flat to +-100 kHz, zero at 125 kHz).

    Raises
    ------
    DspError
        For a rate under :data:`MIN_CHANNEL_RATE_HZ`.
    """
    if not (isinstance(sample_rate_hz, (int, float, np.integer, np.floating)) and math.isfinite(sample_rate_hz)
            and sample_rate_hz >= MIN_CHANNEL_RATE_HZ):
        raise DspError(f"sample_rate_hz must be at least {MIN_CHANNEL_RATE_HZ:.0f} Hz to demodulate FM broadcast, "
                       f"got {sample_rate_hz!r}")
    dec = max(1, int(sample_rate_hz // TARGET_CHANNEL_RATE_HZ))
    rate = sample_rate_hz / dec
    stop = min(rate / 2, CHANNEL_PASS_HZ + CHANNEL_EDGE_HZ)
    return dec, rate, stop - CHANNEL_EDGE_HZ, stop


def channel_filter(n_bins: int, bin_hz: float, pass_hz: float, stop_hz: float) -> np.ndarray:
    """Zero-phase channel filter on ``n_bins`` FFT bins (FFT order): 1 up to ``pass_hz``,
    a raised-cosine edge to 0 at ``stop_hz``."""
    f = np.abs(sfft.fftfreq(n_bins, 1.0 / (n_bins * bin_hz)))
    w = np.clip((stop_hz - f) / max(stop_hz - pass_hz, 1e-9), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * w)).astype(np.float32)


@dataclass(frozen=True)
class _Plan:
    """How a capture is cut for the filter bank (see :func:`channelize`)."""

    cu8: bool
    n_in: int
    n_out: int
    dec: int
    rate: float
    pass_hz: float
    offsets: np.ndarray
    k0: np.ndarray
    bin_hz: float
    enbw: float
    filt: np.ndarray


def _plan(iq: np.ndarray, sample_rate_hz: float, offsets_hz: np.ndarray) -> _Plan:
    if iq.ndim != 1 or not (np.iscomplexobj(iq) or (iq.dtype == np.uint8 and iq.size % 2 == 0)):
        raise DspError(f"iq must be 1-D complex or interleaved cu8 (uint8, even length), got shape {iq.shape} "
                       f"dtype {iq.dtype}")
    cu8 = iq.dtype == np.uint8
    n_in = iq.size // 2 if cu8 else iq.size
    dec, rate, pass_hz, stop_hz = channel_plan(sample_rate_hz)
    offs = np.atleast_1d(np.asarray(offsets_hz, dtype=float))
    if offs.ndim != 1 or not np.all(np.isfinite(offs)):
        raise DspError("offsets_hz must be a 1-D array of finite frequencies")
    bad = np.abs(offs) + stop_hz > sample_rate_hz / 2 + 1e-6
    if bad.any():
        raise DspError(f"station at {offs[bad][0]:+.0f} Hz from the centre is too close to the edge of a "
                       f"{sample_rate_hz:.0f} S/s capture for a +-{stop_hz / 1e3:.0f} kHz channel")
    bin_hz = sample_rate_hz / (dec * _BLOCK_OUT)
    filt = channel_filter(_BLOCK_OUT, bin_hz, pass_hz, stop_hz)
    enbw = float(np.sum(filt.astype(np.float64) ** 2) * bin_hz)
    return _Plan(cu8, n_in, n_in // dec, dec, rate, pass_hz, offs, np.rint(offs / bin_hz).astype(np.int64), bin_hz,
                 enbw, filt)


def _batches(iq: np.ndarray, plan: _Plan):
    """The filter bank, a batch of segments at a time: yields ``(o0, o1, y)`` with ``y`` of
    shape (stations, segments, kept samples) holding output samples ``o0 .. o1 - 1``."""
    m, g = _BLOCK_OUT, _GUARD_OUT
    keep = m - 2 * g
    dec, n_in, n_st = plan.dec, plan.n_in, plan.offsets.size
    seg_len, step, guard = dec * m, dec * keep, dec * g
    n_seg = -(-plan.n_out // keep)
    # each station's m bins in inverse-FFT order: k0 .. k0+m/2-1, then k0-m/2 .. k0-1
    half = m // 2
    runs = [((k % seg_len), ((k - half) % seg_len)) for k in plan.k0]
    # the filter, with the cu8 scale folded in (samples are only shifted by 127.5 below)
    win = plan.filt / np.float32(dec) * np.float32(1 / 127.5 if plan.cu8 else 1.0)
    win_hi, win_lo = win[:half].astype(np.complex64), win[half:].astype(np.complex64)
    # segment i starts at input sample i*step - guard and the FFT mixes relative to that
    # start, so each segment's output is turned by exp(-2j pi k0 (i*step - guard) / L):
    # a constant per segment, applied to its bins with the filter. When k0 * step / L is
    # whole (every station on the 50 kHz grid of a hop centred on it) it is one constant.
    frac = (plan.k0 % seg_len).astype(np.float64) / seg_len
    fixed = bool(np.all(np.abs((plan.k0 * step) % seg_len) == 0))
    if fixed:
        const = np.exp(2j * np.pi * np.mod(frac * guard, 1.0)).astype(np.complex64)
        w_fixed = [(win_hi * c, win_lo * c) for c in const]
    buf = np.zeros((_BATCH - 1) * step + seg_len, dtype=np.complex64)
    fbuf = buf.view(np.float32)
    sub = np.empty((n_st, _BATCH, m), dtype=np.complex64)
    for s0 in range(0, n_seg, _BATCH):
        s1 = min(n_seg, s0 + _BATCH)
        nb = s1 - s0
        a = s0 * step - guard  # input sample of the batch's first segment start
        b = a + (nb - 1) * step + seg_len
        lo, hi = max(a, 0), min(b, n_in)
        chunk = buf[:b - a]
        chunk[:lo - a] = 0
        if plan.cu8:
            np.subtract(iq[2 * lo:2 * hi], np.float32(127.5), out=fbuf[2 * (lo - a):2 * (hi - a)])
        else:
            chunk[lo - a:hi - a] = iq[lo:hi]
        chunk[hi - a:] = 0
        segs = np.lib.stride_tricks.sliding_window_view(chunk, seg_len)[::step]
        spec = sfft.fft(segs, axis=1, workers=1)
        if not fixed:
            start = np.arange(s0, s1, dtype=np.float64) * step - guard
            turn = np.exp(-2j * np.pi * np.mod(np.outer(start, frac), 1.0)).astype(np.complex64)
        for j, (r_hi, r_lo) in enumerate(runs):
            w_hi, w_lo = w_fixed[j] if fixed else (win_hi * turn[:, j, None], win_lo * turn[:, j, None])
            for dst, r, w in ((slice(0, half), r_hi, w_hi), (slice(half, m), r_lo, w_lo)):
                if r + half <= seg_len:
                    np.multiply(spec[:, r:r + half], w, out=sub[j, :nb, dst])
                else:  # the run wraps past the last bin
                    idx = np.arange(r, r + half) % seg_len
                    np.multiply(spec[:, idx], w, out=sub[j, :nb, dst])
        y = sfft.ifft(sub[:, :nb], axis=2, workers=1, overwrite_x=True)
        yield s0 * keep, min(plan.n_out, s1 * keep), y[:, :, g:g + keep]


def channelize(iq: np.ndarray, sample_rate_hz: float, offsets_hz: np.ndarray) -> Channels:
    """Filter, mix down and decimate every station of a capture at once.

    Parameters
    ----------
    iq : ndarray, shape (n,) complex or (2 n,) uint8
        The capture, full scale 1; or its interleaved unsigned 8-bit I/Q as an RTL-SDR
        delivers it (``cu8``), converted as ``(u - 127.5) / 127.5`` one block at a time so
        that the whole capture is never held as complex64.
    sample_rate_hz : float
        Its rate, Hz (at least 250 kHz).
    offsets_hz : array_like, shape (n_stations,)
        Carrier frequencies relative to the capture's centre, Hz.

    Returns
    -------
    Channels

    Raises
    ------
    DspError
        For a rate too low, ``iq`` neither 1-D complex nor 1-D uint8 of even length, or an
        offset whose channel would reach outside the captured band.
    """
    iq = np.asarray(iq)
    plan = _plan(iq, sample_rate_hz, offsets_hz)
    out = np.empty((plan.offsets.size, plan.n_out), dtype=np.complex64)
    if plan.n_out and plan.offsets.size:
        for o0, o1, y in _batches(iq, plan):
            for j in range(plan.offsets.size):
                out[j, o0:o1] = y[j].reshape(-1)[:o1 - o0]
    return Channels(out, plan.rate, plan.dec, plan.k0 * plan.bin_hz, plan.pass_hz, plan.enbw)


@dataclass(frozen=True)
class Demodulated:
    """Every station of a capture, discriminated (:func:`demodulate`).

    Attributes
    ----------
    mpx_hz : ndarray, shape (n_stations, n_samples - 1), float32
        Instantaneous frequency of each channel (see :func:`discriminate`), Hz.
    channels : Channels
        The channels' description; its ``baseband`` is empty (0 samples) unless kept.
    mean_power : ndarray, shape (n_stations,)
        Mean ``|z|**2`` of each channel over the capture (full scale 1).
    """

    mpx_hz: np.ndarray
    channels: Channels
    mean_power: np.ndarray


def demodulate(iq: np.ndarray, sample_rate_hz: float, offsets_hz: np.ndarray, *,
               keep_baseband: bool = False) -> Demodulated:
    """Channelize (:func:`channelize`) and discriminate (:func:`discriminate`) every station,
    a batch at a time, so that the channels' complex baseband (8 bytes a sample) is never
    held for the whole capture unless ``keep_baseband`` (evidence) asks for it.

    Every batch of the filter bank is discriminated at once for all stations and segments,
    in its own layout; only the float32 result is transposed into the output.

    Raises
    ------
    DspError
        As :func:`channelize`.
    """
    iq = np.asarray(iq)
    plan = _plan(iq, sample_rate_hz, offsets_hz)
    n_st, n = plan.offsets.size, plan.n_out
    keep = _BLOCK_OUT - 2 * _GUARD_OUT
    n_seg = -(-n // keep)
    # column c + 1 holds the phase step into output sample c + 1 (column 0: into sample 0, unused)
    buf = np.empty((n_st, n_seg * keep + 1 if n else 1), dtype=np.float32)
    base = np.empty((n_st, n if keep_baseband else 0), dtype=np.complex64)
    power = np.zeros(n_st)
    prev = np.zeros(n_st, dtype=np.complex64)
    scale = np.float32(plan.rate / (2 * np.pi))
    if n and n_st:
        prod = np.empty((n_st, _BATCH, keep), dtype=np.complex64)
        re, im = np.empty((n_st, _BATCH, keep), np.float32), np.empty((n_st, _BATCH, keep), np.float32)
        for o0, o1, y in _batches(iq, plan):
            nb = y.shape[1]
            full, rem = divmod(o1 - o0, keep)  # the last batch runs past the capture's end
            v = y[:, :full].view(np.float32)
            power += np.einsum("jik,jik->j", v, v)
            if rem:
                v = y[:, full, :rem].view(np.float32)
                power += np.einsum("jk,jk->j", v, v)
            if keep_baseband:
                base[:, o0:o1] = y.reshape(n_st, -1)[:, :o1 - o0]
            p = prod[:, :nb]
            # steps within each segment, then into each segment's first sample from the one before
            np.conjugate(y[:, :, :-1], out=p[:, :, 1:])
            np.multiply(p[:, :, 1:], y[:, :, 1:], out=p[:, :, 1:])
            np.multiply(y[:, 1:, 0], np.conj(y[:, :-1, -1]), out=p[:, 1:, 0])
            np.multiply(y[:, 0, 0], np.conj(prev), out=p[:, 0, 0])
            prev = y[:, -1, -1].copy()
            dst = buf[:, o0:o0 + nb * keep].reshape(n_st, nb, keep)
            _angle_into(p, dst, re[:, :nb], im[:, :nb])
            dst *= scale
    ch = Channels(base, plan.rate, plan.dec, plan.k0 * plan.bin_hz, plan.pass_hz, plan.enbw)
    return Demodulated(buf[:, 1:max(n, 1)], ch, power / max(n, 1))


#: numpy's float32 arctan2 is vectorized (SVML) on AVX-512 machines; elsewhere the
#: polynomial below is faster than its scalar loop.
def _cpu_features() -> dict:
    """numpy's view of the CPU's SIMD extensions (empty when it does not tell)."""
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # numpy 2, numpy 1
        try:
            return dict(getattr(importlib.import_module(name), "__cpu_features__", {}))
        except ImportError:
            continue
    return {}


_SIMD_ATAN2 = bool(_cpu_features().get("AVX512_SKX", False))


def _angle_into(p: np.ndarray, out: np.ndarray, re: np.ndarray, im: np.ndarray) -> None:
    """``out[...] = angle(p)`` for complex64 ``p`` into float32 ``out`` of its shape, with
    float32 scratch ``re`` and ``im`` of that shape (the parts made contiguous first)."""
    np.copyto(re, p.real)
    np.copyto(im, p.imag)
    if _SIMD_ATAN2:
        np.arctan2(im, re, out=out)
        return
    c = min(out[0].size, _CHUNK) if out.size else 0
    t1, t2 = np.empty(c, np.float32), np.empty(c, np.float32)
    sign = np.empty(c, np.int32)
    for o_row, re_row, im_row in zip(out, re, im):  # each row is contiguous (views, not copies)
        fo, fre, fim = o_row.reshape(-1), re_row.reshape(-1), im_row.reshape(-1)
        for i in range(0, fo.size, c):
            j = min(fo.size, i + c)
            k = j - i
            _atan2_into(fim[i:j], fre[i:j], fo[i:j], t1[:k], t2[:k], sign[:k])


_QUARTER_PI = np.float32(np.pi / 4)
_HALF_PI = np.float32(np.pi / 2)
_SIGN_BIT = np.int32(-2**31)
#: Samples per chunk of the discriminator: its temporaries stay in the CPU cache.
_CHUNK = 16384


def _atan2_into(y: np.ndarray, x: np.ndarray, out: np.ndarray, t1: np.ndarray, t2: np.ndarray,
                sign: np.ndarray) -> None:
    """``out = arctan2(y, x)`` for contiguous float32 arrays, with scratch arrays of their size.

    The first quadrant's angle is ``pi/4 + atan(u)``, ``u = (|y| - |x|) / (|y| + |x|)`` in
    [-1, 1]; the signs of ``x`` and ``y`` then reflect it, copied bitwise (no branches).
    """
    np.abs(x, out=t1)
    np.abs(y, out=t2)
    np.subtract(t2, t1, out=out)
    np.add(t2, t1, out=t1)
    np.add(t1, np.float32(1e-30), out=t1)
    np.divide(out, t1, out=t1)  # u
    np.multiply(t1, t1, out=t2)  # u^2
    np.multiply(t2, np.float32(_ATAN_COEF[-1]), out=out)
    for c in _ATAN_COEF[-2:0:-1]:
        np.add(out, np.float32(c), out=out)
        np.multiply(out, t2, out=out)
    np.add(out, np.float32(_ATAN_COEF[0]), out=out)
    np.multiply(out, t1, out=out)  # atan(u)
    np.subtract(_QUARTER_PI, out, out=out)  # pi/2 - first-quadrant angle, >= 0
    bits = out.view(np.int32)
    np.bitwise_and(x.view(np.int32), _SIGN_BIT, out=sign)
    np.bitwise_or(bits, sign, out=bits)  # x < 0: the angle from the negative axis
    np.subtract(_HALF_PI, out, out=out)
    np.bitwise_and(y.view(np.int32), _SIGN_BIT, out=sign)
    np.bitwise_or(bits, sign, out=bits)


def fast_atan2(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``arctan2(y, x)`` in float32 from a polynomial, worst-case error about 1.2e-5 rad.

    ``arctan2(0, 0)`` gives pi/4 (a discriminator never meets it but on an all-zero input).
    """
    y, x = np.broadcast_arrays(np.asarray(y, dtype=np.float32), np.asarray(x, dtype=np.float32))
    y, x = np.array(y, order="C"), np.array(x, order="C")  # copies keep 0-d inputs 0-d
    out = np.empty(y.shape, dtype=np.float32)
    fo, fy, fx = out.reshape(-1), y.reshape(-1), x.reshape(-1)
    n = fo.size
    t1, t2 = np.empty(min(n, _CHUNK), np.float32), np.empty(min(n, _CHUNK), np.float32)
    sign = np.empty(min(n, _CHUNK), np.int32)
    for i in range(0, n, _CHUNK):
        j = min(n, i + _CHUNK)
        _atan2_into(fy[i:j], fx[i:j], fo[i:j], t1[:j - i], t2[:j - i], sign[:j - i])
    return out


def discriminate(baseband: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Instantaneous frequency of complex baseband (polar discriminator), Hz.

    Parameters
    ----------
    baseband : ndarray of complex, shape (..., n)
    sample_rate_hz : float

    Returns
    -------
    ndarray of float32, shape (..., n - 1)
        ``angle(z[n] * conj(z[n-1])) * fs / (2 pi)``: sample ``k`` lies between input
        samples ``k`` and ``k + 1``.
    """
    z = np.asarray(baseband, dtype=np.complex64)
    lead = z.shape[:-1]
    z2 = z.reshape(-1, z.shape[-1])
    n = max(z2.shape[1] - 1, 0)
    out = np.empty((z2.shape[0], n), dtype=np.float32)
    c = min(n, _CHUNK)
    prod = np.empty(c, np.complex64)
    re, im = np.empty(c, np.float32), np.empty(c, np.float32)
    t1, t2, sign = np.empty(c, np.float32), np.empty(c, np.float32), np.empty(c, np.int32)
    scale = np.float32(sample_rate_hz / (2 * np.pi))
    for row, o in zip(z2, out):
        for i in range(0, n, _CHUNK):
            j = min(n, i + _CHUNK)
            k = j - i
            np.conjugate(row[i:j], out=prod[:k])
            np.multiply(prod[:k], row[i + 1:j + 1], out=prod[:k])
            re[:k] = prod.real[:k]
            im[:k] = prod.imag[:k]
            _atan2_into(im[:k], re[:k], o[i:j], t1[:k], t2[:k], sign[:k])
            o[i:j] *= scale
    return out.reshape(lead + (n,))


def deemphasis(mpx_hz: np.ndarray, sample_rate_hz: float, tau_s: float = 50e-6) -> np.ndarray:
    """First-order de-emphasis (time constant ``tau_s``: 50 µs in Europe and China, 75 µs
    in the Americas) along the last axis: ``1 / (1 + s tau)`` by the bilinear transform
    (apply it at a rate well above the audio band: at 250 kHz it is within 0.1 dB of the
    analogue response up to 15 kHz).

    Raises
    ------
    DspError
        For a non-positive time constant or rate.
    """
    if not tau_s > 0 or not sample_rate_hz > 0:
        raise DspError(f"tau_s and sample_rate_hz must be positive, got {tau_s!r}, {sample_rate_hz!r}")
    fc = 1.0 / (2 * np.pi * tau_s)
    z, p, k = signal.bilinear_zpk([], [-2 * np.pi * fc], 2 * np.pi * fc, fs=sample_rate_hz)
    b, a = signal.zpk2tf(z, p, k)
    return signal.lfilter(b, a, np.asarray(mpx_hz, dtype=np.float64), axis=-1)


#: Rate of demodulated audio, Hz, and its band (mono programme: L+R up to 15 kHz).
AUDIO_RATE_HZ = 48000
AUDIO_MAX_HZ = 15e3


def mono_audio(mpx_hz: np.ndarray, sample_rate_hz: float, *, tau_s: float = 50e-6,
               deviation_hz: float = 75e3) -> np.ndarray:
    """The mono programme (L+R) of a multiplex: 15 kHz low-pass, de-emphasis, 48 kHz.

    Parameters
    ----------
    mpx_hz : ndarray, shape (n,)
        Discriminator output, Hz (its mean, the carrier offset, is removed).
    sample_rate_hz : float
        Its rate, Hz.
    tau_s : float
        De-emphasis time constant, s.
    deviation_hz : float
        Deviation that maps to full scale, Hz.

    Returns
    -------
    ndarray of float32
        Audio at :data:`AUDIO_RATE_HZ`, ``deviation_hz`` at 1; audio that would pass 1 (an
        over-deviated station) is scaled to a peak of 0.9 instead of clipping.

    Raises
    ------
    DspError
        For input that is not 1-D, or a rate with no short rational ratio to 48 kHz.
    """
    x = np.asarray(mpx_hz, dtype=np.float64)
    if x.ndim != 1:
        raise DspError(f"mpx_hz must be 1-D, got shape {x.shape}")
    x = x - (x.mean() if x.size else 0.0)
    ratio = Fraction(AUDIO_RATE_HZ) / Fraction(sample_rate_hz).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    if up > 1000 or down > 1000:
        raise DspError(f"cannot resample {sample_rate_hz} Hz to {AUDIO_RATE_HZ} Hz with a short rational ratio")
    # de-emphasis at the multiplex rate, where the bilinear transform hardly warps 15 kHz
    x = deemphasis(x, sample_rate_hz, tau_s)
    taps = signal.firwin(24 * max(up, down) + 1, AUDIO_MAX_HZ, fs=sample_rate_hz * up, window=("kaiser", 8.0))
    audio = signal.resample_poly(x, up, down, window=taps * up) / deviation_hz
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:  # an over-deviated station: scaled down rather than clipped
        audio *= 0.9 / peak
    return audio.astype(np.float32)
