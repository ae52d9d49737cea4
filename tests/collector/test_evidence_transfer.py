"""Evidence from sensors to the collector: the chunk record, requests, joining snippets in
the store, and the whole path over real ZeroMQ sockets from a simulated FM sensor."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import threading
import time

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import CollectorConfig, load_collector_config
from collector.evidence import evidence_for_emitter, read_evidence
from collector.evidence_ingest import (add_request, assemble, auto_requests, drop_stale_parts, requests,
                                       store_chunks)
from collector.judge import Judgement
from collector.service import Collector
from collector.store import Store
from rfhunt.errors import ConfigError, StoreError, WireError
from rfhunt.records import (EVIDENCE_CHUNK_BYTES, Detection, EvidenceChunk, EvidenceRequest, decode, decode_request,
                            encode, encode_request, evidence_chunks)
from sensors.config import ScanSpec, SensorConfig
from sensors.fm_scan import sweep_fm_band
from sensors.gps import SourcePosition
from sensors.node import SensorNode
from sensors.publish import Publisher
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World

T0 = 1_750_000_000.0
FM_SWEEP = ScanSpec("fm", 2.4e6, 0.02, 20.7)
FM_MONITOR = ScanSpec("fm", 2.4e6, 0.3, 20.7, decode=True)


def _iq(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _chunks(samples, *, kind="iq", first_seq=100, det_seq=7, request_id=None, sensor="s1"):
    return evidence_chunks(samples, kind=kind, sensor_id=sensor, seqs=itertools.count(first_seq), t_utc=T0 + 1,
                           sensor_lat=22.5, sensor_lon=114.0, detection_seq=det_seq, sample_rate_hz=240e3,
                           center_freq_hz=93.6e6, request_id=request_id)


def _detection(seq=7, sensor="s1", freq_hz=93.6e6):
    return Detection(sensor, seq, T0, 22.5, 114.0, "fm", freq_hz, None, 200e3, -60.0, 30.0, {"pilot": False})


# ------------------------------------------------------------------------------ wire
def test_a_snippet_travels_in_chunks_that_each_fit_a_message_and_join_to_its_bytes():
    x = _iq(20_000)
    chunks = _chunks(x)
    assert [c.seq for c in chunks] == [100, 101, 102, 103] and {c.parts for c in chunks} == {4}
    back = [decode(encode(c)) for c in chunks]
    assert back == chunks
    joined = b"".join(c.data for c in back)
    assert joined == x.astype("<c8").tobytes()
    assert hashlib.sha512(joined).hexdigest() == chunks[0].sha512
    audio = np.sin(np.arange(48_000, dtype=np.float32) / 10)
    (one, *rest) = _chunks(audio, kind="audio")
    assert len(rest) == 4 and one.n_samples == 48_000


@pytest.mark.parametrize(("change", "names"), [
    ({"part": 4}, "part"),
    ({"parts": 3}, "parts"),
    ({"kind": "wav"}, "kind"),
    ({"sha512": "ab" * 63}, "sha512"),
    ({"data_b64": "not base64!"}, "data_b64"),
    ({"data_b64": base64.b64encode(b"\0" * 16).decode()}, "holds 16 bytes"),
    ({"n_samples": 0}, "n_samples"),
    ({"request_id": "r 1"}, "request_id"),
    ({"detection_seq": -1}, "detection_seq"),
    ({"kind": ["iq"]}, "kind"),
])
def test_a_malformed_chunk_is_rejected_naming_the_field(change, names):
    good = _chunks(_iq(20_000))[0]
    body = json.loads(encode(good))
    body.update(change)
    with pytest.raises(WireError, match=names):
        decode(json.dumps(body).encode())


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3 * EVIDENCE_CHUNK_BYTES // 8 + 7), kind=st.sampled_from(["iq", "audio"]))
def test_chunks_of_any_length_round_trip(n, kind):
    x = _iq(n) if kind == "iq" else np.linspace(-1, 1, n, dtype=np.float32)
    chunks = _chunks(x, kind=kind)
    assert all(len(encode(c)) <= 64 * 1024 for c in chunks)
    assert b"".join(decode(encode(c)).data for c in chunks) == x.astype("<c8" if kind == "iq" else "<f4").tobytes()


def test_evidence_chunks_refuses_what_cannot_be_sent():
    with pytest.raises(WireError, match="complex"):
        _chunks(np.ones(10, np.complex64), kind="audio")
    with pytest.raises(WireError, match="non-empty"):
        _chunks(np.zeros(0, np.complex64))
    with pytest.raises(WireError, match="kind"):
        _chunks(_iq(10), kind="wav")


def test_requests_round_trip_and_bad_ones_are_named():
    req = EvidenceRequest("r12", "fm", 93.6e6, 5.0, ("audio", "iq"), T0 + 3600)
    assert decode_request(json.loads(encode_request(req))) == req
    body = json.loads(encode_request(req))
    for change, names in [({"seconds": 600}, "seconds"), ({"want": ["mp3"]}, "want"), ({"v": 9}, "version"),
                          ({"extra": 1}, "extra"), ({"kind": "tv"}, "kind"), ({"kind": ["fm"]}, "kind"),
                          ({"want": [["iq"]]}, "want")]:
        with pytest.raises(WireError, match=names):
            decode_request({**body, **change})


# ------------------------------------------------------------------------------ store
def test_chunks_are_kept_once_and_joined_when_the_last_arrives(db_url):
    x = _iq(20_000, seed=3)
    chunks = _chunks(x, request_id=None)
    with Store.open(db_url) as store:
        store.add_batch([_detection()])
        assert store_chunks(store, chunks[:2], T0) == [True, True]
        assert assemble(store, T0).kept == []  # half a snippet
        assert store_chunks(store, chunks[1:], T0) == [False, True, True]  # a resent chunk is a duplicate
        res = assemble(store, T0, sensors={"s1"})
        (row,) = res.kept
        assert row.kind == "iq" and row.n_samples == x.size and row.sha512 == chunks[0].sha512
        assert row.sample_rate_hz == 240e3 and row.center_freq_hz == 93.6e6 and row.t_utc == T0 + 1
        assert np.array_equal(read_evidence(store, row.id), x)
        # chunks sent again after their snippet was kept stay duplicates, and nothing is kept twice
        assert store_chunks(store, chunks, T0) == [False] * 4
        assert assemble(store, T0).kept == []
        assert row.emitter_id is None and row.detection_id == store.detections()[0].id  # not associated here


def test_a_snippet_waits_for_its_detection(db_url):
    x = _iq(6_000, seed=4)
    with Store.open(db_url) as store:
        store_chunks(store, _chunks(x, det_seq=9), T0)
        res = assemble(store, T0)
        assert res.kept == [] and res.waiting == 1
        store.add_batch([_detection(seq=9)])
        (row,) = assemble(store, T0).kept
        assert np.array_equal(read_evidence(store, row), x)


def test_a_snippet_that_does_not_match_its_hash_is_discarded(db_url):
    x = _iq(12_000, seed=5)
    chunks = _chunks(x)
    forged = base64.b64encode(bytes(len(chunks[1].data))).decode()
    chunks[1] = dataclasses.replace(chunks[1], data_b64=forged)
    with Store.open(db_url) as store:
        store.add_batch([_detection()])
        store_chunks(store, chunks, T0)
        res = assemble(store, T0)
        assert res.kept == [] and res.corrupt == 1
        assert assemble(store, T0).corrupt == 0  # discarded once, not retried


def test_one_snippet_serves_every_request_it_answers(db_url):
    with Store.open(db_url) as store:
        ops = add_request(store, kind="fm", freq_hz=93.6e6, now_utc=T0, reason="operator")
        auto = add_request(store, kind="fm", freq_hz=93.6e6, now_utc=T0, reason="verdict unlicensed")
        store.add_batch([_detection()])
        x = _iq(3_000)
        store_chunks(store, _chunks(x, request_id=ops.request_id) + _chunks(x, first_seq=200,
                                                                             request_id=auto.request_id), T0)
        (row,) = assemble(store, T0 + 1).kept
        assert {r.state for r in requests(store, T0 + 2)} == {"served"}


def test_incomplete_snippets_are_dropped_after_their_time(db_url):
    with Store.open(db_url) as store:
        store_chunks(store, _chunks(_iq(20_000))[:3], T0)
        assert drop_stale_parts(store, T0 + 10, ttl_s=60) == 0
        assert drop_stale_parts(store, T0 + 61, ttl_s=60) == 3


def test_a_request_is_served_by_the_snippet_that_answers_it(db_url):
    with Store.open(db_url) as store:
        req = add_request(store, kind="fm", freq_hz=93.6e6, now_utc=T0, ttl_s=600, seconds=2.0)
        assert req.state == "open" and req.request_id == f"r{req.id}" and req.want == ("audio", "iq")
        assert [r.id for r in requests(store, T0 + 1, open_only=True)] == [req.id]
        assert requests(store, T0 + 601, open_only=True) == []
        assert requests(store, T0 + 601)[0].state == "expired"
        store.add_batch([_detection()])
        store_chunks(store, _chunks(_iq(3_000), request_id=req.request_id), T0)
        assemble(store, T0 + 5)
        (done,) = requests(store, T0 + 6)
        assert done.state == "served" and done.served_by == "s1" and done.served_utc == T0 + 5
        with pytest.raises(StoreError, match="seconds"):
            add_request(store, kind="fm", freq_hz=93.6e6, now_utc=T0, seconds=600)
        with pytest.raises(StoreError, match="want"):
            add_request(store, kind="fm", freq_hz=93.6e6, now_utc=T0, want=("mp3",))
        with pytest.raises(StoreError, match="no audio"):
            add_request(store, kind="gsm_downlink", freq_hz=947.6e6, now_utc=T0, want=("audio",))
        with pytest.raises(StoreError, match="gsm_uplink"):
            add_request(store, kind="gsm_uplink", freq_hz=902.6e6, now_utc=T0)


def test_the_collector_asks_once_for_each_carrier_judged_unlicensed_or_rogue(sqlite_url):
    gsm = Detection("s1", 3, T0, 22.5, 114.0, "gsm_downlink", 947.6e6, 63, 200e3, -50.0, 30.0, {})
    with Store.open(sqlite_url) as store:
        store.add_batch([_detection(seq=1), _detection(seq=2, freq_hz=97.1e6), gsm])
        from collector.association import associate_detections

        associate_detections(store)
        ems = {e.freq_hz: e for e in store.emitters()}
        verdicts = {ems[93.6e6].id: Judgement("unlicensed", ("no licence",)),
                    ems[97.1e6].id: Judgement("licensed", ("matches",)),
                    ems[947.6e6].id: Judgement("rogue", ("score 9",), score=9.0)}
        fm, cell = sorted(auto_requests(store, store.emitters(), verdicts, T0, seconds=3.0, gsm_seconds=0.5),
                          key=lambda r: r.kind)
        assert fm.emitter_id == ems[93.6e6].id and fm.freq_hz == 93.6e6 and fm.reason == "verdict unlicensed"
        assert fm.want == ("audio", "iq") and fm.seconds == 3.0
        assert (cell.kind, cell.want, cell.seconds, cell.reason) == ("gsm_downlink", ("iq",), 0.5, "verdict rogue")
        assert auto_requests(store, store.emitters(), verdicts, T0 + 60) == []
        assert auto_requests(store, store.emitters(), verdicts, T0, verdict_set=()) == []


def test_evidence_config_keys_are_checked(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[evidence]\nauto_verdicts = ["unlicensed"]\nsnippet_s = 8\nrequest_resend_s = 5\n'
                    'gsm_snippet_s = 0.5\n')
    cfg = load_collector_config(path)
    assert cfg.auto_verdicts == ("unlicensed",) and cfg.snippet_s == 8.0 and cfg.request_resend_s == 5.0
    assert cfg.gsm_snippet_s == 0.5 and CollectorConfig().auto_verdicts == ("unlicensed", "suspicious", "rogue")
    for body, names in [('snippet_s = 600', "snippet_s"), ('auto_verdicts = ["goip"]', "auto_verdicts"),
                        ('seconds = 3', "unknown key 'seconds'")]:
        path.write_text(f"[evidence]\n{body}\n")
        with pytest.raises(ConfigError, match=names):
            load_collector_config(path)


# ------------------------------------------------------------------------------ sensor
def test_the_fm_sweep_records_a_requested_station_for_as_long_as_asked():
    world = World(load_scenario())
    src = SimulatedSource(world, "roof-se", seed=3)
    sweep = sweep_fm_band(src, FM_MONITOR, calibration_db=-5.0, snippet_freqs_hz=np.array([101.3e6, 93.6e6]),
                          snippet_seconds=1.0)
    (i,) = sweep.snippets  # 93.6 MHz is not heard at this sensor
    snip = sweep.snippets[i]
    assert sweep.found[i].freq_hz == 101.3e6 and snip.freq_hz == 101.3e6
    assert snip.audio.dtype == np.float32 and snip.audio.size == pytest.approx(48_000, abs=48)
    assert snip.iq.dtype == np.complex64 and snip.iq.size == pytest.approx(snip.iq_rate_hz, rel=0.01)
    assert abs(snip.iq_center_hz - 101.3e6) < 200e3
    assert 0.01 < float(np.sqrt(np.mean(snip.audio ** 2))) < 1.0  # programme, not silence or clipping


def test_a_node_serves_a_request_from_the_collector_over_real_sockets(tmp_path):
    """Operator asks; the collector sends the request to the sensor it has heard from; the
    sensor's next FM decode scan records the black radio on 101.3 MHz and sends audio and IQ in chunks
    through its outbox; the collector joins, checks and keeps them, and marks the request
    served."""
    ctx = zmq.Context()
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*",
                          pub_bind="tcp://127.0.0.1:*", relocate_interval_s=0.2, request_resend_s=0.5,
                          auto_verdicts=())
    collector = Collector(cfg, context=ctx)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"evidence")
    sub.connect(collector.pub_endpoint)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    pub = Publisher(collector.endpoint, "roof-se", context=ctx)
    world = World(load_scenario())
    src = SimulatedSource(world, "roof-se", seed=3)
    node_cfg = SensorConfig("roof-se", "sim:roof-se", ppm=0.0, track_ppm=False, scans=(FM_SWEEP, FM_MONITOR))
    node = SensorNode(node_cfg, src, SourcePosition(src), pub.send, requests=pub.take_requests)
    try:
        node.heartbeat()  # the collector learns of the sensor
        assert pub.flush(10)
        req = add_request(collector.store, kind="fm", freq_hz=101.3e6, now_utc=time.time(), seconds=1.5,
                          sensor_id="roof-se")
        deadline = time.monotonic() + 15
        while not pub._requests and time.monotonic() < deadline:
            pub.pump(100)
        assert [r.request_id for r in pub._requests] == [req.request_id]
        node.scan_once()
        assert pub.flush(30), f"{pub.pending} records not acknowledged"
        deadline = time.monotonic() + 15
        while requests(collector.store, time.time())[0].state != "served" and time.monotonic() < deadline:
            time.sleep(0.1)
        feed = []
        while sub.poll(2000) and len(feed) < 2:
            feed.append(json.loads(sub.recv_multipart()[1]))
    finally:
        stop.set()
        thread.join(15)
        stats = collector.stats()
        summary = collector._summary()  # the event=stats log line
        collector.close()
        pub.close()
        sub.close()
        ctx.term()
    assert not thread.is_alive()
    assert stats["evidence_kept"] == 2 and stats["evidence_corrupt"] == 0
    assert "evidence_kept=2 evidence_corrupt=0" in summary
    assert stats["evidence_chunks"] > 20  # 1.5 s of IQ is hundreds of kB
    assert sorted(f["kind"] for f in feed) == ["audio", "iq"]
    with Store.open(cfg.db_url) as store:
        (served,) = requests(store, time.time())
        assert served.state == "served" and served.served_by == "roof-se"
        (det,) = [d for d in store.detections() if d.freq_hz == 101.3e6 and d.features.get("capture_s") == 0.3]
        rows = evidence_for_emitter(store, det.emitter_id)
        assert sorted(r.kind for r in rows) == ["audio", "iq"] and {r.detection_id for r in rows} == {det.id}
        audio = next(r for r in rows if r.kind == "audio")
        iq = next(r for r in rows if r.kind == "iq")
        assert audio.n_samples / audio.sample_rate_hz == pytest.approx(1.5, abs=0.01)
        assert iq.n_samples / iq.sample_rate_hz == pytest.approx(1.5, abs=0.01)
        assert (audio.lat, audio.lon) == (det.sensor_lat, det.sensor_lon)
        assert read_evidence(store, iq).dtype == np.complex64
        assert float(np.std(read_evidence(store, audio))) > 0.01


def test_operators_file_and_list_requests_from_the_command_line(tmp_path, capsys):
    from rfhunt.cli import main

    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["evidence", "request", "--db", db, "--freq-mhz", "101.3", "--seconds", "3", "--sensor", "roof-se",
                 "--why", "case 117"]) == 0
    assert "r1: fm 101.3000 MHz, 3 s of audio and iq, to roof-se" in capsys.readouterr().out
    assert main(["evidence", "request", "--db", db]) == 2
    assert "--freq-mhz" in capsys.readouterr().err
    assert main(["evidence", "request", "--db", db, "--emitter", "99"]) == 2
    assert "no emitter 99" in capsys.readouterr().err
    assert main(["evidence", "list", "--db", db, "--format", "jsonl"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["request_id"] == "r1" and row["state"] == "open" and row["reason"] == "operator: case 117"
    assert row["sensor_id"] == "roof-se" and row["seconds"] == 3.0
