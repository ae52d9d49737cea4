"""A sensor node: sweep the configured bands on a schedule and publish what is found."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dsp.plan import Hop
from dsp.bands import FM_RASTER_HZ, GSM_CHANNEL_HZ
from rfhunt.errors import RfhuntError, SourceError, WireError
from rfhunt.records import Detection, EvidenceChunk, EvidenceRequest, Heartbeat, evidence_chunks
from sensors.config import SensorConfig
from sensors.gps import PositionProvider
from sensors.scan import estimate_ppm, hops_for, scan_band, sweep_gsm_band
from sensors.sources.base import IQSource

log = logging.getLogger("rfhunt.sensor")


@dataclass
class NodeStats:
    scans_done: int = 0
    detections: int = 0
    errors: int = 0


class SensorNode:
    """Runs scans on ``source`` and hands records to ``emit`` (a publisher's ``send``).

    Parameters
    ----------
    config : SensorConfig
    source : IQSource
    position : PositionProvider
    emit : callable
        Called with each :class:`Detection` and :class:`Heartbeat`.
    clock : callable, optional
        Unix time now; defaults to the source's clock when it has one (simulated sources),
        else the wall clock.
    outbox_depth : callable, optional
        Records waiting in the outbox for the collector's acknowledgement (a publisher's
        ``pending``); reported in each heartbeat.
    requests : callable, optional
        Returns the collector's new evidence requests (a publisher's ``take_requests``).
        A request is served by the next decode scan of its kind that finds its carrier (the
        FM monitor: audio and channel IQ; a GSM decode: the cell's channel IQ): the
        detection is followed by its snippets (as asked) as
        :class:`~rfhunt.records.EvidenceChunk` records; a request is served once, and
        dropped unserved when it expires (by this machine's clock).
    first_seq : int, optional
        The lowest sequence number this run may use: the outbox's persisted counter (a
        publisher's ``next_seq()``), so that numbers never repeat across restarts even when
        the clock was set back.
    """

    def __init__(self, config: SensorConfig, source: IQSource, position: PositionProvider,
                 emit: Callable[[Detection | Heartbeat | EvidenceChunk], None], *, clock: Callable[[], float] | None = None,
                 outbox_depth: Callable[[], int] | None = None,
                 requests: Callable[[], list[EvidenceRequest]] | None = None,
                 first_seq: int | None = None) -> None:
        self.config = config
        self.source = source
        self.pos = position
        self.emit = emit
        self._outbox_depth = outbox_depth
        self._take_requests = requests
        self._requests: dict[str, EvidenceRequest] = {}  # open evidence requests by id
        self.clock = clock or (lambda: getattr(source, "t_utc", None) or time.time())
        # The collector stores each (sensor_id, seq) once, so a restarted node must not reuse
        # numbers: they count up by one from the start-up time in microseconds (wall clock,
        # also for a simulated source), or from the outbox's persisted counter when that is
        # higher (a node without a real-time clock may boot with its clock behind: numbers
        # from the clock alone would repeat old ones, and the collector would drop the new
        # records as duplicates).
        self.seq = max(time.time_ns() // 1000, first_seq if first_seq is not None else 0) - 1
        self.ppm = config.ppm
        self.stats = NodeStats()
        self._plans: dict[str, list[Hop]] = {spec.band: hops_for(spec) for spec in config.scans}
        self._carriers: dict[str, np.ndarray] = {}  # band -> carriers of its latest power sweep
        self._last_hb = -float("inf")
        self._gsmtap_sender = None
        if config.gsmtap:
            from sensors.gsmtap import GsmtapSender

            self._gsmtap_sender = GsmtapSender(config.gsmtap)

    def _gsmtap(self, frame) -> None:
        """Send a decoded GSM frame as GSMTAP when the configuration asks for it."""
        if self._gsmtap_sender is None:
            return
        from sensors.gsmtap import GsmtapFrame

        try:
            self._gsmtap_sender.send(GsmtapFrame(frame.arfcn or 0, frame.timeslot, frame.fn, frame.channel,
                                                 frame.payload, snr_db=frame.snr_db))
        except OSError as exc:  # a missing listener must not stop the scans
            log.warning("event=gsmtap_failed sensor=%s reason=%s", self.config.sensor_id, exc)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def heartbeat(self) -> None:
        try:
            lat, lon = self.pos.position()
        except SourceError as exc:
            log.warning("event=no_position sensor=%s reason=%s", self.config.sensor_id, exc)
            return
        st = self.source.status
        depth = None if self._outbox_depth is None else int(self._outbox_depth())
        self.emit(Heartbeat(self.config.sensor_id, self._next_seq(), self.clock(), lat, lon, self.pos.mobile,
                            st.state, st.samples_read, st.dropped_samples, self.stats.scans_done, depth))
        self._last_hb = self.clock()

    def _update_ppm(self, found) -> float | None:
        residual = estimate_ppm(found) if self.config.track_ppm else None
        if residual is not None and abs(residual) > 0.5:
            self.ppm += residual
            log.info("event=ppm_update sensor=%s ppm=%.2f", self.config.sensor_id, self.ppm)
        return residual

    def _update_ppm_from_fcch(self, cells) -> None:
        """Refine the LO estimate from decoded cells: their FCCH offsets (base stations hold
        +-0.05 ppm) measure what is left of the tuner's error, far better than spectra do."""
        seen = [m.features["receiver_ppm"] for m in cells if m.features.get("receiver_ppm") is not None]
        if self.config.track_ppm and seen:
            self.ppm -= float(np.median(seen))  # an LO running high shows the carriers low
            log.info("event=ppm_update source=fcch sensor=%s ppm=%.3f", self.config.sensor_id, self.ppm)

    def calibrate(self, max_sweeps: int = 6) -> None:
        """Sweep the GSM downlink without publishing until the LO estimate settles.

        An RTL-SDR's crystal may be tens of ppm off: 45 ppm moves GSM900 carriers by 42 kHz,
        and until that is corrected a strong carrier's skirt can pass for its neighbour.
        """
        spec = next((s for s in self.config.scans if s.kind == "gsm_downlink"), None) \
            if self.config.track_ppm else None
        if spec is None:
            return
        for _ in range(max_sweeps):
            found, _ = scan_band(self.source, spec, calibration_db=self.config.calibration_db,
                                 hops=self._plans[spec.band], ppm=self.ppm)
            residual = self._update_ppm(found)
            if residual is None or abs(residual) <= 1.0:
                break
        log.info("event=calibrated sensor=%s ppm=%.2f", self.config.sensor_id, self.ppm)

    def scan_once(self) -> int:
        """One sweep of every configured band; returns the number of detections published."""
        n = 0
        for spec in self.config.scans:
            if spec.decode and spec.kind == "fm":
                if self.stats.scans_done % spec.every:
                    continue
                from sensors.fm_scan import sweep_fm_band  # the FM monitor: long dwells, RDS

                asked = self._open_requests("fm")
                seconds = max((r.seconds for r in asked), default=5.0)
                sweep = sweep_fm_band(self.source, spec, calibration_db=self.config.calibration_db,
                                      hops=self._plans[spec.band], ppm=self.ppm,
                                      near_freqs_hz=self._carriers.get(spec.band),
                                      snippet_freqs_hz=np.array([r.freq_hz for r in asked]), snippet_seconds=seconds)
                found, dropped, snippets = sweep.found, sweep.dropped, sweep.snippets
            elif spec.decode:
                if self.stats.scans_done % spec.every:
                    continue
                asked = self._open_requests(spec.kind)
                seconds = max((r.seconds for r in asked), default=2.0)
                gsweep = sweep_gsm_band(self.source, spec, calibration_db=self.config.calibration_db,
                                        hops=self._plans[spec.band], ppm=self.ppm,
                                        near_freqs_hz=self._carriers.get(spec.band), on_frame=self._gsmtap,
                                        snippet_freqs_hz=np.array([r.freq_hz for r in asked]),
                                        snippet_seconds=seconds)
                found, dropped, snippets = gsweep.found, gsweep.dropped, gsweep.snippets
                self._update_ppm_from_fcch(found)
            else:
                snippets = {}
                found, dropped = scan_band(self.source, spec, calibration_db=self.config.calibration_db,
                                           hops=self._plans[spec.band], ppm=self.ppm)
                self._carriers[spec.band] = np.array([m.freq_hz for m in found])
                self._update_ppm(found)
            if dropped:
                log.warning("event=dropped_samples sensor=%s band=%s samples=%d", self.config.sensor_id,
                            spec.band, dropped)
            try:
                lat, lon = self.pos.position()
            except SourceError as exc:
                log.warning("event=no_position sensor=%s reason=%s detections_discarded=%d",
                            self.config.sensor_id, exc, len(found))
                continue
            for i, m in enumerate(found):
                feats = {**m.features, "sensor_ppm": round(self.ppm, 2)}
                det = Detection(self.config.sensor_id, self._next_seq(), m.t_utc, lat, lon, m.kind,
                                m.freq_hz, m.channel, m.bandwidth_hz, m.power_dbm, m.snr_db, feats)
                self.emit(det)
                n += 1
                if i in snippets:
                    self._serve(det, snippets[i])
            if self.clock() - self._last_hb >= self.config.heartbeat_s:
                self.heartbeat()
        self.stats.scans_done += 1
        self.stats.detections += n
        return n

    def _open_requests(self, kind: str) -> list[EvidenceRequest]:
        """Take new evidence requests, forget expired ones; the open ones of ``kind``."""
        if self._take_requests is not None:
            for req in self._take_requests():
                self._requests.setdefault(req.request_id, req)
        now = time.time()  # requests expire by the collector's clock, which this one follows
        for rid in [rid for rid, r in self._requests.items() if r.expires_utc < now]:
            log.info("event=evidence_request_expired sensor=%s request=%s", self.config.sensor_id, rid)
            del self._requests[rid]
        return [r for r in self._requests.values() if r.kind == kind]

    def _serve(self, det: Detection, snip) -> None:
        """Send the snippets of ``det`` every open request for its carrier asks for (audio
        only where there is some: an FM station's)."""
        raster = FM_RASTER_HZ if det.kind == "fm" else GSM_CHANNEL_HZ
        for req in [r for r in self._requests.values() if r.kind == det.kind
                    and round(r.freq_hz / raster) == round(det.freq_hz / raster)]:
            n_chunks = 0
            for want in req.want:
                if want == "audio" and getattr(snip, "audio", None) is None:
                    continue  # no programme to hear on a GSM channel
                if want == "audio":
                    samples, rate, centre = snip.audio, snip.audio_rate_hz, snip.freq_hz
                else:
                    samples, rate, centre = snip.iq, snip.iq_rate_hz, snip.iq_center_hz
                samples = samples[:max(1, int(req.seconds * rate))]
                try:
                    chunks = evidence_chunks(samples, kind=want, sensor_id=det.sensor_id,
                                             seqs=iter(self._next_seq, None), t_utc=snip.t_utc,
                                             sensor_lat=det.sensor_lat, sensor_lon=det.sensor_lon,
                                             detection_seq=det.seq, sample_rate_hz=rate, center_freq_hz=centre,
                                             request_id=req.request_id)
                except WireError as exc:
                    log.error("event=evidence_failed sensor=%s request=%s reason=%s", self.config.sensor_id,
                              req.request_id, exc)
                    continue
                for c in chunks:
                    self.emit(c)
                n_chunks += len(chunks)
            del self._requests[req.request_id]
            log.info("event=evidence_sent sensor=%s request=%s detection_seq=%d freq_hz=%.0f chunks=%d seconds=%.1f",
                     self.config.sensor_id, req.request_id, det.seq, det.freq_hz, n_chunks,
                     min(req.seconds, snip.iq.size / snip.iq_rate_hz))

    def _pause(self, seconds: float, stop: threading.Event) -> None:
        """Let ``seconds`` pass: wait on a real-time source, jump ahead on a simulated one."""
        if seconds > 0 and not stop.is_set():
            if self.source.realtime:
                stop.wait(seconds)
            else:
                self.source.idle(seconds)

    def _to_next_slot(self) -> float:
        """Seconds to the next UTC multiple of ``scan_interval_s`` (0 when on one)."""
        k = self.config.scan_interval_s
        if k <= 0:
            return 0.0
        rest = (-self.clock()) % k
        return 0.0 if rest > k - 1e-6 or rest < 1e-6 else rest

    def run(self, stop: threading.Event | None = None, *, until_utc: float | None = None,
            on_scan: Callable[["SensorNode", int], None] | None = None) -> NodeStats:
        """Scan on schedule until ``stop`` is set, ``max_scans`` are done or ``until_utc`` passes.

        With ``align_scans`` every scan starts on a UTC multiple of ``scan_interval_s`` (one
        that runs longer waits for the next), so that nodes with one configuration capture
        each hop at the same instants: the collector's GOIP clustering matches uplink links
        across sensors by capture instant. Otherwise a scan starts ``scan_interval_s`` after
        the last one did (at once if that one ran longer).

        A source error ends the run after a final heartbeat reporting it; other rfhunt
        errors in one scan are logged and counted, and the schedule goes on.
        """
        stop = stop or threading.Event()
        try:
            self.calibrate()
        except SourceError as exc:
            log.error("event=source_failed sensor=%s reason=%s", self.config.sensor_id, exc)
            self.source.status.state = f"error: {exc}"[:256]
        self.heartbeat()
        while not stop.is_set():
            if self.config.max_scans and self.stats.scans_done >= self.config.max_scans:
                break
            if self.config.align_scans:
                self._pause(self._to_next_slot(), stop)
                if stop.is_set():
                    break
            if until_utc is not None and self.clock() >= until_utc:
                break
            t0 = self.clock()
            try:
                n = self.scan_once()
            except SourceError as exc:
                log.error("event=source_failed sensor=%s reason=%s", self.config.sensor_id, exc)
                self.source.status.state = f"error: {exc}"[:256]
                self.stats.errors += 1
                self.heartbeat()
                break
            except RfhuntError as exc:
                log.error("event=scan_failed sensor=%s reason=%s", self.config.sensor_id, exc)
                self.stats.errors += 1
                n = 0
            if on_scan:
                on_scan(self, n)
            if not self.config.align_scans:
                self._pause(self.config.scan_interval_s - (self.clock() - t0), stop)
        self.heartbeat()
        if self._gsmtap_sender is not None:
            self._gsmtap_sender.close()
        return self.stats
