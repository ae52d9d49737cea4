"""FM reception effects for the simulated world: the receiver's own third-order
intermodulation.

Strong FM stations anywhere in the band reach the RTL-SDR's front end (its input filter is
far wider than one capture) and its third-order nonlinearity makes products at
``2 f1 - f2`` and ``f1 + f2 - f3``. Referred to the antenna, with the receiver's
third-order intercept ``IIP3`` (dBm):

* ``P(2 f1 - f2) = 2 P1 + P2 - 2 IIP3``;
* ``P(f1 + f2 - f3) = P1 + P2 + P3 - 2 IIP3 + 6.02`` (three tones: twice the amplitude).

The intercept falls dB for dB as the gain rises (the later stages overload first):
``IIP3 = iip3_at_0db_dbm - gain_db``, so a product's level at the antenna grows 2 dB per
dB of gain while a real station's stays put; that is how a sensor tells them apart
(:func:`sensors.fm_scan.gain_test`). The product's waveform is ``w1 * w2 * conj(w3)`` of
the parents' unit-amplitude baseband waveforms (``w1 * w1 * conj(w2)`` for ``2 f1 - f2``):
its deviation is the same combination of theirs, up to 225 kHz, so it looks like a wide,
over-deviated carrier.

The world adds these with :func:`receiver_intermod_iq` (see its notes for the hook).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rfhunt.errors import DspError

#: The receiver's input third-order intercept at 0 dB gain, dBm: about -16 dBm at the FM
#: scan's default 20.7 dB. With the world's calibration (-5 dB) that puts the output
#: intercept 10 dB over the ADC's full scale: two stations at -8 dBFS make products 36 dB
#: below them, the spurious-free range an RTL-SDR shows.
IIP3_AT_0DB_DBM = 5.0
#: Products weaker than this at the antenna are left out, dBm (below any receiver's noise).
FLOOR_DBM = -135.0


@dataclass(frozen=True)
class Im3Product:
    """One third-order product: ``f[i] + f[j] - f[k]`` of the carriers given (``i == j`` for
    ``2 f1 - f2``), at ``freq_hz`` with ``power_dbm`` referred to the antenna."""

    i: int
    j: int
    k: int
    freq_hz: float
    power_dbm: float


def iip3_dbm(gain_db: float, iip3_at_0db_dbm: float = IIP3_AT_0DB_DBM) -> float:
    """Input third-order intercept at a gain, dBm."""
    return iip3_at_0db_dbm - gain_db


def im3_products(freqs_hz: Sequence[float], powers_dbm: Sequence[float], *, gain_db: float,
                 lo_hz: float | None = None, half_span_hz: float | None = None,
                 iip3_at_0db_dbm: float = IIP3_AT_0DB_DBM, floor_dbm: float = FLOOR_DBM) -> list[Im3Product]:
    """Third-order products of carriers at the receiver's input.

    Parameters
    ----------
    freqs_hz, powers_dbm : sequence of float
        Every carrier at the antenna (Hz, dBm), whether in the capture or not.
    gain_db : float
        Receiver gain.
    lo_hz, half_span_hz : float, optional
        Keep only products within ``half_span_hz`` of ``lo_hz`` (the capture).
    iip3_at_0db_dbm, floor_dbm : float
        See the module notes.

    Returns
    -------
    list of Im3Product
        Strongest first.

    Raises
    ------
    DspError
        If the two sequences differ in length.
    """
    f = [float(v) for v in freqs_hz]
    p = [float(v) for v in powers_dbm]
    if len(f) != len(p):
        raise DspError(f"freqs_hz and powers_dbm differ in length ({len(f)} and {len(p)})")
    ip3 = iip3_dbm(gain_db, iip3_at_0db_dbm)
    out = []

    def keep(i: int, j: int, k: int, power: float) -> None:
        fi = f[i] + f[j] - f[k]
        if power < floor_dbm:
            return
        if lo_hz is not None and half_span_hz is not None and abs(fi - lo_hz) > half_span_hz:
            return
        out.append(Im3Product(i, j, k, fi, power))

    for i, k in itertools.permutations(range(len(f)), 2):
        keep(i, i, k, 2 * p[i] + p[k] - 2 * ip3)
    for i, j in itertools.combinations(range(len(f)), 2):
        for k in range(len(f)):
            if k not in (i, j):
                keep(i, j, k, p[i] + p[j] + p[k] - 2 * ip3 + 20 * math.log10(2))
    return sorted(out, key=lambda q: -q.power_dbm)


def im3_waveform(wi: np.ndarray, wj: np.ndarray, wk: np.ndarray) -> np.ndarray:
    """Baseband waveform of the product ``f_i + f_j - f_k`` from its parents' unit-amplitude
    baseband waveforms (each at its own 0 Hz): ``wi * wj * conj(wk)``, complex64."""
    return (np.asarray(wi, np.complex64) * np.asarray(wj, np.complex64)
            * np.conj(np.asarray(wk, np.complex64))).astype(np.complex64)


def receiver_intermod_iq(carriers: Sequence[tuple[float, float]], waveform: Callable[[int], np.ndarray], *,
                         lo_hz: float, sample_rate_hz: float, t_s: float, n_samples: int, gain_db: float,
                         to_dbfs_db: float, half_span_hz: float | None = None,
                         iip3_at_0db_dbm: float = IIP3_AT_0DB_DBM, floor_dbm: float = FLOOR_DBM) -> np.ndarray:
    """The intermodulation a capture holds, as complex baseband to add to it.

    Parameters
    ----------
    carriers : sequence of (freq_hz, power_dbm)
        The FM carriers at the antenna (the whole band: out-of-capture stations make
        in-capture products), frequencies as the receiver sees them.
    waveform : callable
        ``waveform(index)``: unit-amplitude baseband (complex, ``n_samples`` long, at 0 Hz)
        of carrier ``index`` for this capture; called only for parents of a product that
        lands in the capture.
    lo_hz, sample_rate_hz : float
        The capture's LO and rate.
    t_s : float
        Time of the capture's first sample (the same clock as the world's mixing), s.
    n_samples : int
    gain_db : float
        Receiver gain (sets IIP3).
    to_dbfs_db : float
        dBm at the antenna to dBFS (``gain_db - calibration_db`` in the world).
    half_span_hz : float, optional
        Products further than this from the LO are filtered out (default: half the rate
        plus 150 kHz, like the world's carriers).

    Returns
    -------
    ndarray of complex64, shape (n_samples,)

    Notes
    -----
    The hook in ``World.capture`` (after the emitters' loop, before the DC spike)::

        fm = [(em, f * (1 + em.ppm * 1e-6)) for em in self.scenario.emitters if em.type == "fm"
              for f in em.carrier_freqs_hz()]
        cars = [(f, em.power_dbm + self.path_gain_db(em, f, rx, t_s)) for em, f in fm]
        x += receiver_intermod_iq(
            cars, lambda i: self._waveform(fm[i][0], 0, t_s, n_samples, sample_rate_hz),
            lo_hz=lo_hz, sample_rate_hz=sample_rate_hz, t_s=t_s, n_samples=n_samples,
            gain_db=gain_db, to_dbfs_db=to_dbfs)
    """
    half = sample_rate_hz / 2 + 150e3 if half_span_hz is None else half_span_hz
    out = np.zeros(n_samples, dtype=np.complex64)
    prods = im3_products([c[0] for c in carriers], [c[1] for c in carriers], gain_db=gain_db, lo_hz=lo_hz,
                         half_span_hz=half, iip3_at_0db_dbm=iip3_at_0db_dbm, floor_dbm=floor_dbm)
    if not prods:
        return out
    cache: dict[int, np.ndarray] = {}

    def w(i: int) -> np.ndarray:
        if i not in cache:
            cache[i] = np.asarray(waveform(i), dtype=np.complex64)
        return cache[i]

    t = np.arange(n_samples, dtype=np.float64) / sample_rate_hz
    for q in prods:
        amp = np.float32(10 ** ((q.power_dbm + to_dbfs_db) / 20))
        df = q.freq_hz - lo_hz
        rot = np.exp(1j * (2 * np.pi * df * (t + t_s) % (2 * np.pi))).astype(np.complex64)
        out += amp * im3_waveform(w(q.i), w(q.j), w(q.k)) * rot
    return out
