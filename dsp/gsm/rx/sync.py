"""SCH burst timing and the TDMA grid of each channel.

The SCH is sent on timeslot 0 of the frame after each FCCH (TS 45.002 §6.3.3), so it starts
one TDMA frame (1250 symbols) after the FCCH burst. Its 64-bit extended training sequence
gives the exact burst timing (:func:`dsp.gsm.rx.equalizer.demodulate_bursts` with
:data:`~dsp.gsm.rx.equalizer.TRAINING_SCH`); every SCH found then pins the TDMA grid: a
straight-line fit of the SCH bursts' timing against their frame index gives the sample of
timeslot 0 of every frame and the stream's samples per frame (absorbing a sample-clock error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.coding import sch_burst_bits
from dsp.gsm.rx.equalizer import TRAINING_SCH, demodulate_bursts
from dsp.gsm.rx.fcch import FcchResult
from rfhunt.errors import DspError

#: Training-sequence SNR (dB) an SCH needs to count as found when it cannot be decoded.
SCH_MIN_SNR_DB = 3.0


@dataclass(frozen=True)
class SchBursts:
    """SCH bursts found one frame after FCCH bursts.

    Attributes
    ----------
    channel : numpy.ndarray
        int64 stream row of each burst.
    centre : numpy.ndarray
        float64 stream sample index of the energy centroid of burst bit 0 (timing reference).
    soft : numpy.ndarray
        float32 ``(n, 148)`` soft bits of the whole burst (positive = bit 0).
    coded_soft : numpy.ndarray
        float32 ``(n, 78)`` the SCH's coded bits ``c(0..77)`` for the SCH decoder.
    snr_db : numpy.ndarray
        Training-sequence SNR of each burst, dB.
    found : numpy.ndarray
        bool: the burst passed (SNR at least :data:`SCH_MIN_SNR_DB`).
    """

    channel: np.ndarray
    centre: np.ndarray
    soft: np.ndarray
    coded_soft: np.ndarray
    snr_db: np.ndarray
    found: np.ndarray


@dataclass(frozen=True)
class TdmaTiming:
    """Maps a channel stream's sample index to the TDMA structure of its cell.

    Frame index 0 is the frame of the first SCH found; ``fn_mod51_frame0`` (and
    ``fn_frame0``, once the SCH is decoded) name it.

    Attributes
    ----------
    frame0_sample : float
        Stream sample index of the energy centroid of bit 0 of timeslot 0, frame index 0.
    frame_samples : float
        Stream samples per TDMA frame (nominal ``1250 * sps``; fitted when several SCH
        bursts were found, so a sample-clock error is absorbed).
    sps : int
        Stream samples per symbol.
    fn_mod51_frame0 : int or None
        FN mod 51 of frame index 0 (1, 11, 21, 31 or 41) when known.
    fn_frame0 : int or None
        Full TDMA frame number of frame index 0, when an SCH was decoded.
    """

    frame0_sample: float
    frame_samples: float
    sps: int
    fn_mod51_frame0: int | None = None
    fn_frame0: int | None = None

    def sample_of(self, frame: np.ndarray | int, timeslot: np.ndarray | int = 0,
                  bit: np.ndarray | float = 0) -> np.ndarray:
        """Stream sample index of ``bit`` of ``timeslot`` in frame index ``frame``."""
        sym = np.asarray(c.SLOT_START_SYMBOLS)[np.asarray(timeslot)] + np.asarray(bit, dtype=np.float64)
        return self.frame0_sample + self.frame_samples * (np.asarray(frame, dtype=np.float64)
                                                          + sym / c.FRAME_SYMBOLS)

    def locate(self, sample: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame index, timeslot, bit position in symbols) of stream sample index(es).

        The bit position counts from bit 0 of that timeslot and may exceed 147 in the
        guard period.
        """
        x = (np.asarray(sample, dtype=np.float64) - self.frame0_sample) / self.frame_samples
        frame = np.floor(x).astype(np.int64)
        sym = (x - frame) * c.FRAME_SYMBOLS
        tn = np.searchsorted(c.SLOT_START_SYMBOLS, sym, side="right") - 1
        return frame, tn, sym - c.SLOT_START_SYMBOLS[tn]

    def fn_mod51(self, frame: np.ndarray | int) -> np.ndarray | None:
        """FN mod 51 of frame indices, or None when unknown."""
        if self.fn_mod51_frame0 is None:
            return None
        return (np.asarray(frame) + self.fn_mod51_frame0) % 51


