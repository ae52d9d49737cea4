"""GSM downlink receiver front end: wideband IQ -> soft bits of every BCCH carrier's timeslot 0.

:func:`receive_bcch` chains the stages, each batched over all channels of the capture:
:func:`~dsp.gsm.rx.channelizer.channelize` -> :func:`~dsp.gsm.rx.fcch.detect_fcch` ->
:func:`~dsp.gsm.rx.sync.find_sch` (and the SCH decoder of :mod:`dsp.gsm.coding` for BSIC and
frame number) -> :func:`~dsp.gsm.rx.sync.fit_timing` ->
:func:`~dsp.gsm.rx.equalizer.demodulate_bursts` on every timeslot-0 burst.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.coding import sch_burst_bits
from dsp.gsm.rx.channelizer import channelize
from dsp.gsm.rx.equalizer import N_TAPS, RX_SPAN_SYMBOLS, TRAINING_SCH, demodulate_bursts, rx_filter
from dsp.gsm.rx.fcch import detect_fcch, fcch_offset_at
from dsp.gsm.rx.sync import SCH_MIN_SNR_DB, TdmaTiming, find_sch, fit_timing
from dsp.gsm.rx.windows import EDGE_SYMBOLS, WindowPlan, channel_windows, window_plan
from dsp.spectrum import noise_floor_density, power_spectrum
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


def _receive_streams(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                     channel_freqs_hz: np.ndarray | list[float], sps: int,
                     max_offset_hz: float, ccch: bool = True) -> list[ChannelResult]:
    """The whole-capture receiver: every channel channelized over the whole capture."""
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
            if not ccch:
                skip |= ~(is_sch | np.isin(t51, c.BCCH_FRAMES))
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


# --------------------------------------------------------------------------- windowed receiver

#: Air time the cells are acquired on (FCCH, SCH, TDMA grid), s: 14 TDMA frames always hold
#: an FCCH and the SCH after it.
ACQUIRE_S = 0.065
#: Captures shorter than this many acquisition stretches are received whole.
_MIN_WINDOWED = 4
#: Timing search of the SCH bursts that follow the TDMA grid through the capture, and of the
#: other bursts once the grid is fitted to them, symbols.
_TRACK_SEARCH = 8.0
_BURST_SEARCH = 4.0
#: Symbols of a window before the expected bit 0 of its burst: the circular filter's edge,
#: the timing search and the equalizer's low-pass (its half length).
_LEAD_SYMBOLS = EDGE_SYMBOLS + _TRACK_SEARCH + RX_SPAN_SYMBOLS / 2 + 2
#: Symbols a window spans.
_SPAN_SYMBOLS = 2 * _LEAD_SYMBOLS + c.BURST_BITS + N_TAPS + 2
#: In-channel SNR (dB, over the acquisition stretch) from which a channel where no cell was
#: acquired counts as holding a carrier and is searched through the whole capture.
CARRIER_SNR_DB = -4.0
#: ... no more than this far below either neighbour channel, dB (3GPP TS 45.005 asks for
#: reception 9 dB below an adjacent carrier) ...
ADJACENT_DB = 15.0
#: ... and whose power is no more than this far below that of its mirror frequency, dB.
IMAGE_DB = 15.0


@dataclass
class _Cell:
    """What acquisition learnt of one channel (stream times are global)."""

    k: int
    timing: TdmaTiming
    bsic: int
    offset_hz: float  # carrier minus nominal centre, Hz
    full_rate: bool


def _acquire(seg: np.ndarray, fs: float, fc: float, freqs: np.ndarray, sps: int, max_offset_hz: float):
    """FCCH, SCH and TDMA grid of every channel on the stretch ``seg``."""
    chz = channelize(seg, fs, fc, freqs, sps=sps)
    fcch = detect_fcch(chz.iq, chz.sample_rate_hz, max_offset_hz=max_offset_hz, channel_freqs_hz=freqs)
    sch = find_sch(chz.iq, chz.sample_rate_hz, fcch)
    decode = _sch_decoder()
    cells: dict[int, _Cell] = {}
    acq: dict[int, tuple] = {}
    if decode is None or not sch.channel.size:
        return cells, acq, fcch
    dec = decode(sch.coded_soft)
    ok, fn, bsic = np.asarray(dec.ok), np.asarray(dec.fn), np.asarray(dec.bsic)
    for k in np.flatnonzero(fcch.detected):
        good = (sch.channel == k) & ok
        if not good.any():
            continue
        order = np.flatnonzero(good)[np.argsort(sch.centre[good])]
        timing = fit_timing(sch.centre[order], sps, fn=fn[order])
        acq[int(k)] = ((fn[order] - timing.fn_frame0) % c.HYPERFRAME, sch.centre[order])
        cells[int(k)] = _Cell(k=int(k), timing=timing,
                              bsic=int(np.bincount(bsic[good]).argmax()),
                              offset_hz=float(fcch.offset_hz[k] - chz.residual_hz[k]),
                              full_rate=bool(fcch.full_rate[k]) if fcch.full_rate is not None else False)
    return cells, acq, fcch


class _Windows:
    """Cuts bursts of acquired cells out of the capture and demodulates them."""

    def __init__(self, iq, fs, fc, freqs, plan: WindowPlan, dc: complex):
        self.iq, self.fs, self.fc, self.freqs, self.plan, self.dc = iq, fs, fc, freqs, plan, dc
        self.to_in = plan.in_rate_hz / plan.out_rate_hz  # input samples per stream sample
        self.n_stream = iq.size / self.to_in
        self.rx_fir = rx_filter(plan.sps, plan.out_rate_hz)

    def cut(self, k: np.ndarray, stream_start: np.ndarray, carrier_hz: np.ndarray, fir: np.ndarray | None = None):
        """Windows of channels ``k`` whose burst bit 0 is expected at global stream index
        ``stream_start``, centred on the carrier (``carrier_hz`` from the nominal centre):
        the windows and each burst's expected start inside its window."""
        sps = self.plan.sps
        b = np.floor((stream_start - _LEAD_SYMBOLS * sps) * self.to_in).astype(np.int64)
        win = channel_windows(self.iq, self.plan, self.fc, self.freqs[k] + carrier_hz, b, dc=self.dc, fir=fir)
        return win, stream_start - b / self.to_in

    def demodulate(self, k, stream_start, offset_hz, training, search, equalize=True):
        """Demodulated bursts (timing ``centre`` in global stream samples). The receive
        filter is applied in the windows' spectra, centred on each carrier."""
        win, local = self.cut(k, stream_start, offset_hz, self.rx_fir)
        d = demodulate_bursts(win.iq, self.plan.out_rate_hz, np.arange(k.size), local, win.residual_hz, training,
                              search_symbols=search, prefiltered=True, equalize=equalize)
        return d, d.centre + win.start / self.to_in

    def fcch(self, k, stream_start, offset_hz, full_rate):
        """Carrier offset (Hz, from nominal) and tone fraction measured on FCCH bursts."""
        win, local = self.cut(k, stream_start, offset_hz)
        off, score = fcch_offset_at(win.iq, self.plan.out_rate_hz, np.arange(k.size), local, win.residual_hz,
                                    full_rate)
        return off - win.residual_hz + offset_hz, score


