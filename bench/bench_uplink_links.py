"""Per-link GSM uplink detection on a sensor node (issue 6): how many times real time a node
turns 2.4 MS/s uplink captures into link detections (:func:`sensors.scan.measure_uplink_links`:
burst detection over every channel of the capture, then a summary per ARFCN x timeslot),
against the power sweep the node used before (one reading per carrier, the same capture).

Run: .venv/bin/python bench/bench_uplink_links.py

Each capture is a GSM900 uplink hop of 2.4 MS/s (12 channels) with ``n_links`` handsets in
calls (a normal burst every TDMA frame but the idle one), 15-40 dB over the noise, quantized
to 8 bits as an RTL-SDR delivers it. CPU time is ``time.process_time`` of this process (numpy
pinned to one thread), best of five; "x real time" is seconds of air per second of CPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from dsp.bands import BANDS, uplink_channels_in_span  # noqa: E402
from dsp.gsm.tx import gsm_uplink_iq  # noqa: E402
from sensors.scan import measure_block, measure_uplink_links  # noqa: E402
from sensors.sources.base import IQBlock, complex_to_cu8  # noqa: E402

FS = 2.4e6
CENTER_HZ = 897.0e6


def capture(dwell_s: float, n_links: int, seed: int) -> IQBlock:
    rng = np.random.default_rng(seed)
    n = int(dwell_s * FS)
    chans = uplink_channels_in_span(CENTER_HZ, FS)
    t = np.arange(n) / FS
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64) * np.float32(0.01 / np.sqrt(2))
    for k in range(n_links):
        f = float(chans[rng.integers(len(chans))])
        amp = np.float32(0.01 * 10 ** (rng.uniform(15, 40) / 20))
        w = gsm_uplink_iq(0.0, n, FS, timeslot=k % 8, burst_kind=lambda fn: np.where(fn % 26 == 25, 0, 1).astype(np.int8),
                          tsc=k % 8, seed=seed * 100 + k)
        x += amp * w * np.exp(2j * np.pi * (f - CENTER_HZ) * t).astype(np.complex64)
    x /= np.float32(max(1.0, 1.2 * np.max(np.abs(x))))
    return IQBlock(complex_to_cu8(x), CENTER_HZ, FS, 40.0, 1.8e9, 0, "cu8")


def best_cpu_s(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    band = BANDS["gsm900-ul"]
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy "
          f"{np.__version__}")
    print(f"{'dwell s':>8} {'links':>6} {'found':>6} {'links x RT':>11} {'power sweep x RT':>17}")
    for dwell_s in (0.02, 0.1, 0.5):
        for n_links in (2, 8):
            blk = capture(dwell_s, n_links, seed=int(dwell_s * 1000) + n_links)
            freqs = uplink_channels_in_span(CENTER_HZ, FS)
            found = measure_uplink_links(blk, band, freqs, calibration_db=-5.0)
            t_links = best_cpu_s(lambda: measure_uplink_links(blk, band, freqs, calibration_db=-5.0))
            t_power = best_cpu_s(lambda: measure_block(blk, band, freqs, calibration_db=-5.0))
            n_normal = sum(1 for m in found if m.features.get("n_bursts", 0) > 0)
            print(f"{dwell_s:8.2f} {n_links:6d} {n_normal:6d} {dwell_s / t_links:11.1f} {dwell_s / t_power:17.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
