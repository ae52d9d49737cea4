"""The collector's TOML configuration.

Example (every key optional; relative paths, including the file of a ``sqlite:///``
URL, are relative to the folder of the config file)::

    [collector]
    db_url = "sqlite:///rfhunt.db"
    bind = "tcp://127.0.0.1:5555"
    pub_bind = "tcp://127.0.0.1:5556"     # live feed (detections, emitters, alerts); omit for none
    relocate_interval_s = 2.0
    max_future_s = 86400                  # records dated further ahead are rejected
    max_batch = 1000                      # most records stored in one transaction
    stats_interval_s = 60                 # an event=stats log line this often
    secret_key = "keys/collector.key_secret"   # CurveZMQ: the collector's keypair ...
    enrolled_dir = "enrolled"             # ... and the folder of enrolled sensor keys (both or none)

    [localization]
    shadowing_db = 6.0
    path_loss_exponent = { gsm_downlink = 3.0, gsm_uplink = 3.0, fm = 2.8 }
    locate_window_s = 3600                # fit detections this far before the last one
    eirp_dbm = { gsm_downlink = [20, 50], fm = false }   # EIRP prior per kind (true: default range)

    [judge]
    uplink_window_s = 3600                # GOIP fallback clusters: uplinks heard this recently
    goip_window_s = 86400                 # GOIP place clustering over the last 24 h of uplink links
    slow_judge_interval_s = 300           # GOIP clustering and FM evidence are refreshed this often
    suspicious_score = 3.5                # rogue-cell score thresholds (collector.rogue)
    rogue_score = 6.0
    evidence_window_s = 21600             # a cell is judged from its last 6 h of detections
    motion_window_s = 300                 # short-window positions for the motion test (0: off)
    baseline_interval_s = 3600            # learn the baseline this often (0: never)
    baseline_min_span_s = 21600           # a cell is learned once seen over 6 h

    [evidence]
    auto_verdicts = ["unlicensed", "suspicious", "rogue"]   # ask sensors for evidence of carriers so judged ([]: never)
    snippet_s = 5.0                       # length of each FM audio / IQ snippet asked for
    gsm_snippet_s = 1.0                   # ... and of a GSM cell's channel IQ (1.08 MS/s: 8.7 MB a second)
    request_ttl_s = 3600                  # a request is sent to sensors for this long
    request_resend_s = 30                 # ... again this often while open (a sensor may have reconnected)

    [reference]
    gsm_csv = "operator_cells.csv"
    fm_registry_csv = "fm_registry.csv"

Unknown sections or keys raise :class:`~rfhunt.errors.ConfigError` naming key and file.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from collector.localize import DEFAULT_EIRP_DBM
from collector.store import redact_url
from rfhunt.errors import ConfigError
from rfhunt.records import KINDS, MAX_EVIDENCE_SECONDS

DEFAULT_PATH_LOSS_EXPONENT = {"gsm_downlink": 3.0, "gsm_uplink": 3.0, "fm": 2.8}
#: EIRP prior of the localization per kind when ``[localization] eirp_dbm`` does not say
#: (None: off; see :data:`collector.localize.DEFAULT_EIRP_DBM` for why).
DEFAULT_EIRP_PRIOR: dict[str, tuple[float, float] | None] = {k: None for k in DEFAULT_PATH_LOSS_EXPONENT}
#: Bounds of an EIRP prior's edges, dBm.
EIRP_LIMITS_DBM = (-30.0, 100.0)


@dataclass(frozen=True)
class CollectorConfig:
    """Settings of the collector.

    Attributes
    ----------
    db_url : str
        SQLAlchemy URL of the store.
    bind : str
        ZeroMQ endpoint of the ROUTER socket sensors connect to.
    pub_bind : str or None
        ZeroMQ endpoint of the PUB socket of the live feed: new detections, emitter updates
        and alerts (None: no feed).
    relocate_interval_s : float
        Least time between two re-localisation passes, seconds.
    shadowing_db : float
        Log-normal shadowing sigma, dB.
    path_loss_exponent : dict
        Path-loss exponent n per detection kind.
    eirp_dbm : dict
        Soft range (low, high) of the transmitters' effective EIRP per detection kind, dBm,
        a prior of the localization (see :mod:`collector.localize`); None for a kind: no
        prior, the transmit power free. Default: none (the ranges of
        :data:`collector.localize.DEFAULT_EIRP_DBM` with ``true``).
    gsm_csv, fm_registry_csv : Path or None
        Reference files (see :mod:`collector.reference`).
    max_batch : int
        Most messages stored in one transaction.
    max_future_s : float
        Records dated more than this ahead of the collector's clock are rejected, seconds.
    locate_window_s : float
        An emitter is located from its detections of the last ``locate_window_s`` seconds
        before its last detection.
    uplink_window_s : float
        GSM uplink emitters last heard more than this before the newest uplink do not
        count for GOIP clusters, seconds.
    goip_window_s : float
        GOIP place clustering (:mod:`collector.goip`) looks at the uplink links (detections
        with a timeslot) of this many seconds before the newest, seconds.
    slow_judge_interval_s : float
        The GOIP clustering and the FM evidence (registry, history, schedule) are refreshed
        at most this often, seconds of the collector's clock; verdicts in between reuse them.
    suspicious_score, rogue_score : float
        Rogue-cell score thresholds (see :mod:`collector.rogue`).
    evidence_window_s : float
        A GSM cell is judged from its detections of this many seconds before the newest.
    motion_window_s : float
        A GSM cell is also located from its last ``motion_window_s`` seconds of detections
        (the ``moving_position`` test); 0 turns that off.
    baseline_interval_s : float
        The baseline is learned from the history this often (seconds of the collector's
        clock); 0 never.
    baseline_min_span_s : float
        A cell joins the baseline once its sightings span this long, seconds.
    stats_interval_s : float
        The running collector logs its counters this often, seconds.
    secret_key : Path or None
        The collector's CurveZMQ ``.key_secret`` file; with it the ROUTER socket admits
        only sensors whose public key lies in ``enrolled_dir`` (see :mod:`collector.auth`).
    enrolled_dir : Path or None
        Folder of the enrolled sensors' public keys (``rfhunt keys enroll``); required
        with ``secret_key``.
    auto_verdicts : tuple of str
        Verdicts on which the collector asks sensors for evidence of an FM station or a GSM
        cell by itself (see :mod:`collector.evidence_ingest`); empty: only operators ask.
    snippet_s, gsm_snippet_s : float
        Length of each snippet such a request asks for (FM audio and IQ; a GSM cell's
        channel IQ), seconds.
    request_ttl_s, request_resend_s : float
        A request is sent to the connected sensors for ``request_ttl_s`` seconds, again
        every ``request_resend_s`` while it is open, seconds.
    """

    db_url: str = "sqlite:///rfhunt.db"
    bind: str = "tcp://127.0.0.1:5555"
    pub_bind: str | None = None
    relocate_interval_s: float = 2.0
    shadowing_db: float = 6.0
    path_loss_exponent: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PATH_LOSS_EXPONENT))
    eirp_dbm: dict[str, tuple[float, float] | None] = field(default_factory=lambda: dict(DEFAULT_EIRP_PRIOR))
    gsm_csv: Path | None = None
    fm_registry_csv: Path | None = None
    max_batch: int = 1000
    max_future_s: float = 86400.0
    locate_window_s: float = 3600.0
    uplink_window_s: float = 3600.0
    goip_window_s: float = 86400.0
    slow_judge_interval_s: float = 300.0
    suspicious_score: float = 3.5
    rogue_score: float = 6.0
    evidence_window_s: float = 6 * 3600.0
    motion_window_s: float = 300.0
    baseline_interval_s: float = 3600.0
    baseline_min_span_s: float = 6 * 3600.0
    stats_interval_s: float = 60.0
    secret_key: Path | None = None
    enrolled_dir: Path | None = None
    auto_verdicts: tuple[str, ...] = ("unlicensed", "suspicious", "rogue")
    snippet_s: float = 5.0
    gsm_snippet_s: float = 1.0
    request_ttl_s: float = 3600.0
    request_resend_s: float = 30.0

    def __post_init__(self) -> None:
        if (self.secret_key is None) != (self.enrolled_dir is None):
            raise ConfigError("collector secret_key and enrolled_dir go together (CurveZMQ needs the collector's "
                              ".key_secret file and the folder of enrolled sensor keys)")


_SECTIONS = {
    "collector": {"db_url", "bind", "pub_bind", "relocate_interval_s", "max_batch", "max_future_s",
                  "stats_interval_s", "secret_key", "enrolled_dir"},
    "localization": {"shadowing_db", "path_loss_exponent", "locate_window_s", "eirp_dbm"},
    "judge": {"uplink_window_s", "goip_window_s", "slow_judge_interval_s", "suspicious_score", "rogue_score",
              "evidence_window_s", "motion_window_s",
              "baseline_interval_s", "baseline_min_span_s"},
    "evidence": {"auto_verdicts", "snippet_s", "gsm_snippet_s", "request_ttl_s", "request_resend_s"},
    "reference": {"gsm_csv", "fm_registry_csv"},
}
#: Verdicts evidence may be asked for automatically (FM stations and GSM cells).
EVIDENCE_VERDICTS = ("unlicensed", "suspicious", "rogue", "licensed", "intermod", "unverified", "known")


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{where} must be a positive number, got {value!r}")
    return float(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _sqlite_relative_to(url: str, base: Path, where: str) -> str:
    """``url`` with a relative SQLite file path made absolute under ``base``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{where} is not a database URL: {redact_url(url)}") from None
    db = parsed.database
    if not parsed.drivername.startswith("sqlite") or not db or db == ":memory:" or db.startswith("file:"):
        return url
    if Path(db).is_absolute():
        return url
    return parsed.set(database=str(base.resolve() / db)).render_as_string(hide_password=False)


