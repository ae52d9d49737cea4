"""FCCH detection and carrier frequency offset, all channels at once.

The frequency-correction burst is 148 zero bits, i.e. a pure tone at ``+f_s/4 = +67.708 kHz``
above the carrier for 148 symbols (546 µs), repeated on timeslot 0 every 10 or 11 frames.

Detection runs in two stages, both vectorized over channels and candidates:

1. *Search*: the channel streams are cut into 64-symbol windows with 50 % overlap; a window
   scores the fraction of its power in the strongest pair of adjacent FFT bins within
   ``+67.7 kHz +- max_offset_hz``. A tone scores close to 1, GMSK data and noise far less.
   Two consecutive windows above ``search_threshold`` with the same peak bin (+-1) make a
   candidate. Channels are searched at one sample per symbol against the whole stream
   band (cheap), but that folds the neighbour channels (+-200 kHz) onto the tone's range:
   a channel next to a stream with over twice its in-channel power is searched at the
   full stream rate instead, and one with any stronger neighbour in which the first search
   confirmed nothing is searched again at the full rate. At the full rate each
   pair of bins is scored against the band from 100 kHz below to 30 kHz above it (its own
   channel, without most of the upper neighbour's skirt), the pair with the best score
   being taken.
2. *Confirmation and estimation* at the full stream rate: after mixing the nominal tone
   down, the lag-one-symbol product ``u[n] conj(u[n - sps])`` of a tone is a constant;
   its 148-symbol moving sum peaks where the burst starts. The frequency is then refined by
   the phase of lag products over 1, 8 and 64 symbols (each resolving the next one's
   ambiguity), and the burst is kept when its coherent tone fraction (power of the tone at
   the estimated frequency over total power, 1 for a clean tone, ``rho / (1 + rho)`` at
   SNR ``rho``, about ``1/140`` for noise) exceeds ``confirm_threshold``. On channels
   searched at the full rate the estimates are made through a +-20 kHz low-pass around the
   tone and the tone fraction is measured in the band from 150 kHz below to 15 kHz above
   it, which keeps out the neighbours (3GPP TS 45.005 §6.3 asks for reception next to a
   carrier 9 dB stronger).

A channel's offset is that of the cluster of bursts (within 1 kHz) with the highest sum of
squared tone fractions: a stronger neighbour's tone-like stretches can be confirmed more
often than the cell's own FCCH, but with far lower scores.

This follows the idea of OsmocomBB/gr-gsm (a tone at +67.7 kHz held for a whole burst) with a
spectral search instead of counting positive phase steps, which holds up to lower SNR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

from dsp.gsm import constants as c
from rfhunt.errors import DspError

_WIN = 64
_HOP = 32
#: Symbols of the FCCH burst used for estimation (the 148 bits minus 12 at each end, where
#: the transitions from and to the neighbouring bursts ring through the channel filter).
_INNER = 124
#: Band a full-rate search window's tone is compared with: from this far below the tone
#: (the carrier sits 67.7 kHz below it) ...
_BAND_BELOW_HZ = 100e3
#: ... to this far above it, Hz. The upper neighbour's carrier is 132 kHz above the tone
#: and its GMSK spectrum reaches down to within a few tens of kHz of it.
_BAND_ABOVE_HZ = 30e3
#: Half-width of the band whose power decides whether a stream has a stronger neighbour, Hz.
_CHANNEL_HZ = 100e3
#: Transition width of the tone band pass (below), Hz.
_TONE_WIDTH_HZ = 40e3
#: -6 dB edge and transition width of the symmetric low-pass the tone's start and
#: frequency are estimated on (after mixing the tone to 0 Hz), Hz.
_TONE_EST_HZ = 20e3
_TONE_EST_WIDTH_HZ = 30e3
#: Lower and upper -6 dB edges of the complex band pass the tone fraction is measured in,
#: Hz below and above the tone: the channel and what lies below it in the stream, but not
#: the part next to the upper neighbour (whose carrier is 132 kHz above the tone, its GMSK
#: spectrum reaching down to within a few tens of kHz of it; the lower neighbour's carrier
#: is 268 kHz below).
_TONE_BELOW_HZ = 150e3
_TONE_ABOVE_HZ = 15e3
#: Length of both tone filters, symbols.
_TONE_TAPS = 20
#: Power ratio to a neighbour stream above which a channel is searched at the full rate
#: (channels with any stronger neighbour are when the first search confirms nothing).
_WIDE_RATIO = 2.0


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
        Carrier offset of each channel relative to its stream's 0 Hz, Hz: score-weighted
        mean of its bursts within 1 kHz of the offset with the highest support (the sum of
        the squared scores of the bursts within 1 kHz of it); NaN where nothing was detected.
    offset_std_hz : numpy.ndarray
        Spread (standard deviation) of the per-burst estimates, Hz; NaN with fewer than 2.
    bursts : FcchBursts
        Every confirmed burst that agrees with its channel's offset, sorted by channel then
        time.
    full_rate : numpy.ndarray or None
        bool ``(n_channels,)``: the channel has a stronger neighbour and was searched at the
        full stream rate, its bursts measured through the tone filters (None: unknown).
    """

    detected: np.ndarray
    offset_hz: np.ndarray
    offset_std_hz: np.ndarray
    bursts: FcchBursts
    full_rate: np.ndarray | None = None

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


