"""GSM channel numbering and scan plans."""

import numpy as np
import pytest

from dsp.bands import BANDS, arfcn_to_downlink_hz, arfcn_to_uplink_hz, band, downlink_hz_to_arfcn, uplink_hz_to_arfcn
from dsp.plan import plan_hops
from rfhunt.errors import DspError


def test_known_arfcns():
    # TS 45.005: P-GSM n=1 -> 890.2 / 935.2 MHz; E-GSM 975 -> 880.2 / 925.2; DCS 512 -> 1710.2 / 1805.2
    assert arfcn_to_uplink_hz(1) == pytest.approx(890.2e6)
    assert arfcn_to_downlink_hz(1) == pytest.approx(935.2e6)
    assert arfcn_to_uplink_hz(975) == pytest.approx(880.2e6)
    assert arfcn_to_downlink_hz(0) == pytest.approx(935.0e6)
    assert arfcn_to_downlink_hz(512) == pytest.approx(1805.2e6)
    assert arfcn_to_downlink_hz(725) == pytest.approx(1847.8e6)  # the Vodafone cell in shared/data


def test_round_trip_all_arfcns():
    a = np.concatenate([np.arange(0, 125), np.arange(975, 1024), np.arange(512, 886)])
    assert np.array_equal(downlink_hz_to_arfcn(arfcn_to_downlink_hz(a)), a)
    g = np.concatenate([np.arange(0, 125), np.arange(975, 1024)])
    assert np.array_equal(uplink_hz_to_arfcn(arfcn_to_uplink_hz(g) + 30e3), g)
    assert downlink_hz_to_arfcn(100e6) == -1


def test_bad_arfcn_and_band():
    with pytest.raises(DspError, match="ARFCN 200"):
        arfcn_to_downlink_hz(200)
    with pytest.raises(DspError, match="dtype"):
        arfcn_to_downlink_hz(np.array([1.5]))
    with pytest.raises(DspError, match="known bands"):
        band("lte")


@pytest.mark.parametrize("name", list(BANDS))
@pytest.mark.parametrize("fs", [1.0e6, 2.048e6, 2.4e6, 3.2e6])
def test_plan_covers_every_channel_once_inside_the_flat_span(name, fs):
    b = BANDS[name]
    hops = plan_hops(b, fs)
    chans = np.concatenate([h.channel_freqs_hz for h in hops])
    assert np.array_equal(np.sort(chans), b.channel_freqs_hz())
    for h in hops:
        off = np.abs(h.channel_freqs_hz - h.center_freq_hz)
        assert np.all(off + b.bandwidth_hz / 2 <= 0.8 * fs / 2 + 1e-6)
        # the DC spike never sits on a channel centre
        assert np.min(off) >= b.channel_hz / 2 - 1e-6 or len(h.channel_freqs_hz) == 0
    # consecutive hops overlap
    centers = np.array([h.center_freq_hz for h in hops])
    assert np.all(np.diff(centers) < 0.8 * fs)


def test_plan_rejects_too_narrow_rate():
    with pytest.raises(DspError, match="too narrow"):
        plan_hops(BANDS["fm"], 250e3)
