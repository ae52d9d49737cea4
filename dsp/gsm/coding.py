"""GSM channel coding building blocks (3GPP TS 45.003), vectorized over blocks.

Bits are ``uint8`` 0/1 arrays whose last axis is the bit index in transmission order;
leading axes index blocks (bursts, frames). Polynomials are given as the integer whose
bit ``k`` is the coefficient of ``D**k``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dsp.gsm.viterbi import viterbi_decode
from rfhunt.errors import DspError

#: SCH parity generator D^10 + D^8 + D^6 + D^5 + D^4 + D^2 + 1 (TS 45.003 §4.7).
SCH_PARITY_POLY = (1 << 10) | (1 << 8) | (1 << 6) | (1 << 5) | (1 << 4) | (1 << 2) | 1
#: Rate-1/2 convolutional code of TS 45.003 §4.1.3: G0 = 1 + D^3 + D^4, G1 = 1 + D + D^3 + D^4.
CONV_G0 = 1 | (1 << 3) | (1 << 4)
CONV_G1 = 1 | (1 << 1) | (1 << 3) | (1 << 4)
#: Information bits of the SCH: BSIC (6) + reduced frame number (19).
SCH_INFO_BITS = 25
#: Coded bits of the SCH (2 x (25 + 10 + 4)).
SCH_CODED_BITS = 78
#: Fire code of the xCCH (TS 45.003 §4.1.2): g(D) = (D^23 + 1)(D^17 + D^3 + 1)
#: = D^40 + D^26 + D^23 + D^17 + D^3 + 1.
FIRE_POLY = (1 << 40) | (1 << 26) | (1 << 23) | (1 << 17) | (1 << 3) | 1
#: Information bits of an xCCH block (one 23-octet L2 frame).
XCCH_INFO_BITS = 184
#: Parity bits of the Fire code.
FIRE_PARITY_BITS = 40
#: Tail bits closing every convolutionally coded block (K - 1 of the K = 5 code).
CONV_TAIL_BITS = 4
#: Bits into the convolutional encoder for an xCCH block (184 + 40 + 4).
XCCH_UNCODED_BITS = XCCH_INFO_BITS + FIRE_PARITY_BITS + CONV_TAIL_BITS
#: Coded bits of an xCCH block (2 x 228).
XCCH_CODED_BITS = 2 * XCCH_UNCODED_BITS
#: Positions of the 78 coded bits in a 148-bit synchronization burst (39 either side of the
#: extended training sequence).
SCH_BURST_INDEX = np.r_[3:42, 106:145]
SCH_BURST_INDEX.flags.writeable = False


def _as_bits(bits: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim == 0:
        raise DspError(f"{name} must be an array of bits, got a scalar")
    if arr.size and (arr.dtype.kind not in "biu" or arr.min() < 0 or arr.max() > 1):
        raise DspError(f"{name} must hold only 0 and 1")
    return arr.astype(np.uint8, copy=False)


def int_to_bits(values: np.ndarray | int, n_bits: int) -> np.ndarray:
    """Unsigned integers to their ``n_bits`` binary digits, most significant first.

    Returns an array of shape ``values.shape + (n_bits,)``.
    """
    v = np.asarray(values, dtype=np.int64)
    shifts = np.arange(n_bits - 1, -1, -1, dtype=np.int64)
    return ((v[..., None] >> shifts) & 1).astype(np.uint8)


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`int_to_bits` along the last axis (at most 63 bits)."""
    b = np.asarray(bits, dtype=np.int64)
    weights = np.int64(1) << np.arange(b.shape[-1] - 1, -1, -1, dtype=np.int64)
    return b @ weights


def parity_matrix(generator_poly: int, n_info: int) -> np.ndarray:
    """Generator of a systematic cyclic block code, as a matrix over GF(2).

    For information bits ``d(0)..d(K-1)`` read as ``d(0) D^(K+P-1) + ... + d(K-1) D^P``
    (TS 45.003 convention), the parity bits ``p(0)..p(P-1)`` are the coefficients of
    ``D^(P-1)..D^0`` of the remainder modulo the generator. ``d @ M % 2`` gives them.

    Parameters
    ----------
    generator_poly : int
        Generator polynomial, bit ``k`` = coefficient of ``D**k``; its degree is ``P``.
    n_info : int
        Number of information bits ``K``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` matrix of shape ``(n_info, P)``.
    """
    if generator_poly < 2:
        raise DspError(f"generator_poly must have degree >= 1, got {generator_poly}")
    if n_info < 1:
        raise DspError(f"n_info must be positive, got {n_info}")
    n_par = generator_poly.bit_length() - 1
    # Remainders of D^(P+j) for j = 0..K-1, built incrementally (LFSR).
    rems = np.zeros(n_info, dtype=np.int64)
    mask = (1 << n_par) - 1
    low = generator_poly & mask
    r = low  # D^P mod g
    for j in range(n_info):
        rems[j] = r
        r <<= 1
        if r >> n_par:
            r = (r & mask) ^ low
    # Row k of the matrix belongs to d(k) = coefficient of D^(P + K-1-k).
    return int_to_bits(rems[::-1], n_par)


