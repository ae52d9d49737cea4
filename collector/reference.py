"""Reading the reference data the judge compares emitters with.

* GSM operator cell list, CSV header ``mcc,mnc,lac,cid,arfcn,bsic,lat,lon`` (``arfcn`` and
  ``bsic`` may be empty when the operator does not give them);
* OpenCelliD / Mozilla Location Service cell export, CSV header
  ``radio,mcc,net,area,cell,unit,lon,lat,range,samples,changeable,created,updated,averageSignal``
  (OpenCelliD's per-country files come without the header line; both are read). Only
  ``radio = GSM`` rows become cells (UMTS, LTE, NR and CDMA rows are checked and counted,
  then skipped); ``range`` is the cell's estimated coverage radius in metres;
* FM licence registry, CSV header ``frequency_hz,name,pi,lat,lon,erp_w,licence``
  (``pi`` and ``erp_w`` may be empty).

Files may be gzip-compressed (``.gz``, as OpenCelliD ships them). Positions are WGS84 degrees.
Bad rows raise :class:`~rfhunt.errors.ConfigError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfhunt.errors import ConfigError

GSM_COLUMNS = ("mcc", "mnc", "lac", "cid", "arfcn", "bsic", "lat", "lon")
OPENCELLID_COLUMNS = ("radio", "mcc", "net", "area", "cell", "unit", "lon", "lat", "range", "samples",
                      "changeable", "created", "updated", "averageSignal")
FM_COLUMNS = ("frequency_hz", "name", "pi", "lat", "lon", "erp_w", "licence")
#: Radio technologies an OpenCelliD/MLS export holds.
RADIOS = ("GSM", "UMTS", "LTE", "NR", "CDMA")


@dataclass(frozen=True)
class GsmCell:
    """One cell of a mobile network; position in WGS84 degrees.

    Attributes
    ----------
    mcc, mnc, lac, cid : int
        The cell global identity.
    arfcn, bsic : int or None
        BCCH carrier and base station identity code (operator lists; None from OpenCelliD).
    lat, lon : float
        Site (operator lists) or estimated position (OpenCelliD), degrees.
    range_m : float or None
        Estimated coverage radius, m (OpenCelliD's ``range``; None for operator lists).
    source : str
        Where the row came from: ``operator``, ``opencellid`` or the name given at import.
    """

    mcc: int
    mnc: int
    lac: int
    cid: int
    arfcn: int | None
    bsic: int | None
    lat: float
    lon: float
    range_m: float | None = None
    source: str = "operator"

    @property
    def cgi(self) -> tuple[int, int, int, int]:
        """(MCC, MNC, LAC, CID)."""
        return (self.mcc, self.mnc, self.lac, self.cid)


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


@dataclass(frozen=True)
class CellFile:
    """What :func:`read_cell_reference` found in a file.

    Attributes
    ----------
    format : str
        ``operator`` or ``opencellid``.
    cells : list of GsmCell
        The GSM cells.
    skipped : dict
        Rows not kept, by reason (``UMTS``, ``LTE``, ...: other radio technologies).
    """

    format: str
    cells: list[GsmCell]
    skipped: dict[str, int]


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


def _radio(text: str) -> str:
    up = text.upper()
    if up not in RADIOS:
        raise ValueError(f"radio must be one of {', '.join(RADIOS)}")
    return up


_GSM_PARSERS = {
    "mcc": _int(0, 999), "mnc": _int(0, 999), "lac": _int(0, 65535), "cid": _int(0, 268435455),
    "arfcn": _optional(_int(0, 1023)), "bsic": _optional(_int(0, 63)), "lat": _real(-90, 90),
    "lon": _real(-180, 180),
}
_OCID_PARSERS = {
    "radio": _radio, "mcc": _int(0, 999), "net": _int(0, 999), "area": _int(0, 16777215),
    "cell": _int(0, 2**36 - 1), "unit": _optional(_int(0, 2**31)), "lon": _real(-180, 180),
    "lat": _real(-90, 90), "range": _real(0, 1e7), "samples": _int(0, 2**63 - 1),
    "changeable": _int(0, 1), "created": _int(0, 2**40), "updated": _int(0, 2**40),
    "averageSignal": _optional(_int(-200, 200)),
}
_FM_PARSERS = {
    "frequency_hz": _real(30e6, 300e6), "name": _text, "pi": _optional(_pi), "lat": _real(-90, 90),
    "lon": _real(-180, 180), "erp_w": _optional(_real(0, 1e7)), "licence": _text,
}


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text (gunzipped when it starts with the gzip magic)."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
        if magic == b"\x1f\x8b":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read reference file: {exc.strerror or exc}") from None


def _records(path: Path, columns: tuple[str, ...], parsers: dict[str, Callable[[str], Any]], *,
             header_optional: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, parsed values) of each data row of a CSV file with ``columns``.

    With ``header_optional`` a first row that is data (not the header) is read as data, in
    the order of ``columns``.
    """
    handle = _open_text(path)
    with handle:
        reader = csv.reader(handle)
        try:
            try:
                first = [h.strip() for h in next(reader)]
            except StopIteration:
                raise ConfigError(f"{path}: empty file, expected header {','.join(columns)}") from None
            header, pending = first, None
            if header_optional and len(first) == len(columns) and not set(first) & set(columns):
                header, pending = list(columns), first
            else:
                missing = [c for c in columns if c not in header]
                extra = [c for c in header if c not in columns]
                if missing or extra:
                    raise ConfigError(
                        f"{path}:1: header must be {','.join(columns)}"
                        + (f"; missing {','.join(missing)}" if missing else "")
                        + (f"; unknown {','.join(extra)}" if extra else "")
                    )

            def parse(record: list[str], line: int) -> dict[str, Any] | None:
                if not record or all(not c.strip() for c in record):
                    return None
                if len(record) != len(header):
                    raise ConfigError(f"{path}:{line}: {len(record)} fields, expected {len(header)}")
                values = {}
                for name, text in zip(header, record):
                    try:
                        values[name] = parsers[name](text.strip())
                    except ValueError as exc:
                        raise ConfigError(f"{path}:{line}: column {name!r}: bad value {text!r} ({exc})") from None
                return values

            if pending is not None:
                values = parse(pending, 1)
                if values is not None:
                    yield 1, values
            for record in reader:
                values = parse(record, reader.line_num)
                if values is not None:
                    yield reader.line_num, values
        except (csv.Error, UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as exc:
            raise ConfigError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None


def _read(path: str | Path, columns: tuple[str, ...], parsers: dict[str, Callable[[str], Any]], cls: type) -> list:
    return [cls(**values) for _, values in _records(Path(path), columns, parsers)]


def read_gsm_cells(path: str | Path, *, source: str = "operator") -> list[GsmCell]:
    """Read an operator's cell list (see module notes)."""
    return [GsmCell(**values, source=source) for _, values in _records(Path(path), GSM_COLUMNS, _GSM_PARSERS)]


def read_opencellid(path: str | Path, *, source: str = "opencellid") -> tuple[list[GsmCell], dict[str, int]]:
    """Read an OpenCelliD / Mozilla Location Service export (see module notes).

    Returns
    -------
    cells : list of GsmCell
        The GSM rows (``net`` is the MNC, ``area`` the LAC, ``cell`` the CID).
    skipped : dict
        Number of rows of each other radio technology.

    Raises
    ------
    ConfigError
        On a malformed row, or a GSM row whose LAC or CID does not fit 16 bits; the message
        names file, line and column.
    """
    path = Path(path)
    cells, skipped = [], {}
    for line, v in _records(path, OPENCELLID_COLUMNS, _OCID_PARSERS, header_optional=True):
        if v["radio"] != "GSM":
            skipped[v["radio"]] = skipped.get(v["radio"], 0) + 1
            continue
        for col in ("area", "cell"):
            if v[col] > 65535:
                raise ConfigError(f"{path}:{line}: column {col!r}: bad value {v[col]} (a GSM "
                                  f"{'LAC' if col == 'area' else 'CID'} is at most 65535)")
        cells.append(GsmCell(v["mcc"], v["net"], v["area"], v["cell"], None, None, v["lat"], v["lon"],
                             v["range"] if v["range"] > 0 else None, source))
    return cells, skipped


def sniff_cell_format(path: str | Path) -> str:
    """``operator`` or ``opencellid`` from a cell file's first line.

    Raises
    ------
    ConfigError
        If the first line is neither format's header nor an OpenCelliD data row.
    """
    path = Path(path)
    handle = _open_text(path)
    with handle:
        try:
            first = next(csv.reader(handle), None)
        except (csv.Error, UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as exc:
            raise ConfigError(f"{path}:1: unreadable CSV: {exc}") from None
    if not first:
        raise ConfigError(f"{path}: empty file")
    cols = [c.strip() for c in first]
    if "radio" in cols or (len(cols) == len(OPENCELLID_COLUMNS) and cols[0].upper() in RADIOS):
        return "opencellid"
    if "mcc" in cols and "cid" in cols:
        return "operator"
    raise ConfigError(f"{path}:1: not a cell list: expected the header {','.join(GSM_COLUMNS)} (operator list) "
                      f"or {','.join(OPENCELLID_COLUMNS)} (OpenCelliD / MLS)")


def read_cell_reference(path: str | Path, *, source: str | None = None) -> CellFile:
    """Read an operator list or an OpenCelliD/MLS export, whichever the file is.

    ``source`` names the rows' origin (default: the format's name).
    """
    fmt = sniff_cell_format(path)
    if fmt == "operator":
        return CellFile(fmt, read_gsm_cells(path, source=source or "operator"), {})
    cells, skipped = read_opencellid(path, source=source or "opencellid")
    return CellFile(fmt, cells, skipped)


def read_fm_registry(path: str | Path) -> list[FmStation]:
    """Read the FM licence registry (see module notes)."""
    return _read(path, FM_COLUMNS, _FM_PARSERS, FmStation)


def load_reference(gsm_csv: str | Path | None, fm_registry_csv: str | Path | None,
                   extra_cells: tuple[GsmCell, ...] = ()) -> Reference:
    """Read whichever reference files are given; missing ones give empty lists.

    ``gsm_csv`` may be an operator list or an OpenCelliD/MLS export; ``extra_cells`` (cells
    imported into the database) are added to its cells.
    """
    cells = tuple(read_cell_reference(gsm_csv).cells) if gsm_csv else ()
    stations = tuple(read_fm_registry(fm_registry_csv)) if fm_registry_csv else ()
    return Reference(cells + tuple(extra_cells), stations)
