"""GOIP gateways among ordinary phones: detection within an hour, and false verdicts per day.

Each district (:func:`sensors.sim.uplink_city.uplink_city`) has 5-8 rooftop sensors about a
kilometre apart and 6-12 crowds of ordinary phones (places and roads, with a daily rhythm).
The records the sensors would publish are simulated at observation level
(:mod:`sensors.sim.uplink_world`: a 2 s capture of the uplink band every minute, path loss
exponent 3 with 5-7 dB shadowing, frequency-selective and per-capture fading, measurement
noise, co-channel links) and judged by :func:`collector.goip.cluster_uplinks`.

* Detection: one gateway of 4, 8 or 16 channels (in turn) switches on at the start of a
  scenario starting at a random local hour; the collector judges the first hour of
  detections. Detected: a cluster whose links are mostly the gateway's is ``goip``.
  ``coverage`` is the share of the gateway's links that 3 sensors or more heard (what can
  be placed at all).
* False verdicts: crowd-only districts over 24 h (starting at a random hour), judged every
  ``--judge-every-h`` hours over everything so far; a false ``goip`` is a crowd (by the
  majority of the cluster's links) judged ``goip`` at any of those times, counted once.

Usage::

    nice .venv/bin/python bench/bench_goip.py --seeds 1-30 --crowd-seeds 1-8 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import logging
import multiprocessing as mp
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.goip import cluster_uplinks  # noqa: E402
from rfhunt.geo import distance_m  # noqa: E402
from sensors.sim.uplink_city import uplink_city  # noqa: E402
from sensors.sim.uplink_world import UplinkObserver  # noqa: E402

SIZES = (4, 8, 16)


def _majority(cluster, truth: list[str]) -> str:
    return collections.Counter(truth[i] for i in cluster.detection_index).most_common(1)[0][0]


def run_detect(args: tuple[int, float]) -> dict:
    """One gateway among crowds, judged after ``within_s`` of activity."""
    seed, within_s = args
    logging.disable(logging.WARNING)
    ch = SIZES[seed % len(SIZES)]
    t0 = time.process_time()
    city = uplink_city(seed, (ch,), duration_s=within_s)
    obs = UplinkObserver(city.scenario, seed=seed).run(0.0, within_s)
    dets = [o.record for o in obs]
    truth = [o.truth_id or "" for o in obs]
    gid = next(iter(city.goips))
    links: dict[tuple, set] = collections.defaultdict(set)
    for o in obs:
        if o.truth_id == gid and o.record.features.get("n_bursts", 0) > 0:
            links[(o.record.t_utc, o.record.channel, o.record.features["timeslot"])].add(o.record.sensor_id)
    coverage = sum(len(v) >= 3 for v in links.values()) / max(len(links), 1)
    clusters = cluster_uplinks(dets)
    goip = [c for c in clusters if c.verdict == "goip"]
    hit = any(_majority(c, truth) == gid for c in goip)
    em = next(e for e in city.scenario.emitters if e.id == gid)
    err = [float(distance_m(c.lat, c.lon, em.lat, em.lon)) for c in goip
           if _majority(c, truth) == gid and c.lat is not None]
    false = sorted({_majority(c, truth) for c in goip} - {gid})
    suspect = any(c.verdict == "goip_suspect" and _majority(c, truth) == gid for c in clusters)
    return {"seed": seed, "channels": ch, "detected": hit, "suspect": suspect, "coverage": round(coverage, 3),
            "error_m": round(min(err), 1) if err else None,
            "false": false, "n_sensors": len(city.scenario.sensors), "cpu_s": round(time.process_time() - t0, 1)}


def run_crowd(args: tuple[int, float, float]) -> dict:
    """A crowd-only district over ``duration_s``, judged every ``every_s``."""
    seed, duration_s, every_s = args
    logging.disable(logging.WARNING)
    t0 = time.process_time()
    city = uplink_city(10_000 + seed, (), duration_s=duration_s)
    obs = UplinkObserver(city.scenario, seed=seed).run(0.0, duration_s)
    t_start = city.scenario.start_utc
    false: set[str] = set()
    suspects: set[str] = set()
    k = 1
    while k * every_s <= duration_s + 1e-6:
        upto = t_start + k * every_s
        sub = [o for o in obs if o.record.t_utc < upto]
        dets = [o.record for o in sub]
        truth = [o.truth_id or "" for o in sub]
        for c in cluster_uplinks(dets):
            if c.verdict == "goip":
                false.add(_majority(c, truth))
            elif c.verdict == "goip_suspect":
                suspects.add(_majority(c, truth))
        k += 1
    return {"seed": seed, "false": sorted(false), "suspects": len(suspects), "hours": duration_s / 3600,
            "n_detections": len(obs), "cpu_s": round(time.process_time() - t0, 1)}


def parse_seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def report(det: list[dict], crowd: list[dict], wall_s: float, workers: int) -> str:
    lines = ["| gateway | scenarios | detected within 1 h | goip_suspect or better | coverage (links heard by "
             ">= 3 sensors, median) | location error median / 90 % |",
             "|---|---|---|---|---|---|"]
    for ch in SIZES:
        rows = [r for r in det if r["channels"] == ch]
        if not rows:
            continue
        n = len(rows)
        d = sum(r["detected"] for r in rows)
        s = sum(r["detected"] or r["suspect"] for r in rows)
        cov = statistics.median(r["coverage"] for r in rows)
        errs = sorted(r["error_m"] for r in rows if r["error_m"] is not None)
        loc = f"{statistics.median(errs):.0f} m / {errs[int(0.9 * (len(errs) - 1))]:.0f} m" if errs else "-"
        lines.append(f"| {ch} channels | {n} | {d}/{n} ({100 * d / n:.0f} %) | {s}/{n} ({100 * s / n:.0f} %) "
                     f"| {cov:.2f} | {loc} |")
    covered = [r for r in det if r["coverage"] >= 0.5]
    if covered:
        d = sum(r["detected"] for r in covered)
        lines.append(f"| all, coverage >= 0.5 | {len(covered)} | {d}/{len(covered)} ({100 * d / len(covered):.0f} %) "
                     "| | | |")
    fa_det = sum(len(r["false"]) for r in det)
    lines.append("")
    lines.append(f"False `goip` among the detection scenarios' crowds (1 h each): {fa_det} in {len(det)} h.")
    if crowd:
        hours = sum(r["hours"] for r in crowd)
        fa = sum(len(r["false"]) for r in crowd)
        sus = sum(r["suspects"] for r in crowd)
        lines.append(f"Crowd-only: {len(crowd)} districts x {crowd[0]['hours']:g} h: {fa} false `goip` "
                     f"({24 * fa / hours:.2f} per 24 h), {sus} crowds reached `goip_suspect` "
                     f"({24 * sus / hours:.2f} per 24 h).")
    cpu = sum(r["cpu_s"] for r in det) + sum(r["cpu_s"] for r in crowd)
    lines.append(f"CPU {cpu:.0f} s ({wall_s:.0f} s wall, {workers} workers) on {platform.machine()} "
                 f"{platform.python_implementation()} {platform.python_version()}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1-30", help="detection scenarios (gateway size by seed mod 3)")
    ap.add_argument("--crowd-seeds", default="1-3", help="crowd-only 24 h districts")
    ap.add_argument("--within-h", type=float, default=1.0)
    ap.add_argument("--crowd-h", type=float, default=24.0)
    ap.add_argument("--judge-every-h", type=float, default=6.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.time()
    det_jobs = [(s, args.within_h * 3600) for s in parse_seeds(args.seeds)] if args.seeds else []
    crowd_jobs = [(s, args.crowd_h * 3600, args.judge_every_h * 3600) for s in parse_seeds(args.crowd_seeds)] \
        if args.crowd_seeds else []
    with mp.Pool(args.workers) as pool:
        crowd_async = pool.map_async(run_crowd, crowd_jobs)
        det = pool.map(run_detect, det_jobs)
        crowd = crowd_async.get()
    for r in det:
        if not r["detected"]:
            print(f"missed: seed {r['seed']} {r['channels']} ch, coverage {r['coverage']}, suspect {r['suspect']}",
                  file=sys.stderr)
    for r in det + crowd:
        if r["false"]:
            print(f"false goip: seed {r['seed']}: {', '.join(r['false'])}", file=sys.stderr)
    print(report(det, crowd, time.time() - t0, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