def block_parity(bits: np.ndarray, generator_poly: int, *, invert: bool = False) -> np.ndarray:
    """Parity bits of a systematic cyclic code for each block (last axis = information bits).

    Parameters
    ----------
    bits : numpy.ndarray
        Information bits, shape ``(..., K)``.
    generator_poly : int
        Generator polynomial (bit ``k`` = coefficient of ``D**k``).
    invert : bool
        Complement the parity bits (the SCH and most GSM control codes send the remainder
        inverted, so that an all-zero block does not pass the check).

    Returns
    -------
    numpy.ndarray
        ``uint8`` parity bits, shape ``(..., P)``.
    """
    b = _as_bits(bits, "bits")
    m = parity_matrix(generator_poly, b.shape[-1])
    par = (b.astype(np.int64) @ m.astype(np.int64)) & 1
    if invert:
        par ^= 1
    return par.astype(np.uint8)


def conv_encode(bits: np.ndarray, generators: tuple[int, ...] = (CONV_G0, CONV_G1)) -> np.ndarray:
    """Feed-forward convolutional encoder starting from the all-zero state.

    Output bit ``c(n*k + j)`` is input bit ``k`` filtered by ``generators[j]``, so for the
    GSM rate-1/2 code ``c(2k) = u(k)+u(k-3)+u(k-4)`` and ``c(2k+1) = u(k)+u(k-1)+u(k-3)+u(k-4)``.
    Append the tail bits to ``bits`` yourself.

    Parameters
    ----------
    bits : numpy.ndarray
        Input bits, shape ``(..., K)``.
    generators : tuple of int
        Generator polynomials (bit ``k`` = coefficient of ``D**k``).

    Returns
    -------
    numpy.ndarray
        ``uint8`` coded bits, shape ``(..., len(generators) * K)``.
    """
    u = _as_bits(bits, "bits")
    if not generators or any(g < 1 for g in generators):
        raise DspError(f"generators must be positive polynomials, got {generators!r}")
    k = u.shape[-1]
    out = np.zeros(u.shape[:-1] + (k, len(generators)), dtype=np.uint8)
    for j, g in enumerate(generators):
        for delay in range(g.bit_length()):
            if (g >> delay) & 1:
                if delay == 0:
                    out[..., :, j] ^= u
                elif delay < k:
                    out[..., delay:, j] ^= u[..., :-delay]
    return out.reshape(u.shape[:-1] + (k * len(generators),))


