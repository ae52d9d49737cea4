"""Burst demodulation: timing, channel estimation and an MLSE (max-log BCJR) equalizer.

Model
-----
By Laurent's decomposition a GMSK signal is, to within about 1 % of its energy, a linear
modulation with one real pulse ``C0`` and the pseudo-symbols ``j^n * prod_{k<=n} a_k``. With
GSM's differential encoding (``a_k = 1 - 2 (b_k XOR b_(k-1))``) the product is
``+-(1 - 2 b_n)``: after *derotating* the received samples by ``j^-n`` (a shift by -67.7 kHz)
the burst is a BPSK sequence ``s_n = 1 - 2 b_n`` of the *transmitted bits themselves*
through a short complex channel ``h`` (pulse, receive filter, multipath, timing)::

    r_m = sum_{l < L} h_l s_(m-l) + noise,    m = 0 .. 147

so no differential decoding is needed after the equalizer.

Per burst (all vectorized over bursts):

1. mix the carrier offset down, low-pass (-6 dB at 90 kHz, stop from 110 kHz: keeps out
   the neighbour channels 200 kHz away), derotate;
2. timing: correlate with the training symbols (the 16 central bits of a normal burst's TSC,
   whose cyclic extension makes the correlation the channel itself for lags up to 5
   symbols; the whole 64-bit extended sequence for an SCH) and take the sample offset
   where ``L`` symbol-spaced taps hold the most energy;
3. least-squares estimate of the ``L`` taps from the whole training sequence at that timing,
   noise variance from its residual, SNR = ``|h|^2 / sigma^2``;
4. max-log MAP over the ``2^(L-1)`` states (forward/backward recursions over 148 symbols,
   one (bursts x states) array per step): soft bits ``log P(b=0)/P(b=1)`` (positive =
   bit 0, in units of the estimated noise), the convention of :mod:`dsp.gsm.viterbi`.

References: 3GPP TS 45.004 (GMSK), TS 45.002 §5.2 (bursts); the same structure as the MLSE
receivers of gr-gsm and OsmoTRX (training-sequence channel estimate, Viterbi over ISI states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from dsp.gsm import constants as c
from dsp.gsm.rx.fcch import _mixer
from rfhunt.errors import DspError

#: Training code of an SCH burst in :func:`demodulate_bursts` (0..7 are normal-burst TSCs).
TRAINING_SCH = 8
#: Training code of the C0 dummy burst (its bits 61..86 stand in for a training sequence).
TRAINING_DUMMY = 9
#: Channel taps (symbol-spaced) of the equalizer.
N_TAPS = 5
#: Receive filter cut-off (-6 dB), Hz from the carrier, after mixing the carrier down. It
#: falls from 70 to 110 kHz: the neighbour channels' GMSK (+-200 kHz, main lobes reaching
#: to within about 100 kHz of this carrier) is cut, the ISI of the narrower pulse is the
#: equalizer's to undo (3GPP TS 45.005 §6.3: an adjacent channel 9 dB above the carrier).
RX_CUTOFF_HZ = 90e3
#: Transition width of the receive filter, Hz.
RX_WIDTH_HZ = 40e3
#: Receive filter length, symbols.
RX_SPAN_SYMBOLS = 12


def _training(code: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(full training bits, their burst position, correlation bits, their position)."""
    if code == TRAINING_SCH:
        bits = np.asarray(c.SCH_TRAINING_BITS)
        return bits, 42, bits, 42
    if code == TRAINING_DUMMY:
        bits = np.asarray(c.DUMMY_BURST_BITS[61:87])
        return bits, 61, bits, 61
    bits = np.asarray(c.TSC_BITS[code])
    return bits, 61, bits[5:21], 66


@dataclass(frozen=True)
class DemodulatedBursts:
    """Equalized bursts.

    Attributes
    ----------
    soft : numpy.ndarray
        float32 ``(n_bursts, 148)``: ``log P(b=0) / P(b=1)`` per burst bit (positive = 0).
    snr_db : numpy.ndarray
        Per-burst SNR from the training sequence: channel energy over residual noise, dB.
    start : numpy.ndarray
        float64 stream sample index where the first channel tap of bit 0 was found.
    taps : numpy.ndarray
        complex64 ``(n_bursts, N_TAPS)`` channel estimate (derotated domain).
    sps : int
        Stream samples per symbol (tap spacing).
    """

    soft: np.ndarray
    snr_db: np.ndarray
    start: np.ndarray
    taps: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        """Stream sample index of bit 0's energy centroid (a timing reference that does not
        depend on where the tap window happened to start)."""
        p = np.abs(self.taps) ** 2
        sps_lag = np.arange(p.shape[1])
        tot = np.maximum(p.sum(axis=1), 1e-30)
        return self.start + (p @ sps_lag) / tot * self.sps

    sps: int = 1

    @property
    def bits(self) -> np.ndarray:
        """Hard decisions, uint8 ``(n_bursts, 148)``."""
        return (self.soft < 0).astype(np.uint8)


