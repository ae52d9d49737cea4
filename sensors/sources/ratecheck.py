"""Dropped-sample detection for streams without sequence numbers (rtl_tcp, librtlsdr).

A real-time source produces ``sample_rate_hz`` samples per wall-clock second. Samples can
arrive *late* (network and USB buffering, a client that reads slowly) but never *early*, so
the deficit ``d(t) = rate * (t - t0) - received(t)`` has a lower envelope that is the minimum
transport latency plus every sample lost so far. :class:`RateMonitor` tracks the minimum of
``d`` over a sliding window; when that minimum rises above the baseline by more than a
tolerance, the rise is reported as dropped samples (and becomes the new baseline). The monitor
keeps no totals: :meth:`RateMonitor.update` returns the samples newly found lost, and the source
counts them in its :class:`~sensors.sources.base.SourceStatus` (``IQSource._account``).

Figures (defaults): window 2 s — several rtl_tcp buffers even at 250 kS/s, where one 256 KiB
buffer lasts 0.52 s; tolerance 20 ms of samples; the baseline may creep up by 200 ppm of the
elapsed time so a dongle crystal that runs slow is not mistaken for drops. A drop is reported
about one window after it happened (attributed to the block being read then).
"""

from __future__ import annotations

import collections
import time
from typing import Callable

from rfhunt.errors import SourceError


class RateMonitor:
    """Accounts samples received against wall-clock time × sample rate.

    Parameters
    ----------
    sample_rate_hz : float
        Nominal rate of the stream.
    window_s : float
        Length of the sliding window over which the deficit's minimum is taken.
    tolerance_s : float
        Shortfalls smaller than this many seconds of samples are treated as jitter.
    drift_ppm : float
        Allowed slow drift of the sample clock against the wall clock.
    clock : callable
        Monotonic clock in seconds (``time.monotonic``); injectable for tests.
    wall_clock : callable
        UTC clock in seconds (``time.time``), used by :meth:`sample_time_utc`.
    """

    def __init__(self, sample_rate_hz: float, *, window_s: float = 2.0,
                 tolerance_s: float = 0.02, drift_ppm: float = 200.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if window_s <= 0 or tolerance_s < 0 or drift_ppm < 0:
            raise SourceError(f"rate monitor: window_s={window_s}, tolerance_s={tolerance_s}, "
                              f"drift_ppm={drift_ppm} must be positive")
        self.window_s = float(window_s)
        self.tolerance_s = float(tolerance_s)
        self.drift_ppm = float(drift_ppm)
        self._clock = clock
        self._wall_clock = wall_clock
        self.reset(sample_rate_hz)

    def reset(self, sample_rate_hz: float | None = None) -> None:
        """Start a new stream now (after a retune, a reconnection or settling)."""
        if sample_rate_hz is not None:
            if not sample_rate_hz > 0:
                raise SourceError(f"rate monitor: sample_rate_hz={sample_rate_hz} must be > 0")
            self.sample_rate_hz = float(sample_rate_hz)
        self._t0 = self._clock()
        self._wall0 = self._wall_clock()
        self._received = 0
        self._baseline: float | None = None
        self._t_baseline = self._t0
        self._window: collections.deque[tuple[float, float]] = collections.deque()

    @property
    def received_samples(self) -> int:
        return self._received

    def sample_time_utc(self, index: int) -> float:
        """Estimated UTC of received sample ``index`` (counted from the last reset).

        The deficit baseline holds the minimum latency plus the drops found so far, so
        ``t0 + (index + baseline) / rate`` places the sample on the wall clock; before the
        first update the latency is taken as zero.
        """
        base = self._baseline if self._baseline is not None else 0.0
        return self._wall0 + (index + base) / self.sample_rate_hz

    def update(self, n_samples: int, t: float | None = None) -> int:
        """Record that ``n_samples`` more samples arrived (at monotonic time ``t``).

        Returns the number of samples newly found to be lost (0 mostly).
        """
        t = self._clock() if t is None else t
        self._received += int(n_samples)
        rate = self.sample_rate_hz
        deficit = rate * (t - self._t0) - self._received
        win = self._window
        # Monotonic deque of (time, deficit) with increasing deficits: its head is the minimum.
        while win and win[-1][1] >= deficit:
            win.pop()
        win.append((t, deficit))
        while win[0][0] < t - self.window_s:
            win.popleft()
        low = win[0][1]
        if self._baseline is None:
            self._baseline = deficit
            self._t_baseline = t
            return 0
        # Let the baseline creep with a slow sample clock.
        self._baseline += rate * (t - self._t_baseline) * self.drift_ppm * 1e-6
        self._t_baseline = t
        if low < self._baseline:
            self._baseline = low
            return 0
        # Only judge once the window holds nothing older than the stream itself.
        if t - self._t0 < self.window_s:
            return 0
        shortfall = low - self._baseline
        if shortfall > max(self.tolerance_s * rate, 1.0):
            lost = int(round(shortfall))
            self._baseline = low
            return lost
        return 0
