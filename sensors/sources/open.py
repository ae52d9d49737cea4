"""``open_source(spec)``: make an IQ source from a short text spec.

=========================  =====================================================
spec                       source
=========================  =====================================================
``rtlsdr`` / ``rtlsdr:0``  :class:`~sensors.sources.rtlsdr_usb.RtlSdrSource`, device 0
``rtlsdr:serial=0001``     the dongle with that serial number
``rtltcp:HOST[:PORT]``     :class:`~sensors.sources.rtltcp.RtlTcpSource` (``[::1]:1234`` for IPv6)
``file:PATH`` or a path    :class:`~sensors.sources.recording.RecordingSource`
``sim...``                 registered by the simulator (``SOURCE_SCHEMES["sim"]``)
=========================  =====================================================

Other modules add schemes with :func:`register_scheme`; this module imports none of them.
Keyword options go to the source's constructor.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable

from rfhunt.errors import SourceError
from sensors.sources.base import IQSource

#: scheme -> factory(rest_of_spec, **options) -> IQSource
SOURCE_SCHEMES: dict[str, Callable[..., IQSource]] = {}


def register_scheme(name: str, factory: Callable[..., IQSource]) -> None:
    """Make ``name:...`` specs call ``factory(rest, **options)``."""
    SOURCE_SCHEMES[name] = factory


def _construct(cls: type, spec: str, *args: Any, **options: Any) -> IQSource:
    try:
        inspect.signature(cls).bind(*args, **options)
    except TypeError as exc:
        raise SourceError(f"source {spec!r}: bad options for {cls.__name__} ({exc})") from None
    return cls(*args, **options)


def _open_rtlsdr(rest: str, **options: Any) -> IQSource:
    from sensors.sources.rtlsdr_usb import RtlSdrSource

    spec = f"rtlsdr:{rest}"
    if rest.startswith("serial="):
        serial = rest[len("serial="):]
        if not serial:
            raise SourceError(f"source {spec!r}: empty serial number")
        return _construct(RtlSdrSource, spec, serial=serial, **options)
    if rest == "":
        return _construct(RtlSdrSource, spec, 0, **options)
    if not rest.isdigit():
        raise SourceError(f"source {spec!r}: expected rtlsdr:INDEX or rtlsdr:serial=SERIAL")
    return _construct(RtlSdrSource, spec, int(rest), **options)


def _open_rtltcp(rest: str, **options: Any) -> IQSource:
    from sensors.sources.rtltcp import RtlTcpSource

    spec = f"rtltcp:{rest}"
    port = "1234"
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep or (tail and not tail.startswith(":")):
            raise SourceError(f"source {spec!r}: expected rtltcp:[IPV6]:PORT")
        port = tail[1:] or port
    elif rest.count(":") > 1:
        raise SourceError(f"source {spec!r}: write IPv6 hosts in brackets, rtltcp:[::1]:1234")
    else:
        host, _, p = rest.partition(":")
        port = p or port
    if not host:
        raise SourceError(f"source {spec!r}: no host (expected rtltcp:HOST:PORT)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SourceError(f"source {spec!r}: port {port!r} is not a TCP port")
    return _construct(RtlTcpSource, spec, host, int(port), **options)


def _open_file(rest: str, **options: Any) -> IQSource:
    from sensors.sources.recording import RecordingSource

    return _construct(RecordingSource, rest, Path(rest), **options)


register_scheme("rtlsdr", _open_rtlsdr)
register_scheme("rtltcp", _open_rtltcp)
register_scheme("file", _open_file)


def open_source(spec: str | os.PathLike, **options: Any) -> IQSource:
    """Open the source ``spec`` names (see the module docstring), or a recording's path;
    raises SourceError."""
    if isinstance(spec, os.PathLike):
        return _open_file(os.fspath(spec), **options)
    if not isinstance(spec, str) or not spec:
        raise SourceError(f"source spec must be a non-empty string, got {spec!r}")
    scheme, _, rest = spec.partition(":")
    if scheme in SOURCE_SCHEMES:
        return SOURCE_SCHEMES[scheme](rest, **options)
    path = Path(spec)
    if path.exists() or "/" in spec or path.suffix or Path(spec + ".sigmf-meta").exists():
        return _open_file(spec, **options)
    known = ", ".join(sorted(SOURCE_SCHEMES))
    hint = " ('sim' is registered when sensors.sim is imported)" if scheme == "sim" else ""
    raise SourceError(f"unknown source {spec!r}: known schemes are {known}, or a recording's "
                      f"path{hint}")
