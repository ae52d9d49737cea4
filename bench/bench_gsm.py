"""GSM downlink receiver benchmarks (issue 3): throughput, CPU against gr-gsm, sensitivity
against SNR (with gr-gsm on the same files) and air time to survey the GSM900 downlink.

Run: .venv/bin/python bench/bench_gsm.py [--quick]

CPU figures are ``time.process_time`` of this process, with numpy/BLAS/FFT threads pinned to
one (set below before numpy is imported), i.e. one core. gr-gsm's CPU is
``resource.getrusage(RUSAGE_CHILDREN)`` user+system deltas around its subprocess (every
thread of its GNU Radio flow graph, Python start-up included; its start-up alone is
measured on an almost empty file and shown separately). Nothing here asserts a time: the
script prints figures; the goals of the issue are printed next to them.

gr-gsm is run through ``/work/shared/tools/grgsm-decode`` (override with $GRGSM_DECODE), one
process at a time (it binds UDP 4729). Without it, the gr-gsm columns are skipped.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import platform
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import dsp.gsm.decode as gsm_decode
from dsp.bands import BANDS, arfcn_to_downlink_hz, downlink_channels_in_span
from dsp.gsm import constants as c
from dsp.gsm.bcch import EMPTY_PAGING, TC_SCHEDULE, bcch_payload, block_of
from dsp.gsm.decode import decode_bcch
from dsp.gsm.rx.channelizer import channelize
from dsp.gsm.rx.fcch import detect_fcch
from dsp.gsm.si import encode_si1, encode_si2, encode_si3, encode_si4
from dsp.gsm.tx import gsm_downlink_iq
from dsp.plan import plan_hops
from sensors.config import ScanSpec
from sensors.scan import scan_band
from sensors.sim.scenario import load_scenario, parse_scenario
from sensors.sim.source import SETTLE_S, SimulatedSource
from sensors.sim.world import THERMAL_DBM_HZ, World

#: ``../shared`` beside the repository, or $RFHUNT_SHARED_DIR (as in tests/shared_data.py).
SHARED = Path(os.environ.get("RFHUNT_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
GRGSM = os.environ.get("GRGSM_DECODE", str(SHARED / "tools" / "grgsm-decode"))
VF725 = SHARED / "data" / "gsm" / "vf725" / "vf725_clean_1083k"
GSM_GAIN_DB = 42.1  # the scan plan's GSM downlink gain (README)
FS_WIDE = 2.4e6
_FRAME_LINE = re.compile(r"^\s*(\d+)\s+\d+:\s+((?:[0-9a-fA-F]{2}\s*){23})$")


# --- helpers --------------------------------------------------------------------------------

def have_grgsm() -> bool:
    return Path(GRGSM).is_file() and Path("/usr/bin/grgsm_decode").exists()


def run_grgsm(path: Path, fs: float, fc: float) -> tuple[float, set[tuple[int, bytes]]]:
    """gr-gsm's offline BCCH/CCCH decoder on a .cfile: (CPU seconds, {(FN, 23 bytes)})."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([GRGSM, "-c", str(path), "-s", repr(float(fs)), "-f", repr(float(fc)),
                          "-m", "BCCH", "-t", "0", "-v"], check=False, capture_output=True, text=True, timeout=600)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"grgsm-decode failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    frames = set()
    for line in out.stdout.splitlines():
        m = _FRAME_LINE.match(line)
        if m:
            frames.add((int(m.group(1)), bytes.fromhex(m.group(2))))
    return cpu, frames


def grgsm_startup_cpu(tmp: Path, repeat: int) -> float:
    """CPU of gr-gsm on 1 ms of silence: its fixed start-up cost (median)."""
    p = tmp / "empty.cfile"
    np.zeros(1000, np.complex64).tofile(p)
    return float(np.median([run_grgsm(p, 1e6, 950e6)[0] for _ in range(repeat)]))


def cpu_of(fn, repeat: int):
    """(best CPU seconds over ``repeat`` calls, last result)."""
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        res = fn()
        best = min(best, time.process_time() - t0)
    return best, res


