"""RDS reception: block sync, burst correction and parsing; demodulation from IQ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.fm.rds import BLOCK_BITS, GROUP_BITS, RdsConfig, group_cycle, rds_bits, rds_syndrome
from dsp.fm.rds_decode import BURST_PATTERNS, decode_rds, syndromes
from dsp.fm.station import StationCandidates, analyze_stations
from dsp.fm.tx import fm_broadcast_iq
from rfhunt.errors import DspError

CFG = RdsConfig(pi=0xC201, ps="CNR-1   ", pty=10, rt="China National Radio 1 test", tp=True)


def stream(cfg: RdsConfig, start: int, n: int) -> np.ndarray:
    return rds_bits(cfg, np.arange(start, start + n))[0]


def test_syndrome_tables_match_the_code():
    rng = np.random.default_rng(0)
    w = rng.integers(0, 1 << 26, 5000)
    np.testing.assert_array_equal(syndromes(w), rds_syndrome(w))


def test_every_burst_up_to_five_bits_has_its_own_syndrome():
    # 26 + 25 + 24*2 + 23*4 + 22*8 bursts of 1..5 bits, all told apart by the (26,16) code
    assert np.count_nonzero(BURST_PATTERNS) == 26 + 25 + 48 + 92 + 176
    pats = BURST_PATTERNS[BURST_PATTERNS != 0]
    np.testing.assert_array_equal(BURST_PATTERNS[syndromes(pats)], pats)


@settings(max_examples=40, deadline=None)
@given(pi=st.integers(0, 0xFFFF),
       ps=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=8, max_size=8),
       pty=st.integers(0, 31),
       rt=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=64)),
       start=st.integers(-10**7, 10**7))
def test_clean_stream_round_trip(pi, ps, pty, rt, start):
    cfg = RdsConfig(pi=pi, ps=ps, pty=pty, rt=rt)
    n_groups = group_cycle(cfg).shape[0]
    got = decode_rds(stream(cfg, start, GROUP_BITS * (n_groups + 8)))
    assert got.synced and got.present
    assert got.pi == pi and got.pty == pty and got.ps == ps
    assert got.n_errors == 0 and got.n_corrected == 0 and got.n_ok == got.n_blocks > 0
    if rt is not None:
        assert got.rt == rt.rstrip()
    assert got.group_types.get("0A", 0) >= 4


def test_bursts_are_corrected_and_counted():
    first = 1234
    bits = stream(CFG, first, 40 * GROUP_BITS).copy()
    frame = (-first) % GROUP_BITS  # where the stream's groups start
    rng = np.random.default_rng(3)
    n_bursts = 0
    for g in range(2, 38, 3):  # a burst of 1..5 bits in one block of every third group
        length = int(rng.integers(1, 6))
        pos = frame + g * GROUP_BITS + int(rng.integers(0, 4)) * BLOCK_BITS
        pos += int(rng.integers(0, BLOCK_BITS - length + 1))
        bits[pos:pos + length] ^= 1
        n_bursts += 1
    got = decode_rds(bits)
    assert got.pi == CFG.pi and got.ps == CFG.ps and got.rt == CFG.rt
    assert got.n_corrected == n_bursts and got.n_errors == 0


def test_soft_decisions_rescue_blocks_bursts_cannot():
    """Two channel-bit errors 10 bits apart in a block are two 2-bit bursts after differential
    decoding: the burst corrector fails, a Chase decoding on the soft bits does not."""
    first, n = 500, 40 * GROUP_BITS
    chan = rds_bits(CFG, np.arange(first - 1, first + n))[1].astype(float)
    soft = 2 * chan - 1
    frame = (-first) % GROUP_BITS
    hits = 0
    for g in range(3, 37, 4):
        p0 = frame + g * GROUP_BITS + 1 * BLOCK_BITS  # block B: channel bits p0 .. p0 + 26
        for i in (p0 + 6, p0 + 16):
            soft[i] = -0.1 * soft[i]  # wrong and unreliable
        hits += 1
    data = ((soft[1:] > 0) ^ (soft[:-1] > 0)).astype(np.uint8)
    hard = decode_rds(data)
    assert hard.n_errors == hits and hard.pi == CFG.pi
    got = decode_rds(data, soft)
    assert got.n_errors == 0 and got.n_corrected == hits and got.ps == CFG.ps and got.rt == CFG.rt
    with pytest.raises(DspError, match="one channel bit more"):
        decode_rds(data, soft[:-1])


def test_a_bit_slip_resynchronises():
    bits = stream(CFG, 77, 60 * GROUP_BITS)
    slipped = np.concatenate([bits[:30 * GROUP_BITS + 11], bits[30 * GROUP_BITS + 12:]])
    got = decode_rds(slipped)
    assert got.pi == CFG.pi and got.ps == CFG.ps
    # only the groups around the slip may be lost
    assert got.n_errors <= 2 * 4 * (2 * 8 + 1)
    assert got.n_ok >= 0.6 * 4 * 60


def test_noise_decodes_nothing():
    rng = np.random.default_rng(11)
    for _ in range(300):
        got = decode_rds(rng.integers(0, 2, 4750))
        assert got.pi is None and not got.present
    assert decode_rds(np.zeros(50)).synced is False


def _capture(stations, fs, seconds, cnr_db, seed, t0=100.0):
    """Stations (offset_hz, rds, stereo, deviation_hz, amplitude) plus white noise such that the
    first station has ``cnr_db`` in 200 kHz."""
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.zeros(n, np.complex64)
    for off, rds, stereo, dev, amp in stations:
        w = fm_broadcast_iq(t0, n, fs, deviation_hz=dev, stereo=stereo, rds=rds, audio_seed=int(off) & 0xFFFF)
        x += (amp * w * np.exp(2j * np.pi * off * t)).astype(np.complex64)
    rng = np.random.default_rng(seed)
    a0 = stations[0][4]
    var = a0 ** 2 / 10 ** (cnr_db / 10) * fs / 200e3
    x += (np.sqrt(var / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    return x


def _analyze(x, fs, offsets):
    f = np.asarray(offsets, dtype=float) + 98e6
    z = np.zeros(f.size)
    return analyze_stations(x, fs, 98e6, StationCandidates(f, z, z, z, z)).stations


def test_rds_from_iq_of_several_stations():
    fs = 2.4e6
    other = RdsConfig(pi=0x1A2B, ps="PIRATE 1", pty=3)
    sts = _analyze(_capture([(-600e3, CFG, True, 75e3, 0.3), (200e3, other, False, 75e3, 0.2),
                             (700e3, None, False, 100e3, 0.2)], fs, 1.5, 30.0, 1), fs, [-600e3, 200e3, 700e3])
    a, b, c = sts
    assert (a.rds.pi, a.rds.ps, a.rds.pty, a.rds.tp) == (CFG.pi, CFG.ps, CFG.pty, True) and a.pilot
    assert (b.rds.pi, b.rds.ps, b.rds.pty) == (other.pi, other.ps, other.pty) and not b.pilot
    assert c.rds.pi is None and not c.rds.present and not c.pilot
    assert a.rds.n_errors == 0 and b.rds.n_errors == 0


@pytest.mark.parametrize("seed", range(3))
def test_pi_at_10_db_cnr(seed):
    """The issue's goal: the PI decodes at 10 dB CNR (in 200 kHz) from 3 s of signal."""
    fs = 1e6
    st_ = _analyze(_capture([(0.0, CFG, True, 75e3, 0.5)], fs, 3.0, 10.0, seed), fs, [0.0])[0]
    assert st_.rds.pi == CFG.pi
    assert 8.5 < st_.snr_db < 11.5