def _frames_in(timing: TdmaTiming, n_stream: float, margin: float) -> np.ndarray:
    """Frame indices whose timeslot 0 lies inside the capture (``margin`` samples spare)."""
    lo = math.ceil((margin - timing.frame0_sample) / timing.frame_samples)
    hi = math.floor((n_stream - margin - c.BURST_BITS * timing.sps - timing.frame0_sample) / timing.frame_samples)
    return np.arange(lo, hi + 1)


def _refit(cell: _Cell, frame: np.ndarray, centre: np.ndarray) -> None:
    """Refit a cell's TDMA grid on SCH bursts of frame indices ``frame`` found at stream
    samples ``centre``."""
    if np.unique(frame).size < 2:
        return
    o = np.argsort(frame)
    t = fit_timing(centre[o], cell.timing.sps, fn=(cell.timing.fn_frame0 + frame[o]) % c.HYPERFRAME)
    # Keep frame index 0 where it was: move the fitted grid's origin back to it.
    cell.timing = dataclasses.replace(cell.timing, frame0_sample=t.frame0_sample - frame[o][0] * t.frame_samples,
                                      frame_samples=t.frame_samples)


#: SCH bursts per cell timed in each stretch while following the grid, and the factor by
#: which each stretch is longer than the last.
_SCH_PER_STRETCH = 2
_STRETCH_GROWTH = 6.0


