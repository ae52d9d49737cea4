"""What the multiplex of each station says: carrier offset, deviation, pilot, RDS level, and
the RDS baseband for :mod:`dsp.fm.rds_demod`.

The discriminator output of every station (rows of one array) goes once through an
overlap-save transform of 4096-sample segments (:func:`analyze_mpx`). Each segment's
spectrum gives, at once:

* the multiplex low-passed to 60 kHz at half the rate (inverse transform of the low bins);
* the RDS band: the bins within about +-4.2 kHz of 57 kHz, weighted by the RDS matched
  filter (:func:`dsp.fm.rds_demod.matched_filter`) and transformed back: complex baseband
  at 1/32 of the multiplex rate (about 7 samples per bit), the subcarrier at 0 Hz;
* a Hann-windowed power spectrum (the window applied as its 3-tap kernel on the bins),
  averaged over the segments, around the pilot and the RDS subcarrier.

Definitions (all per station):

* **carrier offset**: the mean instantaneous frequency (the programme has no DC), Hz,
  weighted by a Hann window so that the partial periods of low programme frequencies in a
  short capture leak little into it (still, trust it to about 100 Hz only from captures
  of a second or more);
* **peak deviation**: the 99.99th percentile of ``|f_inst - mean|`` after the 60 kHz low-pass
  (the multiplex band, so noise above it does not count), i.e. the deviation exceeded
  0.01 % of the time (isolated clicks and noise peaks are ignored, as by a quasi-peak
  meter), less three standard deviations of the noise in that band (estimated from the
  noise fit below) so that a weak station's noise does not pass for over-modulation. A
  licensed 75 kHz station reads 55–75 kHz, a clipped pirate about its clip level;
* **RMS deviation**: the standard deviation of the same low-passed signal with the noise's
  share removed, Hz;
* **pilot**: the power within +-2 bins (the Hann main lobe) of the strongest bin within
  +-20 Hz of 19 kHz, less the noise there; its deviation ``sqrt(2 P)`` in Hz, and its SNR
  against the noise in a 1 kHz band around 19 kHz. Present when it stands 10 dB over the
  noise of the bins summed and reaches 1.5 kHz of deviation (a real pilot is 6.75–7.5 kHz);
* **RDS level**: the power in 57 +- 2.4 kHz less the noise there, and its SNR against that
  noise. The discriminator's noise density grows as ``f**2``: it is fitted on 60–66 kHz
  (clear of the L-R band, which ends at 53 kHz) and extrapolated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy import stats

from dsp.fm.rds_demod import RDS_CARRIER_HZ, matched_filter
from rfhunt.errors import DspError

PILOT_HZ = 19000.0
#: Half-width of the RDS band, Hz.
RDS_HALF_BAND_HZ = 2400.0
MPX_BAND_HZ = 60e3
PEAK_PERCENTILE = 99.99
#: Standard deviations of the noise taken off the peak percentile.
PEAK_NOISE_SIGMAS = 3.0
PILOT_SEARCH_HZ = 20.0
PILOT_MIN_DEVIATION_HZ = 1500.0
PILOT_MIN_EXCESS_DB = 10.0
_PILOT_NOISE_HZ = ((16500.0, 18500.0), (19500.0, 21500.0))
_RDS_NOISE_HZ = (60000.0, 66000.0)
#: Bands of the power spectrum that are computed (the pilot's and RDS's with their noise).
_PSD_BANDS_HZ = ((15000.0, 23000.0), (53000.0, 67000.0))

#: Segment length of the transform: the shortest multiplex that can be analysed.
MPX_SEGMENT = 4096
#: Segment length, guard (discarded at each end) and RDS decimation of the transform.
_SEG = MPX_SEGMENT
_GUARD = 256
_RDS_DECIM = 32
_BATCH = 32
#: Mean square of the periodic Hann window (the power spectrum's normalisation).
_HANN_POWER = 3.0 / 8.0


@dataclass(frozen=True)
class MpxFeatures:
    """Per-station multiplex measurements (arrays of shape (n_stations,)); see module notes."""

    carrier_offset_hz: np.ndarray
    peak_deviation_hz: np.ndarray
    rms_deviation_hz: np.ndarray
    pilot: np.ndarray
    pilot_deviation_hz: np.ndarray
    pilot_snr_db: np.ndarray
    rds_deviation_hz: np.ndarray
    rds_snr_db: np.ndarray


@dataclass(frozen=True)
class MpxAnalysis:
    """Everything :func:`analyze_mpx` found.

    Attributes
    ----------
    features : MpxFeatures
    psd : ndarray, shape (n_stations, n_bins)
        Mean power per bin, Hz^2 of deviation, from 0 Hz in steps of ``bin_hz``; computed
        over 15-23 kHz and 53-67 kHz only (the pilot, RDS and their noise), zero elsewhere.
    bin_hz : float
    rds_baseband : ndarray, shape (n_stations, n), complex64
        Matched-filtered RDS baseband, sample ``n`` at ``n / rds_rate_hz`` s after the
        multiplex's first sample.
    rds_rate_hz : float
    """

    features: MpxFeatures
    psd: np.ndarray
    bin_hz: float
    rds_baseband: np.ndarray
    rds_rate_hz: float


def _fill_segments(x: np.ndarray, mean: np.ndarray, s0: int, s1: int, buf: np.ndarray) -> np.ndarray:
    """Segments ``s0 .. s1 - 1`` of every row less its mean, zero outside the row (segment
    ``i`` starts at sample ``i * step - _GUARD``), built in ``buf``: view (rows, s1 - s0, _SEG)."""
    step = _SEG - 2 * _GUARD
    n = x.shape[1]
    a = s0 * step - _GUARD
    b = a + (s1 - s0 - 1) * step + _SEG
    lo, hi = max(a, 0), min(b, n)
    chunk = buf[:, :b - a]
    chunk[:, :lo - a] = 0
    chunk[:, hi - a:] = 0
    np.subtract(x[:, lo:hi], mean[:, None], out=chunk[:, lo - a:hi - a], casting="same_kind")
    return np.lib.stride_tricks.sliding_window_view(chunk, _SEG, axis=1)[:, ::step]


def analyze_mpx(mpx_hz: np.ndarray, sample_rate_hz: float) -> MpxAnalysis:
    """Measure every station's multiplex and extract its RDS baseband.

    Parameters
    ----------
    mpx_hz : ndarray, shape (n_stations, n)
        Discriminator output, Hz.
    sample_rate_hz : float
        Its rate, Hz (at least 150 kHz: RDS reaches 59.4 kHz, the noise fit 66 kHz).

    Returns
    -------
    MpxAnalysis

    Raises
    ------
    DspError
        For input that is not 2-D float, shorter than one segment (4096 samples), or a rate
        too low.
    """
    x = np.asarray(mpx_hz)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise DspError(f"mpx_hz must be a 2-D float array (stations, samples), got {x.shape} {x.dtype}")
    if x.shape[1] < _SEG:
        raise DspError(f"need at least {_SEG} multiplex samples, got {x.shape[1]}")
    if not sample_rate_hz >= 150e3:
        raise DspError(f"multiplex rate must be at least 150 kHz, got {sample_rate_hz!r}")
    n_st, n = x.shape
    # a first mean (pairwise sums in the input's precision); the Hann-weighted one below refines it
    mean = x.mean(axis=1).astype(np.float64)
    step = _SEG - 2 * _GUARD
    n_seg = -(-n // step)
    mean32 = mean.astype(np.float32)
    seg_buf = np.empty((n_st, (min(_BATCH, n_seg) - 1) * step + _SEG), dtype=np.float32)
    bin_hz = sample_rate_hz / _SEG
    # bins kept: the power spectrum to 70 kHz, the low-pass band, the RDS band
    k_psd = min(int(70e3 / bin_hz) + 2, _SEG // 2)
    k_lp = int(MPX_BAND_HZ / bin_hz)
    n_rds = _SEG // _RDS_DECIM
    k57 = int(round(RDS_CARRIER_HZ / bin_hz))
    r0 = k57 - n_rds // 2
    f_rds = np.arange(r0, r0 + n_rds) * bin_hz - RDS_CARRIER_HZ
    mf = matched_filter(f_rds).astype(np.float32)
    # a segment's bins r0... are mixed relative to its own start, input sample i*step - guard
    residual_hz = k57 * bin_hz - RDS_CARRIER_HZ
    alt = np.where(np.arange(n_rds) % 2, -1.0, 1.0).astype(np.float32)  # bins from k57 - n_rds/2
    g_lp, g_rds = _GUARD // 2, _GUARD // _RDS_DECIM
    keep_lp, keep_rds = step // 2, step // _RDS_DECIM
    lp = np.empty((n_st, n_seg * keep_lp), dtype=np.float32)
    rds = np.empty((n_st, n_seg * keep_rds), dtype=np.complex64)
    psd = np.zeros((n_st, k_psd), dtype=np.float64)
    psd_bands = [_bins(bin_hz, lo, hi, k_psd) for lo, hi in _PSD_BANDS_HZ]
    psd_bands = [(b.start, b.stop) for b in psd_bands]
    n_half = _SEG // 4 + 1  # bins of a half-length real inverse transform
    for s0 in range(0, n_seg, _BATCH):
        s1 = min(n_seg, s0 + _BATCH)
        spec = sfft.rfft(_fill_segments(x, mean32, s0, s1, seg_buf), axis=2, workers=1)
        # Hann-windowed power spectrum from the rectangular one, X_h[k] = X[k]/2 - (X[k-1] +
        # X[k+1])/4, in the bands the measurements use (psd index j is bin j + 1)
        for a, b in psd_bands:
            xh = spec[:, :, a:b] + spec[:, :, a + 2:b + 2]
            xh *= np.float32(-0.25)
            xh += np.float32(0.5) * spec[:, :, a + 1:b + 1]
            pw = xh.real * xh.real
            pw += xh.imag * xh.imag
            psd[:, a:b] += pw.sum(axis=1)
        nb = s1 - s0
        band = spec[:, :, r0:r0 + n_rds] * mf
        z = sfft.ifft(band, axis=2, workers=1, overwrite_x=True)
        start = np.arange(s0, s1, dtype=np.float64) * step - _GUARD
        turn = np.exp(-2j * np.pi * np.mod(start * (k57 / _SEG), 1.0)).astype(np.complex64)
        z *= turn[None, :, None] * alt
        rds[:, s0 * keep_rds:s1 * keep_rds].reshape(n_st, nb, keep_rds)[...] = z[:, :, g_rds:g_rds + keep_rds]
        # the bins up to 60 kHz transformed back at half the rate (the rest zeroed)
        spec[:, :, k_lp + 1:n_half] = 0
        y = sfft.irfft(spec[:, :, :n_half], n=_SEG // 2, axis=2, workers=1)[:, :, g_lp:g_lp + keep_lp]
        lp[:, s0 * keep_lp:s1 * keep_lp].reshape(n_st, nb, keep_lp)[...] = y
    lp = lp[:, :n // 2]
    lp *= np.float32(0.5)  # a half-length inverse transform of full-length bins
    rds_rate = sample_rate_hz / _RDS_DECIM
    rds = rds[:, :n // _RDS_DECIM]
    # the subcarrier was mixed down by k57 bins, residual_hz off 57 kHz: take that out too
    t = np.arange(rds.shape[1]) / rds_rate
    rds *= np.exp(2j * np.pi * residual_hz * t).astype(np.complex64)
    # the power spectrum's bins 1..k_psd, per bin, Hz^2 of deviation (one-sided)
    psd *= 2.0 / (n_seg * _SEG * _SEG * _HANN_POWER)
    psd = np.concatenate([np.zeros((n_st, 1)), psd[:, :-1]], axis=1)
    # the carrier: a Hann-weighted mean, so that a short capture's partial periods of
    # low-frequency programme leak little into it; taken on the low-passed multiplex at a
    # quarter of the rate (content under 60 kHz, nothing aliases onto 0 Hz at 66.7 kHz)
    sub = lp[:, ::2]
    w = (0.5 - 0.5 * np.cos(np.linspace(0, 2 * np.pi, sub.shape[1] + 2, dtype=np.float32)[1:-1]))
    mean = mean + (sub @ w).astype(np.float64) / float(w.sum(dtype=np.float64))
    feats = _features(psd, bin_hz, lp, mean, n_seg)
    return MpxAnalysis(feats, psd, bin_hz, rds, rds_rate)


def _bins(bin_hz: float, lo_hz: float, hi_hz: float, n_bins: int) -> slice:
    return slice(max(int(np.ceil(lo_hz / bin_hz)), 0), min(int(np.ceil(hi_hz / bin_hz)), n_bins))


#: Samples per block of :func:`_order_statistic_abs`' pre-selection.
_SELECT_BLOCK = 64


def _order_statistic_abs(x: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``x`` (2-D float), the ``k``-th smallest ``|x|`` (0-based), float64: what
    ``np.partition(abs(x), k)[:, k]`` gives, without partitioning whole rows when ``k`` is
    near the top.

    The ``m = n - k`` largest values are sought. Of the maxima of blocks of
    :data:`_SELECT_BLOCK` samples, the ``m``-th largest, ``T``, has at least ``m`` samples at
    or above it (one per block), so the answer is at least ``T``: only samples ``>= T``
    (few) are partitioned.
    """
    n_rows, n = x.shape
    m = n - k
    n_blk = n // _SELECT_BLOCK
    mag = np.abs(x)
    if m > n_blk // 4 or m < 1:
        mag.partition(k, axis=1)
        return mag[:, k].astype(np.float64)
    bmax = mag[:, :n_blk * _SELECT_BLOCK].reshape(n_rows, n_blk, _SELECT_BLOCK).max(axis=2)
    thresh = np.partition(bmax, n_blk - m, axis=1)[:, n_blk - m]
    out = np.empty(n_rows)
    for i in range(n_rows):
        cand = mag[i][mag[i] >= thresh[i]]
        out[i] = np.partition(cand, cand.size - m)[cand.size - m]
    return out


