"""Admitting only enrolled sensors: CurveZMQ on the collector's ROUTER socket.

:class:`SensorGate` runs ZeroMQ's authentication handler (ZAP) in a thread and answers each
CURVE handshake from the enrolled folder of :mod:`rfhunt.keys`: a sensor whose public key
is enrolled gets in, any other is refused (logged with its key, counted). The folder is
read again whenever its modification time changes, so ``rfhunt keys enroll`` and
``rfhunt keys revoke`` take effect at the next handshake without a restart; a revoked
sensor's open connection is dropped by the collector when its next message arrives (see
:meth:`SensorGate.is_enrolled`, which the service checks per message).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from rfhunt.keys import enrolled, load_secret

log = logging.getLogger("rfhunt.collector")


class _Enrolled:
    """The enrolled keys, re-read when the folder changes (ZAP's credentials provider)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: dict[bytes, str] = {}
        self.refused = 0
        self.admitted = 0

    def keys(self) -> dict[bytes, str]:
        try:
            st = os.stat(self.folder)
            stamp = (st.st_mtime, st.st_ino)
        except OSError:
            stamp = (0.0, 0)
        with self._lock:
            if stamp != self._stamp:
                self._keys = enrolled(self.folder)
                self._stamp = stamp
                log.info("event=enrolled_keys folder=%s count=%d", self.folder, len(self._keys))
            return self._keys

    def callback(self, domain: str, key: bytes) -> bool:
        from zmq.utils import z85

        public = z85.encode(key) if len(key) == 32 else key
        name = self.keys().get(public)
        if name is None:
            with self._lock:
                self.refused += 1
            log.warning("event=refused reason=not_enrolled public_key=%s", public.decode("ascii", "replace"))
            return False
        with self._lock:
            self.admitted += 1
        log.info("event=admitted sensor_key=%s", name)
        return True


class SensorGate:
    """CURVE server security for a collector socket, with the enrolled sensors as its list.

    Parameters
    ----------
    context : zmq.Context
    server_secret_file : str or Path
        The collector's ``.key_secret`` certificate.
    enrolled_dir : str or Path
        Folder of the enrolled sensors' public ``.key`` files.

    Raises
    ------
    rfhunt.errors.ConfigError
        If the secret file cannot be read.
    """

    def __init__(self, context: zmq.Context, server_secret_file: str | Path, enrolled_dir: str | Path) -> None:
        self.public, self._secret = load_secret(server_secret_file)
        self._enrolled = _Enrolled(Path(enrolled_dir))
        self._auth = ThreadAuthenticator(context, log=logging.getLogger("rfhunt.collector.zap"))
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self._enrolled)

    def secure(self, sock: zmq.Socket) -> None:
        """Make ``sock`` (before it binds) a CURVE server that asks this gate."""
        sock.curve_secretkey = self._secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def is_enrolled(self, public_key_z85: str | bytes | None) -> bool:
        """Whether a peer's key (a message's ``User-Id`` property) is enrolled now."""
        if public_key_z85 is None:
            return False
        key = public_key_z85.encode() if isinstance(public_key_z85, str) else public_key_z85
        return key in self._enrolled.keys()

    def name_of(self, public_key_z85: str | bytes | None) -> str | None:
        """The name a key is enrolled under now (its ``NAME.key`` file), or None."""
        if public_key_z85 is None:
            return None
        key = public_key_z85.encode() if isinstance(public_key_z85, str) else public_key_z85
        return self._enrolled.keys().get(key)

    def counters(self) -> dict[str, int]:
        """Handshakes refused and admitted since the start."""
        return {"admitted": self._enrolled.admitted, "refused": self._enrolled.refused}

    def stop(self) -> None:
        self._auth.stop()
