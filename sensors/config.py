"""Sensor node configuration (TOML), checked key by key.

```toml
[sensor]
id = "roof-01"
source = "rtltcp:127.0.0.1:1234"     # rtlsdr:0 | rtltcp:HOST:PORT | FILE | sim:SENSOR_ID[@scenario.toml]
collector = "tcp://127.0.0.1:5555"
scan_interval_s = 30                 # start a scan this often (a scan that runs longer starts the next at once)
heartbeat_s = 10
calibration_db = -5.0                # dBm = dBFS - gain_db + calibration_db
ppm = 0.0                            # the dongle's known LO error (a starting point) ...
track_ppm = true                     # ... refined from GSM base stations' carriers after each sweep
gsmtap = "127.0.0.1:4729"            # optional: every decoded GSM frame also to Wireshark
max_scans = 0                        # 0: run until stopped
align_scans = false                  # true: start scans on UTC multiples of scan_interval_s (GOIP nodes)

[position]                           # fixed antenna ...
lat = 22.5431
lon = 114.0579
# gpsd = "127.0.0.1:2947"            # ... or a GPS through gpsd

[[scan]]
band = "gsm900-dl"                   # gsm900-dl | gsm900-ul | dcs1800-dl | fm
sample_rate_hz = 2400000
dwell_s = 0.02
gain_db = 38.6

[[scan]]                             # decode every cell's identity (FCCH, SCH, BCCH) ...
band = "gsm900-dl"
decode = true
dwell_s = 2.0                        # ... long enough for SI3 (sent twice every 1.9 s)
every = 10                           # ... on every 10th scan cycle, on hops with carriers

[[scan]]
band = "gsm900-ul"
dwell_s = 0.1                        # uplink: one detection per link (ARFCN x timeslot) ...
links = true                         # ... (the default); false: one per carrier, from the spectrum
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsp.bands import BANDS
from rfhunt.errors import ConfigError


@dataclass(frozen=True)
class ScanSpec:
    """How one band is swept."""

    band: str
    sample_rate_hz: float = 2.4e6
    dwell_s: float = 0.02
    gain_db: float = 30.0
    nfft: int = 256
    decode: bool = False
    every: int = 1
    links: bool = True  # GSM uplink bands: a detection per link (ARFCN x timeslot), not per carrier

    @property
    def kind(self) -> str:
        """Detection kind of the band."""
        return BANDS[self.band].kind


@dataclass(frozen=True)
class SensorConfig:
    """Everything a sensor node needs to run."""

    sensor_id: str
    source: str
    collector: str = "tcp://127.0.0.1:5555"
    scan_interval_s: float = 30.0
    heartbeat_s: float = 10.0
    calibration_db: float = -5.0
    ppm: float = 0.0
    track_ppm: bool = True
    gsmtap: str | None = None
    max_scans: int = 0
    align_scans: bool = False
    lat: float | None = None
    lon: float | None = None
    gpsd: str | None = None
    scans: tuple[ScanSpec, ...] = field(default_factory=lambda: DEFAULT_SCANS)
    outbox: str | None = None
    outbox_max_records: int = 1_000_000
    secret_key: str | None = None
    collector_key: str | None = None


DEFAULT_SCANS = (
    ScanSpec("gsm900-dl", 2.4e6, 0.02, 42.1),
    ScanSpec("gsm900-ul", 2.4e6, 0.02, 49.6),
    ScanSpec("fm", 2.4e6, 0.02, 20.7),
)

_SENSOR_KEYS = {"id", "source", "collector", "scan_interval_s", "heartbeat_s", "calibration_db", "max_scans",
                "align_scans", "ppm", "track_ppm", "gsmtap", "outbox", "outbox_max_records", "secret_key", "collector_key"}
_SCAN_KEYS = {"band", "sample_rate_hz", "dwell_s", "gain_db", "nfft", "decode", "every", "links"}
#: Shortest dwell that holds two TDMA frames, for counting a link's bursts, s.
MIN_LINK_DWELL_S = 0.01


def _num(src: str, tbl: dict, key: str, path: str, default: float, lo: float, hi: float) -> float:
    v = tbl.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ConfigError(f"{src}: {path}.{key}: must be a number in [{lo}, {hi}], got {v!r}")
    return float(v)


def _check_keys(src: str, tbl: Any, path: str, allowed: set[str]) -> dict:
    if not isinstance(tbl, dict):
        raise ConfigError(f"{src}: {path}: must be a table")
    unknown = sorted(set(tbl) - allowed)
    if unknown:
        raise ConfigError(f"{src}: {path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return tbl


def parse_sensor_config(data: dict[str, Any], src: str = "<memory>") -> SensorConfig:
    """Check and build a :class:`SensorConfig` from parsed TOML."""
    _check_keys(src, data, "(top level)", {"sensor", "position", "scan"})
    s = _check_keys(src, data.get("sensor", {}), "sensor", _SENSOR_KEYS)
    for key in ("id", "source"):
        if not isinstance(s.get(key), str) or not s[key]:
            raise ConfigError(f"{src}: sensor.{key}: required string is missing or empty")
    pos = _check_keys(src, data.get("position", {}), "position", {"lat", "lon", "gpsd"})
    lat = lon = None
    if "lat" in pos or "lon" in pos:
        lat = _num(src, pos, "lat", "position", None, -90, 90)  # type: ignore[arg-type]
        lon = _num(src, pos, "lon", "position", None, -180, 180)  # type: ignore[arg-type]
    gpsd = pos.get("gpsd")
    if gpsd is not None and (not isinstance(gpsd, str) or ":" not in gpsd):
        raise ConfigError(f"{src}: position.gpsd: must be 'HOST:PORT', got {gpsd!r}")
    scans_raw = data.get("scan")
    scans = DEFAULT_SCANS
    if scans_raw is not None:
        if not isinstance(scans_raw, list) or not scans_raw:
            raise ConfigError(f"{src}: scan: must be a non-empty array of tables ([[scan]])")
        out = []
        for i, sc in enumerate(scans_raw):
            path = f"scan[{i}]"
            _check_keys(src, sc, path, _SCAN_KEYS)
            if sc.get("band") not in BANDS:
                raise ConfigError(f"{src}: {path}.band: {sc.get('band')!r} is not one of {', '.join(BANDS)}")
            nfft = sc.get("nfft", 256)
            if isinstance(nfft, bool) or not isinstance(nfft, int) or not 64 <= nfft <= 65536:
                raise ConfigError(f"{src}: {path}.nfft: must be an integer in [64, 65536], got {nfft!r}")
            decode = sc.get("decode", False)
            if not isinstance(decode, bool):
                raise ConfigError(f"{src}: {path}.decode: must be true or false, got {decode!r}")
            if decode and BANDS[sc["band"]].kind not in ("gsm_downlink", "fm"):
                raise ConfigError(f"{src}: {path}.decode: only GSM downlink and FM bands can be decoded, not {sc['band']!r}")
            every = sc.get("every", 1)
            if isinstance(every, bool) or not isinstance(every, int) or every < 1:
                raise ConfigError(f"{src}: {path}.every: must be a positive integer, got {every!r}")
            uplink = BANDS[sc["band"]].kind == "gsm_uplink"
            links = sc.get("links", uplink)
            if not isinstance(links, bool):
                raise ConfigError(f"{src}: {path}.links: must be true or false, got {links!r}")
            if links and not uplink:
                raise ConfigError(f"{src}: {path}.links: only GSM uplink bands have links (ARFCN x timeslot), "
                                  f"not {sc['band']!r}")
            dwell_s = _num(src, sc, "dwell_s", path, 0.02, 1e-3, 10.0)
            if links and dwell_s < MIN_LINK_DWELL_S:
                raise ConfigError(f"{src}: {path}.dwell_s: {dwell_s} s is too short to count uplink bursts "
                                  f"(links = true needs at least {MIN_LINK_DWELL_S} s, two TDMA frames)")
            out.append(ScanSpec(sc["band"], _num(src, sc, "sample_rate_hz", path, 2.4e6, 225e3, 3.2e6),
                                dwell_s, _num(src, sc, "gain_db", path, 30.0, 0.0, 50.0), nfft, decode, every,
                                links))
        scans = tuple(out)
    max_scans = s.get("max_scans", 0)
    if isinstance(max_scans, bool) or not isinstance(max_scans, int) or max_scans < 0:
        raise ConfigError(f"{src}: sensor.max_scans: must be a non-negative integer, got {max_scans!r}")
    collector = s.get("collector", "tcp://127.0.0.1:5555")
    if not isinstance(collector, str) or "://" not in collector:
        raise ConfigError(f"{src}: sensor.collector: must be a ZeroMQ endpoint like tcp://HOST:PORT, got {collector!r}")
    gsmtap = s.get("gsmtap")
    if gsmtap is not None and (not isinstance(gsmtap, str) or not gsmtap):
        raise ConfigError(f"{src}: sensor.gsmtap: must be 'HOST' or 'HOST:PORT', got {gsmtap!r}")
    track = s.get("track_ppm", True)
    if not isinstance(track, bool):
        raise ConfigError(f"{src}: sensor.track_ppm: must be true or false, got {track!r}")
    outbox = s.get("outbox")
    if outbox is not None and (not isinstance(outbox, str) or not outbox):
        raise ConfigError(f"{src}: sensor.outbox: must be the path of the outbox file, got {outbox!r}")
    outbox_max = s.get("outbox_max_records", 1_000_000)
    if isinstance(outbox_max, bool) or not isinstance(outbox_max, int) or outbox_max < 1:
        raise ConfigError(f"{src}: sensor.outbox_max_records: must be a positive integer, got {outbox_max!r}")
    scan_interval_s = _num(src, s, "scan_interval_s", "sensor", 30.0, 0.0, 86400.0)
    align = s.get("align_scans", False)
    if not isinstance(align, bool):
        raise ConfigError(f"{src}: sensor.align_scans: must be true or false, got {align!r}")
    if align and scan_interval_s <= 0:
        raise ConfigError(f"{src}: sensor.align_scans: needs a scan_interval_s above 0 to align scans to")
    curve = {}
    for key in ("secret_key", "collector_key"):
        v = s.get(key)
        if v is not None and (not isinstance(v, str) or not v):
            raise ConfigError(f"{src}: sensor.{key}: must be the path of a CurveZMQ key file, got {v!r}")
        curve[key] = v
    if (curve["secret_key"] is None) != (curve["collector_key"] is None):
        raise ConfigError(f"{src}: sensor.secret_key and sensor.collector_key go together (CurveZMQ needs the "
                          "sensor's .key_secret file and the collector's public .key file)")
    return SensorConfig(
        outbox=outbox, outbox_max_records=outbox_max, **curve,
        ppm=_num(src, s, "ppm", "sensor", 0.0, -300.0, 300.0), track_ppm=track, gsmtap=gsmtap,
        sensor_id=s["id"], source=s["source"], collector=collector,
        scan_interval_s=scan_interval_s, align_scans=align,
        heartbeat_s=_num(src, s, "heartbeat_s", "sensor", 10.0, 0.1, 3600.0),
        calibration_db=_num(src, s, "calibration_db", "sensor", -5.0, -60.0, 60.0),
        max_scans=max_scans, lat=lat, lon=lon, gpsd=gpsd, scans=scans)


def load_sensor_config(path: str | Path) -> SensorConfig:
    """Read and check a sensor configuration file; ConfigError names the file and key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read sensor configuration: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_sensor_config(data, str(p))
