"""The windowed GSM receiver: channel windows cut out of a capture, and the receiver that
acquires cells on the capture's start and then follows them window by window.

The reference throughout is the whole-capture path (every channel channelized over the
whole capture), which the tests in test_gsm_rx.py validate against gr-gsm's material.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.bands import arfcn_to_downlink_hz
from dsp.gsm import constants as c
from dsp.gsm.bcch import bcch_payload
from dsp.gsm.decode import decode_bcch
from dsp.gsm.rx import receiver as rx
from dsp.gsm.rx.channelizer import channelize, rate_ratio
from dsp.gsm.rx.equalizer import rx_filter
from dsp.gsm.rx.receiver import KIND_SCH, receive_bcch
from dsp.gsm.rx.windows import EDGE_SYMBOLS, channel_windows, fir_response, window_plan
from dsp.gsm.si import encode_si1, encode_si3
from dsp.gsm.tx import gsm_downlink_iq
from rfhunt.errors import DspError


@pytest.mark.parametrize("rate", [500e3, 1e6, 1625e3 / 1.5, 2.4e6, 3.2e6, 4e6])
@pytest.mark.parametrize("sps", [2, 4])
def test_window_plan_is_exact(rate, sps):
    plan = window_plan(rate, sps, 200.0)
    assert plan is not None
    assert plan.n_out / plan.n_in == pytest.approx(sps * c.SYMBOL_RATE_HZ / rate, rel=1e-12)
    assert plan.n_in >= 200.0 * rate / c.SYMBOL_RATE_HZ


def test_window_plan_refuses_awkward_rates_and_bad_input():
    # 2.048 MS/s needs 6144-sample windows for an exact ratio: still taken (3 ms, 4 times the
    # span asked for), but a rate with a huge denominator is not.
    assert window_plan(2.048e6, 2, 200.0) is not None
    assert window_plan(2_400_017.0, 2, 200.0) is None
    with pytest.raises(DspError, match="sps"):
        window_plan(2.4e6, 3, 200.0)
    with pytest.raises(DspError, match="positive"):
        window_plan(-1.0, 2, 200.0)


@pytest.mark.parametrize("rate", [1e6, 2.4e6, 4e6])
def test_windows_equal_the_channelizer_away_from_their_edges(rate):
    """A window is the channelizer's output over the same stretch, but for a constant phase
    (the mixing starts at the window) and the wrapped filter at its two ends."""
    rng = np.random.default_rng(3)
    n = int(rate * 0.03)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    fc, chans = 0.0, np.array([0.0, 200e3, -400e3])
    ref = channelize(x, rate, fc, chans, sps=2)
    plan = window_plan(rate, 2, 220.0)
    to_in = plan.n_in / plan.n_out
    # Window starts on output samples of the channelizer that fall on input samples (so
    # both grids coincide): multiples of the reduced ratio's numerator.
    p = rate_ratio(rate, 2).numerator
    out_start = p * np.array([1, 2, 3]) * max(1, 1000 // p)
    start = np.rint(out_start * to_in).astype(np.int64)
    assert np.allclose(start, out_start * to_in)
    win = channel_windows(x, plan, fc, chans, start)
    assert np.all(np.abs(win.residual_hz) <= rate / plan.n_in / 2 + 1e-9)
    edge = EDGE_SYMBOLS * 2
    for w in range(3):
        a = win.iq[w, edge:-edge]
        b = ref.iq[w, out_start[w] + edge:out_start[w] + plan.n_out - edge]
        # Both channels sit within half a bin of their nominal centre; remove the residuals.
        m = np.arange(a.size)
        a = a * np.exp(-2j * np.pi * win.residual_hz[w] * m / plan.out_rate_hz)
        b = b * np.exp(-2j * np.pi * ref.residual_hz[w] * m / plan.out_rate_hz)
        phase = np.vdot(a, b) / abs(np.vdot(a, b))
        err = np.linalg.norm(b - phase * a) / np.linalg.norm(b)
        assert err < 0.05, (w, err)


def test_windows_outside_the_capture_are_zero_there_and_dc_is_removed():
    plan = window_plan(1e6, 2, 200.0)
    x = np.full(4000, 0.5 + 0.25j, np.complex64)
    win = channel_windows(x, plan, 0.0, [0.0, 0.0], [-plan.n_in // 2, 4000 - plan.n_in // 2], dc=0.5 + 0.25j)
    assert np.abs(win.iq).max() < 1e-5
    win = channel_windows(x, plan, 0.0, [0.0], [-plan.n_in // 2])  # half before the capture
    e = 2 * EDGE_SYMBOLS
    assert np.abs(win.iq[0, e:plan.n_out // 2 - e]).max() < 0.01
    assert np.abs(win.iq[0, plan.n_out // 2 + e:plan.n_out - e]).mean() == pytest.approx(abs(0.5 + 0.25j), rel=0.02)
    with pytest.raises(DspError, match="outside the capture"):
        channel_windows(x, plan, 0.0, [600e3], [0])
    with pytest.raises(DspError, match="equal length"):
        channel_windows(x, plan, 0.0, [0.0, 0.0], [0])


def test_fir_response_is_the_centred_convolution():
    fs = 2 * c.SYMBOL_RATE_HZ
    h = rx_filter(2, fs)
    for f in (0.0, 50e3, 90e3, 150e3):
        t = np.arange(4000)
        tone = np.exp(2j * np.pi * f * t / fs)
        y = np.convolve(tone, h, mode="same")[500:-500] / tone[500:-500]
        assert np.allclose(y, fir_response(h, np.array([f]), fs)[0], atol=1e-5)


def _city(fs=2.4e6, dur=1.2, seed=5, lo_hz=2.5e3, weak_db=None):
    """Five cells in a 2.4 MHz span (one of them ``weak_db`` dB over the noise if given)."""
    rng = np.random.default_rng(seed)
    n = int(fs * dur)
    t = np.arange(n) / fs
    fc = float(arfcn_to_downlink_hz(25)) + 100e3
    cells = [(21, 1.0), (23, 0.5), (25, 0.8), (26, 0.3), (29, 1.0)]
    x = np.zeros(n, np.complex64)
    truth = {}
    for i, (arfcn, amp) in enumerate(cells):
        lac, cid = 9000 + i, 100 + arfcn
        si = {"SI1": encode_si1([arfcn]), "SI3": encode_si3(mcc="460", mnc="00", lac=lac, cid=cid)}
        s = gsm_downlink_iq(float(rng.uniform(0, c.FRAME_PERIOD_S)), n, fs, bsic=arfcn + 3,
                            fn_epoch=int(rng.integers(0, c.HYPERFRAME)), payload=bcch_payload(si))
        if weak_db is not None and arfcn == 23:
            amp = 10 ** (weak_db / 20) * 0.01
        f = float(arfcn_to_downlink_hz(arfcn)) - fc + lo_hz
        x += (amp * s * np.exp(2j * np.pi * f * t)).astype(np.complex64)
        truth[arfcn] = (arfcn + 3, lac, cid)
    x += (0.01 / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    chans = [float(arfcn_to_downlink_hz(a)) for a in range(20, 31)]
    return x, fs, fc, chans, truth


def test_windowed_receiver_matches_the_whole_capture_receiver():
    x, fs, fc, chans, truth = _city()
    win = receive_bcch(x, fs, fc, chans)
    whole = rx._receive_streams(x, fs, fc, np.asarray(chans), 2, 60e3)
    assert [r.index for r in win] == [r.index for r in whole]
    for a, b in zip(win, whole):
        assert a.bsic == b.bsic
        assert a.offset_hz == pytest.approx(b.offset_hz, abs=15.0)
        assert a.timing.fn_frame0 is not None
        # The same bursts, the same frame numbers, (nearly) the same bits.
        fa = a.timing.fn_frame0 + a.bursts.frame
        fb = b.timing.fn_frame0 + b.bursts.frame
        common, ia, ib = np.intersect1d(fa, fb, return_indices=True)
        assert common.size >= 0.95 * max(fa.size, fb.size)
        assert np.array_equal(a.bursts.kind[ia], b.bursts.kind[ib])
        diff = np.count_nonzero((a.bursts.soft[ia] < 0) != (b.bursts.soft[ib] < 0))
        assert diff <= 2e-4 * a.bursts.soft[ia].size
        # Input-sample timing agrees to a fraction of a symbol.
        sym_in = fs / c.SYMBOL_RATE_HZ
        assert np.median(np.abs(a.bursts.sample[ia] - b.bursts.sample[ib])) < 0.25 * sym_in
        assert a.sch_ok.all() and a.sch_ok.size == int((a.bursts.kind == KIND_SCH).sum())


def test_bcch_only_gives_the_same_identities_from_fewer_bursts():
    x, fs, fc, chans, truth = _city(seed=8, lo_hz=-31e3)
    frames, cells = decode_bcch(x, fs, fc, chans)
    frames_b, cells_b = decode_bcch(x, fs, fc, chans, ccch=False)
    got = {cl.arfcn: (cl.bsic, cl.fields.get("lac"), cl.fields.get("cid")) for cl in cells}
    got_b = {cl.arfcn: (cl.bsic, cl.fields.get("lac"), cl.fields.get("cid")) for cl in cells_b}
    assert got == truth and got_b == truth
    assert {f.channel for f in frames_b} == {"BCCH"}
    assert {f.channel for f in frames} == {"BCCH", "CCCH"}
    assert len(frames_b) < len(frames) / 4
    bcch = {(f.arfcn, f.fn, f.payload) for f in frames if f.channel == "BCCH"}
    assert {(f.arfcn, f.fn, f.payload) for f in frames_b} == bcch


def test_weak_cell_missed_at_the_start_is_searched_through_the_whole_capture(monkeypatch):
    """A cell not acquired on the first stretch (here: acquisition is made to miss it) but
    whose channel holds a carrier is found by the whole-capture search; empty channels and
    the neighbours' skirts are not searched."""
    x, fs, fc, chans, truth = _city(seed=11, weak_db=12.0)
    real = rx._acquire
    searched = []

    def acquire_missing_23(*a, **k):
        cells, acq, fcch = real(*a, **k)
        k23 = chans.index(float(arfcn_to_downlink_hz(23)))
        cells.pop(k23, None)
        acq.pop(k23, None)
        return cells, acq, fcch

    def spy(iq, fs_, fc_, freqs, *a):
        searched.append(sorted(int(round((f - chans[0]) / 200e3)) + 20 for f in freqs))
        return real_streams(iq, fs_, fc_, freqs, *a)

    real_streams = rx._receive_streams
    monkeypatch.setattr(rx, "_acquire", acquire_missing_23)
    monkeypatch.setattr(rx, "_receive_streams", spy)
    frames, cells = decode_bcch(x, fs, fc, chans, ccch=False)
    assert searched == [[22, 23, 24]]  # ARFCN 23 and the neighbours whose skirts matter
    got = {cl.arfcn: (cl.bsic, cl.fields.get("lac"), cl.fields.get("cid")) for cl in cells}
    assert got == truth


def test_long_capture_with_a_large_sample_clock_error_stays_on_the_grid():
    """A 45 ppm receiver (the demo's car) drifts 90 us (24 symbols) over 2 s: the grid is
    refitted on the way, so every SCH of the capture still decodes."""
    fs_nominal = 1e6
    ppm = 45.0
    n = int(fs_nominal * 2.0)
    # Sampling at fs (1 + ppm): the cell's time runs 45 ppm slower in samples.
    fs_true = fs_nominal / (1 + ppm * 1e-6)
    si = {"SI3": encode_si3(mcc="460", mnc="01", lac=77, cid=7)}
    x = gsm_downlink_iq(0.0123, n, fs_true, bsic=44, fn_epoch=123456, payload=bcch_payload(si))
    x = (x + 0.02 * (np.random.default_rng(1).standard_normal(n))).astype(np.complex64)
    res = receive_bcch(x, fs_nominal, 0.0, [0.0])
    assert len(res) == 1
    r = res[0]
    sch = r.bursts.kind == KIND_SCH
    assert sch.sum() >= 40 and r.sch_ok.all()
    assert r.timing.frame_samples / (1250 * 2) == pytest.approx(1 / (1 + ppm * 1e-6), abs=2e-6)
