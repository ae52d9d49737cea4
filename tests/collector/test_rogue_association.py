"""Association of GSM downlink detections by decoded identity (ARFCN + BSIC)."""

from __future__ import annotations

from collector.association import (
    IDENTITY_AHEAD_S,
    IDENTITY_HOLD_S,
    associate,
    associate_detections,
)
from collector.store import Store
from rfhunt.records import Detection

T0 = 1_790_000_000.0
POS = {"a": (22.54, 114.05), "b": (22.56, 114.05), "c": (22.60, 114.05)}


def sweep(seq: int, t: float, sensor: str = "a", arfcn: int = 63, power: float = -70.0) -> Detection:
    lat, lon = POS[sensor]
    return Detection(sensor, seq, T0 + t, lat, lon, "gsm_downlink", 935e6 + 0.2e6 * arfcn, arfcn, 200e3, power, 20.0,
                     {"noise_dbm": -104.0})


def decoded(seq: int, t: float, sensor: str = "a", arfcn: int = 63, bsic: int = 9, lac: int = 1234,
            power: float = -70.0) -> Detection:
    lat, lon = POS[sensor]
    return Detection(sensor, seq, T0 + t, lat, lon, "gsm_downlink", 935e6 + 0.2e6 * arfcn, arfcn, 200e3, power, 20.0,
                     {"decoded": True, "bsic": bsic, "mcc": "460", "mnc": "00", "lac": lac, "cid": 7})


def by_key(store: Store) -> dict[str, object]:
    return {e.assoc_key: e for e in store.emitters()}


def test_decoded_cells_are_keyed_by_arfcn_and_bsic_and_sweeps_follow_their_sensor(db_url):
    with Store.open(db_url) as store:
        # a LAC-cycling cell stays one emitter; a second BSIC on the same ARFCN is another one
        store.add_batch([decoded(1, 0.0, lac=1234), decoded(2, 40.0, lac=1241), decoded(3, 10.0, "b", bsic=17),
                         sweep(4, 20.0), sweep(5, 30.0, "b")])
        associate(store)
        keys = by_key(store)
        assert set(keys) == {"gsm_downlink:arfcn:63:bsic:9", "gsm_downlink:arfcn:63:bsic:17"}
        assert keys["gsm_downlink:arfcn:63:bsic:9"].n_detections == 3    # two decodes + sensor a's sweep
        assert keys["gsm_downlink:arfcn:63:bsic:17"].n_detections == 2   # sensor b's decode + sweep


def test_a_sweep_before_the_decode_is_moved_to_the_cell(db_url):
    with Store.open(db_url) as store:
        store.add_batch([sweep(1, 0.0)])
        res = associate_detections(store)
        (carrier,) = store.emitters()
        assert carrier.assoc_key == "gsm_downlink:arfcn:63" and res.touched == {carrier.id}
        # the sensor decodes the cell a few seconds later: the sweep joins it, the bare carrier goes
        store.add_batch([decoded(2, 5.0)])
        res = associate_detections(store)
        (cell,) = store.emitters()
        assert cell.assoc_key == "gsm_downlink:arfcn:63:bsic:9" and cell.n_detections == 2
        assert res.deleted == {carrier.id} and cell.id in res.touched
        assert cell.first_seen_utc == T0 and cell.last_seen_utc == T0 + 5.0
        # too late a decode does not take older sweeps
        store.add_batch([sweep(3, 100.0, arfcn=70)])
        associate(store)
        store.add_batch([decoded(4, 100.0 + IDENTITY_AHEAD_S + 1, arfcn=70)])
        associate(store)
        assert by_key(store)["gsm_downlink:arfcn:70"].n_detections == 1


def test_identity_hold_and_the_nearest_sensors_cell(db_url):
    with Store.open(db_url) as store:
        # sensor a decoded BSIC 9 on ARFCN 63, sensor c (far) BSIC 17
        store.add_batch([decoded(1, 0.0, "a"), decoded(2, 0.0, "c", bsic=17)])
        associate(store)
        # later sweeps: a's own identity holds; b never decoded: the cell of the nearest sensor (a)
        store.add_batch([sweep(3, 600.0, "a"), sweep(4, 600.0, "b"), sweep(5, IDENTITY_HOLD_S + 10.0, "a")])
        associate(store)
        keys = by_key(store)
        assert keys["gsm_downlink:arfcn:63:bsic:9"].n_detections == 3
        assert keys["gsm_downlink:arfcn:63:bsic:17"].n_detections == 1
        assert keys["gsm_downlink:arfcn:63"].n_detections == 1   # past the hold: a bare carrier


def test_other_kinds_keep_their_keys(sqlite_url):
    with Store.open(sqlite_url) as store:
        up = Detection("a", 1, T0, 22.54, 114.05, "gsm_uplink", 890.2e6, 1, 200e3, -70.0, 20.0, {"bsic": 3})
        fm = Detection("a", 2, T0, 22.54, 114.05, "fm", 98.1e6, None, 200e3, -50.0, 30.0, {"decoded": True})
        store.add_batch([up, fm])
        associate(store)
        assert set(by_key(store)) == {"gsm_uplink:arfcn:1", "fm:98100000"}