def _track(wins: _Windows, cells: dict[int, _Cell], acq: dict[int, tuple], t_fit_end: float) -> dict[int, np.ndarray]:
    """Follow each cell's TDMA grid through the capture on its SCH bursts: the last
    :data:`_SCH_PER_STRETCH` of stretches each :data:`_STRETCH_GROWTH` times longer than
    the last (so the grid is never extrapolated far beyond what it was fitted on), timed by
    their extended training sequence alone, refitting after each. ``acq`` holds each
    cell's SCHs from acquisition (frame indices, stream centres). Returns the frame
    indices of the SCH bursts timed."""
    margin = 4 * wins.plan.sps
    points = {k: (np.asarray(acq[k][0], np.int64), np.asarray(acq[k][1], np.float64)) for k in cells}
    end = t_fit_end
    while end < wins.n_stream:
        end = min(_STRETCH_GROWTH * end, wins.n_stream)
        want = {}
        for k, cell in cells.items():
            fr = _frames_in(cell.timing, end, margin)
            fr = fr[np.isin(cell.timing.fn_mod51(fr), c.SCH_FRAMES)]
            want[k] = np.setdiff1d(fr[-_SCH_PER_STRETCH:], points[k][0])
        ks = np.concatenate([np.full(fr.size, k) for k, fr in want.items()])
        if not ks.size:
            continue
        frs = np.concatenate(list(want.values()))
        sts = np.concatenate([cells[k].timing.sample_of(fr) for k, fr in want.items()]) - 2.0 * wins.plan.sps
        d, centre = wins.demodulate(ks, sts, np.array([cells[k].offset_hz for k in ks]), TRAINING_SCH,
                                    _TRACK_SEARCH, equalize=False)
        for k, cell in cells.items():
            sel = (ks == k) & (d.snr_db >= SCH_MIN_SNR_DB)
            points[k] = (np.concatenate((points[k][0], frs[sel])), np.concatenate((points[k][1], centre[sel])))
            _refit(cell, *points[k])
    return {k: p[0] for k, p in points.items()}


#: FCCH bursts per cell the carrier offset is measured on (spread over the capture), when
#: decoding everything and when decoding the BCCH alone (at 10-20 Hz per burst, 8 bursts
#: still pin a carrier to about 0.005 ppm).
FCCH_MEASURED = 16
FCCH_MEASURED_BCCH_ONLY = 8


def _measure_offsets(wins: _Windows, cells: dict[int, _Cell], grids: dict[int, np.ndarray],
                     n_max: int) -> dict[int, tuple]:
    """Re-measure each cell's carrier offset on up to ``n_max`` FCCH bursts at their known
    timing; per cell (spread Hz, input sample of each burst, tone fraction)."""
    sps = wins.plan.sps
    want = {}
    for k, fr in grids.items():
        fr = fr[np.isin(cells[k].timing.fn_mod51(fr), c.FCCH_FRAMES)]
        if fr.size > n_max:
            fr = fr[np.unique(np.linspace(0, fr.size - 1, n_max).round().astype(np.int64))]
        want[k] = fr
    ks = np.concatenate([np.full(fr.size, k) for k, fr in want.items()])
    out: dict[int, tuple] = {k: (float("nan"), np.zeros(0), np.zeros(0)) for k in cells}
    if not ks.size:
        return out
    st = np.concatenate([cells[k].timing.sample_of(fr) for k, fr in want.items()]) - 0.5 * sps
    off0 = np.array([cells[k].offset_hz for k in ks])
    full = np.array([cells[k].full_rate for k in ks])
    f_off, f_score = wins.fcch(ks, st, off0, full)
    for k, cell in cells.items():
        sel = ks == k
        o, w = f_off[sel], f_score[sel]
        if not o.size:
            continue
        good = (np.abs(o - np.median(o)) < 500.0) & (w > 0.2)
        if good.any():
            cell.offset_hz = float(np.average(o[good], weights=w[good]))
        spread = float(np.std(o[good])) if good.sum() > 1 else float("nan")
        out[k] = (spread, st[sel][good] * wins.to_in, w[good])
    return out


