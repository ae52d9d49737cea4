"""Recordings: the project's real test files, hand-made edge cases and SigMF round trips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rfhunt.errors import RecordingError, SourceError
from sensors.sources.base import cu8_to_complex64
from sensors.sources.recording import RecordingSource, write_sigmf
from tests.shared_data import SHARED_DIR


SHARED = SHARED_DIR
FM = SHARED / "data" / "fm"
THC = SHARED / "data" / "gsm" / "thc2007"
needs_shared = pytest.mark.skipif(not (FM.is_dir() and THC.is_dir()),
                                  reason=f"test data not found at {SHARED}/data")


# --------------------------------------------------------------------------- real files


@needs_shared
def test_fm_band_cu8_sigmf():
    meta = FM / "fm_band_2400k.sigmf-meta"
    with RecordingSource(meta, verify=True) as src:
        assert src.datatype == "cu8" and src.realtime is False
        assert src.sample_rate_hz == 2.4e6 and src.center_freq_hz == 98e6
        assert src.total_samples == 9_600_000 and src.duration_s == pytest.approx(4.0)
        assert src.truncated_bytes == 0 and isinstance(src._mm, np.memmap)
        b = src.read(4096)
        assert b.native == "cu8" and b.samples.dtype == np.uint8 and b.n_samples == 4096
        raw = np.fromfile(FM / "fm_band_2400k.sigmf-data", np.uint8, count=2 * 8192)
        assert np.array_equal(b.samples, raw[:8192])
        assert b.t_utc == pytest.approx(1795345004.0)          # 2026-11-22T10:56:44Z
        b2 = src.read(4096)
        assert np.array_equal(b2.samples, raw[8192:])
        assert b2.t_utc == pytest.approx(1795345004.0 + 4096 / 2.4e6)
        assert np.allclose(b.as_complex64()[:2], (raw[0:4:2] - 127.5) / 127.5
                           + 1j * (raw[1:4:2] - 127.5) / 127.5)
        src.tune(98e6, 2.4e6, 30.0)                             # the recorded tuning is fine
        with pytest.raises(SourceError, match=r"98000000 Hz.*98400000 Hz"):
            src.tune(98.4e6)
        with pytest.raises(SourceError, match="resampled"):
            src.tune(98e6, 1e6)


@needs_shared
def test_fm_single_cf32_sigmf_by_data_path():
    data = FM / "fm_rds_single_250k.sigmf-data"
    with RecordingSource(data, verify=True) as src:
        assert src.datatype == "cf32_le" and src.sample_rate_hz == 250e3
        assert src.center_freq_hz == 97.1e6 and src.total_samples == 750_000
        b = src.read(10_000)
        assert b.native == "cf32" and b.samples.dtype == np.complex64
        assert np.array_equal(b.samples, np.fromfile(data, np.complex64, count=10_000))
        n = 0
        while src.remaining_samples >= 65_536:
            n += src.read(65_536).n_samples
        left = src.remaining_samples
        with pytest.raises(SourceError, match=rf"end of recording .*{left} samples left"):
            src.read(65_536)
        assert src.read(left).n_samples == left
        assert src.status.samples_read == 750_000


@needs_shared
@pytest.mark.parametrize("name, rate, ms", [
    ("GSMSP_20070204_robert_dbsrx_953.6MHz_128.cfile", 500e3, 160),
    ("GSMSP_20070204_robert_dbsrx_941MHz_16.cfile", 4e6, 20),
    ("GSMSP_20070204_robert_dbsrx_937MHz_16.cfile", 4e6, 20),
])
def test_thc2007_cfiles(name, rate, ms):
    path = THC / name
    assert rate == 64e6 / int(name.rsplit("_", 1)[1].split(".")[0])
    freq = float(name.split("_")[-2].removesuffix("MHz")) * 1e6
    with RecordingSource(path, sample_rate_hz=rate, center_freq_hz=freq) as src:
        assert src.datatype == "cf32_le" and src.duration_s * 1e3 == pytest.approx(ms)
        b = src.read(src.total_samples)
        assert np.array_equal(b.samples, np.fromfile(path, np.complex64))
        assert b.t_utc == 0.0 and b.center_freq_hz == freq
    with pytest.raises(RecordingError, match=rf"{name}.*pass sample_rate_hz"):
        RecordingSource(path, center_freq_hz=freq)
    with pytest.raises(RecordingError, match=rf"{name}.*pass center_freq_hz"):
        RecordingSource(path, sample_rate_hz=rate)


# ----------------------------------------------------------------------- raw edge cases


def test_raw_formats_by_extension_and_truncation(tmp_path):
    u = np.arange(2001, dtype=np.uint8)                     # 1000 samples + 1 stray byte
    (tmp_path / "a.cu8").write_bytes(u.tobytes())
    with RecordingSource(tmp_path / "a.cu8", sample_rate_hz=1e6, center_freq_hz=1e8) as src:
        assert src.total_samples == 1000 and src.truncated_bytes == 1
        assert np.array_equal(src.read(1000).samples, u[:2000])
        with pytest.raises(SourceError, match="end of recording"):
            src.read(1)
    s = np.array([-128, 127, 0, -1], np.int8)
    (tmp_path / "b.cs8").write_bytes(s.tobytes())
    with RecordingSource(tmp_path / "b.cs8", sample_rate_hz=1e6, center_freq_hz=1e8) as src:
        assert np.array_equal(src.read(2).samples, np.array([-1 + 127j / 128, -1j / 128],
                                                            np.complex64))
    (tmp_path / "c.cs16").write_bytes(np.array([16384, -32768], "<i2").tobytes())
    with RecordingSource(tmp_path / "c.cs16", sample_rate_hz=1e6, center_freq_hz=1e8) as src:
        assert src.read(1).samples[0] == 0.5 - 1j
    (tmp_path / "d.raw").write_bytes(u.tobytes())
    with pytest.raises(RecordingError, match=r"d\.raw.*unknown recording format"):
        RecordingSource(tmp_path / "d.raw", sample_rate_hz=1e6, center_freq_hz=1e8)
    with RecordingSource(tmp_path / "d.raw", fmt="cu8", sample_rate_hz=1e6,
                         center_freq_hz=1e8) as src:
        assert src.total_samples == 1000
    (tmp_path / "e.cfile").write_bytes(b"\0" * 7)
    with pytest.raises(RecordingError, match=r"e\.cfile.*shorter than one"):
        RecordingSource(tmp_path / "e.cfile", sample_rate_hz=1e6, center_freq_hz=1e8)
    (tmp_path / "f.cfile").write_bytes(b"")
    with pytest.raises(RecordingError, match=r"f\.cfile.*empty"):
        RecordingSource(tmp_path / "f.cfile", sample_rate_hz=1e6, center_freq_hz=1e8)
    with pytest.raises(RecordingError, match=r"nope\.cu8.*does not exist"):
        RecordingSource(tmp_path / "nope.cu8", sample_rate_hz=1e6, center_freq_hz=1e8)


def test_loop_wraps_and_time_runs_on(tmp_path):
    u = np.arange(20, dtype=np.uint8)
    (tmp_path / "l.cu8").write_bytes(u.tobytes())
    src = RecordingSource(tmp_path / "l.cu8", sample_rate_hz=10.0, center_freq_hz=1e8, loop=True)
    blocks = [src.read(7) for _ in range(3)]
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), np.resize(u, 42))
    assert [b.t_utc for b in blocks] == pytest.approx([0.0, 0.7, 1.4])
    src.close()
    with pytest.raises(SourceError, match="closed"):
        src.read(1)


# --------------------------------------------------------------------------- SigMF edges


def _edit_meta(meta_path: Path, fn) -> None:
    meta = json.loads(meta_path.read_text())
    fn(meta)
    meta_path.write_text(json.dumps(meta))


def test_sigmf_errors_name_the_file(tmp_path):
    meta, data = write_sigmf(tmp_path / "x", np.zeros(100, np.complex64), sample_rate_hz=1e6,
                             center_freq_hz=1e8)
    good = meta.read_text()
    meta.write_text(good[:-20])
    with pytest.raises(RecordingError, match=r"x\.sigmf-meta: malformed JSON"):
        RecordingSource(meta)
    meta.write_text(good.replace('"cu8"', '"cq7"'))
    with pytest.raises(RecordingError, match=r"x\.sigmf-meta.*unknown datatype 'cq7'"):
        RecordingSource(meta)
    meta.write_text(good.replace('"cu8"', '"rf32_le"'))
    with pytest.raises(RecordingError, match="real-valued"):
        RecordingSource(meta)
    meta.write_text(good)
    _edit_meta(meta, lambda m: m["global"].pop("core:sample_rate"))
    with pytest.raises(RecordingError, match=r"x\.sigmf-meta.*core:sample_rate"):
        RecordingSource(meta)
    assert RecordingSource(meta, sample_rate_hz=2e6).sample_rate_hz == 2e6
    meta.write_text(good)
    with pytest.raises(RecordingError, match="sample_rate_hz=2000000.0 was passed"):
        RecordingSource(meta, sample_rate_hz=2e6)
    meta.write_text("[1, 2]")
    with pytest.raises(RecordingError, match="not SigMF"):
        RecordingSource(meta)
    meta.write_text(good)
    data.unlink()
    with pytest.raises(RecordingError, match=r"x\.sigmf-data: data file does not exist"):
        RecordingSource(tmp_path / "x")
    with pytest.raises(RecordingError, match=r"y\.sigmf-meta: metadata file does not exist"):
        RecordingSource(tmp_path / "y.sigmf-data")


def test_sigmf_truncation_and_checksum(tmp_path):
    meta, data = write_sigmf(tmp_path / "t", np.arange(200, dtype=np.uint8),
                             sample_rate_hz=1e6, center_freq_hz=1e8)
    with open(data, "ab") as f:
        f.write(b"\x07")                                   # half a sample more
    src = RecordingSource(meta)
    assert src.total_samples == 100 and src.truncated_bytes == 1
    with pytest.raises(RecordingError, match=r"t\.sigmf-data: sha512 does not match"):
        RecordingSource(meta, verify=True)
    _edit_meta(meta, lambda m: m["annotations"].append(
        {"core:sample_start": 50, "core:sample_count": 80}))
    with pytest.raises(RecordingError, match=r"holds 100 samples.*runs to sample 130.*truncated"):
        RecordingSource(meta)
    _edit_meta(meta, lambda m: (m.__setitem__("annotations", []), m["captures"].append(
        {"core:sample_start": 150})))
    with pytest.raises(RecordingError, match=r"capture starting at sample 150.*truncated"):
        RecordingSource(meta)


def test_multiple_captures_frequency_changes_and_time_gaps(tmp_path):
    x = np.arange(600, dtype=np.uint16).astype(np.uint8)    # 300 samples
    meta, _ = write_sigmf(tmp_path / "m", x, sample_rate_hz=100.0, center_freq_hz=1e8,
                          t_utc=1_700_000_000.0)
    caps = [
        {"core:sample_start": 0, "core:frequency": 1e8, "core:datetime": "2023-11-14T22:13:20.00Z"},
        # continuous with the first: 100 samples = 1.00 s later
        {"core:sample_start": 100, "core:frequency": 1e8,
         "core:datetime": "2023-11-14T22:13:21.00Z"},
        # 0.50 s (50 samples) missing before this one
        {"core:sample_start": 150, "core:frequency": 1e8,
         "core:datetime": "2023-11-14T22:13:22.00Z"},
        # retuned, no datetime: continues in time
        {"core:sample_start": 250, "core:frequency": 2e8},
    ]
    _edit_meta(meta, lambda m: m.__setitem__("captures", caps))
    src = RecordingSource(meta)
    assert [c.dropped_before for c in src.captures] == [0, 0, 50, 0]
    b1 = src.read(140)                  # runs from capture 0 into 1 (seamless)
    assert b1.n_samples == 140 and b1.dropped_samples == 0
    assert b1.t_utc == pytest.approx(1_700_000_000.0)
    b2 = src.read(100)                  # ends early at the gap
    assert b2.n_samples == 10 and b2.t_utc == pytest.approx(1_700_000_001.4)
    b3 = src.read(200)                  # after the gap; ends early at the retune
    assert b3.dropped_samples == 50 and b3.n_samples == 100
    assert b3.t_utc == pytest.approx(1_700_000_002.0) and b3.center_freq_hz == 1e8
    b4 = src.read(50)
    assert b4.center_freq_hz == 2e8 and b4.t_utc == pytest.approx(1_700_000_003.0)
    assert src.center_freq_hz == 2e8
    with pytest.raises(SourceError, match="retuned"):
        src.tune(1e8)
    assert np.array_equal(np.concatenate([b.samples for b in (b1, b2, b3, b4)]), x[:600])
    assert src.status.dropped_samples == 50 and src.status.drop_events == 1


def test_whole_second_datetimes_do_not_invent_gaps(tmp_path):
    meta, _ = write_sigmf(tmp_path / "w", np.zeros(500, np.uint8), sample_rate_hz=100.0,
                          center_freq_hz=1e8)
    _edit_meta(meta, lambda m: m.__setitem__("captures", [
        {"core:sample_start": 0, "core:frequency": 1e8, "core:datetime": "2024-01-01T00:00:00Z"},
        {"core:sample_start": 150, "core:frequency": 1e8,
         "core:datetime": "2024-01-01T00:00:02Z"}]))
    src = RecordingSource(meta)
    assert [c.dropped_before for c in src.captures] == [0, 0]
    assert src.read(250).n_samples == 250


# ------------------------------------------------------------------------------ writing


def test_write_sigmf_metadata(tmp_path):
    x = np.exp(1j * np.linspace(0, 10, 1000)).astype(np.complex64) * 0.9
    meta_path, data_path = write_sigmf(tmp_path / "cap.sigmf-meta", x, sample_rate_hz=2.4e6,
                                       center_freq_hz=935.2e6, datatype="cf32_le",
                                       t_utc=1_700_000_000.25, description="a test",
                                       geolocation=(52.52, 13.40, 34.0))
    assert meta_path == tmp_path / "cap.sigmf-meta" and data_path == tmp_path / "cap.sigmf-data"
    meta = json.loads(meta_path.read_text())
    g = meta["global"]
    assert g["core:version"].startswith("1.") and g["core:datatype"] == "cf32_le"
    assert g["core:sha512"] == hashlib.sha512(data_path.read_bytes()).hexdigest()
    assert g["core:geolocation"] == {"type": "Point", "coordinates": [13.40, 52.52, 34.0]}
    assert g["core:description"] == "a test"
    assert meta["captures"] == [{"core:sample_start": 0, "core:frequency": 935.2e6,
                                 "core:datetime": "2023-11-14T22:13:20.250000Z"}]
    src = RecordingSource(meta_path, verify=True)
    b = src.read(1000)
    assert np.array_equal(b.samples, x) and b.t_utc == pytest.approx(1_700_000_000.25)
    _, _ = write_sigmf(tmp_path / "g2", x, sample_rate_hz=1e6, center_freq_hz=1e8,
                       geolocation=(1.0, 2.0))
    assert json.loads((tmp_path / "g2.sigmf-meta").read_text())["global"][
        "core:geolocation"]["coordinates"] == [2.0, 1.0]
    for bad in ({"datatype": "cf64_le"}, {"geolocation": (95.0, 0.0)},
                {"geolocation": (1.0,)}, {"sample_rate_hz": 0}):
        kw = {"sample_rate_hz": 1e6, "center_freq_hz": 1e8, **bad}
        with pytest.raises(RecordingError):
            write_sigmf(tmp_path / "bad", x, **kw)
    with pytest.raises(RecordingError, match="complex"):
        write_sigmf(tmp_path / "bad", np.zeros(4), sample_rate_hz=1e6, center_freq_hz=1e8)


_n = st.integers(min_value=1, max_value=300)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), datatype=st.sampled_from(["cu8", "ci8", "ci16_le", "cf32_le"]))
def test_write_read_round_trip(tmp_path_factory, data, datatype):
    """Native values survive write_sigmf -> RecordingSource exactly, for every datatype."""
    n = data.draw(_n)
    if datatype == "cu8":
        x = data.draw(hnp.arrays(np.uint8, 2 * n))
    elif datatype == "ci8":
        k = data.draw(hnp.arrays(np.int8, 2 * n)).astype(np.float32) / 128
        x = k.view(np.complex64)
    elif datatype == "ci16_le":
        k = data.draw(hnp.arrays(np.int16, 2 * n)).astype(np.float32) / 32768
        x = k.view(np.complex64)
    else:
        f = data.draw(hnp.arrays(np.float32, 2 * n, elements=st.floats(
            -1e6, 1e6, width=32, allow_nan=False)))
        x = f.view(np.complex64)
    rate = data.draw(st.floats(1.0, 1e8))
    freq = data.draw(st.floats(1e3, 6e9))
    base = tmp_path_factory.mktemp("rt") / "r"
    meta, _ = write_sigmf(base, x, sample_rate_hz=rate, center_freq_hz=freq,
                          datatype=datatype, t_utc=1.7e9)
    with RecordingSource(meta, verify=True) as src:
        assert src.sample_rate_hz == rate and src.center_freq_hz == freq
        b = src.read(n)
        assert np.array_equal(b.samples, x)
        assert b.native == ("cu8" if datatype == "cu8" else "cf32")
        assert b.t_utc == pytest.approx(1.7e9)


def test_write_cu8_from_complex_matches_base_convention(tmp_path):
    u = np.arange(256, dtype=np.uint8)
    x = cu8_to_complex64(u)
    meta, data = write_sigmf(tmp_path / "c", x, sample_rate_hz=1e6, center_freq_hz=1e8)
    assert np.array_equal(np.fromfile(data, np.uint8), u)


# ------------------------------------------------------------------- review regressions


def test_loop_over_capture_gaps_never_overlaps_in_time(tmp_path):
    """A loop lasts from the first capture's start to the last one's end, gaps included."""
    x = np.arange(600, dtype=np.uint16).astype(np.uint8)    # 300 samples at 100 S/s
    meta, _ = write_sigmf(tmp_path / "g", x, sample_rate_hz=100.0, center_freq_hz=1e8)
    _edit_meta(meta, lambda m: m.__setitem__("captures", [
        {"core:sample_start": 0, "core:frequency": 1e8, "core:datetime": "2023-11-14T22:13:20.00Z"},
        # 0.50 s (50 samples) missing before this one
        {"core:sample_start": 100, "core:frequency": 1e8,
         "core:datetime": "2023-11-14T22:13:21.50Z"}]))
    t0 = 1_700_000_000.0
    src = RecordingSource(meta, loop=True)
    assert src.duration_s == pytest.approx(3.0) and src.loop_period_s == pytest.approx(3.5)
    blocks = [src.read(n) for n in (100, 200, 100, 200, 100)]
    assert [b.n_samples for b in blocks] == [100, 200, 100, 200, 100]
    assert [b.dropped_samples for b in blocks] == [0, 50, 0, 50, 0]
    # loop 1 holds 0..1 s and 1.5..3.5 s; loop 2 runs on from 3.5 s, loop 3 from 7 s
    assert [b.t_utc - t0 for b in blocks] == pytest.approx([0.0, 1.5, 3.5, 5.0, 7.0], abs=1e-6)
    ends = [b.t_utc + b.n_samples / 100.0 for b in blocks]
    assert all(e <= b.t_utc + 1e-9 for e, b in zip(ends, blocks[1:])), "loops overlap in time"


def test_complex_conversions_are_the_base_ones(tmp_path):
    """cu8 decoding and encoding go through base's cu8_to_complex64 / complex_to_cu8."""
    from sensors.sources.recording import _encode, _to_complex64

    u = np.arange(256, dtype=np.uint8)
    assert np.array_equal(_to_complex64(u, np.dtype(np.uint8)), cu8_to_complex64(u))
    u16 = np.array([0, 65535, 32767, 32768], np.uint16)
    assert np.allclose(_to_complex64(u16.view(np.uint8), np.dtype("<u2")).view(np.float32),
                       (u16 - 32767.5) / 32767.5)
    x = np.array([1.5 - 1.5j, 0.5 + 0.25j, -1 + 1j], np.complex64)
    assert np.array_equal(np.frombuffer(_encode(x, "ci8"), np.int8),
                          [127, -128, 64, 32, -128, 127])
    assert np.array_equal(np.frombuffer(_encode(x, "ci16_le"), "<i2"),
                          [32767, -32768, 16384, 8192, -32768, 32767])
