"""GSM control-channel coding and decoding: Fire code, Viterbi, interleaving, xCCH, SCH.

The decoders are checked against a live cell (Vodafone DE, ARFCN 725): the bursts gr-gsm
demodulated from it and the BCCH/CCCH frames gr-gsm decodes from them
(/work/shared/data/gsm/vf725/).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.gsm import constants as c
from dsp.gsm.bursts import normal_bursts, sch_bursts
from dsp.gsm.coding import (CONV_G0, CONV_G1, FIRE_POLY, SCH_BURST_INDEX, bits_to_octets,
                            block_parity, conv_encode, fire_check, fire_encode, octets_to_bits,
                            sch_burst_bits, sch_decode, sch_encode)
from dsp.gsm.viterbi import GSM_GENERATORS, hard_to_soft, viterbi_decode, viterbi_decode_hard
from dsp.gsm.xcch import (NORMAL_DATA_INDEX, STEALING_INDEX, burst_data_bits, stealing_bits,
                          xcch_bursts, xcch_decode, xcch_deinterleave, xcch_encode,
                          xcch_interleave)
from rfhunt.errors import DspError
from tests.grgsm_bursts import read_bursts
from tests.shared_data import DATA_DIR, requires

DATA = DATA_DIR / "gsm" / "vf725"
BURSTS_FILE = DATA / "vf_call6_a725_d174_g5_Kc1EF00BAB3BAC7002.bursts.bz2"
EXPECTED_BCCH = DATA / "expected_grgsm_bcch_ts0.txt"
#: From the data README/truth: the original receiver produced garbage from this FN on.
GARBAGE_FROM_FN = 862395
#: FN mod 51 of the first burst of each BCCH/CCCH block on timeslot 0 (non-combined).
BLOCK_STARTS = (2, 6, 12, 16, 22, 26, 32, 36, 42, 46)
HYPERFRAME_MULTIFRAMES = c.HYPERFRAME // 51

frames_st = st.lists(st.binary(min_size=23, max_size=23), min_size=1, max_size=8).map(
    lambda fs: np.frombuffer(b"".join(fs), np.uint8).reshape(-1, 23))


def _random_info(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    u = rng.integers(0, 2, (n, k + 4), dtype=np.uint8)
    u[:, -4:] = 0
    return u


# ---------------------------------------------------------------- golden: live cell
@pytest.fixture(scope="module")
def live_ts0():
    fn, tn, kind, bits = read_bursts(BURSTS_FILE)
    ts0 = tn == 0
    return fn[ts0], kind[ts0], bits[ts0]


def _expected_frames() -> dict[int, bytes]:
    out = {}
    for line in EXPECTED_BCCH.read_text().splitlines():
        head, payload = line.split(":", 1)
        out[int(head.split()[0])] = bytes.fromhex(payload.replace(" ", ""))
    return out


def _blocks(fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start FN of every complete 4-burst block and the burst indices of each."""
    pos = {int(f): i for i, f in enumerate(fn)}
    starts = [int(f) for f in fn if f % 51 in BLOCK_STARTS and all(int(f) + j in pos for j in range(4))]
    return np.array(starts), np.array([[pos[f + j] for j in range(4)] for f in starts])


@requires(BURSTS_FILE)
@requires(EXPECTED_BCCH)
def test_xcch_decode_reproduces_grgsm_on_live_cell(live_ts0):
    fn, _, bits = live_ts0
    start, idx = _blocks(fn)
    assert start.size == 312  # every block of the recording, garbage at the end included
    frames, ok, n_err = xcch_decode(hard_to_soft(burst_data_bits(bits[idx])))
    got = {int(f): bytes(fr) for f, fr, o in zip(start, frames, ok) if o}
    expected = _expected_frames()
    assert len(expected) == 293
    assert got == expected  # every frame gr-gsm decodes, same FN and bytes, and no other
    clean = start < GARBAGE_FROM_FN
    assert ok[clean].all() and not ok[~clean].any()
    assert np.all(n_err[clean] == 0)  # gr-gsm's hard bits of a strong cell: error-free
    assert np.all(n_err[~clean] > 40)


