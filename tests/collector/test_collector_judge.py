"""Verdicts, reference CSVs and the collector config."""

from __future__ import annotations

import pytest

from collector.config import CollectorConfig, load_collector_config
from collector.judge import judge, uplink_clusters
from collector.reference import (
    FmStation,
    GsmCell,
    Reference,
    load_reference,
    read_fm_registry,
    read_gsm_cells,
)
from collector.store import EmitterRow
from rfhunt.errors import ConfigError
from rfhunt.geo import from_enu

LAT0, LON0 = 45.07, 7.68


def em(i, kind, freq_hz, channel=None, e=0.0, n=0.0, semi=None, last_seen_utc=2.0, underdetermined=False):
    lat, lon = (float(v) for v in from_enu(e, n, LAT0, LON0))
    return EmitterRow(
        id=i, assoc_key=f"k{i}", kind=kind, freq_hz=freq_hz, channel=channel, first_seen_utc=1.0,
        last_seen_utc=last_seen_utc, n_detections=3, lat=lat, lon=lon, semi_major_m=semi,
        semi_minor_m=None if semi is None else semi / 2, orientation_deg=None if semi is None else 0.0,
        est_power_dbm=20.0, path_loss_exponent=3.0, rms_residual_db=1.0, underdetermined=underdetermined,
        verdict=None, reasons=(), updated_utc=None,
    )


REF = Reference(
    gsm_cells=(GsmCell(222, 1, 100, 1234, 62, 10, 45.10, 7.70), GsmCell(222, 1, 100, 1235, 70, 11, 46.5, 7.7)),
    fm_stations=(FmStation(100.1e6, "Radio Uno", "5201", 45.0, 7.6, 5000.0, "L-1"),),
)


def test_fm_verdicts():
    out = judge([em(1, "fm", 100.14e6), em(2, "fm", 100.2e6)], REF)
    assert out[1].verdict == "licensed" and "Radio Uno" in out[1].reasons[0]
    assert out[2].verdict == "unlicensed" and "100.20 MHz" in out[2].reasons[0]


def test_gsm_downlink_verdicts():
    out = judge([em(1, "gsm_downlink", 947.4e6, 62), em(2, "gsm_downlink", 949e6, 70),
                 em(3, "gsm_downlink", 949.2e6, 71)], REF)
    # never decoded: judged from the ARFCN alone; outside the plan is one weak indicator, not an alarm
    assert out[1].verdict == "known"
    assert out[2].verdict == "unverified"  # ARFCN 70 exists, but 160 km away
    assert out[3].reasons == ("ARFCN 71 is not in the operator's BCCH plan here",)
    assert [i["name"] for i in out[3].indicators] == ["arfcn_outside_plan"] and out[3].score == 1.5
    assert out[1].score == 0.0 and out[1].indicators == ()


def test_goip_cluster_of_four_channels():
    goip = [em(10 + k, "gsm_uplink", 890e6 + k * 2e5, 10 + k, e=40.0 * k, n=-30.0 * k) for k in range(4)]
    # Two more uplinks: one 2 km away (a phone), one whose big ellipse covers the cluster but not vice versa.
    phone = em(20, "gsm_uplink", 895e6, 50, e=2000.0)
    vague = em(21, "gsm_uplink", 896e6, 51, e=-1500.0, semi=5000.0)
    out = judge([*goip, phone, vague], REF)
    for g in goip:
        assert out[g.id].verdict == "goip_suspect"
        assert out[g.id].reasons[0] == "4 uplink channels transmitting from one place"
    assert out[20].verdict == "uplink" and out[21].verdict == "uplink"
    assert sorted(len(c) for c in uplink_clusters([*goip, phone, vague])) == [1, 1, 4]


def test_three_colocated_uplinks_are_not_goip():
    ups = [em(k, "gsm_uplink", 890e6, k, e=10.0 * k) for k in range(3)]
    assert {j.verdict for j in judge(ups, REF).values()} == {"uplink"}


def test_one_rooftop_hearing_four_phones_is_not_goip():
    # each phone heard by one sensor only: all placed at that sensor, nothing known about co-location
    phones = [em(k, "gsm_uplink", 890e6 + k * 2e5, k, underdetermined=True) for k in range(4)]
    out = judge(phones, REF)
    assert {j.verdict for j in out.values()} == {"uplink"}
    assert "fewer than 3 positions" in out[0].reasons[0]
    assert uplink_clusters(phones) == []


def test_stale_uplinks_do_not_count_for_goip():
    t = 1_750_000_000.0
    fresh = [em(k, "gsm_uplink", 890e6 + k * 2e5, k, e=10.0 * k, last_seen_utc=t) for k in range(3)]
    stale = em(3, "gsm_uplink", 891e6, 5, e=30.0, last_seen_utc=t - 7200.0)
    out = judge([*fresh, stale], REF)
    assert {j.verdict for j in out.values()} == {"uplink"}
    assert "not heard in the 1 h" in out[3].reasons[0]
    # a wider window lets it count again
    wide = judge([*fresh, stale], REF, uplink_window_s=3 * 3600.0)
    assert {j.verdict for j in wide.values()} == {"goip_suspect"}


def test_colocated_by_mutual_ellipses():
    ups = [em(k, "gsm_uplink", 890e6, k, n=700.0 * k, semi=3000.0) for k in range(4)]
    assert {j.verdict for j in judge(ups, REF).values()} == {"goip_suspect"}


