"""Rogue-cell judgement over hundreds of randomized simulated cities (issue 4).

Each city (:func:`sensors.sim.random_city.random_city`) has two operators' networks, 4-7
rooftop sensors (half the cities also a sensor car), an 8-hour history of the legitimate
network only (the baseline is learned from it) and a 10-minute test in which two fake base
stations switch on (kinds taken in turn: fixed, car-borne, LAC-cycling, clone of a real
cell; the first within 60 s, the other within 400 s) and about 3 % of the legitimate cells
are switched on for the first time. The records an RTL-SDR sensor network would publish
are simulated at observation level (:mod:`sensors.sim.observe`: the world's propagation,
decode success against SNR, measurement noise, the sensors' LO errors) and fed to the real
collector code (:func:`sensors.sim.rogue_eval.evaluate_city`): store, association,
evidence, localization, judgement, alerts. Sensors sweep every 20 s and decode every cycle;
the collector judges every 10 s of air and locates every 2 minutes.

Figures (on the *test* seeds; the weights and thresholds were calibrated on other seeds):

* detection rate per kind of fake: flagged ``rogue`` at all, and within 60 s of air time
  after its first detection by any sensor;
* false-positive rate over legitimate cells: ever ``suspicious`` or ``rogue`` during the test;
* time to rogue (median, 95th percentile, max);
* an ROC: detection within 60 s against false positives as the threshold moves (the scores
  of the run, re-thresholded).

Usage::

    .venv/bin/python bench/bench_rogue.py collect --seeds 1000-1119 --out calib.json
    .venv/bin/python bench/bench_rogue.py calibrate calib.json
    .venv/bin/python bench/bench_rogue.py evaluate --seeds 1-240 --out test.json
    .venv/bin/python bench/bench_rogue.py report test.json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.rogue import DEFAULT_MODEL, RogueModel  # noqa: E402
from sensors.sim.random_city import FAKE_KINDS, random_city  # noqa: E402
from sensors.sim.rogue_eval import TruthResult, evaluate_city, rescore  # noqa: E402

TEST_S = 600.0
WITHIN_S = 60.0


def kinds_for(seed: int) -> tuple[str, str]:
    """The two fake kinds of a city: every pair of kinds in turn."""
    k = len(FAKE_KINDS)
    return FAKE_KINDS[seed % k], FAKE_KINDS[(seed // k + seed + 1) % k]


def run_one(args: tuple[int, dict | None]) -> dict:
    seed, model_json = args
    logging.disable(logging.WARNING)
    model = RogueModel(**model_json) if model_json else DEFAULT_MODEL
    t0 = time.process_time()
    city = random_city(seed, kinds_for(seed), test_s=TEST_S)
    results = evaluate_city(city, model=model, relocate_every_s=120.0, seed=seed)
    return {"seed": seed, "cpu_s": round(time.process_time() - t0, 1), "n_sensors": len(city.scenario.sensors),
            "results": [asdict(r) for r in results]}


def parse_seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def collect(seeds: list[int], out: Path, model: RogueModel | None, workers: int) -> list[dict]:
    model_json = None if model is None else {"weights": dict(model.weights), "suspicious_score": model.suspicious_score,
                                             "rogue_score": model.rogue_score}
    done: list[dict] = []
    t0 = time.monotonic()
    with mp.get_context("spawn").Pool(workers) as pool:
        for i, city in enumerate(pool.imap_unordered(run_one, [(s, model_json) for s in seeds])):
            done.append(city)
            if (i + 1) % 10 == 0 or i + 1 == len(seeds):
                print(f"  {i + 1}/{len(seeds)} cities, {time.monotonic() - t0:.0f} s", flush=True)
                out.write_text(json.dumps({"model": model_json, "cities": done}))
    return done


def load(path: Path) -> tuple[dict | None, list[TruthResult]]:
    data = json.loads(path.read_text())
    res = []
    for city in data["cities"]:
        for r in city["results"]:
            r["timeline"] = [(t, e, tuple(n)) for t, e, n in r["timeline"]]
            res.append(TruthResult(**r))
    return data.get("model"), res


def split(results: list[TruthResult]) -> tuple[list[TruthResult], list[TruthResult]]:
    fakes = [r for r in results if r.kind in FAKE_KINDS and r.detected]
    legit = [r for r in results if r.kind in ("legit", "new") and r.detected]
    return fakes, legit


def rates(results: list[TruthResult], weights: dict[str, float], suspicious: float, rogue: float
          ) -> tuple[dict[str, float], float]:
    """(timely detection rate per kind and overall, false-positive rate) from the timelines."""
    fakes, legit = split(results)
    out = {}
    for kind in (*FAKE_KINDS, "all"):
        sel = [r for r in fakes if kind in (r.kind, "all")]
        if sel:
            out[kind] = sum(rescore(r, weights, rogue, WITHIN_S) is not None for r in sel) / len(sel)
    fp = sum(rescore(r, weights, suspicious) is not None for r in legit) / max(len(legit), 1)
    return out, fp


def first_scores(r: TruthResult, weights: dict[str, float]) -> float:
    """A fake's highest score within 60 s of its first detection (0: not judged from decodes by then)."""
    return max([sum(weights.get(n, 0.0) for n in names) for t, _, names in r.timeline
                if r.first_detected_s is not None and t <= r.first_detected_s + WITHIN_S] or [0.0])