def load_collector_config(path: str | Path | None = None) -> CollectorConfig:
    """Read a collector config file; ``None`` gives the defaults.

    Raises
    ------
    ConfigError
        If the file is unreadable or not TOML, or holds an unknown section or key or a
        bad value; the message names the file and the key.
    """
    if path is None:
        return CollectorConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for section, body in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(_SECTIONS)})")
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: {section} must be a table")
        for key, value in body.items():
            where = f"{path}: [{section}] {key}"
            if key not in _SECTIONS[section]:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]")
            values[key] = _convert(key, value, where, path.parent)
    names = {f.name for f in fields(CollectorConfig)}
    assert set(values) <= names
    try:
        cfg = CollectorConfig(**values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: [collector] {exc}") from None
    if cfg.rogue_score < cfg.suspicious_score:
        raise ConfigError(f"{path}: [judge] rogue_score {cfg.rogue_score} is below suspicious_score "
                          f"{cfg.suspicious_score}")
    return cfg


def _convert(key: str, value: Any, where: str, base: Path) -> Any:
    if key == "db_url":
        return _sqlite_relative_to(_string(value, where), base, where)
    if key in ("bind", "pub_bind"):
        return _string(value, where)
    if key in ("secret_key", "enrolled_dir"):
        p = Path(_string(value, where)).expanduser()
        p = p if p.is_absolute() else base / p
        if key == "secret_key" and not p.is_file():
            raise ConfigError(f"{where}: no such file {p}")
        if key == "enrolled_dir" and not p.is_dir():
            raise ConfigError(f"{where}: no such folder {p} (create it, then rfhunt keys enroll SENSOR.key --dir {p})")
        return p
    if key in ("relocate_interval_s", "stats_interval_s", "shadowing_db", "max_future_s", "locate_window_s", "uplink_window_s",
               "goip_window_s", "slow_judge_interval_s", "suspicious_score", "rogue_score", "evidence_window_s",
               "baseline_min_span_s", "request_ttl_s", "request_resend_s"):
        return _positive(value, where)
    if key in ("snippet_s", "gsm_snippet_s"):
        v = _positive(value, where)
        if v > MAX_EVIDENCE_SECONDS:
            raise ConfigError(f"{where} must be at most {MAX_EVIDENCE_SECONDS:g} s, got {value!r}")
        return v
    if key == "auto_verdicts":
        if not isinstance(value, list) or any(v not in EVIDENCE_VERDICTS for v in value):
            raise ConfigError(f"{where} must be a list of verdicts from {', '.join(EVIDENCE_VERDICTS)}, "
                              f"got {value!r}")
        return tuple(dict.fromkeys(value))
    if key in ("motion_window_s", "baseline_interval_s"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where} must be a number >= 0, got {value!r}")
        return float(value)
    if key == "max_batch":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where} must be a positive integer, got {value!r}")
        return value
    if key == "path_loss_exponent":
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table {{{', '.join(f'{k} = ...' for k in KINDS)}}}")
        out = dict(DEFAULT_PATH_LOSS_EXPONENT)
        for kind, n in value.items():
            if kind not in KINDS:
                raise ConfigError(f"{where}: unknown key {kind!r} (known: {', '.join(KINDS)})")
            out[kind] = _positive(n, f"{where}.{kind}")
        return out
    if key == "eirp_dbm":
        return _eirp_ranges(value, where)
    # gsm_csv / fm_registry_csv
    p = Path(_string(value, where))
    return p if p.is_absolute() else base / p


