"""FM broadcast monitor benchmarks (issue 5).

Run: .venv/bin/python bench/bench_fm.py [--quick] [--seeds N]

1. Throughput: the whole FM path (detection, channelizer, discriminator, multiplex
   measurements, RDS demodulation and decoding of every station) on captures at 2.4 MS/s
   delivered as cu8, as seconds of air processed per second of one core's CPU time
   (``time.process_time``, numpy/BLAS/FFT threads pinned to one, best of five).
2. RDS decode success against CNR (carrier to noise in 200 kHz): white noise added to
   (a) the GNU Radio / gr-rds recording ``fm_rds_single_250k`` (3 s, PI C201, PS "CNR-1   ")
   and (b) the simulator's own station (3 s at 1 MS/s); the PI and the complete PS are
   checked per run. gr-rds (Debian ``gr-rds``, run by the system's python3 with GNU Radio
   3.10) decodes the same noisy files as the reference, through a receiver made of GNU
   Radio's standard blocks (see ``GRRDS_WORKER``).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one core: before numpy is imported
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from dsp.fm.rds import RdsConfig  # noqa: E402
from dsp.fm.station import StationCandidates, analyze_stations, scan_capture  # noqa: E402
from dsp.fm.tx import fm_broadcast_iq  # noqa: E402
from sensors.sources.base import complex_to_cu8  # noqa: E402
from sensors.sources.recording import RecordingSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RFHUNT_SHARED_DIR") or ROOT.parent / "shared") / "data" / "fm"
SYSTEM_PYTHON = "/usr/bin/python3"

#: The gr-rds reference receiver, run by the system's python3 (GNU Radio 3.10, gr-rds):
#: channel filter and quadrature demodulator, MPX at 240 kHz, 57 kHz to complex baseband
#: (24 kHz), 19 kHz (16 samples per bit), biphase matched filter (RRC 2375 Bd, roll-off 1,
#: sent + then -), Gardner symbol sync at the bit rate, Costas BPSK loop, slicer,
#: differential decoder, gr-rds decoder and parser. Prints {"pi", "ps", "pi_count"}.
GRRDS_WORKER = r'''
import json, math, sys
from fractions import Fraction
import numpy as np
import pmt
from gnuradio import gr, blocks, filter, analog, digital
from gnuradio.filter import firdes
import rds

class Sink(gr.basic_block):
    def __init__(self):
        gr.basic_block.__init__(self, "sink", None, None)
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self.handle)
        self.msgs = []
    def handle(self, msg):
        if pmt.is_tuple(msg):
            self.msgs.append((pmt.to_long(pmt.tuple_ref(msg, 0)), pmt.symbol_to_string(pmt.tuple_ref(msg, 1))))

path, fs, offset = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
tb = gr.top_block()
mpx_rate = 240e3
dec = int(round(fs / mpx_rate)) if fs >= 2 * mpx_rate else 1
ch_rate = fs / dec
chain = [blocks.file_source(gr.sizeof_gr_complex, path, False),
         filter.freq_xlating_fir_filter_ccc(dec, firdes.low_pass(1.0, fs, 100e3, 20e3), offset, fs),
         analog.quadrature_demod_cf(ch_rate / (2 * math.pi * 75e3))]
if abs(ch_rate - mpx_rate) > 1:
    r = Fraction(int(mpx_rate), int(round(ch_rate))).limit_denominator(1000)
    chain.append(filter.rational_resampler_fff(r.numerator, r.denominator))
chain.append(filter.freq_xlating_fir_filter_fcc(10, firdes.low_pass(1.0, mpx_rate, 7.5e3, 5e3), 57e3, mpx_rate))
chain.append(filter.rational_resampler_ccc(19, 24))
rrc = np.array(firdes.root_raised_cosine(1.0, 19000, 2375, 1.0, 129))
mf = np.convolve(rrc, np.r_[1.0, np.zeros(7), -1.0])
chain.append(filter.fir_filter_ccf(1, list(mf / np.abs(mf).sum())))
chain.append(digital.symbol_sync_cc(digital.TED_GARDNER, 16, 0.01, 1.0, 1.0, 1.5, 1,
                                    digital.constellation_bpsk().base(), digital.IR_MMSE_8TAP, 128, []))
chain.append(digital.costas_loop_cc(2 * math.pi / 200, 2, False))
chain += [blocks.complex_to_real(), digital.binary_slicer_fb(), digital.diff_decoder_bb(2)]
decoder = rds.decoder(False, False)
chain.append(decoder)
tb.connect(*chain)
parser, sink = rds.parser(False, False, 0), Sink()
tb.msg_connect(decoder, "out", parser, "in")
tb.msg_connect(parser, "out", sink, "in")
tb.run()
pi = [m for t, m in sink.msgs if t == 0]
ps = [m for t, m in sink.msgs if t == 1]
print(json.dumps({"pi": pi[-1] if pi else None, "pi_count": len(pi), "ps": ps[-1] if ps else None}))
'''


def grrds_available() -> str | None:
    """None when gr-rds can run, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import rds, gnuradio.gr"], capture_output=True, text=True)
    if r.returncode:
        return "gr-rds not installed (apt-get install gr-rds): " + r.stderr.strip().splitlines()[-1][:120]
    return None