def rx_filter(sps: int, fs: float) -> np.ndarray:
    """Linear-phase low-pass FIR (float32) applied to each burst after mixing it down."""
    return scipy.signal.firwin(RX_SPAN_SYMBOLS * sps + 1, RX_CUTOFF_HZ, width=RX_WIDTH_HZ, fs=fs).astype(np.float32)


def _combos(n_taps: int) -> np.ndarray:
    """Symbols s_(m-l), l = 0..L-1, of every transition index j (bit l of j = b_(m-l))."""
    j = np.arange(1 << n_taps)
    bits = (j[:, None] >> np.arange(n_taps)[None, :]) & 1
    return (1 - 2 * bits).astype(np.float32)


def mlse_soft(r: np.ndarray, taps: np.ndarray, noise_var: np.ndarray) -> np.ndarray:
    """Max-log MAP equalization of BPSK symbols through a known ISI channel.

    Parameters
    ----------
    r : numpy.ndarray
        complex ``(n_bursts, n_symbols)`` symbol-spaced, derotated samples:
        ``r_m = sum_l taps_l s_(m-l) + noise`` with ``s = 1 - 2 b``.
    taps : numpy.ndarray
        complex ``(n_bursts, L)`` channel taps, ``L >= 2``.
    noise_var : numpy.ndarray
        ``(n_bursts,)`` complex noise variance ``E|noise|^2``.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_bursts, n_symbols)`` soft bits ``log P(b=0)/P(b=1)``; the symbols before
        ``r``'s first one are unknown (every starting state equally likely).
    """
    r = np.asarray(r)
    h = np.asarray(taps)
    if r.ndim != 2 or h.ndim != 2 or h.shape[0] != r.shape[0] or h.shape[1] < 2:
        raise DspError(f"r and taps must be (n_bursts, n) and (n_bursts, L>=2), got {r.shape}, {h.shape}")
    nv = np.asarray(noise_var, dtype=np.float64)
    if nv.shape != (r.shape[0],) or np.any(~(nv > 0)):
        raise DspError("noise_var must hold one positive value per burst")
    n_b, n_sym = r.shape
    n_taps = h.shape[1]
    n_states = 1 << (n_taps - 1)
    half = n_states // 2
    combos = _combos(n_taps)  # (2S, L)
    h64 = h.astype(np.complex64)
    r64 = r.astype(np.complex64)
    inv = (1.0 / nv).astype(np.float32)
    # Branch metrics |r_m - e_j|^2 / sigma^2 with e_j = sum_l h_l s_l(j), expanded as
    # |r|^2 + |e_j|^2 - 2 sum_l s_l(j) Re(r conj h_l): one real matrix product over all
    # bursts and symbols instead of a complex (bursts, symbols, 2S) difference.
    expect = h64 @ combos.T.astype(np.complex64)  # (B, 2S)
    e2 = (expect.real ** 2 + expect.imag ** 2) * inv[:, None]
    # Layout (symbols, transitions, bursts): the bursts are the contiguous axis of every step.
    rt = r64.T  # (n_sym, B)
    ht = h64.T  # (L, B)
    rh = rt.real[:, None, :] * (ht.real * (-2.0 * inv))[None] + rt.imag[:, None, :] * (ht.imag * (-2.0 * inv))[None]
    gamma = np.matmul(combos, rh)  # (n_sym, 2S, B)
    gamma += e2.T[None]
    gamma += ((rt.real ** 2 + rt.imag ** 2) * inv[None, :])[:, None, :]
    # Transition j = top * S + n (n = 2 p + b_m): from state j >> 1 = top * S/2 + p
    # (b_(m-1) .. b_(m-L+1)) to state n = j & (S-1) (b_m .. b_(m-L+2)). As a
    # (2, S/2, 2, B) array [top, p, b_m, burst] every step is a broadcast (no gather) whose
    # innermost, contiguous axis is the bursts.
    g4 = gamma.reshape(n_sym, 2, half, 2, n_b)
    alpha = np.zeros((n_sym + 1, n_states, n_b), np.float32)
    for m in range(n_sym):
        cand = g4[m] + alpha[m].reshape(2, half, 1, n_b)
        a = np.minimum(cand[0], cand[1], out=alpha[m + 1].reshape(half, 2, n_b))
        if m % 8 == 7:
            a -= a.min(axis=(0, 1))
    beta = np.zeros((1, half, 2, n_b), np.float32)
    llr = np.empty((n_sym, n_b), np.float32)
    for m in range(n_sym - 1, -1, -1):
        cb = g4[m] + beta  # gamma + beta(next state), (2, S/2, 2, B)
        tot = cb + alpha[m].reshape(2, half, 1, n_b)
        best = tot.min(axis=(0, 1))  # (2, B): best path with b_m = 0, with b_m = 1
        np.subtract(best[1], best[0], out=llr[m])
        b = cb.reshape(n_states, 2, n_b).min(axis=1)  # over b_m, per previous state
        if m % 8 == 0:
            b -= b.min(axis=0)
        beta = b.reshape(1, half, 2, n_b)
    return np.ascontiguousarray(llr.T)


