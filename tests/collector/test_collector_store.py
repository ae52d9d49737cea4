"""The store: schema under migrations, idempotent inserts, tracks, readers, errors."""

from __future__ import annotations

import dataclasses

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text, update

from collector.store import (
    Base,
    DetectionRow,
    EmitterModel,
    EmitterRow,
    Store,
    redact_url,
)
from rfhunt.errors import StoreError
from rfhunt.records import Detection, Heartbeat

T0 = 1_750_000_000.0


def det(seq: int, sensor: str = "s1", t: float | None = None, lat: float = 45.0, lon: float = 7.0, **kw) -> Detection:
    base = dict(kind="gsm_downlink", freq_hz=935.2e6, channel=1, bandwidth_hz=200e3, power_dbm=-70.0, snr_db=20.0,
                features={"bsic": 12, "note": "x"})
    base.update(kw)
    return Detection(sensor, seq, T0 + seq if t is None else t, lat, lon, **base)


def hb(seq: int, t: float, sensor: str = "s1", lat: float = 45.0, lon: float = 7.0, mobile: bool = False) -> Heartbeat:
    return Heartbeat(sensor, seq, t, lat, lon, mobile, "ok", 1000 * seq, seq, seq)


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from collector.store import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def test_schema_matches_models_after_migration(db_url):
    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    finally:
        store.close()
    Store.open(db_url).close()  # reopening an up-to-date database is a no-op


def test_track_index_is_not_duplicated(db_url):
    with Store.open(db_url) as store, store.engine.connect() as conn:
        indexes = inspect(conn).get_indexes("sensor_positions")
        assert [ix["name"] for ix in indexes if ix["column_names"] == ["sensor_id"]] == []
        (unique,) = inspect(conn).get_unique_constraints("sensor_positions")
        assert unique["column_names"] == ["sensor_id", "t_utc"]


def test_sqlite_uses_wal(sqlite_url):
    with Store.open(sqlite_url) as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_detection_stored_once(db_url):
    with Store.open(db_url) as store:
        assert store.add_detection(det(1)) is True
        assert store.add_detection(det(1)) is False
        assert store.add_detection(det(1, sensor="s2")) is True
        rows = store.detections()
        assert [(r.sensor_id, r.seq) for r in rows] == [("s1", 1), ("s2", 1)]
        row = rows[0]
        assert isinstance(row, DetectionRow)
        assert row.features == {"bsic": 12, "note": "x"}
        assert row.t_utc == T0 + 1  # double precision keeps the fraction-free epoch exactly
        assert row.emitter_id is None


def test_add_batch_one_transaction_flags_duplicates(db_url):
    with Store.open(db_url) as store:
        store.add_detection(det(1))
        flags = store.add_batch([det(1), det(2), det(2), det(3), hb(4, T0 + 4), hb(4, T0 + 4)])
        assert flags == [False, True, False, True, True, False]
        assert len(store.detections()) == 3


def test_add_batch_rolls_back_whole_batch(db_url):
    with Store.open(db_url) as store:
        with pytest.raises(StoreError):
            store.add_batch([det(1), "not a record"])  # type: ignore[list-item]
        assert store.detections() == []


def test_heartbeat_updates_sensor_and_stale_one_is_duplicate(db_url):
    with Store.open(db_url) as store:
        assert store.add_heartbeat(hb(5, T0 + 10, mobile=True))
        assert not store.add_heartbeat(hb(3, T0 + 5, mobile=False))  # older: stale
        (s,) = store.sensors()
        assert s.mobile is True and s.last_heartbeat_utc == T0 + 10 and s.samples_read == 5000
        assert s.dropped_samples == 5 and s.source_state == "ok"


def test_tracks_from_heartbeats_and_detections_deduplicated(db_url):
    with Store.open(db_url) as store:
        store.add_batch([
            hb(1, T0, lat=45.0, lon=7.0, mobile=True),
            det(2, t=T0 + 1, lat=45.001, lon=7.001),
            det(3, t=T0 + 1, lat=45.001, lon=7.001, channel=5),  # same capture: same track point
            det(4, t=T0 + 2, lat=45.002, lon=7.002),
        ])
        store.add_detection(det(2, t=T0 + 1, lat=45.001, lon=7.001))  # resent
        track = store.sensor_tracks()["s1"]
        assert track == [(T0, 45.0, 7.0), (T0 + 1, 45.001, 7.001), (T0 + 2, 45.002, 7.002)]
        (s,) = store.sensors()
        assert (s.lat, s.lon, s.last_position_utc) == (45.002, 7.002, T0 + 2)


