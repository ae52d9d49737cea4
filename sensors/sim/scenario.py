"""Scenario files (TOML): the area, the sensors and the emitters of a simulated world.

Every table and key is checked; an unknown key, a missing field or a value out of range
raises :class:`~rfhunt.errors.ConfigError` naming the file and the key path, e.g.
``scenario.toml: emitters[3].arfcn: 2000 is not a GSM900 ARFCN``.

Positions are WGS84 degrees, ``lat`` and ``lon`` separately; a route is a list of
``[lat, lon]`` pairs (that order).
"""

from __future__ import annotations

import datetime
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dsp.bands import arfcn_to_downlink_hz, arfcn_to_uplink_hz
from rfhunt.errors import ConfigError, DspError

DEFAULT_SCENARIO = "default_city.toml"


@dataclass(frozen=True)
class Propagation:
    """Log-distance path loss with log-normal shadowing.

    ``loss_db(d) = 20 log10(4 pi f / c) + 10 n log10(d / 1 m) + X``, ``X ~ N(0, shadowing_db)``
    correlated over ``decorrelation_m`` along the ground.
    """

    path_loss_exponent: float = 3.0
    shadowing_db: float = 6.0
    decorrelation_m: float = 50.0


@dataclass(frozen=True)
class Receiver:
    """An RTL-SDR front end.

    ``calibration_db`` maps digital power to antenna power: ``dBm = dBFS - gain_db +
    calibration_db``; ``dc_offset_dbfs`` is the LO leakage spike; ``lo_ppm`` the crystal error;
    ``adc_noise_dbfs`` the noise the RTL2832U's ADC and decimator add after the tuner's gain
    (it sets the floor when the gain is low, and dithers the 8-bit output).
    """

    noise_figure_db: float = 7.0
    adc_noise_dbfs: float = -48.0
    lo_ppm: float = 0.0
    calibration_db: float = -5.0
    dc_offset_dbfs: float = -40.0
    iq_imbalance_db: float = 0.1


@dataclass(frozen=True)
class SensorSpec:
    """A sensor node: fixed at (lat, lon) or driving ``route`` at ``speed_mps``."""

    id: str
    lat: float
    lon: float
    route: tuple[tuple[float, float], ...] = ()
    speed_mps: float = 0.0
    loop: bool = True
    receiver: Receiver = Receiver()

    @property
    def mobile(self) -> bool:
        return len(self.route) >= 2


