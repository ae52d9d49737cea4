"""Reference cells: OpenCelliD/MLS and operator lists, ``rfhunt reference import``, the baseline."""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.reference import (
    OPENCELLID_COLUMNS,
    GsmCell,
    read_cell_reference,
    read_opencellid,
    sniff_cell_format,
)
from collector.refimport import import_reference, parse_area
from collector.store import Store
from rfhunt.cli import main
from rfhunt.errors import ConfigError

OCID = """radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal
GSM,460,0,9510,20311,,114.0520,22.5453,1200,14,1,1459692999,1709012345,0
UMTS,460,1,42310,123456789,301,114.07,22.54,800,3,1,1459692999,1709012345,-95
GSM,460,1,42310,5121,0,114.0713,22.5468,0,1,0,1459692999,1709012345,
LTE,460,0,9510,268435455,77,114.05,22.55,500,9,1,1459692999,1709012345,-101
GSM,262,1,1000,2000,,13.40,52.52,2500,40,1,1459692999,1709012345,0
"""


def test_opencellid_export_gsm_rows_only(tmp_path):
    p = tmp_path / "cell_towers.csv"
    p.write_text(OCID)
    cells, skipped = read_opencellid(p)
    assert skipped == {"UMTS": 1, "LTE": 1}
    assert cells[0] == GsmCell(460, 0, 9510, 20311, None, None, 22.5453, 114.0520, 1200.0, "opencellid")
    assert cells[1].range_m is None            # range 0: unknown
    assert [c.mcc for c in cells] == [460, 460, 262]
    # OpenCelliD's per-country files come gzipped and without the header line
    gz = tmp_path / "460.csv.gz"
    gz.write_bytes(gzip.compress("".join(OCID.splitlines(keepends=True)[1:]).encode()))
    assert sniff_cell_format(gz) == "opencellid"
    assert read_opencellid(gz)[0] == cells


@pytest.mark.parametrize("line, where", [
    ("GSM,460,0,9510,70000,,114.0,22.5,100,1,1,1,1,0", ":2: column 'cell'"),          # a GSM CID is 16 bits
    ("GSM,460,0,9510,1,,114.0,122.5,100,1,1,1,1,0", ":2: column 'lat'"),
    ("WIMAX,460,0,9510,1,,114.0,22.5,100,1,1,1,1,0", ":2: column 'radio'"),
    ("GSM,460,0,9510,1,,114.0,22.5,100", ":2: 9 fields"),
])
def test_bad_opencellid_rows_name_file_line_and_column(tmp_path, line, where):
    p = tmp_path / "ocid.csv"
    p.write_text(",".join(OPENCELLID_COLUMNS) + "\n" + line + "\n")
    with pytest.raises(ConfigError) as info:
        read_opencellid(p)
    assert str(p) in str(info.value) and where in str(info.value)


def test_sniffing_the_format(tmp_path):
    op = tmp_path / "op.csv"
    op.write_text("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n460,0,9510,20311,12,21,22.5453,114.052\n460,0,9510,20312,,,22.55,114.06\n")
    got = read_cell_reference(op)
    assert got.format == "operator" and got.cells[1].arfcn is None and got.cells[0].bsic == 21
    other = tmp_path / "x.csv"
    other.write_text("name,phone\nx,1\n")
    with pytest.raises(ConfigError, match="not a cell list"):
        read_cell_reference(other)


_row = st.fixed_dictionaries({
    "radio": st.sampled_from(["GSM", "UMTS", "LTE"]), "mcc": st.integers(0, 999), "net": st.integers(0, 999),
    "area": st.integers(0, 65535), "cell": st.integers(0, 65535), "unit": st.one_of(st.just(""), st.integers(0, 511)),
    "lon": st.floats(-180, 180, allow_nan=False), "lat": st.floats(-90, 90, allow_nan=False),
    "range": st.integers(0, 100000), "samples": st.integers(0, 10**6), "changeable": st.integers(0, 1),
    "created": st.integers(0, 2 * 10**9), "updated": st.integers(0, 2 * 10**9),
    "averageSignal": st.one_of(st.just(""), st.integers(-120, 0)),
})


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_row, max_size=20))
def test_opencellid_round_trip(tmp_path_factory, rows):
    p = tmp_path_factory.mktemp("ocid") / "x.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=OPENCELLID_COLUMNS)
    w.writeheader()
    w.writerows(rows)
    p.write_text(buf.getvalue())
    cells, skipped = read_opencellid(p)
    gsm = [r for r in rows if r["radio"] == "GSM"]
    assert [(c.mcc, c.mnc, c.lac, c.cid, c.lat, c.lon) for c in cells] == \
        [(r["mcc"], r["net"], r["area"], r["cell"], float(repr(r["lat"])), float(repr(r["lon"]))) for r in gsm]
    assert sum(skipped.values()) == len(rows) - len(gsm)


