"""GSM uplink bursts: every mobile's TDMA bursts in a wideband capture, all channels at once.

A handset transmits one burst per TDMA frame (4.615 ms) on its timeslot while it is in a call,
and short access bursts (RACH) when it asks for a channel. A GOIP gateway or modem pool is
many such handsets in one box. :func:`detect_uplink_bursts` finds the bursts of every
200 kHz channel of a capture:

1. the channelizer (:func:`dsp.gsm.rx.channelizer.channelize`, with a pass band of +-70 kHz
   so that a strong neighbour 200 kHz away leaks little) gives every channel at 2 samples
   per symbol;
2. the power envelope (2-symbol moving average) is compared with each channel's noise floor
   (a low percentile of its envelope); runs above the threshold,
   with gaps shorter than 4 symbols closed, are candidate bursts;
3. each burst's edges are placed where the envelope crosses half its median level, so the
   duration is the on-air time at -3 dB: about 148 symbols (546 us) for a normal burst, 88
   (325 us) for an access burst. Runs spanning several timeslots (adjacent timeslots of one
   ARFCN taken by different handsets) are split into slots;
4. a burst that coincides with a burst at least :data:`LEAK_DB` stronger on the channel next
   to it is that burst's skirt, and is dropped; so are the samples of the envelope where a
   neighbour's is that much stronger, before the runs are formed (else a skirt running into
   a burst of the next slot would be cut from it at the wrong place);
5. per burst: mean power over its middle, SNR, carrier offset (from the spectral lines of
   the squared signal, independent of the data; see :func:`_refine_offset`), and the
   timeslot grid: the slot boundaries are the circular
   mean of the normal bursts' starts modulo the slot length, so each burst gets a slot
   number counted from the first slot boundary of the capture (timeslot = slot mod 8 is
   relative to that boundary unless ``frame_start_s`` gives the start of an uplink TDMA
   frame, e.g. from the serving cell's downlink).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.rx.channelizer import channelize
from rfhunt.errors import DspError

#: Burst kinds of :attr:`UplinkBursts.kind`.
KIND_OTHER, KIND_NORMAL, KIND_ACCESS = 0, 1, 2
KIND_NAMES = ("other", "normal", "access")
#: Slot length, s (156.25 symbols).
SLOT_S = 156.25 / c.SYMBOL_RATE_HZ
#: A burst is the skirt of a neighbour's when that one is this much stronger, dB.
LEAK_DB = 12.0
#: Durations (symbols at -3 dB) of normal and access bursts are told apart at this length.
ACCESS_MAX_SYMBOLS = 118.0
#: Shorter runs are not bursts (symbols; an access burst is 88 symbols long).
MIN_SYMBOLS = 70.0
_SPS = 2


@dataclass(frozen=True)
class UplinkBursts:
    """Bursts found in a capture, sorted by start time.

    Attributes
    ----------
    channel : numpy.ndarray
        int64 index into the ``channel_freqs_hz`` given.
    freq_hz : numpy.ndarray
        Nominal centre of the burst's channel, Hz.
    start_s, duration_s : numpy.ndarray
        Start (from the capture's first sample) and length of the burst at -3 dB, s.
    power_dbfs : numpy.ndarray
        Mean power over the burst's middle, dB full scale (in its 200 kHz channel).
    snr_db : numpy.ndarray
        Power over the noise in the channel, dB.
    offset_hz : numpy.ndarray
        Carrier frequency minus the channel's nominal centre, Hz (tens of Hz at good SNR;
        within about +-30 kHz, the channel filter's reach for the squared-signal lines).
    kind : numpy.ndarray
        int8 :data:`KIND_NORMAL`, :data:`KIND_ACCESS` or :data:`KIND_OTHER`.
    truncated : numpy.ndarray
        bool: the burst runs into either end of the capture (its duration and kind are
        not known).
    slot : numpy.ndarray
        int64 slot number from the capture's first slot boundary (see module notes).
    timeslot : numpy.ndarray
        int64 0..7: ``slot`` modulo 8, relative to ``frame_start_s`` when given.
    slot_phase_s : float
        Time of the first slot boundary after the capture's start, s (NaN without normal
        bursts).
    noise_dbfs : numpy.ndarray
        Noise in each channel (as given), dB full scale.
    """

    channel: np.ndarray
    freq_hz: np.ndarray
    start_s: np.ndarray
    duration_s: np.ndarray
    power_dbfs: np.ndarray
    snr_db: np.ndarray
    offset_hz: np.ndarray
    kind: np.ndarray
    truncated: np.ndarray
    slot: np.ndarray
    timeslot: np.ndarray
    slot_phase_s: float
    noise_dbfs: np.ndarray

    def __len__(self) -> int:
        return int(self.channel.size)


def _runs(on: np.ndarray, min_gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, start, end) of the runs of True along axis 1, gaps shorter than ``min_gap``
    closed; ``end`` is exclusive."""
    rows, n = on.shape
    pad = np.zeros((rows, 1), bool)
    d = np.diff(np.concatenate((pad, on, pad), axis=1).astype(np.int8), axis=1)
    r0, s = np.nonzero(d == 1)
    _, e = np.nonzero(d == -1)  # same row order, one end per start
    if s.size > 1:
        gap = s[1:] - e[:-1]
        merge = (r0[1:] == r0[:-1]) & (gap < min_gap)
        if merge.any():
            keep_start = np.concatenate(([True], ~merge))
            keep_end = np.concatenate((~merge, [True]))
            r0, s, e = r0[keep_start], s[keep_start], e[keep_end]
    return r0, s, e


