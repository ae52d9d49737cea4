"""The interface every IQ source implements.

A source is tuned (centre frequency, sample rate, gain) and then read in blocks.
Samples stay in the source's native dtype until :meth:`IQBlock.as_complex64` is called;
``cu8`` data from a dongle is converted once, as ``(u - 127.5) / 127.5``.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass

import numpy as np

from rfhunt.errors import DspError


def cu8_to_complex64(raw: np.ndarray) -> np.ndarray:
    """Interleaved unsigned 8-bit I/Q (RTL-SDR native) to complex64 in [-1, 1].

    Raises
    ------
    DspError
        If ``raw`` is not uint8 or has an odd number of bytes.
    """
    raw = np.asarray(raw)
    if raw.dtype != np.uint8:
        raise DspError(f"cu8 samples must be uint8, got {raw.dtype}")
    if raw.size % 2:
        raise DspError(f"cu8 data has an odd number of bytes ({raw.size}): I without Q")
    f = raw.astype(np.float32)
    f -= 127.5
    f *= 1.0 / 127.5
    return f.view(np.complex64)


def complex_to_cu8(iq: np.ndarray) -> np.ndarray:
    """complex samples in [-1, 1] to interleaved cu8, clipping (an 8-bit ADC saturates)."""
    iq = np.asarray(iq, dtype=np.complex64)
    inter = iq.view(np.float32)
    return np.clip(np.rint(inter * 127.5 + 127.5), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class IQBlock:
    """A contiguous run of samples from one tuning.

    Attributes
    ----------
    samples : numpy.ndarray
        complex64 samples, or uint8 interleaved I/Q (``native == "cu8"``).
    center_freq_hz, sample_rate_hz, gain_db : float
        The tuning the samples were taken with.
    t_utc : float
        Unix time of the first sample (the simulated clock for simulated sources).
    dropped_samples : int
        Samples known to be lost immediately before this block.
    native : str
        ``"cf32"`` or ``"cu8"``.
    """

    samples: np.ndarray
    center_freq_hz: float
    sample_rate_hz: float
    gain_db: float
    t_utc: float
    dropped_samples: int = 0
    native: str = "cf32"

    @property
    def n_samples(self) -> int:
        return self.samples.size // 2 if self.native == "cu8" else self.samples.size

    def as_complex64(self) -> np.ndarray:
        """The samples as complex64 full scale +-1."""
        if self.native == "cu8":
            return cu8_to_complex64(self.samples)
        return np.asarray(self.samples, dtype=np.complex64)


@dataclass
class SourceStatus:
    """What a source reports in heartbeats."""

    state: str = "ok"
    samples_read: int = 0
    dropped_samples: int = 0
    drop_events: int = 0


class IQSource(abc.ABC):
    """Something that can be tuned and read.

    Subclasses set ``center_freq_hz``, ``sample_rate_hz`` and ``gain_db`` in :meth:`tune`,
    and keep :attr:`status` current.
    """

    #: True when reading blocks takes real time (a dongle, a paced rtl_tcp server).
    realtime: bool = True

    def __init__(self) -> None:
        self.center_freq_hz = 0.0
        self.sample_rate_hz = 0.0
        self.gain_db = 0.0
        self.status = SourceStatus()

    @abc.abstractmethod
    def tune(self, center_freq_hz: float, sample_rate_hz: float | None = None,
             gain_db: float | None = None) -> None:
        """Retune; ``None`` keeps the current value. Raises SourceError if the device refuses."""

    @abc.abstractmethod
    def read(self, n_samples: int) -> IQBlock:
        """Read ``n_samples`` samples at the current tuning.

        Raises SourceError when the source cannot deliver (device gone, end of recording).
        """

    def idle(self, seconds: float) -> None:
        """Wait between scans. Real sources sleep; simulated ones let their clock jump."""
        if seconds > 0:
            time.sleep(seconds)

    def close(self) -> None:
        """Release the device or connection. Safe to call twice."""
        self.status.state = "closed"

    def _account(self, n_read: int, n_dropped: int) -> None:
        self.status.samples_read += n_read
        if n_dropped:
            self.status.dropped_samples += n_dropped
            self.status.drop_events += 1

    def __enter__(self) -> "IQSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
