"""Where the sensor's antenna is: a fixed survey point, a GPS through gpsd, or the simulator.

:class:`GpsdPosition` speaks gpsd's JSON protocol (``?WATCH={"enable":true,"json":true}``,
then TPV reports) over TCP in a background thread and keeps the latest 2-D or 3-D fix.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Protocol

from rfhunt.errors import SourceError

log = logging.getLogger("rfhunt.gps")


class PositionProvider(Protocol):
    mobile: bool

    def position(self) -> tuple[float, float]:
        """Current (lat, lon), WGS84 degrees. Raises SourceError when there is no fix."""


class FixedPosition:
    """A surveyed, fixed antenna."""

    mobile = False

    def __init__(self, lat: float, lon: float) -> None:
        self.lat, self.lon = float(lat), float(lon)

    def position(self) -> tuple[float, float]:
        return self.lat, self.lon


class SourcePosition:
    """The position the simulated source reports for its sensor (it drives the route)."""

    def __init__(self, source) -> None:
        self.source = source
        self.mobile = bool(source.sensor.mobile)

    def position(self) -> tuple[float, float]:
        return self.source.position()


class GpsdPosition:
    """Latest fix from a gpsd daemon.

    Parameters
    ----------
    address : str
        ``HOST:PORT`` of gpsd (normally ``127.0.0.1:2947``).
    max_age_s : float
        A fix older than this counts as lost.
    """

    mobile = True

    def __init__(self, address: str, *, max_age_s: float = 10.0, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot reach gpsd at {address}: {exc}") from None
        self.address = address
        self.max_age_s = max_age_s
        self._fix: tuple[float, float, float] | None = None
        self._stop = threading.Event()
        self.sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
        self._thread = threading.Thread(target=self._reader, name="gpsd", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        buf = b""
        self.sock.settimeout(1.0)
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                self.handle_line(line)
        log.info("event=gpsd_closed address=%s", self.address)

    def handle_line(self, line: bytes) -> None:
        """Take one gpsd JSON line; a TPV report with a 2-D/3-D fix updates the position."""
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("class") == "TPV" and msg.get("mode", 0) >= 2:
            lat, lon = msg.get("lat"), msg.get("lon")
            if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) and -90 <= lat <= 90 \
                    and -180 <= lon <= 180:
                self._fix = (float(lat), float(lon), time.monotonic())

    def position(self) -> tuple[float, float]:
        fix = self._fix
        if fix is None:
            raise SourceError(f"gpsd at {self.address} has no fix yet")
        if time.monotonic() - fix[2] > self.max_age_s:
            raise SourceError(f"gpsd at {self.address}: last fix is {time.monotonic() - fix[2]:.0f} s old")
        return fix[0], fix[1]

    def close(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
