"""Observation-level simulation: the records a sensor network would publish, without IQ.

Synthesising IQ costs about a minute and a half for ten minutes of the demo city; judging
hundreds of randomized cities needs the *detections* only. :class:`Observer` makes them from
the same :class:`~sensors.sim.world.World` (positions, routes, path loss with correlated
shadowing, on-air times, cycling LACs, broadcast contents) and a model of what a sensor
measures and decodes (:class:`ObservationModel`), calibrated against the IQ-level demo:

* every ``scan_interval_s`` a sensor sweeps the GSM downlink: a carrier is detected when its
  SNR (received power over the sensor's noise floor in 200 kHz, after a slow fading term
  and measurement noise) passes a detection threshold, with a soft edge; co-channel carriers
  add up;
* every ``decode_every`` cycles it decodes the carriers it found, one 1.2 s capture per hop of
  12 channels that holds one: a cell is identified with a probability that rises with its
  SNR (the receiver's identification curve) and only when it is 9 dB above any co-channel
  carrier; each decode got SI3 (LAI, CID, T3212, CRO), SI4 (LAI, CRO) and SI2 (neighbours)
  each with its own probability, as a 1.2 s dwell does; the next cycle starts on schedule or
  when the pass is over, whichever is later;
* the frequency error of a decoded cell is the cell's own clock error plus the sensor's
  remaining LO error of that decode pass (the same for all cells of the pass, several ppm:
  the node's spectral LO estimate between FCCH corrections) plus an FCCH estimation noise
  that grows at low SNR;
* detections carry the features :func:`sensors.scan.decode_band` and
  :func:`sensors.scan.scan_band` publish (MCC/MNC as digit strings, neighbours as a comma
  list, ...), and a heartbeat per cycle tells each sensor's position and mobility.

Only GSM downlink emitters are observed. Times: ``t_s`` seconds since the scenario start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.bands import arfcn_to_downlink_hz
from rfhunt.records import Detection, Heartbeat
from sensors.sim.scenario import EmitterSpec
from sensors.sim.world import World, _seed


@dataclass(frozen=True)
class ObservationModel:
    """What a sensor measures and decodes (see module notes).

    Attributes
    ----------
    noise_floor_dbm : float
        Noise in 200 kHz at the antenna (the demo's RTL-SDR at 42 dB gain: about -104 dBm).
    detect_snr_db, detect_width_db : float
        SNR of 50 % detection in a sweep, and the width of the soft edge.
    decode_snr_db, decode_width_db : float
        SNR of 50 % identification in a decode pass, and the edge's width (the receiver
        identifies 20 % of cells at 0 dB, 80 % at 2 dB in white noise; real bands are worse).
    capture_db : float
        A decode needs the cell this far above any co-channel carrier.
    power_noise_db, fading_db, fading_s : float
        Measurement noise per detection; slow fading per link (AR(1) of this sigma and
        correlation time).
    p_si3, p_si4, p_si2 : float
        Probability that a decode got each message.
    lo_residual_ppm : float
        Spread of a sensor's remaining LO error from one decode pass to the next.
    fcch_noise_ppm : float
        FCCH frequency-error noise at 0 dB SNR (scaled by 10^(-SNR/20), plus 0.005 ppm).
    decode_step_s : float
        Dwell of one hop of a decode pass (a hop of :data:`HOP_CHANNELS` channels captures all
        its cells at once, as a 2.4 MS/s capture does).
    """

    noise_floor_dbm: float = -104.0
    detect_snr_db: float = 6.0
    detect_width_db: float = 0.7
    decode_snr_db: float = 4.0
    decode_width_db: float = 0.8
    capture_db: float = 9.0
    power_noise_db: float = 1.0
    fading_db: float = 1.5
    fading_s: float = 120.0
    p_si3: float = 0.97
    p_si4: float = 0.95
    p_si2: float = 0.65
    lo_residual_ppm: float = 5.0
    fcch_noise_ppm: float = 0.1
    decode_step_s: float = 1.2


#: Channels one hop of a sweep or decode pass covers (2.4 MS/s over 200 kHz channels).
HOP_CHANNELS = 12


@dataclass(frozen=True)
class Observation:
    """A record with the id of the emitter that caused it (None for heartbeats)."""

    record: Detection | Heartbeat
    truth_id: str | None


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


class Observer:
    """Publishes what the sensors of a world would, cycle by cycle.

    Parameters
    ----------
    world : World
    model : ObservationModel
    seed : int
        Seed of every random draw (noise, fading, decode luck, LO errors).
    """

    def __init__(self, world: World, model: ObservationModel = ObservationModel(), seed: int = 0) -> None:
        self.world = world
        self.model = model
        self.rng = np.random.default_rng(seed)
        sc = world.scenario
        self.cells = [e for e in sc.emitters if e.type in ("gsm_cell", "fake_bts")]
        self.by_arfcn: dict[int, list[EmitterSpec]] = {}
        for e in self.cells:
            self.by_arfcn.setdefault(e.arfcn, []).append(e)
        self.phase = {s.id: float(np.random.default_rng(_seed(seed, s.id, "phase")).uniform(0, 20.0))
                      for s in sc.sensors}
        self.seq = {s.id: 0 for s in sc.sensors}
        self.cycle = {s.id: 0 for s in sc.sensors}
        self.busy_until = {s.id: -np.inf for s in sc.sensors}
        self._fade: dict[tuple[str, str], tuple[float, float]] = {}
        self._lo = {s.id: float(self.rng.normal(0.0, model.lo_residual_ppm)) for s in sc.sensors}

    def _next_seq(self, sensor_id: str) -> int:
        self.seq[sensor_id] += 1
        return self.seq[sensor_id]

    def _fading(self, sensor_id: str, em_id: str, t_s: float) -> float:
        m = self.model
        prev = self._fade.get((sensor_id, em_id))
        if prev is None:
            x = float(self.rng.normal(0.0, m.fading_db))
        else:
            t0, x0 = prev
            a = math.exp(-max(t_s - t0, 0.0) / m.fading_s)
            x = a * x0 + math.sqrt(max(1 - a * a, 0.0)) * float(self.rng.normal(0.0, m.fading_db))
        self._fade[(sensor_id, em_id)] = (t_s, x)
        return x

    def _received(self, sensor, t_s: float, arfcn: int | None = None) -> dict[int, list[tuple[EmitterSpec, float]]]:
        """Carriers arriving at a sensor (on ``arfcn`` only, if given), by ARFCN: (emitter,
        power dBm) strongest first."""
        rx = self.world.sensor_position(sensor, t_s)
        out: dict[int, list[tuple[EmitterSpec, float]]] = {}
        for em in self.cells if arfcn is None else self.by_arfcn.get(arfcn, []):
            if not em.on_air(t_s):
                continue
            f = float(arfcn_to_downlink_hz(em.arfcn))
            p = em.power_dbm + self.world.path_gain_db(em, f, rx, t_s) + self._fading(sensor.id, em.id, t_s)
            if p < self.model.noise_floor_dbm - 10:
                continue
            out.setdefault(em.arfcn, []).append((em, p))
        for lst in out.values():
            lst.sort(key=lambda t: -t[1])
        return out

    def cycle_at(self, sensor, t_s: float, decode: bool) -> list[Observation]:
        """One scan cycle of one sensor starting at ``t_s``: a sweep, then (``decode``) a
        decode pass over the carriers the sweep found."""
        m, sc = self.model, self.world.scenario
        lat, lon = self.world.sensor_position(sensor, t_s)
        t_utc = sc.start_utc + t_s
        sensor_ppm = round(sensor.receiver.lo_ppm - self._lo[sensor.id], 2)
        obs = [Observation(Heartbeat(sensor.id, self._next_seq(sensor.id), t_utc, lat, lon, sensor.mobile, "ok",
                                     0, 0, self.cycle[sensor.id]), None)]
        found = []
        for arfcn, carriers in sorted(self._received(sensor, t_s + 0.5).items()):
            total_mw = sum(10 ** (p / 10) for _, p in carriers)
            p_meas = 10 * math.log10(total_mw) + float(self.rng.normal(0.0, m.power_noise_db))
            snr = p_meas - m.noise_floor_dbm
            if self.rng.random() > _logistic((snr - m.detect_snr_db) / m.detect_width_db):
                continue
            em = carriers[0][0]
            f = float(arfcn_to_downlink_hz(arfcn))
            feats = {"noise_dbm": m.noise_floor_dbm, "duty_cycle": 1.0, "gain_db": 42.1,
                     "offset_hz": round(float(self.rng.normal(9e3, 2e3)), 1), "sensor_ppm": sensor_ppm}
            det = Detection(sensor.id, self._next_seq(sensor.id), t_utc + 0.5, lat, lon, "gsm_downlink", f, arfcn,
                            200e3, round(p_meas, 2), round(snr, 2), feats)
            obs.append(Observation(det, em.id))
            found.append(arfcn)
        self.busy_until[sensor.id] = t_s + 2.0
        if decode and found:
            lo = float(self.rng.normal(0.0, m.lo_residual_ppm))  # this pass's remaining LO error
            # one capture per occupied hop decodes every cell of the hop at once
            hops = sorted({a // HOP_CHANNELS for a in found})
            for k, hop in enumerate(hops):
                t_dec = t_s + 2.0 + m.decode_step_s * (k + 0.5)
                for arfcn in (a for a in found if a // HOP_CHANNELS == hop):
                    got = self._decode(sensor, arfcn, t_dec, lo, sensor_ppm)
                    if got is not None:
                        obs.append(got)
            self.busy_until[sensor.id] = t_s + 2.0 + m.decode_step_s * len(hops)
            self._lo[sensor.id] = lo
        self.cycle[sensor.id] += 1
        return obs

    def _decode(self, sensor, arfcn: int, t_s: float, lo_ppm: float, sensor_ppm: float) -> Observation | None:
        m, sc = self.model, self.world.scenario
        carriers = self._received(sensor, t_s, arfcn).get(arfcn)
        if not carriers:
            return None
        em, p = carriers[0]
        p += float(self.rng.normal(0.0, m.power_noise_db))
        if len(carriers) > 1 and p - carriers[1][1] < m.capture_db:
            return None
        snr = p - m.noise_floor_dbm
        if self.rng.random() > _logistic((snr - m.decode_snr_db) / m.decode_width_db):
            return None
        got = {k for k, pk in (("SI3", m.p_si3), ("SI4", m.p_si4), ("SI2", m.p_si2), ("SI1", 0.7))
               if self.rng.random() < pk}
        lat, lon = self.world.sensor_position(sensor, t_s)
        sigma = 0.005 + m.fcch_noise_ppm * 10 ** (-snr / 20)
        ppm = em.ppm - lo_ppm + float(self.rng.normal(0.0, sigma))
        f = float(arfcn_to_downlink_hz(arfcn))
        feats: dict = {"decoded": True, "bsic": em.bsic, "ppm": round(ppm, 3),
                       "freq_offset_hz": round(ppm * f * 1e-6, 1), "n_frames": int(4 + self.rng.integers(0, 10)),
                       "si_types": ",".join(sorted(got)), "gain_db": 42.1, "noise_dbm": m.noise_floor_dbm,
                       "sensor_ppm": sensor_ppm, "cell_barred": False, "paging_requests": 0,
                       "paged_identities": 0, "immediate_assignments": 0}
        if "SI3" in got or "SI4" in got:
            feats.update(mcc=f"{em.mcc:03d}", mnc=f"{em.mnc:02d}", lac=em.lac_at(t_s), cro_db=em.cro_db,
                         rxlev_access_min_dbm=-110, ms_txpwr_max_cch=5, cell_reselect_hysteresis_db=4)
            if em.cro_db:
                feats.update(temporary_offset_db=0, penalty_time_s=20)
        if "SI3" in got:
            feats.update(cid=em.cid, t3212_s=em.t3212_s)
        nb = self.world.neighbours(em) if "SI2" in got else []
        feats.update(neighbours=",".join(map(str, nb)), n_neighbours=len(nb))
        det = Detection(sensor.id, self._next_seq(sensor.id), sc.start_utc + t_s, lat, lon, "gsm_downlink", f,
                        arfcn, 200e3, round(p, 2), round(snr, 2), feats)
        return Observation(det, em.id)

    def run(self, t0_s: float, t1_s: float, *, scan_interval_s: float = 20.0, decode_every: int = 2
            ) -> list[Observation]:
        """Every sensor's cycles starting in [t0_s, t1_s), in time order.

        A sensor starts its cycles at its own phase within the interval; it decodes on every
        ``decode_every``-th cycle of this call (the first one included).
        """
        out = []
        for s in self.world.scenario.sensors:
            phase = self.phase[s.id] % scan_interval_s
            k = 0
            t = max(t0_s + phase, self.busy_until[s.id])
            while t < t1_s:
                out.extend(self.cycle_at(s, t, decode=(k % decode_every == 0)))
                k += 1
                # a cycle starts on schedule, or once the previous one is done
                t = max(t + scan_interval_s, self.busy_until[s.id])
        out.sort(key=lambda o: (o.record.t_utc, o.record.sensor_id, o.record.seq))
        return out