def grrds_decode(path: Path, fs: float, offset_hz: float, workdir: Path) -> dict:
    script = workdir / "grrds_worker.py"
    if not script.exists():
        script.write_text(GRRDS_WORKER)
    r = subprocess.run([SYSTEM_PYTHON, str(script), str(path), str(fs), str(offset_hz)], capture_output=True,
                       text=True, timeout=300)
    if r.returncode:
        raise RuntimeError(f"gr-rds worker failed: {r.stderr[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def cpu_time(fn, repeat: int = 1, batches: int = 5) -> float:
    """CPU seconds of one call, the best of ``batches``."""
    fn()
    best = float("inf")
    for _ in range(batches):
        t0 = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - t0) / repeat)
    return best


def synthetic_hop(n_stations: int, seconds: float, fs: float = 2.4e6, seed: int = 0) -> np.ndarray:
    """A busy hop: ``n_stations`` on the raster 300 kHz apart (closer ones are one station to
    the detector), levels spread over 27 dB, stereo with RDS, mono with RDS, over-deviated
    mono without; receiver noise; cu8."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    offs = (np.arange(n_stations) - n_stations // 2) * 300e3  # on the 100 kHz raster
    x = (10 ** (-55 / 20) / np.sqrt(2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
    for i, off in enumerate(offs):
        level_db = -8 - 27 * rng.random() - 10 * np.log10(n_stations)
        rds = RdsConfig(0xC000 + i, f"STN {i:<4d}") if i % 3 != 2 else None
        w = fm_broadcast_iq(10.0, n, fs, stereo=i % 3 == 0, rds=rds, deviation_hz=100e3 if i % 3 == 2 else 75e3,
                            audio_seed=i)
        x += (10 ** (level_db / 20) * w * np.exp(2j * np.pi * off * t)).astype(np.complex64)
    return complex_to_cu8(x)


def bench_throughput(quick: bool) -> list[tuple[str, float, int, float, str]]:
    rows = []
    band = SHARED / "fm_band_2400k.sigmf-meta"
    if band.exists():
        src = RecordingSource(band)
        block = src.read(src.remaining_samples)
        src.close()
        for seconds in (4.0, 1.0):
            raw = block.samples[:int(2 * seconds * block.sample_rate_hz)]
            res = scan_capture(raw, block.sample_rate_hz, block.center_freq_hz)
            ok = sum(s.rds.pi is not None for s in res.stations)
            t = cpu_time(lambda: scan_capture(raw, block.sample_rate_hz, block.center_freq_hz),
                         batches=3 if quick else 5)
            rows.append(("fm_band_2400k (GNU Radio / gr-rds), 3 stations", seconds, len(res.stations), seconds / t,
                         f"{ok} PI"))
    for n_st in ((4,) if quick else (4, 7)):
        seconds = 2.0
        raw = synthetic_hop(n_st, seconds)
        res = scan_capture(raw, 2.4e6, 98e6)
        ok = sum(s.rds.pi is not None for s in res.stations)
        t = cpu_time(lambda: scan_capture(raw, 2.4e6, 98e6), batches=3 if quick else 5)
        rows.append((f"simulated hop, {n_st} stations", seconds, len(res.stations), seconds / t,
                     f"{ok} PI of {sum(i % 3 != 2 for i in range(n_st))}"))
    # the power sweep's 20 ms hop, features without RDS
    raw = synthetic_hop(4, 0.02)
    t = cpu_time(lambda: scan_capture(raw, 2.4e6, 98e6, decode=False), repeat=10, batches=3 if quick else 5)
    rows.append(("simulated hop, 4 stations, power-sweep dwell", 0.02, len(scan_capture(raw, 2.4e6, 98e6).stations),
                 0.02 / t, "-"))
    return rows


def _noisy(iq: np.ndarray, fs: float, carrier_power: float, base_noise_200k: float, cnr_db: float,
           rng: np.random.Generator) -> np.ndarray:
    """``iq`` with white noise added so that the CNR in 200 kHz is ``cnr_db``."""
    want = carrier_power / 10 ** (cnr_db / 10)
    add = max(want - base_noise_200k, 0.0) * fs / 200e3
    noise = np.sqrt(add / 2) * (rng.standard_normal(iq.size) + 1j * rng.standard_normal(iq.size))
    return (iq + noise).astype(np.complex64)


def bench_rds_cnr(seeds: int, cnrs: list[float], use_grrds: bool) -> dict:
    cfg = RdsConfig(pi=0xC201, ps="CNR-1   ", pty=1)
    sources = {}
    single = SHARED / "fm_rds_single_250k.sigmf-meta"
    if single.exists():
        src = RecordingSource(single)
        b = src.read(src.remaining_samples)
        src.close()
        # truth.json: carrier amplitude 1, noise variance 0.005 at 1 MS/s before a 115 kHz filter
        sources["gr-rds file (250 kS/s, 3 s)"] = (b.as_complex64(), 250e3, 1.0, 0.005 * 200e3 / 1e6,
                                                  "C201", "CNR-1   ")
    fs = 1e6
    sources["simulator (1 MS/s, 3 s)"] = (fm_broadcast_iq(1000.0, int(3 * fs), fs, rds=cfg, audio_seed=5), fs, 1.0,
                                          0.0, "C201", "CNR-1   ")
    out = {}
    with tempfile.TemporaryDirectory(prefix="rfhunt-bench-fm-") as tmp:
        work = Path(tmp)
        for name, (iq, rate, pc, n0, pi, ps) in sources.items():
            table = []
            for cnr in cnrs:
                ours_pi = ours_ps = gr_pi = gr_ps = 0
                for seed in range(seeds):
                    x = _noisy(iq, rate, pc, n0, cnr, np.random.default_rng(seed * 1000 + int(cnr * 10)))
                    z = np.zeros(1)
                    one = StationCandidates(np.array([97.1e6]), z, z, z, z)
                    st = analyze_stations(x, rate, 97.1e6, one).stations[0]
                    ours_pi += st.rds.pi == int(pi, 16)
                    ours_ps += st.rds.ps == ps
                    if use_grrds:
                        path = work / "noisy.cf32"
                        x.tofile(path)
                        r = grrds_decode(path, rate, 0.0, work)
                        gr_pi += r["pi"] == pi
                        gr_ps += r["ps"] == ps
                table.append((cnr, ours_pi / seeds, ours_ps / seeds,
                              gr_pi / seeds if use_grrds else None, gr_ps / seeds if use_grrds else None))
                print(f"  {name}: CNR {cnr:4.1f} dB  ours PI {ours_pi}/{seeds} PS {ours_ps}/{seeds}"
                      + (f"  gr-rds PI {gr_pi}/{seeds} PS {gr_ps}/{seeds}" if use_grrds else ""), flush=True)
            out[name] = table
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer points and seeds")
    ap.add_argument("--seeds", type=int, default=None, help="noise seeds per CNR point (default 10, quick 3)")
    ap.add_argument("--no-grrds", action="store_true", help="skip the gr-rds reference")
    args = ap.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; threads pinned to one")
    print("\n1. Throughput (cu8 at 2.4 MS/s; detection + every station's features + RDS)")
    print("| capture | s | stations | x real time | RDS |\n|---|---|---|---|---|")
    for name, sec, n_st, x, rds in bench_throughput(args.quick):
        print(f"| {name} | {sec:g} | {n_st} | {x:.1f} | {rds} |", flush=True)
    why = None if not args.no_grrds else "skipped (--no-grrds)"
    why = why or grrds_available()
    if why:
        print(f"\ngr-rds reference: {why}")
    cnrs = [6, 8, 10, 12, 14] if args.quick else [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 20]
    print(f"\n2. RDS decode success against CNR (in 200 kHz), {seeds} noise seeds per point")
    res = bench_rds_cnr(seeds, cnrs, why is None)
    for name, table in res.items():
        print(f"\n{name}\n| CNR dB | ours PI | ours PS | gr-rds PI | gr-rds PS |\n|---|---|---|---|---|")
        for cnr, opi, ops, gpi, gps in table:
            g = ("-", "-") if gpi is None else (f"{gpi:.2f}", f"{gps:.2f}")
            print(f"| {cnr:g} | {opi:.2f} | {ops:.2f} | {g[0]} | {g[1]} |")
        for label, col in (("ours", 1), ("gr-rds", 3)):
            vals = sorted((r[0], r[col]) for r in table if r[col] is not None)
            if vals:
                # the lowest CNR from which on every point decodes the PI in >= 90 % of runs
                ok = [c for i, (c, _) in enumerate(vals) if all(v >= 0.9 for _, v in vals[i:])]
                print(f"PI decoded in >= 90 % of runs from {label}: {f'{ok[0]:g} dB' if ok else 'never'}")
    if shutil.which("git"):
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        print(f"\n(rfhunt {rev.stdout.strip()}, {time.strftime('%Y-%m-%d')})")
    sys.exit(0)


if __name__ == "__main__":
    main()