@functools.lru_cache(maxsize=64)
def _median_to_mean(n_avg: int) -> float:
    """A noise bin averaged over ``n_avg`` segments is about Gamma(n_avg): its mean over its median."""
    return float(n_avg / stats.gamma.ppf(0.5, n_avg))


def _features(psd: np.ndarray, bin_hz: float, lp: np.ndarray, mean: np.ndarray, n_avg: int) -> MpxFeatures:
    n_st, nb = psd.shape
    f = np.arange(nb) * bin_hz
    median_to_mean = _median_to_mean(n_avg)
    # noise density c * f^2 per bin, fitted on 60-66 kHz
    s = _bins(bin_hz, *_RDS_NOISE_HZ, nb)
    noise_c = np.median(psd[:, s] / f[s] ** 2, axis=1) * median_to_mean
    # deviation
    k = max(int(np.ceil(lp.shape[1] * PEAK_PERCENTILE / 100.0)) - 1, 0)
    peak = _order_statistic_abs(lp, k)
    s_lp = _bins(bin_hz, bin_hz / 2, MPX_BAND_HZ + bin_hz / 2, nb)
    noise_lp = noise_c * float(np.sum(f[s_lp] ** 2))
    ms = np.array([float(np.dot(row, row)) for row in lp]) / max(lp.shape[1], 1)
    rms = np.sqrt(np.maximum(ms - noise_lp, 0.0))
    # noise pushes the percentile up by a few standard deviations: take three off
    peak = np.maximum(peak - PEAK_NOISE_SIGMAS * np.sqrt(noise_lp), 0.0)
    # pilot
    search = max(PILOT_SEARCH_HZ, 0.5 * bin_hz)
    s_pk = _bins(bin_hz, PILOT_HZ - search, PILOT_HZ + search + 1e-9, nb)
    k_pk = s_pk.start + np.argmax(psd[:, s_pk], axis=1)
    rows = np.arange(n_st)
    near = k_pk[:, None] + np.arange(-2, 3)[None, :]
    p_pilot = psd[rows[:, None], near].sum(axis=1)
    noise_bin = np.median(np.concatenate([psd[:, _bins(bin_hz, lo, hi, nb)] for lo, hi in _PILOT_NOISE_HZ],
                                         axis=1), axis=1) * median_to_mean
    excess = np.maximum(p_pilot - 5 * noise_bin, 0.0)
    pilot_dev = np.sqrt(2.0 * excess)
    with np.errstate(divide="ignore"):
        pilot_snr = 10 * np.log10(excess / (noise_bin * 1000.0 / bin_hz))
        excess_db = 10 * np.log10(excess / (5 * noise_bin))
    pilot = (excess_db >= PILOT_MIN_EXCESS_DB) & (pilot_dev >= PILOT_MIN_DEVIATION_HZ)
    # RDS
    s_rds = _bins(bin_hz, RDS_CARRIER_HZ - RDS_HALF_BAND_HZ, RDS_CARRIER_HZ + RDS_HALF_BAND_HZ, nb)
    noise_rds = noise_c * float(np.sum(f[s_rds] ** 2))
    rds_ex = np.maximum(psd[:, s_rds].sum(axis=1) - noise_rds, 0.0)
    with np.errstate(divide="ignore"):
        rds_snr = 10 * np.log10(rds_ex / noise_rds)
    # a biphase BPSK subcarrier of peak deviation D carries about D^2 / 4 of power
    return MpxFeatures(
        carrier_offset_hz=mean.astype(np.float64), peak_deviation_hz=peak, rms_deviation_hz=rms,
        pilot=pilot, pilot_deviation_hz=pilot_dev, pilot_snr_db=pilot_snr,
        rds_deviation_hz=np.sqrt(4.0 * rds_ex), rds_snr_db=rds_snr)
