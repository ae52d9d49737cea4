"""FM broadcast transmitter and RDS coding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfiltfilt

from dsp.fm.rds import (OFFSETS, RDS_BIT_RATE_HZ, RdsConfig, blocks_to_bits, checkword,
                        encode_block, group_cycle, rds_bits, rds_syndrome)
from dsp.fm.tx import PILOT_HZ, fm_broadcast_iq, fm_mpx
from rfhunt.errors import DspError

CFG = RdsConfig(pi=0xC201, ps="CNR-1   ", pty=10, rt="Radio test 1 2 3", tp=True)


# ---------------------------------------------------------------- a small RDS receiver
def rds_decode(data_bits: np.ndarray) -> dict:
    """Block-synchronise a data-bit stream and collect PI, PS and RT.

    Uses only the syndromes: a group starts where A, B, C (or C') and D follow each other.
    """
    bits = np.asarray(data_bits, dtype=np.int64)
    n = bits.size - 26
    weights = np.int64(1) << np.arange(25, -1, -1)
    windows = np.lib.stride_tricks.sliding_window_view(bits, 26)[:n] @ weights
    syn = rds_syndrome(windows)
    out = {"pi": set(), "ps": {}, "rt": {}, "groups": 0, "pty": set(), "tp": set()}
    for p in np.flatnonzero(syn == OFFSETS["A"]):
        if p + 78 >= n or syn[p + 26] != OFFSETS["B"] or syn[p + 78] != OFFSETS["D"]:
            continue
        if syn[p + 52] not in (OFFSETS["C"], OFFSETS["C'"]):
            continue
        a, b, c, d = (int(windows[p + 26 * i]) >> 10 for i in range(4))
        out["groups"] += 1
        out["pi"].add(a)
        out["pty"].add((b >> 5) & 31)
        out["tp"].add((b >> 10) & 1)
        gtype, version = b >> 12, (b >> 11) & 1
        if (gtype, version) == (0, 0):
            seg = b & 3
            out["ps"][seg] = bytes([d >> 8, d & 0xFF]).decode("latin-1")
        elif (gtype, version) == (2, 0):
            seg = b & 15
            out["rt"][seg] = bytes([c >> 8, c & 0xFF, d >> 8, d & 0xFF]).decode("latin-1")
    out["ps_text"] = "".join(out["ps"].get(i, "??") for i in range(4))
    rt = "".join(out["rt"][i] for i in sorted(out["rt"]))
    out["rt_text"] = rt.split("\r")[0]
    return out


# ---------------------------------------------------------------- RDS coding
def test_checkword_matches_generator_matrix_rows():
    # IEC 62106 annex B: the rows of the generator matrix for the first and last info bit.
    assert int(checkword(0x8000)) == 0b0001110111
    assert int(checkword(0x0001)) == 0b0110111001
    assert int(checkword(0)) == 0


def test_every_block_of_the_cycle_passes_its_check():
    blocks = group_cycle(CFG)
    assert blocks.shape == (5 * 5, 4)  # 5 RT segments, each after the 4 PS groups
    expect = [OFFSETS[k] for k in ("A", "B", "C", "D")]
    np.testing.assert_array_equal(rds_syndrome(blocks), np.tile(expect, (blocks.shape[0], 1)))
    assert np.all(blocks[:, 0] >> 10 == CFG.pi)
    # A single flipped bit anywhere breaks the check.
    flips = blocks[:, :, None] ^ (np.int64(1) << np.arange(26))
    assert np.all(rds_syndrome(flips) != np.array(expect)[None, :, None])


def test_offset_blocks_and_errors():
    # IEC 62106 annex A offset words d9..d0.
    assert OFFSETS == {"A": 0b0011111100, "B": 0b0110011000, "C": 0b0101101000,
                       "C'": 0b1101010000, "D": 0b0110110100}
    for name, word in OFFSETS.items():
        assert int(rds_syndrome(encode_block(0xBEEF, name))) == word
    with pytest.raises(DspError, match="offset"):
        encode_block(1, "E")
    with pytest.raises(DspError, match="block26"):
        rds_syndrome(1 << 26)


@pytest.mark.parametrize("kwargs, word", [
    (dict(pi=0x10000), "pi"), (dict(pi=-1), "pi"), (dict(ps="SHORT"), "ps"),
    (dict(pty=32), "pty"), (dict(rt="x" * 65), "rt"), (dict(ps="\u20ac" * 8), "ps"),
])
def test_rds_config_validation(kwargs, word):
    with pytest.raises(DspError, match=word):
        RdsConfig(**({"pi": 1, "ps": "ABCDEFGH"} | kwargs))


def test_bit_stream_is_a_function_of_absolute_index():
    k = np.arange(-3000, 3000)
    data, diff = rds_bits(CFG, k)
    # Differential encoding holds across cycle boundaries and negative indices.
    np.testing.assert_array_equal(diff[1:], data[1:] ^ diff[:-1])
    d2, e2 = rds_bits(CFG, k[1234:1300])
    np.testing.assert_array_equal(d2, data[1234:1300])
    np.testing.assert_array_equal(e2, diff[1234:1300])
    period = blocks_to_bits(group_cycle(CFG)).size
    np.testing.assert_array_equal(rds_bits(CFG, k + period)[0], data)


@settings(max_examples=60, deadline=None)
@given(pi=st.integers(0, 0xFFFF),
       ps=st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=8, max_size=8),
       pty=st.integers(0, 31),
       rt=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=64)),
       start=st.integers(-10**7, 10**7))
def test_pi_ps_rt_round_trip(pi, ps, pty, rt, start):
    cfg = RdsConfig(pi=pi, ps=ps, pty=pty, rt=rt)
    n_groups = group_cycle(cfg).shape[0]
    data, _ = rds_bits(cfg, np.arange(start, start + 104 * (n_groups + 1) + 26))
    got = rds_decode(data)
    assert got["pi"] == {pi} and got["pty"] == {pty}
    assert got["ps_text"] == ps
    if rt is not None:
        assert got["rt_text"] == rt


# ---------------------------------------------------------------- FM waveform
def _inst_freq(x: np.ndarray, fs: float) -> np.ndarray:
    return np.angle(x[1:] * np.conj(x[:-1])) * fs / (2 * np.pi)


def _tone_amplitude(sig: np.ndarray, t: np.ndarray, freq_hz: float) -> float:
    return float(2 * np.abs(np.mean(sig * np.exp(-2j * np.pi * freq_hz * t))))


@pytest.mark.parametrize("stereo", [True, False])
def test_pilot_present_only_in_stereo(stereo):
    fs, t0 = 250e3, 12.345
    x = fm_broadcast_iq(t0, 50000, fs, stereo=stereo, rds=CFG, audio_seed=3)
    f = _inst_freq(x, fs)
    t = t0 + np.arange(1, x.size) / fs
    pilot = _tone_amplitude(f, t, PILOT_HZ)
    if stereo:
        assert 0.085 * 75e3 < pilot < 0.105 * 75e3  # 9-10 % of the peak deviation
    else:
        assert pilot < 0.001 * 75e3


@pytest.mark.parametrize("stereo, rds, deviation_hz, fs", [
    (True, CFG, 75e3, 2.4e6), (False, None, 100e3, 1e6), (True, None, 75e3, 250e3),
    (False, CFG, 50e3, 2.4e6),
])
def test_peak_deviation(stereo, rds, deviation_hz, fs):
    for seed in range(3):
        x = fm_broadcast_iq(100.0 + seed, int(0.05 * fs), fs, deviation_hz=deviation_hz,
                            stereo=stereo, rds=rds, audio_seed=seed)
        assert x.dtype == np.complex64
        np.testing.assert_allclose(np.abs(x), 1.0, atol=1e-6)
        peak = np.abs(_inst_freq(x, fs)).max()
        assert peak == pytest.approx(deviation_hz, rel=0.05)
        assert peak <= deviation_hz * 1.001


def test_mpx_is_a_function_of_absolute_time():
    fs, t0 = 1e6, 3600.0 * 5 + 0.123
    whole = fm_mpx(t0, 30000, fs, rds=CFG, audio_seed=7)
    a = fm_mpx(t0, 11111, fs, rds=CFG, audio_seed=7)
    b = fm_mpx(t0 + 11111 / fs, 30000 - 11111, fs, rds=CFG, audio_seed=7)
    np.testing.assert_allclose(np.concatenate((a, b)), whole, atol=1e-6)
    other = fm_mpx(t0, 30000, fs, rds=CFG, audio_seed=8)
    assert np.abs(other - whole).max() > 0.1
    # The IQ restarts its phase per call but its instantaneous frequency follows the MPX.
    x = fm_broadcast_iq(t0 + 11111 / fs, 1000, fs, rds=CFG, audio_seed=7)
    np.testing.assert_allclose(_inst_freq(x, fs) / 75e3, whole[11112:12111], atol=1e-4)


@pytest.mark.parametrize("stereo", [True, False])
def test_rds_decodes_from_the_fm_signal(stereo):
    """Demodulate FM, mix 57 kHz down, integrate each biphase bit, decode PI/PS/RT."""
    fs, t0 = 250e3, 1000.0 + 1 / 3
    n = int(2.4 * fs)  # the full cycle is 25 groups (2.19 s)
    x = fm_broadcast_iq(t0, n, fs, stereo=stereo, rds=CFG, audio_seed=11)
    t = t0 + np.arange(1, n) / fs
    mpx = _inst_freq(x, fs) / 75e3
    theta = 2 * np.pi * PILOT_HZ * t
    bb = sosfiltfilt(butter(8, 2500, fs=fs, output="sos"), 2 * mpx * np.sin(3 * theta))
    pos = t * RDS_BIT_RATE_HZ
    k = np.floor(pos).astype(np.int64)
    corr = np.bincount(k - k[0], weights=bb * np.sin(2 * np.pi * (pos - k)))
    diff_bits = (corr[1:-1] > 0).astype(np.int64)  # drop the partial bits at both ends
    data = diff_bits[1:] ^ diff_bits[:-1]
    got = rds_decode(data)
    assert got["groups"] >= 15
    assert got["pi"] == {CFG.pi} and got["pty"] == {CFG.pty} and got["tp"] == {1}
    assert got["ps_text"] == CFG.ps
    assert got["rt_text"] == CFG.rt


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_samples=-1), "n_samples"),
    (dict(sample_rate_hz=200e3), "sample_rate_hz"),
    (dict(deviation_hz=0.0), "deviation_hz"),
    (dict(rds="C201"), "rds"),
    (dict(t_start_s=math.inf), "t_start_s"),
])
def test_fm_bad_arguments(kwargs, word):
    args = dict(t_start_s=0.0, n_samples=100, sample_rate_hz=1e6) | kwargs
    with pytest.raises(DspError, match=word):
        fm_broadcast_iq(args.pop("t_start_s"), args.pop("n_samples"), args.pop("sample_rate_hz"), **args)
