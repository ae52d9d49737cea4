"""Every FM broadcast station of one capture: found, demodulated and measured at once.

:func:`detect_stations` finds carriers on the 100 kHz raster (the first DSP stage's
channel powers and CFAR over the start of the capture: an FM carrier's power is constant;
:func:`pick_stations` tells a station's own raster point from its skirts).
:func:`analyze_stations` channelizes and discriminates all of them in one pass
(:mod:`dsp.fm.demod`), measures each multiplex (:mod:`dsp.fm.mpx`) and decodes RDS
(:mod:`dsp.fm.rds_demod`, :mod:`dsp.fm.rds_decode`). A station's level is its channel's
power over the whole capture less the noise the channel filter passes (the noise density
from the wideband spectrum of the first 50 ms, which also gives the occupied bandwidth).

Powers are dBFS (the sensor turns them into dBm with its gain and calibration). Occupied
bandwidth is the ITU one: the band holding 99 % of the station's power (0.5 % below, 0.5 %
above), noise removed, within +-150 kHz of the carrier (or half-way to a neighbour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from dsp.bands import BANDS
from dsp.fm.demod import Channels, channel_plan, demodulate
from dsp.fm.mpx import MPX_SEGMENT, MpxAnalysis, analyze_mpx
from dsp.fm.rds_decode import RdsResult, decode_rds
from dsp.fm.rds_demod import demodulate_bits
from dsp.spectrum import Carriers, ChannelPowers, channel_powers, detect_carriers, noise_floor_density
from rfhunt.errors import DspError

FM = BANDS["fm"]
#: A raster point whose spectral centroid lies further than this from it is a skirt, Hz.
CENTRED_HZ = 60e3
#: A neighbouring skirt of another station hides a raster point more than this much weaker, dB.
AWAY_MARGIN_DB = 6.0
#: Seconds of the capture the detection and the spectrum are computed on.
DETECT_S = 0.05
OBW_FRACTION = 0.99
OBW_HALF_SPAN_HZ = 150e3


@dataclass(frozen=True)
class StationCandidates:
    """Carriers found on the FM raster of one capture (arrays of shape (n,)).

    ``freq_hz`` is the raster point a station is named by, ``offset_hz`` the spectral
    centroid's distance from it; ``signal_dbfs`` is the power with the noise removed.
    """

    freq_hz: np.ndarray
    offset_hz: np.ndarray
    signal_dbfs: np.ndarray
    snr_db: np.ndarray
    noise_dbfs: np.ndarray


@dataclass(frozen=True)
class FmStationFeatures:
    """Everything measured about one station in one capture.

    Attributes
    ----------
    freq_hz : float
        Raster frequency, Hz.
    carrier_hz : float
        Measured carrier frequency (mean instantaneous frequency), Hz, as the capture's
        tuning sees it (its LO error included).
    freq_error_hz : float
        ``carrier_hz - freq_hz``.
    signal_dbfs, snr_db, noise_dbfs : float
        The station's power without noise (dBFS: the channel's mean power over the whole
        capture less the noise its filter passes), its SNR against the noise in 200 kHz,
        and that noise (dBFS).
    occupied_bw_hz : float
        99 % power bandwidth, Hz (NaN when the station is too weak to tell).
    peak_deviation_hz, rms_deviation_hz : float
        See :mod:`dsp.fm.mpx`.
    pilot : bool
    pilot_deviation_hz, pilot_snr_db : float
    rds_snr_db : float
        RDS power over the noise in its band, dB (-inf when none stands out).
    rds : RdsResult
    """

    freq_hz: float
    carrier_hz: float
    freq_error_hz: float
    signal_dbfs: float
    snr_db: float
    noise_dbfs: float
    occupied_bw_hz: float
    peak_deviation_hz: float
    rms_deviation_hz: float
    pilot: bool
    pilot_deviation_hz: float
    pilot_snr_db: float
    rds_snr_db: float
    rds: RdsResult

    @property
    def rds_present(self) -> bool:
        """RDS is on air (see :attr:`RdsResult.present`)."""
        return self.rds.present


@dataclass(frozen=True)
class CaptureAnalysis:
    """:func:`analyze_stations`' result: the features, and the signals for evidence.

    ``mpx_hz[i]`` and ``channels.baseband[i]`` (empty unless kept) belong to ``stations[i]``.
    """

    stations: list[FmStationFeatures]
    channels: Channels
    mpx_hz: np.ndarray
    mpx: MpxAnalysis | None


def _check_capture(iq: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    iq = np.asarray(iq)
    if iq.ndim != 1 or not (np.iscomplexobj(iq) or (iq.dtype == np.uint8 and iq.size % 2 == 0)):
        raise DspError(f"iq must be 1-D complex or interleaved cu8 (uint8, even length), got shape {iq.shape} "
                       f"dtype {iq.dtype}")
    channel_plan(sample_rate_hz)
    return iq


def _head(iq: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples as complex64 (cu8 converted as ``(u - 127.5) / 127.5``)."""
    if iq.dtype == np.uint8:
        f = iq[:2 * n].astype(np.float32)
        f -= np.float32(127.5)
        f *= np.float32(1 / 127.5)
        return f.view(np.complex64)
    return np.asarray(iq[:n], dtype=np.complex64)