def find_sch(iq: np.ndarray, sample_rate_hz: float, fcch: FcchResult) -> SchBursts:
    """Demodulate the SCH burst one TDMA frame after every FCCH burst, all channels at once.

    Parameters
    ----------
    iq : numpy.ndarray
        complex ``(n_channels, n_samples)`` channel streams.
    sample_rate_hz : float
        Stream rate, Hz (1, 2 or 4 samples per symbol).
    fcch : FcchResult
        From :func:`dsp.gsm.rx.fcch.detect_fcch` on the same streams.

    Returns
    -------
    SchBursts
        One entry per FCCH burst whose following frame lies inside the stream.
    """
    x = np.asarray(iq)
    if x.ndim != 2:
        raise DspError(f"iq must be (n_channels, n_samples), got shape {x.shape}")
    sps = int(round(sample_rate_hz / c.SYMBOL_RATE_HZ))
    b = fcch.bursts
    expect = b.start + c.FRAME_SYMBOLS * sps
    inside = expect + (c.BURST_BITS + 16) * sps < x.shape[1]
    ch, expect = b.channel[inside], expect[inside]
    d = demodulate_bursts(x, sample_rate_hz, ch, expect, fcch.offset_hz[ch], TRAINING_SCH,
                          search_symbols=10.0)
    return SchBursts(channel=ch, centre=d.centre, soft=d.soft, coded_soft=sch_burst_bits(d.soft),
                     snr_db=d.snr_db, found=d.snr_db >= SCH_MIN_SNR_DB)


def fit_timing(centre: np.ndarray, sps: int, *, fn: np.ndarray | None = None) -> TdmaTiming:
    """TDMA grid of one channel from the timing of its SCH bursts.

    Parameters
    ----------
    centre : numpy.ndarray
        Stream sample indices (:attr:`SchBursts.centre`) of SCH bursts of one channel,
        at least one, in time order.
    sps : int
        Stream samples per symbol.
    fn : numpy.ndarray, optional
        Decoded frame numbers of those bursts (trusted for the frame indices and FN).

    Returns
    -------
    TdmaTiming
    """
    t = np.asarray(centre, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise DspError("centre must hold the timing of at least one SCH burst")
    nominal = float(c.FRAME_SYMBOLS * sps)
    if fn is not None:
        f = np.asarray(fn, dtype=np.int64)
        k = (f - f[0]) % c.HYPERFRAME
        k = np.where(k > c.HYPERFRAME // 2, k - c.HYPERFRAME, k)
    else:
        k = np.rint((t - t[0]) / nominal).astype(np.int64)
    if np.unique(k).size >= 2:
        slope, icpt = np.polyfit(k.astype(np.float64), t, 1)
        # A slope more than 100 ppm off nominal means a bad burst: fall back to nominal.
        if abs(slope / nominal - 1.0) > 1e-4:
            slope, icpt = nominal, float(np.median(t - nominal * k))
    else:
        slope, icpt = nominal, float(t[0])
    t51 = None
    fn0 = None
    if fn is not None:
        fn0 = int(fn[0])
        t51 = fn0 % 51
    else:
        phases = [p for p in range(51) if np.all(np.isin((k + p) % 51, c.SCH_FRAMES))]
        if len(phases) == 1:
            t51 = phases[0]
    return TdmaTiming(frame0_sample=float(icpt), frame_samples=float(slope), sps=sps,
                      fn_mod51_frame0=t51, fn_frame0=fn0)
