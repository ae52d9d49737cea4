"""Look-ups over the known network: reference cells (operator lists, OpenCelliD/MLS) and the
baseline learned from the monitoring history.

Positions are WGS84 degrees, distances metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collector.reference import GsmCell
from collector.store import BaselineCellRow
from rfhunt import geo

CGI = tuple[int, int, int, int]
#: Radius of "the area" whose operators and BCCH plan a cell is compared with, m.
AREA_RADIUS_M = 35e3


@dataclass(frozen=True)
class Known:
    """Where and how the known network has a cell identity.

    Attributes
    ----------
    lat, lon : float or None
    range_m : float or None
        Coverage radius (OpenCelliD), m.
    arfcn, bsic : int or None
    source : str
        ``baseline`` or the reference source (``operator``, ``opencellid``, ...).
    """

    lat: float | None
    lon: float | None
    range_m: float | None
    arfcn: int | None
    bsic: int | None
    source: str


class ReferenceIndex:
    """The known network, indexed for the rogue-cell indicators.

    Parameters
    ----------
    cells : sequence of GsmCell
        Reference cells.
    baseline : sequence of BaselineCellRow
        Learned cells.
    """

    def __init__(self, cells: Sequence[GsmCell] = (), baseline: Sequence[BaselineCellRow] = ()) -> None:
        self.cells = tuple(cells)
        self.baseline = tuple(baseline)
        self.by_cgi: dict[CGI, list[Known]] = {}
        self.lac_cids: dict[tuple[int, int, int], set[int]] = {}
        for c in self.cells:
            self.by_cgi.setdefault(c.cgi, []).append(Known(c.lat, c.lon, c.range_m, c.arfcn, c.bsic, c.source))
            self.lac_cids.setdefault((c.mcc, c.mnc, c.lac), set()).add(c.cid)
        self.baseline_by_cgi: dict[CGI, list[BaselineCellRow]] = {}
        for b in self.baseline:
            self.by_cgi.setdefault(b.cgi, []).append(Known(b.lat, b.lon, None, b.arfcn, b.bsic, "baseline"))
            self.baseline_by_cgi.setdefault(b.cgi, []).append(b)
            self.lac_cids.setdefault((b.mcc, b.mnc, b.lac), set()).add(b.cid)
        pts = [(c.lat, c.lon, c.mcc, c.mnc, -1 if c.arfcn is None else c.arfcn) for c in self.cells]
        pts += [(b.lat, b.lon, b.mcc, b.mnc, b.arfcn) for b in self.baseline if b.lat is not None]
        arr = np.array(pts, dtype=float).reshape(-1, 5)
        self._lat, self._lon = arr[:, 0], arr[:, 1]
        self._mcc, self._mnc, self._arfcn = arr[:, 2].astype(int), arr[:, 3].astype(int), arr[:, 4].astype(int)
        # baseline cells without a position still tell the plan and the operators
        self._anywhere = [(b.mcc, b.mnc, b.arfcn) for b in self.baseline if b.lat is None]
        self._near_cache: dict[tuple[float, float, float], np.ndarray] = {}
        #: Fixed sensors with learned powers: sensor id -> number of baseline cells with stats there.
        self.sensor_cells: dict[str, int] = {}
        for b in self.baseline:
            for sid in (b.power or {}):
                self.sensor_cells[sid] = self.sensor_cells.get(sid, 0) + 1

    @property
    def empty(self) -> bool:
        """Nothing known at all."""
        return not self.cells and not self.baseline

    def known(self, cgi: CGI) -> list[Known]:
        """Every known occurrence of an identity."""
        return self.by_cgi.get(cgi, [])

    def lai_known(self, mcc: int, mnc: int, lac: int) -> bool:
        """Whether any known cell is in this location area."""
        return (mcc, mnc, lac) in self.lac_cids

    def lac_size(self, mcc: int, mnc: int, lac: int, exclude_cid: int | None = None) -> int:
        """Known cells of the location area other than ``exclude_cid``."""
        return len(self.lac_cids.get((mcc, mnc, lac), set()) - {exclude_cid})

    def _near(self, lat: float, lon: float, radius_m: float) -> np.ndarray:
        key = (round(lat, 2), round(lon, 2), radius_m)
        hit = self._near_cache.get(key)
        if hit is None:
            if self._lat.size:
                hit = np.flatnonzero(geo.distance_m(key[0], key[1], self._lat, self._lon) <= radius_m + 1500.0)
            else:
                hit = np.zeros(0, dtype=int)
            if len(self._near_cache) > 4096:
                self._near_cache.clear()
            self._near_cache[key] = hit
        return hit

    def operators_near(self, lat: float, lon: float, radius_m: float = AREA_RADIUS_M) -> set[tuple[int, int]]:
        """(MCC, MNC) of the networks known around a point."""
        idx = self._near(lat, lon, radius_m)
        out = {(int(a), int(b)) for a, b in zip(self._mcc[idx], self._mnc[idx])}
        return out | {(m, n) for m, n, _ in self._anywhere}

    def plan_near(self, lat: float, lon: float, mcc: int | None = None, mnc: int | None = None,
                  radius_m: float = AREA_RADIUS_M) -> set[int] | None:
        """BCCH ARFCNs known around a point (of one network when ``mcc``, ``mnc`` are given);
        None when no known cell there tells its ARFCN."""
        idx = self._near(lat, lon, radius_m)
        sel = self._arfcn[idx] >= 0
        if mcc is not None:
            sel &= (self._mcc[idx] == mcc) & (self._mnc[idx] == mnc)
        plan = {int(a) for a in self._arfcn[idx][sel]}
        plan |= {a for m, n, a in self._anywhere if mcc is None or (m, n) == (mcc, mnc)}
        return plan or None

    def cells_of_network(self, mcc: int, mnc: int, lat: float, lon: float, radius_m: float = AREA_RADIUS_M) -> int:
        """Known cells of a network around a point."""
        idx = self._near(lat, lon, radius_m)
        return int(np.count_nonzero((self._mcc[idx] == mcc) & (self._mnc[idx] == mnc))) + sum(
            (m, n) == (mcc, mnc) for m, n, _ in self._anywhere)
