"""Channel windows: short stretches of single channels cut out of a wideband capture.

Once a cell's TDMA grid is known, its receiver needs only timeslot 0 of the frames it wants
(SCH, BCCH, CCCH, FCCH): about 0.6 ms in every 4.6 ms, so channelizing the whole capture,
every channel, every sample, wastes most of the work. :func:`channel_windows` takes a list
of (channel, input sample) windows and returns each as a channel stream of ``n_out``
samples at ``sps`` samples per GSM symbol, with one forward FFT of ``n_in`` input samples
and one ``n_out``-point inverse FFT per window, batched over all windows.

The arithmetic is that of :func:`dsp.gsm.rx.channelizer.channelize` on a single block:
``n_out / n_in`` equals the output/input rate ratio exactly, the channel's centre moves to
the nearest FFT bin (the remainder is :attr:`ChannelWindows.residual_hz`), and its bins are
weighted by the same raised-cosine response. The transform is circular, so each window's
first and last :data:`EDGE_SYMBOLS` symbols are spoilt by wrap-around of the channel filter
and should lie outside the burst being demodulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from dsp.gsm.constants import SYMBOL_RATE_HZ
from dsp.gsm.rx.channelizer import PASS_HZ, STOP_HZ, _lowpass, rate_ratio
from rfhunt.errors import DspError

#: Symbols at either end of a window touched by the circular channel filter (its impulse
#: response is under 10 symbols long above -40 dB with the default 50 kHz transition).
EDGE_SYMBOLS = 12
#: Longest FFT accepted for a window, in multiples of the samples it must span; rates whose
#: exact ratio needs longer windows are better served by :func:`channelize`.
MAX_STRETCH = 5.0


@dataclass(frozen=True)
class WindowPlan:
    """Window length for one input rate: ``n_in`` input samples -> ``n_out`` outputs.

    Attributes
    ----------
    n_in, n_out : int
        Input and output samples per window (``n_out / n_in`` = output / input rate).
    sps : int
        Output samples per GSM symbol.
    in_rate_hz, out_rate_hz : float
        Input and output sample rates, Hz.
    """

    n_in: int
    n_out: int
    sps: int
    in_rate_hz: float
    out_rate_hz: float


@dataclass(frozen=True)
class ChannelWindows:
    """Windows cut by :func:`channel_windows`.

    Attributes
    ----------
    iq : numpy.ndarray
        complex64 ``(n_windows, n_out)``; output sample ``m`` of window ``w`` is at input
        sample ``start[w] + m * n_in / n_out``.
    start : numpy.ndarray
        int64 input sample index of each window's first sample.
    residual_hz : numpy.ndarray
        Mixing left in each window (nominal centre minus the bin it was moved down from),
        Hz: a carrier exactly on its nominal centre appears at this frequency.
    plan : WindowPlan
    """

    iq: np.ndarray
    start: np.ndarray
    residual_hz: np.ndarray
    plan: WindowPlan


def window_plan(sample_rate_hz: float, sps: int, span_symbols: float) -> WindowPlan | None:
    """Smallest exact window spanning ``span_symbols`` symbols, or None if it would be
    more than :data:`MAX_STRETCH` times that long (awkward input rates).

    Raises
    ------
    DspError
        If ``sps`` is not 1, 2 or 4 or the rate or span is not positive.
    """
    if sps not in (1, 2, 4):
        raise DspError(f"sps must be 1, 2 or 4, got {sps!r}")
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0 and span_symbols > 0):
        raise DspError(f"sample_rate_hz and span_symbols must be positive, got {sample_rate_hz!r}, {span_symbols!r}")
    ratio = rate_ratio(float(sample_rate_hz), sps)
    p, q = ratio.numerator, ratio.denominator
    need = span_symbols * sample_rate_hz / SYMBOL_RATE_HZ
    k = max(1, math.ceil(need / q))
    # Fast FFT lengths: try a few multiples above the minimum for a 5-smooth n_in.
    for kk in range(k, 2 * k + 1):
        if scipy.fft.next_fast_len(q * kk) == q * kk:
            k = kk
            break
    if q * k > MAX_STRETCH * need:
        return None
    return WindowPlan(n_in=q * k, n_out=p * k, sps=sps, in_rate_hz=float(sample_rate_hz),
                      out_rate_hz=SYMBOL_RATE_HZ * sps)


def channel_windows(iq: np.ndarray, plan: WindowPlan, center_freq_hz: float, freq_hz: np.ndarray,
                    start: np.ndarray, *, dc: complex = 0.0, pass_hz: float = PASS_HZ,
                    stop_hz: float = STOP_HZ, fir: np.ndarray | None = None) -> ChannelWindows:
    """Cut one channel window per (``freq_hz``, ``start``) pair out of a capture.

    Parameters
    ----------
    iq : numpy.ndarray
        1-D complex capture at ``plan.in_rate_hz``.
    plan : WindowPlan
        From :func:`window_plan`.
    center_freq_hz : float
        Frequency of the capture's 0 Hz, Hz.
    freq_hz : numpy.ndarray
        Nominal channel centre of each window, Hz (same reference as ``center_freq_hz``).
    start : numpy.ndarray
        Input sample index of each window's first sample (windows reaching past either end
        of the capture are zero there).
    dc : complex
        Value subtracted from the input first (an RTL-SDR's DC spike), full scale.
    pass_hz, stop_hz : float
        Channel filter edges, Hz from the channel centre.
    fir : numpy.ndarray, optional
        Odd-length real linear-phase FIR designed at the output rate, applied too (as the
        zero-phase filter of its magnitude, i.e. centred convolution), in the same product.

    Returns
    -------
    ChannelWindows

    Raises
    ------
    DspError
        If the inputs have the wrong shape or a channel lies outside the capture.
    """
    x = np.asarray(iq)
    if x.ndim != 1 or x.dtype.kind not in "cf":
        raise DspError(f"iq must be a 1-D complex array, got shape {x.shape} dtype {x.dtype}")
    f = np.atleast_1d(np.asarray(freq_hz, dtype=np.float64))
    s = np.atleast_1d(np.asarray(start, dtype=np.int64))
    if f.shape != s.shape or f.ndim != 1:
        raise DspError(f"freq_hz and start must be 1-D of equal length, got {f.shape} and {s.shape}")
    if not 0 < pass_hz < stop_hz:
        raise DspError(f"pass_hz must be in (0, stop_hz), got {pass_hz!r}, {stop_hz!r}")
    n_in, n_out = plan.n_in, plan.n_out
    rel = f - float(center_freq_hz)
    if f.size and np.max(np.abs(rel)) > plan.in_rate_hz / 2.0:
        bad = f[np.argmax(np.abs(rel))]
        raise DspError(f"freq_hz: {bad} Hz is outside the capture ({center_freq_hz} Hz +- "
                       f"{plan.in_rate_hz / 2.0} Hz)")
    bin_hz = plan.in_rate_hz / n_in
    shift = np.rint(rel / bin_hz).astype(np.int64)
    residual = rel - shift * bin_hz
    n_w = f.size
    out = np.zeros((n_w, n_out), np.complex64)
    if n_w == 0:
        return ChannelWindows(iq=out, start=s, residual_hz=residual, plan=plan)
    # Gather (zero outside the capture).
    n = x.size
    inner = (s >= 0) & (s + n_in <= n)
    blocks = np.empty((n_w, n_in), np.complex64)
    if inner.all():
        blocks[:] = np.lib.stride_tricks.sliding_window_view(x, n_in)[s]
    else:
        idx = s[:, None] + np.arange(n_in)
        ok = (idx >= 0) & (idx < n)
        blocks[:] = np.where(ok, x[np.clip(idx, 0, max(n - 1, 0))], 0) if n else 0
        dc_mask = ok
    if dc:
        blocks -= np.complex64(dc)
        if not inner.all():
            blocks *= dc_mask
    spec = scipy.fft.fft(blocks, axis=1, workers=1, overwrite_x=True)
    # Output bins (fft order) and the input bin each reads, per window.
    k_out = np.fft.fftfreq(n_out, d=1.0 / n_out).astype(np.int64)
    resp = _lowpass(k_out * bin_hz, pass_hz, stop_hz) * (np.abs(k_out) < n_in // 2)
    if fir is not None:
        resp = resp * fir_response(fir, k_out * bin_hz, plan.out_rate_hz)
    keep = np.flatnonzero(resp != 0.0)
    w = (resp[keep] * (n_out / n_in)).astype(np.float32)
    src = (shift[:, None] + k_out[keep][None, :]) % n_in
    out[:, keep] = spec[np.arange(n_w)[:, None], src] * w
    y = scipy.fft.ifft(out, axis=1, workers=1, overwrite_x=True)
    return ChannelWindows(iq=y.astype(np.complex64, copy=False), start=s, residual_hz=residual, plan=plan)


def fir_response(fir: np.ndarray, freq_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    """Zero-phase (centred) frequency response of a real odd-length symmetric FIR at
    ``freq_hz``: what ``convolve(x, fir, mode="same")`` does to a tone there."""
    h = np.asarray(fir, dtype=np.float64)
    n = np.arange(h.size) - h.size // 2
    return np.real(np.exp(-2j * np.pi * np.outer(np.asarray(freq_hz, np.float64), n) / sample_rate_hz) @ h)
