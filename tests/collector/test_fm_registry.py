"""The FM licence registry (collector.fm_registry): parsing and checking, the database table,
``rfhunt registry``, and the collector's FM verdicts from it."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.fm_registry import (
    FM_BAND_HZ,
    FmEvidence,
    fm_evidence,
    import_registry,
    load_fm_reference,
    parse_registry_text,
    read_registry,
    registry_entries,
    registry_stations,
    registry_summary,
)
from collector.judge import ALARMING, judge_fm
from collector.reference import FM_COLUMNS, FmStation, Reference
from collector.store import Store
from rfhunt.cli import main
from rfhunt.errors import ConfigError
from rfhunt.records import Detection

LAT0, LON0 = 22.54, 114.05
GOOD = (
    "\ufefflicence,frequency_hz,name,pi,lat,lon,erp_w\n"
    "GD-001,97100000,CNR-1,C201,22.54,114.05,10000\n"
    "\n"
    ',98400000,"Guangdong, Radio",0xc3a5,22.6,114.1,\n'
    "GD-003,102600000,Music,,22.54,114.05,5000\n"
    "GD-004,88000000,Low,1f,22.5,114.0,\n"
)


def test_good_file_any_column_order_bom_and_optional_fields():
    got = parse_registry_text(GOOD, "reg.csv")
    assert got == [
        FmStation(97.1e6, "CNR-1", "C201", 22.54, 114.05, 10000.0, "GD-001"),
        FmStation(98.4e6, "Guangdong, Radio", "C3A5", 22.6, 114.1, None, ""),
        FmStation(102.6e6, "Music", None, 22.54, 114.05, 5000.0, "GD-003"),
        FmStation(88e6, "Low", "001F", 22.5, 114.0, None, "GD-004"),
    ]


@pytest.mark.parametrize("row, where, what", [
    ("97.1,A,,22.5,114,,", ":2:1: frequency_hz", "97.1 MHz is 97100000"),
    ("120000000,A,,22.5,114,,", ":2:1: frequency_hz", "outside the FM band"),
    ("97100000,A,C2O1,22.5,114,,", ":2:3: pi", "hex digits"),
    ("97100000,A,12345,22.5,114,,", ":2:3: pi", "hex digits"),
    ("97100000,,,22.5,114,,", ":2:2: name", "empty"),
    ("97100000,A,,91,114,,", ":2:4: lat", "[-90, 90]"),
    ("97100000,A,,22.5,nan,,", ":2:5: lon", "finite"),
    ("97100000,A,,22.5,114,0,", ":2:6: erp_w", "positive"),
    ("97100000,A,,22.5,114,,", None, None),
    ("97100000,A,,22.5", ":2:5:", "4 fields, expected 7"),
])
def test_bad_rows_name_file_line_and_column(row, where, what):
    text = ",".join(FM_COLUMNS) + "\n" + row + "\n"
    if where is None:
        assert len(parse_registry_text(text, "r.csv")) == 1
        return
    with pytest.raises(ConfigError) as exc:
        parse_registry_text(text, "r.csv")
    assert f"r.csv{where}" in str(exc.value) and what in str(exc.value)


def test_every_bad_row_is_reported_and_duplicates_refused():
    text = (",".join(FM_COLUMNS) + "\n97100000,A,,22.5,114,,\n97.1,B,,22.5,114,,\n"
            "97100000,C,,22.5,114,,\n98000000,D,XYZ,95,114,,\n")
    with pytest.raises(ConfigError) as exc:
        parse_registry_text(text, "r.csv")
    msg = str(exc.value)
    assert "4 bad value(s)" in msg and "nothing imported" in msg
    assert "r.csv:3:1: frequency_hz" in msg and "r.csv:4:1: 97.10 MHz" in msg and "already on line 2" in msg
    assert "r.csv:5:3: pi" in msg and "r.csv:5:4: lat" in msg


@pytest.mark.parametrize("header, what", [
    ("frequency_hz,name,pi,lat,lon,erp_w", "missing licence"),
    ("frequency_hz,name,pi,lat,lon,erp_w,licence,power", "unknown power"),
    ("frequency_hz,name,pi,lat,lon,erp_w,licence,pi", "repeated pi"),
    ("", "empty file"),
])
def test_bad_header(header, what):
    with pytest.raises(ConfigError, match=what):
        parse_registry_text(header + "\n", "r.csv")


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_registry(tmp_path / "missing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes((",".join(FM_COLUMNS) + "\n97100000,R\xe9gion,,22.5,114,,\n").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.csv:2: not UTF-8"):
        read_registry(bad)


stations = st.builds(
    FmStation,
    frequency_hz=st.integers(int(FM_BAND_HZ[0]) // 1000, int(FM_BAND_HZ[1]) // 1000).map(lambda k: k * 1000.0),
    name=st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=30)
    .map(str.strip).filter(bool),
    pi=st.none() | st.integers(0, 0xFFFF).map(lambda v: f"{v:04X}"),
    lat=st.floats(-90, 90, allow_nan=False), lon=st.floats(-180, 180, allow_nan=False),
    erp_w=st.none() | st.floats(0.001, 1e6, allow_nan=False),
    licence=st.text(st.characters(codec="utf-8", categories=("L", "N", "Pd")), max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(stations, max_size=8, unique_by=lambda s: (s.frequency_hz, s.lat, s.lon)), st.permutations(FM_COLUMNS))
def test_parser_round_trips_any_valid_registry(rows, columns):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for s in rows:
        vals = {"frequency_hz": repr(s.frequency_hz), "name": s.name, "pi": s.pi or "", "lat": repr(s.lat),
                "lon": repr(s.lon), "erp_w": "" if s.erp_w is None else repr(s.erp_w), "licence": s.licence}
        w.writerow([vals[c] for c in columns])
    assert parse_registry_text(buf.getvalue(), "r.csv") == rows


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parser_fails_only_with_config_errors(text):
    try:
        got = parse_registry_text(",".join(FM_COLUMNS) + "\n" + text, "r.csv")
    except ConfigError as exc:
        assert str(exc).startswith("r.csv")
        return
    assert all(FM_BAND_HZ[0] <= s.frequency_hz <= FM_BAND_HZ[1] for s in got)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_import_round_trip_update_and_replace(db_url, tmp_path):
    reg = _write(tmp_path / "reg.csv", GOOD)
    with Store.open(db_url) as store:
        res = import_registry(store, reg)
        assert (res.read, res.stored, res.replaced) == (4, 4, 0)
        assert sorted(registry_stations(store), key=lambda s: s.frequency_hz) == sorted(
            parse_registry_text(GOOD), key=lambda s: s.frequency_hz)
        assert {e.source for e in registry_entries(store)} == {"reg.csv"}
        # importing again updates rows in place (same frequency and site)
        new = _write(tmp_path / "new.csv", ",".join(FM_COLUMNS) + "\n97100000,CNR-1 new,C202,22.54,114.05,,L9\n")
        assert import_registry(store, new).stored == 1
        got = {s.frequency_hz: s for s in registry_stations(store)}
        assert len(got) == 4 and got[97.1e6] == FmStation(97.1e6, "CNR-1 new", "C202", 22.54, 114.05, None, "L9")
        # a bad file stores nothing
        bad = _write(tmp_path / "bad.csv", ",".join(FM_COLUMNS) + "\n99000000,X,,22.5,114,,\n99.1,Y,,1,1,,\n")
        with pytest.raises(ConfigError, match=r"bad\.csv:3:1"):
            import_registry(store, bad)
        assert len(registry_stations(store)) == 4
        before = registry_summary(store)
        res = import_registry(store, new, replace_all=True)
        assert (res.stored, res.replaced) == (1, 4) and len(registry_stations(store)) == 1
        after = registry_summary(store)
        assert before[0] == 4 and after[0] == 1 and after[1] >= before[1]


def test_cli_registry_import_and_list(sqlite_url, tmp_path, capsys):
    reg = _write(tmp_path / "reg.csv", GOOD)
    assert main(["registry", "import", str(reg), "--db", sqlite_url]) == 0
    assert "4 FM stations read, 4 stored" in capsys.readouterr().out
    assert main(["registry", "list", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "97.10 C201" in out and "Guangdong, Radio" in out and "4 FM station(s)" in out
    assert main(["registry", "list", "--db", sqlite_url, "--format", "csv"]) == 0
    assert sorted(parse_registry_text(capsys.readouterr().out), key=lambda s: s.frequency_hz) == sorted(
        parse_registry_text(GOOD), key=lambda s: s.frequency_hz)
    bad = _write(tmp_path / "bad.csv", ",".join(FM_COLUMNS) + "\n97100000,A,GGGG,22.5,114,,\n")
    assert main(["registry", "import", str(bad), "--db", sqlite_url, "--replace"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:2:3: pi" in err and "Traceback" not in err
    assert main(["registry", "import", str(reg), "--db", sqlite_url, "--replace"]) == 0
    assert "4 previous stations dropped" in capsys.readouterr().out


def test_reference_merges_database_and_configured_csv(sqlite_url, tmp_path):
    conf = FmStation(97.1e6, "CNR-1 (csv)", "C201", 22.54, 114.05, None, "GD-001")
    other = FmStation(99.5e6, "Only in csv", None, 22.5, 114.0, None, "X")
    with Store.open(sqlite_url) as store:
        import_registry(store, _write(tmp_path / "reg.csv", GOOD))
        ref = load_fm_reference(store, Reference(fm_stations=(conf, other)))
    by_f = {s.frequency_hz: s for s in ref.fm_stations}
    assert len(ref.fm_stations) == 5 and by_f[97.1e6].name == "CNR-1" and by_f[99.5e6] == other


def _associate(store):
    """Attach every stored detection to the FM emitter of its frequency."""
    by_freq = {}
    for d in store.detections():
        by_freq.setdefault(d.freq_hz, []).append(d.id)
    for f, ids in by_freq.items():
        store.assign_detections(store.get_or_create_emitter(f"fm:{f:.0f}", "fm", f, None), ids)


def _det(seq, t, freq_hz, power_dbm, **features):
    return Detection("s1", seq, t, LAT0, LON0, "fm", freq_hz, None, 200e3, power_dbm, 40.0, features)


def test_collector_fm_verdicts_from_the_database_registry(sqlite_url, tmp_path):
    """Registry in the database; the emitters' latest detections give PI, pilot and levels."""
    t0 = 1_764_000_000.0
    sweep = [  # one sweep of one sensor
        _det(1, t0, 97.1e6, -40.0, rds=True, rds_pi="C201", pilot=True, deviation_khz=70.0),   # licensed
        _det(2, t0 + 1, 98.4e6, -45.0, rds=True, rds_pi="1234", pilot=True, deviation_khz=70.0),  # PI mismatch
        _det(3, t0 + 2, 99.7e6, -50.0, rds=False, pilot=False, deviation_khz=95.0),            # unlicensed
        _det(4, t0 + 3, 96.7e6, -90.0, rds=False, pilot=False),                                # 2x97.1 - 97.5
        _det(5, t0 + 4, 97.5e6, -42.0, rds=False, pilot=True, deviation_khz=60.0),              # unlicensed
    ]
    reg = _write(tmp_path / "reg.csv", GOOD)
    with Store.open(sqlite_url) as store:
        import_registry(store, reg)
        store.add_batch(sweep)
        _associate(store)
        emitters = {e.freq_hz: e for e in store.emitters(kind="fm")}
        ev = fm_evidence(store, list(emitters.values()))
        ref = load_fm_reference(store, Reference())
    assert all(isinstance(e, FmEvidence) and len(e.carriers) == 5 for e in ev.values())
    v = {f: judge_fm(em, ref, ev[em.id]) for f, em in emitters.items()}
    assert v[97.1e6].verdict == "licensed" and "RDS PI C201 matches" in v[97.1e6].reasons
    assert v[98.4e6].verdict == "suspicious" and any("RDS PI 1234" in r for r in v[98.4e6].reasons)
    assert v[99.7e6].verdict == "unlicensed" and any("over-deviated" in r for r in v[99.7e6].reasons)
    assert v[96.7e6].verdict == "intermod" and "intermod" not in ALARMING
    assert v[97.5e6].verdict == "unlicensed"
    # without evidence: the frequency alone against the registry
    bare = judge_fm(emitters[98.4e6], ref)
    assert bare.verdict == "licensed" and "Guangdong, Radio" in bare.reasons[0]
    assert judge_fm(emitters[99.7e6], Reference()).verdict == "unlicensed"