def calibrate(path: Path) -> None:
    """Thresholds from calibration timelines (weights as in collector/rogue.py):

    * ``suspicious_score``: the lowest score (half-point steps) that no more than 0.5 % of the
      legitimate cells ever reach (half the 1 % goal, as a margin for other seeds);
    * ``rogue_score``: halfway between that and the score 95 % of the fakes judged from their
      decodes within 60 s reach by then, rounded down to a half point.
    """
    _, results = load(path)
    fakes, legit = split(results)
    w = dict(DEFAULT_MODEL.weights)
    grid = [x / 2 for x in range(2, 41)]
    susp = next(t for t in grid if rates(results, w, t, t)[1] <= 0.005)
    judged = sorted(s for s in (first_scores(r, w) for r in fakes) if s > 0)
    p5 = judged[int(0.05 * len(judged))] if judged else susp
    rogue = max(susp, int((susp + p5)) / 2)
    det, fp = rates(results, w, susp, rogue)
    print(f"calibration set: {len(fakes)} fakes, {len(legit)} legitimate cells; {len(judged)} fakes judged "
          f"from their decodes within 60 s, 5 % of them below {p5}")
    print(f"suspicious_score = {susp}, rogue_score = {rogue}: detection within 60 s "
          + ", ".join(f"{k} {v:.1%}" for k, v in det.items()) + f"; false positives {fp:.2%}")
    print("threshold sweep (both thresholds at t): t, detection within 60 s, false positives")
    for t in grid[:20]:
        d, f = rates(results, w, t, t)
        print(f"  {t:4.1f} {d['all']:6.1%} {f:6.2%}")
    fired: dict[str, list[int]] = {}
    for r in fakes + legit:
        names = {n for _, _, ns in r.timeline for n in ns}
        for n in names:
            fired.setdefault(n, [0, 0])[0 if r.kind in FAKE_KINDS else 1] += 1
    print(f"{'indicator':<28} {'weight':>6} {'fakes':>7} {'legit':>7}")
    for n, (a, b) in sorted(fired.items(), key=lambda kv: -kv[1][0]):
        print(f"{n:<28} {w.get(n, 0):6.1f} {a / max(len(fakes), 1):7.1%} {b / max(len(legit), 1):7.2%}")
    for r in legit:
        if rescore(r, w, susp) is not None:
            print(f"  false positive: {r.truth_id} ({r.kind}) {sorted({n for _, _, ns in r.timeline for n in ns})}")
    for r in fakes:
        if rescore(r, w, rogue, WITHIN_S) is None:
            print(f"  late or missed: {r.truth_id} max {r.max_score}, within 60 s {first_scores(r, w)} "
                  f"{sorted({n for _, _, ns in r.timeline for n in ns})}")


