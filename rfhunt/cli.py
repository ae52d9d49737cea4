"""The ``rfhunt`` command line.

Errors that rfhunt raises on purpose (bad files, bad options, unreachable devices) are
printed as one line naming the problem, with exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from rfhunt import __version__
from rfhunt.errors import ConfigError, RfhuntError


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    return stop


# --- demo ----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from rfhunt.demo import run_demo

    summary = run_demo(args.out, args.scenario, scan_interval_s=args.scan_interval,
                       duration_s=args.duration, quiet=args.quiet)
    missed = [r["truth_id"] for r in summary["emitters"] if not r["detected"]]
    if summary["errors"]:
        return 1
    if missed:
        print(f"not detected: {', '.join(missed)}", file=sys.stderr)
    return 0


# --- sensor --------------------------------------------------------------------------------
def open_node_source(spec: str, config_lat: float | None, config_lon: float | None, gpsd: str | None):
    """Source and position provider for a sensor node from its configuration.

    A simulated sensor knows where it is (it may be driving); a real one is told by its
    configuration or by gpsd.
    """
    from sensors.gps import FixedPosition, GpsdPosition, SourcePosition
    from sensors.sim.source import SimulatedSource  # registers the sim: scheme
    from sensors.sources.open import open_source

    source = open_source(spec)
    if isinstance(source, SimulatedSource):
        return source, SourcePosition(source)
    if gpsd:
        return source, GpsdPosition(gpsd)
    if config_lat is None or config_lon is None:
        source.close()
        raise ConfigError("a sensor on real hardware needs [position] lat/lon or gpsd = 'HOST:PORT'")
    return source, FixedPosition(config_lat, config_lon)


def cmd_sensor(args: argparse.Namespace) -> int:
    from sensors.config import load_sensor_config
    from sensors.node import SensorNode
    from sensors.outbox import Outbox
    from sensors.publish import Publisher

    cfg = load_sensor_config(args.config)
    source, pos = open_node_source(cfg.source, cfg.lat, cfg.lon, cfg.gpsd)
    stop = _stop_on_signals()
    # Records wait on disk for the collector's acknowledgement (sensor.outbox; by default a
    # file per sensor under ~/.local/state/rfhunt).
    outbox_path = Path(cfg.outbox).expanduser() if cfg.outbox else \
        Path.home() / ".local" / "state" / "rfhunt" / f"{cfg.sensor_id}-outbox.sqlite"
    pub = Publisher(cfg.collector, cfg.sensor_id, outbox=Outbox(outbox_path, max_records=cfg.outbox_max_records),
                    secret_key_file=cfg.secret_key, server_key_file=cfg.collector_key)
    log = logging.getLogger("rfhunt.sensor")
    log.warning("event=start sensor=%s source=%s collector=%s outbox=%s queued=%d", cfg.sensor_id, cfg.source,
                cfg.collector, outbox_path, pub.pending)
    try:
        node = SensorNode(cfg, source, pos, pub.send, outbox_depth=lambda: pub.pending,
                          requests=pub.take_requests, first_seq=pub.next_seq())
        stats = node.run(stop)
        pub.flush(timeout_s=10.0)
        ob = pub.outbox.stats()
        log.warning("event=stop sensor=%s scans=%d detections=%d sent=%d acked=%d outbox_depth=%d outbox_dropped=%d",
                    cfg.sensor_id, stats.scans_done, stats.detections, pub.sent, pub.acked, ob.depth, ob.dropped)
    finally:
        pub.close()
        pub.outbox.close()
        source.close()
    return 0


# --- collector -----------------------------------------------------------------------------
def cmd_collector(args: argparse.Namespace) -> int:
    from collector.config import load_collector_config
    from collector.service import Collector
    from collector.store import redact_url

    cfg = load_collector_config(args.config)
    stop = _stop_on_signals()
    with Collector(cfg) as col:
        logging.getLogger("rfhunt.collector").warning("event=start bind=%s db=%s", cfg.bind, redact_url(cfg.db_url))
        col.run(stop)
    return 0


# --- map -----------------------------------------------------------------------------------
def cmd_map(args: argparse.Namespace) -> int:
    import time

    from collector.store import Store
    from mapping.folium_map import render_map
    from mapping.layers import parse_time

    if args.watch is not None and not args.watch > 0:
        raise ConfigError(f"--watch {args.watch}: the period must be a positive number of seconds")

    def render(store: Store) -> Path:
        now = time.time()  # relative --since/--until (e.g. 2h) follow the clock on every pass
        since = None if args.since is None else parse_time(args.since, now)
        until = None if args.until is None else parse_time(args.until, now)
        tiles = None if args.tiles == "none" else args.tiles
        return render_map(store, Path(args.out), title=args.title, tiles=tiles, since_utc=since, until_utc=until,
                          analysis=not args.no_analysis, refresh_s=args.watch)

    store = Store.open(args.db)
    try:
        path = render(store)
        print(f"wrote {path}", flush=True)
        if args.watch is None:
            return 0
        stop = _stop_on_signals()
        log = logging.getLogger("rfhunt.map")
        while not stop.wait(args.watch):
            try:
                render(store)
            except RfhuntError as exc:  # a pass failed (database busy, disk full): try again next time
                log.error("map regeneration failed error=%r", str(exc))
        print(f"stopped watching; {path} is the last map", flush=True)
    finally:
        store.close()
    return 0


# --- case ----------------------------------------------------------------------------------
def cmd_case_export(args: argparse.Namespace) -> int:
    from collector.store import Store
    from mapping.case import export_case

    store = Store.open(args.db)
    try:
        tiles = None if args.tiles == "none" else args.tiles
        page = export_case(store, args.emitter_id, Path(args.out), tiles=tiles, max_evidence=args.max_evidence)
    finally:
        store.close()
    print(f"wrote {page.parent} (open {page}; check with: rfhunt case verify {page.parent})")
    return 0


def cmd_case_verify(args: argparse.Namespace) -> int:
    from mapping.case import verify_case

    problems = verify_case(args.folder)
    for p in problems:
        print(f"{args.folder}: {p}", file=sys.stderr)
    if problems:
        print(f"case folder {args.folder} FAILED verification ({len(problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"case folder {args.folder} OK: every file matches MANIFEST.sha256")
    return 0


# --- scan ----------------------------------------------------------------------------------
def cmd_scan_power(args: argparse.Namespace) -> int:
    """Carriers and their powers, from a recording (one tuning) or a live source (a sweep)."""
    import numpy as np

    from dsp.bands import band as band_by_name
    from sensors.config import ScanSpec
    from sensors.scan import measure_block, scan_band

    b = band_by_name(args.band)
    results = []
    if Path(args.source).exists():
        from sensors.sources.open import open_source

        src = open_source(args.source, sample_rate_hz=args.sample_rate, center_freq_hz=args.center_freq)
        try:
            fs = src.sample_rate_hz
            n = int(min(src.remaining_samples, fs * args.dwell))
            block = src.read(n)
        finally:
            src.close()
        chans = b.channel_freqs_hz()
        results = measure_block(block, b, chans, calibration_db=args.calibration_db)
    else:
        source, _ = open_node_source(args.source, 0.0, 0.0, None)
        try:
            spec = ScanSpec(args.band, args.sample_rate or 2.4e6, args.dwell, args.gain)
            results, dropped = scan_band(source, spec, calibration_db=args.calibration_db)
            if dropped:
                print(f"warning: {dropped} samples dropped during the sweep", file=sys.stderr)
        finally:
            source.close()
    if args.format == "jsonl":
        for m in results:
            print(json.dumps({"type": "carrier", "kind": m.kind, "freq_hz": m.freq_hz, "channel": m.channel,
                              "power_dbm": m.power_dbm, "snr_db": m.snr_db, "t_utc": m.t_utc, **m.features}))
    else:
        print(f"{'freq_MHz':>10} {'channel':>7} {'power_dBm':>9} {'snr_dB':>7} {'duty':>5}")
        for m in sorted(results, key=lambda m: m.freq_hz):
            ch = "-" if m.channel is None else str(m.channel)
            print(f"{m.freq_hz / 1e6:10.3f} {ch:>7} {m.power_dbm:9.1f} {m.snr_db:7.1f} "
                  f"{m.features.get('duty_cycle', np.nan):5.2f}")
        print(f"{len(results)} carriers")
    return 0


def cmd_scan_gsm(args: argparse.Namespace) -> int:
    """Every GSM cell's identity and broadcast parameters from one recording."""
    import numpy as np

    from dsp.bands import downlink_channels_in_span
    from dsp.gsm.decode import decode_bcch
    from dsp.spectrum import channel_powers
    from sensors.sources.open import open_source

    src = open_source(Path(args.file), sample_rate_hz=args.sample_rate, center_freq_hz=args.center_freq)
    try:
        n = src.remaining_samples if args.seconds is None else min(src.remaining_samples,
                                                                    int(args.seconds * src.sample_rate_hz))
        block = src.read(n)
    finally:
        src.close()
    fs, fc = block.sample_rate_hz, block.center_freq_hz
    iq = block.as_complex64()
    frames, cells = decode_bcch(iq, fs, fc, downlink_channels_in_span(fc, fs), ccch=not args.bcch_only)
    power = {}
    if cells:
        cp = channel_powers(iq, fs, fc, np.array([c.freq_hz for c in cells]), 180e3, usable_fraction=1.0)
        power = {round(f): (p, s) for f, p, s in zip(cp.freq_hz, cp.power_dbfs, cp.snr_db)}
    to_dbm = args.calibration_db - args.gain_db
    if args.gsmtap:
        from sensors.gsmtap import GsmtapFrame, GsmtapSender

        with GsmtapSender(args.gsmtap) as tx:
            for f in frames:
                tx.send(GsmtapFrame(f.arfcn or 0, f.timeslot, f.fn, f.channel, f.payload, snr_db=f.snr_db,
                                    pcs=False))
    rows = []
    for c in cells:
        p_dbfs, snr = power.get(round(c.freq_hz), (float("nan"), float("nan")))
        rows.append({"type": "cell", "arfcn": c.arfcn, "freq_hz": c.freq_hz,
                     "power_dbm": None if not np.isfinite(p_dbfs) else round(float(p_dbfs + to_dbm), 2),
                     "snr_db": None if not np.isfinite(snr) else round(float(snr), 2),
                     "freq_offset_hz": round(c.offset_hz, 1), "ppm": round(c.ppm, 3), "bsic": c.bsic,
                     "fn": c.fn, "n_frames": c.n_frames, **c.fields})
    if args.format == "jsonl":
        for f in frames:
            print(json.dumps({"type": "frame", "arfcn": f.arfcn, "freq_hz": f.freq_hz, "fn": f.fn,
                              "timeslot": f.timeslot, "channel": f.channel, "payload_hex": f.payload.hex(),
                              "snr_db": round(f.snr_db, 1)}))
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{len(frames)} frames decoded from {args.file} ({block.n_samples / fs:.2f} s at {fs / 1e6:g} MS/s, "
          f"centre {fc / 1e6:.4f} MHz)")
    print(f"{'ARFCN':>5} {'MHz':>9} {'ppm':>7} {'BSIC':>4} {'MCC-MNC':>8} {'LAC':>6} {'CID':>6} {'CRO':>4} "
          f"{'frames':>6}  neighbours")
    for r in rows:
        ident = f"{r.get('mcc', '?')}-{r.get('mnc', '?')}" if "mcc" in r else "-"
        print(f"{str(r['arfcn']):>5} {r['freq_hz'] / 1e6:9.3f} {r['ppm']:7.2f} {str(r['bsic']):>4} {ident:>8} "
              f"{str(r.get('lac', '-')):>6} {str(r.get('cid', '-')):>6} {str(r.get('cro_db', '-')):>4} "
              f"{r['n_frames']:>6}  {','.join(map(str, r.get('neighbours', [])))}")
    if not rows:
        print("no GSM cell (no FCCH) in this capture")
    return 0


