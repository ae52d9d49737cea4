"""The one exception tree of rfhunt.

Every error that rfhunt raises on purpose derives from :class:`RfhuntError`, so that the
command line can print its message (which names the offending input) without a traceback,
and long-running services can log it and go on.
"""

from __future__ import annotations


class RfhuntError(Exception):
    """Root of every error rfhunt raises on purpose."""


class ConfigError(RfhuntError, ValueError):
    """A configuration or scenario file is wrong: unknown key, bad value, missing field."""


class SourceError(RfhuntError):
    """An IQ source cannot deliver: device missing, connection lost, bad tuning."""


class SdrUnavailableError(SourceError):
    """The RTL-SDR driver (pyrtlsdr / librtlsdr) cannot be loaded or no dongle answers."""


class RecordingError(SourceError, ValueError):
    """A recording is unreadable: wrong sample format, truncated data, bad metadata."""


class ProtocolError(SourceError):
    """A peer broke a wire protocol (rtl_tcp header, command framing)."""


class DspError(RfhuntError, ValueError):
    """Arguments to a DSP function are invalid (shape, dtype, rate, frequency)."""


class WireError(RfhuntError, ValueError):
    """A message between sensor and collector is malformed, oversize or of an unknown version.

    Attributes
    ----------
    reason : str
        Short class for counters: ``oversize``, ``not_json``, ``not_object``, ``version``,
        ``type`` or ``field``.
    seq : int or None
        The message's sequence number when it could be read, so the sender can be told
        which message was refused.
    """

    def __init__(self, message: str, *, reason: str = "field", seq: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.seq = seq


class StoreError(RfhuntError):
    """The collector's database refused an operation or has an unexpected schema."""