def _n_samples(iq: np.ndarray) -> int:
    return iq.size // 2 if iq.dtype == np.uint8 else iq.size


def min_capture_samples(sample_rate_hz: float) -> int:
    """Fewest capture samples :func:`analyze_stations` works on (one segment of the multiplex
    transform at the channel rate: about 15 ms)."""
    dec = channel_plan(sample_rate_hz)[0]
    return (MPX_SEGMENT + 1) * dec


def analyzable_half_span_hz(sample_rate_hz: float) -> float:
    """Largest carrier offset from a capture's centre a station can be analysed at, Hz."""
    _, _, _, stop = channel_plan(sample_rate_hz)
    return sample_rate_hz / 2 - stop


def pick_stations(cp: ChannelPowers, *, pfa: float = 1e-6) -> Carriers:
    """FM stations among the measured raster points of one capture.

    A station spreads over its neighbouring raster points; they are its skirts. A raster
    point is a station when it passes the CFAR and skirt tests of
    :func:`dsp.spectrum.detect_carriers`, its spectral centroid lies within
    :data:`CENTRED_HZ` of it (a skirt's leans about 100 kHz towards its station; a station
    half-way between two raster points leans 50 kHz and is named by its centroid), and it is
    at least as strong as the raster points next to it, leaving out a neighbour that leans
    away from it (the skirt of another station beyond) and is less than
    :data:`AWAY_MARGIN_DB` stronger: a point half-way between two stations is balanced but
    some 20 dB under their skirts. Unlike keeping only the strongest point within 250 kHz,
    this keeps a weak station 200-300 kHz from a strong one. At either end of the measured
    points, a skirt leaning outwards (stronger than its inner neighbour) is kept for the
    station beyond it.
    """
    found = detect_carriers(cp, min_separation_hz=0.0, own_channel_only=False, pfa=pfa)
    if found.index.size == 0:
        return found
    order = np.argsort(cp.freq_hz)
    f, p = cp.freq_hz[order], cp.power_dbfs[order]
    c = cp.centroid_hz[order]
    step = FM.channel_hz
    adjacent = np.isclose(np.diff(f), step)
    left = np.concatenate([[-np.inf], np.where(adjacent, p[:-1], -np.inf)])
    right = np.concatenate([np.where(adjacent, p[1:], -np.inf), [-np.inf]])
    # a neighbour that leans away (the skirt of another station beyond it) does not count,
    # unless it is much the stronger: between two stations the point is far below their skirts
    left_away = np.concatenate([[False], c[:-1] < -CENTRED_HZ]) & (left < p + AWAY_MARGIN_DB)
    right_away = np.concatenate([c[1:] > CENTRED_HZ, [False]]) & (right < p + AWAY_MARGIN_DB)
    left_cmp = np.where(left_away, -np.inf, left)
    right_cmp = np.where(right_away, -np.inf, right)
    own = (np.abs(c) <= CENTRED_HZ) & (p >= left_cmp) & (p >= right_cmp)
    # at the edge of what was measured, a skirt leaning outwards stands for its station
    # beyond (and is named by its centroid)
    edge = ((c < -CENTRED_HZ) & np.isneginf(left) & (p >= right)) | ((c > CENTRED_HZ) & np.isneginf(right)
                                                                      & (p >= left))
    ok = np.empty(f.size, dtype=bool)
    ok[order] = own | edge
    keep = ok[found.index]
    return Carriers(found.index[keep], found.freq_hz[keep], found.signal_dbfs[keep], found.snr_db[keep],
                    found.duty_cycle[keep])