def noise_dbfs_200k(world: World, sensor_id: str, fs: float, gain_db: float) -> float:
    """Receiver noise of a simulated sensor in 200 kHz, dBFS (same model as World.capture)."""
    rcv = world.scenario.sensor(sensor_id).receiver
    to_dbfs = gain_db - rcv.calibration_db
    thermal = THERMAL_DBM_HZ + rcv.noise_figure_db + 10 * math.log10(fs) + to_dbfs
    total = 10 ** (thermal / 10) + 10 ** (rcv.adc_noise_dbfs / 10)
    return 10 * math.log10(total * 200e3 / fs)


def carrier_snr_db(world: World, sensor_id: str, t_s: float, fs: float, gain_db: float) -> dict[str, float]:
    """SNR in 200 kHz of every GSM downlink carrier at a sensor, by emitter id."""
    rcv = world.scenario.sensor(sensor_id).receiver
    n200 = noise_dbfs_200k(world, sensor_id, fs, gain_db)
    kinds = {e.id: e.type for e in world.scenario.emitters}
    return {cr.emitter_id: cr.power_dbm + gain_db - rcv.calibration_db - n200
            for cr in world.carriers_at(sensor_id, t_s) if kinds[cr.emitter_id] in ("gsm_cell", "fake_bts")}


def identity(cell) -> tuple:
    f = cell.fields
    return (f.get("mcc"), f.get("mnc"), f.get("lac"), f.get("cid"))


def sdr_city(n_cells: int = 9):
    """A sensor with ``n_cells`` BTS of two operators on ARFCNs 20-30 (one 2.4 MHz span) at
    0.5-2.2 km, 44-45 dBm EIRP (SNR 18-38 dB in 200 kHz), neighbouring carriers up to ~18 dB
    apart (within GSM's adjacent-channel requirement, C/Ia1 = -18 dB, 3GPP TS 45.005)."""
    # (arfcn, distance km, azimuth deg, EIRP dBm)
    layout = [(20, 0.5, 30, 45), (21, 0.9, 100, 45), (22, 0.8, 200, 45), (24, 1.3, 250, 44),
              (25, 0.7, 310, 45), (26, 1.2, 60, 44), (28, 1.1, 150, 45), (29, 1.6, 280, 45),
              (30, 0.9, 340, 44), (23, 2.2, 170, 45)][:n_cells]
    emitters = []
    for i, (arfcn, dkm, az, p) in enumerate(layout):
        lat = 30.0 + dkm / 111.2 * math.cos(math.radians(az))
        lon = 120.0 + dkm / 111.2 / math.cos(math.radians(30.0)) * math.sin(math.radians(az))
        emitters.append({"id": f"bts-{arfcn}", "type": "gsm_cell", "lat": lat, "lon": lon, "power_dbm": p,
                         "arfcn": arfcn, "mcc": 460, "mnc": i % 2, "lac": 9500 + i // 3, "cid": 20000 + 7 * arfcn,
                         "bsic": (11 * i + 5) % 64, "ppm": float((i % 5 - 2) * 0.02)})
    return parse_scenario({"scenario": {"name": "bench 2.4 MHz span", "seed": 7},
                           "area": {"center_lat": 30.0, "center_lon": 120.0},
                           "propagation": {"shadowing_db": 3.0},
                           "sensors": [{"id": "s", "lat": 30.0, "lon": 120.0, "receiver": {"lo_ppm": 3.0}}],
                           "emitters": emitters})


# --- 1. throughput --------------------------------------------------------------------------

