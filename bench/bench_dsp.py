"""Throughput of the first DSP stage, as a multiple of real time at the capture's rate.

Run: make bench   (or .venv/bin/python bench/bench_dsp.py)

Figures are ratios measured in this process: seconds of air time processed per second of
one core's CPU time (time.process_time, best of five batches), so they do not depend on a
wall clock shared with other work. The simulator's synthesis rate is shown for scale: it bounds how fast the demo runs.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from dsp.bands import BANDS
from dsp.plan import plan_hops
from dsp.spectrum import channel_powers, detect_carriers
from sensors.config import ScanSpec
from sensors.scan import scan_band
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World

FS = 2.4e6


def cpu_time(fn, repeat: int, batches: int = 5) -> float:
    """CPU seconds of one call: the best of ``batches`` batches of ``repeat`` calls (the least
    disturbed by other work on the machine)."""
    fn()  # warm up
    best = float("inf")
    for _ in range(batches):
        t0 = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - t0) / repeat)
    return best


def main() -> None:
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    rng = np.random.default_rng(0)
    world = World(load_scenario())
    src = SimulatedSource(world, "roof-nw", seed=1)
    rows = []
    for name in ("gsm900-dl", "gsm900-ul", "fm"):
        band = BANDS[name]
        hop = plan_hops(band, FS)[len(plan_hops(band, FS)) // 2]
        for dwell in (0.02, 0.25):
            n = int(FS * dwell) // 256 * 256
            src.tune(hop.center_freq_hz, FS, 30.0)
            iq = src.read(n).as_complex64()

            def stage():
                cp = channel_powers(iq, FS, hop.center_freq_hz, hop.channel_freqs_hz, band.bandwidth_hz)
                detect_carriers(cp, bursty=band.bursty)

            t = cpu_time(stage, repeat=max(3, int(2 / dwell)))
            rows.append((f"spectrum+CFAR {name}", dwell, dwell / t))
    # cu8 -> complex64 conversion on the same block size (the sensor does it once per capture)
    raw = rng.integers(0, 256, int(FS * 0.25) * 2, dtype=np.uint8)
    from sensors.sources.base import cu8_to_complex64

    t = cpu_time(lambda: cu8_to_complex64(raw), 10)
    rows.append(("cu8 -> complex64", 0.25, 0.25 / t))
    # synthesis of the simulated world at one tuning (GSM downlink hop with the most cells)
    hop = max(plan_hops(BANDS["gsm900-dl"], FS),
              key=lambda h: sum(abs(f - h.center_freq_hz) < FS / 2 for e in world.scenario.emitters
                                for f in e.carrier_freqs_hz()))
    src.tune(hop.center_freq_hz, FS, 30.0)
    t = cpu_time(lambda: src.read(int(FS * 0.02)), 20)
    rows.append(("simulator, busiest GSM hop", 0.02, 0.02 / t))
    # a whole sweep of the GSM900 downlink by a simulated sensor, synthesis included
    spec = ScanSpec("gsm900-dl", FS, 0.02, 29.7)
    hops = plan_hops(BANDS["gsm900-dl"], FS)
    t0 = time.process_time()
    scan_band(src, spec, calibration_db=-5.0, hops=hops)
    t = time.process_time() - t0
    rows.append((f"simulated sweep gsm900-dl ({len(hops)} hops)", 0.02 * len(hops), 0.02 * len(hops) / t))
    print(f"\n{'stage':<42} {'capture_s':>9} {'x real time @2.4MS/s':>22}")
    for name, dwell, x in rows:
        print(f"{name:<42} {dwell:9.3f} {x:22.1f}")


if __name__ == "__main__":
    main()