def _eirp_ranges(value: Any, where: str) -> dict[str, tuple[float, float] | None]:
    """``[localization] eirp_dbm``: a table kind -> ``[low, high]`` (dBm), ``true`` (the
    range of :data:`collector.localize.DEFAULT_EIRP_DBM`) or ``false`` (no prior); kinds
    left out keep :data:`DEFAULT_EIRP_PRIOR`."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table {{{', '.join(f'{k} = [low, high]' for k in KINDS)}}} "
                          "(dBm; true: the documented range, false: none)")
    out = dict(DEFAULT_EIRP_PRIOR)
    lo_lim, hi_lim = EIRP_LIMITS_DBM
    for kind, rng in value.items():
        at = f"{where}.{kind}"
        if kind not in KINDS:
            raise ConfigError(f"{where}: unknown key {kind!r} (known: {', '.join(KINDS)})")
        if isinstance(rng, bool):
            out[kind] = DEFAULT_EIRP_DBM[kind] if rng else None
            continue
        if (not isinstance(rng, list) or len(rng) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in rng)):
            raise ConfigError(f"{at} must be [low, high] in dBm, true or false, got {rng!r}")
        lo, hi = float(rng[0]), float(rng[1])
        if not lo < hi:
            raise ConfigError(f"{at} must have low < high, got {rng!r}")
        if lo < lo_lim or hi > hi_lim:
            raise ConfigError(f"{at} must lie within {lo_lim:g}..{hi_lim:g} dBm, got {rng!r}")
        out[kind] = (lo, hi)
    return out
