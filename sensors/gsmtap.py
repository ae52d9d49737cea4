"""GSMTAP output: decoded GSM frames as UDP datagrams that Wireshark dissects.

The header is libosmocore's GSMTAP version 2 (16 bytes, network byte order)::

    version(1)=2  hdr_len(1)=4 (32-bit words)  type(1)  timeslot(1)
    arfcn(2, bit 15 PCS band, bit 14 uplink)  signal_dbm(1, signed)  snr_db(1, signed)
    frame_number(4)  sub_type(1)  antenna_nr(1)  sub_slot(1)  reserved(1)

followed by the payload (a 23-byte L2 frame for BCCH/CCCH). Wireshark listens for it on UDP
port 4729.
"""

from __future__ import annotations

import math
import socket
import struct
from dataclasses import dataclass

from rfhunt.errors import ConfigError, WireError

GSMTAP_PORT = 4729
GSMTAP_VERSION = 2
GSMTAP_TYPE_UM = 0x01
ARFCN_F_PCS = 0x8000
ARFCN_F_UPLINK = 0x4000
#: GSMTAP channel sub-types (libosmocore gsmtap.h).
CHANNEL_TYPES = {"BCCH": 0x01, "CCCH": 0x02, "RACH": 0x03, "AGCH": 0x04, "PCH": 0x05, "SDCCH": 0x06,
                 "SDCCH4": 0x07, "SDCCH8": 0x08}
_HEADER = struct.Struct("!BBBBHbbIBBBB")


@dataclass(frozen=True)
class GsmtapFrame:
    """One Um-interface frame with the radio facts GSMTAP carries."""

    arfcn: int
    timeslot: int
    fn: int
    channel: str
    payload: bytes
    signal_dbm: float = 0.0
    snr_db: float = 0.0
    uplink: bool = False
    pcs: bool = False
    sub_slot: int = 0


def _clamp_s8(v: float) -> int:
    return 0 if not math.isfinite(v) else max(-128, min(127, int(round(v))))


def encode_gsmtap(frame: GsmtapFrame) -> bytes:
    """The GSMTAP v2 datagram of one frame.

    Raises
    ------
    WireError
        For an ARFCN that does not fit GSMTAP's 14 bits, a timeslot outside 0-7, a frame
        number outside the hyperframe, or an unknown channel type.
    """
    if not 0 <= frame.arfcn <= 0x3FFF:
        raise WireError(f"GSMTAP: ARFCN {frame.arfcn} does not fit 14 bits")
    if not 0 <= frame.timeslot <= 7:
        raise WireError(f"GSMTAP: timeslot {frame.timeslot} is not 0-7")
    if not 0 <= frame.fn < 2048 * 26 * 51:
        raise WireError(f"GSMTAP: frame number {frame.fn} is outside the hyperframe")
    try:
        sub_type = CHANNEL_TYPES[frame.channel]
    except KeyError:
        raise WireError(f"GSMTAP: unknown channel type {frame.channel!r}; "
                        f"known: {', '.join(CHANNEL_TYPES)}") from None
    arfcn = frame.arfcn | (ARFCN_F_PCS if frame.pcs else 0) | (ARFCN_F_UPLINK if frame.uplink else 0)
    header = _HEADER.pack(GSMTAP_VERSION, _HEADER.size // 4, GSMTAP_TYPE_UM, frame.timeslot, arfcn,
                          _clamp_s8(frame.signal_dbm), _clamp_s8(frame.snr_db), frame.fn, sub_type, 0,
                          frame.sub_slot, 0)
    return header + bytes(frame.payload)


def decode_gsmtap(datagram: bytes) -> GsmtapFrame:
    """Parse a GSMTAP v2 Um datagram (the inverse of :func:`encode_gsmtap`)."""
    if len(datagram) < _HEADER.size:
        raise WireError(f"GSMTAP datagram of {len(datagram)} bytes is shorter than its 16-byte header")
    (version, hdr_words, gtype, ts, arfcn, sig, snr, fn, sub_type, _ant, sub_slot, _res) = \
        _HEADER.unpack_from(datagram)
    if version != GSMTAP_VERSION or gtype != GSMTAP_TYPE_UM:
        raise WireError(f"GSMTAP version {version} type {gtype}: only version 2 Um frames are read")
    if hdr_words * 4 < _HEADER.size or hdr_words * 4 > len(datagram):
        raise WireError(f"GSMTAP header length {hdr_words * 4} bytes is inconsistent")
    names = {v: k for k, v in CHANNEL_TYPES.items()}
    if sub_type not in names:
        raise WireError(f"GSMTAP channel sub-type {sub_type:#x} is not one rfhunt reads")
    return GsmtapFrame(arfcn & 0x3FFF, ts, fn, names[sub_type], datagram[hdr_words * 4:], sig, snr,
                       bool(arfcn & ARFCN_F_UPLINK), bool(arfcn & ARFCN_F_PCS), sub_slot)


class GsmtapSender:
    """Sends frames as GSMTAP datagrams to ``host:port`` (Wireshark on the same or another host).

    Parameters
    ----------
    address : str
        ``HOST`` or ``HOST:PORT`` (port 4729 by default).
    """

    def __init__(self, address: str = "127.0.0.1") -> None:
        host, sep, port = address.rpartition(":")
        if not sep:
            host, port = address, str(GSMTAP_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"GSMTAP destination {address!r} is not HOST or HOST:PORT")
        self.destination = (host, int(port))
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sent = 0

    def send(self, frame: GsmtapFrame) -> None:
        self.sock.sendto(encode_gsmtap(frame), self.destination)
        self.sent += 1

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "GsmtapSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
