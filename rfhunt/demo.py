"""``rfhunt demo``: the built-in simulated city, end to end over real ZeroMQ sockets.

Sensor nodes run in their own processes, each capturing from the simulated world through a
simulated RTL-SDR and publishing over ZeroMQ to a collector that stores into a SQLite file,
associates, locates and judges; then the map is drawn and the result is scored against the
scenario's truth (which no stage before the scoring ever sees).
"""

from __future__ import annotations

import csv
import json
import multiprocessing as mp
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rfhunt.geo import distance_m, route_position
from sensors.sim.scenario import Scenario, load_scenario

DEMO_SCAN_INTERVAL_S = 20.0
#: Dwell of the decode sweep: SI3 comes every 0.94 s, after an SCH (every 46 ms).
DEMO_DECODE_DWELL_S = 1.2
#: Decode on every Nth scan cycle (cycles 0, 10 and 20 of the 30-cycle demo).
DEMO_DECODE_EVERY = 10
#: The FM monitor (RDS, pilot, deviation; evidence the collector asks for) dwells this long
#: on each occupied hop, every Nth cycle.
DEMO_FM_DWELL_S = 0.6
DEMO_FM_EVERY = 10
#: Seconds of audio and IQ the demo's collector asks for when it judges an FM carrier
#: unlicensed or suspicious.
DEMO_SNIPPET_S = 2.0
#: ... and of a GSM cell's channel IQ when it judges the cell rogue or suspicious (2.2 MB each).
DEMO_GSM_SNIPPET_S = 0.25


