"""Rogue cells in the running collector: alerts over a real ZeroMQ socket, the stored
verdict with its indicators, the baseline learned from history, the schema migration."""

from __future__ import annotations

import json
import logging
import threading
import time

import numpy as np
import pytest
import zmq
from sqlalchemy import create_engine, text

from collector.baseline import learn_baseline
from collector.config import CollectorConfig, load_collector_config
from collector.service import Collector, rejudge
from collector.store import Store
from rfhunt.errors import ConfigError
from rfhunt.geo import from_enu
from rfhunt.records import Detection, Heartbeat, encode

LAT0, LON0 = 22.54, 114.05
T0 = 1_790_000_000.0
SENSORS = {"n": (0.0, 2000.0), "e": (2000.0, 0.0), "s": (0.0, -2000.0), "w": (-2000.0, 0.0)}
#: Cells of the operator: ARFCN -> (BSIC, LAC, CID, east, north).
CELLS = {12: (21, 9510, 20311, -800.0, 500.0), 25: (34, 9510, 20312, 900.0, 700.0), 38: (12, 9511, 20417, 300.0, -900.0)}
FAKE = (63, 9, 1234, 1, 200.0, 100.0)   # ARFCN, BSIC, LAC, CID, east, north


def ll(e: float, n: float) -> tuple[float, float]:
    lat, lon = from_enu(e, n, LAT0, LON0)
    return float(lat), float(lon)


def write_reference(path) -> None:
    rows = ["mcc,mnc,lac,cid,arfcn,bsic,lat,lon"]
    for arfcn, (bsic, lac, cid, e, n) in CELLS.items():
        rows.append(",".join(map(str, (460, 0, lac, cid, arfcn, bsic, *ll(e, n)))))
    path.write_text("\n".join(rows) + "\n")


def cycle(k: int, t: float, fake: bool, seq: dict[str, int], lo_ppm: float = 4.2) -> list[Detection]:
    """One decode pass of every sensor at ``t``: the operator's cells, and the fake if on air."""
    out = []
    cells = dict(CELLS)
    if fake:
        cells[FAKE[0]] = FAKE[1:]
    for s, (se, sn) in SENSORS.items():
        lat, lon = ll(se, sn)
        for j, (arfcn, (bsic, lac, cid, e, n)) in enumerate(sorted(cells.items())):
            p0 = 37.0 if arfcn == FAKE[0] else 45.0
            power = p0 - 32.0 - 30.0 * np.log10(np.hypot(se - e, sn - n))
            is_fake = arfcn == FAKE[0]
            seq[s] = seq.get(s, 0) + 1
            feats = {"decoded": True, "bsic": bsic, "mcc": "460", "mnc": "00",
                     "lac": lac + (7 * k if is_fake else 0), "cid": cid, "t3212_s": 360 if is_fake else 3600,
                     "cro_db": 60 if is_fake else 0, "penalty_time_s": 20, "si_types": "SI1,SI2,SI3,SI4",
                     "neighbours": "" if is_fake else ",".join(str(a) for a in CELLS if a != arfcn),
                     "ppm": round((2.4 if is_fake else 0.0) - lo_ppm + 0.002 * j, 3), "sensor_ppm": float(k)}
            out.append(Detection(s, seq[s], t + 1.2 * j, lat, lon, "gsm_downlink", 935e6 + 0.2e6 * arfcn, arfcn,
                                 200e3, round(float(power), 2), round(float(power) + 104, 2), feats))
    return out


def test_an_alert_per_rogue_emitter_on_the_live_feed(tmp_path, caplog):
    ref = tmp_path / "cells.csv"
    write_reference(ref)
    ctx = zmq.Context()
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", bind="tcp://127.0.0.1:*",
                          pub_bind="tcp://127.0.0.1:*", relocate_interval_s=0.2, gsm_csv=ref)
    collector = Collector(cfg, context=ctx)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"alert")
    sub.connect(collector.pub_endpoint)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(collector.endpoint)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    caplog.set_level(logging.INFO, logger="collector.alerts")
    seq: dict[str, int] = {}
    try:
        thread.start()
        time.sleep(0.3)  # let the subscription reach the PUB socket

        def send(records) -> None:
            for r in records:
                dealer.send(encode(r))
            got = 0
            deadline = time.monotonic() + 20
            while got < len(records):
                assert time.monotonic() < deadline, "collector did not acknowledge"
                if dealer.poll(200):
                    assert json.loads(dealer.recv())["ok"]
                    got += 1

        def alerts(wait_s: float, until=lambda got: False) -> list[dict]:
            """Live-feed alerts of the next ``wait_s`` seconds (sooner once ``until(got)``)."""
            out: list[dict] = []
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and not until(out):
                if sub.poll(100):
                    topic, body = sub.recv_multipart()
                    assert topic == b"alert"
                    out.append(json.loads(body))
            return out

        def judged(channel: int) -> None:
            """Wait until the collector has judged the emitter on ``channel``."""
            deadline = time.monotonic() + 30
            while not any(e.channel == channel and e.verdict for e in collector.store.emitters()):
                assert time.monotonic() < deadline, "no verdict"
                time.sleep(0.1)

        def changed(got: list[dict]) -> bool:
            return any("identity_change" in {i["name"] for i in a["indicators"]} for a in got)

        send(cycle(0, T0, fake=False, seq=seq))
        judged(12)
        assert alerts(1.0) == []                        # the operator's cells raise nothing
        send(cycle(1, T0 + 40, fake=True, seq=seq))
        first = alerts(30.0, until=bool)
        first += alerts(1.0)
        # a loaded machine may judge the cycle's records in two passes: the alert is raised
        # once and then updated, never raised for a second emitter
        assert first[0]["verdict"] == "rogue" and first[0]["channel"] == 63
        assert first[0]["identity"] == "460-00-1241-1" and first[0]["n_updates"] == 1
        assert [a["n_updates"] for a in first] == list(range(1, len(first) + 1))
        assert {a["emitter_id"] for a in first} == {first[0]["emitter_id"]}
        names = {i["name"] for i in first[-1]["indicators"]}
        assert {"unknown_identity", "no_neighbours", "reselection_pull_strong", "short_t3212_strong",
                "clock_offset_strong"} <= names
        send(cycle(2, T0 + 80, fake=True, seq=seq))    # the LAC changed: the evidence grows
        more = alerts(30.0, until=changed)
        assert more and more[-1]["emitter_id"] == first[0]["emitter_id"] and more[-1]["n_updates"] >= 2
        assert "identity_change" in {i["name"] for i in more[-1]["indicators"]}
    finally:
        stop.set()
        thread.join(10)
        collector.close()
        sub.close()
        dealer.close()
        ctx.term()
    with Store.open(cfg.db_url) as store:
        (alert,) = store.alerts()                      # one row per emitter, updated
        em = store.emitter(alert.emitter_id)
        assert em.verdict == "rogue" and em.score == alert.score and em.identity == "460-00-1248-1"
        assert alert.n_updates >= 2 and alert.raised_utc <= alert.updated_utc
        assert {i["name"] for i in em.indicators} == {i["name"] for i in alert.indicators}
        known = [e for e in store.emitters() if e.channel in CELLS]
        assert len(known) == 3 and {e.verdict for e in known} == {"known"}
    lines = [r.getMessage() for r in caplog.records if r.name == "collector.alerts"]
    assert lines[0].startswith(f"alert raised emitter={alert.emitter_id} arfcn=63 identity=460-00-1241-1")
    assert any(line.startswith("alert updated") for line in lines)


