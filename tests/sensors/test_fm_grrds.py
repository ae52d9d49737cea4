"""The simulator's FM stations as an independent receiver hears them: gr-rds reads their RDS."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dsp.fm.station import StationCandidates, analyze_stations
from sensors.sim.scenario import parse_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _grrds_missing() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return "no /usr/bin/python3"
    r = subprocess.run([str(SYSTEM_PYTHON), "-c", "import rds, gnuradio.gr"], capture_output=True, text=True)
    return "needs Debian's gr-rds (apt-get install gr-rds)" if r.returncode else None


def _worker_source() -> str:
    spec = importlib.util.spec_from_file_location("bench_fm", ROOT / "bench" / "bench_fm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GRRDS_WORKER


SCENARIO = {
    "area": {"center_lat": 30.0, "center_lon": 120.0},
    "sensors": [{"id": "s", "lat": 30.0, "lon": 120.0, "receiver": {"lo_ppm": 0.0}}],
    "emitters": [
        {"id": "fm", "type": "fm", "lat": 30.004, "lon": 120.003, "power_dbm": 50, "freq_hz": 95.3e6,
         "rds_pi": "C0DE", "rds_ps": "SIMFM"},
        {"id": "pirate", "type": "fm", "lat": 30.002, "lon": 119.998, "power_dbm": 40, "freq_hz": 95.7e6,
         "licensed": False, "stereo": False, "rds_pi": "1A2B", "rds_ps": "FAKE 1"},
    ],
}


MISSING = _grrds_missing()


@pytest.mark.external
@pytest.mark.skipif(MISSING is not None, reason=MISSING or "")
@pytest.mark.parametrize("emitter_id", ["fm", "pirate"])
def test_grrds_reads_what_the_simulator_sends_and_so_do_we(tmp_path, emitter_id):
    world = World(parse_scenario(SCENARIO))
    em = next(e for e in world.scenario.emitters if e.id == emitter_id)
    src = SimulatedSource(world, "s", seed=1)
    src.tune(em.freq_hz + 2e3, 1e6, 20.7)  # the carrier near the centre, clear of the DC spike
    iq = src.read(3_000_000).as_complex64()
    path = tmp_path / "station.cf32"
    iq.tofile(path)
    worker = tmp_path / "grrds_worker.py"
    worker.write_text(_worker_source())
    r = subprocess.run([str(SYSTEM_PYTHON), str(worker), str(path), "1e6", "-2000"], capture_output=True,
                       text=True, timeout=300)
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["pi"] == f"{em.rds_pi:04X}" and got["ps"] == em.rds_ps, (got, r.stderr[-300:])
    z = np.zeros(1)
    ours = analyze_stations(iq, 1e6, em.freq_hz + 2e3, StationCandidates(np.array([em.freq_hz]), z, z, z, z))
    st = ours.stations[0]
    assert st.rds.pi == em.rds_pi and st.rds.ps == em.rds_ps and st.pilot == em.stereo
