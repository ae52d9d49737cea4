"""First DSP stage: wideband power spectrum -> per-channel power -> CFAR carrier detection.

One capture at one tuning goes in; per-channel powers, a robust noise floor and the
carriers that stand out come back. Everything is vectorized over STFT frames and channels.

Power is in dBFS: ``10*log10(mean(|x|**2))`` with ``|x| = 1`` the full scale of the ADC.
The sensor turns dBFS into dBm with its gain and calibration (``power_dbm = power_dbfs
- gain_db + calibration_db``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from rfhunt.errors import DspError


@dataclass(frozen=True)
class ChannelPowers:
    """Per-channel measurements of one capture.

    Attributes
    ----------
    freq_hz : ndarray, shape (n_channels,)
        Channel centre frequencies (only channels inside the usable span).
    power_dbfs : ndarray
        Mean power over the capture in the channel bandwidth, dBFS, noise included.
    burst_power_dbfs : ndarray
        Mean power over the STFT frames in which the channel was on (``-inf`` if never), dBFS.
    duty_cycle : ndarray
        Fraction of frames in which the channel stood ``on_threshold_db`` over its noise.
    noise_dbfs : ndarray
        Noise power in the channel bandwidth, dBFS.
    snr_db : ndarray
        Mean signal power (noise removed) over noise, dB; ``-inf`` where nothing is above noise.
    burst_snr_db : ndarray
        Same, over the frames in which the channel was on.
    n_bins : ndarray of int
        FFT bins each channel's power was summed over (DC-guard bins excluded).
    bandwidth_hz : float
        The bandwidth the channels were measured in.
    centroid_hz : ndarray
        Power-weighted mean frequency of the noise-free spectrum within 0.8 bandwidths of
        the channel centre, relative to it, Hz: near 0 for a carrier of its own (its
        frequency error otherwise), large for a neighbour's skirt.
    frame_s : float
        Duration of one STFT frame, s.
    n_frames : int
    """

    freq_hz: np.ndarray
    power_dbfs: np.ndarray
    burst_power_dbfs: np.ndarray
    duty_cycle: np.ndarray
    noise_dbfs: np.ndarray
    snr_db: np.ndarray
    burst_snr_db: np.ndarray
    n_bins: np.ndarray
    bandwidth_hz: float
    centroid_hz: np.ndarray
    frame_s: float
    n_frames: int


def power_spectrum(iq: np.ndarray, nfft: int) -> np.ndarray:
    """Hann-windowed STFT power per frame, fftshifted (DC in the middle).

    Parameters
    ----------
    iq : ndarray of complex
        Samples, full scale 1.
    nfft : int
        Frame and FFT length. Samples past the last whole frame are ignored.

    Returns
    -------
    ndarray, shape (n_frames, nfft), float64
        Power in each bin such that the sum over bins is the frame's mean power (dBFS scale,
        linear units).

    Raises
    ------
    DspError
        If ``iq`` is not 1-D complex or shorter than one frame, or ``nfft`` < 16.
    """
    iq = np.asarray(iq)
    if iq.ndim != 1 or not np.iscomplexobj(iq):
        raise DspError(f"iq must be a 1-D complex array, got shape {iq.shape} dtype {iq.dtype}")
    if nfft < 16:
        raise DspError(f"nfft must be at least 16, got {nfft}")
    n_frames = iq.size // nfft
    if n_frames < 1:
        raise DspError(f"capture of {iq.size} samples is shorter than one {nfft}-point frame")
    win = np.hanning(nfft + 1)[:-1].astype(np.float32)
    frames = iq[: n_frames * nfft].reshape(n_frames, nfft) * win
    spec = np.fft.fftshift(np.fft.fft(frames, axis=1), axes=1)
    pw = spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2
    pw /= nfft * float(np.sum(win.astype(np.float64) ** 2))
    return pw


def noise_floor_density(mean_psd: np.ndarray, n_frames: int, mask: np.ndarray | None = None,
                        percentile: float = 10.0) -> float:
    """Robust noise power per bin from a frame-averaged spectrum.

    The ``percentile`` of the bin powers is divided by the same percentile of the
    distribution noise-only bins follow (mean of ``n_frames`` exponentials, a Gamma law),
    so the estimate is unbiased on noise and stays right while up to about
    ``100 - percentile`` per cent of the bins hold carriers.

    Raises
    ------
    DspError
        If no bins are left after masking.
    """
    vals = mean_psd if mask is None else mean_psd[mask]
    if vals.size == 0:
        raise DspError("no spectrum bins left to estimate the noise floor from")
    q = np.percentile(vals, percentile)
    k = max(int(n_frames), 1)
    ref = stats.gamma.ppf(percentile / 100.0, a=k, scale=1.0 / k)
    return float(q / ref)


#: Equivalent noise bandwidth of the Hann window, bins: neighbouring bins of a Hann STFT are
#: correlated, so ``n`` summed bins carry about ``n / HANN_ENBW_BINS`` independent ones.
HANN_ENBW_BINS = 1.5


def cfar_threshold_db(n_bins_averaged: float, pfa: float) -> float:
    """Power-over-noise ratio (dB) that noise alone exceeds with probability ``pfa``.

    ``n_bins_averaged`` independent exponential bins are summed (a Gamma law).
    """
    if not 0.0 < pfa < 1.0:
        raise DspError(f"pfa must be in (0, 1), got {pfa}")
    a = max(float(n_bins_averaged), 1.0)
    return float(10.0 * np.log10(special.gammainccinv(a, pfa) / a))


def channel_powers(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                   channel_freqs_hz: np.ndarray, bandwidth_hz: float, *, nfft: int = 256,
                   usable_fraction: float = 0.8, dc_guard_hz: float = 10e3,
                   on_threshold_db: float = 6.0) -> ChannelPowers:
    """Measure every channel of a capture at once.

    Parameters
    ----------
    iq : ndarray of complex, shape (n,)
        One capture, full scale 1.
    sample_rate_hz, center_freq_hz : float
        The tuning.
    channel_freqs_hz : array_like
        Channel centres to consider; those not wholly inside the usable span
        (``usable_fraction * sample_rate_hz`` around the centre) are dropped.
    bandwidth_hz : float
        Bandwidth each channel's power is integrated over.
    nfft : int
        STFT length; sets the time resolution for bursts (``nfft / sample_rate_hz``).
    usable_fraction : float
        Part of the span the tuner's anti-alias filter leaves flat.
    dc_guard_hz : float
        Bins within this distance of the centre (the DC spike) are excluded; a channel
        overlapping them is measured on its remaining bins and scaled up.
    on_threshold_db : float
        A frame counts as "on" for a channel when its power exceeds the noise by this much.

    Returns
    -------
    ChannelPowers

    Raises
    ------
    DspError
        For a non-positive rate or bandwidth, a bandwidth below two bins, or bad ``iq``.
    """
    if sample_rate_hz <= 0 or bandwidth_hz <= 0:
        raise DspError(f"sample_rate_hz and bandwidth_hz must be positive, got {sample_rate_hz}, {bandwidth_hz}")
    if not 0.1 <= usable_fraction <= 1.0:
        raise DspError(f"usable_fraction must be in [0.1, 1], got {usable_fraction}")
    bin_hz = sample_rate_hz / nfft
    if bandwidth_hz < 2 * bin_hz:
        raise DspError(f"bandwidth {bandwidth_hz} Hz is under two {bin_hz:.0f} Hz bins: raise nfft")
    pw = power_spectrum(iq, nfft)
    n_frames = pw.shape[0]
    offs = (np.arange(nfft) - nfft // 2) * bin_hz
    keep = np.abs(offs) > dc_guard_hz
    half_usable = usable_fraction * sample_rate_hz / 2
    in_span = np.abs(offs) <= half_usable
    mean_psd = pw.mean(axis=0)
    density = noise_floor_density(mean_psd, n_frames, keep & in_span)

    ch = np.asarray(channel_freqs_hz, dtype=float) - center_freq_hz
    ch_ok = (np.abs(ch) + bandwidth_hz / 2) <= half_usable
    ch = ch[ch_ok]
    lo = np.searchsorted(offs, ch - bandwidth_hz / 2, side="left")
    hi = np.searchsorted(offs, ch + bandwidth_hz / 2, side="right")
    keep_cs = np.concatenate([[0], np.cumsum(keep)])
    n_kept = keep_cs[hi] - keep_cs[lo]
    n_bins = (hi - lo).astype(float)
    scale = np.where(n_kept > 0, n_bins / np.maximum(n_kept, 1), 0.0)
    masked = pw * keep
    cs = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(masked, axis=1)], axis=1)
    frame_ch = (cs[:, hi] - cs[:, lo]) * scale  # (frames, channels)
    noise = density * n_bins
    excess = np.maximum(mean_psd - density, 0.0) * keep
    cs_p = np.concatenate([[0.0], np.cumsum(excess)])
    cs_fp = np.concatenate([[0.0], np.cumsum(excess * offs)])
    # the centroid looks a little wider than the channel so that a carrier off its nominal
    # frequency (an LO error) is still seen whole
    clo = np.searchsorted(offs, ch - 0.8 * bandwidth_hz, side="left")
    chi = np.searchsorted(offs, ch + 0.8 * bandwidth_hz, side="right")
    p_ex = cs_p[chi] - cs_p[clo]
    centroid = np.where(p_ex > 0, (cs_fp[chi] - cs_fp[clo]) / np.maximum(p_ex, 1e-300) - ch, 0.0)
    mean_ch = frame_ch.mean(axis=0)
    on = frame_ch > noise * 10 ** (on_threshold_db / 10)
    n_on = on.sum(axis=0)
    burst = np.where(n_on > 0, (frame_ch * on).sum(axis=0) / np.maximum(n_on, 1), 0.0)
    with np.errstate(divide="ignore"):
        snr = 10 * np.log10(np.maximum(mean_ch - noise, 0.0) / noise)
        bsnr = 10 * np.log10(np.maximum(burst - noise, 0.0) / noise)
        return ChannelPowers(
            freq_hz=ch + center_freq_hz,
            power_dbfs=10 * np.log10(mean_ch),
            burst_power_dbfs=np.where(n_on > 0, 10 * np.log10(np.maximum(burst, 1e-300)), -np.inf),
            duty_cycle=n_on / n_frames,
            noise_dbfs=10 * np.log10(noise),
            snr_db=snr,
            burst_snr_db=np.where(n_on > 0, bsnr, -np.inf),
            n_bins=n_kept,
            bandwidth_hz=float(bandwidth_hz),
            centroid_hz=centroid,
            frame_s=nfft / sample_rate_hz,
            n_frames=n_frames,
        )


@dataclass(frozen=True)
class Carriers:
    """Channels that hold a carrier, picked out of :class:`ChannelPowers`.

    ``index`` points into the ChannelPowers arrays; ``signal_dbfs`` is the carrier's power
    with the noise removed (mean over the capture, or over its bursts when ``bursty``).
    """

    index: np.ndarray
    freq_hz: np.ndarray
    signal_dbfs: np.ndarray
    snr_db: np.ndarray
    duty_cycle: np.ndarray


def detect_carriers(cp: ChannelPowers, *, pfa: float = 1e-6, min_snr_db: float = 6.0, bursty: bool = False,
                    min_separation_hz: float = 0.0, adjacent_rejection_db: float = 15.0,
                    min_on_frames: int = 3, own_channel_only: bool = True) -> Carriers:
    """CFAR detection of carriers among measured channels.

    A channel is a carrier when its SNR beats both the CFAR threshold for ``pfa`` (the
    number of independent bins averaged sets it) and ``min_snr_db``; when it is the
    strongest channel within ``min_separation_hz`` (FM stations spread over several raster
    points); and when it is not a neighbour's skirt. With ``own_channel_only`` (channels
    as wide as their raster, as GSM's) a channel whose spectral centroid lies outside its
    own bandwidth is never a carrier; FM, whose 200 kHz stations straddle several 100 kHz
    raster points, turns it off and names a station by its centroid instead. A skirt leans
    towards its source:
    a channel whose spectral centroid lies more than ``bandwidth / 5`` towards a stronger
    neighbour one raster step away is rejected, and so is one more than
    ``adjacent_rejection_db`` below such a neighbour unless it is centred on its own channel.

    For ``bursty`` channels (TDMA uplink) the SNR and power are taken over the frames in
    which the channel was on, and at least ``min_on_frames`` frames must be on (a GSM burst
    of 577 us spans five 107 us frames at 2.4 MS/s; single noise peaks do not).
    """
    n = cp.freq_hz.size
    if n == 0:
        empty = np.zeros(0)
        return Carriers(np.zeros(0, dtype=np.int64), empty, empty, empty, empty)
    independent = np.maximum(cp.n_bins / HANN_ENBW_BINS, 1.0)
    if bursty:
        snr = cp.burst_snr_db
        frames, pfa_frame = 1, pfa / max(cp.n_frames, 1)  # the best frame of n_frames
        power = cp.burst_power_dbfs
    else:
        snr = cp.snr_db
        frames, pfa_frame = cp.n_frames, pfa
        power = cp.power_dbfs
    thr = np.array([cfar_threshold_db(k * frames, pfa_frame) for k in np.unique(independent)])
    thr = np.maximum(thr[np.searchsorted(np.unique(independent), independent)], min_snr_db)
    # a carrier of this channel has its spectrum centred within the channel; power whose
    # centroid lies outside is a neighbour's skirt (also at the span's edge, where the
    # neighbour itself is not measured)
    ok = snr >= thr
    if own_channel_only:
        ok &= np.abs(cp.centroid_hz) <= cp.bandwidth_hz / 2
    if bursty:
        ok &= np.rint(cp.duty_cycle * cp.n_frames) >= min_on_frames
    order = np.argsort(cp.freq_hz)
    f = cp.freq_hz[order]
    p = power[order]
    ok = ok[order]
    if n > 1:
        step = np.min(np.diff(f))
        # adjacent-channel skirt rejection (neighbours one raster step away)
        left = np.concatenate([[-np.inf], p[:-1]])
        right = np.concatenate([p[1:], [-np.inf]])
        left_adj = np.concatenate([[False], np.isclose(np.diff(f), step)])
        right_adj = np.concatenate([np.isclose(np.diff(f), step), [False]])
        left_p = np.where(left_adj, left, -np.inf)
        right_p = np.where(right_adj, right, -np.inf)
        strongest_nb = np.maximum(left_p, right_p)
        c = cp.centroid_hz[order]
        lean = cp.bandwidth_hz / 5
        centred = np.abs(c) < lean
        # a skirt leans towards the stronger neighbour it comes from
        skirt = ((c > lean) & (right_p > p)) | ((c < -lean) & (left_p > p))
        ok &= ~skirt & ((p >= strongest_nb - adjacent_rejection_db) | centred)
        if min_separation_hz > 0:
            near = np.abs(f[:, None] - f[None, :]) < min_separation_hz
            local_max = np.all(~near | (p[:, None] >= p[None, :]), axis=1)
            ok &= local_max
    idx = order[ok]
    noise_lin = 10 ** (cp.noise_dbfs[idx] / 10)
    sig = 10 * np.log10(np.maximum(10 ** (power[idx] / 10) - noise_lin, 1e-300))
    return Carriers(idx, cp.freq_hz[idx], sig, snr[idx], cp.duty_cycle[idx])