def _window_scores(z: np.ndarray, n_fft: int, hop: int, kr: np.ndarray, band: tuple[int, int] | None):
    """Tone score of every search window of rows ``z``.

    Windows of ``n_fft`` samples every ``hop`` samples; bin ``k`` is ``k * f_s / n_fft`` Hz.
    For each window the strongest pair of bins ``(k, k + 1)``, ``k`` in ``kr`` (ascending,
    positive), is scored against the window's total power (``band`` None; the strongest pair
    is taken) or, with ``band = (below, above)``, against the power in bins
    ``k - below .. k + 1 + above`` (the pair with the highest score is taken).

    Returns
    -------
    ratio : numpy.ndarray
        float32 ``(rows, windows)`` score.
    k : numpy.ndarray
        int ``(rows, windows)`` lower bin of the best pair.
    p : numpy.ndarray
        float32 ``(rows, windows, n_b)`` bin powers, bin ``b0 + i`` in ``p[..., i]``.
    b0 : int
        First bin of ``p`` (negative bins are below 0 Hz).
    """
    frames = np.lib.stride_tricks.sliding_window_view(z, n_fft, axis=1)[:, ::hop, :]
    spec = scipy.fft.fft(frames.astype(np.complex64), axis=2, workers=1, overwrite_x=True)
    if band is None:
        b0, b1 = 0, n_fft - 1
        p = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    else:
        below, above = band
        b0 = max(-(n_fft // 2), int(kr[0]) - below)
        b1 = min(n_fft // 2 - 1, int(kr[-1]) + 1 + above)
        sub = np.concatenate((spec[:, :, n_fft + b0:], spec[:, :, :b1 + 1]), axis=2) if b0 < 0 else \
            spec[:, :, b0:b1 + 1]
        p = (sub.real ** 2 + sub.imag ** 2).astype(np.float32)
    pair = p[:, :, kr - b0] + p[:, :, kr + 1 - b0]
    if band is None:
        j = np.argmax(pair, axis=2)
        ratio = np.take_along_axis(pair, j[..., None], axis=2)[..., 0] / (p.sum(axis=2) + np.float32(1e-30))
    else:
        # The best pair is the one standing out most from its band, not the strongest: the
        # upper neighbour's skirt can hold more power per bin than a weak cell's tone.
        cs = np.concatenate((np.zeros(p.shape[:2] + (1,), np.float32), np.cumsum(p, axis=2)), axis=2)
        e0 = np.clip(kr - below - b0, 0, b1 - b0 + 1)
        e1 = np.clip(kr + 2 + above - b0, 0, b1 - b0 + 1)
        r_all = pair / (cs[:, :, e1] - cs[:, :, e0] + np.float32(1e-30))
        j = np.argmax(r_all, axis=2)
        ratio = np.take_along_axis(r_all, j[..., None], axis=2)[..., 0]
    return ratio, kr[j], p, b0


def _search(iq: np.ndarray, sps: int, max_offset_hz: float, threshold: float, wide: np.ndarray):
    """Stage 1: candidate (channel, symbol index, coarse offset Hz).

    Rows where ``wide`` is False are searched at one sample per symbol over the whole
    stream band (cheap; the stream's +-200 kHz neighbours fold onto the tone's range, which
    only matters where they are stronger), rows where it is True at the full stream rate
    with the tone scored against the channel band alone.
    """
    bin_hz = c.SYMBOL_RATE_HZ / _WIN
    centre = int(round(c.FCCH_OFFSET_HZ / bin_hz))
    span = max(1, int(math.ceil(max_offset_hz / bin_hz)))
    out_ch, out_w, out_k, out_pw = [], [], [], []
    for rows, step in ((np.flatnonzero(~wide), 1), (np.flatnonzero(wide), sps)):
        if rows.size == 0 or iq.shape[1] < (_WIN + _HOP) * sps:
            continue
        n_fft = _WIN * step
        z = iq[rows, ::sps] if step == 1 else iq[rows]
        kr = np.arange(max(1, centre - span), min(n_fft // 2 - 1, centre + span))
        band = (round(_BAND_BELOW_HZ / bin_hz), round(_BAND_ABOVE_HZ / bin_hz)) if step > 1 else None
        ratio, k, p, b0 = _window_scores(z, n_fft, _HOP * step, kr, band)
        hit = ratio > threshold
        both = hit[:, :-1] & hit[:, 1:] & (np.abs(k[:, :-1] - k[:, 1:]) <= 1)
        ch, w = np.nonzero(both)
        if ch.size == 0:
            continue
        # One candidate per cluster of paired windows (a burst spans at most 4 windows).
        new = np.ones(ch.size, bool)
        new[1:] = (ch[1:] != ch[:-1]) | (w[1:] - w[:-1] > 3)
        ch, w = ch[new], w[new]
        kk = k[ch, w]
        nb = kk[:, None] + np.arange(-1, 3)
        out_pw.append(p[ch[:, None], w[:, None], np.clip(nb - b0, 0, p.shape[2] - 1)])
        out_ch.append(rows[ch])
        out_w.append(w)
        out_k.append(kk)
    if not out_ch:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    ch, w, kk, pw = (np.concatenate(v) for v in (out_ch, out_w, out_k, out_pw))
    order = np.lexsort((w, ch))
    ch, w, kk, pw = ch[order], w[order], kk[order], pw[order]
    # Coarse frequency: power centroid of the peak bin and its neighbours.
    nb = kk[:, None] + np.arange(-1, 3)
    coarse = (pw * nb).sum(1) / np.maximum(pw.sum(1), 1e-30) * bin_hz - c.FCCH_OFFSET_HZ
    return ch.astype(np.int64), (w * _HOP).astype(np.int64), coarse


def _neighbour_ratio(x: np.ndarray, sps: int, freqs) -> np.ndarray:
    """Power of each row's strongest neighbour over its own (0 without neighbours).

    Neighbours are the streams less than 300 kHz away (every other row when ``freqs`` is
    None); power is measured within +-:data:`_CHANNEL_HZ` of each stream's 0 Hz on up to 64
    spread-out 64-symbol windows (the streams themselves pass much of their neighbours).
    """
    n_ch = x.shape[0]
    n_fft = _WIN * sps
    if n_ch < 2 or x.shape[1] < n_fft:
        return np.zeros(n_ch)
    starts = np.unique(np.linspace(0, x.shape[1] - n_fft, 64).astype(np.int64))
    seg = x[:, starts[:, None] + np.arange(n_fft)]
    spec = scipy.fft.fft(seg.astype(np.complex64), axis=2, workers=1)
    band = round(_CHANNEL_HZ / (c.SYMBOL_RATE_HZ / _WIN))
    k = np.r_[0:band + 1, n_fft - band:n_fft]
    power = (np.abs(spec[:, :, k]) ** 2).mean(axis=(1, 2)).astype(np.float64)
    near = np.ones((n_ch, n_ch), bool) if freqs is None else \
        np.abs(np.subtract.outer(np.asarray(freqs, np.float64), np.asarray(freqs, np.float64))) < 300e3
    np.fill_diagonal(near, False)
    return np.max(np.where(near, power[None, :], 0.0), axis=1) / np.maximum(power, 1e-30)


def _confirmed(x, sps, fs, max_offset_hz, search_threshold, confirm_threshold, wide, rows):
    """Search and confirm the rows ``rows`` (all rows when None): channel, start, offset
    and tone fraction of every confirmed burst."""
    sub = x if rows is None else x[rows]
    w = wide if rows is None else wide[rows]
    ch, sym0, coarse = _search(sub, sps, max_offset_hz, search_threshold, w)
    if not ch.size:
        return ch, np.zeros(0), np.zeros(0), np.zeros(0)
    start, off, score = _refine(sub, sps, fs, ch, sym0, coarse, w[ch])
    keep = (score > confirm_threshold) & (np.abs(off) <= max_offset_hz + 5e3) & np.isfinite(off)
    ch = ch[keep] if rows is None else rows[ch[keep]]
    return ch, start[keep], off[keep], score[keep]


def _tone_filters(sps: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """FIRs (complex64) for a tone mixed to 0 Hz: a symmetric low-pass to estimate its
    start and frequency (a symmetric pass band leaves the noise's lag products unbiased),
    and the band pass ``-_TONE_BELOW_HZ .. +_TONE_ABOVE_HZ`` its tone fraction is measured
    in."""
    n = _TONE_TAPS * sps + 1
    est = scipy.signal.firwin(n, _TONE_EST_HZ, width=_TONE_EST_WIDTH_HZ, fs=fs).astype(np.complex64)
    half = 0.5 * (_TONE_BELOW_HZ + _TONE_ABOVE_HZ)
    mid = 0.5 * (_TONE_ABOVE_HZ - _TONE_BELOW_HZ)
    lp = scipy.signal.firwin(n, half, width=_TONE_WIDTH_HZ, fs=fs)
    band = (lp * np.exp(2j * np.pi * mid * (np.arange(n) - n // 2) / fs)).astype(np.complex64)
    return est, band


def _tone_lowpass(u: np.ndarray, sps: int, fs: float, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``u`` (tone near 0 Hz) for estimation and for the tone fraction: the rows where
    ``rows`` is True through the two :func:`_tone_filters` (centred: no delay), the others
    as they are (the whole stream band, where no neighbour is stronger)."""
    if not rows.any():
        return u, u
    est, band = _tone_filters(sps, fs)
    taps = np.stack((est, band))[:, None, :]
    y = scipy.signal.oaconvolve(np.broadcast_to(u[rows], (2,) + u[rows].shape), taps, mode="same", axes=2)
    u_est, u_band = u.copy(), u.copy()
    u_est[rows] = y[0]
    u_band[rows] = y[1]
    return u_est, u_band


def _refine(iq: np.ndarray, sps: int, fs: float, ch: np.ndarray, sym0: np.ndarray, coarse: np.ndarray,
            filt: np.ndarray):
    """Stage 2: start sample, offset Hz and tone fraction of each candidate (through the
    tone filters where ``filt``)."""
    n = iq.shape[1]
    pre, seg_sym = 80, 330
    seg_len = seg_sym * sps
    first = (sym0 - pre) * sps
    idx = first[:, None] + np.arange(seg_len)
    valid = (idx >= 0) & (idx < n)
    seg = iq[ch[:, None], np.clip(idx, 0, n - 1)] * valid
    u, u_band = _tone_lowpass(seg * _mixer(c.FCCH_OFFSET_HZ + coarse, seg_len, fs), sps, fs, filt)
    q = u[:, sps:] * np.conj(u[:, :-sps])
    length = c.BURST_BITS * sps
    s = _moving_sum(q, length - sps)
    best = np.argmax(np.abs(s), axis=1)
    rows = np.arange(ch.size)
    f1 = coarse + np.angle(s[rows, best]) / (2 * np.pi * sps / fs)
    start = first + best  # q[j] pairs u[j + sps] with u[j]: the tone spans u[best .. best + length)
    f, score = _estimate(u, best, f1 - coarse, sps, fs, u_band)
    return start.astype(np.float64), coarse + f, score


def _estimate(u: np.ndarray, start: np.ndarray, f1: np.ndarray, sps: int, fs: float, u_band: np.ndarray):
    """Tone frequency (Hz, relative to u's mixing) and tone fraction of the burst interior.

    ``u`` rows hold a tone starting at sample ``start`` whose frequency is within a few kHz
    of ``f1``; lag products over 8 and 64 symbols refine it. The tone fraction is measured
    on ``u_band``, the same rows through the band of the score.
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
    w = u_band[rows[:, None], np.clip(k, 0, u.shape[1] - 1)] * _mixer(f * sps, _INNER, fs)
    score = np.abs(w.sum(axis=1)) ** 2 / (_INNER * np.maximum((np.abs(w) ** 2).sum(axis=1), 1e-30))
    return f, score


def fcch_offset_at(iq: np.ndarray, sample_rate_hz: float, channel: np.ndarray, start: np.ndarray,
                   offset_hz: np.ndarray, full_rate: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    full_rate : numpy.ndarray, optional
        bool per burst: measure through the tone filters that keep out the upper neighbour
        channel (:attr:`FcchResult.full_rate` of the burst's channel); default False.

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
    margin = (_TONE_TAPS // 2 + 1) * sps  # the tone filter's reach, whole symbols
    length = c.BURST_BITS * sps + 2 * margin
    idx = (st - margin)[:, None] + np.arange(length)
    valid = (idx >= 0) & (idx < x.shape[1])
    seg = x[ch[:, None], np.clip(idx, 0, x.shape[1] - 1)] * valid
    t = np.arange(length) / sample_rate_hz
    filt = np.zeros(ch.size, bool) if full_rate is None else np.broadcast_to(np.asarray(full_rate, bool), ch.shape)
    u, u_band = _tone_lowpass(seg * np.exp(-2j * np.pi * (c.FCCH_OFFSET_HZ + off)[:, None] * t[None, :]),
                              sps, float(sample_rate_hz), filt)
    f, score = _estimate(u, np.full(ch.size, margin, np.int64), np.zeros(ch.size), sps, float(sample_rate_hz),
                         u_band)
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
        (a strong neighbour's FCCH leaking through the channel filter's skirt), and only
        streams less than 300 kHz away count as neighbours when choosing the channels
        searched at the full rate (without it, every other stream does).

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
    fs = float(sample_rate_hz)
    ratio = _neighbour_ratio(x, sps, channel_freqs_hz)
    wide = ratio > _WIDE_RATIO
    ch, start, off, score = _confirmed(x, sps, fs, max_offset_hz, search_threshold, confirm_threshold, wide, None)
    # A channel with any stronger neighbour and nothing confirmed yet is searched again at
    # the full rate (the power measure is rough where the LO error is large).
    retry = np.flatnonzero(~wide & (ratio > 1.0) & ~np.isin(np.arange(n_ch), ch))
    if retry.size:
        wide[retry] = True
        more = _confirmed(x, sps, fs, max_offset_hz, search_threshold, confirm_threshold, wide, retry)
        ch, start, off, score = (np.concatenate(v) for v in zip((ch, start, off, score), more))
    if ch.size:
        # Duplicates (two candidates on one burst) collapse to the best-scoring one.
        order = np.lexsort((-score, start, ch))
        ch, start, off, score = ch[order], start[order], off[order], score[order]
        dup = np.zeros(ch.size, bool)
        dup[1:] = (ch[1:] == ch[:-1]) & (np.abs(start[1:] - start[:-1]) < 100 * sps)
        keep = ~dup
        ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
        keep = _suppress_leaks(ch, start, score, channel_freqs_hz, sps)
        ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
    detected = np.zeros(n_ch, bool)
    offset = np.full(n_ch, np.nan)
    spread = np.full(n_ch, np.nan)
    keep = np.zeros(ch.size, bool)
    for k in np.unique(ch):  # per channel with bursts: a handful of values each
        sel = np.flatnonzero(ch == k)
        o, s = off[sel], score[sel]
        # The channel's carrier is the offset most strongly supported (score squared) by
        # bursts within 1 kHz of it: a stronger neighbour's tone-like stretches can confirm
        # more often than the cell's own FCCH, but with a far lower tone fraction.
        support = (np.abs(o[:, None] - o[None, :]) < 1000.0) @ (s * s)
        good = (np.abs(o - o[np.argmax(support)]) < 1000.0) & (s > 0)
        if not good.any():
            continue
        detected[k] = True
        keep[sel[good]] = True
        offset[k] = np.average(o[good], weights=s[good])
        if good.sum() > 1:
            spread[k] = float(np.std(o[good]))
    ch, start, off, score = ch[keep], start[keep], off[keep], score[keep]
    return FcchResult(detected=detected, offset_hz=offset, offset_std_hz=spread,
                      bursts=FcchBursts(channel=ch.astype(np.int64), start=start, offset_hz=off, score=score),
                      full_rate=wide)