@requires(BURSTS_FILE)
@requires(EXPECTED_BCCH)
def test_xcch_encode_reproduces_live_bursts(live_ts0):
    fn, _, bits = live_ts0
    expected = _expected_frames()
    start = np.array(sorted(expected))
    frames = np.frombuffer(b"".join(expected[f] for f in start), np.uint8).reshape(-1, 23)
    pos = {int(f): i for i, f in enumerate(fn)}
    idx = np.array([[pos[int(f) + j] for j in range(4)] for f in start]).ravel()
    np.testing.assert_array_equal(xcch_bursts(frames, 0), bits[idx])


@requires(BURSTS_FILE)
def test_sch_decode_live_cell(live_ts0):
    fn, _, bits = live_ts0
    sch = np.isin(fn % 51, c.SCH_FRAMES)
    res = sch_decode(hard_to_soft(sch_burst_bits(bits[sch])))
    clean = fn[sch] < GARBAGE_FROM_FN
    assert clean.sum() == 146
    assert res.ok[clean].all() and not res.ok[~clean].any()
    assert np.all(res.bsic[clean] == 48)  # NCC 6, BCC 0
    np.testing.assert_array_equal(res.fn[clean], fn[sch][clean])
    assert np.all(res.n_bit_errors[clean] == 0)


# ---------------------------------------------------------------- Fire code
def test_fire_poly_is_the_product():
    a, b = (1 << 23) | 1, (1 << 17) | (1 << 3) | 1
    prod = 0
    for k in range(b.bit_length()):
        if (b >> k) & 1:
            prod ^= a << k
    assert FIRE_POLY == prod


def _poly_mod(bits: np.ndarray, poly: int) -> int:
    reg = 0
    for bit in bits:
        reg = (reg << 1) | int(bit)
        if reg >> (poly.bit_length() - 1):
            reg ^= poly
    return reg


def test_fire_encode_remainder_is_all_ones():
    # TS 45.003 §4.1.2: the whole 224-bit word divided by g(D) leaves 1 + D + ... + D^39.
    u = fire_encode(np.random.default_rng(1).integers(0, 2, (5, 184), dtype=np.uint8))
    assert u.shape == (5, 228) and not u[:, 224:].any()
    for row in u:
        assert _poly_mod(row[:224], FIRE_POLY) == (1 << 40) - 1
    np.testing.assert_array_equal(u[:, 184:224], block_parity(u[:, :184], FIRE_POLY, invert=True))


def test_fire_check_detects_every_single_and_double_error():
    u = fire_encode(np.random.default_rng(2).integers(0, 2, 184, dtype=np.uint8))[:224]
    assert fire_check(u)
    single = np.tile(u, (224, 1)) ^ np.eye(224, dtype=np.uint8)
    assert not fire_check(single).any()
    i, j = np.triu_indices(224, 1)
    double = np.tile(u, (i.size, 1))
    double[np.arange(i.size), i] ^= 1
    double[np.arange(i.size), j] ^= 1
    assert not fire_check(double).any()  # all 24,976 pairs


@settings(max_examples=60, deadline=None)
@given(frames=frames_st, data=st.data())
def test_fire_round_trip_and_burst_errors(frames, data):
    u = fire_encode(octets_to_bits(frames))
    assert fire_check(u).all() and fire_check(u[:, :224]).all()
    # A degree-40 cyclic code detects every burst of errors no longer than 40 bits.
    length = data.draw(st.integers(1, 40))
    start = data.draw(st.integers(0, 224 - length))
    inner = max(length - 2, 0)
    pattern = data.draw(st.lists(st.integers(0, 1), min_size=inner, max_size=inner))
    err = np.zeros(228, np.uint8)
    err[start] = err[start + length - 1] = 1
    err[start + 1:start + 1 + inner] = pattern
    assert not fire_check(u ^ err).any()


