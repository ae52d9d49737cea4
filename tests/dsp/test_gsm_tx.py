"""GSM transmit side: coding, bursts, GMSK and the downlink/uplink waveforms.

The burst encoders are checked bit for bit against bursts a live cell sent (Vodafone DE,
ARFCN 725, demodulated by gr-gsm): /work/shared/data/gsm/vf725/.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.gsm import constants as c
from dsp.gsm.bursts import access_bursts, dummy_bursts, fcch_bursts, normal_bursts, sch_bursts
from dsp.gsm.coding import (SCH_PARITY_POLY, block_parity, conv_encode, int_to_bits,
                            reduced_frame_number, sch_info_bits)
from dsp.gsm.gmsk import gmsk_modulate, gmsk_phase, gsm_diff_encode, phase_pulse
from dsp.gsm.tx import downlink_burst_bits, gsm_downlink_iq, gsm_uplink_iq
from rfhunt.errors import DspError
from tests.grgsm_bursts import read_bursts
from tests.shared_data import DATA_DIR

DATA = DATA_DIR / "gsm" / "vf725"
BURSTS_FILE = DATA / "vf_call6_a725_d174_g5_Kc1EF00BAB3BAC7002.bursts.bz2"
#: From the data README/truth: the original receiver produced garbage from this FN on.
GARBAGE_FROM_FN = 862395
RS = c.SYMBOL_RATE_HZ


@pytest.fixture(scope="module")
def live_bursts():
    if not BURSTS_FILE.exists():
        pytest.skip(f"{BURSTS_FILE} not present")
    fn, tn, kind, bits = read_bursts(BURSTS_FILE)
    assert fn.size == 12728  # the README's count of unique bursts
    clean = fn < GARBAGE_FROM_FN
    return fn[clean], tn[clean], kind[clean], bits[clean]


# ---------------------------------------------------------------- golden tests (live cell)
def test_sch_bursts_reproduce_live_cell(live_bursts):
    fn, tn, _, bits = live_bursts
    sch = (tn == 0) & np.isin(fn % 51, c.SCH_FRAMES)
    assert sch.sum() > 140
    matches = [b for b in range(64) if np.array_equal(sch_bursts(fn[sch][:3], b), bits[sch][:3])]
    assert matches == [48]  # NCC 6, BCC 0; the cell's normal bursts use TSC 0 = BCC
    np.testing.assert_array_equal(sch_bursts(fn[sch], 48), bits[sch])


def test_fcch_and_dummy_bursts_match_live_cell(live_bursts):
    fn, tn, kind, bits = live_bursts
    fcch = (tn == 0) & np.isin(fn % 51, c.FCCH_FRAMES)
    assert fcch.sum() > 140
    np.testing.assert_array_equal(bits[fcch], fcch_bursts(int(fcch.sum())))
    dummy = kind == 7  # GSMTAP_BURST_DUMMY
    assert dummy.sum() > 1000
    np.testing.assert_array_equal(bits[dummy], dummy_bursts(int(dummy.sum())))
    idle = (tn == 0) & (fn % 51 == c.IDLE_FRAME)
    np.testing.assert_array_equal(bits[idle], dummy_bursts(int(idle.sum())))


def test_normal_bursts_match_live_bcch(live_bursts):
    fn, tn, kind, bits = live_bursts
    normal = (tn == 0) & (kind == 6)  # GSMTAP_BURST_NORMAL on the BCCH/CCCH timeslot
    assert normal.sum() > 1000
    b = bits[normal]
    data = np.concatenate((b[:, 3:60], b[:, 88:145]), axis=1)
    np.testing.assert_array_equal(normal_bursts(data, 0, stealing=1), b)


def test_downlink_schedule_matches_live_cell(live_bursts):
    fn, tn, kind, bits = live_bursts
    ts0 = (tn == 0) & (kind != 6)  # everything but the (encrypted/unknown) data bursts
    built = downlink_burst_bits(fn[ts0], tn[ts0], bsic=48)
    np.testing.assert_array_equal(built, bits[ts0])


# ---------------------------------------------------------------- constants and coding
def test_training_sequences_are_cyclically_extended():
    # 45.002: each TSC is a 16-bit core with 5 bits of cyclic extension on each side.
    assert c.TSC_BITS.shape == (8, 26)
    np.testing.assert_array_equal(c.TSC_BITS[:, :5], c.TSC_BITS[:, 16:21])
    np.testing.assert_array_equal(c.TSC_BITS[:, 21:], c.TSC_BITS[:, 5:10])
    assert len({row.tobytes() for row in c.TSC_BITS}) == 8
    assert c.SCH_TRAINING_BITS.size == 64 and c.ACCESS_SYNC_BITS.size == 41
    assert c.DUMMY_BURST_BITS.size == 148


def _poly_mod(bits: np.ndarray, poly: int) -> int:
    reg = 0
    deg = poly.bit_length() - 1
    for bit in list(bits) + [0] * deg:
        reg = (reg << 1) | int(bit)
        if reg >> deg:
            reg ^= poly
    return reg


def test_block_parity_is_polynomial_remainder():
    rng = np.random.default_rng(1)
    d = rng.integers(0, 2, (20, 25), dtype=np.uint8)
    par = block_parity(d, SCH_PARITY_POLY)
    for row, p in zip(d, par):
        assert int("".join(map(str, p)), 2) == _poly_mod(row, SCH_PARITY_POLY)
    np.testing.assert_array_equal(block_parity(d, SCH_PARITY_POLY, invert=True), par ^ 1)


def test_conv_encode_matches_polynomial_products():
    rng = np.random.default_rng(2)
    u = rng.integers(0, 2, 39, dtype=np.uint8)
    out = conv_encode(u)
    g0 = np.convolve(u, [1, 0, 0, 1, 1])[:39] % 2
    g1 = np.convolve(u, [1, 1, 0, 1, 1])[:39] % 2
    np.testing.assert_array_equal(out[0::2], g0)
    np.testing.assert_array_equal(out[1::2], g1)


def test_sch_info_fields():
    fn = 860911
    t1, t2, t3p = reduced_frame_number(fn)
    assert (t1, t2, t3p) == (649, 25, 3)
    d = sch_info_bits(48, fn)
    # BSIC and T1's top bits fill octet 1, sent least significant bit first.
    np.testing.assert_array_equal(d[:8][::-1], int_to_bits((48 << 2) | (649 >> 9), 8))


def test_burst_builders_shapes_and_errors():
    assert sch_bursts(np.arange(1, 52, 10), 7).shape == (6, 148)
    assert access_bursts(np.zeros((3, 36), np.uint8)).shape == (3, 88)
    nb = normal_bursts(np.ones((2, 114), np.uint8), np.array([0, 7]), stealing=0)
    np.testing.assert_array_equal(nb[1, 61:87], c.TSC_BITS[7])
    assert nb[:, [60, 87]].sum() == 0
    for bad in (-1, 64):
        with pytest.raises(DspError, match="bsic"):
            sch_bursts(1, bad)
    with pytest.raises(DspError, match="tsc"):
        normal_bursts(np.zeros((1, 114), np.uint8), 8)
    with pytest.raises(DspError, match="data"):
        normal_bursts(np.zeros((1, 113), np.uint8), 0)


# ---------------------------------------------------------------- GMSK
def _peak_freq(x: np.ndarray, fs: float) -> float:
    n = x.size * 16
    spec = np.abs(np.fft.fft(x * np.hanning(x.size), n))
    k = int(np.argmax(spec))
    a, b, g = np.log(spec[k - 1]), np.log(spec[k]), np.log(spec[(k + 1) % n])
    k_fine = k + 0.5 * (a - g) / (a - 2 * b + g)
    return float(np.fft.fftfreq(n, 1 / fs)[k] + (k_fine - k) * fs / n)


@pytest.mark.parametrize("fs", [2.4e6, 1e6, 500e3, 4e6, 1083333.33])
def test_fcch_is_a_tone_at_67_7_khz(fs):
    x = gmsk_modulate(np.zeros(148 * 10, np.uint8), fs, differential=True)
    assert abs(_peak_freq(x[50:], fs) - 1625000 / 24) < 50.0


def test_gmsk_matches_closed_form_sum_and_has_constant_envelope():
    rng = np.random.default_rng(3)
    a = rng.choice(np.array([-1, 1], np.int8), 60)
    fs = 1083333.33  # 4 samples/symbol, but not exactly: no periodic shortcut
    x = gmsk_modulate(a, fs, t0_s=-3e-6, n_samples=260)
    u = (-3e-6 + np.arange(260) / fs) * RS
    ref = 0.5 * np.pi * sum(a[i] * phase_pulse(u - i - 0.5) for i in range(a.size))
    np.testing.assert_allclose(x, np.exp(1j * ref), atol=2e-6)
    np.testing.assert_allclose(np.abs(x), 1.0, atol=1e-6)
    # Each +1 symbol turns the phase by +pi/2 once the pulses have settled.
    assert gmsk_phase(a, np.array([a.size + 4.0]))[0] == pytest.approx(0.5 * np.pi * a.sum(), abs=1e-6)


def test_gmsk_is_sampled_not_resampled():
    bits = np.random.default_rng(4).integers(0, 2, 500, dtype=np.uint8)
    hi = gmsk_modulate(bits, 4e6, differential=True)
    lo = gmsk_modulate(bits, 1e6, differential=True)
    np.testing.assert_allclose(hi[::4][:lo.size], lo[:hi[::4].size], atol=2e-6)


def test_gmsk_occupied_bandwidth():
    # BT = 0.3 GMSK holds 99 % of its power within about +-0.46 x symbol rate (~+-125 kHz).
    from scipy.signal import welch
    fs = 2.4e6
    bits = np.random.default_rng(5).integers(0, 2, 30000, dtype=np.uint8)
    x = gmsk_modulate(bits, fs, differential=True)
    f, p = welch(x, fs, nperseg=4096, return_onesided=False, scaling="spectrum")
    order = np.argsort(np.abs(f))
    cum = np.cumsum(p[order]) / p.sum()
    half_width = np.abs(f[order])[np.searchsorted(cum, 0.99)]
    assert 110e3 < half_width < 135e3


def test_diff_encode():
    np.testing.assert_array_equal(gsm_diff_encode(np.array([0, 0, 1, 1, 0])), [-1, 1, -1, 1, -1])
    np.testing.assert_array_equal(gsm_diff_encode(np.array([0, 0]), initial_bit=0), [1, 1])


# ---------------------------------------------------------------- downlink waveform
def _inst_freq(x: np.ndarray, fs: float) -> np.ndarray:
    return np.angle(x[1:] * np.conj(x[:-1])) * fs / (2 * np.pi)


@pytest.mark.parametrize("fs", [1e6, 2.4e6])
def test_fcch_only_on_frames_0_10_20_30_40_timeslot_0(fs):
    fn_epoch = 51 * 1000 + 3  # t = 0 is frame 3 of a multiframe
    n_frames = 51
    x = gsm_downlink_iq(0.0, int(n_frames * c.FRAME_PERIOD_S * fs), fs, bsic=33, fn_epoch=fn_epoch)
    f = _inst_freq(x, fs)
    tone = []
    for frame in range(n_frames - 1):
        for tn in range(8):
            s0 = frame * 1250 + c.SLOT_START_SYMBOLS[tn]
            i0, i1 = int((s0 + 8) / RS * fs), int((s0 + 140) / RS * fs)
            seg = f[i0:i1]
            if np.all(np.abs(seg - 1625000 / 24) < 200):
                tone.append(((fn_epoch + frame) % 51, tn))
    assert sorted(tone) == [(k, 0) for k in sorted(c.FCCH_FRAMES)]


def test_downlink_split_invariance():
    for fs in (2.4e6, 1083333.33):
        t0, n = 0.01234, 40000
        whole = gsm_downlink_iq(t0, n, fs, bsic=5, fn_epoch=100, seed=9)
        for cut in (1, 12345, 39999):
            a = gsm_downlink_iq(t0, cut, fs, bsic=5, fn_epoch=100, seed=9)
            b = gsm_downlink_iq(t0 + cut / fs, n - cut, fs, bsic=5, fn_epoch=100, seed=9)
            np.testing.assert_allclose(np.concatenate((a, b)), whole, atol=2e-5)


def test_downlink_power_and_dtype():
    x = gsm_downlink_iq(7.5, 240000, 2.4e6, bsic=63)
    assert x.dtype == np.complex64 and x.shape == (240000,)
    assert np.mean(np.abs(x) ** 2) == pytest.approx(1.0, abs=0.03)
    # Full amplitude except in the 4-symbol cross-fades (about 4 / 156 of the time).
    assert np.mean(np.abs(np.abs(x) - 1) > 1e-3) < 0.04


def test_downlink_seed_and_payload_drive_data_bursts():
    fn = np.arange(0, 51)
    tn = np.zeros(51, np.int64)
    a = downlink_burst_bits(fn, tn, bsic=10, seed=1)
    b = downlink_burst_bits(fn, tn, bsic=10, seed=2)
    data = ~np.isin(fn % 51, c.FCCH_FRAMES + c.SCH_FRAMES + (c.IDLE_FRAME,))
    assert np.all(np.any(a[data] != b[data], axis=1))
    np.testing.assert_array_equal(a[~data], b[~data])
    np.testing.assert_array_equal(a[data][:, 61:87], np.tile(c.TSC_BITS[10 & 7], (data.sum(), 1)))
    calls = []

    def payload(f, t):
        calls.append(f)
        return np.ones((f.size, 114), np.uint8)

    p = downlink_burst_bits(fn, tn, bsic=10, payload=payload)
    np.testing.assert_array_equal(calls[0], fn[data])
    assert p[data][:, 3:60].all() and p[data][:, 88:145].all()
    other = downlink_burst_bits(fn, np.full(51, 3), bsic=10, payload=payload)
    np.testing.assert_array_equal(other, dummy_bursts(51))
    with pytest.raises(DspError, match="payload"):
        gsm_downlink_iq(0.0, 10000, 1e6, bsic=1, payload=lambda f, t: np.ones((f.size, 3), np.uint8))


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_samples=-1), "n_samples"),
    (dict(bsic=64), "bsic"),
    (dict(bsic=-1), "bsic"),
    (dict(sample_rate_hz=0.0), "sample_rate_hz"),
    (dict(t_start_s=float("nan")), "t_start_s"),
])
def test_downlink_bad_arguments(kwargs, word):
    args = dict(t_start_s=0.0, n_samples=100, sample_rate_hz=1e6, bsic=1) | kwargs
    with pytest.raises(DspError, match=word):
        gsm_downlink_iq(args.pop("t_start_s"), args.pop("n_samples"), args.pop("sample_rate_hz"), **args)


# ---------------------------------------------------------------- uplink waveform
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[0::2], edges[1::2]))


def test_uplink_bursts_tdma_timing():
    fs = 2.4e6
    ts, ta = 2, 10
    x = gsm_uplink_iq(0.0, int(6 * c.FRAME_PERIOD_S * fs), fs, timeslot=ts, tsc=3, seed=1,
                      timing_advance_symbols=ta, burst_kind=lambda fn: (fn % 2 == 0).astype(np.int8))
    runs = _runs(np.abs(x) > 0)
    assert len(runs) == 3  # frames 0, 2, 4
    for (i0, i1), frame in zip(runs, (0, 2, 4)):
        duration_us = (i1 - i0) / fs * 1e6
        assert duration_us == pytest.approx(156.25 / RS * 1e6, abs=5.0)  # ~577 µs slot
        # Bit 0 starts 3 timeslots after the downlink slot of the same number, TA earlier.
        bit0 = frame * 1250 + c.SLOT_START_SYMBOLS[ts + 3] - ta
        assert i0 / fs == pytest.approx((bit0 - 4) / RS, abs=1.5 / fs)
        full = np.abs(x[i0:i1]) > 1 - 1e-6
        assert np.sqrt(np.mean(np.abs(x[i0:i1][full]) ** 2)) == pytest.approx(1.0, abs=1e-5)
        assert full.sum() / fs == pytest.approx(148 / RS, abs=3 / fs)
    gaps = np.ones(x.size, bool)
    for i0, i1 in runs:
        gaps[i0:i1] = False
    assert np.all(x[gaps] == 0)


def test_uplink_access_burst_and_silence():
    fs = 1e6
    n = int(4 * c.FRAME_PERIOD_S * fs)
    silent = gsm_uplink_iq(0.0, n, fs, timeslot=0, burst_kind=lambda fn: np.zeros(fn.shape, np.int8))
    assert not silent.any()
    x = gsm_uplink_iq(0.0, n, fs, timeslot=0, timing_advance_symbols=20,
                      burst_kind=lambda fn: np.where(fn == 1, 2, 0).astype(np.int8))
    runs = _runs(np.abs(x) > 0)
    assert len(runs) == 1
    i0, i1 = runs[0]
    assert (i1 - i0) / fs == pytest.approx(96 / RS, abs=2 / fs)  # 88 bits + ramps
    assert i0 / fs == pytest.approx((1250 + c.SLOT_START_SYMBOLS[3] - 4) / RS, abs=1.5 / fs)  # TA 0


def test_uplink_split_invariance_and_errors():
    fs = 2.4e6
    kind = lambda fn: (fn % 3).astype(np.int8)  # noqa: E731
    whole = gsm_uplink_iq(0.002, 50000, fs, timeslot=5, burst_kind=kind)
    a = gsm_uplink_iq(0.002, 20001, fs, timeslot=5, burst_kind=kind)
    b = gsm_uplink_iq(0.002 + 20001 / fs, 29999, fs, timeslot=5, burst_kind=kind)
    np.testing.assert_allclose(np.concatenate((a, b)), whole, atol=2e-5)
    with pytest.raises(DspError, match="timeslot"):
        gsm_uplink_iq(0.0, 10, fs, timeslot=8, burst_kind=kind)
    with pytest.raises(DspError, match="n_samples"):
        gsm_uplink_iq(0.0, -5, fs, timeslot=0, burst_kind=kind)
    with pytest.raises(DspError, match="burst_kind"):
        gsm_uplink_iq(0.0, 10000, fs, timeslot=0, burst_kind=lambda fn: np.full(fn.shape, 7, np.int8))
