"""The collector service: receive records over ZeroMQ, store, associate, locate, judge.

Protocol
    Sensors connect a DEALER socket to the collector's ROUTER (``bind`` in the config)
    and send single-frame messages, each ``rfhunt.records.encode(record)``. Every
    message gets one reply frame, a JSON object:

    * ``{"ok": true, "seq": N, "dup": false}`` once the record is **committed** (``dup``
      true when (sensor_id, seq) was already stored, or a heartbeat is not newer than the
      last one);
    * ``{"ok": false, "seq": N | null, "error": "...", "reason": "..."}`` when the message
      is rejected (``seq`` as far as the decoder could read it; ``reason`` the class that
      is counted), is dated more than ``max_future_s`` ahead of the collector's clock, or
      the database refused the record; ``"retry": true`` is added when the fault is not
      the record's (see :data:`RETRYABLE`): the sensor keeps it and sends it again.

    Messages over 16x the wire limit make ZeroMQ drop the connection (``MAXMSGSIZE``)
    instead of being read; smaller oversize ones are rejected with a reply.

Processing
    Queued messages are drained (up to ``max_batch``) and stored in one transaction, then
    acknowledged. If the database refuses the batch, its records are stored again one by
    one, so only the record at fault is refused. New detections are associated with
    emitters at once; touched emitters are re-located (from their detections of the last
    ``locate_window_s``) and all verdicts re-judged at most once per
    ``relocate_interval_s``, and once more when :meth:`Collector.run` ends. An emitter
    whose relocation fails is retried on the next passes and dropped after
    :data:`MAX_RELOCATE_FAILURES`. With ``pub_bind`` set, the live feed on a PUB socket
    carries each new detection (``[b"detection", json]``, with its emitter), each updated
    emitter (``[b"emitter", json]``) and each alert (``[b"alert", json]``).

    :meth:`Collector.run` does the re-locating and judging in a second thread, so a pass
    over many emitters never holds up receiving and acknowledging; that thread takes at
    most about half of the time (after a pass of D seconds it waits at least D), so under
    a heavy stream positions and verdicts lag instead of the ingest. :meth:`step` and
    :meth:`flush` called directly (tools, tests) do everything in the caller's thread.

Security
    With ``secret_key`` and ``enrolled_dir`` configured the ROUTER socket is a CurveZMQ
    server that admits only sensors whose public key is enrolled (:mod:`collector.auth`):
    an unknown key is refused at the handshake, logged and counted (``refused``). A key
    revoked while its sensor is connected is refused per message (reason
    ``not_enrolled``, nothing stored), and a record whose ``sensor_id`` is not the name
    its key was enrolled under is rejected (reason ``identity``).

Evidence
    Open evidence requests (:mod:`collector.evidence_ingest`: filed by operators, and by
    the collector for FM stations and GSM cells judged one of ``auto_verdicts``) go to every sensor heard
    from since start (or the one named), on the ROUTER socket beside the acknowledgements,
    and again every ``request_resend_s``. Sensors answer with ``evidence`` records (chunks
    of audio and IQ snippets): each is stored and acknowledged like a detection, and a
    snippet whose chunks are all in is joined, checked against its SHA-512 and kept as
    evidence of its detection (``[b"evidence", json]`` on the live feed).

Counters
    :meth:`Collector.stats` (and an ``event=stats`` log line every ``stats_interval_s``,
    and ``event=stopped`` at the end): received, stored, duplicates, rejected by reason,
    refused (CURVE handshakes), batches, and the outbox depth each sensor's newest
    heartbeat reported; evidence_chunks, evidence_kept and evidence_corrupt.

Rogue cells
    GSM downlink detections are associated by decoded identity (see
    :mod:`collector.association`) and kept as each cell's evidence
    (:class:`collector.cells.CellTracker`, the last ``evidence_window_s``); every pass scores
    each cell (:mod:`collector.rogue`) against the reference cells (the configured CSV and
    those imported into the database with ``rfhunt reference import``) and the baseline,
    which is learned from the history every ``baseline_interval_s``. A cell that becomes
    ``rogue`` raises an alert (:mod:`collector.alerts`): a row, a log line and, with
    ``pub_bind``, ``[b"alert", json]`` on the live feed, updated as the evidence grows.

Nothing a sensor sends stops the service: every failure is logged as ``key=value``
pairs and counted in :attr:`Collector.counters`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import zmq

from collector.alerts import AlertDesk
from collector.association import Association, associate_detections, plan_emitters
from collector.auth import SensorGate
from collector.baseline import learn_baseline
from collector.cells import CellTracker, Fix
from collector.config import CollectorConfig
from collector.evidence_ingest import assemble, auto_requests, drop_stale_parts, requests, store_chunks
from collector.fm_registry import EVIDENCE_HISTORY_S as FM_EVIDENCE_HISTORY_S
from collector.fm_registry import fm_evidence, load_fm_reference, registry_summary
from collector.goip import judge_uplink_emitters
from collector.judge import Judgement, judge
from collector.localize import locate
from collector.reference import Reference, load_reference
from collector.refindex import ReferenceIndex
from collector.rogue import RogueModel, judge_cells
from collector.store import DetectionRow, EmitterRow, Store
from rfhunt.errors import RfhuntError, StoreError, WireError
from rfhunt.records import MAX_MESSAGE_BYTES, Detection, EvidenceChunk, Heartbeat, decode, encode_request

log = logging.getLogger(__name__)

#: ZeroMQ drops peers sending messages larger than this (bytes) without reading them.
ZMQ_MAX_MESSAGE_BYTES = 16 * MAX_MESSAGE_BYTES

#: Relocation passes an emitter may fail before it is dropped from the pending set.
MAX_RELOCATE_FAILURES = 3

#: Rejections that are not the record's fault: the reply says ``"retry": true`` and the
#: sensor keeps the record in its outbox (the database refused it, or the sensor's key is
#: not enrolled now and may be again).
RETRYABLE = frozenset({"store", "not_enrolled", "internal"})

#: Longest an analysis pass waits for the ingest before locating its next emitter, s.
GIVE_WAY_MAX_S = 0.5


def relocate_emitters(
    store: Store, config: CollectorConfig, emitter_ids: Iterable[int], *, now_utc: float | None = None,
    tracker: CellTracker | None = None, pause: Callable[[], None] | None = None,
) -> tuple[set[int], dict[int, str]]:
    """Re-locate the given emitters from their recent detections.

    Each emitter is fitted from its detections of the ``config.locate_window_s`` seconds
    before its ``last_seen_utc``, with the EIRP prior ``config.eirp_dbm`` of its kind (when
    set) at its carrier's frequency. A failure of one emitter does not stop the others. With a
    ``tracker``, a GSM downlink cell not judged ``known`` is also located from its last
    ``config.motion_window_s`` of detections (when three positions or more heard it then),
    and that short-window position goes to the tracker as motion evidence. ``pause`` is
    called before each emitter (the running collector lets its ingest go first there).

    Returns
    -------
    located : set of int
        Ids of the emitters updated.
    failed : dict
        Emitter id -> ``"ExceptionType: message"`` for those whose relocation raised.
    """
    now = time.time() if now_utc is None else now_utc
    done: set[int] = set()
    failed: dict[int, str] = {}
    for emitter_id in sorted(set(emitter_ids)):
        if pause is not None:
            pause()
        try:
            if _relocate_one(store, config, emitter_id, now, tracker):
                done.add(emitter_id)
        except Exception as exc:  # noqa: BLE001 - one bad emitter must not stop the others
            failed[emitter_id] = f"{type(exc).__name__}: {exc}"
            log.error("relocate failed emitter=%d error=%r", emitter_id, failed[emitter_id])
    return done, failed


def _relocate_one(store: Store, config: CollectorConfig, emitter_id: int, now: float,
                  tracker: CellTracker | None = None) -> bool:
    """Locate one emitter and store the result; False if it has nothing to locate from."""
    em = store.emitter(emitter_id)
    if em is None or em.last_seen_utc is None:
        return False
    dets = store.detections(emitter_id=emitter_id, since_utc=em.last_seen_utc - config.locate_window_s)
    if not dets:
        return False
    n_exp = config.path_loss_exponent[em.kind]
    # the EIRP prior of the emitter's kind (None: off), at the carrier's frequency
    prior = {"eirp_prior_dbm": config.eirp_dbm.get(em.kind),
             "freq_hz": sorted(d.freq_hz for d in dets)[len(dets) // 2]}
    loc = locate(
        [d.sensor_lat for d in dets], [d.sensor_lon for d in dets], [d.power_dbm for d in dets],
        path_loss_exponent=n_exp, shadowing_db=config.shadowing_db, **prior,
    )
    store.update_emitter(
        emitter_id, lat=loc.lat, lon=loc.lon, semi_major_m=loc.semi_major_m, semi_minor_m=loc.semi_minor_m,
        orientation_deg=loc.orientation_deg, est_power_dbm=loc.p0_dbm, path_loss_exponent=n_exp,
        rms_residual_db=loc.rms_residual_db, underdetermined=loc.underdetermined, updated_utc=now,
    )
    log.info(
        "located emitter=%d kind=%s points=%d lat=%.6f lon=%.6f semi_major_m=%s underdetermined=%s",
        emitter_id, em.kind, loc.n_points, loc.lat, loc.lon,
        "none" if loc.semi_major_m is None else f"{loc.semi_major_m:.0f}", loc.underdetermined,
    )
    # motion evidence for cells not (yet) known to be the network's own
    if tracker is not None and em.kind == "gsm_downlink" and config.motion_window_s > 0 and em.verdict != "known":
        recent = [d for d in dets if d.t_utc >= em.last_seen_utc - config.motion_window_s]
        if len({(round(d.sensor_lat, 4), round(d.sensor_lon, 4)) for d in recent}) >= 3:
            fix = locate([d.sensor_lat for d in recent], [d.sensor_lon for d in recent],
                         [d.power_dbm for d in recent], path_loss_exponent=n_exp, shadowing_db=config.shadowing_db,
                         **prior)
            if not fix.underdetermined:
                tracker.record_fix(emitter_id, Fix(em.last_seen_utc, fix.lat, fix.lon, fix.semi_major_m))
    return True


def reference_index(store: Store, reference: Reference) -> ReferenceIndex:
    """The known network: ``reference``'s cells (which include the imported ones when the
    reference came from :func:`load_store_reference`) and the store's baseline."""
    return ReferenceIndex(reference.gsm_cells, store.baseline_cells())


