"""FM broadcast transmitter: stereo multiplex with pilot and RDS, frequency-modulated.

Multiplex (MPX), as fractions of the peak deviation:

* audio, 0.87 (stereo) or 1 - RDS level (mono): ``(L+R)/2 + (L-R)/2 * sin(2 theta)``;
* 19 kHz pilot ``sin(theta)``, 0.09 of the peak deviation, only when stereo;
* RDS, 0.04: differentially encoded bits at 1187.5 bit/s as biphase symbols
  ``+-sin(2 pi frac)`` (one sine period per bit: positive then negative half for a 1) on
  ``sin(3 theta)`` (57 kHz locked to the pilot's third harmonic; 48 carrier cycles per
  bit). This sine-shaped biphase stands in for the standard's cosine-roll-off shaping
  filter: same bit timing, polarity and differential coding, slightly wider sidebands.

``theta = 2 pi 19 kHz t``. The programme audio is synthetic: L and R are harmonic combs of
one fundamental (chosen with the seed so that a pilot crest coincides with an audio crest
every fourth period), zero-phase so both peak together once per period; with 50 µs
pre-emphasis the comb amplitudes are the pre-emphasised ones. Every component is a closed
form of absolute time ``t``, so the MPX peak reaches the sum of the component levels and the
peak deviation equals ``deviation_hz`` (within a few per cent over tens of milliseconds).

The MPX is integrated to phase from 0 at the first sample of each call: the instantaneous
frequency is a function of absolute time, the carrier phase restarts at every call (an FM
receiver is insensitive to that).
"""

from __future__ import annotations

import math

import numpy as np

from dsp.fm.rds import RDS_BIT_RATE_HZ, RdsConfig, rds_bits
from rfhunt.errors import DspError

PILOT_HZ = 19000.0
PILOT_LEVEL = 0.09
RDS_LEVEL = 0.04
#: Lowest sample rate that holds the FM signal (MPX up to 60 kHz, 75 kHz deviation).
MIN_SAMPLE_RATE_HZ = 250e3
AUDIO_MAX_HZ = 15000.0
_MAX_HARMONICS = 12


