"""GSM burst builders (3GPP TS 45.002 §5.2), vectorized over bursts.

Every builder returns ``uint8`` bits of shape ``(n_bursts, 148)`` (access bursts
``(n_bursts, 88)``), guard period excluded; burst bit 0 is sent first.
"""

from __future__ import annotations

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.coding import SCH_CODED_BITS, sch_encode
from rfhunt.errors import DspError


def _count(n_bursts: int) -> int:
    if isinstance(n_bursts, bool) or not isinstance(n_bursts, (int, np.integer)) or n_bursts < 0:
        raise DspError(f"n_bursts must be a non-negative integer, got {n_bursts!r}")
    return int(n_bursts)


def fcch_bursts(n_bursts: int = 1) -> np.ndarray:
    """Frequency-correction bursts: 148 zero bits (a pure tone at +67.7 kHz once modulated)."""
    return np.zeros((_count(n_bursts), c.BURST_BITS), dtype=np.uint8)


def dummy_bursts(n_bursts: int = 1) -> np.ndarray:
    """C0 dummy bursts (TS 45.002 §5.2.6)."""
    return np.tile(c.DUMMY_BURST_BITS, (_count(n_bursts), 1))


def sch_bursts(fn: np.ndarray | int, bsic: np.ndarray | int) -> np.ndarray:
    """Synchronization bursts: 3 tail + 39 coded + 64 extended training + 39 coded + 3 tail.

    Parameters
    ----------
    fn : int or numpy.ndarray
        TDMA frame numbers the bursts are sent in (the reduced FN is derived from them).
    bsic : int or numpy.ndarray
        Base station identity code(s) 0..63, broadcast against ``fn``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``(n_bursts, 148)``.
    """
    coded = sch_encode(bsic, fn).reshape(-1, SCH_CODED_BITS)
    n = coded.shape[0]
    out = np.zeros((n, c.BURST_BITS), dtype=np.uint8)
    half = SCH_CODED_BITS // 2
    out[:, 3:3 + half] = coded[:, :half]
    out[:, 42:106] = c.SCH_TRAINING_BITS
    out[:, 106:106 + half] = coded[:, half:]
    return out


def normal_bursts(data: np.ndarray, tsc: np.ndarray | int, *,
                  stealing: np.ndarray | int = 1) -> np.ndarray:
    """Normal bursts: 3 tail + 57 data + hl + 26 training + hu + 57 data + 3 tail.

    Parameters
    ----------
    data : numpy.ndarray
        The 114 (encrypted) data bits of each burst, shape ``(n_bursts, 114)``; the first 57
        go before the training sequence.
    tsc : int or numpy.ndarray
        Training sequence code(s) 0..7, one or one per burst.
    stealing : int or numpy.ndarray
        Value of both stealing flags (1 on control channels, 0 on traffic); one or per burst.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``(n_bursts, 148)``.
    """
    d = np.asarray(data)
    if d.ndim != 2 or d.shape[1] != c.NORMAL_DATA_BITS:
        raise DspError(f"data must have shape (n_bursts, 114), got {d.shape}")
    if d.size and (d.dtype.kind not in "biu" or d.min() < 0 or d.max() > 1):
        raise DspError("data must hold only 0 and 1")
    n = d.shape[0]
    t = np.broadcast_to(np.asarray(tsc, dtype=np.int64), (n,))
    if t.size and (t.min() < 0 or t.max() > 7):
        raise DspError(f"tsc must be in 0..7, got {t.min()}..{t.max()}")
    s = np.broadcast_to(np.asarray(stealing, dtype=np.int64), (n,))
    if s.size and (s.min() < 0 or s.max() > 1):
        raise DspError("stealing must be 0 or 1")
    out = np.zeros((n, c.BURST_BITS), dtype=np.uint8)
    out[:, 3:60] = d[:, :57]
    out[:, 60] = s
    out[:, 61:87] = c.TSC_BITS[t]
    out[:, 87] = s
    out[:, 88:145] = d[:, 57:]
    return out


def access_bursts(data: np.ndarray) -> np.ndarray:
    """Access (RACH) bursts: 8 extended tail + 41 synch + 36 coded + 3 tail = 88 bits.

    The 68.25-symbol guard period that follows is not included.

    Parameters
    ----------
    data : numpy.ndarray
        The 36 coded bits of each burst, shape ``(n_bursts, 36)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``(n_bursts, 88)``.
    """
    d = np.asarray(data)
    if d.ndim != 2 or d.shape[1] != 36:
        raise DspError(f"data must have shape (n_bursts, 36), got {d.shape}")
    if d.size and (d.dtype.kind not in "biu" or d.min() < 0 or d.max() > 1):
        raise DspError("data must hold only 0 and 1")
    out = np.zeros((d.shape[0], c.ACCESS_BURST_BITS), dtype=np.uint8)
    out[:, :8] = c.ACCESS_EXT_TAIL_BITS
    out[:, 8:49] = c.ACCESS_SYNC_BITS
    out[:, 49:85] = d
    return out