def test_octet_bit_order():
    np.testing.assert_array_equal(octets_to_bits(np.array([0x15, 0x80], np.uint8)),
                                  [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    x = np.arange(46, dtype=np.uint8).reshape(2, 23)
    np.testing.assert_array_equal(bits_to_octets(octets_to_bits(x)), x)


# ---------------------------------------------------------------- Viterbi
def test_viterbi_generators_are_gsm():
    assert GSM_GENERATORS == (CONV_G0, CONV_G1)


@settings(max_examples=60, deadline=None)
@given(n_blocks=st.integers(1, 5), n_info=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_viterbi_inverts_conv_encode(n_blocks, n_info, seed):
    u = _random_info(np.random.default_rng(seed), n_blocks, n_info)
    coded = conv_encode(u)
    np.testing.assert_array_equal(viterbi_decode(hard_to_soft(coded)), u)
    np.testing.assert_array_equal(viterbi_decode_hard(coded), u)
    np.testing.assert_array_equal(viterbi_decode(hard_to_soft(coded), terminated=False), u)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_viterbi_corrects_sparse_errors(seed, data):
    u = _random_info(np.random.default_rng(seed), 1, 224)
    coded = conv_encode(u)[0]
    gaps = data.draw(st.lists(st.integers(10, 140), min_size=1, max_size=3))
    first = data.draw(st.integers(0, 455 - sum(gaps)))
    where = first + np.concatenate(([0], np.cumsum(gaps)))[:len(gaps)]
    coded[where] ^= 1
    np.testing.assert_array_equal(viterbi_decode_hard(coded), u[0])


def test_viterbi_uses_soft_reliability():
    rng = np.random.default_rng(5)
    u = _random_info(rng, 200, 224)
    soft = hard_to_soft(conv_encode(u)) * 2.0
    # Flip a burst of 8 adjacent bits but with little confidence; hard decoding cannot fix
    # such a burst, soft decoding can since the untouched bits outweigh them.
    soft[:, 100:108] = -0.1 * soft[:, 100:108]
    assert np.any(viterbi_decode_hard((soft < 0).astype(np.uint8)) != u)
    np.testing.assert_array_equal(viterbi_decode(soft), u)
    # Erasures (zeros, e.g. punctured bits) cost nothing when they are sparse.
    erased = hard_to_soft(conv_encode(u))
    erased[:, ::7] = 0
    np.testing.assert_array_equal(viterbi_decode(erased), u)


def test_viterbi_beats_hard_decisions_in_noise():
    rng = np.random.default_rng(6)
    u = _random_info(rng, 400, 224)
    llr = hard_to_soft(conv_encode(u)) + rng.normal(0, 0.8, (400, 456)).astype(np.float32)
    hard_fail = np.any(viterbi_decode_hard((llr < 0).astype(np.uint8)) != u, axis=1).sum()
    soft_fail = np.any(viterbi_decode(llr) != u, axis=1).sum()
    assert soft_fail < hard_fail / 2


def test_viterbi_generic_codes():
    rng = np.random.default_rng(7)
    for gens in [(0o171, 0o133), (0b111, 0b101, 0b011)]:  # K = 7 rate 1/2, K = 3 rate 1/3
        k_tail = max(g.bit_length() for g in gens) - 1
        u = rng.integers(0, 2, (6, 80), dtype=np.uint8)
        u[:, -k_tail:] = 0
        coded = conv_encode(u, gens)
        coded[:, 40] ^= 1
        np.testing.assert_array_equal(viterbi_decode_hard(coded, gens), u)


def test_viterbi_soft_scales_and_integer_soft_values():
    u = _random_info(np.random.default_rng(11), 3, 60)
    soft = hard_to_soft(conv_encode(u)).astype(np.float64)
    soft[0] *= 1e300  # no overflow of the path metrics
    soft[1, 7] *= -1e-3  # a wrong bit with no weight
    np.testing.assert_array_equal(viterbi_decode(soft), u)
    as_int8 = (127 * hard_to_soft(conv_encode(u))).astype(np.int8)  # libosmocore-style sbits
    np.testing.assert_array_equal(viterbi_decode(as_int8), u)


def test_viterbi_single_block_and_errors():
    u = _random_info(np.random.default_rng(8), 1, 20)[0]
    assert viterbi_decode(hard_to_soft(conv_encode(u))).shape == (24,)
    with pytest.raises(DspError, match="soft"):
        viterbi_decode(conv_encode(u))  # hard bits given as soft values
    with pytest.raises(DspError, match="soft"):
        viterbi_decode(np.zeros((2, 7), np.float32))
    with pytest.raises(DspError, match="soft"):
        viterbi_decode(np.full((1, 8), np.nan))
    with pytest.raises(DspError, match="generators"):
        viterbi_decode(np.zeros((1, 8)), (0,))
    with pytest.raises(DspError, match="bits"):
        viterbi_decode_hard(np.full((1, 8), 2, np.uint8))


# ---------------------------------------------------------------- interleaving and bursts
def test_interleaving_follows_45_003():
    k = np.arange(456)
    coded = (k % 2).astype(np.uint8)
    marks = np.zeros(456, np.int64)
    marks[:] = k
    out = xcch_interleave(marks)
    assert out.shape == (4, 114)
    for kk in (0, 1, 7, 100, 455):
        assert out[kk % 4, 2 * ((49 * kk) % 57) + (kk % 8) // 4] == kk
    assert sorted(out.ravel()) == list(range(456))
    np.testing.assert_array_equal(xcch_deinterleave(xcch_interleave(coded)), coded)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_interleave_round_trip(seed, n):
    x = np.random.default_rng(seed).normal(size=(n, 456)).astype(np.float32)
    np.testing.assert_array_equal(xcch_deinterleave(xcch_interleave(x)), x)
    y = np.random.default_rng(seed).normal(size=(n, 4, 114))
    np.testing.assert_array_equal(xcch_interleave(xcch_deinterleave(y)), y)


def test_burst_data_mapping_inverts_normal_bursts():
    data = np.random.default_rng(9).integers(0, 2, (10, 114), dtype=np.uint8)
    bursts = normal_bursts(data, 3, stealing=1)
    np.testing.assert_array_equal(burst_data_bits(bursts), data)
    assert np.all(stealing_bits(bursts) == 1)
    rest = np.setdiff1d(np.arange(148), np.concatenate((NORMAL_DATA_INDEX, STEALING_INDEX)))
    np.testing.assert_array_equal(rest, np.r_[0:3, 61:87, 145:148])  # tails and training
    soft = hard_to_soft(bursts)
    np.testing.assert_array_equal(burst_data_bits(soft), hard_to_soft(data))


# ---------------------------------------------------------------- xCCH blocks
@settings(max_examples=50, deadline=None)
@given(frames=frames_st)
def test_xcch_round_trip(frames):
    bits = xcch_encode(frames)
    assert bits.shape == (frames.shape[0], 4, 114) and bits.dtype == np.uint8
    out, ok, n_err = xcch_decode(hard_to_soft(bits))
    np.testing.assert_array_equal(out, frames)
    assert ok.all() and not n_err.any()


@settings(max_examples=50, deadline=None)
@given(frames=frames_st, seed=st.integers(0, 2**32 - 1))
def test_xcch_corrects_a_few_errors_and_counts_them(frames, seed):
    bits = xcch_encode(frames)
    rng = np.random.default_rng(seed)
    flips = np.stack([rng.choice(456, 6, replace=False) for _ in range(frames.shape[0])])
    noisy = bits.reshape(-1, 456).copy()
    np.put_along_axis(noisy, flips, 1 - np.take_along_axis(noisy, flips, 1), 1)
    soft = hard_to_soft(noisy.reshape(bits.shape))
    soft += rng.normal(0, 0.1, soft.shape).astype(np.float32)  # soft, not just +-1
    out, ok, n_err = xcch_decode(soft)
    np.testing.assert_array_equal(out, frames)
    assert ok.all() and np.all(n_err == 6)


def test_xcch_rejects_corrupt_blocks_and_bad_arguments():
    frames = np.zeros((50, 23), np.uint8)
    soft = hard_to_soft(xcch_encode(frames))
    soft[:, 1, :] = np.random.default_rng(10).choice([-1.0, 1.0], (50, 114))  # one burst lost
    soft[:, 2, :] = -soft[:, 2, :]  # another inverted
    assert not xcch_decode(soft).ok.any()
    assert not xcch_decode(np.zeros((1, 4, 114), np.float32)).ok.any()
    empty = xcch_decode(np.zeros((0, 4, 114), np.float32))
    assert empty.frames.shape == (0, 23) and empty.ok.shape == (0,)
    with pytest.raises(DspError, match="burst_bits_soft"):
        xcch_decode(xcch_encode(frames[:1]))  # hard bits
    with pytest.raises(DspError, match="burst_bits_soft"):
        xcch_decode(np.zeros((1, 456), np.float32))
    with pytest.raises(DspError, match="frames"):
        xcch_encode(np.zeros((1, 22), np.uint8))
    with pytest.raises(DspError, match="frames"):
        xcch_encode(np.zeros((1, 23), np.int64))
    with pytest.raises(DspError, match="bursts"):
        burst_data_bits(np.zeros((1, 147)))
    with pytest.raises(DspError, match="coded"):
        xcch_interleave(np.zeros(455))
    with pytest.raises(DspError, match="info"):
        fire_encode(np.zeros(183, np.uint8))
    with pytest.raises(DspError, match="bits"):
        fire_check(np.zeros(225, np.uint8))


# ---------------------------------------------------------------- SCH
@settings(max_examples=60, deadline=None)
@given(multiframe=st.integers(0, HYPERFRAME_MULTIFRAMES - 1), slot=st.sampled_from(c.SCH_FRAMES),
       seed=st.integers(0, 2**32 - 1))
def test_sch_round_trip_all_bsic(multiframe, slot, seed):
    fn = 51 * multiframe + slot
    bsic = np.arange(64)
    res = sch_decode(hard_to_soft(sch_encode(bsic, fn)))
    assert res.ok.all() and not res.n_bit_errors.any()
    np.testing.assert_array_equal(res.bsic, bsic)
    assert np.all(res.fn == fn)
    # Through the burst, with two well separated bit errors.
    burst = sch_bursts(fn, bsic)
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 30)
    burst[:, SCH_BURST_INDEX[[first, first + 40]]] ^= 1
    res = sch_decode(hard_to_soft(sch_burst_bits(burst)))
    assert res.ok.all() and np.all(res.n_bit_errors == 2) and np.all(res.fn == fn)
    np.testing.assert_array_equal(res.bsic, bsic)


def test_sch_decode_shapes_and_rejections():
    coded = hard_to_soft(sch_encode(np.array([[1, 2], [3, 4]]), 11))
    res = sch_decode(coded)
    assert res.bsic.shape == (2, 2) and res.fn.shape == (2, 2)
    np.testing.assert_array_equal(res.bsic, [[1, 2], [3, 4]])
    bad = coded.copy()
    bad[..., 20:30] *= -1  # a burst of 10 errors: uncorrectable, the parity catches it
    assert not sch_decode(bad).ok.any()
    with pytest.raises(DspError, match="coded_soft"):
        sch_decode(sch_encode(1, 11))
    with pytest.raises(DspError, match="coded_soft"):
        sch_decode(np.zeros(77))
    with pytest.raises(DspError, match="bursts"):
        sch_burst_bits(np.zeros(78))
