"""Evidence of a GSM cell: its channel IQ recorded in a decode scan, faithful enough to decode
again, and sent by the node as IQ chunks (no audio) for the collector's request."""

from __future__ import annotations


import numpy as np
import pytest

from dsp.bands import arfcn_to_downlink_hz
from dsp.gsm.decode import decode_bcch
from rfhunt.records import Detection, EvidenceChunk, EvidenceRequest
from sensors.config import ScanSpec, SensorConfig
from sensors.gps import SourcePosition
from sensors.node import SensorNode
from sensors.scan import ChannelSnippet, sweep_gsm_band
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World

WORLD = World(load_scenario())
FAKE_ARFCN, FAKE_BSIC = 63, 9  # fbs-rooftop of the built-in scenario
F_FAKE = float(arfcn_to_downlink_hz(FAKE_ARFCN))


@pytest.mark.parametrize("dwell_s", [1.2, 0.6])  # long enough, or one more capture for the snippet
def test_a_requested_cell_is_recorded_and_decodes_again_from_its_snippet(dwell_s):
    src = SimulatedSource(WORLD, "car-1", seed=7)
    sweep = sweep_gsm_band(src, ScanSpec("gsm900-dl", 2.4e6, dwell_s, 42.1, decode=True), calibration_db=-5.0,
                           ppm=45.0, near_freqs_hz=np.array([F_FAKE]), snippet_freqs_hz=np.array([F_FAKE]),
                           snippet_seconds=1.0)
    assert sweep.found, "the fake base station was not decoded"
    (i,) = sweep.snippets
    cell, snip = sweep.found[i], sweep.snippets[i]
    assert cell.channel == FAKE_ARFCN and cell.features["bsic"] == FAKE_BSIC
    assert snip.iq.dtype == np.complex64 and snip.iq_rate_hz == pytest.approx(1_083_333.3, rel=1e-6)
    assert snip.iq.size == pytest.approx(snip.iq_rate_hz, abs=2)  # one second
    assert abs(snip.iq_center_hz - F_FAKE) < 5e3
    # the recording holds the cell: its identity decodes from the snippet alone
    _, cells = decode_bcch(snip.iq, snip.iq_rate_hz, snip.iq_center_hz, np.array([F_FAKE]))
    assert [c.bsic for c in cells if c.bsic is not None] == [FAKE_BSIC]


def test_the_node_answers_a_gsm_request_with_iq_only():
    src = SimulatedSource(WORLD, "car-1", seed=7)
    out: list = []
    cfg = SensorConfig("car-1", "sim:car-1", track_ppm=False, ppm=45.0, scans=())
    req = EvidenceRequest("r7", "gsm_downlink", F_FAKE, 0.5, ("audio", "iq"), 4e9)
    node = SensorNode(cfg, src, SourcePosition(src), out.append, requests=lambda: [req])
    assert node._open_requests("gsm_downlink") == [req] and node._open_requests("fm") == []
    det = Detection("car-1", 41, 1.75e9, 22.54, 114.05, "gsm_downlink", F_FAKE, FAKE_ARFCN, 200e3, -50.0, 30.0, {})
    iq = (np.random.default_rng(1).standard_normal(600_000) * (1 + 1j)).astype(np.complex64)
    node._serve(det, ChannelSnippet(F_FAKE, 1.75e9, iq, 1_083_333.3, F_FAKE - 100.0))
    chunks = [r for r in out if isinstance(r, EvidenceChunk)]
    assert chunks and {c.kind for c in chunks} == {"iq"} and {c.request_id for c in chunks} == {"r7"}
    assert {c.detection_seq for c in chunks} == {41} and chunks[0].n_samples == int(0.5 * 1_083_333.3)
    assert chunks[0].center_freq_hz == F_FAKE - 100.0
    assert node._requests == {}  # served once
    node._serve(det, ChannelSnippet(F_FAKE, 1.75e9, iq, 1_083_333.3, F_FAKE))
    assert len([r for r in out if isinstance(r, EvidenceChunk)]) == len(chunks)
    assert len({c.seq for c in chunks}) == len(chunks)  # each chunk its own number
