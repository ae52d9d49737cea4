"""Channel coding of the xCCH control channels (BCCH, CCCH, SDCCH, SACCH; TS 45.003 §4.1).

One 23-octet L2 frame -> 184 bits -> Fire code (+40 parity, +4 tail) -> rate-1/2
convolutional code (456 bits) -> block-diagonal interleaving over 4 bursts of 114 bits ->
normal bursts (TS 45.003 §4.1.5 mapping, stealing flags 1). Everything is vectorized over
blocks; soft values follow :mod:`dsp.gsm.viterbi` (positive = bit 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dsp.gsm import constants as c
from dsp.gsm.bursts import normal_bursts
from dsp.gsm.coding import (XCCH_CODED_BITS, XCCH_INFO_BITS, bits_to_octets, conv_encode,
                            fire_check, fire_encode, octets_to_bits)
from dsp.gsm.viterbi import viterbi_decode
from rfhunt.errors import DspError

#: Octets of an xCCH L2 frame.
XCCH_FRAME_OCTETS = XCCH_INFO_BITS // 8
#: Bursts an xCCH block is interleaved over.
XCCH_BURSTS = 4
#: Positions of the 114 data bits in a 148-bit normal burst: 57 after the 3 tail bits, 57
#: after the training sequence and both stealing flags (TS 45.002 §5.2.3).
NORMAL_DATA_INDEX = np.r_[c.TAIL_BITS:c.TAIL_BITS + 57,
                          c.BURST_BITS - c.TAIL_BITS - 57:c.BURST_BITS - c.TAIL_BITS]
NORMAL_DATA_INDEX.flags.writeable = False
#: Positions of the stealing flags hl and hu in a normal burst.
STEALING_INDEX = np.array([c.TAIL_BITS + 57, c.BURST_BITS - c.TAIL_BITS - 57 - 1])
STEALING_INDEX.flags.writeable = False


def _interleave_index() -> np.ndarray:
    # TS 45.003 §4.1.4: coded bit k goes to burst k mod 4, position
    # 2 * ((49 k) mod 57) + ((k mod 8) div 4) of that burst's 114 data bits.
    k = np.arange(XCCH_CODED_BITS)
    flat = (k % 4) * c.NORMAL_DATA_BITS + 2 * ((49 * k) % 57) + (k % 8) // 4
    flat.flags.writeable = False
    return flat


#: Flat position ``burst * 114 + bit`` of each coded bit ``c(k)``, ``k = 0..455``.
XCCH_INTERLEAVE_INDEX = _interleave_index()
#: Coded bit carried at each flat burst position (the inverse permutation).
XCCH_DEINTERLEAVE_INDEX = np.argsort(XCCH_INTERLEAVE_INDEX)
XCCH_DEINTERLEAVE_INDEX.flags.writeable = False


class XcchDecoded(NamedTuple):
    """Decoded xCCH blocks; unpacks as ``frames, ok, n_bit_errors``.

    Attributes
    ----------
    frames : numpy.ndarray
        ``uint8`` L2 frames, shape ``(n, 23)`` (meaningful only where ``ok``).
    ok : numpy.ndarray
        ``bool`` ``(n,)``: the Fire code check passed.
    n_bit_errors : numpy.ndarray
        ``int64`` ``(n,)``: coded bits whose hard decision differs from the re-encoded block.
    """

    frames: np.ndarray
    ok: np.ndarray
    n_bit_errors: np.ndarray


def burst_data_bits(bursts: np.ndarray) -> np.ndarray:
    """The 114 data bits (hard or soft) of normal bursts, tails, flags and training excluded.

    The inverse is :func:`dsp.gsm.bursts.normal_bursts` (``normal_bursts(data, tsc)``).

    Parameters
    ----------
    bursts : numpy.ndarray
        Burst bits or soft values, shape ``(..., 148)``.

    Returns
    -------
    numpy.ndarray
        Same dtype, shape ``(..., 114)``: ``e(0..56)`` then ``e(59..115)`` of TS 45.003 §4.1.5.
    """
    b = np.asarray(bursts)
    if b.ndim == 0 or b.shape[-1] != c.BURST_BITS:
        raise DspError(f"bursts must have {c.BURST_BITS} bits on the last axis, got shape {b.shape}")
    return b[..., NORMAL_DATA_INDEX]


def stealing_bits(bursts: np.ndarray) -> np.ndarray:
    """The stealing flags ``(hl, hu)`` of normal bursts, shape ``(..., 2)``."""
    b = np.asarray(bursts)
    if b.ndim == 0 or b.shape[-1] != c.BURST_BITS:
        raise DspError(f"bursts must have {c.BURST_BITS} bits on the last axis, got shape {b.shape}")
    return b[..., STEALING_INDEX]


def xcch_interleave(coded: np.ndarray) -> np.ndarray:
    """Spread 456-bit coded blocks over 4 bursts of 114 bits (TS 45.003 §4.1.4).

    Parameters
    ----------
    coded : numpy.ndarray
        Coded bits ``c(0..455)`` (hard or soft), shape ``(..., 456)``.

    Returns
    -------
    numpy.ndarray
        Same dtype, shape ``(..., 4, 114)``: the data bits of the block's 4 bursts in order.
    """
    x = np.asarray(coded)
    if x.ndim == 0 or x.shape[-1] != XCCH_CODED_BITS:
        raise DspError(f"coded must have {XCCH_CODED_BITS} bits on the last axis, got shape {x.shape}")
    return x[..., XCCH_DEINTERLEAVE_INDEX].reshape(x.shape[:-1] + (XCCH_BURSTS, c.NORMAL_DATA_BITS))


def xcch_deinterleave(burst_bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`xcch_interleave`: ``(..., 4, 114)`` -> ``(..., 456)``."""
    x = np.asarray(burst_bits)
    if x.ndim < 2 or x.shape[-2:] != (XCCH_BURSTS, c.NORMAL_DATA_BITS):
        raise DspError(f"burst_bits must have shape (..., 4, 114), got {x.shape}")
    flat = x.reshape(x.shape[:-2] + (XCCH_CODED_BITS,))
    return flat[..., XCCH_INTERLEAVE_INDEX]


