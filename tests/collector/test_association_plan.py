"""Association before the insert (issue 7): the store writes each detection's emitter as it
inserts it, with the very choice the association after the insert makes."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from collector.association import (
    IDENTITY_AHEAD_S,
    IDENTITY_HOLD_S,
    associate_detections,
    plan_emitters,
)
from collector.store import Store
from rfhunt.errors import StoreError
from rfhunt.records import Detection, Heartbeat

T0 = 1_790_000_000.0
POS = {"a": (22.54, 114.05), "b": (22.56, 114.05), "c": (22.60, 114.05), "d": (22.50, 114.00)}


def sweep(seq: int, t: float, sensor: str = "a", arfcn: int = 63) -> Detection:
    lat, lon = POS[sensor]
    return Detection(sensor, seq, T0 + t, lat, lon, "gsm_downlink", 935e6 + 0.2e6 * arfcn, arfcn, 200e3, -70.0, 20.0,
                     {"noise_dbm": -104.0})


def decoded(seq: int, t: float, sensor: str = "a", arfcn: int = 63, bsic: int = 9) -> Detection:
    lat, lon = POS[sensor]
    return Detection(sensor, seq, T0 + t, lat, lon, "gsm_downlink", 935e6 + 0.2e6 * arfcn, arfcn, 200e3, -70.0, 20.0,
                     {"decoded": True, "bsic": bsic, "mcc": "460", "mnc": "00", "lac": 1234, "cid": 7})


def _batches(seed: int) -> list[list[Detection | Heartbeat]]:
    """Batches of a mixed stream: cells decoded now and then on three ARFCNs (two BSICs on
    one), power sweeps before, between and long after the decodes, sweeps of a sensor that
    never decodes, GSM uplink, channel-less GSM, FM, heartbeats and resent records."""
    rng = random.Random(seed)
    seqs = dict.fromkeys(POS, 0)
    sent: list[Detection] = []
    out = []
    t = 0.0
    for _ in range(12):
        batch: list[Detection | Heartbeat] = []
        for _ in range(rng.randint(5, 40)):
            t += rng.choice([1.0, 7.0, 45.0, 150.0, 700.0]) * rng.random()
            s = rng.choice("abcd")
            seqs[s] += 1
            arfcn = rng.choice([63, 70, 81])
            roll = rng.random()
            if roll < 0.25 and s != "d":
                rec = decoded(seqs[s], t, s, arfcn, bsic=17 if (arfcn == 81 and s == "c") else 9)
            elif roll < 0.75:
                rec = sweep(seqs[s], t, s, arfcn)
            elif roll < 0.82:
                lat, lon = POS[s]
                rec = Detection(s, seqs[s], T0 + t, lat, lon, "gsm_uplink", 890.2e6 + 0.2e6 * arfcn, None, 200e3,
                                -80.0, 15.0, {})
            elif roll < 0.88:
                lat, lon = POS[s]
                rec = Detection(s, seqs[s], T0 + t, lat, lon, "fm", rng.choice([98.1e6, 101.7e6]), None, 200e3,
                                -50.0, 30.0, {})
            elif roll < 0.94:
                lat, lon = POS[s]
                rec = Heartbeat(s, seqs[s], T0 + t, lat, lon, False, "ok", 10, 0, 1)
            else:
                rec = sweep(seqs[s], t, s, 200)  # an ARFCN nobody decodes
            batch.append(rec)
            if isinstance(rec, Detection):
                sent.append(rec)
        if sent and rng.random() < 0.5:
            batch.append(rng.choice(sent))  # a resend: a duplicate
        out.append(batch)
    return out


def _state(store: Store) -> tuple[dict, dict]:
    """(sensor, seq) -> emitter key of every detection; emitter key -> (count, first, last)."""
    ems = {e.id: e for e in store.emitters()}
    dets = {(d.sensor_id, d.seq): ems[d.emitter_id].assoc_key if d.emitter_id else None for d in store.detections()}
    counts = {e.assoc_key: (e.n_detections, e.first_seen_utc, e.last_seen_utc) for e in ems.values()}
    return dets, counts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_attached_at_insert_as_the_association_after_it_would(db_url, tmp_path, seed):
    batches = _batches(seed)
    # reference: inserted unassociated, then associated (the collector before issue 7)
    with Store.open(f"sqlite:///{tmp_path / 'ref.db'}") as ref:
        ref.keep_new_detections()
        for batch in batches:
            ref.add_batch(batch)
            associate_detections(ref, pending=ref.take_new_detections())
        want = _state(ref)
    with Store.open(db_url) as store:
        store.keep_new_detections(assign=plan_emitters)
        touched = set()
        for batch in batches:
            flags = store.add_batch(batch)
            new = store.take_new_detections()
            assert len(new) == sum(1 for r, f in zip(batch, flags) if f and isinstance(r, Detection))
            assert all(d.emitter_id is not None for d in new)  # attached as they went in
            res = associate_detections(store, pending=new)
            touched |= res.touched
        got = _state(store)
        assert None not in got[0].values()
        assert got == want
        # the counts are those of the rows (nothing counted twice, duplicates not at all)
        with store.engine.connect() as c:
            real = dict(c.execute(text("SELECT emitter_id, COUNT(*) FROM detections GROUP BY emitter_id")).all())
        assert {e.id: e.n_detections for e in store.emitters()} == real
        assert touched == set(real)


def test_batch_decodes_count_as_sightings_for_its_sweeps(db_url):
    with Store.open(db_url) as store:
        store.keep_new_detections(assign=plan_emitters)
        # in one batch: a sweep, then the decode 5 s later by the same sensor, then another
        # sensor's sweep long after (the nearest sensor's cell, within the hold)
        store.add_batch([sweep(1, 0.0), decoded(2, 5.0), sweep(1, 600.0, "b")])
        (cell,) = store.emitters()
        assert cell.assoc_key == "gsm_downlink:arfcn:63:bsic:9"
        assert (cell.n_detections, cell.first_seen_utc, cell.last_seen_utc) == (3, T0, T0 + 600.0)
        # later, past the hold of every sighting (the sweeps attached to the cell count as
        # sightings too): a bare carrier; a decode too late to take it leaves it there
        store.add_batch([sweep(3, 610.0 + IDENTITY_HOLD_S)])
        store.add_batch([decoded(4, 620.0 + IDENTITY_HOLD_S + IDENTITY_AHEAD_S)])
        res = associate_detections(store, pending=store.take_new_detections())
        assert res.moved == set() and res.deleted == set()
        keys = {e.assoc_key: e.n_detections for e in store.emitters()}
        assert keys == {"gsm_downlink:arfcn:63:bsic:9": 4, "gsm_downlink:arfcn:63": 1}


def test_a_sweep_stored_before_its_decode_is_still_moved(db_url):
    with Store.open(db_url) as store:
        store.keep_new_detections(assign=plan_emitters)
        store.add_batch([sweep(1, 0.0)])
        res = associate_detections(store, pending=store.take_new_detections())
        (carrier,) = store.emitters()
        assert carrier.assoc_key == "gsm_downlink:arfcn:63" and res.touched == {carrier.id}
        store.add_batch([decoded(2, 5.0)])
        res = associate_detections(store, pending=store.take_new_detections())
        (cell,) = store.emitters()
        assert cell.assoc_key == "gsm_downlink:arfcn:63:bsic:9" and cell.n_detections == 2
        assert res.deleted == {carrier.id} and cell.id in res.touched
        # the store forgot the deleted carrier: the next sweep recreates it
        store.add_batch([sweep(3, 5.0 + IDENTITY_HOLD_S + 1.0)])
        assert {e.assoc_key: e.n_detections for e in store.emitters()} == {
            "gsm_downlink:arfcn:63:bsic:9": 2, "gsm_downlink:arfcn:63": 1}


def test_an_emitter_deleted_since_the_plan_leaves_its_detections_unassociated(db_url):
    with Store.open(db_url) as store:
        def assign(st, dets):
            return [eid] * len(dets)

        eid = store.get_or_create_emitter("fm:98100000", "fm", 98.1e6, None)
        with store.engine.begin() as c:
            c.execute(text("DELETE FROM emitters"))  # as another collector's move would
        store.keep_new_detections(assign=assign)
        fm = Detection("a", 1, T0, 22.54, 114.05, "fm", 98.1e6, None, 200e3, -50.0, 30.0, {})
        assert store.add_batch([fm]) == [True]
        (row,) = store.take_new_detections()
        assert row.emitter_id is None and store.detections(unassociated=True) == [row]
        # association after the insert picks it up (and creates the emitter again)
        res = associate_detections(store, pending=[row])
        (em,) = store.emitters()
        assert em.assoc_key == "fm:98100000" and em.n_detections == 1 and res.touched == {em.id}


def test_a_failing_plan_stores_the_batch_unassociated(db_url, caplog):
    with Store.open(db_url) as store:
        def assign(st, dets):
            raise StoreError("database refused a read")

        store.keep_new_detections(assign=assign)
        fm = Detection("a", 1, T0, 22.54, 114.05, "fm", 98.1e6, None, 200e3, -50.0, 30.0, {})
        assert store.add_batch([fm, Heartbeat("a", 2, T0, 22.54, 114.05, False, "ok", 1, 0, 1)]) == [True, True]
        (row,) = store.take_new_detections()
        assert row.emitter_id is None
        assert "association before insert failed" in caplog.text and "database refused a read" in caplog.text
        store.keep_new_detections(False)  # drops the plan too
        assert store.add_batch([Detection("a", 3, T0, 22.54, 114.05, "fm", 98.1e6, None, 200e3, -50.0, 30.0, {})])
        assert store.take_new_detections() == []