@dataclass(frozen=True)
class EmitterSpec:
    """A transmitter of the simulated world.

    ``type`` is ``gsm_cell`` (a legitimate BTS), ``fake_bts``, ``fm``, ``goip`` or
    ``phones``. ``power_dbm`` is EIRP (for GOIP: of each channel; for phones: the handsets'
    maximum, 33 dBm in GSM900, which power control lowers down to ``power_min_dbm``).

    A GOIP gateway holds ``channels`` handsets in one box, each busy ``activity`` of the time
    with calls of ``call_mean_s`` on average, day and night, from ``start_s`` to ``stop_s``.
    ``phones`` is a crowd of ``count`` ordinary subscribers spread over ``radius_m`` around
    (lat, lon), each offering ``erlang`` of traffic in the busy hour, ``night_factor`` of that
    at night (a daily rhythm in local solar time); a fraction ``moving`` of its calls are made
    from phones moving along a road at ``speed_mps``. Both use the uplink channels of
    ``arfcns`` (the serving cells' TRXs). Phone crowds exist at observation level only
    (:mod:`sensors.sim.uplink_world`); the IQ-level :class:`~sensors.sim.world.World` leaves them out.

    GSM cells broadcast their identity, ``cro_db`` (CELL_RESELECT_OFFSET), ``t3212_s`` (the
    periodic location-update timer, a multiple of 360 s; 0 none) and ``neighbours`` (BCCH
    ARFCNs; ``None``: a legitimate cell lists its operator's other cells, a fake base
    station none). They are on air from ``start_s`` to ``stop_s`` (seconds into the
    scenario; ``None``: to the end). A fake base station with ``clone_of`` takes the named
    cell's MCC, MNC, LAC and CID (and BSIC, unless it gives one).
    """

    id: str
    type: str
    lat: float
    lon: float
    power_dbm: float
    route: tuple[tuple[float, float], ...] = ()
    speed_mps: float = 0.0
    loop: bool = True
    ppm: float = 0.0
    # GSM
    arfcn: int = 0
    mcc: int = 460
    mnc: int = 0
    lac: int = 0
    cid: int = 0
    bsic: int = 0
    lac_change_s: float = 0.0
    cro_db: int = 0
    t3212_s: int = 3600
    neighbours: tuple[int, ...] | None = None
    start_s: float = 0.0
    stop_s: float | None = None
    clone_of: str | None = None
    # FM
    freq_hz: float = 0.0
    licensed: bool = True
    stereo: bool = True
    deviation_khz: float = 75.0
    rds_pi: int | None = None
    rds_ps: str | None = None
    name: str = ""
    # GOIP
    channels: int = 0
    arfcns: tuple[int, ...] = ()
    activity: float = 0.0
    call_mean_s: float = 90.0
    # phone crowd
    count: int = 0
    radius_m: float = 0.0
    erlang: float = 0.0
    night_factor: float = 0.1
    moving: float = 0.0
    power_min_dbm: float = 5.0

    @property
    def mobile(self) -> bool:
        return len(self.route) >= 2

    @property
    def kind(self) -> str:
        """Detection kind this emitter produces."""
        return {"gsm_cell": "gsm_downlink", "fake_bts": "gsm_downlink", "fm": "fm", "goip": "gsm_uplink",
                "phones": "gsm_uplink"}[self.type]

    def carrier_freqs_hz(self) -> np.ndarray:
        """Nominal carrier frequencies, Hz (one per GOIP channel)."""
        if self.type in ("gsm_cell", "fake_bts"):
            return np.atleast_1d(arfcn_to_downlink_hz(self.arfcn))
        if self.type in ("goip", "phones"):
            return np.atleast_1d(arfcn_to_uplink_hz(np.asarray(self.arfcns, dtype=np.int64)))
        return np.array([self.freq_hz])

    def on_air(self, t_s: float) -> bool:
        """Whether the emitter transmits at ``t_s`` seconds into the scenario."""
        return t_s >= self.start_s and (self.stop_s is None or t_s < self.stop_s)

    def lac_at(self, t_s: float) -> int:
        """LAC broadcast at ``t_s`` seconds into the scenario (fake BTSs cycle theirs)."""
        if self.lac_change_s > 0:
            return (self.lac + int(t_s // self.lac_change_s) * 7) % 65534 + 1
        return self.lac


@dataclass(frozen=True)
class Scenario:
    """A whole simulated world."""

    name: str
    seed: int
    start_utc: float
    duration_s: float
    center_lat: float
    center_lon: float
    radius_m: float
    propagation: Propagation
    sensors: tuple[SensorSpec, ...]
    emitters: tuple[EmitterSpec, ...]
    source: str = "<memory>"

    def sensor(self, sensor_id: str) -> SensorSpec:
        for s in self.sensors:
            if s.id == sensor_id:
                return s
        raise ConfigError(f"{self.source}: no sensor {sensor_id!r}; sensors are "
                          f"{', '.join(s.id for s in self.sensors)}")


# --- strict loading ------------------------------------------------------------------------

_GSM_KEYS = {"arfcn", "mcc", "mnc", "lac", "cid", "bsic", "ppm", "cro_db", "t3212_s", "neighbours", "start_s", "stop_s"}
_EMITTER_KEYS: dict[str, set[str]] = {
    "gsm_cell": _GSM_KEYS,
    "fake_bts": _GSM_KEYS | {"lac_change_s", "route", "speed_mps", "loop", "clone_of"},
    "fm": {"freq_hz", "licensed", "stereo", "deviation_khz", "rds_pi", "rds_ps", "name", "ppm"},
    "goip": {"arfcns", "channels", "activity", "call_mean_s", "ppm", "start_s", "stop_s"},
    "phones": {"arfcns", "count", "radius_m", "erlang", "call_mean_s", "night_factor", "moving", "speed_mps",
               "power_min_dbm"},
}
_COMMON_EMITTER = {"id", "type", "lat", "lon", "power_dbm"}


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {msg}")

    def table(self, obj: Any, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(obj, dict):
            raise self.fail(path, f"must be a table, got {type(obj).__name__}")
        unknown = sorted(set(obj) - allowed)
        if unknown:
            raise self.fail(path, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(obj))
        if missing:
            raise self.fail(path, f"missing key {missing[0]!r}")
        return obj

    def num(self, obj: dict, key: str, path: str, default: float | None = None,
            lo: float = -np.inf, hi: float = np.inf) -> float:
        if key not in obj:
            if default is None:
                raise self.fail(path, f"missing key {key!r}")
            return default
        v = obj[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise self.fail(f"{path}.{key}", f"must be a number, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(f"{path}.{key}", f"{v} is outside [{lo}, {hi}]")
        return float(v)

    def integer(self, obj: dict, key: str, path: str, default: int | None = None,
                lo: int = 0, hi: int = 2**31) -> int:
        if key not in obj:
            if default is None:
                raise self.fail(path, f"missing key {key!r}")
            return default
        v = obj[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{path}.{key}", f"must be an integer, got {v!r}")
        if not lo <= v <= hi:
            raise self.fail(f"{path}.{key}", f"{v} is outside [{lo}, {hi}]")
        return v

    def boolean(self, obj: dict, key: str, path: str, default: bool) -> bool:
        v = obj.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(f"{path}.{key}", f"must be true or false, got {v!r}")
        return v

    def string(self, obj: dict, key: str, path: str, default: str | None = None) -> str:
        if key not in obj:
            if default is None:
                raise self.fail(path, f"missing key {key!r}")
            return default
        v = obj[key]
        if not isinstance(v, str) or not v:
            raise self.fail(f"{path}.{key}", f"must be a non-empty string, got {v!r}")
        return v

    def latlon(self, obj: dict, path: str) -> tuple[float, float]:
        return (self.num(obj, "lat", path, lo=-90, hi=90), self.num(obj, "lon", path, lo=-180, hi=180))

    def route(self, obj: dict, path: str) -> tuple[tuple[float, float], ...]:
        r = obj.get("route", [])
        if not isinstance(r, list) or any(
                not isinstance(p, list) or len(p) != 2 or not all(
                    isinstance(c, (int, float)) and not isinstance(c, bool) for c in p) for p in r):
            raise self.fail(f"{path}.route", "must be a list of [lat, lon] pairs")
        if len(r) == 1:
            raise self.fail(f"{path}.route", "needs at least two points")
        for i, (la, lo) in enumerate(r):
            if not (-90 <= la <= 90 and -180 <= lo <= 180):
                raise self.fail(f"{path}.route[{i}]", f"[{la}, {lo}] is not a [lat, lon] pair")
        return tuple((float(a), float(b)) for a, b in r)


def _receiver(ctx: _Ctx, obj: Any, path: str, base: Receiver) -> Receiver:
    keys = {"noise_figure_db", "lo_ppm", "calibration_db", "dc_offset_dbfs", "iq_imbalance_db", "adc_noise_dbfs"}
    obj = ctx.table(obj, path, keys)
    return Receiver(
        noise_figure_db=ctx.num(obj, "noise_figure_db", path, base.noise_figure_db, 0, 30),
        adc_noise_dbfs=ctx.num(obj, "adc_noise_dbfs", path, base.adc_noise_dbfs, -120, -10),
        lo_ppm=ctx.num(obj, "lo_ppm", path, base.lo_ppm, -200, 200),
        calibration_db=ctx.num(obj, "calibration_db", path, base.calibration_db, -60, 60),
        dc_offset_dbfs=ctx.num(obj, "dc_offset_dbfs", path, base.dc_offset_dbfs, -200, 0),
        iq_imbalance_db=ctx.num(obj, "iq_imbalance_db", path, base.iq_imbalance_db, 0, 3),
    )


def _emitter(ctx: _Ctx, obj: Any, path: str) -> EmitterSpec:
    if not isinstance(obj, dict) or "type" not in obj:
        raise ctx.fail(path, "must be a table with a 'type' (gsm_cell, fake_bts, fm, goip, phones)")
    etype = obj["type"]
    if etype not in _EMITTER_KEYS:
        raise ctx.fail(f"{path}.type", f"unknown emitter type {etype!r}; known: {', '.join(_EMITTER_KEYS)}")
    ctx.table(obj, path, _COMMON_EMITTER | _EMITTER_KEYS[etype], {"id", "lat", "lon", "power_dbm"})
    lat, lon = ctx.latlon(obj, path)
    kw: dict[str, Any] = dict(
        id=ctx.string(obj, "id", path), type=etype, lat=lat, lon=lon,
        power_dbm=ctx.num(obj, "power_dbm", path, lo=-30, hi=100),
        ppm=ctx.num(obj, "ppm", path, 0.0, -100, 100),
    )
    if etype in ("gsm_cell", "fake_bts"):
        arfcn = ctx.integer(obj, "arfcn", path, lo=0, hi=1023)
        try:
            f = float(arfcn_to_downlink_hz(arfcn))
        except DspError:
            raise ctx.fail(f"{path}.arfcn", f"{arfcn} is not a GSM900 or DCS1800 ARFCN") from None
        if not 925e6 <= f <= 960e6 and not 1805e6 <= f <= 1880e6:
            raise ctx.fail(f"{path}.arfcn", f"{arfcn} is not a downlink channel rfhunt scans")
        kw.update(arfcn=arfcn, mcc=ctx.integer(obj, "mcc", path, 460, 1, 999),
                  mnc=ctx.integer(obj, "mnc", path, 0, 0, 999), lac=ctx.integer(obj, "lac", path, 1, 1, 65533),
                  cid=ctx.integer(obj, "cid", path, 0, 0, 65535), bsic=ctx.integer(obj, "bsic", path, 0, 0, 63),
                  cro_db=ctx.integer(obj, "cro_db", path, 0, 0, 126))
        if kw["cro_db"] % 2:
            raise ctx.fail(f"{path}.cro_db", f"{kw['cro_db']} is not a multiple of 2 dB (CELL_RESELECT_OFFSET steps)")
        kw["t3212_s"] = ctx.integer(obj, "t3212_s", path, 3600, 0, 255 * 360)
        if kw["t3212_s"] % 360:
            raise ctx.fail(f"{path}.t3212_s", f"{kw['t3212_s']} is not a multiple of 360 s (T3212 counts 6-minute units)")
        if "neighbours" in obj:
            nb = obj["neighbours"]
            if not isinstance(nb, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in nb):
                raise ctx.fail(f"{path}.neighbours", "must be a list of ARFCNs")
            for a in nb:
                try:
                    arfcn_to_downlink_hz(a)
                except DspError:
                    raise ctx.fail(f"{path}.neighbours", f"{a} is not a GSM900 or DCS1800 ARFCN") from None
            kw["neighbours"] = tuple(sorted(set(nb)))
        kw["start_s"] = ctx.num(obj, "start_s", path, 0.0, 0, 30 * 86400)
        if "stop_s" in obj:
            kw["stop_s"] = ctx.num(obj, "stop_s", path, lo=0, hi=30 * 86400)
            if kw["stop_s"] <= kw["start_s"]:
                raise ctx.fail(f"{path}.stop_s", f"{kw['stop_s']} is not after start_s {kw['start_s']}")
        if etype == "fake_bts":
            kw.update(lac_change_s=ctx.num(obj, "lac_change_s", path, 0.0, 0, 1e6),
                      route=ctx.route(obj, path), speed_mps=ctx.num(obj, "speed_mps", path, 0.0, 0, 70),
                      loop=ctx.boolean(obj, "loop", path, True))
            if kw["route"] and kw["speed_mps"] <= 0:
                raise ctx.fail(f"{path}.speed_mps", "a moving emitter needs a speed above 0")
            if "clone_of" in obj:
                kw["clone_of"] = ctx.string(obj, "clone_of", path)
                kw["bsic"] = ctx.integer(obj, "bsic", path, -1, 0, 63)
    elif etype == "fm":
        pi = obj.get("rds_pi")
        if pi is not None:
            if not isinstance(pi, str):
                raise ctx.fail(f"{path}.rds_pi", f"must be a hex string like 'C201', got {pi!r}")
            try:
                pi_val = int(pi, 16)
            except ValueError:
                raise ctx.fail(f"{path}.rds_pi", f"{pi!r} is not hexadecimal") from None
            if not 0 <= pi_val <= 0xFFFF:
                raise ctx.fail(f"{path}.rds_pi", f"{pi!r} does not fit 16 bits")
            pi = pi_val
        ps = obj.get("rds_ps")
        if ps is not None and (not isinstance(ps, str) or len(ps) > 8 or not ps.isascii()):
            raise ctx.fail(f"{path}.rds_ps", f"must be at most 8 ASCII characters, got {ps!r}")
        if (pi is None) != (ps is None):
            raise ctx.fail(path, "rds_pi and rds_ps go together (RDS needs both)")
        kw.update(freq_hz=ctx.num(obj, "freq_hz", path, lo=87.5e6, hi=108e6),
                  licensed=ctx.boolean(obj, "licensed", path, True), stereo=ctx.boolean(obj, "stereo", path, True),
                  deviation_khz=ctx.num(obj, "deviation_khz", path, 75.0, 1, 200), rds_pi=pi,
                  rds_ps=None if ps is None else ps.ljust(8), name=obj.get("name", "") or "")
    else:  # goip, phones
        arfcns = obj.get("arfcns")
        if not isinstance(arfcns, list) or not arfcns or not all(isinstance(a, int) and not isinstance(a, bool)
                                                                for a in arfcns):
            raise ctx.fail(f"{path}.arfcns", "must be a non-empty list of GSM900 ARFCNs")
        try:
            arfcn_to_uplink_hz(np.asarray(arfcns, dtype=np.int64))
        except DspError as exc:
            raise ctx.fail(f"{path}.arfcns", str(exc)) from None
        if etype == "phones":
            kw.update(arfcns=tuple(arfcns), count=ctx.integer(obj, "count", path, 500, 1, 1_000_000),
                      radius_m=ctx.num(obj, "radius_m", path, 200.0, 1, 50e3),
                      erlang=ctx.num(obj, "erlang", path, 0.03, 0, 1),
                      call_mean_s=ctx.num(obj, "call_mean_s", path, 100.0, 1, 86400),
                      night_factor=ctx.num(obj, "night_factor", path, 0.1, 0, 1),
                      moving=ctx.num(obj, "moving", path, 0.0, 0, 1),
                      speed_mps=ctx.num(obj, "speed_mps", path, 10.0, 0.1, 70),
                      power_min_dbm=ctx.num(obj, "power_min_dbm", path, 5.0, -30, 100))
            if kw["power_min_dbm"] > kw["power_dbm"]:
                raise ctx.fail(f"{path}.power_min_dbm", f"{kw['power_min_dbm']} is above power_dbm {kw['power_dbm']}")
            return EmitterSpec(**kw)
        channels = ctx.integer(obj, "channels", path, len(arfcns), 1, 512)
        if channels != len(arfcns):
            raise ctx.fail(f"{path}.channels", f"{channels} channels but {len(arfcns)} ARFCNs listed")
        kw.update(arfcns=tuple(arfcns), channels=channels,
                  activity=ctx.num(obj, "activity", path, 0.8, 0, 1),
                  call_mean_s=ctx.num(obj, "call_mean_s", path, 90.0, 1, 86400),
                  start_s=ctx.num(obj, "start_s", path, 0.0, 0, 30 * 86400))
        if "stop_s" in obj:
            kw["stop_s"] = ctx.num(obj, "stop_s", path, lo=0, hi=30 * 86400)
            if kw["stop_s"] <= kw["start_s"]:
                raise ctx.fail(f"{path}.stop_s", f"{kw['stop_s']} is not after start_s {kw['start_s']}")
    return EmitterSpec(**kw)


def _resolve_clones(ctx: _Ctx, emitters: list[EmitterSpec]) -> list[EmitterSpec]:
    """Give each fake base station with ``clone_of`` the identity of the cell it copies."""
    from dataclasses import replace

    cells = {e.id: e for e in emitters if e.type == "gsm_cell"}
    out = []
    for i, e in enumerate(emitters):
        if e.clone_of is not None:
            cell = cells.get(e.clone_of)
            if cell is None:
                raise ctx.fail(f"emitters[{i}].clone_of", f"no gsm_cell {e.clone_of!r} to clone")
            e = replace(e, mcc=cell.mcc, mnc=cell.mnc, lac=cell.lac, cid=cell.cid,
                        bsic=cell.bsic if e.bsic < 0 else e.bsic)
        out.append(e)
    return out


def parse_scenario(data: dict[str, Any], source: str = "<memory>") -> Scenario:
    """Build a :class:`Scenario` from parsed TOML, checking every key."""
    ctx = _Ctx(source)
    top = ctx.table(data, "(top level)", {"scenario", "area", "propagation", "receiver", "sensors", "emitters"},
                    {"area", "sensors", "emitters"})
    sc = ctx.table(top.get("scenario", {}), "scenario", {"name", "seed", "start_utc", "duration_s"})
    area = ctx.table(top["area"], "area", {"center_lat", "center_lon", "radius_m"}, {"center_lat", "center_lon"})
    prop = ctx.table(top.get("propagation", {}), "propagation",
                     {"path_loss_exponent", "shadowing_db", "decorrelation_m"})
    base = _receiver(ctx, top.get("receiver", {}), "receiver", Receiver())
    start = sc.get("start_utc", "2026-01-01T12:00:00Z")
    try:
        if isinstance(start, datetime.datetime):
            start_dt = start
        else:
            start_dt = datetime.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        if start_dt.tzinfo is None:
            start_dt = start_dt.replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ctx.fail("scenario.start_utc", f"{start!r} is not an ISO 8601 time") from None
    sensors_raw = top["sensors"]
    if not isinstance(sensors_raw, list) or not sensors_raw:
        raise ctx.fail("sensors", "must be a non-empty array of tables ([[sensors]])")
    sensors = []
    for i, s in enumerate(sensors_raw):
        path = f"sensors[{i}]"
        ctx.table(s, path, {"id", "lat", "lon", "route", "speed_mps", "loop", "receiver"}, {"id"})
        route = ctx.route(s, path)
        if route:
            lat, lon = route[0]
            speed = ctx.num(s, "speed_mps", path, lo=0.1, hi=70)
        else:
            lat, lon = ctx.latlon(s, path)
            speed = 0.0
        sensors.append(SensorSpec(id=ctx.string(s, "id", path), lat=lat, lon=lon, route=route, speed_mps=speed,
                                  loop=ctx.boolean(s, "loop", path, True),
                                  receiver=_receiver(ctx, s.get("receiver", {}), f"{path}.receiver", base)))
    emitters_raw = top["emitters"]
    if not isinstance(emitters_raw, list):
        raise ctx.fail("emitters", "must be an array of tables ([[emitters]])")
    emitters = [_emitter(ctx, e, f"emitters[{i}]") for i, e in enumerate(emitters_raw)]
    emitters = _resolve_clones(ctx, emitters)
    for what, items in (("sensor", sensors), ("emitter", emitters)):
        seen: set[str] = set()
        for it in items:
            if it.id in seen:
                raise ctx.fail(f"{what}s", f"duplicate {what} id {it.id!r}")
            seen.add(it.id)
    return Scenario(
        name=ctx.string(sc, "name", "scenario", Path(source).stem),
        seed=ctx.integer(sc, "seed", "scenario", 1, 0, 2**32 - 1),
        start_utc=start_dt.timestamp(),
        duration_s=ctx.num(sc, "duration_s", "scenario", 600.0, 1, 30 * 86400),
        center_lat=ctx.num(area, "center_lat", "area", lo=-90, hi=90),
        center_lon=ctx.num(area, "center_lon", "area", lo=-180, hi=180),
        radius_m=ctx.num(area, "radius_m", "area", 5000.0, 100, 200e3),
        propagation=Propagation(
            path_loss_exponent=ctx.num(prop, "path_loss_exponent", "propagation", 3.0, 1.5, 6),
            shadowing_db=ctx.num(prop, "shadowing_db", "propagation", 6.0, 0, 20),
            decorrelation_m=ctx.num(prop, "decorrelation_m", "propagation", 50.0, 1, 10000)),
        sensors=tuple(sensors), emitters=tuple(emitters), source=source)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file; ``None`` loads the default city that ships with rfhunt.

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or any key is unknown or invalid.
    """
    if path is None:
        text = resources.files("sensors.sim").joinpath("scenarios", DEFAULT_SCENARIO).read_text("utf-8")
        source = f"<built-in {DEFAULT_SCENARIO}>"
    else:
        p = Path(path)
        try:
            text = p.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read scenario: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: scenario is not UTF-8 text") from None
        source = str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_scenario(data, source)