def demodulate_bursts(iq: np.ndarray, sample_rate_hz: float, channel: np.ndarray, start: np.ndarray,
                      offset_hz: np.ndarray, training: np.ndarray | int, *,
                      search_symbols: float = 4.0, n_taps: int = N_TAPS,
                      prefiltered: bool = False, equalize: bool = True) -> DemodulatedBursts:
    """Demodulate bursts of channel streams to soft bits.

    Parameters
    ----------
    iq : numpy.ndarray
        complex ``(n_channels, n_samples)`` channel streams at ``sample_rate_hz``.
    sample_rate_hz : float
        Stream rate, Hz: 1, 2 or 4 samples per symbol.
    channel : numpy.ndarray
        int ``(n_bursts,)`` row of ``iq`` of each burst.
    start : numpy.ndarray
        ``(n_bursts,)`` expected sample index of bit 0 of each burst (the timing search
        covers ``+- search_symbols`` around it).
    offset_hz : numpy.ndarray
        ``(n_bursts,)`` or scalar carrier frequency in the stream, Hz (mixed down first).
    training : int or numpy.ndarray
        0..7 normal burst with that TSC, :data:`TRAINING_SCH` or :data:`TRAINING_DUMMY`;
        one or per burst.
    search_symbols : float
        Half-width of the timing search, symbols.
    n_taps : int
        Equalizer channel length ``L`` (2..6), symbols; ``2^(L-1)`` states.
    prefiltered : bool
        The streams already went through the receive filter (:func:`rx_filter`, centred on
        the carrier to within a few hundred Hz, e.g. by
        :func:`~dsp.gsm.rx.windows.channel_windows`): skip it here.
    equalize : bool
        Run the MLSE; False stops after the timing search and channel estimate (timing,
        taps and SNR only; the soft bits are left zero), which is all tracking needs.

    Returns
    -------
    DemodulatedBursts
        Soft bits, SNR, refined timing and channel taps of every burst, in input order.
    """
    x = np.asarray(iq)
    if x.ndim != 2 or x.dtype.kind != "c":
        raise DspError(f"iq must be a complex (n_channels, n_samples) array, got shape {x.shape}")
    sps_f = sample_rate_hz / c.SYMBOL_RATE_HZ
    sps = int(round(sps_f))
    if sps not in (1, 2, 4) or abs(sps_f - sps) > 1e-6:
        raise DspError(f"sample_rate_hz must be 1, 2 or 4 times the GSM symbol rate, got {sample_rate_hz!r}")
    ch = np.atleast_1d(np.asarray(channel, dtype=np.int64))
    st = np.atleast_1d(np.asarray(start, dtype=np.float64))
    if ch.ndim != 1 or st.shape != ch.shape:
        raise DspError(f"channel and start must be 1-D of equal length, got {ch.shape} and {st.shape}")
    if ch.size and (ch.min() < 0 or ch.max() >= x.shape[0]):
        raise DspError(f"channel must index the {x.shape[0]} rows of iq")
    off = np.broadcast_to(np.asarray(offset_hz, dtype=np.float64), ch.shape)
    if not (np.all(np.isfinite(st)) and np.all(np.isfinite(off))):
        raise DspError("start and offset_hz must be finite")
    tr = np.broadcast_to(np.asarray(training, dtype=np.int64), ch.shape)
    if tr.size and (tr.min() < 0 or tr.max() > TRAINING_DUMMY):
        raise DspError(f"training must be 0..7, {TRAINING_SCH} (SCH) or {TRAINING_DUMMY} (dummy)")
    if not 2 <= n_taps <= 6:
        raise DspError(f"n_taps must be in 2..6, got {n_taps!r}")
    if not 0 <= search_symbols <= 32:
        raise DspError(f"search_symbols must be in 0..32, got {search_symbols!r}")
    n_b = ch.size
    soft = np.zeros((n_b, c.BURST_BITS), np.float32)
    snr = np.full(n_b, -np.inf)
    found = np.full(n_b, np.nan)
    taps = np.zeros((n_b, n_taps), np.complex64)
    if n_b == 0:
        return DemodulatedBursts(soft, snr, found, taps, sps)
    fs = float(sample_rate_hz)
    fir = rx_filter(sps, fs)
    half = fir.size // 2
    search = int(math.ceil(search_symbols * sps))
    # Window: search range before bit 0, the burst and the channel's tail, filter margins.
    lead = search + half
    length = lead + (c.BURST_BITS + n_taps + 2) * sps + search + half
    base = np.rint(st).astype(np.int64) - lead
    idx = base[:, None] + np.arange(length)
    n = x.shape[1]
    valid = (idx >= 0) & (idx < n)
    w = x[ch[:, None], np.clip(idx, 0, n - 1)] * valid
    # Mix the carrier down, then low-pass, then derotate by j^-n (n in symbols).
    w = w * _mixer(off, length, fs)
    if not prefiltered:
        w = scipy.signal.oaconvolve(w, fir[None, :], mode="same", axes=1).astype(np.complex64)
    w *= np.exp(-0.5j * np.pi * np.arange(length) / sps).astype(np.complex64)[None, :]
    n_tau = 2 * search + 1
    # Symbol-spaced samples, taps and noise of every burst: one MLSE over all of them.
    r_all = np.zeros((n_b, c.BURST_BITS + n_taps - 1), np.complex64)
    h_all = np.zeros((n_b, n_taps), np.complex128)
    nv_all = np.ones(n_b)
    for code in np.unique(tr):
        sel = np.flatnonzero(tr == code)
        y = w[sel]
        full, full_pos, corr, corr_pos = _training(int(code))
        s_corr = (1.0 - 2.0 * corr).astype(np.float32)
        # tau: offset of tap 0 of bit 0 from the window's nominal position `half + search`.
        tau = np.arange(-search, search + (n_taps - 1) * sps + 1)
        pos = (lead + tau)[:, None] + (corr_pos + np.arange(corr.size))[None, :] * sps
        cor = (y[:, pos] @ s_corr) / corr.size  # (B, n_tau + (L-1) sps)
        p = cor.real ** 2 + cor.imag ** 2
        energy = sum(p[:, k * sps:k * sps + n_tau] for k in range(n_taps))
        best = np.argmax(energy, axis=1) - search  # offset in samples
        # Least squares over the whole training sequence: rows m = full_pos+L-1 .. end.
        s_full = (1.0 - 2.0 * full).astype(np.float64)
        rows = np.arange(n_taps - 1, full.size)
        a = np.stack([s_full[rows - k] for k in range(n_taps)], axis=1)
        pinv = np.linalg.pinv(a)
        m_rows = full_pos + rows
        rr = y[np.arange(sel.size)[:, None], lead + best[:, None] + m_rows[None, :] * sps]
        h = rr @ pinv.T  # (B, L)
        resid = rr - h @ a.T
        dof = max(1, rows.size - n_taps)
        nv = np.maximum((np.abs(resid) ** 2).sum(axis=1) / dof, 1e-12 * np.maximum((np.abs(h) ** 2).sum(1), 1e-30))
        # Observe the channel's tail too: bit 147 still echoes L-1 symbols later.
        sym_idx = lead + best[:, None] + np.arange(c.BURST_BITS + n_taps - 1)[None, :] * sps
        r_all[sel] = y[np.arange(sel.size)[:, None], sym_idx]
        h_all[sel] = h
        nv_all[sel] = nv
        snr[sel] = 10.0 * np.log10((np.abs(h) ** 2).sum(axis=1) / nv)
        found[sel] = base[sel] + lead + best
        taps[sel] = h.astype(np.complex64)
    if equalize:
        soft[:] = mlse_soft(r_all, h_all, nv_all)[:, :c.BURST_BITS]
    return DemodulatedBursts(soft=soft, snr_db=snr, start=found, taps=taps, sps=sps)