def detect_stations(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float, *,
                    detect_s: float = DETECT_S, nfft: int = 256, pfa: float = 1e-6) -> StationCandidates:
    """FM stations of a capture: CFAR on the 100 kHz raster, one per station.

    Channels whose station could not be analysed (too close to the capture's edge, see
    :func:`analyzable_half_span_hz`) are left out. Only the first ``detect_s`` seconds are
    used.

    Raises
    ------
    DspError
        For bad ``iq`` or a rate under 250 kHz.
    """
    iq = _check_capture(iq, sample_rate_hz)
    n = min(_n_samples(iq), max(int(detect_s * sample_rate_hz), nfft))
    n -= n % nfft
    half = analyzable_half_span_hz(sample_rate_hz)
    chans = FM.channel_freqs_hz()
    chans = chans[np.abs(chans - center_freq_hz) <= sample_rate_hz / 2]
    empty = np.zeros(0)
    if chans.size == 0 or n < nfft:
        return StationCandidates(empty, empty, empty, empty, empty)
    cp = channel_powers(_head(iq, n), sample_rate_hz, center_freq_hz, chans, FM.bandwidth_hz, nfft=nfft,
                        usable_fraction=1.0)
    found = pick_stations(cp, pfa=pfa)
    cent = cp.centroid_hz[found.index]
    # a station's spectrum is symmetric about its carrier: the centroid names its raster point
    named = np.rint((found.freq_hz + cent) / FM.channel_hz) * FM.channel_hz
    offset = found.freq_hz + cent - named
    keep = np.abs(named - center_freq_hz) <= half
    named, offset = named[keep], offset[keep]
    sig, snr, noise = found.signal_dbfs[keep], found.snr_db[keep], cp.noise_dbfs[found.index][keep]
    # two raster points may name one station: keep the stronger
    order = np.argsort(-sig)
    _, first = np.unique(named[order], return_index=True)
    pick = np.sort(order[first])
    return StationCandidates(named[pick], offset[pick], sig[pick], snr[pick], noise[pick])


