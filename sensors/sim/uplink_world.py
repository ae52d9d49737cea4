"""Observation-level GSM uplink: the per-capture records rooftop sensors publish about the
handsets around them (GOIP gateways and ordinary phones), over hours, without IQ.

Traffic (:class:`UplinkTraffic`, drawn once from the scenario seed)

* A GOIP gateway (emitter type ``goip``) holds ``channels`` handsets in one box. Each
  channel alternates calls (log-normal durations, mean ``call_mean_s``, clipped to 10 s -
  30 min) and idle gaps (exponential, so that the channel is busy ``activity`` of the time),
  day and night; during a gap it makes failed call attempts (a set-up without a call, one
  per :attr:`UplinkModel.goip_attempt_s` on average). Every call gets a link (ARFCN of the
  box's list x timeslot 1-7) the box is not using at the time. All handsets sit in one place:
  one position, one shadowing, and one transmit level (``power_dbm``; each channel within
  :attr:`UplinkModel.goip_channel_db` of it, each call within 1 dB of its channel).
* A crowd (``phones``) of ``count`` subscribers around (lat, lon): calls arrive as a Poisson
  process of rate ``count * erlang / call_mean_s`` times the daily rhythm
  (:func:`daily_rhythm`, 1 in the busy hours, ``night_factor`` at night, in local solar time
  from the crowd's longitude), with exponential durations; each call is made from its own
  spot, uniform over the disk of ``radius_m`` (or, for a fraction ``moving``, from a phone
  moving at ``speed_mps`` along a straight road), at a transmit level set by power control
  (uniform between ``power_min_dbm`` and ``power_dbm``, re-stepped by +-2 dB at every
  capture). Idle subscribers make other set-ups (SMS, location updates) at
  :attr:`UplinkModel.other_setups_per_sub_h`.
* Access bursts (RACH) of a set-up go out at the maximum power of the control channel
  (``power_dbm`` for phones, the box's level + 6 dB for a GOIP) on timeslot 0 of the first
  ARFCN of the list, within half a second of the set-up.

Observation (:class:`UplinkObserver`)

All sensors capture :attr:`UplinkModel.capture_s` of the uplink band every
:attr:`UplinkModel.capture_every_s` at the same instants (the nodes keep NTP time). A link
is heard when its received power - EIRP + log-distance path loss (the scenario's exponent)
+ shadowing (a field over the transmitter's position per sensor, so two handsets in one box
share it and two phones 100 m apart do not) + a static frequency-selective term per
(sensor, transmitter, ARFCN) + fading per capture + measurement noise - passes the detection
SNR with a soft edge. Co-channel links (one ARFCN x timeslot used by two cells' phones) are
heard as one: the stronger, with the summed power. Each heard link becomes a
:class:`~rfhunt.records.Detection` of kind ``gsm_uplink`` with the features
``timeslot``, ``n_bursts`` (normal bursts in the capture), ``n_access`` (0), ``duty``
(fraction of TDMA frames with a burst) and ``capture_s``; each set-up heard becomes one with
``n_bursts`` 0, ``n_access`` (its access bursts in the capture) and ``access_t_s`` (time of
its first access burst from the capture's start, s).

Times ``t_s`` are seconds since the scenario start; positions WGS84 degrees; powers dBm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.bands import arfcn_to_uplink_hz
from rfhunt.geo import to_enu
from rfhunt.records import Detection
from sensors.sim.observe import Observation
from sensors.sim.scenario import EmitterSpec, Scenario
from sensors.sim.world import ShadowingField, _seed

#: TDMA frame, s.
FRAME_S = 120e-3 / 26
#: Busy-hour share of traffic by local solar hour (0-23), before ``night_factor`` is mixed in.
_RHYTHM = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.2, 0.5, 0.8, 1.0, 1.0, 1.0,
                    0.95, 0.95, 1.0, 1.0, 1.0, 1.0, 0.95, 0.85, 0.7, 0.5, 0.3, 0.1])


def local_hour(t_utc: np.ndarray | float, lon: float) -> np.ndarray:
    """Local solar hour [0, 24) at longitude ``lon`` (degrees) of Unix times ``t_utc``."""
    return np.mod(np.asarray(t_utc, dtype=float) / 3600.0 + lon / 15.0, 24.0)


def daily_rhythm(hour: np.ndarray | float, night_factor: float) -> np.ndarray:
    """Traffic relative to the busy hour at local ``hour``: ``night_factor`` at night, 1 by day."""
    h = np.asarray(hour, dtype=float)
    busy = np.interp(np.mod(h, 24.0), np.arange(25.0), np.append(_RHYTHM, _RHYTHM[0]))
    return night_factor + (1.0 - night_factor) * busy


@dataclass(frozen=True)
class UplinkModel:
    """What the traffic does and what a sensor measures (see module notes).

    Attributes
    ----------
    capture_every_s, capture_s : float
        Capture period and length, s.
    noise_floor_dbm : float
        Noise in 200 kHz at the antenna, dBm.
    detect_snr_db, detect_width_db : float
        SNR of 50 % detection of a link in one capture and the width of the soft edge, dB.
    capture_db : float
        Co-channel links closer than this are heard summed; otherwise the stronger alone.
    power_noise_db : float
        Measurement noise of a link's power in one capture, dB.
    fading_db : float
        Fading left after averaging a capture's bursts, per (sensor, call, capture), dB.
    selective_db : float
        Static frequency-selective offset per (sensor, transmitter, ARFCN), dB.
    goip_channel_db : float
        Spread of a GOIP's channels' transmit levels around the box's, dB.
    goip_attempt_s : float
        Mean time between failed call attempts of an idle GOIP channel, s.
    other_setups_per_sub_h : float
        Set-ups per idle subscriber and hour besides calls (SMS, location updates).
    power_step_db : float
        Power-control re-stepping of a phone's level from capture to capture, dB (sigma).
    """

    capture_every_s: float = 60.0
    capture_s: float = 2.0
    noise_floor_dbm: float = -104.0
    detect_snr_db: float = 8.0
    detect_width_db: float = 1.0
    capture_db: float = 9.0
    power_noise_db: float = 1.0
    fading_db: float = 1.5
    selective_db: float = 1.5
    goip_channel_db: float = 1.0
    goip_attempt_s: float = 150.0
    other_setups_per_sub_h: float = 0.3
    power_step_db: float = 2.0


@dataclass(frozen=True)
class Calls:
    """Calls (traffic links) of the whole scenario; one entry per call, sorted by start.

    Attributes
    ----------
    start_s, end_s : numpy.ndarray
        Times the call starts and ends, s.
    emitter : numpy.ndarray
        int64 index into the scenario's uplink emitters (:attr:`UplinkTraffic.emitters`).
    arfcn, timeslot : numpy.ndarray
        int64 link.
    east_m, north_m, v_east_mps, v_north_mps : numpy.ndarray
        Position at ``start_s`` in the scenario's tangent plane (m) and velocity (m/s).
    tx_dbm : numpy.ndarray
        Transmit level (EIRP), dBm.
    """

    start_s: np.ndarray
    end_s: np.ndarray
    emitter: np.ndarray
    arfcn: np.ndarray
    timeslot: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    v_east_mps: np.ndarray
    v_north_mps: np.ndarray
    tx_dbm: np.ndarray

    def __len__(self) -> int:
        return int(self.start_s.size)


@dataclass(frozen=True)
class Setups:
    """Call set-ups (access bursts), sorted by time: ``t_s``, ``emitter``, ``arfcn``, position
    (``east_m``, ``north_m``), ``tx_dbm`` and ``n_bursts`` (RACH bursts sent)."""

    t_s: np.ndarray
    emitter: np.ndarray
    arfcn: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    tx_dbm: np.ndarray
    n_bursts: np.ndarray


def _concat(parts: list[dict[str, np.ndarray]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not parts:
        return {k: np.zeros(0) for k in keys}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


class UplinkTraffic:
    """Every call and set-up of a scenario's GOIP gateways and phone crowds (module notes).

    Parameters
    ----------
    scenario : Scenario
    model : UplinkModel
    seed : int
        Seed of the traffic draws (with the scenario's seed and the emitters' ids).
    """

    def __init__(self, scenario: Scenario, model: UplinkModel = UplinkModel(), seed: int = 0) -> None:
        self.scenario = scenario
        self.model = model
        self.emitters: tuple[EmitterSpec, ...] = tuple(e for e in scenario.emitters if e.type in ("goip", "phones"))
        calls, setups = [], []
        for k, em in enumerate(self.emitters):
            rng = np.random.default_rng(_seed(scenario.seed, seed, em.id, "uplink"))
            e0, n0 = (float(v) for v in to_enu(em.lat, em.lon, scenario.center_lat, scenario.center_lon))
            c, s = (self._goip if em.type == "goip" else self._crowd)(em, k, rng, e0, n0)
            calls.append(c)
            setups.append(s)
        ck = ("start_s", "end_s", "emitter", "arfcn", "timeslot", "east_m", "north_m", "v_east_mps", "v_north_mps",
              "tx_dbm")
        c = _concat(calls, ck)
        o = np.argsort(c["start_s"], kind="stable")
        self.calls = Calls(**{k: c[k][o].astype(np.int64 if k in ("emitter", "arfcn", "timeslot") else float)
                              for k in ck})
        sk = ("t_s", "emitter", "arfcn", "east_m", "north_m", "tx_dbm", "n_bursts")
        s = _concat(setups, sk)
        o = np.argsort(s["t_s"], kind="stable")
        self.setups = Setups(**{k: s[k][o].astype(np.int64 if k in ("emitter", "arfcn", "n_bursts") else float)
                                for k in sk})
        self._max_call_s = float(np.max(self.calls.end_s - self.calls.start_s)) if len(self.calls) else 0.0

    def _goip(self, em: EmitterSpec, k: int, rng: np.random.Generator, e0: float, n0: float):
        m = self.model
        t_end = em.stop_s if em.stop_s is not None else self.scenario.duration_s
        act = min(max(em.activity, 1e-3), 0.999)
        mean_off = em.call_mean_s * (1 - act) / act
        sig = 0.6
        mu = math.log(em.call_mean_s) - sig * sig / 2
        level = em.power_dbm + rng.normal(0.0, m.goip_channel_db, em.channels)
        starts, ends, tx, att = [], [], [], []
        for ch in range(em.channels):
            t = em.start_s - (rng.uniform(0, em.call_mean_s) if rng.random() < act else 0.0)
            in_call = t < em.start_s
            while t < t_end:
                if in_call:
                    d = float(np.clip(rng.lognormal(mu, sig), 10.0, 1800.0))
                    starts.append(t)
                    ends.append(min(t + d, t_end))
                    tx.append(level[ch] + rng.normal(0.0, 1.0))
                    t += d
                else:
                    d = float(rng.exponential(mean_off))
                    n_att = rng.poisson(d / m.goip_attempt_s)
                    att.extend(t + rng.uniform(0, d, n_att))
                    t += d
                in_call = not in_call
        starts, ends = np.maximum(np.asarray(starts), em.start_s), np.asarray(ends)
        keep = ends > starts
        starts, ends, tx = starts[keep], ends[keep], np.asarray(tx)[keep]
        order = np.argsort(starts)
        starts, ends, tx = starts[order], ends[order], tx[order]
        # the BTS gives each call a link the box is not using at the time
        arfcn = np.empty(starts.size, np.int64)
        ts = np.empty(starts.size, np.int64)
        busy: list[tuple[float, int, int]] = []
        choices = [(a, t) for a in em.arfcns for t in range(1, 8)]
        for i, (t0, t1) in enumerate(zip(starts, ends)):
            busy = [b for b in busy if b[0] > t0]
            used = {(b[1], b[2]) for b in busy}
            free = [c for c in choices if c not in used] or choices
            a, s = free[int(rng.integers(len(free)))]
            arfcn[i], ts[i] = a, s
            busy.append((t1, a, s))
        n = starts.size
        setup_t = np.concatenate((starts[starts >= em.start_s], np.asarray(att, float)))
        setup_t = setup_t[(setup_t >= em.start_s) & (setup_t < t_end)]
        calls = dict(start_s=starts, end_s=ends, emitter=np.full(n, k), arfcn=arfcn, timeslot=ts,
                     east_m=np.full(n, e0), north_m=np.full(n, n0), v_east_mps=np.zeros(n), v_north_mps=np.zeros(n),
                     tx_dbm=tx)
        ns = setup_t.size
        setups = dict(t_s=setup_t, emitter=np.full(ns, k), arfcn=np.full(ns, em.arfcns[0]), east_m=np.full(ns, e0),
                      north_m=np.full(ns, n0), tx_dbm=np.full(ns, em.power_dbm + 6.0),
                      n_bursts=rng.integers(1, 4, ns))
        return calls, setups

    def _poisson_rhythm(self, rng: np.random.Generator, rate_peak_hz: float, em: EmitterSpec) -> np.ndarray:
        """Arrival times (s) of a Poisson process of ``rate_peak_hz`` times the daily rhythm."""
        dur = self.scenario.duration_s
        n = rng.poisson(rate_peak_hz * dur)
        t = np.sort(rng.uniform(0, dur, n))
        h = local_hour(self.scenario.start_utc + t, em.lon)
        return t[rng.random(n) < daily_rhythm(h, em.night_factor)]

    def _crowd(self, em: EmitterSpec, k: int, rng: np.random.Generator, e0: float, n0: float):
        m = self.model
        start = self._poisson_rhythm(rng, em.count * em.erlang / em.call_mean_s, em)
        n = start.size
        dur = np.maximum(rng.exponential(em.call_mean_s, n), 5.0)
        r = em.radius_m * np.sqrt(rng.random(n))
        phi = rng.uniform(0, 2 * np.pi, n)
        moving = rng.random(n) < em.moving
        head = rng.uniform(0, 2 * np.pi, n)
        v = np.where(moving, em.speed_mps, 0.0)
        tx = rng.uniform(em.power_min_dbm, em.power_dbm, n)
        # the cells give calls links in turn (a link is busy again only after all others were used)
        links = [(a, t) for a in em.arfcns for t in range(1, 8)]
        pick = (np.arange(n) + int(rng.integers(len(links)))) % len(links)
        calls = dict(start_s=start, end_s=start + dur, emitter=np.full(n, k),
                     arfcn=np.array([links[i][0] for i in pick], np.int64).reshape(n),
                     timeslot=np.array([links[i][1] for i in pick], np.int64).reshape(n),
                     east_m=e0 + r * np.cos(phi), north_m=n0 + r * np.sin(phi),
                     v_east_mps=v * np.cos(head), v_north_mps=v * np.sin(head), tx_dbm=tx)
        other = self._poisson_rhythm(rng, em.count * m.other_setups_per_sub_h / 3600.0, em)
        st = np.concatenate((start, other))
        ns = st.size
        r2 = em.radius_m * np.sqrt(rng.random(other.size))
        p2 = rng.uniform(0, 2 * np.pi, other.size)
        setups = dict(t_s=st, emitter=np.full(ns, k), arfcn=np.full(ns, em.arfcns[0]),
                      east_m=np.concatenate((calls["east_m"], e0 + r2 * np.cos(p2))),
                      north_m=np.concatenate((calls["north_m"], n0 + r2 * np.sin(p2))),
                      tx_dbm=np.full(ns, em.power_dbm), n_bursts=rng.integers(1, 4, ns))
        return calls, setups

    def active(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Indices of the calls on the air at some time in [t0_s, t1_s)."""
        c = self.calls
        lo = np.searchsorted(c.start_s, t0_s - self._max_call_s, side="left")
        hi = np.searchsorted(c.start_s, t1_s, side="left")
        idx = np.arange(lo, hi)
        return idx[c.end_s[idx] > t0_s]

    def concurrent(self, emitter_id: str, t_s: np.ndarray) -> np.ndarray:
        """Calls of one emitter on the air at each of the times ``t_s`` (truth)."""
        k = [e.id for e in self.emitters].index(emitter_id)
        c = self.calls
        sel = c.emitter == k
        t = np.asarray(t_s, dtype=float)[:, None]
        return np.count_nonzero((c.start_s[sel] <= t) & (c.end_s[sel] > t), axis=1)