def test_import_into_the_store_updates_filters_and_replaces(db_url, tmp_path):
    p = tmp_path / "cell_towers.csv"
    p.write_text(OCID)
    with Store.open(db_url) as store:
        res = import_reference(store, p, area=(22.54, 114.06, 20e3))
        assert (res.format, res.source, res.read, res.stored, res.outside_area) == ("opencellid", "opencellid", 3, 2, 1)
        assert res.skipped == {"UMTS": 1, "LTE": 1}
        again = import_reference(store, p, area=(22.54, 114.06, 20e3))   # importing again updates, adds nothing
        assert again.stored == 2 and len(store.reference_cells()) == 2
        op = tmp_path / "op.csv"
        op.write_text("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n460,0,9510,20311,12,21,22.5453,114.052\n")
        import_reference(store, op, source="cmcc-2026")
        assert store.reference_summary().keys() == {"opencellid", "cmcc-2026"}
        (cell,) = store.reference_cells("cmcc-2026")
        assert (cell.arfcn, cell.bsic, cell.source) == (12, 21, "cmcc-2026")
        op.write_text("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n460,0,9510,20399,14,22,22.5453,114.052\n")
        res = import_reference(store, op, source="cmcc-2026", replace=True)
        assert res.replaced == 1 and [c.cid for c in store.reference_cells("cmcc-2026")] == [20399]


@pytest.mark.parametrize("text", ["22.5,114", "north,114,5", "95,114,1000", "22.5,114,-3"])
def test_bad_area(text):
    with pytest.raises(ConfigError, match="area"):
        parse_area(text)


def test_cli_reference_import_list_and_alerts(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    p = tmp_path / "cell_towers.csv.gz"
    p.write_bytes(gzip.compress(OCID.encode()))
    assert main(["reference", "import", str(p), "--db", db, "--area", "22.54,114.06,20000"]) == 0
    out = capsys.readouterr().out
    assert "opencellid list, 3 GSM cells read, 2 stored as source 'opencellid', 1 outside the area" in out
    assert "LTE" in out and "UMTS" in out
    assert main(["reference", "list", "--db", db]) == 0
    assert "opencellid" in capsys.readouterr().out
    with Store.open(db) as store:
        eid = store.get_or_create_emitter("gsm_downlink:arfcn:63:bsic:9", "gsm_downlink", 947.6e6, 63)
        store.upsert_alert(eid, raised_utc=1.79e9, updated_utc=1.79e9, first_seen_utc=1.79e9, verdict="rogue",
                           score=12.5, channel=63, identity="460-00-1234-1", lat=22.54, lon=114.06,
                           indicators=[{"name": "no_neighbours", "weight": 2.5, "reason": "its list is empty",
                                        "evidence": {}}])
    assert main(["alerts", "--db", db]) == 0
    assert "460-00-1234-1" in (table := capsys.readouterr().out) and "its list is empty" in table
    assert main(["alerts", "--db", db, "--format", "jsonl"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["score"] == 12.5 and row["indicators"][0]["name"] == "no_neighbours"


def test_cli_reference_errors_are_one_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n460,0,1,2,3,99,22.5,114.0\n")
    assert main(["reference", "import", str(p), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rfhunt: error:") and f"{p}:2: column 'bsic'" in err and "Traceback" not in err
    assert main(["reference", "import", str(tmp_path / "none.csv"), "--db", f"sqlite:///{tmp_path / 'r.db'}"]) == 2
    assert "cannot read reference file" in capsys.readouterr().err
