"""``rfhunt reference import``: reference cells into the collector's database.

The file is an operator list or an OpenCelliD / Mozilla Location Service export (see
:mod:`collector.reference`; gzip is fine). Its GSM cells are stored under a source name
(``operator`` or ``opencellid`` unless told otherwise); importing again updates the cells
already there. ``area`` keeps only the cells within a radius of a point, so that a national
export does not fill the database with cells the sensors will never hear. A running collector
picks the new cells up within half a minute.

Positions are WGS84 degrees, the radius metres.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collector.reference import read_cell_reference
from collector.store import Store
from rfhunt import geo
from rfhunt.errors import ConfigError


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes
    ----------
    path : Path
    format : str
        ``operator`` or ``opencellid``.
    source : str
        The name the cells are stored under.
    read : int
        GSM cells in the file.
    stored : int
        Cells written (``read`` less those outside ``area``).
    outside_area : int
    skipped : dict
        Rows of other radio technologies, by technology.
    replaced : int
        Cells of the source dropped first (``replace``).
    """

    path: Path
    format: str
    source: str
    read: int
    stored: int
    outside_area: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    replaced: int = 0


def parse_area(text: str) -> tuple[float, float, float]:
    """``LAT,LON,RADIUS_M`` -> (lat, lon, radius_m).

    Raises
    ------
    ConfigError
        If it is not three numbers with a latitude, a longitude and a positive radius.
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"area {text!r} must be LAT,LON,RADIUS_M (degrees, degrees, metres)") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and np.isfinite(radius) and radius > 0):
        raise ConfigError(f"area {text!r}: latitude in [-90, 90], longitude in [-180, 180], radius > 0 m")
    return lat, lon, radius


def import_reference(store: Store, path: str | Path, *, source: str | None = None,
                     area: tuple[float, float, float] | None = None, replace: bool = False) -> ImportResult:
    """Import a reference cell file into ``store`` (see module notes).

    Parameters
    ----------
    store : Store
    path : str or Path
    source : str, optional
        Name to store the cells under (default: the file's format, ``operator`` or ``opencellid``).
    area : (lat, lon, radius_m), optional
        Keep only cells within ``radius_m`` of (lat, lon).
    replace : bool
        Drop the source's cells first (cells gone from the new file go from the database).

    Raises
    ------
    ConfigError
        On an unreadable file, a bad row (file, line and column named) or a bad source name.
    StoreError
        If the database refuses the cells.
    """
    path = Path(path)
    if source is not None and not (1 <= len(source) <= 64 and source.isprintable()):
        raise ConfigError(f"source name {source!r} must be 1-64 printable characters")
    got = read_cell_reference(path, source=source)
    cells = got.cells
    outside = 0
    if area is not None and cells:
        lat0, lon0, radius = area
        d = geo.distance_m(lat0, lon0, np.array([c.lat for c in cells]), np.array([c.lon for c in cells]))
        keep = np.atleast_1d(d <= radius)
        outside = int(np.count_nonzero(~keep))
        cells = [c for c, k in zip(cells, keep) if k]
    name = source or got.format
    replaced = store.delete_reference_cells(name) if replace else 0
    stored = store.upsert_reference_cells(cells, imported_utc=time.time()) if cells else 0
    return ImportResult(path, got.format, name, len(got.cells), stored, outside, dict(got.skipped), replaced)
