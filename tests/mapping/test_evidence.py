"""Evidence snippets in the store (files beside a SQLite database, blobs in PostgreSQL) and
the PNG pictures drawn from them."""

from __future__ import annotations

import hashlib
import uuid
import zlib

import numpy as np
import pytest

from collector.evidence import add_evidence, evidence, evidence_for_emitter, read_evidence
from collector.store import Store
from mapping.pictures import encode_png, spectrum_db, spectrum_png, waterfall_db, waterfall_png
from rfhunt.errors import DspError, StoreError
from rfhunt.records import Detection
from tests.mapping.browser import read_png

T0 = 1_750_000_000.0
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


def _store_with_detection(url: str) -> tuple[Store, int, int]:
    store = Store.open(url)
    store.add_detection(Detection("roof", 1, T0, 45.07, 7.68, "gsm_downlink", 947.4e6, 62, 200e3, -60.0, 20.0))
    store.add_detection(Detection("roof", 2, T0 + 5, 45.07, 7.68, "gsm_downlink", 947.4e6, 62, 200e3, -61.0, 19.0))
    eid = store.get_or_create_emitter("gsm_downlink:arfcn:62", "gsm_downlink", 947.4e6, 62)
    det_id = store.detections()[0].id
    return store, eid, det_id


def _iq(seed: int = 0, n: int = 4096) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(np.complex64) * 0.1


def test_sqlite_evidence_is_a_content_addressed_file_beside_the_database(tmp_path):
    (tmp_path / "db").mkdir()
    store, eid, det_id = _store_with_detection(f"sqlite:///{tmp_path / 'db' / 'r.db'}")
    with store:
        iq = _iq()
        row = add_evidence(store, det_id, iq, sample_rate_hz=1e6, center_freq_hz=947.4e6)
        assert row.sha512 == hashlib.sha512(iq.astype("<c8").tobytes()).hexdigest()
        assert row.path == f"evidence/{row.sha512[:2]}/{row.sha512}.cf32"
        assert (tmp_path / "db" / row.path).read_bytes() == iq.tobytes()
        assert (row.sensor_id, row.t_utc, row.lat, row.lon, row.n_samples) == ("roof", T0, 45.07, 7.68, 4096)
        assert np.array_equal(read_evidence(store, row.id), iq)
        # the detection joins an emitter later: the evidence follows it
        assert evidence_for_emitter(store, eid) == []
        store.assign_detections(eid, [det_id])
        (found,) = evidence_for_emitter(store, eid)
        assert found.id == row.id and found.emitter_id == eid
        # altered bytes are refused, naming the file
        p = tmp_path / "db" / row.path
        b = bytearray(p.read_bytes())
        b[7] ^= 1
        p.write_bytes(bytes(b))
        with pytest.raises(StoreError, match=f"{row.sha512[:16]}.*do not match"):
            read_evidence(store, row)
        p.unlink()
        with pytest.raises(StoreError, match="cannot read"):
            read_evidence(store, row)


def test_inline_audio_and_bad_input(tmp_path):
    store, eid, det_id = _store_with_detection(f"sqlite:///{tmp_path / 'r.db'}")
    with store:
        audio = np.sin(np.arange(800) / 10.0).astype(np.float32)
        row = add_evidence(store, det_id, audio, sample_rate_hz=8000.0, center_freq_hz=101.5e6, kind="audio",
                           emitter_id=eid, inline=True)
        assert row.path is None and row.emitter_id == eid
        assert np.array_equal(read_evidence(store, row), audio)
        assert [r.id for r in evidence_for_emitter(store, eid)] == [row.id]   # via the recorded emitter
        assert evidence(store, 999) is None
        for args, kw, words in [
            ((det_id, _iq()), {"kind": "video"}, "kind 'video'"),
            ((det_id, np.ones(4)), {}, "must be complex"),
            ((det_id, np.zeros((2, 2), np.complex64)), {}, "1-D"),
            ((det_id + 99, _iq()), {}, f"no detection with id {det_id + 99}"),
            ((det_id, _iq()), {"sample_rate_hz": 0.0}, "positive rates"),
        ]:
            kw = {"sample_rate_hz": 1e6, "center_freq_hz": 947.4e6, **kw}
            with pytest.raises(StoreError, match=words):
                add_evidence(store, *args, **kw)
        with pytest.raises(StoreError, match="no evidence with id 12345"):
            read_evidence(store, 12345)


@pytest.mark.pg
def test_postgresql_keeps_evidence_in_the_row():
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc})")
    name = f"rfhunt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        store, eid, det_id = _store_with_detection(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
        with store:
            iq = _iq(3)
            row = add_evidence(store, det_id, iq, sample_rate_hz=2.4e6, center_freq_hz=947.4e6)
            assert row.path is None
            assert np.array_equal(read_evidence(store, row), iq)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_png_round_trip_and_crc():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    png = encode_png(img)
    assert np.array_equal(read_png(png), img)
    # every chunk's CRC is right (an image viewer would refuse the file otherwise)
    pos = 8
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        assert zlib.crc32(png[pos + 4:pos + 8 + n]) == int.from_bytes(png[pos + 8 + n:pos + 12 + n], "big")
        pos += 12 + n
    with pytest.raises(DspError, match="uint8"):
        encode_png(img.astype(np.int16))


def test_spectrum_and_waterfall_put_a_tone_where_it_is():
    fs, n, nfft = 1e6, 65536, 256
    t = np.arange(n) / fs
    rng = np.random.default_rng(2)
    noise = (rng.normal(size=n) + 1j * rng.normal(size=n)) * 1e-3
    tone = np.exp(2j * np.pi * 250e3 * t) * (t >= t[n // 2])           # +250 kHz, second half only
    x = (0.1 * tone + noise).astype(np.complex64)
    spec = spectrum_db(x, nfft)
    assert int(np.argmax(spec)) == nfft // 2 + round(250e3 / fs * nfft)   # DC in the middle
    wf = waterfall_db(x, nfft, rows=64)
    col = nfft // 2 + 64
    assert wf.shape == (64, nfft)
    assert np.all(wf[40:, col] > wf[40:, 10] + 30) and np.all(wf[:20, col] < wf[:20, 10] + 10)
    img = read_png(waterfall_png(wf))
    assert img.shape == (128, 512, 3)
    assert img[100, 2 * col, 0] > 180 and img[10, 2 * col, 2] > img[10, 2 * col, 0]   # hot when on, cold before
    sp = read_png(spectrum_png(spec))
    assert sp.shape == (200, 512, 3)
    top = np.argmax(np.any(sp != 255, axis=2) & np.all(sp == (20, 60, 170), axis=2), axis=0)
    assert int(np.argmin(top)) in range(2 * col - 3, 2 * col + 4)      # the trace peaks at the tone
