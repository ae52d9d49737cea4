"""Judging a randomized city with the real collector, in simulated time, against its truth.

:func:`evaluate_city` feeds the records of an :class:`~sensors.sim.observe.Observer` of a
:class:`~sensors.sim.random_city.City` into a :class:`~collector.service.Collector` (its
store, association, evidence, localization, judgement and alerts; no sockets carry the
records), in time order, as sensors would have published them:

1. the operators' reference cells are imported into the store;
2. the history (legitimate network only) is replayed at one scan cycle per
   ``history_interval_s``, judged every two hours, and the baseline is learned from it;
3. the test is replayed at one cycle per ``scan_interval_s`` per sensor (a decode pass every
   ``decode_every`` cycles), judged after every ``judge_every_s`` of air and located every
   ``relocate_every_s``.

Each truth emitter is matched to the emitters its detections went to. A fake base station
counts as *flagged* when one of them became ``rogue``; its time to rogue runs from its first
detection by any sensor. A legitimate cell counts as a *false positive* when one of its
emitters was ever ``suspicious`` or ``rogue`` during the test. Times are seconds.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from sqlalchemy import text

from collector.config import CollectorConfig
from collector.rogue import RogueModel
from collector.service import Collector
from rfhunt.records import Detection
from sensors.sim.observe import ObservationModel, Observer
from sensors.sim.random_city import City
from sensors.sim.world import World

ALARM = frozenset({"suspicious", "rogue"})


@dataclass
class TruthResult:
    """How one truth emitter fared.

    Attributes
    ----------
    truth_id, kind : str
        Kind: ``legit``, ``new`` (a legitimate cell switched on during the test) or a fake kind.
    detected : bool
        Some sensor detected it during the test.
    first_detected_s : float or None
        Its first detection, s since the test started.
    first_decoded_s : float or None
        The first time a sensor decoded its identity, s since the test started.
    first_rogue_s, first_alarm_s : float or None
        When one of its emitters first was ``rogue`` / ``suspicious`` or ``rogue``.
    max_score : float
        Highest score any of its emitters had during the test.
    score_60s : float
        Highest score within 60 s of its first detection.
    final_verdicts : list of str
        Verdicts of its emitters at the end.
    indicators : list of str
        Every indicator that fired on its emitters at the end.
    alarm_indicators : list of str
        The indicators of the emitter that first raised an alarm, then.
    timeline : list
        ``(t_s, emitter_id, indicator names)`` at each judgement of each of its emitters with
        some indicator: what :func:`rescore` needs to try other weights and thresholds.
    """

    truth_id: str
    kind: str
    detected: bool = False
    first_detected_s: float | None = None
    first_decoded_s: float | None = None
    first_rogue_s: float | None = None
    first_alarm_s: float | None = None
    max_score: float = 0.0
    score_60s: float = 0.0
    final_verdicts: list[str] = field(default_factory=list)
    indicators: list[str] = field(default_factory=list)
    alarm_indicators: list[str] = field(default_factory=list)
    timeline: list[tuple[float, int, tuple[str, ...]]] = field(default_factory=list)

    @property
    def time_to_rogue_s(self) -> float | None:
        """From its first detection to its first rogue verdict, s."""
        if self.first_rogue_s is None or self.first_detected_s is None:
            return None
        return self.first_rogue_s - self.first_detected_s

    @property
    def decoded_to_rogue_s(self) -> float | None:
        """From the first decode of its identity to its first rogue verdict, s."""
        if self.first_rogue_s is None or self.first_decoded_s is None:
            return None
        return self.first_rogue_s - self.first_decoded_s


def evaluate_city(city: City, *, model: RogueModel | None = None, scan_interval_s: float = 20.0,
                  decode_every: int = 1, history_interval_s: float = 900.0, judge_every_s: float = 10.0,
                  relocate_every_s: float = 60.0, seed: int = 0, workdir: str | Path | None = None,
                  observation_model: ObservationModel = ObservationModel(), baseline_min_span_s: float | None = None,
                  context: zmq.Context | None = None) -> list[TruthResult]:
    """Run ``city`` through a collector and score every truth emitter (see module notes).

    ``baseline_min_span_s`` (default: three quarters of the history) is how long a cell must
    have been seen to be learned.
    """
    model = model or RogueModel()
    sc = city.scenario
    if workdir is None and Path("/dev/shm").is_dir():
        workdir = "/dev/shm"  # a RAM disk: commits cost no fsync
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        cfg = CollectorConfig(db_url=f"sqlite:///{Path(tmp) / 'rfhunt.db'}", bind="tcp://127.0.0.1:*",
                              relocate_interval_s=1e9, baseline_interval_s=0.0,
                              suspicious_score=model.suspicious_score, rogue_score=model.rogue_score,
                              baseline_min_span_s=baseline_min_span_s or 0.75 * city.history_s,
                              shadowing_db=sc.propagation.shadowing_db,
                              path_loss_exponent={"gsm_downlink": sc.propagation.path_loss_exponent,
                                                  "gsm_uplink": 3.0, "fm": 2.8})
        ctx = context or zmq.Context.instance()
        collector = Collector(cfg, context=ctx)
        try:
            collector.model = model
            collector.store.upsert_reference_cells(city.reference, imported_utc=sc.start_utc)
            collector._refresh_knowledge(force=True)
            return _replay(collector, city, scan_interval_s, decode_every, history_interval_s, judge_every_s,
                           relocate_every_s, seed, observation_model)
        finally:
            collector.close()


def _replay(collector: Collector, city: City, scan_interval_s: float, decode_every: int, history_interval_s: float,
            judge_every_s: float, relocate_every_s: float, seed: int, obs_model: ObservationModel
            ) -> list[TruthResult]:
    sc = city.scenario
    world = World(sc)
    observer = Observer(world, obs_model, seed=seed)
    truth_of: dict[int, str] = {}

    def feed(t0: float, t1: float, interval: float, every: int) -> list:
        obs = observer.run(t0, t1, scan_interval_s=interval, decode_every=every)
        for o in obs:
            if o.truth_id is not None:
                by_seq[(o.record.sensor_id, o.record.seq)] = o.truth_id
        return obs

    by_seq: dict[tuple[str, int], str] = {}
    last_id = [0]

    def learn_ids() -> None:
        """Map the new detections' database ids to their truth."""
        with collector.store.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, sensor_id, seq FROM detections WHERE id > :i"), {"i": last_id[0]})
            for i, sid, seq in rows:
                tid = by_seq.get((sid, seq))
                if tid is not None:
                    truth_of[i] = tid
                last_id[0] = max(last_id[0], i)

    # history: one cycle per history_interval_s, judged every two hours, then the baseline
    hist = feed(0.0, city.history_s, history_interval_s, 1)
    step = 2 * 3600.0
    t = 0.0
    while t < city.history_s:
        batch = [o.record for o in hist if t <= o.record.t_utc - sc.start_utc < t + step]
        if batch:
            collector.ingest(batch)
        collector.flush(now_utc=sc.start_utc + min(t + step, city.history_s))
        t += step
    collector.learn_baseline(now_utc=sc.start_utc + city.history_s)
    collector.flush(now_utc=sc.start_utc + city.history_s)

    # the test, in slices of judge_every_s
    test = feed(city.history_s, city.history_s + city.test_s, scan_interval_s, decode_every)
    results = {e.id: TruthResult(e.id, city.fakes.get(e.id, "new" if e.id in city.new_cells else "legit"))
               for e in sc.emitters if e.type in ("gsm_cell", "fake_bts")}
    for o in test:
        if isinstance(o.record, Detection) and o.truth_id in results:
            r = results[o.truth_id]
            t_s = o.record.t_utc - sc.start_utc - city.history_s
            if not r.detected:
                r.detected, r.first_detected_s = True, t_s
            if r.first_decoded_s is None and o.record.features.get("decoded"):
                r.first_decoded_s = t_s
    t, last_relocate = city.history_s, -1e9
    i = 0
    emitter_truth: dict[int, str] = {}
    while t < city.history_s + city.test_s:
        t_end = t + judge_every_s
        batch = []
        while i < len(test) and test[i].record.t_utc - sc.start_utc < t_end:
            batch.append(test[i].record)
            i += 1
        if batch:
            collector.ingest(batch)
            learn_ids()
        relocate = t_end - last_relocate >= relocate_every_s
        if relocate:
            last_relocate = t_end
        else:
            kept = set(collector._pending)
            collector._pending = set()
        collector.flush(now_utc=sc.start_utc + t_end)
        if not relocate:
            collector._pending |= kept
        emitter_truth = _emitter_truth(collector, truth_of, emitter_truth)
        now_s = t_end - city.history_s
        for em in collector.store.emitters(kind="gsm_downlink"):
            tid = emitter_truth.get(em.id)
            if tid is None or tid not in results:
                continue
            r = results[tid]
            score = em.score or 0.0
            r.max_score = max(r.max_score, score)
            if r.first_detected_s is not None and now_s <= r.first_detected_s + 60.0 + judge_every_s:
                r.score_60s = max(r.score_60s, score)
            names = tuple(sorted(i["name"] for i in em.indicators))
            if names:
                r.timeline.append((round(now_s, 1), em.id, names))
            if em.verdict == "rogue" and r.first_rogue_s is None:
                r.first_rogue_s = now_s
            if em.verdict in ALARM and r.first_alarm_s is None:
                r.first_alarm_s = now_s
                r.alarm_indicators = list(names)
        t = t_end
    for em in collector.store.emitters(kind="gsm_downlink"):
        tid = emitter_truth.get(em.id)
        if tid in results and em.verdict is not None:
            results[tid].final_verdicts.append(em.verdict)
            results[tid].indicators.extend(i["name"] for i in em.indicators)
    return list(results.values())


