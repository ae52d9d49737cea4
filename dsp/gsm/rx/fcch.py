"""FCCH detection and carrier frequency offset, all channels at once.

The frequency-correction burst is 148 zero bits, i.e. a pure tone at ``+f_s/4 = +67.708 kHz``
above the carrier for 148 symbols (546 µs), repeated on timeslot 0 every 10 or 11 frames.

Detection runs in two stages, both vectorized over channels and candidates:

1. *Search*: the channel streams are taken at one sample per symbol and cut into 64-symbol
   windows with 50 % overlap; a window scores the fraction of its power in the strongest pair
   of adjacent FFT bins within ``+67.7 kHz +- max_offset_hz``. A tone scores close to 1,
   GMSK data and noise far less. Two consecutive windows above ``search_threshold`` with the
   same peak bin (+-1) make a candidate.
2. *Confirmation and estimation* at the full stream rate: after mixing the nominal tone
   down, the lag-one-symbol product ``u[n] conj(u[n - sps])`` of a tone is a constant;
   its 148-symbol moving sum peaks where the burst starts. The frequency is then refined by
   the phase of lag products over 1, 8 and 64 symbols (each resolving the next one's
   ambiguity), and the burst is kept when its coherent tone fraction (power of the tone at
   the estimated frequency over total power, 1 for a clean tone, ``rho / (1 + rho)`` at
   SNR ``rho``, about ``1/140`` for noise) exceeds ``confirm_threshold``.

This follows the idea of OsmocomBB/gr-gsm (a tone at +67.7 kHz held for a whole burst) with a
spectral search instead of counting positive phase steps, which holds up to lower SNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from dsp.gsm import constants as c
from rfhunt.errors import DspError

_WIN = 64
_HOP = 32
#: Symbols of the FCCH burst used for estimation (the 148 bits minus 12 at each end, where
#: the transitions from and to the neighbouring bursts ring through the channel filter).
_INNER = 124


@dataclass(frozen=True)
class FcchBursts:
    """FCCH bursts found in channel streams.

    Attributes
    ----------
    channel : numpy.ndarray
        int64 row of the channel stream each burst was found in, ``(n_bursts,)``.
    start : numpy.ndarray
        float64 sample index (stream rate) of the burst's first bit (the tone's start).
    offset_hz : numpy.ndarray
        Carrier frequency of the burst relative to the stream's 0 Hz, Hz (tone minus
        67.708 kHz).
    score : numpy.ndarray
        Coherent tone fraction 0..1 over the burst.
    """

    channel: np.ndarray
    start: np.ndarray
    offset_hz: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class FcchResult:
    """Per-channel FCCH summary.

    Attributes
    ----------
    detected : numpy.ndarray
        bool ``(n_channels,)``: at least one FCCH burst confirmed.
    offset_hz : numpy.ndarray
        Carrier offset of each channel relative to its stream's 0 Hz, Hz (score-weighted
        mean of its bursts after dropping outliers); NaN where nothing was detected.
    offset_std_hz : numpy.ndarray
        Spread (standard deviation) of the per-burst estimates, Hz; NaN with fewer than 2.
    bursts : FcchBursts
        Every confirmed burst, sorted by channel then time.
    """

    detected: np.ndarray
    offset_hz: np.ndarray
    offset_std_hz: np.ndarray
    bursts: FcchBursts

    def burst_starts(self, channel: int) -> np.ndarray:
        """Stream sample indices of the FCCH bursts of ``channel``."""
        return self.bursts.start[self.bursts.channel == channel]


def _mixer(freq_hz: np.ndarray, n: int, fs: float) -> np.ndarray:
    """complex64 ``(len(freq_hz), n)`` rows ``exp(-2j pi f k / fs)``, k = 0 .. n-1.

    Built as the product of a coarse (every 32nd sample) and a fine (32 samples) phasor,
    both evaluated in double precision, so only ``n / 16`` complex exponentials per row.
    """
    f = np.asarray(freq_hz, dtype=np.float64).reshape(-1, 1)
    n_hi = -(-n // 32)
    hi = np.exp(-2j * np.pi * f * (32.0 * np.arange(n_hi) / fs)).astype(np.complex64)
    lo = np.exp(-2j * np.pi * f * (np.arange(32) / fs)).astype(np.complex64)
    return (hi[:, :, None] * lo[:, None, :]).reshape(f.shape[0], -1)[:, :n]


def _moving_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``n`` consecutive values along the last axis (length ``m - n + 1``)."""
    cs = np.cumsum(x, axis=-1, dtype=np.complex128 if np.iscomplexobj(x) else np.float64)
    cs = np.concatenate((np.zeros(cs.shape[:-1] + (1,), cs.dtype), cs), axis=-1)
    return cs[..., n:] - cs[..., :-n]


