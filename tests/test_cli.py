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
