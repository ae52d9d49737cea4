"""The command line: user errors are one line without a traceback; scans on real recordings."""

import json
import subprocess
import sys

import pytest

from rfhunt.cli import main
from tests.shared_data import DATA_DIR, requires

FM_BAND = DATA_DIR / "fm" / "fm_band_2400k.sigmf-meta"


def run(*args):
    return subprocess.run([sys.executable, "-m", "rfhunt.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, words", [
    (["sim", "check", "/nonexistent.toml"], "cannot read scenario"),
    (["sensor", "--config", "/nonexistent.toml"], "cannot read sensor configuration"),
    (["map", "--db", "nosuchdb://x", "--out", "/tmp/x.html"], "nosuchdb"),
    (["scan", "power", "rtltcp:127.0.0.1:1", "--band", "fm"], "127.0.0.1:1"),
])
def test_user_errors_are_one_line_without_traceback(args, words):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("rfhunt: error:") and words in r.stderr


def test_sim_check_default(capsys):
    assert main(["sim", "check"]) == 0
    assert "gsm_cell=7" in capsys.readouterr().out


@requires(FM_BAND)
def test_scan_power_on_a_real_fm_recording(capsys):
    """gr-rds made this file: stations at 97.1, 98.4 and 98.9 MHz and nothing else."""
    assert main(["scan", "power", str(FM_BAND), "--band", "fm", "--format", "jsonl", "--dwell", "0.5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    freqs = sorted(round(r["freq_hz"] / 1e5) / 10 for r in rows)
    assert freqs == [97.1, 98.4, 98.9]
    assert all(r["kind"] == "fm" and r["snr_db"] > 15 for r in rows)


THC953 = DATA_DIR / "gsm" / "thc2007" / "GSMSP_20070204_robert_dbsrx_953.6MHz_128.cfile"


@requires(THC953)
def test_scan_gsm_jsonl_and_gsmtap(capsys):
    """gr-gsm decodes two CCCH frames from this 2007 capture; we must give the same ones,
    print the cell, and send every frame as GSMTAP."""
    import socket

    from sensors.gsmtap import decode_gsmtap

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    try:
        assert main(["scan", "gsm", str(THC953), "--sample-rate", "500e3", "--center-freq", "953.6e6",
                     "--format", "jsonl", "--gsmtap", f"127.0.0.1:{rx.getsockname()[1]}"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        frames = {(r["fn"], r["payload_hex"]) for r in rows if r["type"] == "frame"}
        assert {(857118, "01" + "2b" * 22), (857122, "150621000100" + "2b" * 17)} <= frames
        assert all(r["arfcn"] == 93 and r["timeslot"] == 0 and r["channel"] in ("BCCH", "CCCH")
                   for r in rows if r["type"] == "frame")
        (cell,) = [r for r in rows if r["type"] == "cell"]
        assert (cell["arfcn"], cell["bsic"], cell["mcc"], cell["mnc"], cell["lac"], cell["cid"]) == \
            (93, 56, "272", "02", 15016, 15149)
        assert abs(cell["ppm"] - 9.1) < 0.5 and "freq_offset_hz" in cell and "power_dbm" in cell
        sent = {(g.fn, g.payload.hex()) for g in (decode_gsmtap(rx.recv(2048)) for _ in frames)}
        assert sent == frames
    finally:
        rx.close()


@requires(THC953)
def test_scan_gsm_bcch_only(capsys):
    """--bcch-only: the same cell identity from the BCCH alone, no CCCH frames."""
    assert main(["scan", "gsm", str(THC953), "--sample-rate", "500e3", "--center-freq", "953.6e6",
                 "--format", "jsonl", "--bcch-only"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames = [r for r in rows if r["type"] == "frame"]
    assert frames and all(r["channel"] == "BCCH" for r in frames)
    (cell,) = [r for r in rows if r["type"] == "cell"]
    assert (cell["arfcn"], cell["bsic"], cell["mcc"], cell["mnc"], cell["lac"], cell["cid"]) == \
        (93, 56, "272", "02", 15016, 15149)


UPLINK = DATA_DIR / "gsm" / "uplink" / "iq-ul-4bursts.cf64"


@requires(UPLINK)
def test_scan_goip_real_uplink(capsys):
    args = ["scan", "goip", str(UPLINK), "--sample-rate", str(6.5e6 / 6), "--center-freq", "900e6"]
    assert main(args + ["--datatype", "cf32_le", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    bursts = [r for r in rows if r["type"] == "burst"]
    assert [r["burst"] for r in bursts] == ["normal"] * 4
    assert {r["arfcn"] for r in bursts} == {50} and len({r["timeslot"] for r in bursts}) == 1
    assert all(abs(r["duration_s"] - 148 / 270833.33) < 25e-6 for r in bursts)
    (cluster,) = [r for r in rows if r["type"] == "cluster"]
    assert cluster["verdict"] == "uplink" and cluster["links"] == [[50, bursts[0]["timeslot"]]]
    # A .cf64 file does not say its sample format: one clear line, no traceback.
    r = run(*args)
    assert r.returncode == 2 and "unknown recording format '.cf64'" in r.stderr and "Traceback" not in r.stderr


def test_scan_gsm_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "x.cfile"
    bad.write_bytes(b"\x00" * 13)
    r = run("scan", "gsm", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "x.cfile" in r.stderr