def bench_throughput(quick: bool) -> None:
    print("\n== 1. decode throughput, 2.4 MS/s capture with 9 cells in one span (one core) ==")
    dur = 1.0 if quick else 2.0
    scenario = sdr_city(9)
    world = World(scenario)
    snr = carrier_snr_db(world, "s", 0.0, FS_WIDE, GSM_GAIN_DB)
    fc = float(arfcn_to_downlink_hz(25)) + 100e3  # DC between two channels
    src = SimulatedSource(world, "s", seed=1)
    src.tune(fc, FS_WIDE, GSM_GAIN_DB)
    iq = src.read(int(FS_WIDE * dur)).as_complex64()
    chans = downlink_channels_in_span(fc, FS_WIDE)
    repeat = 2 if quick else 5
    cpu_bcch, (frames_bcch, cells_bcch) = cpu_of(lambda: decode_bcch(iq, FS_WIDE, fc, chans, ccch=False), repeat)
    cpu, (frames, cells) = cpu_of(lambda: decode_bcch(iq, FS_WIDE, fc, chans), repeat)
    for label, cs in (("BCCH only", cells_bcch), ("BCCH + CCCH", cells)):
        same = sorted((cl.arfcn, cl.bsic, identity(cl)) for cl in cs)
        if label == "BCCH only":
            first = same
        elif same != first:
            print(f"NOTE: the two modes disagree on the cells: {first} / {same}")
    got = {cl.arfcn: cl for cl in cells}
    print(f"capture {dur:.1f} s at 2.4 MS/s (simulated RTL-SDR, cu8), {len(chans)} channels in the span, "
          f"{len(scenario.emitters)} cells")
    print(f"{'cell':<9} {'arfcn':>5} {'SNR200k dB':>10} {'frames':>6} {'bsic':>4}  identity (mcc-mnc lac cid)  ok")
    n_ok = 0
    for em in sorted(scenario.emitters, key=lambda e: e.arfcn):
        cl = got.get(em.arfcn)
        truth = (f"{em.mcc:03d}", f"{em.mnc:02d}", em.lac, em.cid)
        ok = cl is not None and identity(cl) == truth and cl.bsic == em.bsic
        n_ok += ok
        ident = "-" if cl is None or cl.fields.get("mcc") is None else \
            f"{cl.fields['mcc']}-{cl.fields['mnc']} {cl.fields['lac']} {cl.fields.get('cid')}"
        print(f"{em.id:<9} {em.arfcn:>5} {snr[em.id]:>10.1f} {0 if cl is None else cl.n_frames:>6} "
              f"{'-' if cl is None or cl.bsic is None else cl.bsic:>4}  {ident:<27} {'yes' if ok else 'NO'}")
    print(f"frames decoded: {len(frames)}; cells identified: {n_ok}/{len(scenario.emitters)} "
          f"(FCCH found on {len(cells)} channels)")
    print(f"decode_bcch, BCCH + CCCH (every frame, paging counts): {len(frames)} frames, CPU {cpu:.3f} s for "
          f"{dur:.1f} s of air -> {dur / cpu:.1f}x real time (best of {repeat})")
    print(f"decode_bcch, BCCH only (ccch=False: every cell's identity and parameters): {len(frames_bcch)} frames, "
          f"CPU {cpu_bcch:.3f} s -> {dur / cpu_bcch:.1f}x real time (goal >= 20x; best of {repeat})")


# --- 2. side by side with gr-gsm ------------------------------------------------------------

def _compare(name: str, path: Path, iq: np.ndarray, fs: float, fc: float, startup: float | None,
             repeat: int, rows: list) -> None:
    cpu, (frames, _) = cpu_of(lambda: decode_bcch(iq, fs, fc, np.array([fc])), repeat)
    ours = {(f.fn, f.payload) for f in frames}
    spans = downlink_channels_in_span(fc, fs)
    cpu_all, (frames_all, _) = cpu_of(lambda: decode_bcch(iq, fs, fc, spans), 1)
    g_cpu, g_frames = float("nan"), set()
    if startup is not None:
        g_runs = [run_grgsm(path, fs, fc) for _ in range(repeat)]
        g_cpu, g_frames = min(r[0] for r in g_runs), g_runs[0][1]
    rows.append((name, iq.size / fs, cpu, len(ours), cpu_all, len(spans), len({(f.fn, f.payload) for f in frames_all}),
                 g_cpu, len(g_frames), startup, len(ours & g_frames)))