def _search(iq: np.ndarray, sps: int, max_offset_hz: float, threshold: float):
    """Stage 1: candidate (channel, symbol index, coarse offset Hz)."""
    z = iq[:, ::sps]
    m = z.shape[1]
    if m < _WIN + _HOP:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(z, _WIN, axis=1)[:, ::_HOP, :]
    spec = scipy.fft.fft(frames.astype(np.complex64), axis=2, workers=1, overwrite_x=True)
    p = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    total = p.sum(axis=2) + np.float32(1e-30)
    bin_hz = c.SYMBOL_RATE_HZ / _WIN
    centre = int(round(c.FCCH_OFFSET_HZ / bin_hz))
    span = max(1, int(math.ceil(max_offset_hz / bin_hz)))
    lo, hi = max(1, centre - span), min(_WIN // 2 - 1, centre + span)
    pair = p[:, :, lo:hi] + p[:, :, lo + 1:hi + 1]
    k = np.argmax(pair, axis=2)
    ratio = np.take_along_axis(pair, k[..., None], axis=2)[..., 0] / total
    hit = ratio > threshold
    both = hit[:, :-1] & hit[:, 1:] & (np.abs(k[:, :-1] - k[:, 1:]) <= 1)
    ch, w = np.nonzero(both)
    if ch.size == 0:
        return ch.astype(np.int64), w.astype(np.int64), np.zeros(0)
    # One candidate per cluster of paired windows (a burst spans at most 4 windows).
    new = np.ones(ch.size, bool)
    new[1:] = (ch[1:] != ch[:-1]) | (w[1:] - w[:-1] > 3)
    ch, w = ch[new], w[new]
    kk = k[ch, w] + lo
    # Coarse frequency: power centroid of the peak bin and its neighbours.
    nb = kk[:, None] + np.arange(-1, 3)
    pw = p[ch[:, None], w[:, None], np.clip(nb, 0, _WIN - 1)]
    coarse = (pw * nb).sum(1) / np.maximum(pw.sum(1), 1e-30) * bin_hz - c.FCCH_OFFSET_HZ
    return ch.astype(np.int64), (w * _HOP).astype(np.int64), coarse


def _refine(iq: np.ndarray, sps: int, fs: float, ch: np.ndarray, sym0: np.ndarray, coarse: np.ndarray):
    """Stage 2: start sample, offset Hz and tone fraction of each candidate."""
    n = iq.shape[1]
    pre, seg_sym = 80, 330
    seg_len = seg_sym * sps
    first = (sym0 - pre) * sps
    idx = first[:, None] + np.arange(seg_len)
    valid = (idx >= 0) & (idx < n)
    seg = iq[ch[:, None], np.clip(idx, 0, n - 1)] * valid
    u = seg * _mixer(c.FCCH_OFFSET_HZ + coarse, seg_len, fs)
    q = u[:, sps:] * np.conj(u[:, :-sps])
    length = c.BURST_BITS * sps
    s = _moving_sum(q, length - sps)
    best = np.argmax(np.abs(s), axis=1)
    rows = np.arange(ch.size)
    f1 = coarse + np.angle(s[rows, best]) / (2 * np.pi * sps / fs)
    start = first + best  # q[j] pairs u[j + sps] with u[j]: the tone spans u[best .. best + length)
    f, score = _estimate(u, best, f1 - coarse, sps, fs)
    return start.astype(np.float64), coarse + f, score


def _estimate(u: np.ndarray, start: np.ndarray, f1: np.ndarray, sps: int, fs: float):
    """Tone frequency (Hz, relative to u's mixing) and tone fraction of the burst interior.

    ``u`` rows hold a tone starting at sample ``start`` whose frequency is within a few kHz
    of ``f1``; lag products over 8 and 64 symbols refine it.
    """
    rows = np.arange(u.shape[0])
    off = (c.BURST_BITS - _INNER) // 2
    k = start[:, None] + (off + np.arange(_INNER))[None, :] * sps
    v = u[rows[:, None], np.clip(k, 0, u.shape[1] - 1)]
    # Mixing each row by exp(-2j pi f (k - start) / fs) up to a constant phase per row (which
    # neither the lag products nor the tone fraction see): sample i of v is symbol off + i.
    f = f1
    for lag in (8, 64):
        w = v * _mixer(f * sps, _INNER, fs)
        lp = (w[:, lag:] * np.conj(w[:, :-lag])).sum(axis=1)
        f = f + np.angle(lp) / (2 * np.pi * lag * sps / fs)
    w = v * _mixer(f * sps, _INNER, fs)
    score = np.abs(w.sum(axis=1)) ** 2 / (_INNER * np.maximum((np.abs(w) ** 2).sum(axis=1), 1e-30))
    return f, score


def fcch_offset_at(iq: np.ndarray, sample_rate_hz: float, channel: np.ndarray, start: np.ndarray,
                   offset_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carrier offset measured on FCCH bursts whose start is known exactly.

    Used once the SCH has fixed the TDMA grid: the search stage's start estimate can be
    a few symbols off where the preceding burst's tail and guard bits (all ones) also
    produce the +67.7 kHz tone, which biases a frequency estimate by some Hz.

    Parameters
    ----------
    iq : numpy.ndarray
        complex ``(n_channels, n_samples)`` channel streams.
    sample_rate_hz : float
        Stream rate, Hz (1, 2 or 4 samples per symbol).
    channel : numpy.ndarray
        int row of each burst.
    start : numpy.ndarray
        Stream sample index of each burst's bit 0.
    offset_hz : numpy.ndarray
        Current offset estimate per burst, Hz (within about 4 kHz).

    Returns
    -------
    offset_hz, score : numpy.ndarray
        Refined carrier offset (Hz, relative to the stream's 0 Hz) and tone fraction per burst.
    """
    x = np.asarray(iq)
    sps = int(round(sample_rate_hz / c.SYMBOL_RATE_HZ))
    ch = np.asarray(channel, dtype=np.int64)
    st = np.rint(np.asarray(start, dtype=np.float64)).astype(np.int64)
    off = np.broadcast_to(np.asarray(offset_hz, dtype=np.float64), ch.shape)
    length = c.BURST_BITS * sps
    idx = st[:, None] + np.arange(length)
    valid = (idx >= 0) & (idx < x.shape[1])
    seg = x[ch[:, None], np.clip(idx, 0, x.shape[1] - 1)] * valid
    t = np.arange(length) / sample_rate_hz
    u = seg * np.exp(-2j * np.pi * (c.FCCH_OFFSET_HZ + off)[:, None] * t[None, :])
    f, score = _estimate(u, np.zeros(ch.size, np.int64), np.zeros(ch.size), sps, float(sample_rate_hz))
    return off + f, score


def _suppress_leaks(ch, start, score, freqs, sps):
    """Drop bursts that are a stronger neighbour channel's FCCH seen through the filter skirt."""
    if freqs is None or ch.size < 2:
        return np.ones(ch.size, bool)
    f = np.asarray(freqs, dtype=np.float64)[ch]
    near = np.abs(f[:, None] - f[None, :]) < 300e3
    same_time = np.abs(start[:, None] - start[None, :]) < 8 * sps
    stronger = score[None, :] > 1.5 * score[:, None]
    return ~np.any(near & same_time & stronger & (ch[:, None] != ch[None, :]), axis=1)


def detect_fcch(iq: np.ndarray, sample_rate_hz: float, *, max_offset_hz: float = 60e3,
                search_threshold: float = 0.3, confirm_threshold: float = 0.2,
                channel_freqs_hz: np.ndarray | None = None) -> FcchResult:
    """Find the FCCH bursts of every channel stream and estimate each carrier's offset.

    Parameters
    ----------
    iq : numpy.ndarray
        complex ``(n_channels, n_samples)`` channel streams (e.g.
        :attr:`~dsp.gsm.rx.channelizer.Channelized.iq`), carrier near 0 Hz.
    sample_rate_hz : float
        Stream rate, Hz; a whole number (1, 2 or 4) of samples per GSM symbol.
    max_offset_hz : float
        Largest carrier offset searched, Hz (up to 65 kHz).
    search_threshold : float
        Fraction of a 64-symbol window's power in two adjacent bins that makes a search hit.
    confirm_threshold : float
        Coherent tone fraction over the burst needed to confirm it.
    channel_freqs_hz : array_like, optional
        Centre of each stream, Hz. When given, a burst is dropped if a channel less than
        300 kHz away holds a burst at the same time with a 1.5 times higher tone fraction
        (a strong neighbour's FCCH leaking through the channel filter's skirt).

    Returns
    -------
    FcchResult
        Per-channel detection and offset, and every confirmed burst.
    """
    x = np.asarray(iq)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.dtype.kind != "c":
        raise DspError(f"iq must be a complex (n_channels, n_samples) array, got shape {x.shape} dtype {x.dtype}")
    sps_f = sample_rate_hz / c.SYMBOL_RATE_HZ if sample_rate_hz and math.isfinite(sample_rate_hz) else 0.0
    sps = int(round(sps_f))
    if sps not in (1, 2, 4) or abs(sps_f - sps) > 1e-6:
        raise DspError(f"sample_rate_hz must be 1, 2 or 4 times the GSM symbol rate, got {sample_rate_hz!r}")
    if not 0 < max_offset_hz <= 65e3:
        raise DspError(f"max_offset_hz must be in (0, 65000], got {max_offset_hz!r}")
    if not 0 < search_threshold < 1 or not 0 < confirm_threshold < 1:
        raise DspError("search_threshold and confirm_threshold must be in (0, 1), got "
                       f"{search_threshold!r}, {confirm_threshold!r}")
    n_ch = x.shape[0]
    ch, sym0, coarse = _search(x, sps, max_offset_hz, search_threshold)
    if ch.size:
        start, off, score = _refine(x, sps, float(sample_rate_hz), ch, sym0, coarse)
        keep = (score > confirm_threshold) & (np.abs(off) <= max_offset_hz + 5e3) & np.isfinite(off)
        ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
        # Duplicates (two candidates on one burst) collapse to the best-scoring one.
        order = np.lexsort((-score, start, ch))
        ch, start, off, score = ch[order], start[order], off[order], score[order]
        dup = np.zeros(ch.size, bool)
        dup[1:] = (ch[1:] == ch[:-1]) & (np.abs(start[1:] - start[:-1]) < 100 * sps)
        keep = ~dup
        ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
        keep = _suppress_leaks(ch, start, score, channel_freqs_hz, sps)
        ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
    else:
        start = off = score = np.zeros(0)
    detected = np.zeros(n_ch, bool)
    offset = np.full(n_ch, np.nan)
    spread = np.full(n_ch, np.nan)
    for k in np.unique(ch):  # per channel with bursts: a handful of values each
        o, s = off[ch == k], score[ch == k]
        med = np.median(o)
        good = (np.abs(o - med) < 1000.0) & (s > 0)
        if not good.any():
            continue
        detected[k] = True
        offset[k] = np.average(o[good], weights=s[good])
        if good.sum() > 1:
            spread[k] = float(np.std(o[good]))
    keep = detected[ch]
    ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
    return FcchResult(detected=detected, offset_hz=offset, offset_std_hz=spread,
                      bursts=FcchBursts(channel=ch.astype(np.int64), start=start, offset_hz=off, score=score))
