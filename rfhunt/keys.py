"""CurveZMQ keys of sensors and collectors, and the collector's list of enrolled sensors.

Every sensor and every collector has a keypair (Curve25519, Z85-encoded, in the
certificate files ZeroMQ's own tools use: ``NAME.key`` holds the public key,
``NAME.key_secret`` both). A collector admits a sensor only while the sensor's public
key file lies in the collector's *enrolled* folder; enrolling copies it there, revoking
removes it. The collector reads the folder again whenever it changes, so both take
effect without a restart.

    rfhunt keys new roof-01 --dir /etc/rfhunt/keys           # on the sensor
    rfhunt keys enroll roof-01.key --dir /etc/rfhunt/enrolled  # on the collector
    rfhunt keys revoke roof-01 --dir /etc/rfhunt/enrolled
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import zmq
import zmq.auth

from rfhunt.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.startswith("."):
        raise ConfigError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def new_keypair(name: str, key_dir: str | Path) -> tuple[Path, Path]:
    """Create ``NAME.key`` and ``NAME.key_secret`` in ``key_dir`` (the secret readable by
    its owner only); returns (public file, secret file).

    Raises
    ------
    ConfigError
        If the name is unusable, the files exist already or the folder is not writable.
    """
    _check_name(name)
    d = Path(key_dir)
    pub, sec = d / f"{name}.key", d / f"{name}.key_secret"
    if pub.exists() or sec.exists():
        raise ConfigError(f"{pub}: a key named {name!r} exists already; remove it first to replace it")
    if not zmq.has("curve"):  # pragma: no cover - pyzmq wheels ship libsodium
        raise ConfigError("this libzmq has no CURVE support")
    try:
        d.mkdir(parents=True, exist_ok=True)
        zmq.auth.create_certificates(d, name)
        os.chmod(sec, 0o600)
    except OSError as exc:
        raise ConfigError(f"{d}: cannot write keys: {exc.strerror or exc}") from None
    return pub, sec


def load_public(path: str | Path) -> bytes:
    """The Z85 public key of a certificate file (public or secret one)."""
    p = Path(path)
    try:
        public, _ = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: not a CurveZMQ certificate file ({exc})") from None
    return public


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys of a ``.key_secret`` file."""
    p = Path(path)
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: not a CurveZMQ certificate file ({exc})") from None
    if secret is None:
        raise ConfigError(f"{p}: holds no secret key (use the .key_secret file)")
    return public, secret


def enroll(public_file: str | Path, enrolled_dir: str | Path, name: str | None = None) -> Path:
    """Copy a sensor's public certificate into the collector's enrolled folder (as
    ``NAME.key``; NAME defaults to the file's stem). Refuses secret files."""
    src = Path(public_file)
    public = load_public(src)
    try:
        _, secret = zmq.auth.load_certificate(src)
    except (OSError, ValueError):  # pragma: no cover - load_public read it already
        secret = None
    if secret is not None:
        raise ConfigError(f"{src}: holds a secret key; enroll the public .key file, never the secret")
    name = _check_name(name or src.name.removesuffix(".key"))
    d = Path(enrolled_dir)
    dst = d / f"{name}.key"
    try:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{name}.key.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)  # atomic: the collector never reads half a file
    except OSError as exc:
        raise ConfigError(f"{d}: cannot enroll {src}: {exc.strerror or exc}") from None
    if load_public(dst) != public:  # pragma: no cover - a copy is a copy
        raise ConfigError(f"{dst}: copy differs from {src}")
    return dst


def revoke(name: str, enrolled_dir: str | Path) -> Path:
    """Remove ``NAME.key`` from the enrolled folder."""
    p = Path(enrolled_dir) / f"{_check_name(name)}.key"
    try:
        p.unlink()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no sensor named {name!r} is enrolled") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot revoke: {exc.strerror or exc}") from None
    return p


def enrolled(enrolled_dir: str | Path) -> dict[bytes, str]:
    """Public key -> name of every enrolled sensor (unreadable files are skipped)."""
    out: dict[bytes, str] = {}
    d = Path(enrolled_dir)
    if not d.is_dir():
        return out
    for f in sorted(d.glob("*.key")):
        try:
            out[load_public(f)] = f.name.removesuffix(".key")
        except ConfigError:
            continue
    return out