def cmd_scan_fm(args: argparse.Namespace) -> int:
    """Every FM broadcast station of one recording: level, deviation, pilot, RDS, verdict."""
    from dsp.fm.station import scan_capture
    from sensors.fm_scan import judge_stations, write_evidence
    from sensors.sources.open import open_source

    registry = None
    if args.registry:
        from collector.reference import read_fm_registry

        registry = read_fm_registry(args.registry)
    if (args.lat is None) != (args.lon is None):
        raise ConfigError("--lat and --lon go together (the sensor's position, WGS84 degrees)")
    src = open_source(Path(args.file), sample_rate_hz=args.sample_rate, center_freq_hz=args.center_freq)
    try:
        n = min(src.remaining_samples, int(args.seconds * src.sample_rate_hz))
        block = src.read(n)
    finally:
        src.close()
    fs, fc = block.sample_rate_hz, block.center_freq_hz
    samples = block.samples if block.native == "cu8" else block.as_complex64()
    analysis = scan_capture(samples, fs, fc, keep_baseband=bool(args.evidence))
    capture_s = block.n_samples / fs
    rows = judge_stations(analysis, to_dbm=args.calibration_db - args.gain_db, registry=registry,
                          sensor_lat=args.lat, sensor_lon=args.lon, capture_s=capture_s)
    if args.evidence:
        by_freq = {st.freq_hz: i for i, st in enumerate(analysis.stations)}
        position = None if args.lat is None else (args.lat, args.lon)
        for r in rows:
            wav, meta = write_evidence(args.evidence, analysis, by_freq[r["freq_hz"]], capture_center_hz=fc,
                                       t_utc=block.t_utc, seconds=args.evidence_seconds, position=position)
            r["features"].update(evidence_wav=str(wav), evidence_iq=str(meta))
    if args.format == "jsonl":
        for r in rows:
            feats = r.pop("features")
            if args.details:
                r["features"] = feats
            print(json.dumps(r))
        return 0
    print(f"{len(rows)} FM stations in {args.file} ({capture_s:.2f} s at {fs / 1e6:g} MS/s, centre {fc / 1e6:.4f} MHz)")
    print(f"{'MHz':>7} {'dBm':>7} {'SNR':>5} {'dev_kHz':>7} {'pilot':>5} {'PI':>4} {'PS':<8} {'verdict':<10} reasons")
    for r in rows:
        dev = "-" if r["deviation_khz"] is None else f"{r['deviation_khz']:.0f}"
        print(f"{r['freq_hz'] / 1e6:7.1f} {r['power_dbm']:7.1f} {r['snr_db']:5.1f} {dev:>7} "
              f"{'yes' if r['pilot'] else 'no':>5} {r['rds_pi'] or '-':>4} {(r['rds_ps'] or '-'):<8} "
              f"{r['verdict']:<10} {'; '.join(r['reasons'])}")
        if args.evidence:
            print(f"{'':>7} evidence: {r['features']['evidence_wav']}, {r['features']['evidence_iq']}")
    return 0