def bench_vs_grgsm(quick: bool, tmp: Path, gr_ok: bool) -> float | None:
    print("\n== 2. CPU per decoded frame, rfhunt vs gr-gsm on the same .cfile ==")
    startup = grgsm_startup_cpu(tmp, 3) if gr_ok else None
    repeat = 1 if quick else 2
    rows: list = []
    # a simulated single-cell capture, 1 MS/s centred on the carrier (RTL-SDR-like: cu8, LO error, DC)
    dur = 4.0 if quick else 10.0
    scenario = parse_scenario({
        "scenario": {"seed": 3}, "area": {"center_lat": 30.0, "center_lon": 120.0},
        "sensors": [{"id": "s", "lat": 30.0, "lon": 120.0, "receiver": {"lo_ppm": 1.7}}],
        "emitters": [{"id": "bts", "type": "gsm_cell", "lat": 30.006, "lon": 120.002, "power_dbm": 44,
                      "arfcn": 60, "mcc": 460, "mnc": 0, "lac": 9510, "cid": 20311, "bsic": 21}]})
    world = World(scenario)
    fc = float(arfcn_to_downlink_hz(60))
    src = SimulatedSource(world, "s", seed=5)
    src.tune(fc, 1e6, GSM_GAIN_DB)
    iq = src.read(int(1e6 * dur)).as_complex64()
    p = tmp / "sim_arfcn60_1M.cfile"
    iq.tofile(p)
    snr = carrier_snr_db(world, "s", 0.0, 1e6, GSM_GAIN_DB)["bts"]
    _compare(f"sim 1 cell {dur:.0f} s 1 MS/s ({snr:.0f} dB)", p, iq, 1e6, fc, startup, repeat, rows)
    # the real Vodafone bursts, cu8 -> complex64 (u - 127.5) / 127.5
    meta = VF725.with_suffix(".sigmf-data")
    if meta.exists():
        raw = np.fromfile(meta, dtype=np.uint8)
        x = ((raw.astype(np.float32) - 127.5) / 127.5).view(np.complex64)
        p = tmp / "vf725_clean_1083k.cfile"
        x.tofile(p)
        _compare("vf725_clean_1083k (real bursts)", p, x, 1083333.3333333333, 1847.8e6, startup, repeat, rows)
    else:
        print(f"(skipped {meta}: not found)")
    print(f"{'file':<34} {'air s':>6} | {'ours CPU s':>10} {'frames':>6} {'ms/frame':>8} | "
          f"{'gr-gsm CPU s':>12} {'frames':>6} {'ms/frame':>8} {'net ms/fr':>9} | {'ours/gr':>7} {'net':>6} | common")
    ratio = None
    for (name, air, cpu, nf, cpu_all, nch, nf_all, g_cpu, g_nf, st, common) in rows:
        ms = 1e3 * cpu / max(nf, 1)
        if st is None:
            g = "not run"
            print(f"{name:<34} {air:>6.1f} | {cpu:>10.3f} {nf:>6} {ms:>8.2f} | {g:>12}")
        else:
            gms = 1e3 * g_cpu / max(g_nf, 1)
            gnet = 1e3 * (g_cpu - st) / max(g_nf, 1)
            r, rn = ms / gms, ms / gnet
            ratio = r if ratio is None else max(ratio, r)
            print(f"{name:<34} {air:>6.1f} | {cpu:>10.3f} {nf:>6} {ms:>8.2f} | {g_cpu:>12.3f} {g_nf:>6} "
                  f"{gms:>8.2f} {gnet:>9.2f} | {r:>7.2f} {rn:>6.2f} | {common}")
        print(f"{'':<34} {'':>6}   ours on all {nch} channels of the span: {cpu_all:.3f} s CPU, {nf_all} frames")
    if startup is not None:
        print(f"gr-gsm start-up alone (1 ms file, median of 3): {startup:.3f} s CPU; 'net' subtracts it. "
              "Goal: ours/gr-gsm <= 1.")
    return ratio


# --- 3. sensitivity against SNR -------------------------------------------------------------

