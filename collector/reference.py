"""Reading the reference data the judge compares emitters with.

* GSM operator cell list, CSV header ``mcc,mnc,lac,cid,arfcn,bsic,lat,lon``;
* FM licence registry, CSV header ``frequency_hz,name,pi,lat,lon,erp_w,licence``
  (``pi`` and ``erp_w`` may be empty).

Bad rows raise :class:`~rfhunt.errors.ConfigError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfhunt.errors import ConfigError

GSM_COLUMNS = ("mcc", "mnc", "lac", "cid", "arfcn", "bsic", "lat", "lon")
FM_COLUMNS = ("frequency_hz", "name", "pi", "lat", "lon", "erp_w", "licence")


@dataclass(frozen=True)
class GsmCell:
    """One cell of the operator's network; position in WGS84 degrees."""

    mcc: int
    mnc: int
    lac: int
    cid: int
    arfcn: int
    bsic: int
    lat: float
    lon: float


@dataclass(frozen=True)
class FmStation:
    """One licensed FM transmitter; frequency Hz, position degrees, ERP watts."""

    frequency_hz: float
    name: str
    pi: str | None
    lat: float
    lon: float
    erp_w: float | None
    licence: str


@dataclass(frozen=True)
class Reference:
    """All reference data; empty lists when no file is configured."""

    gsm_cells: tuple[GsmCell, ...] = field(default_factory=tuple)
    fm_stations: tuple[FmStation, ...] = field(default_factory=tuple)


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        v = int(text)
        if not lo <= v <= hi:
            raise ValueError(f"{v} is outside [{lo}, {hi}]")
        return v
    return parse


def _real(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        v = float(text)
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"{text} is outside [{lo}, {hi}]")
        return v
    return parse


def _text(text: str) -> str:
    if not text:
        raise ValueError("empty")
    return text


def _pi(text: str) -> str:
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", text):
        raise ValueError("RDS PI must be exactly 4 hex digits")
    return text.upper()


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: None if text == "" else parse(text)


_GSM_PARSERS = {
    "mcc": _int(0, 999), "mnc": _int(0, 999), "lac": _int(0, 65535), "cid": _int(0, 268435455),
    "arfcn": _int(0, 1023), "bsic": _int(0, 63), "lat": _real(-90, 90), "lon": _real(-180, 180),
}
_FM_PARSERS = {
    "frequency_hz": _real(30e6, 300e6), "name": _text, "pi": _optional(_pi), "lat": _real(-90, 90),
    "lon": _real(-180, 180), "erp_w": _optional(_real(0, 1e7)), "licence": _text,
}


def _read(path: str | Path, columns: tuple[str, ...], parsers: dict[str, Callable[[str], Any]], cls: type) -> list:
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read reference file: {exc.strerror}") from None
    rows = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ConfigError(f"{path}: empty file, expected header {','.join(columns)}") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}:1: unreadable header: {exc}") from None
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        if missing or extra:
            raise ConfigError(
                f"{path}:1: header must be {','.join(columns)}"
                + (f"; missing {','.join(missing)}" if missing else "")
                + (f"; unknown {','.join(extra)}" if extra else "")
            )
        try:
            for record in reader:
                line = reader.line_num
                if not record or all(not c.strip() for c in record):
                    continue
                if len(record) != len(header):
                    raise ConfigError(f"{path}:{line}: {len(record)} fields, expected {len(header)}")
                values = {}
                for name, text in zip(header, record):
                    try:
                        values[name] = parsers[name](text.strip())
                    except ValueError as exc:
                        raise ConfigError(f"{path}:{line}: column {name!r}: bad value {text!r} ({exc})") from None
                rows.append(cls(**values))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None
    return rows


def read_gsm_cells(path: str | Path) -> list[GsmCell]:
    """Read the operator's cell list (see module notes)."""
    return _read(path, GSM_COLUMNS, _GSM_PARSERS, GsmCell)


def read_fm_registry(path: str | Path) -> list[FmStation]:
    """Read the FM licence registry (see module notes)."""
    return _read(path, FM_COLUMNS, _FM_PARSERS, FmStation)


def load_reference(gsm_csv: str | Path | None, fm_registry_csv: str | Path | None) -> Reference:
    """Read whichever reference files are given; missing ones give empty lists."""
    cells = tuple(read_gsm_cells(gsm_csv)) if gsm_csv else ()
    stations = tuple(read_fm_registry(fm_registry_csv)) if fm_registry_csv else ()
    return Reference(cells, stations)