def test_rejudge_without_a_running_collector(tmp_path):
    ref = tmp_path / "cells.csv"
    write_reference(ref)
    with Store.open(f"sqlite:///{tmp_path / 'r.db'}") as store:
        seq: dict[str, int] = {}
        from collector.association import associate
        from collector.reference import load_reference

        store.add_batch(cycle(0, T0, True, seq) + cycle(1, T0 + 40, True, seq))
        associate(store)
        changed = rejudge(store, load_reference(ref, None))
        assert len(changed) == 4
        verdicts = {e.channel: e.verdict for e in store.emitters()}
        assert verdicts == {12: "known", 25: "known", 38: "known", 63: "rogue"}


def test_baseline_learned_from_history(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'b.db'}") as store:
        seq: dict[str, int] = {}
        store.add_batch([Heartbeat(s, 0, T0, *ll(*SENSORS[s]), False, "ok", 0, 0, 0) for s in SENSORS])
        from collector.association import associate

        for k in range(8):                             # 8 decode passes an hour apart, the fake in each
            store.add_batch(cycle(k, T0 + 3600.0 * k, True, seq))
        associate(store)
        n = learn_baseline(store, min_span_s=6 * 3600.0)
        learned = {b.arfcn: b for b in store.baseline_cells()}
        # the operator's cells are learned; the fake changes its LAC and is never learned
        assert n == 3 and set(learned) == set(CELLS)
        b = learned[25]
        assert (b.lac, b.cid, b.bsic, b.n_sightings) == (9510, 20312, 34, 32)
        assert set(b.power) == set(SENSORS) and b.power["n"]["std_db"] < 0.1
        assert b.last_seen_utc - b.first_seen_utc >= 7 * 3600
        # a shorter history is not enough
        with Store.open(f"sqlite:///{tmp_path / 'c.db'}") as other:
            other.add_batch(cycle(0, T0, False, {}) + cycle(1, T0 + 3600, False, {}))
            associate(other)
            assert learn_baseline(other, min_span_s=6 * 3600.0) == 0


def test_migration_from_0001_keeps_the_data(db_url):
    from alembic import command
    from alembic.config import Config

    from collector.store import MIGRATIONS_DIR

    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            conn.execute(text("INSERT INTO emitters (assoc_key, kind, freq_hz, channel, n_detections, reasons) "
                              "VALUES ('gsm_downlink:arfcn:62', 'gsm_downlink', 947.4e6, 62, 0, '[]')"))
    finally:
        engine.dispose()
    with Store.open(db_url) as store:                 # upgrades to the newest revision
        (em,) = store.emitters()
        assert em.channel == 62 and em.score is None and em.indicators == () and em.identity is None
        assert store.alerts() == [] and store.baseline_cells() == [] and store.reference_cells() == []
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:                  # and back down to 0001
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
            assert conn.execute(text("SELECT count(*) FROM emitters")).scalar() == 1
    finally:
        engine.dispose()


def test_judge_config_keys(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[judge]\nsuspicious_score = 4\nrogue_score = 8\nevidence_window_s = 3600\nmotion_window_s = 0\n"
                 "baseline_interval_s = 0\nbaseline_min_span_s = 7200\n")
    cfg = load_collector_config(p)
    assert (cfg.suspicious_score, cfg.rogue_score, cfg.evidence_window_s, cfg.motion_window_s,
            cfg.baseline_interval_s, cfg.baseline_min_span_s) == (4.0, 8.0, 3600.0, 0.0, 0.0, 7200.0)
    p.write_text("[judge]\nsuspicious_score = 9\nrogue_score = 8\n")
    with pytest.raises(ConfigError, match="rogue_score 8.0 is below suspicious_score 9.0"):
        load_collector_config(p)
    p.write_text("[judge]\nmotion_window_s = -1\n")
    with pytest.raises(ConfigError, match="motion_window_s must be a number >= 0"):
        load_collector_config(p)