def _power_spectrum(iq: np.ndarray, sample_rate_hz: float, n_max: int) -> tuple[np.ndarray, float]:
    """Hann-windowed mean power per bin (fftshifted) over the first ``n_max`` samples, and
    the bin width; bins about 1.2 kHz wide or narrower."""
    nfft = int(2 ** np.ceil(np.log2(sample_rate_hz / 1500.0)))
    frames = max(1, min(iq.size, n_max) // nfft)
    x = iq[:frames * nfft].reshape(frames, nfft)
    win = np.hanning(nfft + 1)[:-1].astype(np.float32)
    spec = sfft.fft(x * win, axis=1, workers=1)
    pw = (spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2).mean(axis=0)
    pw /= nfft * float(np.sum(win.astype(np.float64) ** 2))
    return np.fft.fftshift(pw), sample_rate_hz / nfft


def occupied_bandwidth(psd: np.ndarray, bin_hz: float, offsets_hz: np.ndarray, noise_per_bin: float,
                       half_span_hz: np.ndarray) -> np.ndarray:
    """99 % power bandwidth (Hz) of each station in an fftshifted power spectrum.

    Parameters
    ----------
    psd : ndarray, shape (nfft,)
        Mean power per bin, DC in the middle.
    bin_hz : float
    offsets_hz : ndarray
        Carrier offsets from the centre, Hz.
    noise_per_bin : float
        Noise power per bin (removed before integrating).
    half_span_hz : ndarray
        Half-width of the window each station is integrated over, Hz.

    Returns
    -------
    ndarray
        Hz; NaN where the window holds no power above the noise.
    """
    nfft = psd.size
    f = (np.arange(nfft) - nfft // 2) * bin_hz
    excess = np.maximum(psd - noise_per_bin, 0.0)
    out = np.full(len(offsets_hz), np.nan)
    for i, (off, half) in enumerate(zip(offsets_hz, half_span_hz)):
        sel = np.abs(f - off) <= half
        p = excess[sel]
        total = p.sum()
        if total <= 0 or p.size < 3:
            continue
        c = np.cumsum(p) / total
        lo_frac, hi_frac = (1 - OBW_FRACTION) / 2, 1 - (1 - OBW_FRACTION) / 2
        fs = f[sel]
        lo = np.interp(lo_frac, c, fs)
        hi = np.interp(hi_frac, c, fs)
        out[i] = hi - lo + bin_hz
    return out


def analyze_stations(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                     stations: StationCandidates, *, decode: bool = True, keep_baseband: bool = False
                     ) -> CaptureAnalysis:
    """Demodulate and measure every station of a capture at once.

    Parameters
    ----------
    iq : ndarray, shape (n,) complex or (2 n,) uint8
        The capture, full scale 1, or its interleaved cu8 bytes (see
        :func:`dsp.fm.demod.channelize`); at least 4096 channel samples (about 16 ms).
    sample_rate_hz, center_freq_hz : float
        Its tuning.
    stations : StationCandidates
        From :func:`detect_stations` (or built by hand: the raster points to analyse).
    decode : bool
        Decode RDS (the multiplex is measured either way).
    keep_baseband : bool
        Keep every station's channel IQ in the result (for evidence; 8 bytes a sample).

    Returns
    -------
    CaptureAnalysis

    Raises
    ------
    DspError
        For bad ``iq``, a capture too short, or a station too close to the edge.
    """
    iq = _check_capture(iq, sample_rate_hz)
    need = min_capture_samples(sample_rate_hz)
    if _n_samples(iq) < need:
        raise DspError(f"a capture of {_n_samples(iq)} samples is too short for FM analysis: it needs at least "
                       f"{need} ({need / sample_rate_hz * 1e3:.0f} ms)")
    offs = np.asarray(stations.freq_hz, dtype=float) - center_freq_hz
    dm = demodulate(iq, sample_rate_hz, offs, keep_baseband=keep_baseband)
    ch, mpx = dm.channels, dm.mpx_hz
    if offs.size == 0:
        return CaptureAnalysis([], ch, mpx, None)
    an = analyze_mpx(mpx, ch.sample_rate_hz)
    ft = an.features
    head = _head(iq, int(DETECT_S * sample_rate_hz))
    psd, bin_hz = _power_spectrum(head, sample_rate_hz, head.size)
    frames = max(1, head.size // psd.size)
    noise_bin = noise_floor_density(psd, frames)
    carrier_off = ch.center_offset_hz + ft.carrier_offset_hz
    # level: the channel's mean power less the noise the channel filter lets through
    n0 = noise_bin / bin_hz
    signal = np.maximum(dm.mean_power - n0 * ch.noise_bandwidth_hz, 1e-30)
    noise_200k = n0 * FM.bandwidth_hz
    gaps = np.abs(carrier_off[:, None] - carrier_off[None, :]) + np.where(np.eye(offs.size, dtype=bool), np.inf, 0)
    half = np.clip(gaps.min(axis=1) / 2, 50e3, OBW_HALF_SPAN_HZ)
    obw = occupied_bandwidth(psd, bin_hz, carrier_off, noise_bin, half)
    out = []
    for i in range(offs.size):
        rds = RdsResult()
        if decode:
            bits = demodulate_bits(an.rds_baseband[i], an.rds_rate_hz)
            if bits is not None:
                rds = decode_rds(bits.data, bits.soft)
        carrier = center_freq_hz + float(carrier_off[i])
        out.append(FmStationFeatures(
            freq_hz=float(stations.freq_hz[i]), carrier_hz=carrier, freq_error_hz=carrier - float(stations.freq_hz[i]),
            signal_dbfs=float(10 * np.log10(signal[i])), snr_db=float(10 * np.log10(signal[i] / noise_200k)),
            noise_dbfs=float(10 * np.log10(noise_200k)), occupied_bw_hz=float(obw[i]),
            peak_deviation_hz=float(ft.peak_deviation_hz[i]), rms_deviation_hz=float(ft.rms_deviation_hz[i]),
            pilot=bool(ft.pilot[i]), pilot_deviation_hz=float(ft.pilot_deviation_hz[i]),
            pilot_snr_db=float(ft.pilot_snr_db[i]), rds_snr_db=float(ft.rds_snr_db[i]), rds=rds))
    return CaptureAnalysis(out, ch, mpx, an)


def scan_capture(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float, *, decode: bool = True,
                 keep_baseband: bool = False) -> CaptureAnalysis:
    """Find and analyse every FM station of one capture (:func:`detect_stations`, then
    :func:`analyze_stations`)."""
    found = detect_stations(iq, sample_rate_hz, center_freq_hz)
    return analyze_stations(iq, sample_rate_hz, center_freq_hz, found, decode=decode, keep_baseband=keep_baseband)