def cmd_scan_goip(args: argparse.Namespace) -> int:
    """Uplink bursts of one recording, its links and the GOIP signature of each power group."""
    import numpy as np

    from dsp.bands import uplink_channels_in_span, uplink_hz_to_arfcn
    from dsp.gsm.goip import capture_groups
    from dsp.gsm.uplink import KIND_NAMES, detect_uplink_bursts, uplink_activity
    from sensors.sources.open import open_source

    options = {"sample_rate_hz": args.sample_rate, "center_freq_hz": args.center_freq}
    if args.datatype:
        options["fmt"] = args.datatype
    src = open_source(Path(args.file), **options)
    try:
        n = src.remaining_samples if args.seconds is None else min(src.remaining_samples,
                                                                    int(args.seconds * src.sample_rate_hz))
        block = src.read(n)
    finally:
        src.close()
    fs, fc = block.sample_rate_hz, block.center_freq_hz
    chans = uplink_channels_in_span(fc, fs)
    if chans.size == 0:  # not tuned to an uplink band: the 200 kHz raster around the centre
        k = np.arange(-int((fs / 2 - 100e3) // 200e3), int((fs / 2 - 100e3) // 200e3) + 1)
        chans = fc + 200e3 * k
    iq = block.as_complex64()
    bursts = detect_uplink_bursts(iq, fs, fc, chans, threshold_db=args.threshold_db)
    capture_s = iq.size / fs
    activity = uplink_activity(bursts, capture_s)
    arfcn = uplink_hz_to_arfcn(chans)
    groups = capture_groups(bursts, activity, arfcn)
    to_dbm = args.calibration_db - args.gain_db
    if args.format == "jsonl":
        for i in range(len(bursts)):
            a = int(arfcn[bursts.channel[i]])
            print(json.dumps({"type": "burst", "freq_hz": float(bursts.freq_hz[i]), "arfcn": None if a < 0 else a,
                              "t_start_s": round(float(bursts.start_s[i]), 7),
                              "duration_s": round(float(bursts.duration_s[i]), 7),
                              "power_dbm": round(float(bursts.power_dbfs[i]) + to_dbm, 2),
                              "snr_db": round(float(bursts.snr_db[i]), 2),
                              "offset_hz": round(float(bursts.offset_hz[i]), 1),
                              "timeslot": int(bursts.timeslot[i]), "burst": KIND_NAMES[int(bursts.kind[i])],
                              "truncated": bool(bursts.truncated[i])}))
        for g in groups:
            links = [[int(arfcn[activity.channel[m]]), int(activity.timeslot[m])] for m in g.link]
            print(json.dumps({"type": "cluster", "links": links, "arfcns": sorted({lk[0] for lk in links}),
                              "power_dbm": round(g.power_dbfs + to_dbm, 2), "concurrent_max": g.concurrent_max,
                              "concurrent_mean": round(g.concurrent_mean, 2),
                              "access_rate_hz": round(activity.access_rate_hz, 3),
                              "verdict": g.verdict, "reasons": list(g.reasons)}))
        return 0
    n_normal = int(np.count_nonzero(bursts.kind == 1))
    n_access = int(np.count_nonzero(bursts.kind == 2))
    print(f"{len(bursts)} uplink bursts in {args.file} ({capture_s:.3f} s at {fs / 1e6:g} MS/s, centre "
          f"{fc / 1e6:.4f} MHz): {n_normal} normal, {n_access} access; noise {np.median(bursts.noise_dbfs) + to_dbm:.1f} dBm (median over channels)")
    print(f"{'ARFCN':>5} {'TS':>2} {'bursts':>6} {'duty':>5} {'dBm':>7} {'first s':>8} {'last s':>8}")
    for i in range(activity.channel.size):
        print(f"{int(arfcn[activity.channel[i]]):>5} {int(activity.timeslot[i]):>2} {int(activity.bursts[i]):>6} "
              f"{activity.duty[i]:5.2f} {activity.power_dbfs[i] + to_dbm:7.1f} {activity.first_s[i]:8.4f} "
              f"{activity.last_s[i]:8.4f}")
    print(f"concurrent links: max {activity.concurrent_max}, mean {activity.concurrent_mean:.2f} per frame; "
          f"access bursts {activity.access_bursts} ({activity.access_rate_hz:.2f}/s)")
    for g in groups:
        print(f"[{g.verdict}] {g.power_dbfs + to_dbm:.1f} dBm: " + "; ".join(g.reasons))
    return 0


# --- keys ----------------------------------------------------------------------------------
def cmd_keys(args: argparse.Namespace) -> int:
    """CurveZMQ keypairs and the collector's enrolled sensors (rfhunt.keys)."""
    from rfhunt import keys

    if args.keys_command == "new":
        pub, sec = keys.new_keypair(args.name, args.dir)
        print(f"public key: {pub}  (give this file to the collector's operator to enroll)")
        print(f"secret key: {sec}  (stays on this machine; readable by its owner only)")
    elif args.keys_command == "enroll":
        dst = keys.enroll(args.public_key, args.dir, args.name)
        print(f"enrolled {dst.name.removesuffix('.key')}: {dst} (effective at its next connection)")
    elif args.keys_command == "revoke":
        p = keys.revoke(args.name, args.dir)
        print(f"revoked {args.name}: removed {p} (its messages are refused from now on)")
    else:
        for public, name in sorted(keys.enrolled(args.dir).items(), key=lambda kv: kv[1]):
            print(f"{name}\t{public.decode()}")
    return 0


# --- reference and alerts (rogue cells) ----------------------------------------------------
def _db_url(args: argparse.Namespace) -> str:
    """The database of ``--db URL``, or of the collector configuration ``--config FILE``."""
    if args.db:
        return args.db
    from collector.config import load_collector_config

    return load_collector_config(args.config).db_url


def cmd_reference_import(args: argparse.Namespace) -> int:
    """Import an operator cell list or an OpenCelliD / MLS export into the collector's database."""
    from collector.refimport import import_reference, parse_area
    from collector.store import Store

    area = parse_area(args.area) if args.area else None
    store = Store.open(_db_url(args))
    try:
        res = import_reference(store, args.file, source=args.source, area=area, replace=args.replace)
    finally:
        store.close()
    skipped = ", ".join(f"{n} {radio}" for radio, n in sorted(res.skipped.items()))
    print(f"{res.path}: {res.format} list, {res.read} GSM cells read, {res.stored} stored as source '{res.source}'"
          + (f", {res.outside_area} outside the area" if area else "")
          + (f", {res.replaced} previous cells of the source dropped" if args.replace else "")
          + (f"; rows of other radios skipped: {skipped}" if skipped else ""))
    return 0


def cmd_reference_list(args: argparse.Namespace) -> int:
    """Reference and baseline cells in the database, per source."""
    from datetime import UTC, datetime

    from collector.store import Store

    store = Store.open(_db_url(args))
    try:
        summary = store.reference_summary()
        baseline = store.baseline_cells()
    finally:
        store.close()
    for source, (n, t) in sorted(summary.items()):
        print(f"{source:<20} {n:>8} cells, imported {datetime.fromtimestamp(t, UTC).isoformat(timespec='seconds')}")
    print(f"{'baseline (learned)':<20} {len(baseline):>8} cells")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """Rogue-cell alerts in the database."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from collector.store import Store

    store = Store.open(_db_url(args))
    try:
        alerts = store.alerts()
    finally:
        store.close()
    if args.format == "jsonl":
        for a in alerts:
            print(json.dumps({**asdict(a), "indicators": list(a.indicators)}))
        return 0
    print(f"{'emitter':>7} {'raised (UTC)':<20} {'ARFCN':>5} {'identity':<22} {'verdict':<10} {'score':>5}  why")
    for a in alerts:
        when = datetime.fromtimestamp(a.raised_utc, UTC).strftime("%Y-%m-%d %H:%M:%S")
        why = a.indicators[0]["reason"] if a.indicators else ""
        print(f"{a.emitter_id:>7} {when:<20} {str(a.channel or '-'):>5} {str(a.identity or '-'):<22} {a.verdict:<10} "
              f"{a.score:5.1f}  {why}")
    print(f"{len(alerts)} alert(s)")
    return 0


# --- evidence requests and snippets --------------------------------------------------------
def cmd_evidence_request(args: argparse.Namespace) -> int:
    """Ask the collector's sensors for evidence of a carrier (sent while the collector runs)."""
    import time as _time

    from collector.evidence_ingest import add_request
    from collector.store import Store

    store = Store.open(_fm_db_url(args))
    try:
        freq_hz, emitter_id, kind = args.freq_mhz * 1e6 if args.freq_mhz else None, None, args.kind
        if args.emitter is not None:
            em = store.emitter(args.emitter)
            if em is None:
                raise RfhuntError(f"no emitter {args.emitter} in {store.url}")
            freq_hz, emitter_id, kind = em.freq_hz, em.id, em.kind
        if freq_hz is None:
            raise RfhuntError("say which carrier: --freq-mhz MHZ or --emitter ID")
        req = add_request(store, kind=kind, freq_hz=freq_hz, now_utc=_time.time(), ttl_s=args.ttl_min * 60.0,
                          seconds=args.seconds, want=tuple(args.want.split(",")), emitter_id=emitter_id,
                          sensor_id=args.sensor, reason=f"operator: {args.why}" if args.why else "operator")
    finally:
        store.close()
    print(f"request {req.request_id}: {req.kind} {req.freq_hz / 1e6:.4f} MHz, {req.seconds:g} s of "
          f"{' and '.join(req.want)}, to {req.sensor_id or 'every sensor'} for {args.ttl_min:g} min")
    return 0


def cmd_evidence_list(args: argparse.Namespace) -> int:
    """Evidence requests and the snippets kept."""
    import time as _time
    from datetime import UTC, datetime

    from collector.evidence import evidence_for_emitter
    from collector.evidence_ingest import requests
    from collector.store import Store

    def when(t: float | None) -> str:
        return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")

    store = Store.open(_fm_db_url(args))
    try:
        reqs = requests(store, _time.time(), emitter_id=args.emitter)
        ids = sorted({r.emitter_id for r in reqs if r.emitter_id is not None} |
                     ({args.emitter} if args.emitter is not None else set()))
        snippets = [ev for i in ids for ev in evidence_for_emitter(store, i)]
    finally:
        store.close()
    if args.format == "jsonl":
        for r in reqs:
            print(json.dumps({"type": "evidence_request", "request_id": r.request_id, "kind": r.kind,
                              "freq_hz": r.freq_hz, "seconds": r.seconds, "want": list(r.want),
                              "emitter_id": r.emitter_id, "sensor_id": r.sensor_id, "reason": r.reason,
                              "created_utc": r.created_utc, "expires_utc": r.expires_utc, "state": r.state,
                              "served_utc": r.served_utc, "served_by": r.served_by}))
        for ev in snippets:
            print(json.dumps({"type": "evidence", "id": ev.id, "emitter_id": ev.emitter_id, "kind": ev.kind,
                              "detection_id": ev.detection_id, "sensor_id": ev.sensor_id, "t_utc": ev.t_utc,
                              "seconds": ev.n_samples / ev.sample_rate_hz, "sha512": ev.sha512}))
        return 0
    print(f"{'request':<8} {'created (UTC)':<20} {'MHz':>9} {'emitter':>7} {'state':<8} {'served by':<12} why")
    for r in reqs:
        print(f"{r.request_id:<8} {when(r.created_utc):<20} {r.freq_hz / 1e6:>9.4f} {str(r.emitter_id or '-'):>7} "
              f"{r.state:<8} {r.served_by or '-':<12} {r.reason}")
    print(f"{len(reqs)} request(s)")
    for ev in snippets:
        print(f"  evidence {ev.id}: emitter {ev.emitter_id}, {ev.kind}, {ev.n_samples / ev.sample_rate_hz:.1f} s "
              f"from {ev.sensor_id} at {when(ev.t_utc)}, sha512 {ev.sha512[:16]}...")
    return 0


# --- FM licence registry and on-air schedules ----------------------------------------------
def _fm_db_url(args: argparse.Namespace) -> str:
    """``--db URL``, else the database of ``--config FILE``, else ``sqlite:///rfhunt.db``."""
    if args.db or args.config:
        return _db_url(args)
    return "sqlite:///rfhunt.db"


def cmd_registry_import(args: argparse.Namespace) -> int:
    """Check an FM licence registry CSV and store its stations in the collector's database."""
    from collector.fm_registry import import_registry, read_registry
    from collector.store import Store

    read_registry(args.file)  # a bad file fails before the database is touched
    store = Store.open(_fm_db_url(args))
    try:
        res = import_registry(store, args.file, replace_all=args.replace)
    finally:
        store.close()
    print(f"{res.path}: {res.read} FM stations read, {res.stored} stored"
          + (f", {res.replaced} previous stations dropped" if args.replace else ""))
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    """The FM stations of the collector's database."""
    from collector.fm_registry import registry_entries
    from collector.store import Store

    store = Store.open(_fm_db_url(args))
    try:
        entries = registry_entries(store)
    finally:
        store.close()
    if args.format == "csv":  # the import format: list, edit, import --replace
        import csv

        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(("frequency_hz", "name", "pi", "lat", "lon", "erp_w", "licence"))
        for e in entries:
            s = e.station
            out.writerow((f"{s.frequency_hz:.0f}", s.name, s.pi or "", s.lat, s.lon,
                          "" if s.erp_w is None else f"{s.erp_w:g}", s.licence))
        return 0
    print(f"{'MHz':>7} {'PI':<4} {'ERP W':>8} {'lat':>10} {'lon':>11}  {'licence':<12} name")
    for e in entries:
        s = e.station
        erp = "-" if s.erp_w is None else f"{s.erp_w:g}"
        print(f"{s.frequency_hz / 1e6:7.2f} {s.pi or '-':<4} {erp:>8} {s.lat:10.5f} {s.lon:11.5f}  "
              f"{s.licence or '-':<12} {s.name}")
    print(f"{len(entries)} FM station(s)")
    return 0


def cmd_fm_schedule(args: argparse.Namespace) -> int:
    """Each FM emitter's on-air schedule (local time) from the collector's database."""
    from collector.fm_schedule import ScheduleParams, fm_schedules, profile_bar
    from collector.store import Store

    params = ScheduleParams(utc_offset_h=args.utc_offset)
    store = Store.open(_fm_db_url(args))
    try:
        emitters = store.emitters(kind="fm")
        schedules = fm_schedules(store, emitters, params)
    finally:
        store.close()
    if args.format == "jsonl":
        for em in emitters:
            s = schedules[em.id]
            print(json.dumps({"emitter_id": em.id, "freq_hz": em.freq_hz, "verdict": em.verdict,
                              "summary": s.summary, "window": s.window, "night_only": s.night_only,
                              "n_days": s.n_days, "profile": list(s.profile), "intervals": list(s.intervals),
                              "utc_offset_h": s.utc_offset_h}))
        return 0
    per_day = len(next(iter(schedules.values())).profile) if schedules else 48
    axis = "".join(f"{h:02d}".ljust(max(per_day // 12, 2))[:max(per_day // 12, 2)] for h in range(0, 24, 2))
    print(f"local time UTC{args.utc_offset:+g} h; profile: one character per "
          f"{24 * 60 // per_day} min, ' ' never, '.' <25 %, '-' <50 %, '+' <75 %, '#' >=75 % of days")
    print(f"{'emitter':>7} {'MHz':>7} {'verdict':<11} |{axis}| schedule")
    for em in emitters:
        s = schedules[em.id]
        flag = "  [night only]" if s.night_only else ""
        print(f"{em.id:>7} {em.freq_hz / 1e6:7.2f} {str(em.verdict or '-'):<11} |{profile_bar(s.profile)}| "
              f"{s.summary}{flag}")
    print(f"{len(emitters)} FM emitter(s)")
    return 0


# --- sim -----------------------------------------------------------------------------------
def cmd_sim_rtltcp(args: argparse.Namespace) -> int:
    """Serve one simulated sensor's RTL-SDR to any rtl_tcp client."""
    from sensors.sim.source import open_simulated
    from sensors.sources.rtltcp import RtlTcpServer

    source = open_simulated(f"{args.sensor}@{args.scenario}" if args.scenario else args.sensor)
    stop = _stop_on_signals()
    with RtlTcpServer(source, host=args.host, port=args.port, paced=not args.unpaced) as server:
        host, port = server.address
        print(f"serving simulated sensor {args.sensor!r} as rtl_tcp on {host}:{port}", flush=True)
        stop.wait()
    return 0


def cmd_sim_check(args: argparse.Namespace) -> int:
    from sensors.sim.scenario import load_scenario

    sc = load_scenario(args.scenario)
    print(f"{sc.source}: '{sc.name}', {len(sc.sensors)} sensors "
          f"({sum(s.mobile for s in sc.sensors)} mobile), {len(sc.emitters)} emitters: "
          + ", ".join(f"{t}={sum(e.type == t for e in sc.emitters)}" for t in ("gsm_cell", "fake_bts", "fm", "goip")))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rfhunt", description="Hunt fake base stations, black radio and GOIP "
                                "gateways with RTL-SDR sensor networks.")
    p.add_argument("--version", action="version", version=f"rfhunt {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="run the built-in simulated city end to end")
    d.add_argument("--out", default="demo-out", help="output folder (map.html, rfhunt.db, summary.json)")
    d.add_argument("--scenario", default=None, help="scenario TOML (default: the built-in city)")
    d.add_argument("--scan-interval", type=float, default=20.0, help="seconds of air time between scans")
    d.add_argument("--duration", type=float, default=None, help="override the scenario's duration, s")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sensor", help="run a sensor node")
    s.add_argument("--config", required=True, help="sensor TOML (see deploy/sensor.toml)")
    s.set_defaults(func=cmd_sensor)

    c = sub.add_parser("collector", help="run the collector")
    c.add_argument("--config", default=None, help="collector TOML (see deploy/collector.toml)")
    c.set_defaults(func=cmd_collector)

    m = sub.add_parser("map", help="draw the map of a collector's database")
    m.add_argument("--db", required=True, help="SQLAlchemy URL, e.g. sqlite:///rfhunt.db")
    m.add_argument("--out", default="map.html")
    m.add_argument("--title", default=None)
    m.add_argument("--tiles", default="openstreetmap",
                   help="base map: openstreetmap (online), none (offline), or a tile URL template "
                        "such as tiles/{z}/{x}/{y}.png for a local tile folder")
    m.add_argument("--since", default=None, help="time filter: ISO 8601 (UTC), Unix seconds, or how long ago "
                   "(30m, 2h, 7d)")
    m.add_argument("--until", default=None, help="time filter end, same forms as --since")
    m.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                   help="regenerate the map every SECONDS until stopped; the page reloads itself as often")
    m.add_argument("--no-analysis", action="store_true",
                   help="leave out heatmaps, coverage and emitter tracks")
    m.set_defaults(func=cmd_map)

    ca = sub.add_parser("case", help="police handoff: a self-contained case folder about one emitter")
    cas = ca.add_subparsers(dest="case_command", required=True, metavar="WHAT")
    ce = cas.add_parser("export", help="write the case folder of an emitter (page, KML, GeoJSON, SigMF evidence)")
    ce.add_argument("emitter_id", type=int, help="the emitter's id (see rfhunt alerts or the map)")
    ce.add_argument("--out", required=True, help="folder to create (must be new or empty)")
    ce.add_argument("--db", default="sqlite:///rfhunt.db", help="SQLAlchemy URL of the collector's database")
    ce.add_argument("--tiles", default="none",
                    help="base map of the case page: none (default, offline), openstreetmap (online), or a "
                         "tile URL template of a local tile folder")
    ce.add_argument("--max-evidence", type=int, default=10, help="include at most this many evidence snippets")
    ce.set_defaults(func=cmd_case_export)
    cv = cas.add_parser("verify", help="check a case folder against its MANIFEST.sha256")
    cv.add_argument("folder")
    cv.set_defaults(func=cmd_case_verify)

    sc = sub.add_parser("scan", help="one-off scans of a recording or a source")
    scs = sc.add_subparsers(dest="scan_command", required=True, metavar="WHAT")
    sp = scs.add_parser("power", help="carriers and their power in one band")
    sp.add_argument("source", help="recording file, rtltcp:HOST:PORT, rtlsdr:0 or sim:SENSOR[@scenario.toml]")
    sp.add_argument("--band", default="gsm900-dl", help="gsm900-dl, gsm900-ul, dcs1800-dl or fm")
    sp.add_argument("--sample-rate", type=float, default=None, help="Hz (raw recordings; sweeps: 2.4e6)")
    sp.add_argument("--center-freq", type=float, default=None, help="Hz (raw recordings)")
    sp.add_argument("--dwell", type=float, default=0.05, help="seconds captured per tuning")
    sp.add_argument("--gain", type=float, default=30.0, help="tuner gain, dB (sweeps)")
    sp.add_argument("--calibration-db", type=float, default=-5.0, help="dBm = dBFS - gain + this")
    sp.add_argument("--format", choices=("table", "jsonl"), default="table")
    sp.set_defaults(func=cmd_scan_power)

    sg = scs.add_parser("gsm", help="decode every GSM cell's identity and system information")
    sg.add_argument("file", help="SigMF (.sigmf-meta/.sigmf-data), .cfile (complex64) or .cu8 recording")
    sg.add_argument("--sample-rate", type=float, default=None, help="Hz (raw recordings)")
    sg.add_argument("--center-freq", type=float, default=None, help="Hz (raw recordings)")
    sg.add_argument("--seconds", type=float, default=None, help="decode only the first SECONDS")
    sg.add_argument("--format", choices=("table", "jsonl"), default="table")
    sg.add_argument("--gsmtap", default=None, metavar="HOST[:PORT]",
                    help="also send every decoded frame as GSMTAP (UDP 4729) for Wireshark")
    sg.add_argument("--bcch-only", action="store_true",
                    help="decode the BCCH alone: every cell's identity and parameters, no CCCH frames or "
                         "paging counts (several times faster)")
    sg.add_argument("--gain-db", type=float, default=0.0, help="tuner gain of the recording, dB")
    sg.add_argument("--calibration-db", type=float, default=0.0,
                    help="dBm = dBFS - gain + this (0: powers are relative to full scale)")
    sg.set_defaults(func=cmd_scan_gsm)

    su = scs.add_parser("goip", help="GSM uplink bursts, the links in use and the GOIP signature")
    su.add_argument("file", help="SigMF, .cfile/.cf32 (complex64) or .cu8 recording of an uplink band")
    su.add_argument("--sample-rate", type=float, default=None, help="Hz (raw recordings)")
    su.add_argument("--center-freq", type=float, default=None, help="Hz (raw recordings)")
    su.add_argument("--datatype", default=None,
                    help="sample format of a raw file whose extension does not say it (e.g. cf32_le for a "
                         ".cf64 file of complex64 samples)")
    su.add_argument("--seconds", type=float, default=None, help="look at the first SECONDS only")
    su.add_argument("--threshold-db", type=float, default=8.0, help="burst envelope over the noise, dB")
    su.add_argument("--gain-db", type=float, default=0.0, help="tuner gain of the recording, dB")
    su.add_argument("--calibration-db", type=float, default=0.0,
                    help="dBm = dBFS - gain + this (0: powers are relative to full scale)")
    su.add_argument("--format", choices=("table", "jsonl"), default="table")
    su.set_defaults(func=cmd_scan_goip)

    sf = scs.add_parser("fm", help="every FM station: level, deviation, pilot, RDS, licence verdict")
    sf.add_argument("file", help="SigMF (.sigmf-meta/.sigmf-data), .cfile (complex64) or .cu8 recording")
    sf.add_argument("--registry", default=None, metavar="CSV",
                    help="licensed stations: frequency_hz,name,pi,lat,lon,erp_w,licence")
    sf.add_argument("--format", choices=("table", "jsonl"), default="table")
    sf.add_argument("--details", action="store_true", help="jsonl: add every measured feature under 'features'")
    sf.add_argument("--sample-rate", type=float, default=None, help="Hz (raw recordings)")
    sf.add_argument("--center-freq", type=float, default=None, help="Hz (raw recordings)")
    sf.add_argument("--seconds", type=float, default=30.0, help="analyse at most the first SECONDS (default 30)")
    sf.add_argument("--lat", type=float, default=None, help="where the recording was made (WGS84 degrees)")
    sf.add_argument("--lon", type=float, default=None, help="where the recording was made (WGS84 degrees)")
    sf.add_argument("--evidence", default=None, metavar="DIR",
                    help="write each station's audio (WAV, 50 us de-emphasis) and channel IQ (SigMF) here")
    sf.add_argument("--evidence-seconds", type=float, default=10.0, help="length of the evidence, s")
    sf.add_argument("--gain-db", type=float, default=0.0, help="tuner gain of the recording, dB")
    sf.add_argument("--calibration-db", type=float, default=0.0,
                    help="dBm = dBFS - gain + this (0: powers are relative to full scale)")
    sf.set_defaults(func=cmd_scan_fm)

    ky = sub.add_parser("keys", help="CurveZMQ keys of sensors and collectors, and enrolled sensors")
    kys = ky.add_subparsers(dest="keys_command", required=True, metavar="WHAT")
    kn = kys.add_parser("new", help="create a keypair NAME.key / NAME.key_secret")
    kn.add_argument("name")
    kn.add_argument("--dir", required=True, help="folder for the key files")
    ke = kys.add_parser("enroll", help="admit a sensor: copy its public .key into the enrolled folder")
    ke.add_argument("public_key", help="the sensor's NAME.key file")
    ke.add_argument("--dir", required=True, help="the collector's enrolled folder")
    ke.add_argument("--name", default=None, help="name to enroll it under (default: the file's)")
    kr = kys.add_parser("revoke", help="refuse a sensor from now on")
    kr.add_argument("name")
    kr.add_argument("--dir", required=True, help="the collector's enrolled folder")
    kl = kys.add_parser("list", help="the enrolled sensors and their public keys")
    kl.add_argument("--dir", required=True, help="the collector's enrolled folder")
    for p_ in (kn, ke, kr, kl):
        p_.set_defaults(func=cmd_keys)

    def db_options(parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--db", help="SQLAlchemy URL of the collector's database, e.g. sqlite:///rfhunt.db")
        where.add_argument("--config", help="collector TOML whose database to use")

    rf = sub.add_parser("reference", help="reference cells the rogue-cell judge compares with")
    rfs = rf.add_subparsers(dest="reference_command", required=True, metavar="WHAT")
    ri = rfs.add_parser("import", help="import an operator cell list or an OpenCelliD / MLS export (CSV, .gz)")
    ri.add_argument("file", help="mcc,mnc,lac,cid,arfcn,bsic,lat,lon or radio,mcc,net,area,cell,unit,lon,lat,...")
    db_options(ri)
    ri.add_argument("--source", default=None, help="name to store the cells under (default: operator / opencellid)")
    ri.add_argument("--area", default=None, metavar="LAT,LON,RADIUS_M", help="keep only cells within RADIUS_M of a point")
    ri.add_argument("--replace", action="store_true", help="drop the source's cells first")
    ri.set_defaults(func=cmd_reference_import)
    rl = rfs.add_parser("list", help="reference and baseline cells per source")
    db_options(rl)
    rl.set_defaults(func=cmd_reference_list)

    def fm_db_options(parser: argparse.ArgumentParser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--db", help="SQLAlchemy URL of the collector's database (default sqlite:///rfhunt.db)")
        where.add_argument("--config", help="collector TOML whose database to use")

    rg = sub.add_parser("registry", help="FM licence registry in the collector's database")
    rgs = rg.add_subparsers(dest="registry_command", required=True, metavar="WHAT")
    rgi = rgs.add_parser("import", help="check and import an FM licence registry CSV")
    rgi.add_argument("file", help="CSV: frequency_hz,name,pi,lat,lon,erp_w,licence")
    fm_db_options(rgi)
    rgi.add_argument("--replace", action="store_true", help="drop the stations already stored first")
    rgi.set_defaults(func=cmd_registry_import)
    rgl = rgs.add_parser("list", help="the FM stations stored")
    fm_db_options(rgl)
    rgl.add_argument("--format", choices=("table", "csv"), default="table")
    rgl.set_defaults(func=cmd_registry_list)

    fmp = sub.add_parser("fm", help="FM emitters of a collector's database")
    fms = fmp.add_subparsers(dest="fm_command", required=True, metavar="WHAT")
    fsc = fms.add_parser("schedule", help="each FM emitter's on-air schedule (daily profile, usual window)")
    fm_db_options(fsc)
    fsc.add_argument("--utc-offset", type=float, default=8.0, metavar="HOURS",
                     help="local time is UTC plus HOURS (default 8, Asia/Shanghai)")
    fsc.add_argument("--format", choices=("table", "jsonl"), default="table")
    fsc.set_defaults(func=cmd_fm_schedule)

    evp = sub.add_parser("evidence", help="ask sensors for evidence (audio, IQ) of a carrier; list what came")
    evs = evp.add_subparsers(dest="evidence_command", required=True, metavar="WHAT")
    evr = evs.add_parser("request", help="file a request; the running collector sends it to its sensors")
    fm_db_options(evr)
    evr.add_argument("--freq-mhz", type=float, default=None, help="the carrier, MHz")
    evr.add_argument("--kind", choices=("fm", "gsm_downlink"), default="fm",
                     help="detection kind of the carrier (with --freq-mhz; default fm)")
    evr.add_argument("--emitter", type=int, default=None, help="or the emitter's id (its carrier and kind)")
    evr.add_argument("--seconds", type=float, default=5.0, help="length of each snippet, s (default 5, at most 10)")
    evr.add_argument("--want", default="audio,iq", help="audio, iq or audio,iq (default)")
    evr.add_argument("--sensor", default=None, help="ask only this sensor (default: every one)")
    evr.add_argument("--ttl-min", type=float, default=60.0, help="keep asking this long, minutes (default 60)")
    evr.add_argument("--why", default=None, help="a note kept with the request (case number, ...)")
    evr.set_defaults(func=cmd_evidence_request)
    evl = evs.add_parser("list", help="requests and the snippets kept")
    fm_db_options(evl)
    evl.add_argument("--emitter", type=int, default=None, help="only this emitter's")
    evl.add_argument("--format", choices=("table", "jsonl"), default="table")
    evl.set_defaults(func=cmd_evidence_list)

    al = sub.add_parser("alerts", help="rogue-cell alerts of a collector's database")
    db_options(al)
    al.add_argument("--format", choices=("table", "jsonl"), default="table")
    al.set_defaults(func=cmd_alerts)

    sim = sub.add_parser("sim", help="the simulated world")
    sims = sim.add_subparsers(dest="sim_command", required=True, metavar="WHAT")
    sr = sims.add_parser("rtltcp", help="serve a simulated sensor's dongle over the rtl_tcp protocol")
    sr.add_argument("--sensor", required=True)
    sr.add_argument("--scenario", default=None)
    sr.add_argument("--host", default="127.0.0.1")
    sr.add_argument("--port", type=int, default=1234)
    sr.add_argument("--unpaced", action="store_true", help="stream as fast as the client reads")
    sr.set_defaults(func=cmd_sim_rtltcp)
    sk = sims.add_parser("check", help="check a scenario file")
    sk.add_argument("scenario", nargs="?", default=None)
    sk.set_defaults(func=cmd_sim_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except RfhuntError as exc:
        print(f"rfhunt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rfhunt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
