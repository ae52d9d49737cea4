"""RDS baseband coding (IEC 62106 / EN 50067): blocks, groups and the data-bit stream.

A group is 4 blocks of 26 bits: a 16-bit information word followed by a 10-bit checkword
= (word * x^10 mod g(x)) XOR the offset word of the block's position (A, B, C or C', D),
g(x) = x^10 + x^8 + x^7 + x^5 + x^4 + x^3 + 1. Blocks are handled as integers whose most
significant of 26 bits is sent first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rfhunt.errors import DspError

#: Data-bit rate, bit/s (57 kHz / 48).
RDS_BIT_RATE_HZ = 1187.5
#: Generator polynomial of the checkword, bit k = coefficient of x^k.
RDS_POLY = 0b10110111001
#: Offset words (IEC 62106 annex A).
OFFSETS = {"A": 0x0FC, "B": 0x198, "C": 0x168, "C'": 0x350, "D": 0x1B4}
BLOCK_BITS = 26
GROUP_BITS = 104
#: AF code meaning "no alternative frequencies" and the filler code.
AF_NONE = 224
AF_FILLER = 205
#: Characters of a radiotext (2A groups carry 4 each).
RT_CHARS = 64


@dataclass(frozen=True)
class RdsConfig:
    """What a station broadcasts on RDS.

    Attributes
    ----------
    pi : int
        Programme identification, 16 bits.
    ps : str
        Programme service name, exactly 8 characters (Latin-1).
    pty : int
        Programme type 0..31.
    rt : str or None
        Radiotext, up to 64 characters; ``None`` sends no 2A groups.
    tp, ta, ms : bool
        Traffic programme, traffic announcement, music (True) / speech (False).
    """

    pi: int
    ps: str
    pty: int = 0
    rt: str | None = None
    tp: bool = False
    ta: bool = False
    ms: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.pi, bool) or not isinstance(self.pi, int) or not 0 <= self.pi <= 0xFFFF:
            raise DspError(f"pi must be a 16-bit integer, got {self.pi!r}")
        if not isinstance(self.ps, str) or len(self.ps) != 8 or not _latin1(self.ps):
            raise DspError(f"ps must be 8 Latin-1 characters, got {self.ps!r}")
        if isinstance(self.pty, bool) or not isinstance(self.pty, int) or not 0 <= self.pty <= 31:
            raise DspError(f"pty must be an integer in 0..31, got {self.pty!r}")
        if self.rt is not None and (not isinstance(self.rt, str) or len(self.rt) > RT_CHARS
                                    or not _latin1(self.rt)):
            raise DspError(f"rt must be at most 64 Latin-1 characters or None, got {self.rt!r:.80}")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _remainder(values: np.ndarray, n_bits: int) -> np.ndarray:
    """(value * x^10) mod g(x) for n_bits-bit integers, vectorized."""
    r = np.zeros(values.shape, dtype=np.int64)
    for k in range(n_bits - 1, -1, -1):
        r = (r << 1) | ((values >> k) & 1)
        r = np.where(r >> 10 & 1, r ^ RDS_POLY, r)
    for _ in range(10):
        r <<= 1
        r = np.where(r >> 10 & 1, r ^ RDS_POLY, r)
    return r


def checkword(info: np.ndarray | int) -> np.ndarray:
    """The 10-bit CRC (before the offset) of 16-bit information words."""
    return _remainder(np.asarray(info, dtype=np.int64), 16)


def encode_block(info: np.ndarray | int, offset: str) -> np.ndarray:
    """26-bit blocks: info << 10 | (checkword XOR offset word)."""
    if offset not in OFFSETS:
        raise DspError(f"offset must be one of {sorted(OFFSETS)}, got {offset!r}")
    v = np.asarray(info, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() > 0xFFFF):
        raise DspError("info words must be 16-bit")
    return (v << 10) | (checkword(v) ^ OFFSETS[offset])


def rds_syndrome(block26: np.ndarray | int) -> np.ndarray:
    """Syndrome of 26-bit blocks: the block polynomial modulo g(x).

    For an error-free block it equals the offset word of its position (see :data:`OFFSETS`),
    so a receiver (or a test) identifies A, B, C, C' and D blocks by it.
    """
    v = np.asarray(block26, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << BLOCK_BITS):
        raise DspError("block26 must hold 26-bit non-negative integers")
    r = np.zeros(v.shape, dtype=np.int64)
    for k in range(BLOCK_BITS - 1, -1, -1):
        r = (r << 1) | ((v >> k) & 1)
        r = np.where(r >> 10 & 1, r ^ RDS_POLY, r)
    return r


def group_blocks(pi: int, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Version-A groups (offsets A, B, C, D) from info words, shape ``(n, 4)`` of blocks."""
    b, c, d = np.broadcast_arrays(np.asarray(b, np.int64), np.asarray(c, np.int64), np.asarray(d, np.int64))
    a = np.full(b.shape, pi, dtype=np.int64)
    return np.stack([encode_block(a, "A"), encode_block(b, "B"), encode_block(c, "C"),
                     encode_block(d, "D")], axis=-1)