def load_store_reference(store: Store, config: CollectorConfig) -> Reference:
    """The configured reference files plus the cells and the FM stations imported into the
    store (``rfhunt reference import``, ``rfhunt registry import``)."""
    return load_fm_reference(store, load_reference(config.gsm_csv, config.fm_registry_csv,
                                                   tuple(store.reference_cells())))


def knowledge_version(store: Store) -> tuple[Any, ...]:
    """What changes when reference cells or FM stations are imported into the store."""
    return (store.reference_summary(), registry_summary(store))


@dataclass
class SlowEvidence:
    """Judgement inputs that are costly to gather and change slowly, refreshed every
    ``slow_judge_interval_s``: GSM uplink verdicts from the GOIP place clustering (None when
    no uplink links with a timeslot are stored: the emitter-level fallback runs instead) and
    each FM emitter's evidence."""

    uplink_verdicts: dict[int, Judgement] | None
    fm_evidence: dict[int, Any]


def gather_slow_evidence(store: Store, emitters: list[EmitterRow], *, uplink_window_s: float = 3600.0,
                         goip_window_s: float = 86400.0) -> SlowEvidence:
    """The GOIP place verdicts of the last ``goip_window_s`` of uplink links (detections that
    carry a ``timeslot``) and the FM emitters' evidence (:func:`collector.fm_registry.fm_evidence`)."""
    uplink_verdicts = None
    newest_up = max((e.last_seen_utc or 0.0 for e in emitters if e.kind == "gsm_uplink"), default=None)
    if newest_up is not None:
        links = [d for d in store.detections(kind="gsm_uplink", since_utc=newest_up - goip_window_s)
                 if "timeslot" in d.features]
        if links:
            uplink_verdicts, _ = judge_uplink_emitters(emitters, uplink_window_s=uplink_window_s, detections=links)
    newest_fm = max((e.last_seen_utc or 0.0 for e in emitters if e.kind == "fm"), default=None)
    fm = {} if newest_fm is None else fm_evidence(store, emitters, since_utc=newest_fm - FM_EVIDENCE_HISTORY_S)
    return SlowEvidence(uplink_verdicts, fm)


