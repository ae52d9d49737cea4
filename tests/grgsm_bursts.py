"""Reader of gr-gsm ``burst_file_sink`` files, shared by the GSM tests.

A record is a serialized GNU Radio PMT pair whose blob is a 16-byte GSMTAP v2 header followed
by the 148 hard bits of one burst.
"""

from __future__ import annotations

import bz2
import struct
from pathlib import Path

import numpy as np

#: GSMTAP burst sub-types (``hdr[12]``) that gr-gsm writes.
GSMTAP_BURST_FCCH = 1
GSMTAP_BURST_SCH = 4
GSMTAP_BURST_NORMAL = 6
GSMTAP_BURST_DUMMY = 7


def _pmt(buf: bytes, pos: int):
    """Deserialize one GNU Radio PMT at ``pos``: returns (value, next position).

    Covers the tags a burst_file_sink writes: null, pair, symbol, int32, double, uint64,
    int64, dict and u8 uniform vectors.
    """
    tag = buf[pos]
    pos += 1
    if tag == 0x06:  # PST_NULL
        return None, pos
    if tag == 0x07:  # PST_PAIR
        car, pos = _pmt(buf, pos)
        cdr, pos = _pmt(buf, pos)
        return (car, cdr), pos
    if tag == 0x09:  # PST_DICT: a pair of (key . value) and the rest
        first, pos = _pmt(buf, pos)
        rest, pos = _pmt(buf, pos)
        return ("dict", first, rest), pos
    if tag == 0x02:  # PST_SYMBOL
        (n,) = struct.unpack_from(">H", buf, pos)
        return buf[pos + 2:pos + 2 + n].decode(), pos + 2 + n
    if tag == 0x03:
        return struct.unpack_from(">i", buf, pos)[0], pos + 4
    if tag == 0x04:
        return struct.unpack_from(">d", buf, pos)[0], pos + 8
    if tag in (0x0B, 0x0D):
        return struct.unpack_from(">Q" if tag == 0x0B else ">q", buf, pos)[0], pos + 8
    if tag == 0x0A:  # PST_UNIFORM_VECTOR: type, u32 length, u8 npad, pad, data
        utype = buf[pos]
        (n,) = struct.unpack_from(">I", buf, pos + 1)
        npad = buf[pos + 5]
        start = pos + 6 + npad
        if utype != 0x00:  # UVI_U8
            raise ValueError(f"uniform vector type {utype} not supported")
        return np.frombuffer(buf, np.uint8, n, start), start + n
    raise ValueError(f"unknown PMT tag {tag:#x} at {pos - 1}")


def read_bursts(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fn, tn, gsmtap sub_type, bits[n, 148]) of every record, duplicates removed.

    Records are returned sorted by (FN, TN); a (FN, TN) seen twice keeps its first record.
    ``.bz2`` files are decompressed.
    """
    raw = Path(path).read_bytes()
    buf = bz2.decompress(raw) if str(path).endswith(".bz2") else raw
    fns, tns, kinds, bits = [], [], [], []
    pos = 0
    while pos < len(buf):
        (_, blob), pos = _pmt(buf, pos)
        hdr = bytes(blob[:16])
        version, hdr_words, _type, tn = hdr[:4]
        assert version == 2 and hdr_words == 4, "not a GSMTAP v2 header"
        fns.append(struct.unpack_from(">I", hdr, 8)[0])
        tns.append(tn)
        kinds.append(hdr[12])
        bits.append(blob[16:16 + 148])
    fn, tn, kind, b = np.array(fns, np.int64), np.array(tns, np.int64), np.array(kinds), np.array(bits)
    _, first = np.unique(fn * 8 + tn, return_index=True)
    return fn[first], tn[first], kind[first], b[first]