def _follow(wins: _Windows, cells: dict[int, _Cell], acq: dict[int, tuple], ccch: bool,
            t_acq_stream: float) -> list[ChannelResult]:
    """Track, measure and demodulate the acquired cells through the whole capture."""
    sps = wins.plan.sps
    timed = _track(wins, cells, acq, t_acq_stream)
    margin = 4 * sps
    grids = {k: _frames_in(cell.timing, wins.n_stream, margin) for k, cell in cells.items()}
    fcch = _measure_offsets(wins, cells, grids, FCCH_MEASURED if ccch else FCCH_MEASURED_BCCH_ONLY)
    # One batch for all cells: SCH bursts (every one of the capture, or those the grid was
    # followed on) and normal bursts (the BCCH block, and every CCCH block).
    want, codes = {}, {}
    for k, fr in grids.items():
        t51 = cells[k].timing.fn_mod51(fr)
        is_sch = np.isin(t51, c.SCH_FRAMES)
        if ccch:
            keep = ~np.isin(t51, c.FCCH_FRAMES + (c.IDLE_FRAME,))
        else:
            keep = np.isin(t51, c.BCCH_FRAMES) | (is_sch & np.isin(fr, timed[k]))
        want[k] = fr[keep]
        codes[k] = np.where(is_sch[keep], TRAINING_SCH, cells[k].bsic & 7)
    ks = np.concatenate([np.full(fr.size, k) for k, fr in want.items()])
    frs = np.concatenate(list(want.values()))
    if ks.size:
        sts = np.concatenate([cells[k].timing.sample_of(fr) for k, fr in want.items()]) - 2.0 * sps
        d, centre = wins.demodulate(ks, sts, np.array([cells[k].offset_hz for k in ks]),
                                    np.concatenate(list(codes.values())), _BURST_SEARCH)
        is_sch = np.concatenate(list(codes.values())) == TRAINING_SCH
        sch_dec = _sch_decoder()(sch_burst_bits(d.soft[is_sch]))
        sch_ok = np.zeros(ks.size, bool)
        sch_fn = np.full(ks.size, -1, np.int64)
        sch_ok[is_sch] = sch_dec.ok
        sch_fn[is_sch] = np.where(sch_dec.ok, sch_dec.fn, -1)
    out = []
    for k in sorted(cells):
        cell = cells[k]
        sel = np.flatnonzero(ks == k)  # in frame order
        kind = np.where(is_sch[sel], KIND_SCH, KIND_NORMAL).astype(np.int8) if sel.size else np.zeros(0, np.int8)
        frame = frs[sel]
        bursts = Ts0Bursts(frame=frame, fn_mod51=cell.timing.fn_mod51(frame), kind=kind,
                           soft=d.soft[sel] if sel.size else np.zeros((0, c.BURST_BITS), np.float32),
                           snr_db=d.snr_db[sel] if sel.size else np.zeros(0),
                           sample=centre[sel] * wins.to_in if sel.size else np.zeros(0))
        s_sel = sel[is_sch[sel]] if sel.size else sel
        freq = float(wins.freqs[k])
        spread, f_samples, f_scores = fcch[k]
        out.append(ChannelResult(
            index=int(k), freq_hz=freq, offset_hz=cell.offset_hz, offset_std_hz=spread,
            ppm=cell.offset_hz / freq * 1e6 if freq > 1e6 else float("nan"),
            fcch_samples=f_samples, fcch_scores=f_scores, timing=cell.timing,
            stream_rate_hz=wins.plan.out_rate_hz, bsic=cell.bsic, tsc=cell.bsic & 7,
            sch_soft=sch_burst_bits(d.soft[s_sel]) if s_sel.size else np.zeros((0, 78), np.float32),
            sch_fn=sch_fn[s_sel] if s_sel.size else np.zeros(0, np.int64),
            sch_ok=sch_ok[s_sel] if s_sel.size else np.zeros(0, bool), bursts=bursts))
    return out