def judge_store(store: Store, reference: Reference, *, uplink_window_s: float = 3600.0,
                tracker: CellTracker | None = None, index: ReferenceIndex | None = None,
                model: RogueModel | None = None, evidence_window_s: float = 6 * 3600.0,
                slow: SlowEvidence | None = None, goip_window_s: float = 86400.0,
                ) -> tuple[list[EmitterRow], dict[int, Judgement]]:
    """Judge every emitter of the store: (emitters, verdict of each).

    GSM downlink cells are scored from the ``tracker``'s evidence (read from the store when
    not given) against ``index`` (built from ``reference`` and the store's baseline when not
    given). GSM uplink and FM emitters are judged with ``slow`` (gathered now, over
    ``goip_window_s`` of uplink links, when not given; see :func:`gather_slow_evidence`).
    """
    emitters = store.emitters()
    if tracker is None:
        tracker = CellTracker(evidence_window_s)
        tracker.load(store)
    if index is None:
        index = reference_index(store, reference)
    mobile = {s.sensor_id for s in store.sensors() if s.mobile}
    cells = judge_cells(emitters, tracker, index, model=model or RogueModel(), mobile_sensors=mobile)
    if slow is None:
        slow = gather_slow_evidence(store, emitters, uplink_window_s=uplink_window_s, goip_window_s=goip_window_s)
    return emitters, judge(emitters, reference, uplink_window_s=uplink_window_s, cells=cells,
                           uplink_verdicts=slow.uplink_verdicts, fm_evidence=slow.fm_evidence)


def store_verdicts(store: Store, emitters: list[EmitterRow], verdicts: dict[int, Judgement], now_utc: float
                   ) -> set[int]:
    """Store the verdicts that changed; return the ids of those emitters."""
    changed = set()
    for em in emitters:
        j = verdicts.get(em.id)
        if j is None or (j.verdict == em.verdict and j.reasons == em.reasons and j.score == em.score
                         and tuple(j.indicators) == em.indicators and j.identity == em.identity):
            continue
        store.update_emitter(em.id, verdict=j.verdict, reasons=list(j.reasons), score=j.score,
                             indicators=None if j.score is None else list(j.indicators), identity=j.identity,
                             updated_utc=now_utc)
        if j.verdict != em.verdict:
            log.info("verdict emitter=%d kind=%s verdict=%s score=%s reason=%r", em.id, em.kind, j.verdict,
                     "none" if j.score is None else f"{j.score:.1f}", j.reasons[0] if j.reasons else "")
        changed.add(em.id)
    return changed


def rejudge(store: Store, reference: Reference, *, uplink_window_s: float = 3600.0,
            now_utc: float | None = None, tracker: CellTracker | None = None,
            model: RogueModel | None = None) -> set[int]:
    """Judge every emitter again; store and return the ids whose verdict or reasons changed.

    ``uplink_window_s`` is passed on to :func:`collector.judge.judge`; see
    :func:`judge_store` for ``tracker`` and ``model``.
    """
    now = time.time() if now_utc is None else now_utc
    emitters, verdicts = judge_store(store, reference, uplink_window_s=uplink_window_s, tracker=tracker,
                                     model=model)
    return store_verdicts(store, emitters, verdicts, now)


