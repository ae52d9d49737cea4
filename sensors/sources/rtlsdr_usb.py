"""An RTL-SDR dongle on USB via pyrtlsdr, delivering native cu8 blocks.

pyrtlsdr is imported when a :class:`RtlSdrSource` is made, never at module import, so the rest
of rfhunt works without it. Any failure to load it — not installed, a missing ``librtlsdr``
shared library, or Debian's librtlsdr 0.6 lacking a symbol pyrtlsdr binds at import
(``rtlsdr_set_dithering``) — becomes :class:`SdrUnavailableError` telling the user to
``pip install 'rfhunt[sdr]'`` (pyrtlsdrlib brings a bundled librtlsdr).

Samples are read synchronously with ``read_bytes`` in multiples of 512 bytes (the USB bulk
packet size) and copied once, into the block's preallocated uint8 array; the tail of the last
packet is kept for the next read. After every retune ``settle_s`` (default 20 ms) of samples is
discarded. Lost samples are found by wall-clock accounting (:mod:`sensors.sources.ratecheck`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from rfhunt.errors import SdrUnavailableError, SourceError
from sensors.sources.base import IQBlock, IQSource
from sensors.sources.ratecheck import RateMonitor

INSTALL_HINT = "install the driver with: pip install 'rfhunt[sdr]'"
USB_PACKET_BYTES = 512


def whole_ppm(ppm: float, where: str) -> int:
    """A crystal correction as librtlsdr takes it: rounded to the nearest whole ppm.

    librtlsdr (``rtlsdr_set_freq_correction``, rtl_tcp's command 0x05) corrects in whole ppm,
    so a fractional value is rounded (halves to even), never truncated.

    Parameters
    ----------
    ppm : float
        The correction in ppm.
    where : str
        The device, named in the error.

    Raises
    ------
    SourceError
        If ``ppm`` is not a finite number.
    """
    if isinstance(ppm, bool) or not isinstance(ppm, numbers.Real):
        raise SourceError(f"{where}: ppm must be a number, got {ppm!r}")
    if not math.isfinite(ppm):
        raise SourceError(f"{where}: ppm must be a finite number, got {ppm!r}")
    return round(float(ppm))


def load_pyrtlsdr() -> type:
    """Import pyrtlsdr and return its ``RtlSdr`` class, or raise SdrUnavailableError."""
    try:
        import rtlsdr  # noqa: PLC0415 - optional dependency, imported on use

        return rtlsdr.RtlSdr
    except Exception as exc:  # ImportError, AttributeError (old librtlsdr), OSError (no .so)
        raise SdrUnavailableError(
            f"RTL-SDR driver unavailable ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        ) from None


class RtlSdrSource(IQSource):
    """A local RTL-SDR dongle.

    Parameters
    ----------
    device_index : int
        Which dongle (librtlsdr's enumeration order); ignored when ``serial`` is given.
    serial : str or None
        Open the dongle with this EEPROM serial number instead.
    ppm : float
        Crystal frequency correction, rounded to whole ppm (librtlsdr's resolution; see
        :func:`whole_ppm`).
    gain_db : float or "auto"
        Initial tuner gain; "auto" is the tuner AGC (blocks then carry ``gain_db`` NaN).
    bias_tee : bool
        Power an active antenna (RTL-SDR Blog v3 and later).
    check_realtime : bool
        Detect lost samples by wall-clock accounting.
    settle_s : float
        Seconds of samples discarded after each retune.
    """

    def __init__(self, device_index: int = 0, *, serial: str | None = None, ppm: float = 0,
                 gain_db: float | str = "auto", bias_tee: bool = False,
                 check_realtime: bool = True, settle_s: float = 0.02) -> None:
        super().__init__()
        self.device_index = int(device_index)
        self.serial = serial
        self.check_realtime = bool(check_realtime)
        self.settle_s = float(settle_s)
        self._where = (f"RTL-SDR serial {serial}" if serial is not None
                       else f"RTL-SDR device {self.device_index}")
        ppm = whole_ppm(ppm, self._where)
        rtlsdr_cls = load_pyrtlsdr()
        try:
            if serial is not None:
                self._sdr = rtlsdr_cls(serial_number=serial)
            else:
                self._sdr = rtlsdr_cls(device_index=self.device_index)
        except Exception as exc:
            raise SdrUnavailableError(f"{self._where}: no dongle answers "
                                      f"({type(exc).__name__}: {exc})") from None
        self._leftover = np.empty(0, np.uint8)   # tail of the last USB packet read
        self._monitor: RateMonitor | None = None
        self._tuned = False
        try:
            if ppm:
                self._sdr.freq_correction = ppm
            if bias_tee:
                self._sdr.set_bias_tee(True)
        except Exception as exc:
            self._close_quietly()
            raise SourceError(f"{self._where}: cannot set ppm={ppm} / bias_tee={bias_tee} "
                              f"({type(exc).__name__}: {exc})") from None
        self.ppm = ppm
        self._initial_gain = gain_db
        self.status.state = "ok"

    def _close_quietly(self) -> None:
        try:
            self._sdr.close()
        except Exception:  # noqa: BLE001 - closing a failed device must not mask the error
            pass

    def _set_gain(self, gain_db: float | str) -> None:
        if isinstance(gain_db, str):
            if gain_db != "auto":
                raise SourceError(f"{self._where}: gain_db must be a number or 'auto', "
                                  f"got {gain_db!r}")
            self._sdr.gain = "auto"
            self.gain_db = math.nan
        else:
            self._sdr.gain = float(gain_db)
            actual = self._sdr.gain
            self.gain_db = float(actual) if isinstance(actual, (int, float)) else float(gain_db)

    def tune(self, center_freq_hz: float, sample_rate_hz: float | None = None,
             gain_db: float | str | None = None) -> None:
        rate = self.sample_rate_hz if sample_rate_hz is None else float(sample_rate_hz)
        if not rate > 0:
            raise SourceError(f"{self._where}: no sample rate: pass sample_rate_hz to tune()")
        if gain_db is None and not self._tuned:
            gain_db = self._initial_gain
        try:
            if rate != self.sample_rate_hz:
                self._sdr.sample_rate = rate
            self._sdr.center_freq = float(center_freq_hz)
            if gain_db is not None:
                self._set_gain(gain_db)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"{self._where}: refused tuning {center_freq_hz:.0f} Hz, "
                              f"{rate:.0f} S/s, gain {gain_db} ({type(exc).__name__}: "
                              f"{exc})") from None
        self.center_freq_hz = float(center_freq_hz)
        self.sample_rate_hz = rate
        self._leftover = self._leftover[:0]
        settle = int(self.settle_s * rate)
        if settle:
            self._read_raw(2 * settle)
        if self._monitor is None:
            self._monitor = RateMonitor(rate)
        else:
            self._monitor.reset(rate)
        self._tuned = True

    def _read_raw(self, n_bytes: int) -> np.ndarray:
        """Exactly ``n_bytes`` from the dongle, reading whole USB packets.

        Returns a new uint8 array, filled by one copy out of the driver's buffers.
        """
        out = np.empty(n_bytes, np.uint8)
        have = min(self._leftover.size, n_bytes)
        out[:have] = self._leftover[:have]
        self._leftover = self._leftover[have:]
        while have < n_bytes:
            ask = -(-(n_bytes - have) // USB_PACKET_BYTES) * USB_PACKET_BYTES
            try:
                buf = self._sdr.read_bytes(ask)
            except Exception as exc:
                self.status.state = "error"
                raise SourceError(f"{self._where}: read failed ({type(exc).__name__}: "
                                  f"{exc})") from None
            data = np.frombuffer(buf, dtype=np.uint8)     # a view: no copy
            if not data.size:
                raise SourceError(f"{self._where}: the dongle returned no samples")
            k = min(data.size, n_bytes - have)
            out[have:have + k] = data[:k]
            have += k
            if k < data.size:
                self._leftover = data[k:].copy()          # under one USB packet
        return out

    def read(self, n_samples: int) -> IQBlock:
        if not self._tuned:
            raise SourceError(f"{self._where}: read() before tune()")
        if n_samples <= 0:
            raise SourceError(f"{self._where}: n_samples must be > 0, got {n_samples}")
        mon = self._monitor
        assert mon is not None
        first = mon.received_samples
        raw = self._read_raw(2 * n_samples)
        dropped = mon.update(n_samples) if self.check_realtime else 0
        self._account(n_samples, dropped)
        return IQBlock(raw, self.center_freq_hz, self.sample_rate_hz, self.gain_db,
                       mon.sample_time_utc(first), dropped, native="cu8")

    def close(self) -> None:
        if self.status.state != "closed":
            self._close_quietly()
        super().close()
