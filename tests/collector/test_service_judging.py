"""The running collector judges FM carriers against the registry in its database and GSM
uplinks with the GOIP place clustering (collector.service wiring)."""

from __future__ import annotations

from collector.config import CollectorConfig
from collector.fm_registry import import_registry
from collector.service import Collector
from rfhunt.records import Detection
from tests.goip_feed import START_UTC, Feed

T0 = 1_767_000_000.0


def fm_detection(seq: int, freq_hz: float, t_utc: float, sensor: str = "s1", lat: float = 22.54,
                 lon: float = 114.05) -> Detection:
    return Detection(sensor, seq, t_utc, lat, lon, "fm", freq_hz, None, 200e3, -55.0, 30.0,
                     {"deviation_khz": 70.0, "pilot": True})


def test_fm_registry_imported_into_the_database_is_used_live(tmp_path):
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", relocate_interval_s=0.1)
    collector = Collector(cfg)
    try:
        sensors = [("s1", 22.54, 114.05), ("s2", 22.55, 114.06), ("s3", 22.53, 114.07)]
        recs, seq = [], 0
        for k, (sid, lat, lon) in enumerate(sensors):
            for f in (99.1e6, 101.5e6):
                seq += 1
                recs.append(fm_detection(seq, f, T0 + k, sid, lat, lon))
        collector.ingest(recs)
        collector.flush(now_utc=T0 + 10)
        verdicts = {round(e.freq_hz): e.verdict for e in collector.store.emitters(kind="fm")}
        assert verdicts == {99_100_000: "unlicensed", 101_500_000: "unlicensed"}   # empty registry
        reg = tmp_path / "registry.csv"
        reg.write_text("frequency_hz,name,pi,lat,lon,erp_w,licence\n"
                       "101500000,City Radio,,22.545,114.055,1000,GD-0001\n")
        import_registry(collector.store, reg)
        collector._refresh_knowledge(force=True)            # the periodic check, now
        collector.flush(now_utc=T0 + 20)
        ems = {round(e.freq_hz): e for e in collector.store.emitters(kind="fm")}
        assert ems[101_500_000].verdict == "licensed" and "City Radio" in " ".join(ems[101_500_000].reasons)
        assert ems[99_100_000].verdict == "unlicensed"
    finally:
        collector.close()


def test_uplink_links_are_judged_by_goip_place_clustering(tmp_path):
    f = Feed(10)
    f.gateway("goip", 100.0, -200.0, 27.0, (10, 11.5), busy=4)
    f.crowd("crowd", 300.0, 100.0, 300.0, (10, 11.5), calls=4, arfcns=(50,))
    cfg = CollectorConfig(db_url=f"sqlite:///{tmp_path / 'c.db'}", relocate_interval_s=0.1,
                          slow_judge_interval_s=3600.0)
    collector = Collector(cfg)
    try:
        collector.ingest(f.dets)
        collector.flush(now_utc=START_UTC + 12 * 3600)
        ups = {e.channel: e for e in collector.store.emitters(kind="gsm_uplink")}
        assert ups[20].verdict == "goip" and ups[33].verdict == "goip"
        assert any("place-cluster" in r for r in ups[20].reasons)
        assert ups[50].verdict != "goip"
        # a new uplink emitter is judged at once (the slow evidence is refreshed for it)
        collector.ingest([Detection("s1", 10_000_000, START_UTC + 11.6 * 3600, 22.53, 114.04, "gsm_uplink",
                                    890e6 + 0.2e6 * 77, 77, 200e3, -80.0, 24.0,
                                    {"timeslot": 3, "n_bursts": 10, "n_access": 0, "duty": 0.02, "capture_s": 2.0})])
        collector.flush(now_utc=START_UTC + 12 * 3600 + 5)
        ups = {e.channel: e for e in collector.store.emitters(kind="gsm_uplink")}
        assert ups[20].verdict == "goip" and ups[77].verdict == "uplink"
    finally:
        collector.close()
