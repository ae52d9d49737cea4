"""Frequency lists of 3GPP TS 44.018 §10.5.2.13: decode and encode every format.

The same bit layouts carry the Cell Channel Description (§10.5.2.1b, SI1), the Neighbour Cell
Description (§10.5.2.22, SI2/SI2bis, with EXT-IND and BA-IND), the Neighbour Cell Description 2
(§10.5.2.22a, SI2ter, with MULTIBAND_REPORTING and BA-IND) and the variable-length Frequency
List IE. The functions here work on the *value* octets of these IEs, the first of which holds
the format identifier:

======================  =======================  =================================================
format                  first octet (bits 8..1)  what it carries (16 value octets)
======================  =======================  =================================================
``bitmap0``             ``00.. bbbb``            any subset of ARFCN 1..124 (ARFCN 0 cannot be sent)
``range1024``           ``10.. 0F ww``           ARFCN 0 by the F0 flag + up to 16 ARFCNs in 1..1023
``range512``            ``10.. 100o``            ORIG-ARFCN + up to 17 ARFCNs within ORIG+1..ORIG+511
``range256``            ``10.. 101o``            ORIG-ARFCN + up to 21 ARFCNs within ORIG+1..ORIG+255
``range128``            ``10.. 110o``            ORIG-ARFCN + up to 28 ARFCNs within ORIG+1..ORIG+127
``variable_bitmap``     ``10.. 111o``            ORIG-ARFCN + any ARFCNs within ORIG+1..ORIG+111
======================  =======================  =================================================

(all arithmetic modulo 1024; ``.`` are bits of the enclosing IE: spare in the Cell Channel
Description, EXT-IND/BA-IND in the Neighbour Cell Description, MULTIBAND_REPORTING/BA-IND in
Description 2, where only bit 8 and bits 4..2 identify the format).

The range formats send the ARFCNs as a binary tree of W(i) values (Annex J): W(1) is the
pivot of the whole set in a circular range, its left subtree (indices 2, 4, 6, ...) holds the
values in the half-range below the pivot, its right subtree (3, 5, 7, ...) those above, each
one bit shorter per tree level. The first W(i) equal to zero ends the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rfhunt.errors import DspError

__all__ = [
    "FORMATS", "FreqListError", "FrequencyList", "NeighbourCellDescription",
    "NeighbourCellDescription2", "can_encode", "choose_format", "decode_cell_channel_description",
    "decode_frequency_list", "decode_neighbour_cell_description",
    "decode_neighbour_cell_description_2", "encode_cell_channel_description",
    "encode_frequency_list", "encode_neighbour_cell_description",
    "encode_neighbour_cell_description_2", "max_arfcns",
]

FORMATS = ("bitmap0", "range1024", "range512", "range256", "range128", "variable_bitmap")
"""Every format of §10.5.2.13, in the order :func:`choose_format` prefers them."""

_RANGE_SIZE = {"range1024": 1024, "range512": 512, "range256": 256, "range128": 128}
_RANGE_ID = {"range512": 0b100, "range256": 0b101, "range128": 0b110, "variable_bitmap": 0b111}
_ID_RANGE = {v: k for k, v in _RANGE_ID.items()}
_N_ARFCN = 1024
_CCD_OCTETS = 16


class FreqListError(DspError):
    """A frequency list is malformed (on decode) or cannot carry the given ARFCNs (on encode)."""


@dataclass(frozen=True)
class FrequencyList:
    """A decoded frequency list.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    arfcns : tuple of int
        The ARFCNs it carries, sorted ascending, without duplicates.
    """

    format: str
    arfcns: tuple[int, ...]

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {"format": self.format, "arfcns": list(self.arfcns)}


@dataclass(frozen=True)
class NeighbourCellDescription:
    """A Neighbour Cell Description (§10.5.2.22): BA list of SI2/SI2bis.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    arfcns : tuple of int
        The BCCH allocation (neighbour ARFCNs), sorted.
    ext_ind : bool
        EXT-IND: True when the IE carries only part of the BA (SI2bis/SI2ter complete it).
    ba_ind : int
        BA-IND (0 or 1), which distinguishes BA lists.
    """

    format: str
    arfcns: tuple[int, ...]
    ext_ind: bool
    ba_ind: int

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {"format": self.format, "arfcns": list(self.arfcns), "ext_ind": self.ext_ind,
                "ba_ind": self.ba_ind}


@dataclass(frozen=True)
class NeighbourCellDescription2:
    """A Neighbour Cell Description 2 (§10.5.2.22a): extended BA list of SI2ter.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    arfcns : tuple of int
        The extended BCCH allocation, sorted.
    multiband_reporting : int
        MULTIBAND_REPORTING (0..3).
    ba_ind : int
        BA-IND (0 or 1).
    """

    format: str
    arfcns: tuple[int, ...]
    multiband_reporting: int
    ba_ind: int

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {"format": self.format, "arfcns": list(self.arfcns),
                "multiband_reporting": self.multiband_reporting, "ba_ind": self.ba_ind}


# --------------------------------------------------------------------------------------------
# bit access

def _get_bits(data: bytes, pos: int, n: int) -> int:
    """The ``n`` bits at bit offset ``pos`` (MSB of ``data[0]`` is offset 0), MSB first."""
    value = 0
    for k in range(pos, pos + n):
        value = (value << 1) | ((data[k >> 3] >> (7 - (k & 7))) & 1)
    return value


def _put_bits(buf: bytearray, pos: int, n: int, value: int) -> None:
    for k in range(n):
        bit = (value >> (n - 1 - k)) & 1
        i = pos + k
        if bit:
            buf[i >> 3] |= 0x80 >> (i & 7)
        else:
            buf[i >> 3] &= ~(0x80 >> (i & 7)) & 0xFF


# --------------------------------------------------------------------------------------------
# W(i) trees (Annex J)

def _depth(index: int) -> int:
    return index.bit_length() - 1


def _w_width(range_size: int, index: int) -> int:
    """Bits of W(index) for a range format: log2(range) at the root, one less per level."""
    return range_size.bit_length() - 1 - _depth(index)


def _w_to_values(w: list[int], range_size: int) -> list[int]:
    """Annex J decoding: the values N(k) in 1..range-1 of the W(1..n) tree (W(n+1) = 0 ended it)."""
    out = []
    for k in range(1, len(w) + 1):
        if w[k - 1] == 0:
            break
        index = k
        j = 1 << _depth(index)
        n = w[index - 1]
        while index > 1:
            modulus = 2 * range_size // j - 1
            if 2 * index < 3 * j:           # left child: values below the parent's pivot
                index -= j // 2
                n = (n + w[index - 1] - range_size // j - 1) % modulus + 1
            else:                            # right child: values above the pivot
                index -= j
                n = (n + w[index - 1] - 1) % modulus + 1
            j //= 2
        out.append(n)
    return out


def _values_to_w(values: list[int], range_size: int) -> list[int]:
    """Annex J encoding: the W(1..n) of ``n`` distinct values in 1..range-1 (local index order)."""
    def subtree(vals: list[int], modulus: int) -> list[int]:
        n = len(vals)
        if n == 0:
            return []
        half = (modulus - 1) // 2
        want_right = (n - 1) // 2            # right subtree: odd local indices 3, 5, ...
        for pivot in vals:
            right = [(v - pivot) % modulus for v in vals if v != pivot
                     and 1 <= (v - pivot) % modulus <= half]
            if len(right) == want_right:
                left = [(v - pivot) % modulus - half for v in vals if v != pivot
                        and (v - pivot) % modulus > half]
                break
        else:  # pragma: no cover - a balanced pivot always exists (Annex J)
            raise FreqListError("no balanced pivot found")
        w_left = subtree(sorted(left), half)
        w_right = subtree(sorted(right), half)
        w = [0] * n
        w[0] = pivot
        for k, value in enumerate(w_left, start=1):
            w[2 * k - 1] = value             # local index 2k
        for k, value in enumerate(w_right, start=1):
            w[2 * k] = value                 # local index 2k + 1
        return w

    return subtree(sorted(values), range_size - 1)


def _w_capacity(range_size: int, n_bits: int) -> int:
    """How many W(i) fit in ``n_bits`` bits."""
    count, used = 0, 0
    while True:
        width = _w_width(range_size, count + 1)
        if width <= 0 or used + width > n_bits:
            return count
        used += width
        count += 1


# --------------------------------------------------------------------------------------------
# decode

def _check_arfcns(arfcns: Iterable[int]) -> list[int]:
    out = set()
    for a in arfcns:
        if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < _N_ARFCN:
            raise FreqListError(f"frequency list: ARFCN {a!r} is not an integer in 0..1023")
        out.add(int(a))
    return sorted(out)


def _format_of(first: int, ignore_bit7: bool, name: str) -> str:
    bit8, bit7 = first >> 7, (first >> 6) & 1
    if ignore_bit7:
        bit7 = 0
    if bit8 == 0:
        if bit7:
            raise FreqListError(f"{name}: octet 1 format identifier 01 is reserved")
        return "bitmap0"
    if bit7:
        raise FreqListError(f"{name}: octet 1 format identifier 11 is reserved")
    if not (first >> 3) & 1:
        return "range1024"
    return _ID_RANGE[(first >> 1) & 0b111]


def decode_frequency_list(value: bytes, *, name: str = "Frequency List",
                          ignore_bit7: bool = False) -> FrequencyList:
    """Decode the value octets of a frequency list in any §10.5.2.13 format.

    Parameters
    ----------
    value : bytes
        The IE's value, starting at the octet holding the format identifier (octet 2 of a
        Cell Channel Description, octet 3 of a Frequency List IE). Bitmap 0 needs 16 octets.
    name : str
        The IE's name, used in error messages.
    ignore_bit7 : bool
        True for a Neighbour Cell Description 2, whose bit 7 of octet 1 is not part of the
        format identifier.

    Returns
    -------
    FrequencyList

    Raises
    ------
    FreqListError
        On an empty value, a reserved format identifier, or a value too short for its format.
    """
    value = bytes(value)
    if not value:
        raise FreqListError(f"{name}: empty, octet 1 (format identifier) missing")
    fmt = _format_of(value[0], ignore_bit7, name)
    if fmt == "bitmap0":
        if len(value) < _CCD_OCTETS:
            raise FreqListError(f"{name}: bit map 0 needs 16 octets, got {len(value)}")
        arfcns = [a for a in range(1, 125)
                  if value[15 - (a - 1) // 8] >> ((a - 1) % 8) & 1]
        return FrequencyList(fmt, tuple(arfcns))
    n_bits = 8 * len(value)
    if fmt == "range1024":
        if len(value) < 2:
            raise FreqListError(f"{name}: range 1024 needs W(1) in octets 1-2, got {len(value)} octet")
        f0 = (value[0] >> 2) & 1
        pos, n_w = 6, _w_capacity(1024, n_bits - 6)
        w = []
        for k in range(1, n_w + 1):
            width = _w_width(1024, k)
            w.append(_get_bits(value, pos, width))
            pos += width
        arfcns = set(_w_to_values(w, 1024))
        if f0:
            arfcns.add(0)
        return FrequencyList(fmt, tuple(sorted(arfcns)))
    if len(value) < 3:
        raise FreqListError(f"{name}: {fmt} needs ORIG-ARFCN in octets 1-3, got {len(value)} octets")
    orig = _get_bits(value, 7, 10)
    pos = 17
    arfcns = {orig}
    if fmt == "variable_bitmap":
        for k in range(1, n_bits - pos + 1):
            if _get_bits(value, pos + k - 1, 1):
                arfcns.add((orig + k) % _N_ARFCN)
        return FrequencyList(fmt, tuple(sorted(arfcns)))
    size = _RANGE_SIZE[fmt]
    n_w = _w_capacity(size, n_bits - pos)
    w = []
    for k in range(1, n_w + 1):
        width = _w_width(size, k)
        w.append(_get_bits(value, pos, width))
        pos += width
    arfcns.update((orig + n) % _N_ARFCN for n in _w_to_values(w, size))
    return FrequencyList(fmt, tuple(sorted(arfcns)))


def decode_cell_channel_description(octets: bytes) -> FrequencyList:
    """Decode a 16-octet Cell Channel Description (§10.5.2.1b), as in SI1.

    Raises
    ------
    FreqListError
        When ``octets`` is not 16 octets long or its format identifier is reserved.
    """
    octets = bytes(octets)
    if len(octets) != _CCD_OCTETS:
        raise FreqListError(f"Cell Channel Description: needs 16 octets, got {len(octets)}")
    return decode_frequency_list(octets, name="Cell Channel Description")


def decode_neighbour_cell_description(octets: bytes) -> NeighbourCellDescription:
    """Decode a 16-octet Neighbour Cell Description (§10.5.2.22), as in SI2 and SI2bis.

    Raises
    ------
    FreqListError
        When ``octets`` is not 16 octets long or its format identifier is reserved.
    """
    octets = bytes(octets)
    if len(octets) != _CCD_OCTETS:
        raise FreqListError(f"Neighbour Cell Description: needs 16 octets, got {len(octets)}")
    fl = decode_frequency_list(octets, name="Neighbour Cell Description")
    return NeighbourCellDescription(fl.format, fl.arfcns, bool(octets[0] >> 5 & 1), octets[0] >> 4 & 1)


def decode_neighbour_cell_description_2(octets: bytes) -> NeighbourCellDescription2:
    """Decode a 16-octet Neighbour Cell Description 2 (§10.5.2.22a), as in SI2ter.

    Raises
    ------
    FreqListError
        When ``octets`` is not 16 octets long or its format identifier is reserved.
    """
    octets = bytes(octets)
    if len(octets) != _CCD_OCTETS:
        raise FreqListError(f"Neighbour Cell Description 2: needs 16 octets, got {len(octets)}")
    fl = decode_frequency_list(octets, name="Neighbour Cell Description 2", ignore_bit7=True)
    return NeighbourCellDescription2(fl.format, fl.arfcns, octets[0] >> 5 & 0b11, octets[0] >> 4 & 1)


# --------------------------------------------------------------------------------------------
# encode

def _orig_candidates(arfcns: list[int], span: int) -> list[int]:
    """ORIG-ARFCNs from which every ARFCN lies within ORIG..ORIG+span (mod 1024)."""
    return [o for o in arfcns if all((a - o) % _N_ARFCN <= span for a in arfcns)]


def max_arfcns(fmt: str, n_octets: int = _CCD_OCTETS) -> int:
    """The most ARFCNs that ``fmt`` can carry in ``n_octets`` value octets.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    n_octets : int
        Value octets (16 for the Cell Channel / Neighbour Cell Descriptions).

    Returns
    -------
    int
        Counting ARFCN 0 (F0) for range 1024 and ORIG-ARFCN for the other range formats.
    """
    if fmt not in FORMATS:
        raise FreqListError(f"frequency list: unknown format {fmt!r}, expected one of {FORMATS}")
    if fmt == "bitmap0":
        return 124
    if fmt == "range1024":
        return 1 + _w_capacity(1024, 8 * n_octets - 6)
    if fmt == "variable_bitmap":
        return 1 + max(0, 8 * n_octets - 17)
    return 1 + _w_capacity(_RANGE_SIZE[fmt], 8 * n_octets - 17)


def can_encode(arfcns: Iterable[int], fmt: str, n_octets: int = _CCD_OCTETS) -> bool:
    """Whether ``fmt`` in ``n_octets`` value octets can carry exactly the set ``arfcns``."""
    arfcns = _check_arfcns(arfcns)
    if fmt not in FORMATS:
        raise FreqListError(f"frequency list: unknown format {fmt!r}, expected one of {FORMATS}")
    if fmt == "bitmap0":
        return n_octets >= _CCD_OCTETS and all(1 <= a <= 124 for a in arfcns)
    if fmt == "range1024":
        return len([a for a in arfcns if a]) <= max_arfcns(fmt, n_octets) - 1
    if not arfcns:
        return False  # ORIG-ARFCN is always one ARFCN of the list
    if len(arfcns) > max_arfcns(fmt, n_octets):
        return False
    span = 8 * n_octets - 17 if fmt == "variable_bitmap" else _RANGE_SIZE[fmt] - 1
    return bool(_orig_candidates(arfcns, span))


def choose_format(arfcns: Iterable[int], n_octets: int = _CCD_OCTETS) -> str:
    """The first format of :data:`FORMATS` that can carry ``arfcns`` in ``n_octets`` octets.

    Raises
    ------
    FreqListError
        When no format can.
    """
    arfcns = _check_arfcns(arfcns)
    for fmt in FORMATS:
        if can_encode(arfcns, fmt, n_octets):
            return fmt
    raise FreqListError(f"frequency list: no format carries these {len(arfcns)} ARFCNs "
                        f"({arfcns[:8]}...) in {n_octets} octets")


def encode_frequency_list(arfcns: Iterable[int], fmt: str | None = None, *,
                          n_octets: int = _CCD_OCTETS) -> bytes:
    """Encode a set of ARFCNs as the value octets of a §10.5.2.13 frequency list.

    Parameters
    ----------
    arfcns : iterable of int
        ARFCNs in 0..1023 (duplicates are merged).
    fmt : str or None
        One of :data:`FORMATS`; None picks one with :func:`choose_format`.
    n_octets : int
        Length of the value (16 for the Cell Channel / Neighbour Cell Descriptions). Bits
        7..5 of octet 1 are left 0 for the caller's IE-specific flags.

    Returns
    -------
    bytes
        ``n_octets`` octets; unused W(i) and bits are 0.

    Raises
    ------
    FreqListError
        When the format cannot carry the set, or an ARFCN is out of range.
    """
    arfcns = _check_arfcns(arfcns)
    if n_octets < 3 or n_octets > 255:
        raise FreqListError(f"frequency list: length of {n_octets} octets is outside 3..255")
    if fmt is None:
        fmt = choose_format(arfcns, n_octets)
    if not can_encode(arfcns, fmt, n_octets):
        raise FreqListError(f"frequency list: format {fmt} cannot carry {len(arfcns)} ARFCNs "
                            f"{arfcns[:8]}{'...' if len(arfcns) > 8 else ''} in {n_octets} octets")
    buf = bytearray(n_octets)
    if fmt == "bitmap0":
        for a in arfcns:
            buf[15 - (a - 1) // 8] |= 1 << ((a - 1) % 8)
        return bytes(buf)
    buf[0] = 0x80
    if fmt == "range1024":
        if arfcns and arfcns[0] == 0:
            buf[0] |= 0x04
        w = _values_to_w([a for a in arfcns if a], 1024)
        pos = 6
        for k, value in enumerate(w, start=1):
            width = _w_width(1024, k)
            _put_bits(buf, pos, width, value)
            pos += width
        return bytes(buf)
    buf[0] |= _RANGE_ID[fmt] << 1
    span = 8 * n_octets - 17 if fmt == "variable_bitmap" else _RANGE_SIZE[fmt] - 1
    orig = _orig_candidates(arfcns, span)[0]
    _put_bits(buf, 7, 10, orig)
    offsets = [(a - orig) % _N_ARFCN for a in arfcns if a != orig]
    if fmt == "variable_bitmap":
        for k in offsets:
            _put_bits(buf, 17 + k - 1, 1, 1)
        return bytes(buf)
    size = _RANGE_SIZE[fmt]
    pos = 17
    for k, value in enumerate(_values_to_w(offsets, size), start=1):
        width = _w_width(size, k)
        _put_bits(buf, pos, width, value)
        pos += width
    return bytes(buf)


def encode_cell_channel_description(arfcns: Iterable[int], fmt: str | None = None) -> bytes:
    """Encode a 16-octet Cell Channel Description (§10.5.2.1b) for SI1.

    Parameters
    ----------
    arfcns : iterable of int
        The cell allocation.
    fmt : str or None
        One of :data:`FORMATS`; None picks one.

    Returns
    -------
    bytes
        16 octets.
    """
    return encode_frequency_list(arfcns, fmt, n_octets=_CCD_OCTETS)


def _check_flag(value: int, lo: int, hi: int, name: str) -> int:
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise FreqListError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def encode_neighbour_cell_description(arfcns: Iterable[int], fmt: str | None = None, *,
                                      ext_ind: bool = False, ba_ind: int = 0) -> bytes:
    """Encode a 16-octet Neighbour Cell Description (§10.5.2.22) for SI2/SI2bis.

    Parameters
    ----------
    arfcns : iterable of int
        Neighbour BCCH ARFCNs.
    fmt : str or None
        One of :data:`FORMATS`; None picks one.
    ext_ind : bool
        EXT-IND: the list is continued in SI2bis/SI2ter.
    ba_ind : int
        BA-IND, 0 or 1.

    Returns
    -------
    bytes
        16 octets.
    """
    ext = _check_flag(ext_ind, 0, 1, "Neighbour Cell Description EXT-IND")
    ba = _check_flag(ba_ind, 0, 1, "Neighbour Cell Description BA-IND")
    buf = bytearray(encode_frequency_list(arfcns, fmt, n_octets=_CCD_OCTETS))
    buf[0] |= ext << 5 | ba << 4
    return bytes(buf)


def encode_neighbour_cell_description_2(arfcns: Iterable[int], fmt: str | None = None, *,
                                        multiband_reporting: int = 0, ba_ind: int = 0) -> bytes:
    """Encode a 16-octet Neighbour Cell Description 2 (§10.5.2.22a) for SI2ter.

    Parameters
    ----------
    arfcns : iterable of int
        Extended BCCH allocation.
    fmt : str or None
        One of :data:`FORMATS`; None picks one.
    multiband_reporting : int
        MULTIBAND_REPORTING, 0..3.
    ba_ind : int
        BA-IND, 0 or 1.

    Returns
    -------
    bytes
        16 octets.
    """
    mb = _check_flag(multiband_reporting, 0, 3, "Neighbour Cell Description 2 MULTIBAND_REPORTING")
    ba = _check_flag(ba_ind, 0, 1, "Neighbour Cell Description 2 BA-IND")
    buf = bytearray(encode_frequency_list(arfcns, fmt, n_octets=_CCD_OCTETS))
    buf[0] = (buf[0] & 0x8F) | mb << 5 | ba << 4
    return bytes(buf)
