"""Frequency lists of TS 44.018 §10.5.2.13: every format decodes real IEs and round-trips."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.gsm.freqlist import (
    FORMATS,
    FreqListError,
    FrequencyList,
    can_encode,
    choose_format,
    decode_cell_channel_description,
    decode_frequency_list,
    decode_neighbour_cell_description,
    decode_neighbour_cell_description_2,
    encode_cell_channel_description,
    encode_frequency_list,
    encode_neighbour_cell_description,
    encode_neighbour_cell_description_2,
    max_arfcns,
)
from rfhunt.errors import DspError

_SPAN = {"range512": 511, "range256": 255, "range128": 127, "variable_bitmap": 111}


# -------------------------------------------------------------------------------------------
# IEs from a live Vodafone DE cell (ARFCN 725), cross-checked with Wireshark

def test_real_si1_cell_channel_description_variable_bitmap():
    fl = decode_cell_channel_description(bytes.fromhex("8f6a8000000000000000000000000000"))
    assert fl == FrequencyList("variable_bitmap", (725,))


def test_real_si2_neighbour_cell_description():
    ncd = decode_neighbour_cell_description(bytes.fromhex("8f6d1810800000000000000000000000"))
    assert ncd.format == "variable_bitmap"
    assert ncd.arfcns == (730, 733, 734, 741, 746)
    assert (ncd.ext_ind, ncd.ba_ind) == (False, 0)


def test_real_si2ter_neighbour_cell_description_2_bitmap0():
    ncd = decode_neighbour_cell_description_2(bytes.fromhex("60000000000004155010000000000aa8"))
    assert ncd.format == "bitmap0"
    assert ncd.arfcns == (4, 6, 8, 10, 12, 53, 61, 63, 65, 67, 69, 75)
    assert (ncd.multiband_reporting, ncd.ba_ind) == (3, 0)


# -------------------------------------------------------------------------------------------
# property tests: any set a format can carry round-trips

@st.composite
def carried_sets(draw, fmt, n_octets=16):
    """A set of ARFCNs that ``fmt`` can carry in ``n_octets``, up to its maximum count."""
    cap = max_arfcns(fmt, n_octets)
    if fmt == "bitmap0":
        return draw(st.sets(st.integers(1, 124), max_size=cap))
    if fmt == "range1024":
        rest = draw(st.sets(st.integers(1, 1023), max_size=cap - 1))
        return rest | ({0} if draw(st.booleans()) else set())
    span = 8 * n_octets - 17 if fmt == "variable_bitmap" else _SPAN[fmt]
    orig = draw(st.integers(0, 1023))
    offsets = draw(st.sets(st.integers(1, span), max_size=min(cap - 1, span)))
    return {orig} | {(orig + k) % 1024 for k in offsets}


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip_16_octets(fmt, data):
    arfcns = data.draw(carried_sets(fmt))
    octets = encode_frequency_list(arfcns, fmt)
    assert len(octets) == 16
    assert decode_frequency_list(octets) == FrequencyList(fmt, tuple(sorted(arfcns)))


@pytest.mark.parametrize("fmt", ["range1024", "range512", "range256", "range128", "variable_bitmap"])
@settings(max_examples=60, deadline=None)
@given(data=st.data(), n_octets=st.integers(3, 130))
def test_round_trip_variable_length_frequency_list(fmt, data, n_octets):
    arfcns = data.draw(carried_sets(fmt, n_octets))
    octets = encode_frequency_list(arfcns, fmt, n_octets=n_octets)
    assert len(octets) == n_octets
    assert decode_frequency_list(octets).arfcns == tuple(sorted(arfcns))


@pytest.mark.parametrize("fmt", FORMATS)
def test_maximum_counts_round_trip(fmt):
    expected = {"bitmap0": 124, "range1024": 17, "range512": 18, "range256": 22, "range128": 29,
                "variable_bitmap": 112}[fmt]
    assert max_arfcns(fmt) == expected
    if fmt == "bitmap0":
        arfcns = set(range(1, 125))
    elif fmt == "range1024":
        arfcns = {0} | set(range(1, 1024, 64))
    else:
        orig = 1000   # wraps past 1023
        arfcns = {orig} | {(orig + k) % 1024 for k in range(1, _SPAN[fmt] + 1)}
        arfcns = set(sorted(arfcns, key=lambda a: (a - orig) % 1024)[:expected])
    assert len(arfcns) == expected
    assert decode_frequency_list(encode_frequency_list(arfcns, fmt)).arfcns == tuple(sorted(arfcns))
    if fmt != "bitmap0":
        extra = 5 if fmt == "range1024" else (1000 + _SPAN[fmt] + (fmt == "variable_bitmap")) % 1024
        assert extra not in arfcns
        assert not can_encode(arfcns | {extra}, fmt)
        with pytest.raises(FreqListError, match="cannot carry"):
            encode_frequency_list(arfcns | {extra}, fmt)


@pytest.mark.parametrize("fmt", ["bitmap0", "range1024"])
def test_empty_set(fmt):
    octets = encode_frequency_list([], fmt)
    assert decode_frequency_list(octets) == FrequencyList(fmt, ())


def test_empty_set_needs_a_format_without_orig():
    assert not can_encode([], "range512")
    assert choose_format([]) == "bitmap0"


@pytest.mark.parametrize("fmt", ["range1024", "range512", "range256", "range128", "variable_bitmap"])
def test_arfcn_zero(fmt):
    for arfcns in ([0], [0, 1], [0, 100], [1023, 0]):
        octets = encode_frequency_list(arfcns, fmt)
        assert decode_frequency_list(octets).arfcns == tuple(sorted(set(arfcns)))


def test_bitmap0_cannot_carry_arfcn_0_or_above_124():
    assert not can_encode([0], "bitmap0")
    assert not can_encode([125], "bitmap0")
    with pytest.raises(FreqListError):
        encode_frequency_list([0, 5], "bitmap0")


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 1023), max_size=17))
def test_choose_format_carries_any_set_of_17_with_arfcn_0(arfcns):
    nonzero = arfcns - {0}
    if len(nonzero) > 16:
        arfcns = set(sorted(nonzero)[:16])
    octets = encode_cell_channel_description(arfcns)
    assert decode_cell_channel_description(octets).arfcns == tuple(sorted(arfcns))


@settings(max_examples=100, deadline=None)
@given(st.sets(st.integers(0, 1023), max_size=16), st.booleans(), st.integers(0, 1))
def test_neighbour_cell_description_flags(arfcns, ext_ind, ba_ind):
    octets = encode_neighbour_cell_description(arfcns, ext_ind=ext_ind, ba_ind=ba_ind)
    ncd = decode_neighbour_cell_description(octets)
    assert (ncd.arfcns, ncd.ext_ind, ncd.ba_ind) == (tuple(sorted(arfcns)), ext_ind, ba_ind)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), mb=st.integers(0, 3), ba=st.integers(0, 1))
def test_neighbour_cell_description_2_every_format(fmt, data, mb, ba):
    arfcns = data.draw(carried_sets(fmt))
    octets = encode_neighbour_cell_description_2(arfcns, fmt, multiband_reporting=mb, ba_ind=ba)
    ncd = decode_neighbour_cell_description_2(octets)
    assert (ncd.format, ncd.arfcns, ncd.multiband_reporting, ncd.ba_ind) == (
        fmt, tuple(sorted(arfcns)), mb, ba)


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=40))
def test_garbage_decodes_or_raises_freqlist_error(octets):
    try:
        fl = decode_frequency_list(octets)
    except FreqListError:
        return
    assert all(0 <= a < 1024 for a in fl.arfcns)
    assert list(fl.arfcns) == sorted(set(fl.arfcns))


def test_errors_name_the_ie_and_octet():
    with pytest.raises(FreqListError, match="Cell Channel Description: needs 16 octets"):
        decode_cell_channel_description(b"\x00" * 15)
    with pytest.raises(FreqListError, match="octet 1 format identifier 01 is reserved"):
        decode_cell_channel_description(b"\x40" + b"\x00" * 15)
    with pytest.raises(FreqListError, match="bit map 0 needs 16 octets"):
        decode_frequency_list(b"\x00" * 4)
    with pytest.raises(FreqListError, match="ORIG-ARFCN"):
        decode_frequency_list(b"\x8e\x00")
    with pytest.raises(FreqListError, match="ARFCN 1024"):
        encode_frequency_list([1024])
    with pytest.raises(FreqListError, match="unknown format"):
        encode_frequency_list([1], "range2048")
    assert issubclass(FreqListError, DspError)
    with pytest.raises(FreqListError, match="no format carries"):
        choose_format(range(0, 1024, 7))
