"""Per-link uplink detection (sensors.scan.measure_uplink_links) when a handset's burst on one
channel is followed, in the next timeslot, by a much stronger handset 200 kHz away: the
weaker one's adjacent-channel skirt must neither become a link of its own nor cost either
handset bursts (bench_uplink_links once reported 9 links for 8 handsets this way)."""

import numpy as np
import pytest

from dsp.bands import BANDS, uplink_channels_in_span
from dsp.gsm.tx import gsm_uplink_iq
from sensors.scan import measure_uplink_links
from sensors.sources.base import IQBlock, complex_to_cu8

FS = 2.4e6
CENTER_HZ = 897.0e6


def capture(handsets, dwell_s=0.1, seed=1):
    """8-bit capture of ``handsets``: (offset from the centre Hz, timeslot, SNR dB over the
    noise of the whole 2.4 MHz span)."""
    rng = np.random.default_rng(seed)
    n = int(dwell_s * FS)
    t = np.arange(n) / FS
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) * np.float32(0.01 / np.sqrt(2))
    for k, (f, ts, snr) in enumerate(handsets):
        w = gsm_uplink_iq(0.0, n, FS, timeslot=ts, burst_kind=lambda fn: np.where(fn % 26 == 25, 0, 1).astype(np.int8),
                          tsc=ts, seed=seed * 100 + k)
        x += np.float32(0.01 * 10 ** (snr / 20)) * w * np.exp(2j * np.pi * f * t).astype(np.complex64)
    x /= np.float32(max(1.0, 1.2 * np.max(np.abs(x))))
    return IQBlock(complex_to_cu8(x), CENTER_HZ, FS, 40.0, 1.8e9, 0, "cu8")


@pytest.mark.parametrize("strong_db", [30.0, 39.3])
def test_skirt_before_a_stronger_neighbour_is_not_a_link(strong_db):
    # a weak handset on timeslot 4 at -600 kHz, a strong one on timeslot 5 at -800 kHz
    blk = capture([(-600e3, 4, 23.1), (-800e3, 5, strong_db)], seed=108)
    band = BANDS["gsm900-ul"]
    found = [m for m in measure_uplink_links(blk, band, uplink_channels_in_span(CENTER_HZ, FS), calibration_db=-5.0)
             if m.features["n_bursts"] > 0]
    offsets = sorted(round(m.freq_hz - CENTER_HZ) for m in found)
    assert offsets == [-800_000, -600_000]
    # one burst per TDMA frame but the idle one: 21 or 22 in 0.1 s (21.7 frames)
    assert all(m.features["n_bursts"] >= 20 for m in found)
    assert all(m.features["n_access"] == 0 for m in found)
    ts = {round(m.freq_hz - CENTER_HZ): m.features["timeslot"] for m in found}
    assert (ts[-800_000] - ts[-600_000]) % 8 == 1


def test_eight_handsets_of_the_bench_are_eight_links():
    """The capture bench_uplink_links.py draws for 0.1 s and 8 handsets (seed 108)."""
    rng = np.random.default_rng(108)
    n = int(0.1 * FS)
    rng.standard_normal(n)
    rng.standard_normal(n)
    chans = uplink_channels_in_span(CENTER_HZ, FS)
    handsets = []
    for k in range(8):
        f = float(chans[rng.integers(len(chans))])
        handsets.append((f - CENTER_HZ, k % 8, float(rng.uniform(15, 40))))
    blk = capture(handsets, seed=108)
    band = BANDS["gsm900-ul"]
    found = [m for m in measure_uplink_links(blk, band, chans, calibration_db=-5.0) if m.features["n_bursts"] > 0]
    assert len(found) == 8
    assert all(m.features["n_bursts"] >= 20 for m in found)
