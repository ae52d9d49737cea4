"""The simulator's GSM cells as an independent receiver hears them: gr-gsm decodes their SI3."""

import shutil
import subprocess

import numpy as np
import pytest

from dsp.bands import arfcn_to_downlink_hz
from dsp.gsm.si import SystemInformation3, parse_l2_frame
from sensors.sim.scenario import parse_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World
from tests.shared_data import SHARED_DIR

GRGSM = SHARED_DIR / "tools" / "grgsm-decode"
SCENARIO = {
    "area": {"center_lat": 30.0, "center_lon": 120.0},
    "sensors": [{"id": "s", "lat": 30.0, "lon": 120.0, "receiver": {"lo_ppm": 0.0}}],
    "emitters": [
        {"id": "cell", "type": "gsm_cell", "lat": 30.003, "lon": 120.002, "power_dbm": 43, "arfcn": 20,
         "mcc": 460, "mnc": 1, "lac": 4321, "cid": 777, "bsic": 21},
        {"id": "fake", "type": "fake_bts", "lat": 30.001, "lon": 119.998, "power_dbm": 30, "arfcn": 63,
         "mcc": 460, "mnc": 0, "lac": 1234, "cid": 1, "bsic": 9, "cro_db": 60, "lac_change_s": 120},
    ],
}


@pytest.mark.external
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("grgsm_decode") is None or not GRGSM.exists(),
                    reason="needs Debian's gr-gsm (apt-get install gr-gsm) and shared/tools/grgsm-decode")
@pytest.mark.parametrize("emitter_id", ["cell", "fake"])
def test_grgsm_reads_the_identity_of_simulated_cells(tmp_path, emitter_id):
    world = World(parse_scenario(SCENARIO))
    em = next(e for e in world.scenario.emitters if e.id == emitter_id)
    freq = float(arfcn_to_downlink_hz(em.arfcn))
    src = SimulatedSource(world, "s", seed=1)
    src.tune(freq, 1e6, 40.2)  # the centre on the carrier, as grgsm_decode expects
    iq = src.read(2_500_000).as_complex64()  # 2.5 s: every SI3 of an 8-multiframe cycle and more
    path = tmp_path / "cell.cfile"
    iq.astype(np.complex64).tofile(path)
    r = subprocess.run([str(GRGSM), "-c", str(path), "-s", "1e6", "-f", str(freq), "-m", "BCCH", "-t", "0", "-v"],
                       capture_output=True, text=True, timeout=300)
    frames = []
    for line in r.stdout.splitlines():
        head, sep, hexbytes = line.partition(":")
        if sep and head.split() and head.split()[0].isdigit():
            frames.append(bytes.fromhex(hexbytes.strip()))
    assert frames, f"gr-gsm decoded nothing: {r.stdout[-500:]} {r.stderr[-500:]}"
    si3 = [m for m in map(parse_l2_frame, frames) if isinstance(m, SystemInformation3)]
    assert si3, [f.hex() for f in frames]
    ident = si3[0].to_dict()
    assert (ident["lai"]["mcc"], ident["lai"]["mnc"], ident["lai"]["lac"], ident["cell_identity"]) == \
        ("460", f"{em.mnc:02d}", em.lac_at(0.0), em.cid)
