"""GSM uplink burst detector: seeded synthetic handsets with known truth, and the real uplink
snippet of shared/data (whose sample rate the signal itself settles)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.bands import arfcn_to_uplink_hz
from dsp.gsm import constants as c
from dsp.gsm.rx.channelizer import channelize
from dsp.gsm.rx.equalizer import demodulate_bursts
from dsp.gsm.tx import gsm_uplink_iq
from dsp.gsm.uplink import (KIND_ACCESS, KIND_NORMAL, SLOT_S, detect_uplink_bursts, uplink_activity)
from rfhunt.errors import DspError
from tests.shared_data import DATA_DIR, requires

UPLINK = DATA_DIR / "gsm" / "uplink" / "iq-ul-4bursts.cf64"
FS = 2.4e6
FC = float(arfcn_to_uplink_hz(50)) + 100e3


def _handset(n, arfcn, ts, amp, kind=1, offset_hz=0.0, every=1, seed=0, ta=0):
    """One handset: ``kind`` bursts (1 normal, 2 access) in every ``every``-th frame."""
    x = gsm_uplink_iq(0.0, n, FS, timeslot=ts, burst_kind=lambda fn: np.where(fn % every == 0, kind, 0).astype(np.int8),
                      tsc=ts % 8, seed=seed, timing_advance_symbols=ta, fn_epoch=0)
    f = float(arfcn_to_uplink_hz(arfcn)) - FC + offset_hz
    return (amp * x * np.exp(2j * np.pi * f * np.arange(n) / FS)).astype(np.complex64)


def _scene(duration_s=0.2, seed=1):
    n = int(FS * duration_s)
    rng = np.random.default_rng(seed)
    x = np.zeros(n, np.complex64)
    x += _handset(n, 48, 2, 0.05, offset_hz=400.0, seed=1)
    x += _handset(n, 48, 3, 0.025, offset_hz=-900.0, seed=2)  # the next slot, another handset
    x += _handset(n, 52, 5, 0.03, offset_hz=3000.0, seed=3, ta=20)
    x += _handset(n, 55, 0, 0.04, kind=2, every=7, seed=4)  # access bursts
    x += _handset(n, 45, 6, 0.5, offset_hz=-1500.0, seed=5)  # strong, next to 44 and 46
    noise = 10 ** (-60 / 20)  # -60 dBFS per sample: ~-71 dBFS in 200 kHz
    x += (noise / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    chans = [float(arfcn_to_uplink_hz(a)) for a in range(45, 56)]
    return x, chans, n


def test_synthetic_handsets_found_with_kind_slot_power_and_offset():
    x, chans, n = _scene()
    # The uplink frame starts 3 timeslots after the downlink one (TS 45.002 4.3.2).
    frame_start_s = c.SLOT_START_SYMBOLS[3] / c.SYMBOL_RATE_HZ
    b = detect_uplink_bursts(x, FS, FC, chans, frame_start_s=frame_start_s)
    arfcn = 45 + b.channel
    frames = n / FS / (8 * SLOT_S)
    links = {}
    for a, ts, k in zip(arfcn.tolist(), b.timeslot.tolist(), b.kind.tolist()):
        links[(a, ts, k)] = links.get((a, ts, k), 0) + 1
    # Every normal burst of each call (bursts cut by the capture's ends are 'other').
    for a, ts in ((48, 2), (48, 3), (52, 5), (45, 6)):
        assert links.get((a, ts, KIND_NORMAL), 0) >= int(frames) - 2, (a, ts, links)
    assert links.get((55, 0, KIND_ACCESS), 0) == pytest.approx(frames / 7, abs=1.5)
    # Nothing else: no skirts of the strong handset on 44/46, no splinters.
    assert set(links) - {(48, 2, KIND_NORMAL), (48, 3, KIND_NORMAL), (52, 5, KIND_NORMAL), (45, 6, KIND_NORMAL),
                         (55, 0, KIND_ACCESS)} <= {(a, ts, 0) for a, ts, _ in links}
    assert not np.isin(arfcn, [44, 46, 47]).any()
    # On-air time at -3 dB: the 148 (88) bits and half of the simulator's 4-symbol ramps,
    # widened a little by the channel filter.
    nb = b.kind == KIND_NORMAL
    assert np.all(np.abs(b.duration_s[nb] * c.SYMBOL_RATE_HZ - 151) < 4)
    ab = b.kind == KIND_ACCESS
    assert np.all(np.abs(b.duration_s[ab] * c.SYMBOL_RATE_HZ - 91) < 4)
    # Carrier offsets: tens of Hz at these SNRs.
    for a, ts, off in ((48, 2, 400.0), (48, 3, -900.0), (52, 5, 3000.0), (45, 6, -1500.0)):
        sel = nb & (arfcn == a) & (b.timeslot == ts)
        assert np.median(b.offset_hz[sel]) == pytest.approx(off, abs=150.0)
    # Powers: 6 dB between the two handsets sharing ARFCN 48.
    p2 = np.median(b.power_dbfs[nb & (arfcn == 48) & (b.timeslot == 2)])
    p3 = np.median(b.power_dbfs[nb & (arfcn == 48) & (b.timeslot == 3)])
    assert p2 - p3 == pytest.approx(6.0, abs=0.5)
    assert np.all(b.snr_db[nb & (arfcn == 48) & (b.timeslot == 2)] > 30)


def test_relative_timeslots_keep_the_pattern_without_a_frame_reference():
    x, chans, _ = _scene(seed=2)
    b = detect_uplink_bursts(x, FS, FC, chans)
    nb = b.kind == KIND_NORMAL
    arfcn = 45 + b.channel[nb]
    rel = {}
    for a, ts in zip(arfcn.tolist(), b.timeslot[nb].tolist()):
        rel.setdefault(a, set()).add(ts)
    shift = (next(iter(rel[48])) - 2) % 8
    # TS 2 and 3 on ARFCN 48, TS 5 on 52 (20 symbols of timing advance), TS 6 on 45: one shift.
    assert rel[48] == {(2 + shift) % 8, (3 + shift) % 8}
    assert rel[52] == {(5 + shift) % 8} and rel[45] == {(6 + shift) % 8}


def test_activity_counts_links_concurrency_and_access_rate():
    x, chans, n = _scene(duration_s=0.3, seed=3)
    b = detect_uplink_bursts(x, FS, FC, chans)
    act = uplink_activity(b, n / FS)
    assert act.channel.size == 4  # 48/2, 48/3, 52/5, 45/6
    assert np.all(act.duty > 0.85)
    assert act.concurrent_max == 4 and act.concurrent_mean > 3.5
    assert act.access_rate_hz == pytest.approx(1 / (7 * 8 * SLOT_S), rel=0.25)
    with pytest.raises(DspError, match="capture_s"):
        uplink_activity(b, 0.0)


def test_noise_alone_gives_no_bursts_and_bad_input_is_refused():
    rng = np.random.default_rng(9)
    n = int(FS * 0.1)
    x = (0.01 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    chans = [float(arfcn_to_uplink_hz(a)) for a in range(45, 56)]
    assert len(detect_uplink_bursts(x, FS, FC, chans)) == 0
    with pytest.raises(DspError, match="1-D complex"):
        detect_uplink_bursts(np.zeros((2, 10)), FS, FC, chans)
    with pytest.raises(DspError, match="shorter than one GSM timeslot"):
        detect_uplink_bursts(x[:100], FS, FC, chans)
    with pytest.raises(DspError, match="sample_rate_hz"):
        detect_uplink_bursts(x, float("nan"), FC, chans)


@requires(UPLINK)
def test_real_uplink_snippet_four_bursts_one_frame_apart():
    """The README's source says 2.167 MS/s; the signal says 1.0833 MS/s (4 samples per
    symbol): only there are the bursts 148 symbols long, one TDMA frame apart on one
    timeslot, 230 kHz wide (GMSK's 99 % bandwidth), and does a training sequence fit them."""
    x = np.fromfile(UPLINK, dtype=np.complex64)
    assert x.size == 19152
    fs = 6.5e6 / 6
    b = detect_uplink_bursts(x, fs, 0.0, [0.0])
    assert len(b) == 4 and np.all(b.kind == KIND_NORMAL)
    assert np.all(np.abs(b.duration_s * c.SYMBOL_RATE_HZ - 148) < 6)
    np.testing.assert_allclose(np.diff(b.start_s), 8 * SLOT_S, atol=10e-6)  # one TDMA frame
    assert np.ptp(b.slot % 8) == 0 and np.all(np.diff(b.slot) == 8)
    assert np.all(b.snr_db > 30)
    assert np.ptp(b.offset_hz) < 300 and abs(np.median(b.offset_hz) + 660) < 200
    # At the stated 2.167 MS/s the same runs are 300 us long and 2.3 ms apart: no GSM burst.
    b2 = detect_uplink_bursts(x, 2 * fs, 0.0, [0.0])
    assert not np.any(b2.kind == KIND_NORMAL)
    assert np.allclose(np.diff(b2.start_s), 4 * SLOT_S, atol=30e-6)
    # Spectrum: 99 % of the power within 0.21 of the rate: 229 kHz at 1.0833 MS/s.
    spec = np.fft.fftshift(np.abs(np.fft.fft(x)) ** 2)
    cum = np.cumsum(spec) / spec.sum()
    occupied = (np.searchsorted(cum, 0.995) - np.searchsorted(cum, 0.005)) / x.size
    assert 200e3 < occupied * fs < 260e3
    # Training sequence code 1 fits all four bursts (22 dB), no other code does.
    chz = channelize(x, fs, 0.0, [0.0], sps=2)
    st = b.start_s * chz.sample_rate_hz
    snr = np.array([demodulate_bursts(chz.iq, chz.sample_rate_hz, np.zeros(4, int), st, b.offset_hz, tsc,
                                      search_symbols=8).snr_db for tsc in range(8)])
    assert np.all(snr[1] > 18) and np.all(np.delete(snr, 1, axis=0) < 6)


def test_goip_group_told_from_scattered_phones():
    """Six handsets of one gateway (one power level, two ARFCNs) and two phones at other
    levels: the gateway's group is goip_suspect, the phones are not."""
    from dsp.gsm.goip import capture_groups

    n = int(FS * 0.25)
    rng = np.random.default_rng(4)
    x = np.zeros(n, np.complex64)
    box = [(47, 1), (47, 2), (47, 4), (53, 0), (53, 3), (53, 6)]
    for i, (a, ts) in enumerate(box):
        x += _handset(n, a, ts, 0.02 * 10 ** (rng.uniform(-1, 1) / 20), offset_hz=float(rng.uniform(-300, 300)),
                      seed=10 + i)
    x += _handset(n, 49, 5, 0.2, seed=30)    # a phone next to the sensor (+20 dB)
    x += _handset(n, 51, 7, 0.002, seed=31)  # a phone far away (-20 dB)
    x += (1e-3 / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    chans = [float(arfcn_to_uplink_hz(a)) for a in range(45, 56)]
    b = detect_uplink_bursts(x, FS, FC, chans)
    act = uplink_activity(b, n / FS)
    groups = capture_groups(b, act, np.arange(45, 56))
    verdicts = sorted((g.verdict, len(g.link)) for g in groups)
    assert verdicts == [("goip_suspect", 6), ("uplink", 1), ("uplink", 1)]
    goip = next(g for g in groups if g.verdict == "goip_suspect")
    assert goip.concurrent_max == 6
    assert "6 uplink channels on the air in one TDMA frame" in goip.reasons[0]
    assert sorted(45 + act.channel[goip.link]) == [47, 47, 47, 53, 53, 53]