def report(path: Path) -> None:
    """The figures of an evaluation run (verdicts as the collector gave them)."""
    model_json, results = load(path)
    model = RogueModel(**model_json) if model_json else DEFAULT_MODEL
    data = json.loads(path.read_text())
    fakes, legit = split(results)
    print(f"{len(data['cities'])} cities, {sum(c['n_sensors'] for c in data['cities'])} sensors, "
          f"{len(fakes)} fake base stations and {len(legit)} legitimate cells detected "
          f"(suspicious_score {model.suspicious_score}, rogue_score {model.rogue_score}); "
          f"CPU {statistics.mean(c['cpu_s'] for c in data['cities']):.0f} s per city")
    print("\nTime to rogue from the fake's first detection by any sensor (a sweep at its SNR edge), and from "
          "the first decode of its identity:\n")
    print("| fake kind | fakes | flagged rogue | within 60 s of first detection | median / p95 / max (s) "
          "| within 60 s of first decode | median / p95 / max (s) |")
    print("|---|---|---|---|---|---|---|")

    def stats(xs: list[float]) -> str:
        if not xs:
            return "- / - / -"
        return f"{statistics.median(xs):.0f} / {xs[min(len(xs) - 1, int(0.95 * len(xs)))]:.0f} / {max(xs):.0f}"

    for kind in (*FAKE_KINDS, "all"):
        sel = [r for r in fakes if kind in (r.kind, "all")]
        if not sel:
            continue
        ttr = sorted(r.time_to_rogue_s for r in sel if r.time_to_rogue_s is not None)
        dtr = sorted(r.decoded_to_rogue_s for r in sel if r.decoded_to_rogue_s is not None)
        decoded = [r for r in sel if r.first_decoded_s is not None]
        print(f"| {kind} | {len(sel)} | {len(ttr) / len(sel):.1%} | {sum(t <= WITHIN_S for t in ttr) / len(sel):.1%} | "
              f"{stats(ttr)} | {sum(t <= WITHIN_S for t in dtr) / max(len(decoded), 1):.1%} of {len(decoded)} | "
              f"{stats(dtr)} |")
    for kind in ("legit", "new"):
        sel = [r for r in legit if r.kind == kind]
        fp = [r for r in sel if r.first_alarm_s is not None]
        rogue = [r for r in sel if r.first_rogue_s is not None]
        print(f"\n{kind} cells: {len(sel)}, ever suspicious or rogue {len(fp)} ({len(fp) / max(len(sel), 1):.2%}), "
              f"ever rogue {len(rogue)}")
        for r in fp:
            print(f"  {r.truth_id}: {r.alarm_indicators}")
    allfp = sum(r.first_alarm_s is not None for r in legit)
    print(f"\nall legitimate cells: {allfp}/{len(legit)} flagged ({allfp / max(len(legit), 1):.2%})")
    missed = [r for r in fakes if r.time_to_rogue_s is None or r.time_to_rogue_s > WITHIN_S]
    for r in missed:
        print(f"  late or missed: {r.truth_id} first detected {r.first_detected_s} decoded {r.first_decoded_s} "
              f"ttr={r.time_to_rogue_s} max={r.max_score} "
              f"{sorted({n for _, _, ns in r.timeline for n in ns})}")
    print("\nROC (re-thresholded scores of this run): threshold, detection within 60 s, false positives")
    print("| threshold | detection within 60 s | false positives |")
    print("|---|---|---|")
    for t in (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0):
        det, fp = rates(results, dict(model.weights), t, t)
        print(f"| {t:g} | {det['all']:.1%} | {fp:.2%} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("collect", "evaluate"):
        c = sub.add_parser(name)
        c.add_argument("--seeds", required=True, help="e.g. 1-240 or 1000-1119")
        c.add_argument("--out", required=True, type=Path)
        c.add_argument("--workers", type=int, default=2)
    sub.add_parser("calibrate").add_argument("file", type=Path)
    sub.add_parser("report").add_argument("file", type=Path)
    args = p.parse_args(argv)
    if args.cmd in ("collect", "evaluate"):
        collect(parse_seeds(args.seeds), args.out, DEFAULT_MODEL if args.cmd == "evaluate" else None, args.workers)
        if args.cmd == "evaluate":
            report(args.out)
    elif args.cmd == "calibrate":
        calibrate(args.file)
    else:
        report(args.file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