def reduced_frame_number(fn: np.ndarray | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T1, T2 and T3' of the SCH for TDMA frame numbers (TS 45.002 §3.3.2.2.1, 44.018 §10.5.2.38).

    ``T1 = FN div 1326`` (11 bits), ``T2 = FN mod 26`` (5 bits),
    ``T3' = (FN mod 51 - 1) div 10`` (3 bits; exact on SCH frames).
    """
    f = np.asarray(fn, dtype=np.int64) % (2048 * 26 * 51)
    return f // (26 * 51), f % 26, (f % 51 - 1) // 10


def sch_info_bits(bsic: np.ndarray | int, fn: np.ndarray | int) -> np.ndarray:
    """The 25 information bits of the SCH: BSIC(6), T1(11), T2(5), T3'(3).

    The 25-bit word ``BSIC|T1|T2|T3'`` (most significant first) fills the SCH information
    octets of TS 44.018 §9.1.30 (three octets and the top bit of a fourth); ``d(0..23)`` are
    those three octets each sent least significant bit first, ``d(24)`` is the low bit of
    T3'. Verified bit for bit against bursts of a live cell.

    Parameters
    ----------
    bsic : int or numpy.ndarray
        Base station identity code 0..63 (NCC * 8 + BCC).
    fn : int or numpy.ndarray
        TDMA frame numbers (broadcast with ``bsic``).

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``broadcast(bsic, fn).shape + (25,)``.
    """
    b = np.asarray(bsic, dtype=np.int64)
    if b.size and (b.min() < 0 or b.max() > 63):
        raise DspError(f"bsic must be in 0..63, got {b.min()}..{b.max()}")
    t1, t2, t3p = reduced_frame_number(fn)
    b, t1, t2, t3p = np.broadcast_arrays(b, t1, t2, t3p)
    word = (b << 19) | (t1 << 8) | (t2 << 3) | t3p
    return _sch_order(int_to_bits(word, SCH_INFO_BITS))


def _sch_order(msb_first: np.ndarray) -> np.ndarray:
    # The word fills three octets plus the top bit of a fourth; each octet goes out
    # least significant bit first, and the lone bit of the fourth octet comes last.
    lead = msb_first[..., :24].reshape(msb_first.shape[:-1] + (3, 8))[..., ::-1]
    return np.concatenate((lead.reshape(msb_first.shape[:-1] + (24,)), msb_first[..., 24:]), axis=-1)


def sch_encode(bsic: np.ndarray | int, fn: np.ndarray | int) -> np.ndarray:
    """Channel-code the SCH (TS 45.003 §4.7): 25 info + 10 inverted parity + 4 tail, rate 1/2.

    Returns
    -------
    numpy.ndarray
        ``uint8`` coded bits ``c(0..77)``, shape ``broadcast(bsic, fn).shape + (78,)``.
    """
    d = sch_info_bits(bsic, fn)
    p = block_parity(d, SCH_PARITY_POLY, invert=True)
    tail = np.zeros(d.shape[:-1] + (4,), dtype=np.uint8)
    return conv_encode(np.concatenate((d, p, tail), axis=-1))


# ---------------------------------------------------------------- xCCH Fire code
_FIRE_MATRIX = parity_matrix(FIRE_POLY, XCCH_INFO_BITS).astype(np.float32)
_SCH_MATRIX = parity_matrix(SCH_PARITY_POLY, SCH_INFO_BITS).astype(np.float32)


def _fast_parity(bits: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    # Sums of at most a few hundred ones are exact in float32, and BLAS does them fast.
    return (np.asarray(bits, dtype=np.float32) @ matrix).astype(np.int64).astype(np.uint8) & 1


def _last_axis(bits: np.ndarray, name: str, sizes: tuple[int, ...]) -> np.ndarray:
    b = _as_bits(bits, name)
    if b.shape[-1] not in sizes:
        want = " or ".join(str(n) for n in sizes)
        raise DspError(f"{name} must have {want} bits on its last axis, got shape {b.shape}")
    return b


def fire_encode(info: np.ndarray) -> np.ndarray:
    """Fire-code xCCH blocks and add the tail (TS 45.003 §4.1.2): ``u = d | p | 0000``.

    The 40 parity bits ``p(0..39)`` are chosen so that ``d(0) D^223 + ... + d(183) D^40 +
    p(0) D^39 + ... + p(39)`` leaves the remainder ``1 + D + ... + D^39`` modulo
    :data:`FIRE_POLY` (the plain remainder, inverted).

    Parameters
    ----------
    info : numpy.ndarray
        Information bits ``d(0..183)``, shape ``(..., 184)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits ``u(0..227)`` for the convolutional encoder, shape ``(..., 228)``.
    """
    d = _last_axis(info, "info", (XCCH_INFO_BITS,))
    p = _fast_parity(d, _FIRE_MATRIX) ^ 1
    tail = np.zeros(d.shape[:-1] + (CONV_TAIL_BITS,), dtype=np.uint8)
    return np.concatenate((d, p, tail), axis=-1)


def fire_check(bits: np.ndarray) -> np.ndarray:
    """Whether xCCH blocks pass the Fire-code check (no error correction is attempted).

    Parameters
    ----------
    bits : numpy.ndarray
        ``d(0..183) | p(0..39)``, shape ``(..., 224)``, or the same followed by the four
        tail bits, ``(..., 228)`` (the tail bits are not checked).

    Returns
    -------
    numpy.ndarray
        ``bool`` array of shape ``bits.shape[:-1]``.
    """
    b = _last_axis(bits, "bits", (XCCH_INFO_BITS + FIRE_PARITY_BITS, XCCH_UNCODED_BITS))
    p = _fast_parity(b[..., :XCCH_INFO_BITS], _FIRE_MATRIX) ^ 1
    return np.all(p == b[..., XCCH_INFO_BITS:XCCH_INFO_BITS + FIRE_PARITY_BITS], axis=-1)


def octets_to_bits(octets: np.ndarray) -> np.ndarray:
    """L2 octets to channel-coding bits: octet ``i`` bit ``j`` (``j = 0`` least significant)
    becomes bit ``8 i + j`` (TS 44.006 bit numbering as TS 45.003 reads it).

    Parameters
    ----------
    octets : numpy.ndarray
        ``uint8`` octets, shape ``(..., n)``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` bits, shape ``(..., 8 n)``.
    """
    o = np.asarray(octets)
    if o.ndim == 0 or o.dtype != np.uint8:
        raise DspError(f"octets must be a uint8 array, got {o.dtype} of shape {o.shape}")
    return np.unpackbits(o, axis=-1, bitorder="little")


def bits_to_octets(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`octets_to_bits` (the last axis must be a multiple of 8)."""
    b = _as_bits(bits, "bits")
    if b.shape[-1] % 8:
        raise DspError(f"bits must have a multiple of 8 bits on its last axis, got shape {b.shape}")
    return np.packbits(b, axis=-1, bitorder="little")


# ---------------------------------------------------------------- SCH decoding
class SchDecoded(NamedTuple):
    """Decoded synchronization bursts (arrays of the input's leading shape).

    Attributes
    ----------
    bsic : numpy.ndarray
        Base station identity code 0..63 (``NCC = bsic >> 3``, ``BCC = bsic & 7``).
    fn : numpy.ndarray
        Full TDMA frame number of the SCH burst, from T1, T2 and T3'.
    ok : numpy.ndarray
        ``bool``: the parity check passed and T2, T3' are in range. Only then are ``bsic``
        and ``fn`` meaningful.
    n_bit_errors : numpy.ndarray
        Coded bits whose hard decision differs from the re-encoded decoded block.
    """

    bsic: np.ndarray
    fn: np.ndarray
    ok: np.ndarray
    n_bit_errors: np.ndarray


def sch_burst_bits(bursts: np.ndarray) -> np.ndarray:
    """The 78 coded bits (hard or soft) of 148-bit synchronization bursts, ``(..., 78)``."""
    b = np.asarray(bursts)
    if b.ndim == 0 or b.shape[-1] != 148:
        raise DspError(f"bursts must have 148 bits on the last axis, got shape {b.shape}")
    return b[..., SCH_BURST_INDEX]


def _soft(values: np.ndarray, name: str, size: int) -> np.ndarray:
    x = np.asarray(values)
    if x.dtype.kind not in "fi":
        raise DspError(f"{name} must be soft values (float or signed integer, positive = bit 0), "
                       f"got dtype {x.dtype}; convert hard bits with hard_to_soft()")
    if x.ndim == 0 or x.shape[-1] != size:
        raise DspError(f"{name} must have {size} values on its last axis, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DspError(f"{name} must hold only finite values")
    return x


def sch_decode(coded_soft: np.ndarray) -> SchDecoded:
    """Decode SCH blocks: Viterbi, parity check, BSIC and frame number (TS 45.003 §4.7).

    Inverts :func:`sch_encode` exactly: ``sch_decode(hard_to_soft(sch_encode(b, fn)))``
    gives ``b`` and ``fn`` for every SCH frame ``fn`` (``fn mod 51`` in 1, 11, 21, 31, 41).

    Parameters
    ----------
    coded_soft : numpy.ndarray
        Soft coded bits ``c(0..77)``, shape ``(..., 78)``: positive = bit 0 (see
        :func:`dsp.gsm.viterbi.hard_to_soft`; :func:`sch_burst_bits` cuts them from a burst).

    Returns
    -------
    SchDecoded
        ``bsic``, ``fn``, ``ok`` and ``n_bit_errors``, each of shape ``coded_soft.shape[:-1]``.
    """
    x = _soft(coded_soft, "coded_soft", SCH_CODED_BITS)
    lead = x.shape[:-1]
    flat = x.reshape(-1, SCH_CODED_BITS)
    u = viterbi_decode(flat)
    d, p = u[:, :SCH_INFO_BITS], u[:, SCH_INFO_BITS:SCH_INFO_BITS + 10]
    parity_ok = np.all((_fast_parity(d, _SCH_MATRIX) ^ 1) == p, axis=1)
    word = bits_to_int(_sch_order(d))  # _sch_order is its own inverse
    bsic = word >> 19
    t1, t2, t3p = (word >> 8) & 0x7FF, (word >> 3) & 0x1F, word & 7
    t3 = 10 * t3p + 1
    fn = 51 * 26 * t1 + 51 * ((t3 - t2) % 26) + t3
    ok = parity_ok & (t2 < 26) & (t3p < 5)
    errors = np.count_nonzero(conv_encode(u) != (flat < 0), axis=1)
    return SchDecoded(bsic.reshape(lead), fn.reshape(lead), ok.reshape(lead), errors.reshape(lead))
