"""Association of detections with emitters."""

from __future__ import annotations

from collector.association import associate, association_key
from collector.store import Store
from rfhunt.records import Detection

T0 = 1_750_000_000.0


def d(seq, kind, freq_hz, channel, sensor="s1"):
    return Detection(sensor, seq, T0 + seq, 45.0, 7.0, kind, freq_hz, channel, 200e3, -70.0, 15.0)


def test_keys():
    from collector.store import DetectionRow

    def row(kind, f, ch):
        return DetectionRow(1, "s", 1, T0, 45.0, 7.0, kind, f, ch, 200e3, -70.0, 10.0, {}, None)

    assert association_key(row("fm", 100.098e6, None)).key == "fm:100100000"
    assert association_key(row("fm", 100.098e6, None)).freq_hz == 100.1e6
    assert association_key(row("gsm_downlink", 935.2e6, 1)).key == "gsm_downlink:arfcn:1"
    assert association_key(row("gsm_uplink", 890.2e6, 1)).key == "gsm_uplink:arfcn:1"
    assert association_key(row("gsm_uplink", 870.01e6, None)).key == "gsm_uplink:freq:870000000"  # off every raster


def test_channel_less_gsm_detection_joins_the_same_carrier(sqlite_url):
    # the same carriers, once with their ARFCN and once without: one emitter each, not two
    with Store.open(sqlite_url) as store:
        store.add_batch([
            d(1, "gsm_downlink", 935.2e6, 1), d(2, "gsm_downlink", 935.2e6, None, "s2"),
            d(3, "gsm_uplink", 880.2e6, 975), d(4, "gsm_uplink", 880.21e6, None),
            d(5, "gsm_downlink", 1805.2e6, None), d(6, "gsm_downlink", 1805.2e6, 512, "s2"),
        ])
        associate(store)
        by_key = {e.assoc_key: e for e in store.emitters()}
        assert set(by_key) == {"gsm_downlink:arfcn:1", "gsm_uplink:arfcn:975", "gsm_downlink:arfcn:512"}
        assert all(e.n_detections == 2 for e in by_key.values())
        assert by_key["gsm_downlink:arfcn:512"].channel == 512


def test_associate_groups_and_counts(sqlite_url):
    with Store.open(sqlite_url) as store:
        store.add_batch([
            d(1, "fm", 100.1e6, None), d(2, "fm", 100.12e6, None), d(3, "fm", 98.0e6, None),
            d(4, "gsm_downlink", 935.2e6, 1), d(5, "gsm_uplink", 890.2e6, 1), d(6, "gsm_downlink", 935.2e6, 1, "s2"),
        ])
        touched = associate(store)
        assert len(touched) == 4
        by_key = {e.assoc_key: e for e in store.emitters()}
        assert by_key["fm:100100000"].n_detections == 2
        assert by_key["gsm_downlink:arfcn:1"].n_detections == 2
        assert by_key["gsm_downlink:arfcn:1"].first_seen_utc == T0 + 4
        assert by_key["gsm_downlink:arfcn:1"].last_seen_utc == T0 + 6
        assert associate(store) == set()  # nothing new
        store.add_detection(d(7, "fm", 100.1e6, None))
        assert associate(store) == {by_key["fm:100100000"].id}
        assert store.emitter(by_key["fm:100100000"].id).n_detections == 3
        assert all(x.emitter_id is not None for x in store.detections())