def test_reference_readers(tmp_path):
    g = tmp_path / "cells.csv"
    g.write_text("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n222,1,100,1234,62,10,45.1,7.7\n\n")
    f = tmp_path / "fm.csv"
    f.write_text("frequency_hz,name,pi,lat,lon,erp_w,licence\n100100000,Radio Uno,5201,45.0,7.6,5000,L-1\n"
                 "101500000,Radio Due,,45.0,7.6,,L-2\n")
    assert read_gsm_cells(g) == [REF.gsm_cells[0]]
    stations = read_fm_registry(f)
    assert stations[0] == REF.fm_stations[0] and stations[1].pi is None and stations[1].erp_w is None
    ref = load_reference(g, None)
    assert len(ref.gsm_cells) == 1 and ref.fm_stations == ()


@pytest.mark.parametrize("body, where", [
    ("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n222,1,100,1234,62,10,45.1,7.7\n222,1,100,1234,2000,10,45.1,7.7\n",
     ":3: column 'arfcn'"),
    ("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n222,1,100,1234,62,10,north,7.7\n", ":2: column 'lat'"),
    ("mcc,mnc,lac,cid,arfcn,bsic,lat\n", ":1: header"),
    ("mcc,mnc,lac,cid,arfcn,bsic,lat,lon\n222,1,100\n", ":2: 3 fields"),
    ("", "empty file"),
])
def test_bad_gsm_rows_name_file_line_column(tmp_path, body, where):
    p = tmp_path / "cells.csv"
    p.write_text(body)
    with pytest.raises(ConfigError) as info:
        read_gsm_cells(p)
    assert str(p) in str(info.value) and where in str(info.value)


def test_bad_fm_row_and_missing_file(tmp_path):
    p = tmp_path / "fm.csv"
    p.write_text("frequency_hz,name,pi,lat,lon,erp_w,licence\n100100000,Radio,XYZ1,45,7,1,L\n")
    with pytest.raises(ConfigError, match=r"fm\.csv:2: column 'pi'"):
        read_fm_registry(p)
    with pytest.raises(ConfigError, match="nothere.csv"):
        read_fm_registry(tmp_path / "nothere.csv")


@pytest.mark.parametrize("pi", ["0x1F", "+123", "1_23", "-1F2", "12345", "12"])
def test_rds_pi_must_be_exactly_four_hex_digits(tmp_path, pi):
    p = tmp_path / "fm.csv"
    p.write_text(f"frequency_hz,name,pi,lat,lon,erp_w,licence\n100100000,Radio,{pi},45,7,1,L\n")
    with pytest.raises(ConfigError, match=r"fm\.csv:2: column 'pi'"):
        read_fm_registry(p)


def test_config_defaults_and_file(tmp_path):
    assert load_collector_config(None) == CollectorConfig()
    assert CollectorConfig().path_loss_exponent == {"gsm_downlink": 3.0, "gsm_uplink": 3.0, "fm": 2.8}
    p = tmp_path / "collector.toml"
    p.write_text(
        '[collector]\ndb_url = "sqlite:///x.db"\nbind = "tcp://127.0.0.1:6000"\npub_bind = "tcp://127.0.0.1:6001"\n'
        "relocate_interval_s = 0.5\n[localization]\nshadowing_db = 4\npath_loss_exponent = { fm = 2.5 }\n"
        '[reference]\ngsm_csv = "cells.csv"\n'
    )
    cfg = load_collector_config(p)
    assert cfg.bind == "tcp://127.0.0.1:6000" and cfg.pub_bind == "tcp://127.0.0.1:6001"
    assert cfg.relocate_interval_s == 0.5 and cfg.shadowing_db == 4.0
    assert cfg.path_loss_exponent == {"gsm_downlink": 3.0, "gsm_uplink": 3.0, "fm": 2.5}
    assert cfg.gsm_csv == tmp_path / "cells.csv" and cfg.fm_registry_csv is None


def test_config_new_keys_and_sqlite_path_relative_to_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    p = folder / "collector.toml"
    p.write_text('[collector]\ndb_url = "sqlite:///data/rfhunt.db"\nmax_future_s = 60\n'
                 "[localization]\nlocate_window_s = 600\n[judge]\nuplink_window_s = 7200\n")
    monkeypatch.chdir(tmp_path)   # not the config's folder
    cfg = load_collector_config(p)
    assert cfg.db_url == f"sqlite:///{folder.resolve() / 'data' / 'rfhunt.db'}"
    assert (cfg.max_future_s, cfg.locate_window_s, cfg.uplink_window_s) == (60.0, 600.0, 7200.0)
    for url in (f"sqlite:///{tmp_path / 'abs.db'}", "sqlite://", "sqlite:///:memory:",
                "postgresql+psycopg://u:pw@db.example/rfhunt"):
        p.write_text(f'[collector]\ndb_url = "{url}"\n')
        assert load_collector_config(p).db_url == url


@pytest.mark.parametrize("body, match", [
    ("[collector]\nbnd = 'x'\n", "unknown key 'bnd'"),
    ("[collectr]\n", r"unknown section \[collectr\]"),
    ("[localization]\npath_loss_exponent = { gsm = 3 }\n", "unknown key 'gsm'"),
    ("[localization]\nshadowing_db = -1\n", "shadowing_db must be a positive number"),
    ("[collector]\nrelocate_interval_s = 'soon'\n", "relocate_interval_s"),
    ("[collector\n", "not valid TOML"),
])
def test_config_errors_name_key_and_file(tmp_path, body, match):
    p = tmp_path / "c.toml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=match) as info:
        load_collector_config(p)
    assert str(p) in str(info.value)