def _half_level_edges(env: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray,
                      level: np.ndarray, inward: int, outward: int, inward_start: np.ndarray,
                      inward_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each run's envelope crosses ``level / 2``: searched from ``outward`` samples
    outside its rough edges to ``inward`` samples inside (the rough edges, at a threshold
    over the noise, lie far out in a strong burst's ramps), and only inside where
    ``inward_start`` / ``inward_end`` (an edge shared with the next slot's burst, which may
    be stronger)."""
    n = env.shape[1]
    k = np.arange(-outward, inward + 1)  # offsets into the run from its edge
    half = (level / 2.0)[:, None]
    idx = np.clip(start[:, None] + k, 0, n - 1)
    up = (env[row[:, None], idx] >= half) & ~(inward_start[:, None] & (k < 0)[None, :])
    first = np.where(up.any(axis=1), np.argmax(up, axis=1), outward)
    s = np.clip(start + k[first], 0, n)
    idx = np.clip(end[:, None] - 1 - k, 0, n - 1)
    up = (env[row[:, None], idx] >= half) & ~(inward_end[:, None] & (k < 0)[None, :])
    last = np.where(up.any(axis=1), np.argmax(up, axis=1), outward)
    e = np.clip(end - k[last], 0, n)
    return s, np.maximum(e, s + 1)


def _refine_offset(z: np.ndarray, fs: float, row: np.ndarray, s: np.ndarray, e: np.ndarray,
                   coarse_hz: np.ndarray) -> np.ndarray:
    """Carrier offsets from the spectral lines of the squared signal.

    Squaring GMSK leaves lines at twice the carrier offset plus and minus half the symbol
    rate; their mean is independent of the data (the mean phase step is not: a few kHz of
    noise). Lines are searched within 12 kHz of where ``coarse_hz`` puts them, on the middle
    of each burst (zero-padded FFT, parabolic peak interpolation), all bursts at once."""
    if row.size == 0:
        return coarse_hz
    n_fft = 2048
    length = int(60 * _SPS)  # the middle 60 symbols fit in the shortest (access) burst
    mid = (s + e) // 2
    idx = np.clip(mid[:, None] - length // 2 + np.arange(length), 0, z.shape[1] - 1)
    seg = z[row[:, None], idx].astype(np.complex64)
    sq = seg * seg * np.hanning(length).astype(np.float32)
    spec = np.abs(np.fft.fft(sq, n_fft, axis=1)) ** 2
    bin_hz = fs / n_fft
    half_r = c.SYMBOL_RATE_HZ / 2.0
    reach = int(np.ceil(12e3 / bin_hz))
    k = np.arange(-reach, reach + 1)

    def line(centre_hz: np.ndarray) -> np.ndarray:
        c0 = np.rint(centre_hz / bin_hz).astype(np.int64)
        kk = c0[:, None] + k
        v = spec[np.arange(row.size)[:, None], kk % n_fft]
        j = np.clip(np.argmax(v, axis=1), 1, k.size - 2)
        r = np.arange(row.size)
        a, b, cc = np.log(v[r, j - 1] + 1e-30), np.log(v[r, j] + 1e-30), np.log(v[r, j + 1] + 1e-30)
        frac = 0.5 * (a - cc) / np.where(a - 2 * b + cc == 0, -1e-30, a - 2 * b + cc)
        return (kk[r, j] + np.clip(frac, -0.5, 0.5)) * bin_hz

    two_f = 2.0 * coarse_hz
    return (line(two_f + half_r) + line(two_f - half_r)) / 4.0


def detect_uplink_bursts(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                         channel_freqs_hz: np.ndarray | list[float], *, threshold_db: float = 8.0,
                         frame_start_s: float | None = None, noise_dbfs: float | None = None) -> UplinkBursts:
    """Find the TDMA bursts of every uplink channel of a capture.

    Parameters
    ----------
    iq : numpy.ndarray
        1-D complex capture, full scale 1.
    sample_rate_hz : float
        Its sample rate, Hz (any rate the channelizer takes: 1, 2, 2.4, 4 MS/s, ...).
    center_freq_hz : float
        Frequency of the capture's 0 Hz, Hz.
    channel_freqs_hz : array_like
        Nominal centres of the channels to look at, Hz.
    threshold_db : float
        Envelope over the noise that makes a burst, dB.
    frame_start_s : float, optional
        Start of timeslot 0 of some uplink TDMA frame, s from the capture's first sample;
        without it timeslots are relative (see module notes).
    noise_dbfs : float, optional
        Noise in a 200 kHz channel, dB full scale, when known; estimated per channel from
        the capture otherwise.

    Returns
    -------
    UplinkBursts

    Raises
    ------
    DspError
        For a bad capture, rate or channel list (see :func:`~dsp.gsm.rx.channelizer.channelize`)
        or a capture shorter than one slot.
    """
    x = np.asarray(iq)
    if x.ndim != 1 or x.dtype.kind != "c":
        raise DspError(f"iq must be a 1-D complex array, got shape {x.shape} dtype {x.dtype}")
    if not (isinstance(sample_rate_hz, (int, float, np.integer, np.floating)) and math.isfinite(sample_rate_hz)
            and sample_rate_hz > 0):
        raise DspError(f"sample_rate_hz must be a positive finite number, got {sample_rate_hz!r}")
    if x.size < SLOT_S * sample_rate_hz:
        raise DspError(f"capture of {x.size} samples is shorter than one GSM timeslot "
                       f"({SLOT_S * 1e6:.0f} us at {sample_rate_hz} Hz)")
    if not 0 < threshold_db < 40:
        raise DspError(f"threshold_db must be in (0, 40), got {threshold_db!r}")
    chz = channelize(x, sample_rate_hz, center_freq_hz, channel_freqs_hz, sps=_SPS, pass_hz=70e3, stop_hz=110e3)
    z = chz.iq
    fs = chz.sample_rate_hz
    n_ch, n = z.shape
    p = z.real.astype(np.float32) ** 2 + z.imag.astype(np.float32) ** 2
    w = 2 * _SPS
    cs = np.concatenate((np.zeros((n_ch, 1), np.float64), np.cumsum(p, axis=1, dtype=np.float64)), axis=1)
    env = np.empty_like(p)
    env[:, :n - w + 1] = (cs[:, w:] - cs[:, :-w]) / w
    env[:, n - w + 1:] = env[:, n - w:n - w + 1]
    if noise_dbfs is None:
        # Per channel (a front end's filters shape the noise across the span): the 2nd
        # percentile of the envelope, which lies in the guard-period dips even on a channel
        # whose eight timeslots are all busy. On noise alone it is 0.116 of the mean
        # (measured on white noise through the channelizer at 2 samples per symbol).
        noise_ch = np.percentile(env, 2, axis=1).astype(np.float64) / 0.116
    else:
        noise_ch = np.full(n_ch, 10 ** (noise_dbfs / 10.0))
    noise_ch = np.maximum(noise_ch, 1e-20)
    on = env > noise_ch[:, None] * 10 ** (threshold_db / 10.0)
    # A neighbour's skirt (a burst >= LEAK_DB stronger 200 kHz away, at the same time) is
    # not this channel's: left in, it runs into a burst of this channel in the next slot and
    # the two are cut apart at the wrong place (a spurious link and a short burst).
    ch_f = chz.channel_freqs_hz
    adj = np.abs(np.abs(ch_f[:, None] - ch_f[None, :]) - 200e3) < 1e3
    if adj.any():
        nb_env = np.zeros_like(env)
        for i, j in zip(*np.nonzero(adj)):
            np.maximum(nb_env[i], env[j], out=nb_env[i])
        on &= ~(env * np.float32(10 ** (LEAK_DB / 10.0)) < nb_env)
    row, s, e = _runs(on, min_gap=4 * _SPS)
    keep = (e - s) >= MIN_SYMBOLS * _SPS
    row, s, e = row[keep], s[keep], e[keep]
    # Runs spanning several slots (adjacent timeslots taken by different handsets) are cut
    # where the envelope dips in the guard periods between them.
    slot_n = SLOT_S * fs
    n_slots = np.where((e - s) > 1.3 * slot_n, np.maximum(1, np.rint((e - s) / slot_n).astype(np.int64)), 1)
    rep = np.repeat(np.arange(row.size), n_slots)
    piece = np.arange(rep.size) - np.repeat(np.cumsum(n_slots) - n_slots, n_slots)
    cut = np.rint(s[rep] + piece * (e - s)[rep] / n_slots[rep]).astype(np.int64)  # rough piece starts
    inner = piece > 0
    if inner.any():
        reach = int(8 * _SPS)
        k = np.arange(-reach, reach + 1)
        idx = np.clip(cut[inner][:, None] + k, 0, n - 1)
        cut[inner] = idx[np.arange(idx.shape[0]), np.argmin(env[row[rep][inner][:, None], idx], axis=1)]
    last = piece == n_slots[rep] - 1
    ends = np.where(last, e[rep], np.roll(cut, -1))
    truncated = ((cut <= 0) & ~inner) | ((ends >= n) & last)
    row, s, e = row[rep], cut, ends
    # Level of each burst: the mean envelope over its middle half; its edges where the
    # envelope crosses half that.
    q0, q1 = s + (e - s) // 4, e - (e - s) // 4
    level = (cs[row, q1] - cs[row, q0]) / np.maximum(q1 - q0, 1)
    s, e = _half_level_edges(env, row, s, e, level, 30 * _SPS, 4 * _SPS, inner, ~last)
    # Power and offset over the middle of each burst.
    q0, q1 = s + (e - s) // 8, e - (e - s) // 8
    q1 = np.maximum(q1, q0 + 1)
    power = (cs[row, q1] - cs[row, q0]) / (q1 - q0)
    lag = z[:, 1:] * np.conj(z[:, :-1])
    cl = np.concatenate((np.zeros((n_ch, 1), np.complex128), np.cumsum(lag, axis=1, dtype=np.complex128)), axis=1)
    q1l = np.minimum(q1, n - 1)
    ph = cl[row, q1l] - cl[row, np.minimum(q0, q1l)]
    offset = np.angle(ph) * fs / (2 * np.pi) - chz.residual_hz[row]  # from the nominal centre
    # Skirts: a burst overlapping in time (for most of its length) a burst >= LEAK_DB stronger
    # on a channel 200 kHz away.
    f_row = chz.channel_freqs_hz[row]
    if row.size > 1:
        near = np.abs(np.abs(f_row[:, None] - f_row[None, :]) - 200e3) < 1e3
        # a skirt lasts as long as its source: most of the burst overlaps it (a burst of the
        # neighbour's next or previous slot touches it only at the edges)
        overlap = (np.minimum(e[:, None], e[None, :]) - np.maximum(s[:, None], s[None, :])) >= 0.5 * (e - s)[:, None]
        stronger = power[None, :] > power[:, None] * 10 ** (LEAK_DB / 10.0)
        leak = np.any(near & overlap & stronger, axis=1)
    else:
        leak = np.zeros(row.size, bool)
    keep = ~leak & (power > noise_ch[row] * 10 ** (threshold_db / 10.0))
    row, s, e, power, offset, truncated = row[keep], s[keep], e[keep], power[keep], offset[keep], truncated[keep]
    dur_sym = (e - s) / _SPS
    offset = _refine_offset(z, fs, row, s, e, offset)
    kind = np.where(dur_sym >= ACCESS_MAX_SYMBOLS, KIND_NORMAL,
                    np.where(dur_sym >= 70.0, KIND_ACCESS, KIND_OTHER)).astype(np.int8)
    kind[dur_sym > 1.3 * 156.25] = KIND_OTHER
    kind[truncated] = KIND_OTHER
    start_s = (s + w / 2.0) / fs  # the envelope at i averages p[i .. i + w - 1]
    # The slot grid: normal bursts start ~4 symbols (ramp, tail) after their slot boundary.
    normal = kind == KIND_NORMAL
    if frame_start_s is not None:
        phase = float(frame_start_s) % SLOT_S
    elif normal.any():
        ang = 2 * np.pi * (start_s[normal] % SLOT_S) / SLOT_S
        wts = power[normal]
        phase = float(np.angle(np.sum(wts * np.exp(1j * ang))) % (2 * np.pi) / (2 * np.pi) * SLOT_S)
    else:
        phase = float("nan")
    if math.isfinite(phase):
        slot = np.floor((start_s - phase) / SLOT_S + 0.5).astype(np.int64)
        if frame_start_s is not None:
            timeslot = np.floor((start_s - float(frame_start_s)) / SLOT_S + 0.5).astype(np.int64) % 8
        else:
            timeslot = slot % 8
    else:
        slot = np.zeros(row.size, np.int64)
        timeslot = np.zeros(row.size, np.int64)
    order = np.lexsort((row, start_s))
    with np.errstate(divide="ignore"):
        return UplinkBursts(
            channel=row[order].astype(np.int64), freq_hz=chz.channel_freqs_hz[row[order]],
            start_s=start_s[order], duration_s=((e - s) / fs)[order],
            power_dbfs=10 * np.log10(power[order]),
            snr_db=10 * np.log10(np.maximum(power[order] / noise_ch[row[order]] - 1, 1e-12)),
            offset_hz=offset[order], kind=kind[order], truncated=truncated[order], slot=slot[order],
            timeslot=timeslot[order], slot_phase_s=phase, noise_dbfs=10 * np.log10(noise_ch))


@dataclass(frozen=True)
class UplinkActivity:
    """What the bursts of one capture say about the uplink channels in use.

    A *link* is one (channel, timeslot) pair: one handset in a call (or several in turn).

    Attributes
    ----------
    channel, timeslot : numpy.ndarray
        int64 of each link with normal bursts.
    bursts : numpy.ndarray
        Normal bursts of each link.
    duty : numpy.ndarray
        Bursts over the TDMA frames the capture holds (1 for a full-rate call; DTX lowers it).
    power_dbfs : numpy.ndarray
        Median burst power of each link, dB full scale.
    first_s, last_s : numpy.ndarray
        Start of its first and last burst, s.
    concurrent_max : int
        Most links with a burst in one TDMA frame.
    concurrent_mean : float
        Mean links per TDMA frame over the capture.
    access_bursts : int
        Access bursts (RACH: call and SMS set-ups, location updates).
    access_rate_hz : float
        Access bursts per second.
    capture_s : float
        Length of the capture, s.
    """

    channel: np.ndarray
    timeslot: np.ndarray
    bursts: np.ndarray
    duty: np.ndarray
    power_dbfs: np.ndarray
    first_s: np.ndarray
    last_s: np.ndarray
    concurrent_max: int
    concurrent_mean: float
    access_bursts: int
    access_rate_hz: float
    capture_s: float


def uplink_activity(bursts: UplinkBursts, capture_s: float) -> UplinkActivity:
    """Links, their duty cycle and power, concurrency and access rate of one capture.

    Raises
    ------
    DspError
        If ``capture_s`` is not positive.
    """
    if not capture_s > 0:
        raise DspError(f"capture_s must be positive, got {capture_s!r}")
    nb = bursts.kind == KIND_NORMAL
    ch, ts, slot = bursts.channel[nb], bursts.timeslot[nb], bursts.slot[nb]
    pw, t0 = bursts.power_dbfs[nb], bursts.start_s[nb]
    key = ch * 8 + ts
    links, inv = np.unique(key, return_inverse=True)
    count = np.bincount(inv, minlength=links.size)
    frames = max(1.0, capture_s / (8 * SLOT_S))
    med = np.array([np.median(pw[inv == i]) for i in range(links.size)])  # per link: a handful
    first = np.full(links.size, np.inf)
    last = np.full(links.size, -np.inf)
    np.minimum.at(first, inv, t0)
    np.maximum.at(last, inv, t0)
    frame = slot // 8
    if frame.size:
        per_frame = np.unique(np.stack((frame, key)), axis=1)[0]
        _, n_links = np.unique(per_frame, return_counts=True)
        conc_max, conc_mean = int(n_links.max()), float(n_links.sum() / frames)
    else:
        conc_max, conc_mean = 0, 0.0
    n_access = int(np.count_nonzero(bursts.kind == KIND_ACCESS))
    return UplinkActivity(channel=links // 8, timeslot=links % 8, bursts=count, duty=np.minimum(count / frames, 1.0),
                          power_dbfs=med, first_s=first, last_s=last, concurrent_max=conc_max,
                          concurrent_mean=conc_mean, access_bursts=n_access, access_rate_hz=n_access / capture_s,
                          capture_s=float(capture_s))
