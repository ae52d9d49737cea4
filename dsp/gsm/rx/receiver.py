"""GSM downlink receiver front end: wideband IQ -> soft bits of every BCCH carrier's timeslot 0.

:func:`receive_bcch` chains the stages, each batched over all channels of the capture:
:func:`~dsp.gsm.rx.channelizer.channelize` -> :func:`~dsp.gsm.rx.fcch.detect_fcch` ->
:func:`~dsp.gsm.rx.sync.find_sch` (and the SCH decoder of :mod:`dsp.gsm.coding` for BSIC and
frame number) -> :func:`~dsp.gsm.rx.sync.fit_timing` ->
:func:`~dsp.gsm.rx.equalizer.demodulate_bursts` on every timeslot-0 burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.coding import sch_burst_bits
from dsp.gsm.rx.channelizer import channelize
from dsp.gsm.rx.equalizer import TRAINING_SCH, demodulate_bursts
from dsp.gsm.rx.fcch import detect_fcch, fcch_offset_at
from dsp.gsm.rx.sync import TdmaTiming, find_sch, fit_timing
from rfhunt.errors import DspError

#: Burst kinds of :attr:`Ts0Bursts.kind`.
KIND_NORMAL, KIND_SCH = 0, 1


@dataclass(frozen=True)
class Ts0Bursts:
    """Demodulated timeslot-0 bursts of one channel.

    Attributes
    ----------
    frame : numpy.ndarray
        int64 frame index relative to :class:`~dsp.gsm.rx.sync.TdmaTiming` frame 0 (the first
        SCH found); ``FN = timing.fn_frame0 + frame`` when the SCH was decoded.
    fn_mod51 : numpy.ndarray or None
        FN mod 51 of each burst when the multiframe phase is known.
    kind : numpy.ndarray
        int8 :data:`KIND_NORMAL` or :data:`KIND_SCH`.
    soft : numpy.ndarray
        float32 ``(n, 148)`` soft bits, positive = bit 0 (``log P(0)/P(1)``).
    snr_db : numpy.ndarray
        Per-burst training-sequence SNR, dB.
    sample : numpy.ndarray
        float64 input-sample index of bit 0 (energy centroid) of each burst.
    """

    frame: np.ndarray
    fn_mod51: np.ndarray | None
    kind: np.ndarray
    soft: np.ndarray
    snr_db: np.ndarray
    sample: np.ndarray


@dataclass(frozen=True)
class ChannelResult:
    """What the front end learnt about one channel with an FCCH.

    Attributes
    ----------
    index : int
        Position of the channel in ``channel_freqs_hz``.
    freq_hz : float
        Nominal channel centre, Hz.
    offset_hz : float
        Carrier frequency minus ``freq_hz``, Hz (LO error of the receiver plus the cell's own).
    offset_std_hz : float
        Spread of the per-FCCH estimates, Hz (NaN with one burst).
    ppm : float
        ``offset_hz / freq_hz * 1e6`` (NaN unless ``freq_hz`` is an RF frequency > 1 MHz).
    fcch_samples : numpy.ndarray
        Input-sample indices of the start of each FCCH burst found.
    fcch_scores : numpy.ndarray
        Coherent tone fraction (0..1) of each FCCH burst.
    timing : TdmaTiming or None
        The TDMA grid in stream samples (None when no SCH was found); see ``stream_rate_hz``.
    stream_rate_hz : float
        Rate of the stream ``timing`` counts in (input index = stream index * input rate /
        stream rate).
    bsic : int or None
        Base station identity code from the decoded SCH (None if not decoded).
    tsc : int or None
        Training sequence code used for the normal bursts (BCC, or the best-fitting TSC).
    sch_soft : numpy.ndarray
        float32 ``(n_sch, 78)`` coded soft bits of every SCH demodulated (one per SCH frame).
    sch_fn : numpy.ndarray
        int64 decoded FN of each SCH (-1 where it did not decode).
    sch_ok : numpy.ndarray
        bool: the SCH decoded with a valid parity.
    bursts : Ts0Bursts
        Every timeslot-0 SCH and normal burst of the capture (FCCH and idle frames excluded
        when the multiframe phase is known).
    """

    index: int
    freq_hz: float
    offset_hz: float
    offset_std_hz: float
    ppm: float
    fcch_samples: np.ndarray
    fcch_scores: np.ndarray
    timing: TdmaTiming | None
    stream_rate_hz: float
    bsic: int | None
    tsc: int | None
    sch_soft: np.ndarray
    sch_fn: np.ndarray
    sch_ok: np.ndarray
    bursts: Ts0Bursts


def _sch_decoder():
    """The SCH decoder of :mod:`dsp.gsm.coding` when it is there (None otherwise)."""
    try:
        from dsp.gsm.coding import sch_decode
    except ImportError:  # pragma: no cover - depends on the channel-coding work
        return None
    return sch_decode


def _empty_bursts() -> Ts0Bursts:
    return Ts0Bursts(frame=np.zeros(0, np.int64), fn_mod51=None, kind=np.zeros(0, np.int8),
                     soft=np.zeros((0, c.BURST_BITS), np.float32), snr_db=np.zeros(0), sample=np.zeros(0))


def _pick_tsc(iq, fs, ch, starts, offset) -> int:
    """Training sequence code that fits a few normal bursts best (mean SNR)."""
    n = starts.size
    tsc = np.repeat(np.arange(8), n)
    d = demodulate_bursts(iq, fs, np.full(8 * n, ch), np.tile(starts, 8), offset, tsc, search_symbols=4.0)
    return int(np.argmax(d.snr_db.reshape(8, n).mean(axis=1)))


def _refine_offsets(streams, fs, n, plans, offset, spread, full_rate) -> None:
    """Re-measure each channel's offset on its FCCH bursts at the SCH-given timing."""
    sps = int(round(fs / c.SYMBOL_RATE_HZ))
    rows, starts = [], []
    for k, (timing, _) in plans.items():
        if timing is None:
            continue
        lo = math.ceil(-timing.frame0_sample / timing.frame_samples)
        hi = math.floor((n - c.BURST_BITS * sps - timing.frame0_sample) / timing.frame_samples)
        fr = np.arange(lo, hi + 1)
        t51 = timing.fn_mod51(fr)
        fr = fr[np.isin(t51, c.FCCH_FRAMES)] if t51 is not None else fr[:0]
        rows.append(np.full(fr.size, k))
        starts.append(timing.sample_of(fr) - 0.5 * sps)
    if not rows or not sum(r.size for r in rows):
        return
    ch = np.concatenate(rows)
    off, score = fcch_offset_at(streams, fs, ch, np.concatenate(starts), offset[ch], full_rate[ch])
    for k in np.unique(ch):
        o, w = off[ch == k], score[ch == k]
        good = (np.abs(o - np.median(o)) < 500.0) & (w > 0.2)
        if good.any():
            offset[k] = float(np.average(o[good], weights=w[good]))
            spread[k] = float(np.std(o[good])) if good.sum() > 1 else float("nan")


def receive_bcch(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                 channel_freqs_hz: np.ndarray | list[float], *, sps: int = 2,
                 max_offset_hz: float = 60e3) -> list[ChannelResult]:
    """Soft bits of every timeslot-0 burst of every BCCH carrier in a capture.

    Parameters
    ----------
    iq : numpy.ndarray
        1-D complex capture.
    sample_rate_hz : float
        Its sample rate, Hz (any; e.g. 500 kS/s, 1 MS/s, 1.0833 MS/s, 2.4 MS/s, 4 MS/s).
    center_freq_hz : float
        Frequency of the capture's 0 Hz, Hz.
    channel_freqs_hz : array_like
        Nominal centres of the channels to look at, Hz (same reference as ``center_freq_hz``).
    sps : int
        Samples per symbol of the channel streams (2 or 4).
    max_offset_hz : float
        Largest carrier offset (LO error) searched, Hz.

    Returns
    -------
    list of ChannelResult
        One per channel in which an FCCH was found, in ``channel_freqs_hz`` order, unless
        every FCCH of the channel was followed (inside the capture) by a frame without an SCH.
    """
    if sps not in (2, 4):
        raise DspError(f"sps must be 2 or 4, got {sps!r}")
    chz = channelize(iq, sample_rate_hz, center_freq_hz, channel_freqs_hz, sps=sps)
    fs = chz.sample_rate_hz
    streams = chz.iq
    n = streams.shape[1]
    to_in = chz.in_rate_hz / fs
    fcch = detect_fcch(streams, fs, max_offset_hz=max_offset_hz, channel_freqs_hz=chz.channel_freqs_hz)
    sch = find_sch(streams, fs, fcch)
    decode = _sch_decoder()
    if decode is not None and sch.channel.size:
        dec = decode(sch.coded_soft)
        sch_ok, sch_fn, sch_bsic = np.asarray(dec.ok), np.asarray(dec.fn), np.asarray(dec.bsic)
    else:
        sch_ok = np.zeros(sch.channel.size, bool)
        sch_fn = np.full(sch.channel.size, -1)
        sch_bsic = np.full(sch.channel.size, -1)
    # Per channel: TDMA grid and the list of timeslot-0 bursts to demodulate.
    plans = {}
    # A channel whose FCCH bursts were all followed by a frame without an SCH is dropped:
    # that is a neighbour's tone through the filter skirt, not a BCCH carrier of its own.
    attempted = np.zeros(fcch.detected.size, bool)
    attempted[sch.channel] = True
    confirmed = np.zeros(fcch.detected.size, bool)
    confirmed[sch.channel[sch.found | sch_ok]] = True
    detected = fcch.detected & (confirmed | ~attempted)
    for k in np.flatnonzero(detected):
        mine = sch.channel == k
        ok = mine & sch_ok
        good = ok if ok.any() else mine & sch.found
        timing = None
        bsic = None
        if good.any():
            timing = fit_timing(sch.centre[good], sps, fn=sch_fn[good] if ok.any() else None)
            if ok.any():
                bsic = int(np.bincount(sch_bsic[ok]).argmax())
        plans[k] = (timing, bsic)
    offset = fcch.offset_hz.copy()
    spread = fcch.offset_std_hz.copy()
    _refine_offsets(streams, fs, n, plans, offset, spread, fcch.full_rate)
    # Frames to demodulate, all channels in one batch.
    rows, frames, starts, offs, codes = [], [], [], [], []
    for k, (timing, bsic) in plans.items():
        if timing is None:
            continue
        lo = math.ceil((8 * sps - timing.frame0_sample) / timing.frame_samples)
        hi = math.floor((n - (c.BURST_BITS + 24) * sps - timing.frame0_sample) / timing.frame_samples)
        fr = np.arange(lo, hi + 1)
        t51 = timing.fn_mod51(fr)
        if t51 is not None:
            is_sch = np.isin(t51, c.SCH_FRAMES)
            skip = np.isin(t51, c.FCCH_FRAMES) | (t51 == c.IDLE_FRAME)
        else:
            sch_frames = np.rint((sch.centre[sch.channel == k] - timing.frame0_sample)
                                 / timing.frame_samples).astype(np.int64)
            is_sch = np.isin(fr, sch_frames)
            skip = np.isin(fr, sch_frames - 1)
        fr, is_sch = fr[~skip], is_sch[~skip]
        # Bit 0's centroid is ~(N_TAPS-1)/2 symbols after the first tap searched around.
        st = timing.sample_of(fr) - 2.0 * sps
        tsc = (bsic & 7) if bsic is not None else None
        if tsc is None:
            normal = np.flatnonzero(~is_sch)[:16]
            tsc = _pick_tsc(streams, fs, k, st[normal], offset[k]) if normal.size else 0
        plans[k] = (timing, bsic, tsc)
        rows.append(np.full(fr.size, k))
        frames.append(fr)
        starts.append(st)
        offs.append(np.full(fr.size, offset[k]))
        codes.append(np.where(is_sch, TRAINING_SCH, tsc))
    if rows:
        all_rows = np.concatenate(rows)
        d = demodulate_bursts(streams, fs, all_rows, np.concatenate(starts), np.concatenate(offs),
                              np.concatenate(codes), search_symbols=4.0)
        all_frames, all_codes = np.concatenate(frames), np.concatenate(codes)
    out = []
    for k in np.flatnonzero(detected):
        plan = plans[k]
        timing, bsic = plan[0], plan[1]
        mine_fcch = fcch.bursts.channel == k
        freq = float(chz.channel_freqs_hz[k])
        offset_k = float(offset[k] - chz.residual_hz[k])
        bursts = _empty_bursts()
        tsc = None
        sch_soft = sch.coded_soft[sch.channel == k]
        s_fn, s_ok = sch_fn[sch.channel == k], sch_ok[sch.channel == k]
        if timing is not None:
            tsc = plan[2]
            sel = all_rows == k
            kind = np.where(all_codes[sel] == TRAINING_SCH, KIND_SCH, KIND_NORMAL).astype(np.int8)
            bursts = Ts0Bursts(frame=all_frames[sel], fn_mod51=timing.fn_mod51(all_frames[sel]), kind=kind,
                               soft=d.soft[sel], snr_db=d.snr_db[sel], sample=d.centre[sel] * to_in)
            # Every SCH on the grid, not only those after a detected FCCH.
            is_s = kind == KIND_SCH
            if is_s.any():
                sch_soft = sch_burst_bits(bursts.soft[is_s])
                if decode is not None:
                    dec = decode(sch_soft)
                    s_fn, s_ok = np.where(dec.ok, dec.fn, -1), np.asarray(dec.ok)
        out.append(ChannelResult(
            index=int(k), freq_hz=freq, offset_hz=offset_k, offset_std_hz=float(spread[k]),
            ppm=offset_k / freq * 1e6 if freq > 1e6 else float("nan"),
            fcch_samples=fcch.bursts.start[mine_fcch] * to_in, fcch_scores=fcch.bursts.score[mine_fcch],
            timing=timing, stream_rate_hz=fs, bsic=bsic, tsc=tsc, sch_soft=sch_soft,
            sch_fn=np.asarray(s_fn, dtype=np.int64), sch_ok=np.asarray(s_ok, dtype=bool), bursts=bursts))
    return out