def _truth_blocks(t0_s: float, dur_s: float, fs: float, fn_epoch: int, si: dict[str, bytes]):
    """Frames of the capture: FCCH starts (samples), SCH FNs, {FN of block start: payload}."""
    sym = c.SYMBOL_RATE_HZ
    i0 = math.ceil(t0_s * sym / c.FRAME_SYMBOLS)
    i1 = math.floor(((t0_s + dur_s) * sym - c.BURST_BITS - 8) / c.FRAME_SYMBOLS)
    i = np.arange(i0, i1 + 1)
    fn = (fn_epoch + i) % c.HYPERFRAME
    t51 = fn % 51
    start_smp = (i * c.FRAME_SYMBOLS / sym - t0_s) * fs
    fcch = start_smp[np.isin(t51, c.FCCH_FRAMES)]
    sch_fn = set(fn[np.isin(t51, c.SCH_FRAMES)].tolist())
    block, k = block_of(fn)
    tc_frames = [next(si[n] for n in names if n in si) for names in TC_SCHEDULE]
    blocks = {}
    present = set(fn[block >= 0].tolist())
    for f, b, kk in zip(fn[block >= 0], block[block >= 0], k[block >= 0]):
        if kk == 0 and all(((f + j) % c.HYPERFRAME) in present for j in range(4)):
            blocks[int(f)] = tc_frames[(f // 51) % 8] if b == 0 else EMPTY_PAGING
    return fcch, sch_fn, blocks


class _Capture:
    """Keeps what decode_bcch's front end returned (FCCH and SCH per burst)."""

    def __init__(self):
        self.results = None
        self._orig = gsm_decode.receive_bcch

    def __enter__(self):
        def wrapped(*a, **kw):
            self.results = self._orig(*a, **kw)
            return self.results
        gsm_decode.receive_bcch = wrapped
        return self

    def __exit__(self, *exc):
        gsm_decode.receive_bcch = self._orig


def bench_snr(quick: bool, tmp: Path, gr_ok: bool) -> None:
    snrs = list(range(0, 21, 4 if quick else 2))
    seeds = list(range(2 if quick else 5))
    dur, fs, fc = (1.5 if quick else 2.0), 1e6, 950e6
    print(f"\n== 3. sensitivity against SNR in 200 kHz: one cell, {dur:.1f} s at 1 MS/s, complex64, "
          f"{len(seeds)} seeds per point ==")
    sym = c.SYMBOL_RATE_HZ
    tol = 40 * fs / sym  # an FCCH found within 40 symbols of a true burst start counts
    agg = {s: np.zeros(8) for s in snrs}  # fcch_hit, fcch_n, sch_ok, sch_n, ok_blocks, n_blocks, gr_ok, cells
    fracs = []
    for seed in seeds:
        rng = np.random.default_rng([2026, seed])
        bsic, fn_epoch = int(rng.integers(0, 64)), int(rng.integers(0, c.HYPERFRAME))
        t0 = float(rng.uniform(0.0, 1.0))
        f_off = float(rng.uniform(-3e3, 3e3))  # carrier offset (a few ppm of LO error)
        mcc, mnc, lac, cid = "460", f"{seed % 3:02d}", int(rng.integers(1, 65534)), int(rng.integers(0, 65536))
        si = {"SI1": encode_si1([75]), "SI2": encode_si2([70, 80, 93]),
              "SI3": encode_si3(mcc=mcc, mnc=mnc, lac=lac, cid=cid), "SI4": encode_si4(mcc=mcc, mnc=mnc, lac=lac)}
        n = int(fs * dur)
        x = gsm_downlink_iq(t0, n, fs, bsic=bsic, fn_epoch=fn_epoch, payload=bcch_payload(si))
        x = (x * np.exp(2j * np.pi * f_off * np.arange(n) / fs)).astype(np.complex64)
        spec = np.abs(np.fft.fft(x)) ** 2
        f = np.fft.fftfreq(n, 1 / fs)
        frac = float(spec[np.abs(f - f_off) <= 100e3].sum() / spec.sum())  # carrier power inside 200 kHz
        fracs.append(frac)
        s200 = float(np.mean(np.abs(x) ** 2)) * frac
        fcch_true, sch_true, blocks = _truth_blocks(t0, dur, fs, fn_epoch, si)
        truth = set(blocks.items())
        for snr in snrs:
            # noise of density N0 with N0 * 200 kHz = S200 / SNR, over the whole 1 MHz
            sigma2 = s200 / 10 ** (snr / 10) * fs / 200e3
            nrng = np.random.default_rng([2026, seed, snr])
            noise = (nrng.standard_normal(n, dtype=np.float32) + 1j * nrng.standard_normal(n, dtype=np.float32))
            y = (x + noise.astype(np.complex64) * np.float32(math.sqrt(sigma2 / 2))).astype(np.complex64)
            with _Capture() as cap:
                frames, cells = decode_bcch(y, fs, fc, np.array([fc]))
            a = agg[snr]
            res = [r for r in (cap.results or []) if abs(r.freq_hz - fc) < 1]
            # The FCCH detector itself, on the channel stream of the whole capture (the
            # receiver measures only some FCCH bursts once it knows a cell's TDMA grid).
            chz = channelize(y, fs, fc, [fc], sps=2)
            det = detect_fcch(chz.iq, chz.sample_rate_hz, channel_freqs_hz=[fc])
            found = det.bursts.start * (fs / chz.sample_rate_hz)
            a[0] += sum(bool(found.size) and np.min(np.abs(found - t)) < tol for t in fcch_true)
            a[1] += len(fcch_true)
            if res and res[0].bsic == bsic:
                a[2] += len(set(res[0].sch_fn[res[0].sch_ok].tolist()) & sch_true)
            a[3] += len(sch_true)
            a[4] += len({(fr.fn, fr.payload) for fr in frames} & truth)
            a[5] += len(truth)
            a[7] += any(cl.bsic == bsic and identity(cl) == (mcc, mnc, lac, cid) for cl in cells)
            if gr_ok:
                p = tmp / f"snr{snr}_seed{seed}.cfile"
                y.tofile(p)
                _, g = run_grgsm(p, fs, fc)
                a[6] += len(g & truth)
                p.unlink()
    print(f"carrier power inside 200 kHz: {100 * np.mean(fracs):.1f} % of the GMSK carrier's "
          "(SNR = that power / (noise density x 200 kHz)); carrier offset up to +-3 kHz, random TDMA phase")
    print(f"{'SNR dB':>6} | {'FCCH':>6} {'SCH':>6} {'BCCH/CCCH':>9} {'cell id':>7} | {'gr-gsm BCCH/CCCH':>16} | "
          f"{'ours>=gr':>8}")
    for snr in snrs:
        a = agg[snr]
        g = f"{a[6] / a[5]:16.3f}" if gr_ok else f"{'not run':>16}"
        better = ("yes" if a[4] >= a[6] else "NO") if gr_ok else "-"
        print(f"{snr:>6} | {a[0] / a[1]:6.3f} {a[2] / a[3]:6.3f} {a[4] / a[5]:9.3f} {a[7] / len(seeds):7.2f} | {g} | "
              f"{better:>8}")
    print("FCCH: true FCCH bursts the FCCH detector finds in the whole capture; SCH: SCH bursts decoded (CRC ok, right FN and BSIC); BCCH/CCCH: blocks "
          "decoded with the right FN and bytes, per block in the files;\ncell id: share of files where the cell's "
          "BSIC+MCC/MNC/LAC/CID were read. gr-gsm prints no FCCH/SCH figures. Goal: ours >= gr-gsm at every SNR.")


# --- 4. survey of the GSM900 downlink -------------------------------------------------------

def _check_survey(world: World, sensor: str, audible: dict[str, float], found: dict[int, tuple]) -> tuple[int, list]:
    """How many audible cells were identified right (``found``: arfcn -> (identity, bsic, t0, t1))."""
    ok, missing = 0, []
    for em in world.scenario.emitters:
        if em.id not in audible:
            continue
        got = found.get(em.arfcn)
        lacs = set() if got is None else {em.lac_at(got[2]), em.lac_at(got[3])}
        if got is not None and got[1] == em.bsic and got[0][:2] == (f"{em.mcc:03d}", f"{em.mnc:02d}") \
                and got[0][2] in lacs and got[0][3] == em.cid:
            ok += 1
        else:
            missing.append(em.id)
    return ok, missing


def _dwell(src: SimulatedSource, fc: float, dwell: float, chans: np.ndarray, found: dict) -> float:
    """Tune, capture ``dwell`` s, decode ``chans``; returns decode CPU seconds."""
    src.tune(fc, FS_WIDE, GSM_GAIN_DB)
    t0 = src.t_s
    iq = src.read(int(FS_WIDE * dwell)).as_complex64()
    t = time.process_time()
    _, cells = decode_bcch(iq, FS_WIDE, fc, chans)
    cpu = time.process_time() - t
    for cl in cells:
        if cl.fields.get("cid") is not None and cl.arfcn not in found:
            found[cl.arfcn] = (identity(cl), cl.bsic, t0, src.t_s)
    return cpu


def bench_survey(quick: bool) -> None:
    sensor = "roof-se"
    world = World(load_scenario())
    hops = plan_hops(BANDS["gsm900-dl"], FS_WIDE)
    snr = carrier_snr_db(world, sensor, 0.0, FS_WIDE, GSM_GAIN_DB)
    audible = {k: v for k, v in snr.items() if v >= 10.0}
    print(f"\n== 4. air time to identify every cell of the GSM900 downlink (built-in city, sensor {sensor}, "
          f"{GSM_GAIN_DB} dB gain) ==")
    print(f"GSM downlink emitters: {len(snr)}; audible (SNR >= 10 dB in 200 kHz): {len(audible)}: "
          + ", ".join(f"{e.id}@{e.arfcn}({snr[e.id]:.0f} dB)" for e in world.scenario.emitters if e.id in audible))
    # (a) the plain sweep: every hop of the plan, dwell D each
    print(f"(a) plain sweep: {len(hops)} hops of 2.4 MS/s, {SETTLE_S * 1e3:.0f} ms retune settling each (simulated tuner)")
    print(f"{'dwell s':>7} {'air s':>7} {'decode CPU s':>12} {'identified':>10}  missing")
    plain_best = None
    for dwell in ((1.0, 2.0) if quick else (0.5, 1.0, 1.5, 2.0, 2.5)):
        src = SimulatedSource(world, sensor, seed=11)
        found: dict = {}
        cpu = sum(_dwell(src, h.center_freq_hz, dwell, h.channel_freqs_hz, found) for h in hops)
        ok, missing = _check_survey(world, sensor, audible, found)
        print(f"{dwell:>7.1f} {src.t_s:>7.2f} {cpu:>12.2f} {ok:>5}/{len(audible):<4}  {', '.join(missing) or '-'}")
        if ok == len(audible) and plain_best is None:
            plain_best = (dwell, src.t_s, cpu)
            if quick:
                break
    # (b) power sweep first (20 ms per hop, the sensor's own scan), then dwell only where carriers are
    print("(b) power sweep (sensors.scan.scan_band, 20 ms per hop), then one 2.4 MS/s dwell per cluster of carriers "
          "(windows of +-0.9 MHz, DC between channels)")
    print(f"{'dwell s':>7} {'sweep air s':>11} {'dwells':>6} {'air s':>7} {'CPU s':>6} {'identified':>10}  missing")
    smart_best = None
    for dwell in ((1.0, 1.5) if quick else (0.5, 1.0, 1.5, 2.0, 2.5)):
        src = SimulatedSource(world, sensor, seed=11)
        t = time.process_time()
        carriers, _ = scan_band(src, ScanSpec("gsm900-dl", FS_WIDE, 0.02, GSM_GAIN_DB), calibration_db=-5.0, hops=hops)
        sweep_cpu = time.process_time() - t
        sweep_air = src.t_s
        freqs = sorted({round(m.freq_hz) for m in carriers if m.snr_db >= 8.0})
        windows = []
        for f in freqs:
            if not windows or f > windows[-1] + 0.9e6 + 1:
                windows.append(f + 0.9e6)  # centre: covers [f, f + 1.8 MHz], DC half-way between channels
        found = {}
        cpu = sweep_cpu
        for w in windows:
            chans = np.array([f for f in freqs if abs(f - w) <= 0.9e6 + 1], dtype=float)
            cpu += _dwell(src, w, dwell, chans, found)
        ok, missing = _check_survey(world, sensor, audible, found)
        print(f"{dwell:>7.1f} {sweep_air:>11.2f} {len(windows):>6} {src.t_s:>7.2f} {cpu:>6.2f} "
              f"{ok:>5}/{len(audible):<4}  {', '.join(missing) or '-'}")
        if ok == len(audible) and smart_best is None:
            smart_best = (dwell, src.t_s, cpu)
            if quick:
                break
    for name, best in (("plain sweep", plain_best), ("power sweep + dwells", smart_best)):
        if best is None:
            print(f"{name}: no dwell tried identified every audible cell")
        else:
            print(f"{name}: smallest dwell {best[0]:.1f} s -> {best[1]:.2f} s of air (settling included), "
                  f"{best[2]:.2f} s CPU (goal <= 15 s of air)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter captures, fewer seeds and dwells")
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}; numpy threads pinned to 1")
    gr_ok = have_grgsm()
    print(f"gr-gsm: {GRGSM if gr_ok else 'not found, gr-gsm columns skipped'}")
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_gsm_") as d:
        tmp = Path(d)
        bench_throughput(args.quick)
        bench_vs_grgsm(args.quick, tmp, gr_ok)
        bench_snr(args.quick, tmp, gr_ok)
        bench_survey(args.quick)
    print(f"\n(wall time of the whole benchmark: {time.perf_counter() - wall:.0f} s)")


if __name__ == "__main__":
    main()
