"""GSM channel coding building blocks (3GPP TS 45.003), vectorized over blocks.

Bits are ``uint8`` 0/1 arrays whose last axis is the bit index in transmission order;
leading axes index blocks (bursts, frames). Polynomials are given as the integer whose
bit ``k`` is the coefficient of ``D**k``.
"""

from __future__ import annotations

import numpy as np

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