def test_a_licensed_station_that_lost_the_pilot_and_rds_it_used_to_send_is_suspicious(sqlite_url, tmp_path):
    t0 = 1_764_000_000.0
    before = [_det(i, t0 + 600 * i, 102.6e6, -45.0, rds=True, pilot=True, deviation_khz=70.0) for i in range(8)]
    now = _det(100, t0 + 3 * 86400, 102.6e6, -45.0, rds=False, pilot=False, deviation_khz=70.0)
    with Store.open(sqlite_url) as store:
        import_registry(store, _write(tmp_path / "reg.csv", GOOD))
        store.add_batch(before + [now])
        _associate(store)
        (em,) = store.emitters(kind="fm")
        ev = fm_evidence(store, [em])[em.id]
        ref = load_fm_reference(store, Reference())
    assert ev.history.pilot is True and ev.history.rds is True and ev.latest.seq == 100
    v = judge_fm(em, ref, ev)
    assert v.verdict == "suspicious"
    assert "no stereo pilot, but Music is known to send one" in v.reasons
    assert "no RDS, but Music is known to send it" in v.reasons
    # the same carrier seen only today: nothing known, nothing wrong
    fresh = FmEvidence(ev.latest, ev.carriers, ev.schedule, None)
    assert judge_fm(em, ref, fresh).verdict == "licensed"
