"""FFT filter bank: every 200 kHz GSM channel of a wideband capture at once.

Overlap-save in the frequency domain. Each input block of ``n_in`` samples is transformed
once; every channel then takes the ``n_out`` bins around its own centre, weights them with a
raised-cosine low-pass response and transforms them back with an ``n_out``-point inverse
FFT. Because ``n_out / n_in`` equals the ratio of output to input rate exactly, the same step
resamples from any input rate (500 kS/s, 1 MS/s, 2.4 MS/s, 4 MS/s, ...) to a whole number of
samples per GSM symbol. A channel's centre is moved to the nearest bin of the block FFT;
the remainder (under half a bin, reported in :attr:`Channelized.residual_hz`) is left in the
output, so the carrier of a channel sits at ``residual_hz`` plus its LO/clock error.

Output sample ``m`` of every channel is taken at input time ``m * in_rate / out_rate``
(input sample index); phases are continuous across blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft

from dsp.gsm.constants import SYMBOL_RATE_HZ
from rfhunt.errors import DspError

#: Default edge of the flat pass band, Hz from the channel centre (GMSK main lobe plus
#: tens of kHz of LO error).
PASS_HZ = 135e3
#: Default stop-band edge, Hz from the channel centre.
STOP_HZ = 185e3
_MIN_BLOCK = 8192


@dataclass(frozen=True)
class Channelized:
    """Channel streams of one capture.

    Attributes
    ----------
    iq : numpy.ndarray
        complex64 ``(n_channels, n_samples)``, one row per requested channel, at
        ``sample_rate_hz``; the channel's nominal centre is at ``+residual_hz``.
    sample_rate_hz : float
        Output rate, Hz (``sps`` times the GSM symbol rate).
    sps : int
        Samples per GSM symbol.
    channel_freqs_hz : numpy.ndarray
        The requested channel centres, Hz (RF or relative, as given).
    residual_hz : numpy.ndarray
        Mixing left in each row: nominal centre minus the FFT bin it was moved down from,
        Hz (under half a bin; a carrier exactly on the nominal centre appears at this
        frequency).
    in_rate_hz : float
        Input sample rate, Hz.
    """

    iq: np.ndarray
    sample_rate_hz: float
    sps: int
    channel_freqs_hz: np.ndarray
    residual_hz: np.ndarray
    in_rate_hz: float

    def to_input_index(self, out_index: np.ndarray | float) -> np.ndarray:
        """Input-sample index (float) of output sample(s) ``out_index``."""
        return np.asarray(out_index, dtype=np.float64) * (self.in_rate_hz / self.sample_rate_hz)


def _rate_fraction(rate_hz: float) -> Fraction:
    """The input rate as an exact fraction (1083333.33... -> 3250000/3)."""
    approx = Fraction(rate_hz).limit_denominator(1000)
    if abs(float(approx) - rate_hz) <= 1e-6 * max(1.0, rate_hz) * 1e-3:
        return approx
    return Fraction(rate_hz)


def rate_ratio(in_rate_hz: float, sps: int) -> Fraction:
    """Exact output/input rate ratio ``p / q`` of :func:`channelize`."""
    return Fraction(1625000 * sps, 6) / _rate_fraction(in_rate_hz)


def _lowpass(freqs_hz: np.ndarray, pass_hz: float, stop_hz: float) -> np.ndarray:
    """Raised-cosine magnitude: 1 up to pass_hz, 0 from stop_hz on."""
    a = np.abs(freqs_hz)
    x = np.clip((a - pass_hz) / (stop_hz - pass_hz), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(math.pi * x))


def channelize(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
               channel_freqs_hz: np.ndarray | list[float], *, sps: int = 4,
               pass_hz: float = PASS_HZ, stop_hz: float = STOP_HZ) -> Channelized:
    """Filter, mix down and resample every requested channel of a capture.

    Parameters
    ----------
    iq : numpy.ndarray
        1-D complex baseband capture (any complex dtype; processed in complex64).
    sample_rate_hz : float
        Capture sample rate, Hz (> 0, any value).
    center_freq_hz : float
        Frequency of the capture's 0 Hz, Hz.
    channel_freqs_hz : array_like
        Centres of the channels to extract, Hz (same reference as ``center_freq_hz``); each
        must lie within ``sample_rate_hz / 2 - 100 kHz`` of the capture centre.
    sps : int
        Output samples per GSM symbol (1, 2 or 4; 4 gives 1.0833 MS/s).
    pass_hz, stop_hz : float
        Pass- and stop-band edges of the channel filter, Hz from the channel centre.

    Returns
    -------
    Channelized
        The channel streams; output sample ``m`` is at input sample ``m * q / p``.
    """
    x = np.asarray(iq)
    if x.ndim != 1 or x.dtype.kind not in "cf":
        raise DspError(f"iq must be a 1-D complex array, got shape {x.shape} dtype {x.dtype}")
    if not (isinstance(sample_rate_hz, (int, float, np.integer, np.floating))
            and math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise DspError(f"sample_rate_hz must be a positive finite number, got {sample_rate_hz!r}")
    if not (isinstance(center_freq_hz, (int, float, np.integer, np.floating)) and math.isfinite(center_freq_hz)):
        raise DspError(f"center_freq_hz must be a finite number, got {center_freq_hz!r}")
    if sps not in (1, 2, 4):
        raise DspError(f"sps must be 1, 2 or 4, got {sps!r}")
    if not 0 < pass_hz < stop_hz:
        raise DspError(f"pass_hz must be in (0, stop_hz), got pass_hz={pass_hz!r} stop_hz={stop_hz!r}")
    f = np.atleast_1d(np.asarray(channel_freqs_hz, dtype=np.float64))
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)):
        raise DspError(f"channel_freqs_hz must be a non-empty 1-D list of finite frequencies, got {channel_freqs_hz!r}")
    rel = f - float(center_freq_hz)
    limit = sample_rate_hz / 2.0 - 100e3 + 1.0
    if np.any(np.abs(rel) > limit):
        bad = f[np.abs(rel) > limit][0]
        raise DspError(f"channel_freqs_hz: {bad} Hz is outside the capture "
                       f"({center_freq_hz} Hz +- {sample_rate_hz / 2.0} Hz, 100 kHz margin)")
    out_rate = SYMBOL_RATE_HZ * sps
    ratio = rate_ratio(float(sample_rate_hz), sps)
    p, q = ratio.numerator, ratio.denominator
    if q > 1 << 16:
        raise DspError(f"sample_rate_hz {sample_rate_hz!r} is not a usable rational multiple of the "
                       f"GSM symbol rate (ratio {ratio})")
    # Block sizes: n_in = q * k (FFT of the input), n_out = p * k; overlap 1/4 of the block.
    k = 8 * max(1, -(-_MIN_BLOCK // (8 * q)))
    n_in, n_out = q * k, p * k
    ov_in, ov_out = n_in // 4, n_out // 4  # split evenly: the filter is zero-phase
    hop_in, hop_out = n_in - ov_in, n_out - ov_out
    n_samples = x.size
    n_total_out = int(n_samples * p // q)
    n_blocks = max(1, -(-n_samples // hop_in))
    half_in, half_out = ov_in // 2, ov_out // 2
    padded = np.zeros(n_blocks * hop_in + ov_in, dtype=np.complex64)
    padded[half_in:half_in + n_samples] = x
    bin_hz = float(sample_rate_hz) / n_in
    shift = np.rint(rel / bin_hz).astype(np.int64)
    residual = rel - shift * bin_hz
    # Output bins (fft order) -> input bins, and the filter on them.
    k_out = np.fft.fftfreq(n_out, d=1.0 / n_out).astype(np.int64)  # -n_out/2 .. n_out/2-1
    resp = _lowpass(k_out * bin_hz, pass_hz, stop_hz)
    inside = np.abs(k_out) < n_in // 2
    resp = (resp * inside).astype(np.float32) * np.float32(n_out / n_in)
    keep = np.flatnonzero(resp != 0.0)
    # The kept output bins form one run in centred order (negative then positive
    # frequencies): k_out[keep] = lo .. hi. Channel c takes input bins shift_c + lo ..
    # shift_c + hi (mod n_in), a contiguous slice of the block spectrum extended by
    # wrapped copies of its ends, so no gather is needed.
    lo, hi = int(k_out[keep].min()), int(k_out[keep].max())
    if keep.size != hi - lo + 1:  # pragma: no cover - the response is one band by construction
        raise DspError("channel filter response is not contiguous")
    n_keep = keep.size
    w_c = np.fft.fftshift(resp)[n_out // 2 + lo:n_out // 2 + hi + 1]  # weights, centred order
    pad = max(0, int(np.max(np.abs(shift))) + max(-lo, hi) - n_in // 2 + 1)
    first = shift + lo + pad + n_in // 2  # first input bin (centred, extended) of each channel
    n_neg = -lo  # kept negative-frequency bins go to the end of the output block
    n_ch = f.size
    out = np.empty((n_ch, n_blocks * hop_out), dtype=np.complex64)
    out3 = out.reshape(n_ch, n_blocks, hop_out)
    # Phase continuity: a bin shift s in a block starting at input sample b*hop_in - half_in
    # is the mixer exp(-2j pi s n / n_in) started at phase -2 pi s (b*hop_in - half_in) / n_in.
    chunk = max(1, (1 << 22) // n_in)
    spec = np.zeros((n_ch, min(chunk, n_blocks), n_out), dtype=np.complex64)
    ext = np.empty((min(chunk, n_blocks), n_in + 2 * pad), dtype=np.complex64)
    tmp = np.empty((min(chunk, n_blocks), n_keep), dtype=np.complex64)
    half_n = n_in // 2
    for b0 in range(0, n_blocks, chunk):
        nb = min(chunk, n_blocks - b0)
        starts = (b0 + np.arange(nb)) * hop_in
        blocks = np.lib.stride_tricks.sliding_window_view(padded, n_in)[starts]
        xf = scipy.fft.fft(blocks, axis=1, workers=1, overwrite_x=True)
        # Centred spectrum (-n_in/2 .. n_in/2-1) with `pad` wrapped bins on either side.
        e = ext[:nb]
        e[:, pad:pad + n_in - half_n] = xf[:, half_n:]
        e[:, pad + n_in - half_n:pad + n_in] = xf[:, :half_n]
        if pad:
            e[:, :pad] = e[:, n_in:n_in + pad]
            e[:, pad + n_in:] = e[:, pad:2 * pad]
        phase_turns = np.outer(starts - half_in, shift) % n_in  # (nb, C), exact integers
        rot = np.exp(-2j * np.pi * phase_turns / n_in).astype(np.complex64)
        s = spec[:, :nb]
        t = tmp[:nb]
        for ci in range(n_ch):
            np.multiply(e[:, first[ci]:first[ci] + n_keep], w_c, out=t)
            t *= rot[:, ci, None]
            s[ci, :, n_out - n_neg:] = t[:, :n_neg]
            s[ci, :, :n_keep - n_neg] = t[:, n_neg:]
        y = scipy.fft.ifft(s, axis=2, workers=1)
        # Valid middle of each block: input [b*hop_in, (b+1)*hop_in).
        out3[:, b0:b0 + nb] = y[:, :, half_out:half_out + hop_out]
    return Channelized(iq=out[:, :n_total_out], sample_rate_hz=out_rate, sps=sps, channel_freqs_hz=f,
                       residual_hz=residual, in_rate_hz=float(sample_rate_hz))