def _frames(frames: np.ndarray) -> np.ndarray:
    f = np.asarray(frames)
    if f.ndim != 2 or f.shape[1] != XCCH_FRAME_OCTETS or f.dtype != np.uint8:
        raise DspError(f"frames must be a uint8 array of shape (n, 23), got {f.dtype} {f.shape}")
    return f


def xcch_encode(frames: np.ndarray) -> np.ndarray:
    """Channel-code L2 frames into the data bits of 4 bursts each.

    Parameters
    ----------
    frames : numpy.ndarray
        ``uint8`` L2 frames, shape ``(n, 23)``; octet ``i`` bit ``j`` (``j = 0`` least
        significant) is information bit ``d(8 i + j)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``(n, 4, 114)``: the data bits of the block's bursts
        (:func:`dsp.gsm.bursts.normal_bursts` frames each).
    """
    f = _frames(frames)
    return xcch_interleave(conv_encode(fire_encode(octets_to_bits(f))))


def xcch_bursts(frames: np.ndarray, tsc: int) -> np.ndarray:
    """Normal bursts (stealing flags 1) of L2 frames: ``(n * 4, 148)``, blocks in order."""
    data = xcch_encode(frames).reshape(-1, c.NORMAL_DATA_BITS)
    return normal_bursts(data, tsc, stealing=1)


def xcch_decode(burst_bits_soft: np.ndarray) -> XcchDecoded:
    """Decode xCCH blocks: deinterleave, Viterbi, Fire check, L2 octets.

    Parameters
    ----------
    burst_bits_soft : numpy.ndarray
        Soft data bits of each block's 4 bursts, shape ``(n, 4, 114)``, float or signed
        integer, positive = bit 0 (hard bits: :func:`dsp.gsm.viterbi.hard_to_soft`).

    Returns
    -------
    XcchDecoded
        ``(frames (n, 23) uint8, ok (n,) bool, n_bit_errors (n,) int64)``.
    """
    x = np.asarray(burst_bits_soft)
    if x.dtype.kind not in "fi":
        raise DspError(f"burst_bits_soft must be soft values (float or signed integer, positive = "
                       f"bit 0), got dtype {x.dtype}; convert hard bits with hard_to_soft()")
    if x.ndim != 3 or x.shape[1:] != (XCCH_BURSTS, c.NORMAL_DATA_BITS):
        raise DspError(f"burst_bits_soft must have shape (n, 4, 114), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DspError("burst_bits_soft must hold only finite values")
    coded = xcch_deinterleave(x)
    u = viterbi_decode(coded)
    ok = fire_check(u)
    errors = np.count_nonzero(conv_encode(u) != (coded < 0), axis=1)
    return XcchDecoded(bits_to_octets(u[:, :XCCH_INFO_BITS]), ok, errors)