def write_reference_files(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    """What the operators and the regulator would hand over: the legitimate cells and the
    licensed FM stations, in rfhunt's reference formats."""
    gsm = out / "operator_cells.csv"
    with gsm.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mcc", "mnc", "lac", "cid", "arfcn", "bsic", "lat", "lon"])
        for em in scenario.emitters:
            if em.type == "gsm_cell":
                w.writerow([em.mcc, em.mnc, em.lac, em.cid, em.arfcn, em.bsic, em.lat, em.lon])
    fm = out / "fm_registry.csv"
    with fm.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frequency_hz", "name", "pi", "lat", "lon", "erp_w", "licence"])
        for em in scenario.emitters:
            if em.type == "fm" and em.licensed:
                pi = "" if em.rds_pi is None else f"{em.rds_pi:04X}"
                erp_w = round(10 ** ((em.power_dbm - 30) / 10))
                w.writerow([int(em.freq_hz), em.name or em.id, pi, em.lat, em.lon, erp_w, f"LIC-{em.id}"])
    return gsm, fm


def _sensor_process(scenario_path: str | None, sensor_id: str, endpoint: str, scan_interval_s: float,
                    progress: "mp.Queue", seed: int, duration_s: float) -> None:
    """Body of one sensor node process."""
    import logging

    from sensors.config import DEFAULT_SCANS, ScanSpec, SensorConfig
    from sensors.gps import SourcePosition
    from sensors.node import SensorNode
    from sensors.publish import Publisher
    from sensors.sim.source import SimulatedSource
    from sensors.sim.world import World

    logging.basicConfig(level=logging.WARNING, format=f"%(levelname)s {sensor_id} %(message)s")
    scenario = replace(load_scenario(scenario_path), duration_s=duration_s)
    world = World(scenario)
    source = SimulatedSource(world, sensor_id, seed=seed)
    # power sweeps of every band on each cycle; the cells' identities decoded every few cycles
    decode = ScanSpec("gsm900-dl", 2.4e6, DEMO_DECODE_DWELL_S, 42.1, decode=True, every=DEMO_DECODE_EVERY)
    fm = ScanSpec("fm", 2.4e6, DEMO_FM_DWELL_S, 20.7, decode=True, every=DEMO_FM_EVERY)
    config = SensorConfig(sensor_id=sensor_id, source=f"sim:{sensor_id}", collector=endpoint,
                          scan_interval_s=scan_interval_s, heartbeat_s=scan_interval_s,
                          scans=(*DEFAULT_SCANS, decode, fm))
    pub = Publisher(endpoint, sensor_id)
    node = SensorNode(config, source, SourcePosition(source), pub.send, requests=pub.take_requests)
    n_scans = int(np.ceil(scenario.duration_s / scan_interval_s))

    def on_scan(nd: SensorNode, n: int) -> None:
        progress.put((sensor_id, nd.stats.scans_done, n_scans, nd.stats.detections))

    try:
        node.run(until_utc=scenario.start_utc + scenario.duration_s, on_scan=on_scan)
        ok = pub.flush(timeout_s=60.0)
        progress.put((sensor_id, "done", ok, pub.sent, pub.acked))
    except Exception as exc:  # report to the parent instead of dying silently
        progress.put((sensor_id, "error", f"{type(exc).__name__}: {exc}", 0, 0))
    finally:
        pub.close()


def _truth_position(em, scenario: Scenario) -> tuple[float, float]:
    """Where a truth emitter was: its site, or for a moving one its mean position over the run."""
    if not em.mobile:
        return em.lat, em.lon
    ts = np.linspace(0, scenario.duration_s, 121)
    pts = np.array([route_position(np.asarray(em.route), em.speed_mps, t, em.loop) for t in ts])
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def decoded_identities(detections: list) -> dict[int, dict]:
    """What sensors decoded on each GSM channel: MCC, MNC, CID, BSIC and every LAC heard."""
    out: dict[int, dict] = {}
    for d in detections:
        f = d.features or {}
        if d.kind != "gsm_downlink" or not f.get("decoded") or "mcc" not in f:
            continue
        ident = out.setdefault(d.channel, {"mcc": set(), "mnc": set(), "cid": set(), "bsic": set(), "lacs": set()})
        for k in ("mcc", "mnc", "cid", "bsic"):
            ident[k].add(f.get(k))
        ident["lacs"].add(f.get("lac"))
    return out


def score(scenario: Scenario, emitters: list, identities: dict[int, dict] | None = None
          ) -> tuple[list[dict], list[dict]]:
    """Match each truth emitter to the located emitters on its channel(s); error in metres.

    Returns the row of each truth emitter and the emitters that match no truth (false
    detections; an FM carrier judged ``intermod``, the sensor's own product recognised as
    such, is not one).
    """
    rows = []
    matched: set[int] = set()
    for em in scenario.emitters:
        if em.kind == "fm":
            cands = [e for e in emitters if e.kind == "fm" and abs(e.freq_hz - em.freq_hz) <= 50e3]
        else:
            chans = set(em.arfcns) if em.type == "goip" else {em.arfcn}
            cands = [e for e in emitters if e.kind == em.kind and e.channel in chans]
        matched.update(e.id for e in cands)
        lat, lon = _truth_position(em, scenario)
        located = [e for e in cands if e.lat is not None]
        row = {"truth_id": em.id, "kind": em.kind, "type": em.type, "detected": bool(cands),
               "emitter_id": None, "verdict": None, "error_m": None, "mobile": em.mobile}
        if located:
            best = max(located, key=lambda e: e.n_detections)
            errs = [float(distance_m(lat, lon, e.lat, e.lon)) for e in located]
            row.update(emitter_id=best.id, verdict=best.verdict,
                       error_m=round(float(np.median(errs)) if em.type == "goip" else
                                     float(distance_m(lat, lon, best.lat, best.lon)), 1))
            if em.type == "goip":
                row["members"] = sorted(e.id for e in located)
                row["verdicts"] = sorted({e.verdict for e in located if e.verdict})
        elif cands:
            row.update(emitter_id=cands[0].id, verdict=cands[0].verdict)
        if em.kind == "gsm_downlink":
            # a fake base station must come out rogue; a real cell never suspicious nor rogue
            verdicts = sorted({e.verdict for e in cands if e.verdict})
            row["verdicts"] = verdicts
            row["verdict_ok"] = ("rogue" in verdicts) if em.type == "fake_bts" else \
                bool(cands) and not {"rogue", "suspicious"} & set(verdicts)
        if em.kind == "gsm_downlink" and identities is not None:
            got = identities.get(em.arfcn)
            lacs_on_air = {em.lac_at(t) for t in np.arange(0.0, scenario.duration_s + 1, 1.0)}
            if got:
                row["identity"] = {k: sorted(v, key=str) for k, v in got.items()}
                row["identity_ok"] = (got["mcc"] == {f"{em.mcc:03d}"} and got["mnc"] == {f"{em.mnc:02d}"}
                                      and got["cid"] == {em.cid} and got["bsic"] == {em.bsic}
                                      and got["lacs"] <= lacs_on_air)
            else:
                row["identity"], row["identity_ok"] = None, False
        rows.append(row)
    # an FM carrier judged ``intermod`` is the sensor's own third-order product of strong
    # stations, recognised as such (never an alarm): not a false emitter
    false = [{"emitter_id": e.id, "kind": e.kind, "freq_hz": e.freq_hz, "channel": e.channel,
              "verdict": e.verdict, "n_detections": e.n_detections} for e in emitters
             if e.id not in matched and e.verdict != "intermod"]
    return rows, false


def run_demo(out_dir: str | Path = "demo-out", scenario_path: str | None = None, *,
             scan_interval_s: float = DEMO_SCAN_INTERVAL_S, duration_s: float | None = None,
             quiet: bool = False, seed: int = 1) -> dict:
    """Run the demo and return the summary (also written to ``OUT/summary.json``)."""
    from collector.config import CollectorConfig
    from collector.evidence import evidence_for_emitter
    from collector.evidence_ingest import requests
    from collector.service import Collector
    from collector.store import Store
    from mapping.folium_map import render_map

    t_wall = time.monotonic()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scenario = load_scenario(scenario_path)
    if duration_s is not None:
        scenario = replace(scenario, duration_s=float(duration_s))
    db = out / "rfhunt.db"
    for p in (db, out / "rfhunt.db-wal", out / "rfhunt.db-shm"):
        p.unlink(missing_ok=True)
    gsm_csv, fm_csv = write_reference_files(scenario, out)
    db_url = f"sqlite:///{db.resolve()}"
    # The deployment's propagation calibration: the exponent and shadowing an operator would
    # have fitted for this city (here, the scenario's own; the truth positions stay unseen).
    n_exp = scenario.propagation.path_loss_exponent
    config = CollectorConfig(db_url=db_url, bind="tcp://127.0.0.1:*", gsm_csv=gsm_csv, fm_registry_csv=fm_csv,
                             shadowing_db=max(scenario.propagation.shadowing_db, 3.0),
                             path_loss_exponent={"gsm_downlink": n_exp, "gsm_uplink": n_exp, "fm": n_exp},
                             snippet_s=DEMO_SNIPPET_S, gsm_snippet_s=DEMO_GSM_SNIPPET_S)
    say(f"rfhunt demo: scenario '{scenario.name}' ({len(scenario.sensors)} sensors, "
        f"{len(scenario.emitters)} emitters, {scenario.duration_s:.0f} s of air time)")
    collector = Collector(config)
    endpoint = collector.endpoint  # the port the system gave the ROUTER socket
    say(f"collector on {endpoint}, database {db}")
    stop = threading.Event()
    ct = threading.Thread(target=collector.run, args=(stop,), name="collector", daemon=True)
    ct.start()

    ctx = mp.get_context("spawn")
    progress: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_sensor_process, name=f"sensor-{s.id}",
                         args=(scenario_path, s.id, endpoint, scan_interval_s, progress, seed + i,
                               scenario.duration_s))
             for i, s in enumerate(scenario.sensors)]
    for p in procs:
        p.start()
    done: dict[str, tuple] = {}
    state: dict[str, str] = {s.id: "starting" for s in scenario.sensors}
    last_print = 0.0
    errors = []
    while len(done) < len(procs):
        try:
            msg = progress.get(timeout=0.5)
        except queue.Empty:
            if all(not p.is_alive() for p in procs) and progress.empty():
                for s in scenario.sensors:
                    if s.id not in done:
                        errors.append(f"sensor {s.id} exited without reporting")
                        done[s.id] = ("lost",)
            continue
        sid = msg[0]
        if msg[1] == "done":
            done[sid] = msg
            state[sid] = f"done ({msg[4]}/{msg[3]} acked)"
        elif msg[1] == "error":
            done[sid] = msg
            state[sid] = "FAILED"
            errors.append(f"sensor {sid}: {msg[2]}")
        else:
            state[sid] = f"{msg[1]}/{msg[2]} scans"
        if time.monotonic() - last_print > 2.0 or len(done) == len(procs):
            last_print = time.monotonic()
            say(f"  [{time.monotonic() - t_wall:5.1f} s] " + "  ".join(f"{k}: {v}" for k, v in state.items())
                + f"  | stored {collector.stats().get('stored', 0)}")
    for p in procs:
        p.join(timeout=10)
    stop.set()
    ct.join(timeout=60)
    collector.close()

    store = Store.open(db_url)
    try:
        emitters = store.emitters()
        alerts = [{"emitter_id": a.emitter_id, "arfcn": a.channel, "identity": a.identity, "score": a.score,
                   "indicators": [i["name"] for i in a.indicators], "updates": a.n_updates} for a in store.alerts()]
        identities = decoded_identities(store.detections())
        evidence = [{"emitter_id": ev.emitter_id, "kind": ev.kind, "sensor_id": ev.sensor_id,
                     "seconds": round(ev.n_samples / ev.sample_rate_hz, 2), "sha512": ev.sha512}
                    for em in emitters for ev in evidence_for_emitter(store, em.id)]
        asked = [{"request_id": r.request_id, "emitter_id": r.emitter_id, "freq_hz": r.freq_hz, "reason": r.reason,
                  "state": r.state, "served_by": r.served_by} for r in requests(store, time.time())]
        map_path = render_map(store, out / "map.html", title=f"rfhunt demo: {scenario.name}")
    finally:
        store.close()
    rows, false = score(scenario, emitters, identities)
    wall = time.monotonic() - t_wall
    summary = {"db_url": db_url, "wall_s": round(wall, 1), "scenario": scenario.name,
               "map": str(map_path), "collector": collector.stats(), "errors": errors,
               "emitters": rows, "false_emitters": false, "alerts": alerts, "evidence_requests": asked,
               "evidence": evidence}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    say("")
    say(f"{'truth':<15} {'kind':<13} {'detected':<9} {'emitter':>7} {'verdict':<14} {'error_m':>8}  decoded identity")
    for r in rows:
        err = "-" if r["error_m"] is None else f"{r['error_m']:.0f}"
        ident = ""
        if r.get("identity"):
            i = r["identity"]
            ident = (f"{'/'.join(i['mcc'])}-{'/'.join(i['mnc'])} LAC {','.join(map(str, i['lacs']))} "
                     f"CI {'/'.join(map(str, i['cid']))} BSIC {'/'.join(map(str, i['bsic']))}"
                     + ("" if r["identity_ok"] else "  (WRONG)"))
        elif "identity" in r:
            ident = "not decoded"
        say(f"{r['truth_id']:<15} {r['kind']:<13} {str(r['detected']):<9} {str(r['emitter_id'] or '-'):>7} "
            f"{str(r['verdict'] or '-'):<14} {err:>8}  {ident}")
    say("")
    wrong = [r["truth_id"] for r in rows if r.get("verdict_ok") is False]
    say(f"rogue-cell verdicts: {'all as expected' if not wrong else 'WRONG for ' + ', '.join(wrong)}; "
        f"{len(alerts)} alert(s)" + "".join(f"\n  alert: emitter {a['emitter_id']} ARFCN {a['arfcn']} {a['identity']} "
                                          f"score {a['score']:.1f} ({', '.join(a['indicators'][:4])}"
                                          f"{', ...' if len(a['indicators']) > 4 else ''})" for a in alerts))
    products = [e for e in emitters if e.verdict == "intermod"]
    if products:
        say(f"{len(products)} receiver intermodulation product(s) recognised, not alarmed: "
            + ", ".join(f"{e.freq_hz / 1e6:.1f} MHz" for e in products))
    say(f"{len(false)} emitter(s) match nothing in the scenario"
        + "".join(f"\n  emitter {f['emitter_id']}: {f['kind']} {f['freq_hz'] / 1e6:.1f} MHz, "
                  f"{f['n_detections']} detections, {f['verdict']}" for f in false))
    say(f"{len(asked)} evidence request(s), {len(evidence)} snippet(s) kept"
        + "".join(f"\n  {r['request_id']}: emitter {r['emitter_id']} {r['freq_hz'] / 1e6:.1f} MHz ({r['reason']}): "
                  f"{r['state']}" + (f" by {r['served_by']}" if r["served_by"] else "") for r in asked)
        + "".join(f"\n  evidence of emitter {e['emitter_id']}: {e['seconds']:.1f} s of {e['kind']} from "
                  f"{e['sensor_id']} (rfhunt case export {e['emitter_id']} DIR)" for e in evidence))
    say(f"wrote {map_path}, {db} and {out / 'summary.json'} in {wall:.1f} s")
    for e in errors:
        say(f"warning: {e}")
    return summary