def _block_b(cfg: RdsConfig, group_type: int, tail5: np.ndarray) -> np.ndarray:
    """Block B of a version-A group: type (4 bits), B0 = 0, TP, PTY (5), then 5 group bits."""
    return (group_type << 12) | (int(cfg.tp) << 10) | (cfg.pty << 5) | tail5


def _chars(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("latin-1"), dtype=np.uint8).astype(np.int64)


def groups_0a(cfg: RdsConfig) -> np.ndarray:
    """The four 0A groups carrying PS segments 0..3 (AF: none), shape ``(4, 4)`` blocks."""
    seg = np.arange(4, dtype=np.int64)
    ps = _chars(cfg.ps)
    # Decoder-identification bit d3..d0 sent in segments 0..3; all 0 (mono, not compressed).
    b = _block_b(cfg, 0, (int(cfg.ta) << 4) | (int(cfg.ms) << 3) | seg)
    return group_blocks(cfg.pi, b, (AF_NONE << 8) | AF_FILLER, (ps[2 * seg] << 8) | ps[2 * seg + 1])


def groups_2a(cfg: RdsConfig) -> np.ndarray:
    """2A radiotext groups (A/B flag 0), one per 4 characters, shape ``(n, 4)`` blocks.

    A text shorter than 64 characters ends with a carriage return (0x0D), padded with spaces
    to a whole segment.
    """
    if cfg.rt is None:
        return np.zeros((0, 4), dtype=np.int64)
    text = cfg.rt if len(cfg.rt) == RT_CHARS else cfg.rt + "\r"
    text += " " * (-len(text) % 4)
    ch = _chars(text).reshape(-1, 4)
    seg = np.arange(ch.shape[0], dtype=np.int64)
    b = _block_b(cfg, 2, seg)
    return group_blocks(cfg.pi, b, (ch[:, 0] << 8) | ch[:, 1], (ch[:, 2] << 8) | ch[:, 3])


def group_cycle(cfg: RdsConfig) -> np.ndarray:
    """The repeating group sequence: the four 0A groups, then one 2A group, round after round.

    Returns
    -------
    numpy.ndarray
        int64 blocks, shape ``(n_groups, 4)``; without radiotext just the four 0A groups.
    """
    ps = groups_0a(cfg)
    rt = groups_2a(cfg)
    if rt.shape[0] == 0:
        return ps
    rounds = [np.concatenate((ps, rt[k:k + 1])) for k in range(rt.shape[0])]
    return np.concatenate(rounds)


def blocks_to_bits(blocks: np.ndarray) -> np.ndarray:
    """26-bit blocks to bits (most significant first), shape ``blocks.shape[:-1] + (26 * n,)``."""
    b = np.asarray(blocks, dtype=np.int64)
    bits = (b[..., None] >> np.arange(BLOCK_BITS - 1, -1, -1)) & 1
    return bits.reshape(b.shape[:-1] + (-1,)).astype(np.uint8)


def rds_bits(cfg: RdsConfig, bit_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Data bits and differentially encoded bits at absolute bit indices.

    The group cycle repeats forever from bit index 0 (a station that has been on air since
    the epoch). Differential encoding ``e_k = d_k XOR e_(k-1)`` with ``e_(-1) = 0`` is
    evaluated in closed form from the parity of the cycle, so any index is O(1).

    Parameters
    ----------
    cfg : RdsConfig
        Station data.
    bit_index : numpy.ndarray
        int64 bit numbers ``floor(t * 1187.5)``; may be negative (the cycle extends back).

    Returns
    -------
    data, diff : numpy.ndarray
        uint8 data bits and transmitted (differential) bits.
    """
    stream = blocks_to_bits(group_cycle(cfg)).reshape(-1)
    period = stream.size
    parity = np.cumsum(stream, dtype=np.int64) & 1
    k = np.asarray(bit_index, dtype=np.int64)
    rounds, pos = np.divmod(k, period)
    diff = (rounds * int(parity[-1]) + parity[pos]) & 1
    return stream[pos], diff.astype(np.uint8)