def test_fixed_sensor_track_grows_only_when_it_moves(db_url):
    with Store.open(db_url) as store:
        store.add_batch([hb(k, T0 + 10 * k) for k in range(1, 6)] + [det(100 + k, t=T0 + 10 * k + 1) for k in range(5)])
        store.add_heartbeat(hb(9, T0 + 90, lat=45.01))   # moved (re-surveyed)
        store.add_heartbeat(hb(10, T0 + 100, lat=45.01))
        assert store.sensor_tracks()["s1"] == [(T0 + 10, 45.0, 7.0), (T0 + 90, 45.01, 7.0)]
        store.add_batch([hb(k, T0 + 10 * k, sensor="car", mobile=True) for k in range(1, 4)])
        assert len(store.sensor_tracks()["car"]) == 3   # a mobile sensor: every point
        assert list(store.sensor_tracks(["car"])) == ["car"] and store.sensor_tracks([]) == {}


def test_assign_detections_adds_to_the_count_without_recounting(db_url):
    with Store.open(db_url) as store:
        store.add_batch([det(1), det(2)])
        eid = store.get_or_create_emitter("gsm_downlink:arfcn:1", "gsm_downlink", 935.2e6, 1)
        store.assign_detections(eid, [d.id for d in store.detections()])
        # The count is kept up by increments: a value planted in the row is added to, not recounted.
        with store.engine.begin() as conn:
            conn.execute(update(EmitterModel).values(n_detections=100, first_seen_utc=T0 - 50))
        store.add_batch([det(3), det(0)])
        new = [d.id for d in store.detections(unassociated=True)]
        store.assign_detections(eid, new + new)   # ids repeated, and assigned twice: counted once
        store.assign_detections(eid, new)
        em = store.emitter(eid)
        assert (em.n_detections, em.first_seen_utc, em.last_seen_utc) == (102, T0 - 50, T0 + 3)


def test_emitters_are_frozen_rows_and_updatable(db_url):
    with Store.open(db_url) as store:
        store.add_batch([det(1), det(2)])
        eid = store.get_or_create_emitter("gsm_downlink:arfcn:1", "gsm_downlink", 935.2e6, 1)
        assert store.get_or_create_emitter("gsm_downlink:arfcn:1", "gsm_downlink", 935.2e6, 1) == eid
        store.assign_detections(eid, [d.id for d in store.detections()])
        store.update_emitter(eid, lat=45.01, lon=7.02, verdict="suspicious", reasons=["because"])
        (em,) = store.emitters()
        assert isinstance(em, EmitterRow)
        assert (em.n_detections, em.first_seen_utc, em.last_seen_utc) == (2, T0 + 1, T0 + 2)
        assert em.reasons == ("because",) and em.verdict == "suspicious"
        with pytest.raises(dataclasses.FrozenInstanceError):
            em.lat = 0.0  # type: ignore[misc]
        assert len(store.detections(emitter_id=eid)) == 2
        assert len(store.detections(since_utc=T0 + 2)) == 1
        with pytest.raises(StoreError, match="kind"):
            store.update_emitter(eid, kind="fm")
        with pytest.raises(StoreError, match="no emitter"):
            store.update_emitter(eid + 100, lat=1.0)


def test_bad_url_is_store_error():
    with pytest.raises(StoreError, match="nosuchdialect"):
        Store.open("nosuchdialect://x/y")
    with pytest.raises(StoreError, match="cannot"):
        Store.open("not a url")


def test_unreachable_database_names_url_without_password():
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1/nowhere" in str(info.value)
    assert "s3cret" not in redact_url(url)


def test_unwritable_sqlite_path_is_store_error(tmp_path):
    with pytest.raises(StoreError, match="missing-dir"):
        Store.open(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")


def test_new_detections_are_handed_over_as_stored(db_url):
    """What the collector's association reads instead of reading the rows back."""
    with Store.open(db_url) as store:
        store.add_batch([det(1)])                      # before keep_new_detections: not kept
        assert store.take_new_detections() == []
        store.keep_new_detections()
        store.add_batch([det(1), det(2), det(3, sensor="s2", channel=None, features={}), det(2), hb(4, T0 + 9)])
        with pytest.raises(StoreError):
            store.add_batch([det(5, lat=float("nan"))] if store.engine.dialect.name == "sqlite"
                            else [det(5, features={"x": "\x00"})])  # refused: nothing of it kept
        new = store.take_new_detections()
        by_key = {(d.sensor_id, d.seq): d for d in store.detections()}
        assert [(d.sensor_id, d.seq) for d in new] == [("s1", 2), ("s2", 3)]  # new ones only, once
        assert new == [by_key[("s1", 2)], by_key[("s2", 3)]]    # exactly as a reader sees them
        assert store.take_new_detections() == []
        # many sensors in one batch: one read of their rows, every sensor created once
        flags = store.add_batch([det(10 + i, sensor=f"n{i % 40}") for i in range(400)])
        assert all(flags) and len(store.take_new_detections()) == 400
        assert {s.sensor_id for s in store.sensors()} >= {f"n{i}" for i in range(40)}