class UplinkObserver:
    """The uplink records a scenario's sensors publish, capture by capture (module notes).

    Parameters
    ----------
    scenario : Scenario
    model : UplinkModel
    seed : int
        Seed of the traffic and of every measurement draw.
    """

    def __init__(self, scenario: Scenario, model: UplinkModel = UplinkModel(), seed: int = 0) -> None:
        self.scenario = scenario
        self.model = model
        self.traffic = UplinkTraffic(scenario, model, seed)
        self.rng = np.random.default_rng(_seed(scenario.seed, seed, "uplink-observe"))
        p = scenario.propagation
        self.sensors = [s for s in scenario.sensors if not s.mobile]
        self._pos = np.array([[float(v) for v in to_enu(s.lat, s.lon, scenario.center_lat, scenario.center_lon)]
                              for s in self.sensors]).reshape(-1, 2)
        self._shadow = [ShadowingField(p.shadowing_db, p.decorrelation_m, _seed(scenario.seed, s.id, "uplink-shadow"))
                        for s in self.sensors]
        self._fspl_1m = 20 * math.log10(4 * math.pi * 900e6 / 299_792_458.0)
        self.seq = {s.id: 0 for s in self.sensors}

    def _gain_db(self, east: np.ndarray, north: np.ndarray, arfcn: np.ndarray, emitter: np.ndarray) -> np.ndarray:
        """Path gain (dB) from transmitters at (east, north) to every sensor: (n_tx, n_sensors)."""
        n_exp = self.scenario.propagation.path_loss_exponent
        d = np.hypot(east[:, None] - self._pos[None, :, 0], north[:, None] - self._pos[None, :, 1])
        g = -(self._fspl_1m + 10 * n_exp * np.log10(np.maximum(d, 10.0)))
        for j, f in enumerate(self._shadow):
            arg = np.outer(east, f.kvec[:, 0]) + np.outer(north, f.kvec[:, 1]) + f.phase
            g[:, j] += f.amp * np.cos(arg).sum(axis=1)
        # static frequency-selective term per (sensor, transmitter, ARFCN): a hash-seeded draw
        key = (arfcn[:, None] * 1_000_003 + emitter[:, None] * 7919 + np.arange(len(self.sensors))[None, :] * 104729
               + self.scenario.seed * 31) % 2_147_483_647
        u = (np.sin(key * 12.9898) * 43758.5453) % 1.0
        g += self.model.selective_db * math.sqrt(3.0) * (2 * u - 1)
        return g

    def capture_times(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Capture start times in [t0_s, t1_s) (the same for all sensors)."""
        every = self.model.capture_every_s
        k0 = math.ceil(t0_s / every)
        k1 = math.ceil(t1_s / every)
        return np.arange(k0, k1) * every

    def run(self, t0_s: float, t1_s: float) -> list[Observation]:
        """Every detection of every fixed sensor from the captures starting in [t0_s, t1_s),
        in time order, each with the id of the emitter (GOIP or crowd) that caused it."""
        out: list[Observation] = []
        for t in self.capture_times(t0_s, t1_s):
            out.extend(self.capture(float(t)))
        return out

    def capture(self, t_s: float) -> list[Observation]:
        """The detections of the captures all sensors start at ``t_s``."""
        m, sc, tr = self.model, self.scenario, self.traffic
        cap = m.capture_s
        n_sens = len(self.sensors)
        ids = [e.id for e in tr.emitters]
        out: list[Observation] = []
        t_utc = sc.start_utc + t_s + cap / 2
        frames = cap / FRAME_S
        # --- traffic links
        idx = tr.active(t_s, t_s + cap)
        c = tr.calls
        if idx.size:
            dt = t_s + cap / 2 - c.start_s[idx]
            east = c.east_m[idx] + c.v_east_mps[idx] * dt
            north = c.north_m[idx] + c.v_north_mps[idx] * dt
            is_phone = np.array([tr.emitters[k].type == "phones" for k in c.emitter[idx]])
            tx = c.tx_dbm[idx] + np.where(is_phone, self.rng.normal(0.0, m.power_step_db, idx.size), 0.0)
            p = (tx[:, None] + self._gain_db(east, north, c.arfcn[idx], c.emitter[idx])
                 + self.rng.normal(0.0, math.hypot(m.fading_db, m.power_noise_db), (idx.size, n_sens)))
            overlap = (np.minimum(c.end_s[idx], t_s + cap) - np.maximum(c.start_s[idx], t_s)) / cap
            n_bursts = np.round(overlap * frames * 25 / 26).astype(np.int64)
            # partial calls: fewer bursts, so a little less energy reaches the detector
            snr = p - m.noise_floor_dbm + (10 * np.log10(np.maximum(overlap, 1e-3)) / 2)[:, None]
            heard = self.rng.random(p.shape) < 1 / (1 + np.exp(-np.clip((snr - m.detect_snr_db) / m.detect_width_db,
                                                                        -50, 50)))
            heard &= (n_bursts > 0)[:, None]
            link = c.arfcn[idx] * 8 + c.timeslot[idx]
            for j, s in enumerate(self.sensors):
                rows = np.flatnonzero(heard[:, j])
                if rows.size == 0:
                    continue
                # co-channel: one detection per link, the stronger one's, summed when close
                order = rows[np.lexsort((-p[rows, j], link[rows]))]
                first = np.concatenate(([True], link[order][1:] != link[order][:-1]))
                for r0, grp in zip(order[first], np.split(order, np.flatnonzero(first)[1:])):
                    pw = p[grp, j]
                    if grp.size > 1 and pw[0] - pw[1] < m.capture_db:
                        pw0 = 10 * math.log10(float(np.sum(10 ** (pw / 10))))
                    else:
                        pw0 = float(pw[0])
                    i = idx[r0]
                    nb = int(n_bursts[r0])
                    self.seq[s.id] += 1
                    det = Detection(s.id, self.seq[s.id], t_utc, s.lat, s.lon, "gsm_uplink",
                                    float(arfcn_to_uplink_hz(int(c.arfcn[i]))), int(c.arfcn[i]), 200e3,
                                    round(pw0, 2), round(pw0 - m.noise_floor_dbm, 2),
                                    {"timeslot": int(c.timeslot[i]), "n_bursts": nb, "n_access": 0,
                                     "duty": round(nb / frames, 3), "capture_s": cap})
                    out.append(Observation(det, ids[int(c.emitter[i])]))
        # --- access bursts
        su = tr.setups
        lo, hi = np.searchsorted(su.t_s, [t_s - 0.5, t_s + cap])
        if hi > lo:
            k = np.arange(lo, hi)
            # bursts spread over half a second after the set-up; count those inside the capture
            offs = su.t_s[k, None] + np.linspace(0.0, 0.45, 3)[None, :]
            inside = (offs >= t_s) & (offs < t_s + cap) & (np.arange(3)[None, :] < su.n_bursts[k, None])
            n_in = inside.sum(axis=1)
            k, n_in, offs, inside = k[n_in > 0], n_in[n_in > 0], offs[n_in > 0], inside[n_in > 0]
            if k.size:
                first_t = np.where(inside, offs, np.inf).min(axis=1) - t_s
                p = (su.tx_dbm[k, None] + self._gain_db(su.east_m[k], su.north_m[k], su.arfcn[k], su.emitter[k])
                     + self.rng.normal(0.0, math.hypot(m.fading_db, m.power_noise_db), (k.size, n_sens)))
                snr = p - m.noise_floor_dbm
                heard = self.rng.random(p.shape) < 1 / (1 + np.exp(-np.clip((snr - m.detect_snr_db) / m.detect_width_db,
                                                                            -50, 50)))
                for j, s in enumerate(self.sensors):
                    for r in np.flatnonzero(heard[:, j]):
                        i = k[r]
                        self.seq[s.id] += 1
                        det = Detection(s.id, self.seq[s.id], t_utc, s.lat, s.lon, "gsm_uplink",
                                        float(arfcn_to_uplink_hz(int(su.arfcn[i]))), int(su.arfcn[i]), 200e3,
                                        round(float(p[r, j]), 2), round(float(snr[r, j]), 2),
                                        {"timeslot": 0, "n_bursts": 0, "n_access": int(n_in[r]), "duty": 0.0,
                                         "capture_s": cap, "access_t_s": round(float(first_t[r]), 4)})
                        out.append(Observation(det, ids[int(su.emitter[i])]))
        return out
