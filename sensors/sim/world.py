"""The simulated world: where everything is, how radio gets from one place to another,
and the IQ a sensor's RTL-SDR would capture at a given tuning.

Time here is ``t_s``: seconds since the scenario's start (``scenario.start_utc``).
Everything is a deterministic function of the scenario seed and ``t_s`` except receiver
noise, which comes from the ``rng`` a capture is given. Crowds of ordinary phones
(emitter type ``phones``) are simulated at observation level only
(:mod:`sensors.sim.uplink_world`): they take no part in carriers and captures here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from dsp.fm.rds import RdsConfig
from dsp.gsm.bcch import bcch_payload
from dsp.gsm.si import encode_si1, encode_si2, encode_si3, encode_si4
from dsp.gsm.si_fields import ControlChannelDescription, SelectionParameters
from dsp.fm.tx import fm_broadcast_iq
from dsp.gsm.tx import gsm_downlink_iq, gsm_uplink_iq
from rfhunt.geo import distance_m, route_position, to_enu
from sensors.sim.fm_effects import receiver_intermod_iq
from sensors.sim.scenario import EmitterSpec, Scenario, SensorSpec

C_M_S = 299_792_458.0
#: The FM broadcast band, Hz (the front end's intermodulation is simulated for captures near it).
FM_BAND_HZ = (87.5e6, 108.0e6)
THERMAL_DBM_HZ = -174.0
GSM_FRAME_S = 120e-3 / 26
#: Emitters further than this outside the captured span are filtered out by the tuner.
SPAN_MARGIN_HZ = 150e3


def _seed(*parts: object) -> int:
    """A stable seed from names (Python's hash() of a str changes from process to process)."""
    return zlib.crc32("/".join(map(str, parts)).encode())


class ShadowingField:
    """A smooth, spatially correlated Gaussian field (dB) over the ground.

    A sum of ``k`` random plane waves whose wavenumbers are drawn so the field decorrelates
    over about ``decorrelation_m``; its marginal is close to N(0, ``sigma_db``).
    """

    def __init__(self, sigma_db: float, decorrelation_m: float, seed: int, k: int = 48) -> None:
        rng = np.random.default_rng(seed)
        self.kvec = rng.normal(0.0, 1.0 / decorrelation_m, size=(k, 2))
        self.phase = rng.uniform(0, 2 * np.pi, size=k)
        self.amp = sigma_db * np.sqrt(2.0 / k)

    def __call__(self, east_m: float, north_m: float) -> float:
        arg = self.kvec[:, 0] * east_m + self.kvec[:, 1] * north_m + self.phase
        return float(self.amp * np.cos(arg).sum())


@dataclass(frozen=True)
class Carrier:
    """One carrier of one emitter as a sensor receives it at one instant."""

    emitter_id: str
    kind: str
    freq_hz: float
    power_dbm: float
    channel_index: int = 0


class GoipActivity:
    """On/off call pattern of each GOIP channel: alternating exponential call and idle times."""

    def __init__(self, em: EmitterSpec, duration_s: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        mean_on = em.call_mean_s
        mean_off = em.call_mean_s * (1 - em.activity) / max(em.activity, 1e-3)
        self.toggles: list[np.ndarray] = []
        self.start_on: list[bool] = []
        horizon = duration_s + 3600.0
        for _ in range(em.channels):
            on = bool(rng.random() < em.activity)
            times, t, state = [], -rng.uniform(0, mean_on + mean_off), on
            while t < horizon:
                t += rng.exponential(mean_on if state else max(mean_off, 1e-3))
                times.append(t)
                state = not state
            self.toggles.append(np.asarray(times))
            self.start_on.append(on)

    def state(self, channel: int, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(in_call, seconds since the call started) of ``channel`` at times ``t_s``."""
        tog = self.toggles[channel]
        k = np.searchsorted(tog, t_s, side="right")
        on = (k % 2 == 0) == self.start_on[channel]
        last = np.where(k > 0, tog[np.maximum(k - 1, 0)], -np.inf)
        return on, t_s - last


class World:
    """A scenario brought to life.

    Parameters
    ----------
    scenario : Scenario
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.lat0, self.lon0 = scenario.center_lat, scenario.center_lon
        p = scenario.propagation
        self._shadow = {
            em.id: (ShadowingField(p.shadowing_db, p.decorrelation_m, _seed(scenario.seed, em.id, "rx")),
                    ShadowingField(p.shadowing_db, p.decorrelation_m, _seed(scenario.seed, em.id, "tx")))
            for em in scenario.emitters}
        self._goip = {em.id: GoipActivity(em, scenario.duration_s, _seed(scenario.seed, em.id, "calls"))
                      for em in scenario.emitters if em.type == "goip"}
        # each cell keeps its own TDMA clock: an epoch offset and a start frame number
        self._si_cache: dict[tuple[str, int], dict[str, bytes]] = {}
        self._payload_cache: dict[tuple[str, int], object] = {}
        self._tdma = {em.id: (np.random.default_rng(_seed(scenario.seed, em.id, "tdma")).uniform(0, 1.0),
                              int(np.random.default_rng(_seed(scenario.seed, em.id, "fn")).integers(0, 2715648)))
                      for em in scenario.emitters}

    # --- geometry -------------------------------------------------------------------------
    def sensor_position(self, sensor: SensorSpec | str, t_s: float) -> tuple[float, float]:
        """(lat, lon) of a sensor's antenna at ``t_s``."""
        s = self.scenario.sensor(sensor) if isinstance(sensor, str) else sensor
        if s.mobile:
            return route_position(np.asarray(s.route), s.speed_mps, t_s, s.loop)
        return s.lat, s.lon

    def emitter_position(self, em: EmitterSpec, t_s: float) -> tuple[float, float]:
        """(lat, lon) of an emitter's antenna at ``t_s``."""
        if em.mobile:
            return route_position(np.asarray(em.route), em.speed_mps, t_s, em.loop)
        return em.lat, em.lon

    # --- propagation ----------------------------------------------------------------------
    def path_gain_db(self, em: EmitterSpec, freq_hz: float, rx: tuple[float, float], t_s: float) -> float:
        """Gain (negative loss) from the emitter's antenna to a receiver at ``rx`` (lat, lon)."""
        tx = self.emitter_position(em, t_s)
        d = max(float(distance_m(tx[0], tx[1], rx[0], rx[1])), 10.0)
        p = self.scenario.propagation
        fspl_1m = 20 * np.log10(4 * np.pi * freq_hz / C_M_S)
        f_rx, f_tx = self._shadow[em.id]
        e, n = to_enu(rx[0], rx[1], self.lat0, self.lon0)
        x = f_rx(float(e), float(n))
        if em.mobile:
            et, nt = to_enu(tx[0], tx[1], self.lat0, self.lon0)
            x = (x + f_tx(float(et), float(nt))) / np.sqrt(2.0)
        return float(-(fspl_1m + 10 * p.path_loss_exponent * np.log10(d)) + x)

    def carriers_at(self, sensor: SensorSpec | str, t_s: float) -> list[Carrier]:
        """Every carrier of every emitter with the power it arrives with at a sensor (dBm)."""
        s = self.scenario.sensor(sensor) if isinstance(sensor, str) else sensor
        rx = self.sensor_position(s, t_s)
        out = []
        for em in self.scenario.emitters:
            if not em.on_air(t_s) or em.type == "phones":
                continue
            for i, f in enumerate(em.carrier_freqs_hz()):
                out.append(Carrier(em.id, em.kind, float(f), em.power_dbm + self.path_gain_db(em, f, rx, t_s), i))
        return out

    def neighbours(self, em: EmitterSpec) -> list[int]:
        """BCCH ARFCNs a GSM cell lists as neighbours: its own list if the scenario gives one,
        else (a legitimate cell) the operator's other cells, or (a fake base station) none."""
        if em.neighbours is not None:
            return list(em.neighbours)
        if em.type == "fake_bts":
            return []
        return sorted({o.arfcn for o in self.scenario.emitters if o.type == "gsm_cell" and o.id != em.id
                       and (o.mcc, o.mnc) == (em.mcc, em.mnc)})

    # --- signals --------------------------------------------------------------------------
    def system_information(self, em: EmitterSpec, t_s: float) -> dict[str, bytes]:
        """The SI frames a GSM cell broadcasts at ``t_s``: its identity (with the LAC of that
        moment), its own ARFCN as cell allocation, its neighbours (:meth:`neighbours`), its
        reselection offset and T3212."""
        key = (em.id, em.lac_at(t_s))
        cached = self._si_cache.get(key)
        if cached is not None:
            return cached
        mcc, mnc = f"{em.mcc:03d}", f"{em.mnc:02d}"
        neighbours = self.neighbours(em)
        sel = SelectionParameters(cell_reselect_offset_code=em.cro_db // 2) if em.cro_db else None
        lac = em.lac_at(t_s)
        cc = ControlChannelDescription(t3212_decihours=em.t3212_s // 360)
        frames = {"SI1": encode_si1([em.arfcn]), "SI2": encode_si2(neighbours),
                  "SI3": encode_si3(mcc=mcc, mnc=mnc, lac=lac, cid=em.cid, selection=sel, control_channel=cc),
                  "SI4": encode_si4(mcc=mcc, mnc=mnc, lac=lac, selection=sel)}
        self._si_cache[key] = frames
        return frames

    def _bcch(self, em: EmitterSpec, t_s: float):
        key = (em.id, em.lac_at(t_s))
        if key not in self._payload_cache:
            self._payload_cache[key] = bcch_payload(self.system_information(em, t_s))
        return self._payload_cache[key]

    def _waveform(self, em: EmitterSpec, channel: int, t_s: float, n: int, fs: float) -> np.ndarray:
        if em.type in ("gsm_cell", "fake_bts"):
            offset, fn0 = self._tdma[em.id]
            return gsm_downlink_iq(t_s + offset, n, fs, bsic=em.bsic, fn_epoch=fn0,
                                   payload=self._bcch(em, t_s))
        if em.type == "fm":
            rds = None if em.rds_pi is None else RdsConfig(pi=em.rds_pi, ps=em.rds_ps or "")
            return fm_broadcast_iq(t_s, n, fs, deviation_hz=em.deviation_khz * 1e3, stereo=em.stereo,
                                   rds=rds, audio_seed=_seed(self.scenario.seed, em.id) & 0xFFFF)
        offset, _ = self._tdma[em.id]
        activity = self._goip[em.id]

        def burst_kind(fn: np.ndarray) -> np.ndarray:
            t_frame = np.asarray(fn, dtype=float) * GSM_FRAME_S - offset
            on, since = activity.state(channel, t_frame)
            kind = np.where(on, 1, 0).astype(np.int8)
            kind[on & (since < 0.25)] = 2  # access bursts while the call is set up
            kind[on & (np.asarray(fn) % 26 == 25)] = 0  # idle frame of the 26-multiframe
            return kind

        return gsm_uplink_iq(t_s + offset, n, fs, timeslot=channel % 8, burst_kind=burst_kind,
                             tsc=em.bsic & 7, seed=_seed(self.scenario.seed, em.id, channel))

    def capture(self, sensor: SensorSpec | str, t_s: float, center_freq_hz: float, sample_rate_hz: float,
                n_samples: int, gain_db: float, rng: np.random.Generator) -> np.ndarray:
        """The complex baseband a sensor's ADC sees (full scale 1, before 8-bit quantization).

        Carriers are placed at their offset as seen through the sensor's LO error, scaled
        from dBm to dBFS by ``gain_db`` and the receiver's calibration, over thermal noise
        with the receiver's noise figure amplified by the same gain plus the ADC's own noise
        (the floor at low gain), plus the DC spike and IQ imbalance of an RTL-SDR.
        """
        s = self.scenario.sensor(sensor) if isinstance(sensor, str) else sensor
        rcv = s.receiver
        rx = self.sensor_position(s, t_s)
        lo_hz = center_freq_hz * (1 + rcv.lo_ppm * 1e-6)
        to_dbfs = gain_db - rcv.calibration_db
        thermal_dbfs = THERMAL_DBM_HZ + rcv.noise_figure_db + 10 * np.log10(sample_rate_hz) + to_dbfs
        noise_dbfs = 10 * np.log10(10 ** (thermal_dbfs / 10) + 10 ** (rcv.adc_noise_dbfs / 10))
        sigma = np.sqrt(10 ** (noise_dbfs / 10) / 2)
        x = (rng.standard_normal(n_samples, dtype=np.float32)
             + 1j * rng.standard_normal(n_samples, dtype=np.float32)).astype(np.complex64)
        x *= np.float32(sigma)
        t = np.arange(n_samples, dtype=np.float64) / sample_rate_hz
        half = sample_rate_hz / 2 + SPAN_MARGIN_HZ
        for em in self.scenario.emitters:
            if not em.on_air(t_s) or em.type == "phones":
                continue
            freqs = em.carrier_freqs_hz() * (1 + em.ppm * 1e-6)
            for ch, f in enumerate(freqs):
                df = f - lo_hz
                if abs(df) > half:
                    continue
                p_dbm = em.power_dbm + self.path_gain_db(em, f, rx, t_s)
                amp = np.float32(10 ** ((p_dbm + to_dbfs) / 20))
                if amp < sigma * 1e-3:
                    continue
                w = self._waveform(em, ch, t_s, n_samples, sample_rate_hz)
                rot = np.exp(1j * (2 * np.pi * df * (t + t_s) % (2 * np.pi))).astype(np.complex64)
                x += amp * w * rot
        # the front end's own third-order products of the FM band's strong stations (in the
        # capture or not); they grow 3 dB per dB of gain (sensors.sim.fm_effects)
        if FM_BAND_HZ[0] - half <= lo_hz <= FM_BAND_HZ[1] + half:
            fm = [(em, f * (1 + em.ppm * 1e-6)) for em in self.scenario.emitters
                  if em.type == "fm" and em.on_air(t_s) for f in em.carrier_freqs_hz()]
            if len(fm) >= 2:
                cars = [(f, em.power_dbm + self.path_gain_db(em, f, rx, t_s)) for em, f in fm]
                x += receiver_intermod_iq(
                    cars, lambda i: self._waveform(fm[i][0], 0, t_s, n_samples, sample_rate_hz),
                    lo_hz=lo_hz, sample_rate_hz=sample_rate_hz, t_s=t_s, n_samples=n_samples,
                    gain_db=gain_db, to_dbfs_db=to_dbfs)
        dc_rng = np.random.default_rng(_seed(s.id, round(center_freq_hz)))
        x += np.complex64(10 ** (rcv.dc_offset_dbfs / 20) * np.exp(2j * np.pi * dc_rng.random()))
        if rcv.iq_imbalance_db:
            g = 10 ** (rcv.iq_imbalance_db / 40)
            x = (x.real * g + 1j * x.imag / g).astype(np.complex64)
        return x