def detection_json(det: DetectionRow) -> dict[str, Any]:
    """A stored detection as a JSON-ready dict (the live feed's payload)."""
    return asdict(det)


def emitter_json(em: EmitterRow) -> dict[str, Any]:
    """An emitter as a JSON-ready dict (the live feed's payload)."""
    out = asdict(em)
    out["reasons"] = list(em.reasons)
    return out


class Collector:
    """The receiving service. Binds its sockets on construction.

    Parameters
    ----------
    config : CollectorConfig
    store : Store, optional
        An open store to use instead of opening ``config.db_url`` (not closed by :meth:`close`).
    context : zmq.Context, optional
        ZeroMQ context (default: the process-wide instance).

    Raises
    ------
    StoreError, ConfigError
        If the store cannot be opened or a reference file is bad.
    rfhunt.errors.RfhuntError
        If an endpoint cannot be bound (message names it).
    """

    def __init__(self, config: CollectorConfig, *, store: Store | None = None, context: zmq.Context | None = None):
        self.config = config
        load_reference(config.gsm_csv, config.fm_registry_csv)  # a bad file fails before the store opens
        self._own_store = store is None
        self.store = Store.open(config.db_url) if store is None else store
        try:
            self.reference = load_store_reference(self.store, config)
        except Exception:
            if self._own_store:
                self.store.close()
            raise
        self._reference_seen = knowledge_version(self.store)
        self._slow: SlowEvidence | None = None
        self._slow_ids: set[int] = set()
        self._last_slow = -math.inf
        self.model = RogueModel(suspicious_score=config.suspicious_score, rogue_score=config.rogue_score)
        self.tracker = CellTracker(config.evidence_window_s)
        self.tracker.load(self.store)
        self._index: ReferenceIndex | None = None
        self._last_baseline = time.monotonic()
        self._last_reference_check = time.monotonic()
        self.counters: dict[str, Any] = {"received": 0, "stored": 0, "duplicates": 0, "rejected": {}, "batches": 0,
                                         "evidence_chunks": 0, "evidence_kept": 0, "evidence_corrupt": 0}
        self._peers: dict[str, bytes] = {}  # sensor -> ROUTER identity it last sent from
        self._requests_sent: dict[tuple[int, str], float] = {}  # (request, sensor) -> monotonic time sent
        self._last_request_poll = -math.inf
        self._lock = threading.Lock()
        self._state_lock = threading.RLock()  # _pending, the tracker and the feed's queue
        self._worker: threading.Thread | None = None
        self._outbox_depths: dict[str, int] = {}  # sensor -> outbox depth of its newest heartbeat
        self._sweep_all = True  # the next association pass reads every unassociated detection
        self.store.keep_new_detections()
        self._ingest_busy_until = 0.0  # monotonic time until which the ingest counts as busy
        self._fresh: list[Association] = []  # associations the analysis thread has not seen yet
        self._pending: set[int] = set()
        self._relocate_failures: dict[int, int] = {}
        self._last_relocate = 0.0
        ctx = context or zmq.Context.instance()
        self.gate: SensorGate | None = None
        if config.secret_key is not None:
            try:
                self.gate = SensorGate(ctx, config.secret_key, config.enrolled_dir)
            except Exception:
                if self._own_store:
                    self.store.close()
                raise
        self._router = ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 1000)
        self._router.setsockopt(zmq.MAXMSGSIZE, ZMQ_MAX_MESSAGE_BYTES)
        # a sensor that comes back after a cut may find its old connection still open here
        # (half-dead: the heartbeat has not timed it out yet); its new one takes over, or the
        # ROUTER would drop everything it sends under the identity still in use
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # acknowledgements queue per sensor while it is slow to read them; past ZeroMQ's
        # default of 1,000 the ROUTER drops them silently and the sensor resends for nothing
        self._router.setsockopt(zmq.SNDHWM, 100_000)
        self._router.setsockopt(zmq.HEARTBEAT_IVL, 5000)  # ZMTP pings find dead peers
        self._router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15000)
        if self.gate is not None:
            self.gate.secure(self._router)
        self._pub: zmq.Socket | None = None
        self._pub_lock = threading.Lock()
        try:
            self._router.bind(config.bind)
            if config.pub_bind:
                self._pub = ctx.socket(zmq.PUB)
                self._pub.setsockopt(zmq.LINGER, 0)
                self._pub.bind(config.pub_bind)
        except zmq.ZMQError as exc:
            self._close_sockets()
            if self.gate is not None:
                self.gate.stop()
            if self._own_store:
                self.store.close()
            raise RfhuntError(f"cannot bind collector endpoint {config.bind} / {config.pub_bind}: {exc}") from None
        self.endpoint: str = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pub_endpoint: str | None = self._pub.getsockopt_string(zmq.LAST_ENDPOINT) if self._pub else None
        self._poller = zmq.Poller()
        self._poller.register(self._router, zmq.POLLIN)
        self.alerts = AlertDesk(self.store, self._publish if self._pub is not None else None)
        log.info("collector bound endpoint=%s pub=%s store=%s curve=%s", self.endpoint, self.pub_endpoint,
                 self.store.url, "on" if self.gate else "off")

    def _publish(self, topic: bytes, payload: dict[str, Any]) -> None:
        """One message on the live feed (dropped with a warning if the socket is full)."""
        if self._pub is None:
            return
        try:
            with self._pub_lock:  # both threads publish (detections and alerts, evidence)
                self._pub.send_multipart([topic, json.dumps(payload).encode()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("publish dropped topic=%s error=%r", topic.decode(), str(exc))

    # ---------------------------------------------------------------- counters
    def stats(self) -> dict[str, Any]:
        """A copy of the counters: received, stored, duplicates, rejected {reason class: n},
        batches (transactions), outbox_depth {sensor: records waiting in its outbox, from its
        newest heartbeat}, and with CURVE refused / admitted handshakes."""
        with self._lock:
            out = copy.deepcopy(self.counters)
            out["outbox_depth"] = dict(self._outbox_depths)
        if self.gate is not None:
            out.update(self.gate.counters())
        return out

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def _reject(self, identity: bytes, reason_cls: str, error: str, seq: int | None) -> None:
        with self._lock:
            rej = self.counters["rejected"]
            rej[reason_cls] = rej.get(reason_cls, 0) + 1
        log.warning("rejected peer=%s reason=%s seq=%s error=%r", identity.hex(), reason_cls, seq, error)
        body: dict[str, Any] = {"ok": False, "seq": seq, "error": error, "reason": reason_cls}
        if reason_cls in RETRYABLE:
            body["retry"] = True  # not the record's fault: the sensor keeps it and sends it again
        self._reply(identity, body)

    def _reply(self, identity: bytes, body: dict[str, Any]) -> None:
        try:
            self._router.send_multipart([identity, json.dumps(body).encode()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # peer gone or its queue full: it will resend
            log.warning("reply dropped peer=%s error=%r", identity.hex(), str(exc))

    # ---------------------------------------------------------------- the loop
    def run(self, stop_event: threading.Event, poll_timeout_ms: int = 100) -> None:
        """Serve until ``stop_event`` is set; then store and acknowledge what has arrived,
        and locate and judge what is still pending.

        Receiving, storing and associating run in this thread; re-locating and judging in
        a second one (see the module notes).
        """
        log.info("collector running endpoint=%s", self.endpoint)
        done = threading.Event()
        self._worker = threading.Thread(target=self._analysis_loop, args=(done,), name="collector-analysis",
                                        daemon=True)
        self._worker.start()
        last_stats = time.monotonic()
        try:
            while not stop_event.is_set():
                try:
                    self.step(poll_timeout_ms)
                except Exception:  # noqa: BLE001 - log a bug, keep serving
                    log.exception("collector step failed; going on")
                    stop_event.wait(poll_timeout_ms / 1000.0)
                if time.monotonic() - last_stats >= self.config.stats_interval_s:
                    last_stats = time.monotonic()
                    log.info("event=stats %s", self._summary())
            # what has arrived is stored and acknowledged before stopping (the sensors
            # resend anything later, so nothing in flight is lost either way)
            while self._router.poll(0) and self._handle_batch():
                pass
            self._sweep_all = True
            self._associate()  # anything a failed association pass left behind
        finally:
            done.set()
            self._worker.join()
            self._worker = None
        self.flush(final=True)
        log.warning("event=stopped %s", self._summary())  # shown at the default log level too

    def _analysis_loop(self, done: threading.Event) -> None:
        """Re-locate and judge every ``relocate_interval_s`` while there is work, resting
        after each pass at least as long as it took."""
        rest = self.config.relocate_interval_s
        while not done.wait(rest):
            with self._state_lock:
                idle = not self._pending and not self._fresh
            if idle:
                rest = self.config.relocate_interval_s
                continue
            t0 = time.monotonic()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - log a bug, try again on the next pass
                log.exception("analysis pass failed; going on")
            took = time.monotonic() - t0
            rest = max(self.config.relocate_interval_s - took, took)
            if took > self.config.relocate_interval_s:
                log.info("event=analysis_pass seconds=%.2f rest_s=%.2f", took, rest)

    def _give_way(self) -> None:
        """Between two emitters of an analysis pass: wait while batches keep arriving, but
        go on after ``GIVE_WAY_MAX_S`` so that positions lag a busy stream, never stop."""
        t0 = time.monotonic()
        while time.monotonic() < self._ingest_busy_until and time.monotonic() - t0 < GIVE_WAY_MAX_S:
            time.sleep(0.005)

    def step(self, timeout_ms: int = 100) -> int:
        """Wait up to ``timeout_ms`` for messages, handle a batch; return messages read.

        Outside :meth:`run`, also re-locates and judges when that is due."""
        n = 0
        if self._poller.poll(timeout_ms):
            n = self._handle_batch()
        self._send_requests()
        if self._worker is None and self._pending and \
                time.monotonic() - self._last_relocate >= self.config.relocate_interval_s:
            self.flush()
        return n

    def flush(self, now_utc: float | None = None, *, final: bool = False) -> None:
        """Re-locate the emitters touched since the last pass and re-judge; raise or update
        alerts; publish changes. ``now_utc`` dates the updates (default: the clock);
        ``final`` (the pass as the service stops) also refreshes the slow evidence."""
        now = time.time() if now_utc is None else now_utc
        with self._state_lock:
            fresh, self._fresh = self._fresh, []
            pending, self._pending = self._pending, set()
        self._apply(fresh)
        self._sweep_all = True  # now and then, also what other writers of the database left unassociated
        self._last_relocate = time.monotonic()
        in_worker = self._worker is not None and threading.current_thread() is self._worker
        located, failed = relocate_emitters(self.store, self.config, pending, now_utc=now, tracker=self.tracker,
                                            pause=self._give_way if in_worker else None)
        retry = set()
        for emitter_id in located:
            self._relocate_failures.pop(emitter_id, None)
        for emitter_id, error in failed.items():
            n = self._relocate_failures.get(emitter_id, 0) + 1
            if n < MAX_RELOCATE_FAILURES:
                self._relocate_failures[emitter_id] = n
                retry.add(emitter_id)
            else:
                self._relocate_failures.pop(emitter_id, None)
                log.error("relocate gave up emitter=%d failures=%d error=%r", emitter_id, n, error)
        if retry:
            with self._state_lock:
                self._pending |= retry
        try:
            self._refresh_knowledge()
        except Exception as exc:  # noqa: BLE001 - the old knowledge stays; tried again later
            log.error("reference or baseline refresh failed error=%r", _describe(exc))
        changed: set[int] = set()
        try:
            self.tracker.prune()
            emitters = self.store.emitters()
            slow_ids = {e.id for e in emitters if e.kind in ("fm", "gsm_uplink")}
            if (self._slow is None or final or slow_ids != self._slow_ids
                    or time.monotonic() - self._last_slow >= self.config.slow_judge_interval_s):
                # also at once when an FM or uplink emitter appears: it is judged with evidence
                self._slow = gather_slow_evidence(self.store, emitters, uplink_window_s=self.config.uplink_window_s,
                                                  goip_window_s=self.config.goip_window_s)
                self._last_slow, self._slow_ids = time.monotonic(), slow_ids
            emitters, verdicts = judge_store(self.store, self.reference, uplink_window_s=self.config.uplink_window_s,
                                             tracker=self.tracker, index=self.index, model=self.model,
                                             slow=self._slow)
            changed = store_verdicts(self.store, emitters, verdicts, now)
            fresh_cells = {e.id: e for e in self.store.emitters(kind="gsm_downlink")}
            self.alerts.update(list(fresh_cells.values()), verdicts, now)
        except Exception as exc:  # noqa: BLE001 - judged again on the next pass
            log.error("rejudge failed error=%r", _describe(exc))
            verdicts = {}
        try:
            if self.config.auto_verdicts and verdicts:
                # requests are dated by this clock, which sensors' expiry and the sending follow
                # (``now`` may be a replay's)
                auto_requests(self.store, emitters, verdicts, time.time(), ttl_s=self.config.request_ttl_s,
                              seconds=self.config.snippet_s, gsm_seconds=self.config.gsm_snippet_s,
                              verdict_set=self.config.auto_verdicts)
            drop_stale_parts(self.store, time.time())
        except StoreError as exc:  # tried again on the next pass
            log.error("evidence bookkeeping failed error=%r", str(exc))
        self._assemble(None)  # snippets whose detection came after their last chunk
        if self._pub is not None:
            for emitter_id in sorted(located | changed):
                em = self.store.emitter(emitter_id)
                if em is not None:
                    self._publish(b"emitter", emitter_json(em))

    @property
    def index(self) -> ReferenceIndex:
        """The known network the cells are judged against (rebuilt when it changes)."""
        if self._index is None:
            self._index = reference_index(self.store, self.reference)
        return self._index

    def _refresh_knowledge(self, force: bool = False) -> None:
        """Reload the reference when cells were imported, and learn the baseline when due."""
        t = time.monotonic()
        if force or t - self._last_reference_check >= 30.0:
            self._last_reference_check = t
            seen = knowledge_version(self.store)
            if seen != self._reference_seen:
                self._reference_seen = seen
                self.reference = load_store_reference(self.store, self.config)
                self._index = None
                self._slow = None
                log.info("reference reloaded cells=%d fm_stations=%d", len(self.reference.gsm_cells),
                         len(self.reference.fm_stations))
        if self.config.baseline_interval_s > 0 and (force or t - self._last_baseline >= self.config.baseline_interval_s):
            self._last_baseline = t
            self.learn_baseline()

    def learn_baseline(self, now_utc: float | None = None) -> int:
        """Learn the baseline from the history now (see :mod:`collector.baseline`)."""
        n = learn_baseline(self.store, now_utc=now_utc, min_span_s=self.config.baseline_min_span_s)
        self._index = None
        return n

    def ingest(self, records: Iterable[Detection | Heartbeat]) -> list[bool]:
        """Store records and associate new detections, as a received batch is (for replays and
        tools that feed the collector in-process). Returns per record: stored, or a duplicate."""
        flags = self.store.add_batch(list(records))
        if any(flags):
            self._associate()
        return flags

    def _associate(self) -> None:
        """Associate the detections just stored (those this store inserted; every unassociated
        one in the database on the first pass and after a failure).

        From the first pass on, the store attaches each batch's detections to their emitters
        as it inserts them (:func:`collector.association.plan_emitters`), so this pass only
        reports them and moves older power measurements to cells decoded after them."""
        new = self.store.take_new_detections()
        try:
            res = associate_detections(self.store, pending=new, sweep=self._sweep_all)
            self._sweep_all = False
        except Exception as exc:  # noqa: BLE001 - retried with the next new detection
            log.error("association failed error=%r", _describe(exc))
            self._sweep_all = True  # the next pass reads every unassociated detection
            res = Association()  # those attached as they were stored still count
            for d in new:
                if d.emitter_id is not None:
                    res.added.setdefault(d.emitter_id, []).append(d)
            if not res.added:
                return
        self.store.keep_new_detections(assign=plan_emitters)
        with self._state_lock:
            self._pending |= res.touched
            self._pending -= res.deleted
            if self._worker is not None:  # the analysis thread owns the tracker and the feed
                self._fresh.append(res)
                return
        self._apply([res])

    def _apply(self, results: list[Association]) -> None:
        """Give association results to the cell tracker and publish the new detections."""
        for res in results:
            try:
                self.tracker.update(self.store, res)
            except Exception as exc:  # noqa: BLE001 - the evidence is read again on a restart
                log.error("evidence update failed error=%r", _describe(exc))
            if self._pub is not None:
                for emitter_id, rows in res.added.items():
                    if emitter_id in res.deleted:
                        continue
                    for d in rows:
                        self._publish(b"detection", detection_json(d))

    def _handle_batch(self) -> int:
        batch: list[tuple[bytes, Detection | Heartbeat]] = []
        n = 0
        gate = self.gate
        while n < self.config.max_batch:
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=gate is None)
            except zmq.Again:
                break
            n += 1
            user = None
            if gate is not None:
                user = frames[-1].get("User-Id")
                frames = [f.bytes for f in frames]
            identity, payload = frames[0], frames[1:]
            if len(payload) != 1:
                self._reject(identity, "framing", f"expected 1 frame, got {len(payload)}", None)
                continue
            if gate is not None and not gate.is_enrolled(user):
                self._reject(identity, "not_enrolled", f"the key {user} is not enrolled (revoked?)", None)
                continue
            try:
                rec = decode(payload[0])
            except WireError as exc:
                self._reject(identity, exc.reason, str(exc), exc.seq)
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill the service
                log.exception("decoder failed peer=%s", identity.hex())
                self._reject(identity, "internal", f"{type(exc).__name__}: {exc}", None)
                continue
            if gate is not None:
                name = gate.name_of(user)
                if name != rec.sensor_id:
                    self._reject(identity, "identity", f"sensor_id {rec.sensor_id!r} is not the name its key was "
                                 f"enrolled under ({name!r})", rec.seq)
                    continue
            ahead_s = rec.t_utc - time.time()
            if ahead_s > self.config.max_future_s:
                self._reject(identity, "future", f"t_utc {rec.t_utc} of {rec.sensor_id} is {ahead_s:.0f} s ahead "
                             f"of the collector's clock (limit {self.config.max_future_s:.0f} s)", rec.seq)
                continue
            batch.append((identity, rec))
        if n:
            self._count("received", n)  # once per batch, not per message (a lock each)
        if batch:
            self._store_batch(batch)
        if n:
            self._ingest_busy_until = time.monotonic() + 0.05
        return n

    def _store_batch(self, batch: list[tuple[bytes, Detection | Heartbeat]]) -> None:
        """Store a batch in one transaction; if that fails, record by record, so that only
        the records the database refuses are rejected."""
        for identity, rec in batch:
            self._peers[rec.sensor_id] = identity
        if any(isinstance(rec, EvidenceChunk) for _, rec in batch):
            # the detections first: a snippet's chunks come right after its detection, and
            # are joined at once only if that is stored already
            chunks = [(i, r) for i, r in batch if isinstance(r, EvidenceChunk)]
            rest = [(i, r) for i, r in batch if not isinstance(r, EvidenceChunk)]
            if rest:
                self._store_batch(rest)
            self._store_chunks(chunks)
            return
        try:
            flags: list[bool | None] = list(self.store.add_batch([rec for _, rec in batch]))
        except Exception as exc:  # noqa: BLE001 - find the record at fault below
            log.warning("batch refused batch=%d error=%r; storing one by one", len(batch), _describe(exc))
            flags = [self._store_one(identity, rec) for identity, rec in batch]
        done = [(identity, rec, ok) for (identity, rec), ok in zip(batch, flags) if ok is not None]
        stored = sum(1 for *_, ok in done if ok)
        with self._lock:
            self.counters["stored"] += stored
            self.counters["duplicates"] += len(done) - stored
            self.counters["batches"] += 1
        router, more, last = self._router, int(zmq.NOBLOCK | zmq.SNDMORE), int(zmq.NOBLOCK)
        for identity, rec, ok in done:
            # the bytes json.dumps({"ok": True, "seq": seq, "dup": not ok}) gives, at a fifth of the cost
            body = b'{"ok": true, "seq": %d, "dup": %s}' % (rec.seq, b"false" if ok else b"true")
            try:
                router.send(identity, more)
                router.send(body, last)
            except zmq.ZMQError as exc:  # peer gone or its queue full: it will resend
                log.warning("reply dropped peer=%s error=%r", identity.hex(), str(exc))
            if ok and isinstance(rec, Heartbeat) and rec.outbox_depth is not None:
                with self._lock:
                    self._outbox_depths[rec.sensor_id] = rec.outbox_depth
        log.debug("stored batch=%d new=%d dup=%d refused=%d", len(batch), stored, len(done) - stored,
                  len(batch) - len(done))
        if any(ok and isinstance(rec, Detection) for _, rec, ok in done):
            self._associate()

    def _store_one(self, identity: bytes, rec: Detection | Heartbeat) -> bool | None:
        """Store one record; True stored, False duplicate, None refused (and replied)."""
        try:
            return self.store.add_batch([rec])[0]
        except StoreError as exc:
            self._reject(identity, "store", str(exc), rec.seq)
        except Exception as exc:  # noqa: BLE001 - e.g. a driver's UnicodeEncodeError
            self._reject(identity, "store", f"database {self.store.url} refused the record: {_describe(exc)}",
                         rec.seq)
        return None

    def _store_chunks(self, chunks: list[tuple[bytes, EvidenceChunk]]) -> None:
        """Store evidence chunks (one transaction), acknowledge them, keep the snippets
        they complete."""
        now = time.time()
        try:
            flags = store_chunks(self.store, [c for _, c in chunks], now)
        except StoreError as exc:
            for identity, c in chunks:
                self._reject(identity, "store", str(exc), c.seq)
            return
        with self._lock:
            self.counters["evidence_chunks"] += sum(flags)
            self.counters["duplicates"] += len(flags) - sum(flags)
        for (identity, c), new in zip(chunks, flags):
            self._reply(identity, {"ok": True, "seq": c.seq, "dup": not new})
        if any(flags):
            self._assemble({c.sensor_id for (_, c), new in zip(chunks, flags) if new})

    def _assemble(self, sensors: set[str] | None) -> None:
        """Keep the snippets whose chunks are all in (``None``: look at every sensor's)."""
        try:
            res = assemble(self.store, time.time(), sensors=sensors)
        except StoreError as exc:  # the parts stay; the periodic pass tries again
            log.error("evidence assembly failed error=%r", str(exc))
            return
        with self._lock:
            self.counters["evidence_kept"] += len(res.kept)
            self.counters["evidence_corrupt"] += res.corrupt
        for row in res.kept:
            self._publish(b"evidence", {"id": row.id, "detection_id": row.detection_id, "emitter_id": row.emitter_id,
                                        "kind": row.kind, "sensor_id": row.sensor_id, "t_utc": row.t_utc,
                                        "seconds": row.n_samples / row.sample_rate_hz, "sha512": row.sha512})

    def _send_requests(self) -> None:
        """Send the open evidence requests to the sensors heard from (in the receiving thread:
        the ROUTER socket is not shared)."""
        if time.monotonic() - self._last_request_poll < min(5.0, self.config.request_resend_s):
            return
        self._last_request_poll = time.monotonic()
        if not self._peers:
            return
        try:
            open_reqs = requests(self.store, time.time(), open_only=True)
        except StoreError as exc:
            log.error("evidence requests unreadable error=%r", str(exc))
            return
        live = {r.id for r in open_reqs}
        self._requests_sent = {k: v for k, v in self._requests_sent.items() if k[0] in live}
        for req in open_reqs:
            payload = encode_request(req.wire())
            for sensor_id, identity in list(self._peers.items()):
                if req.sensor_id is not None and req.sensor_id != sensor_id:
                    continue
                last = self._requests_sent.get((req.id, sensor_id))
                if last is not None and time.monotonic() - last < self.config.request_resend_s:
                    continue
                try:
                    self._router.send_multipart([identity, payload], zmq.NOBLOCK)
                except zmq.ZMQError as exc:  # peer gone: sent again when it is back
                    log.debug("request dropped sensor=%s error=%r", sensor_id, str(exc))
                    continue
                self._requests_sent[(req.id, sensor_id)] = time.monotonic()
                if last is None:
                    log.info("event=evidence_request_sent request=%s sensor=%s freq_hz=%.0f", req.request_id,
                             sensor_id, req.freq_hz)

    def _summary(self) -> str:
        s = self.stats()
        rej = " ".join(f"rejected_{k}={v}" for k, v in sorted(s["rejected"].items()))
        with self._state_lock:
            pending = len(self._pending)
        extra = f" refused={s['refused']} admitted={s['admitted']}" if "refused" in s else ""
        return (f"received={s['received']} stored={s['stored']} duplicates={s['duplicates']} "
                f"rejected={sum(s['rejected'].values())} batches={s['batches']} pending_emitters={pending} "
                f"sensors_reporting={len(s['outbox_depth'])} outbox_depth={sum(s['outbox_depth'].values())}"
                f" evidence_chunks={s['evidence_chunks']} evidence_kept={s['evidence_kept']}"
                f" evidence_corrupt={s['evidence_corrupt']}"
                f"{extra} {rej}").strip()

    # ---------------------------------------------------------------- shutdown
    def _close_sockets(self) -> None:
        self._router.close()
        if self._pub is not None:
            self._pub.close()

    def close(self) -> None:
        """Close the sockets, stop the CURVE gate and (if this collector opened it) the store."""
        self._close_sockets()
        if self.gate is not None:
            self.gate.stop()
        self.store.keep_new_detections(False)
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    """``"ExceptionType: message"`` for logs and replies."""
    return f"{type(exc).__name__}: {exc}"
