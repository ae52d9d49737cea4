"""RDS demodulation: from a station's multiplex spectrum to soft data bits.

1. :func:`dsp.fm.mpx.analyze_mpx` weights the multiplex bins around 57 kHz by the matched
   filter of one biphase bit (:func:`matched_filter`) and transforms them back: complex
   baseband at about 7 samples per bit, the subcarrier at 0 Hz. The bit pulse is a
   root-raised-cosine half-symbol (roll-off 1, 2375 symbols/s) sent positive then
   negative, so its spectrum is ``cos(pi f / 4750) * sin(pi f / 2375)`` for ``|f| < 2375 Hz``.
2. Carrier: the baseband is a real data signal times ``exp(j theta(t))``. Squaring drops the
   data; the squared signal's spectral line gives the subcarrier's frequency error (the
   receiver's sample-clock error scales 57 kHz by its ppm), and its phase, smoothed over
   about 0.2 s, gives ``2 theta`` (the pi ambiguity is harmless: the bits are differentially
   coded).
3. Timing: the matched filter's output power peaks at the bit centres, so its component at
   the bit rate (1187.5 Hz), smoothed the same way, gives the bit phase as it drifts.
4. The derotated real signal is interpolated at the bit centres: soft channel bits; their
   signs, differentially decoded, are the data bits; their magnitudes go to the decoder as
   reliabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from dsp.fm.rds import RDS_BIT_RATE_HZ

RDS_CARRIER_HZ = 57000.0
SYMBOL_RATE_HZ = 2 * RDS_BIT_RATE_HZ
#: Largest subcarrier frequency error searched for, Hz (57 kHz x 100 ppm of sample clock,
#: plus a transmitter 6 Hz off).
MAX_CARRIER_ERROR_HZ = 15.0
#: Time over which carrier phase and bit timing are averaged, s.
SMOOTHING_S = 0.2
#: Shortest multiplex worth demodulating, s (one group is 87.6 ms).
MIN_DURATION_S = 0.1


@dataclass(frozen=True)
class RdsBits:
    """Demodulated RDS of one station.

    Attributes
    ----------
    data : ndarray of uint8
        Differentially decoded data bits.
    soft : ndarray of float32
        The soft channel bits (normalised to an RMS of 1), one more than ``data``:
        ``data[k] = (soft[k] > 0) xor (soft[k + 1] > 0)``; their magnitudes are the
        reliabilities :func:`dsp.fm.rds_decode.decode_rds` uses.
    t_s : ndarray of float64
        Time of each data bit's centre from the start of the multiplex, s.
    carrier_error_hz : float
        Subcarrier frequency error found, Hz.
    """

    data: np.ndarray
    soft: np.ndarray
    t_s: np.ndarray
    carrier_error_hz: float


def matched_filter(f_hz: np.ndarray) -> np.ndarray:
    """Matched-filter gain of one biphase RDS bit at baseband frequencies ``f_hz``."""
    f = np.asarray(f_hz, dtype=float)
    inside = np.abs(f) < SYMBOL_RATE_HZ
    return np.where(inside, np.cos(np.pi * f / (2 * SYMBOL_RATE_HZ)) * np.sin(np.pi * f / SYMBOL_RATE_HZ), 0.0)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along the last axis, shortened at the ends."""
    n = x.shape[-1]
    width = max(1, min(int(width), n))
    cs = np.concatenate([np.zeros(x.shape[:-1] + (1,), dtype=x.dtype), np.cumsum(x, axis=-1)], axis=-1)
    i = np.arange(n)
    lo = np.clip(i - width // 2, 0, n)
    hi = np.clip(i - width // 2 + width, 0, n)
    return (cs[..., hi] - cs[..., lo]) / (hi - lo)


#: Samples per block over which carrier and timing lines are first summed.
_BLOCK = 16


def _rotate(x: np.ndarray, cycles_per_sample: float) -> np.ndarray:
    """``x * exp(-2j pi cycles_per_sample n)`` for ``n = 0 .. len(x) - 1``.

    The rotation is built as the outer product of a coarse (every :data:`_BLOCK` samples)
    and a fine (within a block) phasor, each reduced modulo one cycle in float64 first:
    one complex64 multiplication per sample instead of a sine and cosine.
    """
    n = x.size
    nb = -(-n // _BLOCK)
    coarse = cycles_per_sample * _BLOCK * np.arange(nb, dtype=np.float64)
    fine = cycles_per_sample * np.arange(_BLOCK, dtype=np.float64)
    outer = np.exp(-2j * np.pi * (coarse - np.floor(coarse))).astype(np.complex64)
    inner = np.exp(-2j * np.pi * (fine - np.floor(fine))).astype(np.complex64)
    rot = np.multiply.outer(outer, inner).reshape(-1)[:n]
    return x * rot


def _smoothed_phase(x: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Unwrapped phase of ``x`` smoothed over ``width`` samples, at block centres: (index, phase)."""
    nb = x.size // _BLOCK
    blocks = x[:nb * _BLOCK].reshape(nb, _BLOCK).astype(np.complex128).sum(axis=1)
    sm = _moving_average(blocks, max(1, width // _BLOCK))
    centre = np.arange(nb) * _BLOCK + (_BLOCK - 1) / 2
    return centre, np.unwrap(np.angle(sm))


def _interp_blocks(v: np.ndarray, n: int) -> np.ndarray:
    """Values ``v`` given at the block centres of :func:`_smoothed_phase`, linearly
    interpolated at samples ``0 .. n - 1`` (held at the end values beyond the first and last
    centre): ``np.interp`` on a uniform grid, without its search."""
    nb = v.size
    if nb < 2:
        return np.full(n, v[0] if nb else 0.0)
    u = np.arange(n, dtype=np.float64)
    u -= (_BLOCK - 1) / 2
    u *= 1.0 / _BLOCK
    np.clip(u, 0.0, nb - 1, out=u)
    j = np.minimum(u.astype(np.int64), nb - 2)
    u -= j
    lo = v[j]
    return lo + (v[j + 1] - lo) * u


def demodulate_bits(y: np.ndarray, rate_hz: float) -> RdsBits | None:
    """Carrier, timing and bit decisions for one station's matched-filtered baseband.

    Returns None when the baseband is shorter than :data:`MIN_DURATION_S` or empty.
    """
    y = np.asarray(y, dtype=np.complex64)
    n = y.size
    if n < max(MIN_DURATION_S * rate_hz, 4 * _BLOCK) or not np.any(y):
        return None
    idx = np.arange(n, dtype=np.float64)
    width = int(SMOOTHING_S * rate_hz)
    # carrier: the line of y^2 at twice the frequency error
    q = y * y
    n_fft = sfft.next_fast_len(n)
    qs = np.abs(sfft.fft(q, n=n_fft, workers=1))
    fq = sfft.fftfreq(n_fft, 1.0 / rate_hz)
    near = np.flatnonzero(np.abs(fq) <= 2 * MAX_CARRIER_ERROR_HZ)
    k = near[np.argmax(qs[near])]
    a, b, c = qs[k - 1], qs[k], qs[(k + 1) % n_fft]
    frac = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    df = (fq[k] + frac * rate_hz / n_fft) / 2
    centre, ph2 = _smoothed_phase(_rotate(q, 2 * df / rate_hz), width)
    theta = 0.5 * _interp_blocks(ph2, n) + 2 * np.pi * df / rate_hz * idx
    theta32 = (theta - 2 * np.pi * np.floor(theta / (2 * np.pi))).astype(np.float32)  # reduced in float64
    ct, st = np.cos(theta32), np.sin(theta32)
    r = y.real * ct + y.imag * st
    # timing: the bit-rate line of the output power
    e = y.real * y.real + y.imag * y.imag
    bit_cycles = RDS_BIT_RATE_HZ / rate_hz * idx
    centre, ph = _smoothed_phase(_rotate(e, RDS_BIT_RATE_HZ / rate_hz), width)
    phase = bit_cycles + _interp_blocks(ph, n) / (2 * np.pi)
    if np.any(np.diff(phase) <= 0):  # the timing line vanished somewhere: keep it monotonic
        phase = np.maximum.accumulate(phase + 1e-9 * idx)
    k_first, k_last = int(np.ceil(phase[0])), int(np.floor(phase[-1]))
    if k_last - k_first < 2:
        return None
    kk = np.arange(k_first, k_last + 1)
    tk = np.interp(kk, phase, idx)
    soft = np.interp(tk, idx, r)
    scale = np.sqrt(np.mean(soft ** 2)) or 1.0
    soft /= scale
    chan = soft > 0
    data = (chan[1:] ^ chan[:-1]).astype(np.uint8)
    return RdsBits(data, soft.astype(np.float32), tk[1:] / rate_hz, float(df))
