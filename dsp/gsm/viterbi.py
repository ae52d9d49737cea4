"""Batched Viterbi decoding of feed-forward convolutional codes (3GPP TS 45.003 §4.1.3).

The decoder runs one loop over trellis steps; each step updates the path metrics of every
block at once, an array of ``(states, blocks)``. It is generic in the rate ``1/r`` and the
constraint length ``K``; its default is the GSM control-channel code
``G0 = 1 + D^3 + D^4, G1 = 1 + D + D^3 + D^4`` (rate 1/2, K = 5, 16 states).

Conventions
-----------
* Coded bits are interleaved per input bit as :func:`dsp.gsm.coding.conv_encode` sends
  them: ``c(r*k + i)`` is the output of generator ``i`` for input bit ``k``.
* **Soft values** are log-likelihood ratios ``log P(bit = 0) / P(bit = 1)`` up to any
  positive scale: **positive means bit 0**, negative bit 1, zero no information (an erased
  or punctured bit). Hard bits map to soft values by :func:`hard_to_soft` (0 -> +1, 1 -> -1).
* The encoder starts in the all-zero state. A *terminated* block ends with ``K - 1`` zero
  tail bits, so the decoder also ends in state 0; the tail bits are part of the output.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rfhunt.errors import DspError

#: Generators of the GSM rate-1/2, K = 5 code (same values as ``dsp.gsm.coding.CONV_G0/G1``).
GSM_GENERATORS = (0b11001, 0b11011)

#: Blocks decoded per inner batch: keeps the per-step working set in cache.
_CHUNK = 1024
#: Larger soft magnitudes are scaled down (per block) to this.
_MAX_SOFT = 1e6
#: Re-centre the path metrics every this many steps (float32 precision).
_RENORM = 64


def hard_to_soft(bits: np.ndarray) -> np.ndarray:
    """Hard bits 0/1 to soft values +1/-1 (``float32``), the decoder's convention.

    Parameters
    ----------
    bits : numpy.ndarray
        Bits 0/1 of any shape.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of the same shape: ``1 - 2 * bits``.
    """
    b = np.asarray(bits)
    if b.size and (b.dtype.kind not in "biu" or b.min() < 0 or b.max() > 1):
        raise DspError("bits must hold only 0 and 1")
    return (1.0 - 2.0 * b.astype(np.float32)).astype(np.float32)


@lru_cache(maxsize=16)
def _trellis(generators: tuple[int, ...]) -> tuple[int, np.ndarray]:
    """Constraint length and the branch signs of every butterfly edge.

    States hold the last ``K - 1`` input bits, the newest in the top bit. The successor of
    state ``s`` on input ``u`` is ``(u << (K-2)) | (s >> 1)``, so the two predecessors of
    ``s' = u * 2^(K-2) + j`` are ``2j`` and ``2j + 1``. Returns ``signs`` of shape
    ``(2 * 2^(K-1), r)``: row ``(u * 2^(K-2) + j) * 2 + b`` holds ``+1 / -1`` for the output
    bits 0 / 1 on the edge from ``2j + b`` on input ``u``.
    """
    k_len = max(g.bit_length() for g in generators)
    half = 1 << (k_len - 2)
    rows = []
    for u in (0, 1):
        for j in range(half):
            for b in (0, 1):
                s = 2 * j + b
                # Register bit d = u(k - d): u itself, then the state's bits from the top down.
                reg = u | sum(((s >> (k_len - 1 - d)) & 1) << d for d in range(1, k_len))
                rows.append([1 - 2 * ((g & reg).bit_count() & 1) for g in generators])
    return k_len, np.array(rows, dtype=np.float32)


def _check_generators(generators: tuple[int, ...]) -> tuple[int, ...]:
    gens = tuple(int(g) for g in generators)
    if len(gens) < 1 or any(g < 1 for g in gens):
        raise DspError(f"generators must be positive polynomials, got {generators!r}")
    if not 3 <= max(g.bit_length() for g in gens) <= 9:
        raise DspError(f"generators must have constraint length 3..9, got {generators!r}")
    return gens


def viterbi_decode(soft: np.ndarray, generators: tuple[int, ...] = GSM_GENERATORS, *,
                   terminated: bool = True) -> np.ndarray:
    """Maximum-likelihood decoding of blocks of a feed-forward convolutional code.

    Parameters
    ----------
    soft : numpy.ndarray
        Soft coded bits, shape ``(n_blocks, r * N)`` (or ``(r * N,)`` for one block), real
        (float or signed integer): positive = bit 0, negative = bit 1, magnitude =
        confidence (e.g. an LLR, or +-1 from :func:`hard_to_soft`). Must be finite.
    generators : tuple of int
        Generator polynomials, bit ``k`` = coefficient of ``D**k`` (default: GSM's
        ``G0 = 1 + D^3 + D^4``, ``G1 = 1 + D + D^3 + D^4``).
    terminated : bool
        The block ends with ``K - 1`` zero tail bits (the path is forced into state 0).
        Otherwise the best final state is taken.

    Returns
    -------
    numpy.ndarray
        ``uint8`` decoded bits, shape ``(n_blocks, N)`` (``(N,)`` for one block), tail bits
        included.
    """
    gens = _check_generators(tuple(generators))
    r = len(gens)
    x = np.asarray(soft)
    if x.dtype.kind not in "fi":
        raise DspError(f"soft must be a float or signed-integer array (positive = bit 0), "
                       f"got dtype {x.dtype}; convert hard bits with hard_to_soft()")
    if x.ndim not in (1, 2) or x.shape[-1] % r or x.shape[-1] == 0:
        raise DspError(f"soft must have shape (n_blocks, {r} * N) with N >= 1, got {x.shape}")
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if not np.all(np.isfinite(x)):
        raise DspError("soft must hold only finite values")
    # Decisions do not change under a positive scale per block; keep float32 sums far
    # from overflow.
    peak = np.max(np.abs(x), axis=1, keepdims=True) if x.size else np.zeros((x.shape[0], 1))
    if np.any(peak > _MAX_SOFT):
        x = x * np.where(peak > _MAX_SOFT, _MAX_SOFT / np.maximum(peak, _MAX_SOFT), 1.0)
    x = x.astype(np.float32, copy=False)
    k_len, signs = _trellis(gens)
    n_steps = x.shape[1] // r
    out = np.empty((x.shape[0], n_steps), dtype=np.uint8)
    for i0 in range(0, x.shape[0], _CHUNK):
        out[i0:i0 + _CHUNK] = _decode_chunk(x[i0:i0 + _CHUNK], signs, k_len, r, terminated)
    return out[0] if single else out


def viterbi_decode_hard(bits: np.ndarray, generators: tuple[int, ...] = GSM_GENERATORS, *,
                        terminated: bool = True) -> np.ndarray:
    """:func:`viterbi_decode` of hard coded bits 0/1 (Hamming-distance decoding).

    Parameters
    ----------
    bits : numpy.ndarray
        Hard coded bits 0/1, shape ``(n_blocks, r * N)`` or ``(r * N,)``.
    generators, terminated
        As for :func:`viterbi_decode`.

    Returns
    -------
    numpy.ndarray
        ``uint8`` decoded bits, shape ``(n_blocks, N)`` or ``(N,)``.
    """
    return viterbi_decode(hard_to_soft(bits), generators, terminated=terminated)


def _decode_chunk(x: np.ndarray, signs: np.ndarray, k_len: int, r: int,
                  terminated: bool) -> np.ndarray:
    n = x.shape[0]
    n_steps = x.shape[1] // r
    n_states = 1 << (k_len - 1)
    half = n_states // 2
    # Branch metrics of every edge of every step, blocks last: (steps, 2 * states, n).
    xt = np.ascontiguousarray(x.reshape(n, n_steps, r).transpose(1, 2, 0))
    branch = (signs @ xt).reshape(n_steps, 2, half, 2, n)
    metric = np.full((2, half, n), -np.inf, dtype=np.float32)  # state u * half + j
    metric[0, 0] = 0.0
    cand = np.empty((2, half, 2, n), dtype=np.float32)  # (u, j, b, n)
    c0, c1 = cand[:, :, 0], cand[:, :, 1]
    prev = metric.reshape(1, half, 2, n)  # predecessor 2j + b
    # decisions[k, s', i]: predecessor of s' was 2j + 1 (the oldest bit was 1).
    decisions = np.empty((n_steps, 2, half, n), dtype=bool)
    for k in range(n_steps):
        np.add(prev, branch[k], out=cand)
        np.greater(c1, c0, out=decisions[k])
        np.maximum(c0, c1, out=metric)
        if k % _RENORM == _RENORM - 1:
            metric -= metric.max(axis=(0, 1))
    metric = metric.reshape(n_states, n)
    ar = np.arange(n)
    if terminated:
        state = np.zeros(n, dtype=np.int64)
    else:
        state = np.argmax(metric, axis=0)
    bits = np.empty((n_steps, n), dtype=np.uint8)
    flat = decisions.reshape(n_steps, n_states, n)
    top = k_len - 2
    for k in range(n_steps - 1, -1, -1):
        bits[k] = state >> top
        state = ((state & (half - 1)) << 1) | flat[k, state, ar]
    return bits.T
