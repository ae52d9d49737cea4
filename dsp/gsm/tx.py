"""Transmit-side GSM waveforms as pure functions of absolute time.

Time model
----------
``t_s`` is seconds since the cell's TDMA epoch: frame ``FN = fn_epoch`` starts at
``t = 0`` and every frame lasts 1250 symbols (120/26 ms). Timeslots follow the
157/156/156/156/157/156/156/156-symbol layout of gr-gsm and OsmoTRX
(:data:`~dsp.gsm.constants.SLOT_START_SYMBOLS`), so every burst starts on a whole symbol.
Burst bit ``k`` of a slot starting at symbol ``S`` is centred at ``S + k + 1/2``.

Each burst is modulated on its own (phase 0 at its own origin, GSM differential encoding
with the guard period's "1" bits around it) and keyed with a 4-symbol sine/cosine power
ramp inside the guard period. A sample therefore depends only on the bursts around its
own instant, and a span of samples does not depend on how it is split into calls.
On the BCCH carrier the ramp of one burst cross-fades into the next (powers add up to 1,
so the mean power stays 1 while the envelope dips or peaks for ~4 symbols per slot).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.bursts import access_bursts, dummy_bursts, fcch_bursts, normal_bursts, sch_bursts
from dsp.gsm.gmsk import gsm_diff_encode, phase_from_grid, symbol_grid
from rfhunt.errors import DspError

#: Length of the power ramp, symbols.
RAMP_SYMBOLS = 4
#: Guard "1" bits modulated before a burst (the ramp-up happens over the last RAMP_SYMBOLS).
_PRE = RAMP_SYMBOLS + 2
#: Guard "1" bits modulated after a burst.
_POST = 12

Payload = Callable[[np.ndarray, np.ndarray], np.ndarray]
BurstKind = Callable[[np.ndarray], np.ndarray]

def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def prn_bits(seed: int, key_a: np.ndarray, key_b: np.ndarray, n_bits: int) -> np.ndarray:
    """Deterministic pseudo-random bits, one row per (key_a, key_b) pair.

    Parameters
    ----------
    seed : int
        Stream selector.
    key_a, key_b : numpy.ndarray
        Non-negative integer keys (e.g. FN and timeslot), broadcast together, 1-D.
    n_bits : int
        Bits per row.

    Returns
    -------
    numpy.ndarray
        ``uint8`` 0/1 of shape ``(n, n_bits)``.
    """
    a, b = np.broadcast_arrays(np.atleast_1d(np.asarray(key_a, dtype=np.int64)),
                               np.atleast_1d(np.asarray(key_b, dtype=np.int64)))
    salt = np.uint64((int(seed) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    key = _mix64(_mix64(a.astype(np.uint64) ^ salt) ^ b.astype(np.uint64))
    n_words = -(-n_bits // 64)
    words = _mix64(key[:, None] + np.arange(1, n_words + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    shifts = np.arange(64, dtype=np.uint64)
    bits = ((words[:, :, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return bits.reshape(a.size, n_words * 64)[:, :n_bits]


def _check_common(t_start_s: float, n_samples: int, sample_rate_hz: float) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise DspError(f"n_samples must be a non-negative integer, got {n_samples!r}")
    if not isinstance(sample_rate_hz, (int, float, np.integer, np.floating)) or not (
            math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise DspError(f"sample_rate_hz must be a positive finite number, got {sample_rate_hz!r}")
    if not isinstance(t_start_s, (int, float, np.integer, np.floating)) or not math.isfinite(t_start_s):
        raise DspError(f"t_start_s must be a finite number of seconds, got {t_start_s!r}")


def _check_int(name: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise DspError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _extended_symbols(bits: np.ndarray) -> np.ndarray:
    """Burst bits framed by guard '1' bits, differentially encoded to +-1 symbols."""
    n = bits.shape[0]
    ones_pre = np.ones((n, _PRE), dtype=np.uint8)
    ones_post = np.ones((n, _POST), dtype=np.uint8)
    return gsm_diff_encode(np.concatenate((ones_pre, bits, ones_post), axis=1))


def _time_grid(t_start_s: float, n_samples: int, sample_rate_hz: float):
    """Integer symbol index m, fractional position and pulse weights of each sample."""
    m, w = symbol_grid(t_start_s * c.SYMBOL_RATE_HZ, c.SYMBOL_RATE_HZ / sample_rate_hz, n_samples)
    s = t_start_s * c.SYMBOL_RATE_HZ + np.arange(n_samples) * (c.SYMBOL_RATE_HZ / sample_rate_hz)
    return m, w, s


def _unit_phasor(phase: np.ndarray) -> np.ndarray:
    """exp(j * phase) as complex64 (phase reduced in float64 first)."""
    p = np.remainder(phase, 2.0 * math.pi).astype(np.float32)
    out = np.empty(p.shape, dtype=np.complex64)
    out.real = np.cos(p)
    out.imag = np.sin(p)
    return out


def _slot_start(slot: np.ndarray) -> np.ndarray:
    """Start symbol of global slot index ``slot = 8 * frame + tn``."""
    return (slot // 8) * c.FRAME_SYMBOLS + c.SLOT_START_SYMBOLS[slot % 8]


def downlink_burst_bits(fn: np.ndarray, tn: np.ndarray, *, bsic: int, payload: Payload | None = None,
                        seed: int = 0) -> np.ndarray:
    """The 148 bits the BCCH carrier sends in each (FN, TN).

    Timeslot 0 follows the non-combined BCCH 51-multiframe: FCCH on FN mod 51 in
    {0, 10, 20, 30, 40}, SCH on {1, 11, 21, 31, 41}, a dummy burst on 50, and normal bursts
    (BCCH on 2-5, CCCH on the others) with TSC = BCC and both stealing flags 1. Their data
    come from ``payload(fn, tn)`` or, without it, from :func:`prn_bits` keyed by
    (seed, FN, TN). Timeslots 1-7 carry dummy bursts.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(n, 148)``.
    """
    fn = np.asarray(fn, dtype=np.int64)
    tn = np.asarray(tn, dtype=np.int64)
    n = fn.size
    out = dummy_bursts(n)
    t51 = fn % 51
    ts0 = tn == 0
    fcch = ts0 & np.isin(t51, c.FCCH_FRAMES)
    sch = ts0 & np.isin(t51, c.SCH_FRAMES)
    data = ts0 & ~fcch & ~sch & (t51 != c.IDLE_FRAME)
    out[fcch] = fcch_bursts(int(fcch.sum()))
    if sch.any():
        out[sch] = sch_bursts(fn[sch], bsic)
    if data.any():
        if payload is None:
            bits = prn_bits(seed, fn[data], tn[data], c.NORMAL_DATA_BITS)
        else:
            bits = np.asarray(payload(fn[data].copy(), tn[data].copy()))
            if bits.shape != (int(data.sum()), c.NORMAL_DATA_BITS) or (
                    bits.size and (bits.dtype.kind not in "biu" or bits.min() < 0 or bits.max() > 1)):
                raise DspError(f"payload must return (n, 114) bits of 0/1, got shape {bits.shape}")
        out[data] = normal_bursts(bits, bsic & 7, stealing=1)
    return out


def gsm_downlink_iq(t_start_s: float, n_samples: int, sample_rate_hz: float, *, bsic: int,
                    fn_epoch: int = 0, payload: Payload | None = None, seed: int = 0) -> np.ndarray:
    """Baseband IQ of one BCCH (C0) carrier, as a pure function of absolute time.

    Parameters
    ----------
    t_start_s : float
        Time of the first sample, s since the TDMA epoch (FN = ``fn_epoch`` starts at 0).
    n_samples : int
        Number of samples.
    sample_rate_hz : float
        Sample rate, Hz (any value; non-integer samples per symbol are exact).
    bsic : int
        Base station identity code 0..63 (NCC * 8 + BCC); sent on the SCH, BCC = TSC.
    fn_epoch : int
        Frame number at ``t = 0``; frame numbers wrap at the hyperframe (2715648).
    payload : callable, optional
        ``payload(fn, tn) -> (n, 114) uint8``: data bits of the BCCH/CCCH normal bursts of
        timeslot 0. Default: pseudo-random bits from (seed, FN, TN).
    seed : int
        Seed of the default pseudo-random data.

    Returns
    -------
    numpy.ndarray
        complex64, carrier at 0 Hz, mean power 1 (the C0 carrier transmits in every slot).

    Notes
    -----
    See the module docstring for the slot layout and the per-burst modulation.
    """
    _check_common(t_start_s, n_samples, sample_rate_hz)
    bsic = _check_int("bsic", bsic, 0, 63)
    fn_epoch = _check_int("fn_epoch", fn_epoch, 0, c.HYPERFRAME - 1)
    if n_samples == 0:
        return np.zeros(0, dtype=np.complex64)
    m, w, s = _time_grid(t_start_s, n_samples, sample_rate_hz)
    # Primary slot: the one containing s + 1 (its burst owns the sample at full power until
    # 5 symbols before the next slot, then fades out while the next one fades in).
    shifted = s + 1.0
    frame = np.floor(shifted / c.FRAME_SYMBOLS).astype(np.int64)
    within = shifted - frame * c.FRAME_SYMBOLS
    tn = np.searchsorted(c.SLOT_START_SYMBOLS, within, side="right") - 1
    slot = frame * 8 + tn
    first = int(slot.min())
    slots = np.arange(first, int(slot.max()) + 2)
    fn = (fn_epoch + slots // 8) % c.HYPERFRAME
    symbols = _extended_symbols(downlink_burst_bits(fn, slots % 8, bsic=bsic, payload=payload, seed=seed))
    starts = _slot_start(slots)
    origin = starts - _PRE
    row = slot - first
    out = _unit_phasor(phase_from_grid(symbols, row, origin, m, w))
    # Cross-fade over the RAMP_SYMBOLS ending one symbol before the next slot starts.
    x = (s - (starts[row + 1] - 1 - RAMP_SYMBOLS)) * (1.0 / RAMP_SYMBOLS)
    fade = np.flatnonzero(x > 0.0)
    if fade.size:
        xf = np.minimum(x[fade], 1.0) * (0.5 * math.pi)
        nxt = phase_from_grid(symbols, row[fade] + 1, origin, m[fade], w[fade])
        out[fade] = out[fade] * np.cos(xf) + _unit_phasor(nxt) * np.sin(xf)
    return out


def uplink_burst_start(fn_offset: np.ndarray, timeslot: int, timing_advance_symbols: int = 0) -> np.ndarray:
    """Symbol at which bit 0 of the uplink burst of frame ``fn_epoch + fn_offset`` starts.

    The uplink frame lags the downlink frame of the same FN by 3 timeslots (TS 45.002
    §4.3.2), i.e. uplink TN ``k`` starts where downlink TN ``k + 3`` starts (157/156 layout),
    minus the timing advance.
    """
    k = timeslot + c.UPLINK_DELAY_TIMESLOTS
    return (np.asarray(fn_offset, dtype=np.int64) + k // 8) * c.FRAME_SYMBOLS \
        + c.SLOT_START_SYMBOLS[k % 8] - timing_advance_symbols


def gsm_uplink_iq(t_start_s: float, n_samples: int, sample_rate_hz: float, *, timeslot: int,
                  burst_kind: BurstKind, tsc: int = 0, seed: int = 0, timing_advance_symbols: int = 0,
                  fn_epoch: int = 0) -> np.ndarray:
    """Baseband IQ of one mobile's uplink bursts on one timeslot, a pure function of time.

    Parameters
    ----------
    t_start_s : float
        Time of the first sample, s since the TDMA epoch (downlink FN = ``fn_epoch`` at 0).
    n_samples : int
        Number of samples.
    sample_rate_hz : float
        Sample rate, Hz.
    timeslot : int
        Uplink timeslot 0..7.
    burst_kind : callable
        ``burst_kind(fn: int64 array) -> int8 array``: 0 silent, 1 normal burst, 2 access
        burst (RACH) in that frame.
    tsc : int
        Training sequence code 0..7 of the normal bursts.
    seed : int
        Seed of the pseudo-random burst data (keyed by FN and timeslot).
    timing_advance_symbols : int
        Timing advance 0..63 symbols: normal bursts are sent that much earlier. Access bursts
        are always sent with timing advance 0 (their long guard period absorbs the delay).
    fn_epoch : int
        Frame number at ``t = 0``.

    Returns
    -------
    numpy.ndarray
        complex64: zero between bursts, unit amplitude over the burst bits, 4-symbol
        sine/cosine ramps just outside them (an on-air span of 156 symbols ~ 576 µs for a
        normal burst, 96 symbols for an access burst).
    """
    _check_common(t_start_s, n_samples, sample_rate_hz)
    timeslot = _check_int("timeslot", timeslot, 0, 7)
    tsc = _check_int("tsc", tsc, 0, 7)
    ta = _check_int("timing_advance_symbols", timing_advance_symbols, 0, 63)
    fn_epoch = _check_int("fn_epoch", fn_epoch, 0, c.HYPERFRAME - 1)
    if not callable(burst_kind):
        raise DspError("burst_kind must be a callable fn -> kind")
    out = np.zeros(n_samples, dtype=np.complex64)
    if n_samples == 0:
        return out
    m, w, s = _time_grid(t_start_s, n_samples, sample_rate_hz)
    # Frame whose burst window (ramp-up of the earliest possible start onwards) holds s.
    base = uplink_burst_start(0, timeslot, 63) - RAMP_SYMBOLS
    frame = np.floor((s - base) / c.FRAME_SYMBOLS).astype(np.int64)
    first = int(frame.min())
    frames = np.arange(first, int(frame.max()) + 1)
    fn = (fn_epoch + frames) % c.HYPERFRAME
    kind = np.asarray(burst_kind(fn.copy()))
    if kind.shape != fn.shape or kind.dtype.kind not in "iu" or (kind.size and (kind.min() < 0 or kind.max() > 2)):
        raise DspError(f"burst_kind must return one int 0/1/2 per frame, got {kind!r:.80}")
    if not kind.any():
        return out
    bits = np.ones((frames.size, c.BURST_BITS), dtype=np.uint8)
    nb = kind == 1
    ab = kind == 2
    tn_key = np.full(frames.size, timeslot)
    if nb.any():
        bits[nb] = normal_bursts(prn_bits(seed, fn[nb], tn_key[nb], c.NORMAL_DATA_BITS), tsc, stealing=0)
    if ab.any():
        bits[ab, :c.ACCESS_BURST_BITS] = access_bursts(prn_bits(seed, fn[ab], tn_key[ab] + 8, 36))
    start = uplink_burst_start(frames, timeslot, 0) - np.where(kind == 1, ta, 0)
    length = np.where(kind == 2, c.ACCESS_BURST_BITS, c.BURST_BITS)
    row = frame - first
    pos = s - start[row]  # symbols since bit 0 of the frame's burst
    env = np.clip(np.minimum(pos + RAMP_SYMBOLS, length[row] + RAMP_SYMBOLS - pos) / RAMP_SYMBOLS, 0.0, 1.0)
    on = np.flatnonzero((env > 0.0) & (kind[row] > 0))
    if on.size:
        symbols = _extended_symbols(bits)
        phase = phase_from_grid(symbols, row[on], start - _PRE, m[on], w[on])
        out[on] = np.sin(env[on] * (0.5 * math.pi)).astype(np.float32) * _unit_phasor(phase)
    return out