def _carriers(seg: np.ndarray, fs: float, fc: float, freqs: np.ndarray, lo_hz: float) -> np.ndarray:
    """Which channels could hold a cell of their own, judged on ``seg``'s spectrum: power
    over the noise (:data:`CARRIER_SNR_DB`), no more than :data:`ADJACENT_DB` below either
    neighbour 200 kHz away (weaker than that it is the neighbour's skirt, or beyond what a
    receiver is asked to decode next to it), and no more than :data:`IMAGE_DB` below the
    mirror frequency (a receiver's IQ imbalance copies every carrier there, 20-40 dB down).
    Powers are measured within +-90 kHz of where the LO error ``lo_hz`` puts each carrier."""
    nfft = 1 << max(4, int(round(math.log2(fs / 10e3))))  # ~10 kHz bins
    if seg.size < 8 * nfft:
        return np.ones(freqs.size, bool)
    pw = power_spectrum(seg, nfft).mean(axis=0)
    offs = (np.arange(nfft) - nfft // 2) * (fs / nfft)
    usable = np.abs(offs) > 10e3  # not the DC spike
    noise = noise_floor_density(pw, seg.size // nfft, usable)

    def power(centre_hz: np.ndarray) -> np.ndarray:
        """Mean density within +-90 kHz of each centre (0 outside the capture)."""
        m = (np.abs(offs[None, :] - centre_hz[:, None]) <= 90e3) & usable[None, :]
        return (m * pw[None, :]).sum(axis=1) / np.maximum(m.sum(axis=1), 1)

    rel = freqs - fc + lo_hz
    own = power(rel)
    adjacent = np.maximum(power(rel - 200e3), power(rel + 200e3))
    mirror = power(-rel)
    with np.errstate(divide="ignore"):
        snr_db = 10.0 * np.log10(np.maximum(own - noise, 0.0) / noise)
    return ((snr_db > CARRIER_SNR_DB) & (own * 10 ** (ADJACENT_DB / 10) > adjacent)
            & (own * 10 ** (IMAGE_DB / 10) > mirror))


def _receive_windows(iq, fs, fc, freqs, sps, max_offset_hz, plan, ccch: bool, remove_dc: bool
                     ) -> list[ChannelResult]:
    """The windowed receiver (see :func:`receive_bcch`)."""
    # Every 7th sample is plenty for the mean (GMSK carriers average to nothing).
    dc = complex(np.mean(iq[::7])) if remove_dc else 0j
    n_acq = int(ACQUIRE_S * fs)
    seg = (iq[:n_acq] - np.complex64(dc)).astype(np.complex64, copy=False)
    cells, acq, fcch = _acquire(seg, fs, fc, freqs, sps, max_offset_hz)
    wins = _Windows(iq, fs, fc, freqs, plan, dc)
    # Channels with no cell acquired but a carrier of their own are searched through the
    # whole capture (with their neighbours, whose skirts that search must know about).
    rest = np.setdiff1d(np.arange(freqs.size), list(cells))
    lo_hz = float(np.median([cl.offset_hz for cl in cells.values()])) if cells else 0.0
    search = rest[_carriers(seg, fs, fc, freqs[rest], lo_hz)] if rest.size else rest
    out: dict[int, ChannelResult] = {}
    if search.size:
        near = np.flatnonzero(np.min(np.abs(freqs[:, None] - freqs[search][None, :]), axis=1) < 300e3)
        x = iq - np.complex64(dc) if dc else iq
        for r in _receive_streams(x, fs, fc, freqs[near], sps, max_offset_hz, ccch):
            k = int(near[r.index])
            if k in search:
                out[k] = dataclasses.replace(r, index=k)
    if cells:
        for r in _follow(wins, cells, acq, ccch, n_acq / wins.to_in):
            out[r.index] = r
    return [out[k] for k in sorted(out)]


def receive_bcch(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                 channel_freqs_hz: np.ndarray | list[float], *, sps: int = 2,
                 max_offset_hz: float = 60e3, ccch: bool = True, remove_dc: bool = False) -> list[ChannelResult]:
    """Soft bits of every timeslot-0 burst of every BCCH carrier in a capture.

    Cells are acquired (FCCH, SCH, TDMA grid) on the first :data:`ACQUIRE_S` of the
    capture, all channels at once; from then on only the bursts wanted are cut out of the
    capture, channel by channel (:func:`~dsp.gsm.rx.windows.channel_windows`), while the
    SCH bursts keep the grid fitted. A channel where no cell was acquired but which holds
    a carrier (:data:`CARRIER_SNR_DB`) is searched through the whole capture, as are
    captures too short to gain from windows and input rates that need awkwardly long ones.

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
    ccch : bool
        Demodulate the CCCH blocks too (paging, access grants: the load indicator, and
        every frame for GSMTAP); False keeps to the SCH and BCCH bursts, which is all a
        cell's identity needs.
    remove_dc : bool
        Subtract the capture's mean first (an RTL-SDR's DC spike lies 100 kHz from the
        middle channels of a hop, inside their filters).

    Returns
    -------
    list of ChannelResult
        One per channel in which an FCCH was found, in ``channel_freqs_hz`` order, unless
        every FCCH of the channel was followed (inside the capture) by a frame without an SCH.

    Raises
    ------
    DspError
        For a bad capture, rate, channel list or ``sps``.
    """
    if sps not in (2, 4):
        raise DspError(f"sps must be 2 or 4, got {sps!r}")
    x = np.asarray(iq)
    fs = sample_rate_hz
    rate_ok = isinstance(fs, (int, float, np.integer, np.floating)) and math.isfinite(fs) and fs > 0
    plan = window_plan(float(fs), sps, _SPAN_SYMBOLS) if rate_ok else None
    if plan is None or x.ndim != 1 or x.dtype.kind != "c" or x.size < _MIN_WINDOWED * ACQUIRE_S * fs:
        if remove_dc and x.ndim == 1 and x.size:
            x = x - x.mean()
        return _receive_streams(x, fs, center_freq_hz, channel_freqs_hz, sps, max_offset_hz, ccch)
    freqs = np.atleast_1d(np.asarray(channel_freqs_hz, dtype=np.float64))
    return _receive_windows(x, float(fs), float(center_freq_hz), freqs, sps, max_offset_hz, plan, ccch, remove_dc)