def _audio_comb(audio_seed: int, preemphasis_tau_s: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Fundamental (Hz) and normalised harmonic amplitudes of L and R."""
    rng = np.random.default_rng([audio_seed & 0xFFFFFFFF, 0x464D])
    f0 = PILOT_HZ / (int(rng.integers(60, 120)) + 0.25)
    k = np.arange(1, min(_MAX_HARMONICS, int(AUDIO_MAX_HZ // f0)) + 1)
    gain = np.hypot(1.0, 2.0 * math.pi * k * f0 * preemphasis_tau_s)
    amps = rng.uniform(0.2, 1.0, size=(2, k.size)) / k * gain
    amps /= amps.sum(axis=1, keepdims=True)
    return f0, amps[0], amps[1]


def _comb(psi: np.ndarray, amps_l: np.ndarray, amps_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum_k a_k cos(k psi) for two amplitude sets, by the Chebyshev recurrence."""
    c1 = np.cos(psi)
    prev, cur = np.ones_like(c1), c1
    left = amps_l[0] * cur
    right = amps_r[0] * cur
    two_c1 = 2.0 * c1
    for a_l, a_r in zip(amps_l[1:], amps_r[1:]):
        prev, cur = cur, two_c1 * cur - prev
        left += a_l * cur
        right += a_r * cur
    return left, right


def _check_args(t_start_s, n_samples, sample_rate_hz, deviation_hz, rds, audio_seed,
                preemphasis_tau_s) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
        raise DspError(f"n_samples must be a non-negative integer, got {n_samples!r}")
    if not isinstance(sample_rate_hz, (int, float, np.integer, np.floating)) or not (
            math.isfinite(sample_rate_hz) and sample_rate_hz >= MIN_SAMPLE_RATE_HZ):
        raise DspError(f"sample_rate_hz must be at least {MIN_SAMPLE_RATE_HZ:.0f} Hz for FM broadcast, "
                       f"got {sample_rate_hz!r}")
    if not isinstance(t_start_s, (int, float, np.integer, np.floating)) or not math.isfinite(t_start_s):
        raise DspError(f"t_start_s must be a finite number of seconds, got {t_start_s!r}")
    if not isinstance(deviation_hz, (int, float, np.integer, np.floating)) or not (
            math.isfinite(deviation_hz) and 0 < deviation_hz <= sample_rate_hz / 2):
        raise DspError(f"deviation_hz must be in (0, sample_rate_hz / 2], got {deviation_hz!r}")
    if not isinstance(preemphasis_tau_s, (int, float)) or not 0 <= preemphasis_tau_s <= 1e-3:
        raise DspError(f"preemphasis_tau_s must be in [0, 1e-3] s, got {preemphasis_tau_s!r}")
    if rds is not None and not isinstance(rds, RdsConfig):
        raise DspError(f"rds must be an RdsConfig or None, got {type(rds).__name__}")
    if isinstance(audio_seed, bool) or not isinstance(audio_seed, (int, np.integer)):
        raise DspError(f"audio_seed must be an integer, got {audio_seed!r}")


def fm_mpx(t_start_s: float, n_samples: int, sample_rate_hz: float, *, stereo: bool = True,
           rds: RdsConfig | None = None, audio_seed: int = 0,
           preemphasis_tau_s: float = 50e-6) -> np.ndarray:
    """The multiplex signal, normalised to a peak of 1 (= the peak deviation).

    Parameters are those of :func:`fm_broadcast_iq` (``deviation_hz`` aside).

    Returns
    -------
    numpy.ndarray
        float64 MPX samples at ``t_start_s + n / sample_rate_hz``.
    """
    _check_args(t_start_s, n_samples, sample_rate_hz, 75e3, rds, audio_seed, preemphasis_tau_s)
    n = np.arange(n_samples, dtype=np.float64)
    step = 1.0 / sample_rate_hz
    f0, amps_l, amps_r = _audio_comb(int(audio_seed), preemphasis_tau_s)
    # Phases reduced to cycles before scaling, so that large t keeps its precision.
    psi = 2.0 * math.pi * ((math.fmod(t_start_s * f0, 1.0) + n * (f0 * step)) % 1.0)
    left, right = _comb(psi, amps_l, amps_r)
    theta = 2.0 * math.pi * ((math.fmod(t_start_s * PILOT_HZ, 1.0) + n * (PILOT_HZ * step)) % 1.0)
    s1 = np.sin(theta)
    rds_level = RDS_LEVEL if rds is not None else 0.0
    if stereo:
        audio_level = 1.0 - PILOT_LEVEL - rds_level
        s2 = 2.0 * s1 * np.cos(theta)
        mpx = audio_level * (0.5 * (left + right) + 0.5 * (left - right) * s2) + PILOT_LEVEL * s1
    else:
        mpx = (1.0 - rds_level) * 0.5 * (left + right)
    if rds is not None:
        pos = t_start_s * RDS_BIT_RATE_HZ + n * (RDS_BIT_RATE_HZ * step)
        k = np.floor(pos).astype(np.int64)
        _, diff = rds_bits(rds, k)
        symbol = (2.0 * diff - 1.0) * np.sin(2.0 * math.pi * (pos - k))
        s3 = s1 * (3.0 - 4.0 * s1 * s1)
        mpx += rds_level * symbol * s3
    return mpx


def fm_broadcast_iq(t_start_s: float, n_samples: int, sample_rate_hz: float, *,
                    deviation_hz: float = 75e3, stereo: bool = True, rds: RdsConfig | None = None,
                    audio_seed: int = 0, preemphasis_tau_s: float = 50e-6) -> np.ndarray:
    """Baseband IQ of one FM broadcast station at 0 Hz.

    Parameters
    ----------
    t_start_s : float
        Absolute time of the first sample, s (the programme and the RDS bit stream are
        functions of it; RDS bit ``floor(t * 1187.5)``).
    n_samples : int
        Number of samples.
    sample_rate_hz : float
        Sample rate, Hz, at least 250 kHz.
    deviation_hz : float
        Peak frequency deviation of the full multiplex, Hz (75 kHz legal; more to simulate an
        over-deviated pirate).
    stereo : bool
        Send the 19 kHz pilot and the L-R subcarrier.
    rds : RdsConfig, optional
        RDS data; ``None`` sends no RDS.
    audio_seed : int
        Selects the synthetic programme.
    preemphasis_tau_s : float
        Pre-emphasis time constant, s (50 µs in Europe, 75 µs in the Americas, 0 for none).

    Returns
    -------
    numpy.ndarray
        complex64 unit-amplitude samples; the phase starts at 0 at the first sample.
    """
    _check_args(t_start_s, n_samples, sample_rate_hz, deviation_hz, rds, audio_seed, preemphasis_tau_s)
    if n_samples == 0:
        return np.zeros(0, dtype=np.complex64)
    mpx = fm_mpx(t_start_s, n_samples, sample_rate_hz, stereo=stereo, rds=rds,
                 audio_seed=audio_seed, preemphasis_tau_s=preemphasis_tau_s)
    phase = np.cumsum(mpx)
    phase -= mpx[0]
    phase *= 2.0 * math.pi * deviation_hz / sample_rate_hz
    p = np.remainder(phase, 2.0 * math.pi).astype(np.float32)
    out = np.empty(n_samples, dtype=np.complex64)
    out.real = np.cos(p)
    out.imag = np.sin(p)
    return out