def rescore(result: TruthResult, weights: dict[str, float], threshold: float, within_s: float | None = None
            ) -> float | None:
    """When ``result``'s emitters would first have scored ``threshold`` or more with
    ``weights`` (s since the test started; only within ``within_s`` of its first detection
    if given), or None."""
    for t, _, names in result.timeline:
        if within_s is not None and (result.first_detected_s is None or t > result.first_detected_s + within_s):
            return None
        if sum(weights.get(n, 0.0) for n in names) >= threshold:
            return t
    return None


def _emitter_truth(collector: Collector, truth_of: dict, known: dict[int, str]) -> dict[int, str]:
    """Each GSM downlink emitter's truth: the emitter most of its decodes came from (a decode
    names the cell it read), else most of the detections in its evidence (a sweep measures
    whatever is strongest on the ARFCN)."""
    out = dict(known)
    for eid, ev in collector.tracker.cells.items():
        decoded = {p.detection_id for p in ev.powers} & ev.decoded_ids
        votes = Counter(truth_of.get(i) for i in decoded) or Counter(truth_of.get(p.detection_id) for p in ev.powers)
        votes.pop(None, None)
        if votes:
            out[eid] = votes.most_common(1)[0][0]
    return out


__all__ = ["TruthResult", "evaluate_city", "rescore"]
