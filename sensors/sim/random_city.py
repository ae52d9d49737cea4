"""Randomized cities for judging rogue cells: two operators' networks, sensors, fake base
stations of each kind, and the reference data the operators and OpenCelliD would give.

A city is drawn from a seed (:func:`random_city`). Its time line has a *history* (the
legitimate network only, ``history_s`` long: what the baseline is learned from) followed by
the *test* (``test_s``), during which fake base stations come and go and a few legitimate
cells are switched on for the first time.

The legitimate network
    Each operator (460-00 on ARFCNs 1-94, 460-01 on 96-124) has cells on a jittered grid
    over the city, grouped into location areas by quadrant, each listing its operator's
    cells within 2.5 km as neighbours (reciprocal), CRO 0 dB (a few 4-20 dB), T3212 30 min
    to 3 h, clocks within ±0.05 ppm.

Fake base stations (:data:`FAKE_KINDS`)
    ``fixed`` (a rooftop), ``car`` (driving a loop at 3-15 m/s), ``lac_cycling`` (an SMS
    blaster changing its LAC every 1-3 min) and ``clone`` (a real cell's MCC/MNC/LAC/CID,
    often its BSIC and neighbour list). The population is honest: each trait is drawn, so
    some fakes are disciplined: a GPS-locked clock, a plausible T3212, no CRO, a copied
    neighbour list, an ARFCN of the operator's plan.

Reference
    Each operator hands over its cell list (2 % of its cells missing, 1 % with an outdated
    ARFCN); in some cities one operator gives none and OpenCelliD-like data (85 % of its
    cells, positions 300 m off, no ARFCN) stands in.

Positions WGS84 degrees, times seconds since the scenario start, powers dBm EIRP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from collector.reference import GsmCell
from rfhunt.geo import distance_m, from_enu, to_enu
from sensors.sim.scenario import EmitterSpec, Propagation, Receiver, Scenario, SensorSpec

FAKE_KINDS = ("fixed", "car", "lac_cycling", "clone")
OPERATORS = {(460, 0): range(1, 95), (460, 1): range(96, 125)}
CENTER = (22.5431, 114.0579)


@dataclass(frozen=True)
class City:
    """A drawn city and its truth.

    Attributes
    ----------
    scenario : Scenario
    history_s, test_s : float
        Lengths of the history and the test, s (the test starts at ``history_s``).
    fakes : dict
        Fake base station id -> kind.
    new_cells : tuple of str
        Legitimate cells first switched on during the test.
    reference : tuple of GsmCell
        What the operators (and OpenCelliD) hand over.
    """

    scenario: Scenario
    history_s: float
    test_s: float
    fakes: dict[str, str] = field(default_factory=dict)
    new_cells: tuple[str, ...] = ()
    reference: tuple[GsmCell, ...] = ()


def _ll(e: float, n: float) -> tuple[float, float]:
    lat, lon = from_enu(e, n, *CENTER)
    return float(lat), float(lon)


def _legit_cells(rng: np.random.Generator, radius_m: float) -> list[EmitterSpec]:
    cells = []
    cid = int(rng.integers(10000, 50000))
    for (mcc, mnc), band in OPERATORS.items():
        spacing = float(rng.uniform(1400, 2000))
        k = int(math.ceil((radius_m + 800) / spacing))
        off = rng.uniform(-0.5, 0.5, 2) * spacing
        sites = [(i * spacing + off[0] + rng.uniform(-0.3, 0.3) * spacing,
                  j * spacing + off[1] + rng.uniform(-0.3, 0.3) * spacing)
                 for i in range(-k, k + 1) for j in range(-k, k + 1)]
        sites = [s for s in sites if math.hypot(*s) <= radius_m + 800]
        arfcns = rng.permutation(np.array(list(band)))
        lac0 = int(rng.integers(1000, 60000))
        for idx, (e, n) in enumerate(sites[: len(arfcns)]):
            lat, lon = _ll(e, n)
            quadrant = (e >= 0) * 2 + (n >= 0)
            cid += int(rng.integers(1, 40))
            cells.append(EmitterSpec(
                id=f"cell-{mcc}-{mnc}-{idx}", type="gsm_cell", lat=lat, lon=lon,
                power_dbm=float(rng.uniform(40, 47)), ppm=float(rng.normal(0, 0.015)), arfcn=int(arfcns[idx]),
                mcc=mcc, mnc=mnc, lac=lac0 + int(quadrant), cid=cid % 65535, bsic=int(rng.integers(0, 64)),
                cro_db=int(rng.choice([4, 8, 10, 16, 20])) if rng.random() < 0.15 else 0,
                t3212_s=int(rng.choice([1800, 3600, 7200, 10800], p=[0.15, 0.35, 0.3, 0.2]))))
    # neighbour lists: the operator's cells within 2.5 km and the nearest two, made reciprocal
    links: dict[str, set[str]] = {c.id: set() for c in cells}
    for c in cells:
        same = sorted((o for o in cells if o is not c and (o.mcc, o.mnc) == (c.mcc, c.mnc)), key=lambda o: _dist(c, o))
        for k, o in enumerate(same):
            if k < 2 or _dist(c, o) <= 2500:
                links[c.id].add(o.id)
                links[o.id].add(c.id)
    arfcn = {c.id: c.arfcn for c in cells}
    return [_with(c, neighbours=tuple(sorted(arfcn[o] for o in links[c.id]))) for c in cells]


def _dist(a: EmitterSpec, b: EmitterSpec) -> float:
    return float(distance_m(a.lat, a.lon, b.lat, b.lon))


def _with(em: EmitterSpec, **kw) -> EmitterSpec:
    return replace(em, **kw)


def _route(rng: np.random.Generator, radius_m: float) -> tuple[tuple[float, float], ...]:
    r = float(rng.uniform(600, 0.7 * radius_m))
    c = (float(rng.uniform(-0.3, 0.3) * radius_m), float(rng.uniform(-0.3, 0.3) * radius_m))
    angles = np.sort(rng.uniform(0, 2 * np.pi, 5))
    return tuple(_ll(c[0] + r * math.cos(a), c[1] + r * math.sin(a)) for a in angles)


def _fake(rng: np.random.Generator, kind: str, i: int, legit: list[EmitterSpec], radius_m: float,
          start_s: float, stop_s: float) -> EmitterSpec:
    net = (460, 0) if rng.random() < 0.6 else (460, 1)
    foreign = rng.random() < 0.08 and kind != "clone"
    mcc, mnc = (net if not foreign else [(1, 1), (460, 7), (999, 99)][int(rng.integers(0, 3))])
    mine = [c for c in legit if (c.mcc, c.mnc) == net]
    used = {c.arfcn for c in legit}
    free = [a for a in range(1, 125) if a not in used and a != 95]
    e, n = (float(v) for v in rng.uniform(-0.75, 0.75, 2) * radius_m)
    lat, lon = _ll(e, n)
    kw: dict = dict(id=f"fake-{i}-{kind}", type="fake_bts", lat=lat, lon=lon,
                    power_dbm=float(rng.uniform(30, 40)), mcc=mcc, mnc=mnc, lac=int(rng.integers(1, 65533)),
                    cid=int(rng.integers(1, 65535)), bsic=int(rng.integers(0, 64)), start_s=start_s, stop_s=stop_s)
    # the ARFCN: mostly a free one, sometimes one of the operator's plan (co-channel with a far cell)
    if rng.random() < 0.7 or not mine:
        kw["arfcn"] = int(rng.choice(free))
    else:
        far = max(mine, key=lambda c: math.hypot(*_enu(c, lat, lon)))
        kw["arfcn"] = far.arfcn
    # clock: most are free-running crystals, some OCXO, some GPS-disciplined
    u = rng.random()
    sign = 1 if rng.random() < 0.5 else -1
    kw["ppm"] = sign * float(rng.uniform(0.5, 6.0)) if u < 0.65 else sign * float(rng.uniform(0.1, 0.5)) \
        if u < 0.8 else float(rng.normal(0, 0.02))
    # reselection and location updates
    u = rng.random()
    kw["cro_db"] = 2 * int(rng.integers(21, 41)) if u < 0.5 else 2 * int(rng.integers(11, 20)) if u < 0.7 else \
        2 * int(rng.integers(0, 5))
    u = rng.random()
    kw["t3212_s"] = 360 if u < 0.45 else 720 if u < 0.6 else 360 * int(rng.integers(3, 5)) if u < 0.7 else \
        int(rng.choice([1800, 3600, 7200]))
    near_cell = min(mine, key=lambda c: math.hypot(*_enu(c, lat, lon))) if mine else None
    kw["neighbours"] = tuple(near_cell.neighbours or ()) if near_cell is not None and rng.random() < 0.4 else ()
    if kind == "car":
        kw["route"] = _route(rng, radius_m)
        kw["speed_mps"] = float(rng.uniform(3, 15))
        kw["power_dbm"] = float(rng.uniform(30, 37))
    elif kind == "lac_cycling":
        kw["lac_change_s"] = float(rng.uniform(60, 180))
        if rng.random() < 0.8:
            kw["neighbours"] = ()
    elif kind == "clone":
        victim = mine[int(rng.integers(0, len(mine)))]
        kw.update(mcc=victim.mcc, mnc=victim.mnc, lac=victim.lac, cid=victim.cid)
        if rng.random() < 0.5:
            kw["bsic"] = victim.bsic
        if rng.random() < 0.6:
            kw["neighbours"] = tuple(victim.neighbours or ())
        if rng.random() < 0.6:
            kw["t3212_s"] = victim.t3212_s
        if kw["arfcn"] == victim.arfcn:
            kw["arfcn"] = int(rng.choice(free))
    return EmitterSpec(**kw)


def _enu(c: EmitterSpec, lat: float, lon: float) -> tuple[float, float]:
    e, n = to_enu(c.lat, c.lon, lat, lon)
    return float(e), float(n)


def _reference(rng: np.random.Generator, legit: list[EmitterSpec], new: set[str]) -> list[GsmCell]:
    ocid_net = list(OPERATORS)[int(rng.integers(0, 2))] if rng.random() < 0.3 else None
    out = []
    for c in legit:
        if (c.mcc, c.mnc) == ocid_net:
            if rng.random() < 0.85:
                e, n = rng.normal(0, 300, 2)
                lat, lon = from_enu(float(e), float(n), c.lat, c.lon)
                out.append(GsmCell(c.mcc, c.mnc, c.lac, c.cid, None, None, float(lat), float(lon),
                                   float(rng.uniform(500, 2000)), "opencellid"))
            continue
        if rng.random() < 0.02:
            continue  # the operator's list lacks it
        arfcn = c.arfcn
        if rng.random() < 0.01:
            arfcn = int(rng.choice([a for a in OPERATORS[(c.mcc, c.mnc)] if a != c.arfcn]))  # outdated
        out.append(GsmCell(c.mcc, c.mnc, c.lac, c.cid, arfcn, c.bsic, c.lat, c.lon, None, "operator"))
    return out


def random_city(seed: int, fake_kinds: tuple[str, ...] | list[str] = (), *, history_s: float = 8 * 3600.0,
                test_s: float = 900.0, radius_m: float = 3000.0) -> City:
    """Draw a city (see module notes) with one fake base station of each of ``fake_kinds``.

    Fakes switch on within the first two thirds of the test (the first at most 60 s in) and
    stay on for 8-60 min (possibly past the end).
    """
    rng = np.random.default_rng([seed, 20261125])
    legit = _legit_cells(rng, radius_m)
    new = set()
    for i, c in enumerate(legit):
        if rng.random() < 0.03:
            legit[i] = _with(c, start_s=history_s + float(rng.uniform(0, 300)))
            new.add(c.id)
    fakes, kinds = [], {}
    for i, kind in enumerate(fake_kinds):
        if kind not in FAKE_KINDS:
            raise ValueError(f"unknown fake kind {kind!r} (known: {', '.join(FAKE_KINDS)})")
        start = history_s + (float(rng.uniform(0, 60)) if i == 0 else float(rng.uniform(0, test_s * 2 / 3)))
        stop = start + float(rng.uniform(480, 3600))
        f = _fake(rng, kind, i, legit, radius_m, start, stop)
        fakes.append(f)
        kinds[f.id] = kind
    sensors = []
    n_fixed = int(rng.integers(4, 8))
    ang0 = float(rng.uniform(0, 2 * np.pi))
    for k in range(n_fixed):
        a = ang0 + 2 * np.pi * k / n_fixed + float(rng.uniform(-0.3, 0.3))
        r = float(rng.uniform(0.35, 0.8)) * radius_m
        lat, lon = _ll(r * math.cos(a), r * math.sin(a))
        sensors.append(SensorSpec(f"roof-{k}", lat, lon, receiver=Receiver(lo_ppm=float(rng.uniform(-30, 30)))))
    if rng.random() < 0.5:
        route = _route(rng, radius_m)
        sensors.append(SensorSpec("car", route[0][0], route[0][1], route=route, speed_mps=float(rng.uniform(8, 14)),
                                  receiver=Receiver(lo_ppm=float(rng.uniform(-40, 40)), noise_figure_db=8.0)))
    scenario = Scenario(name=f"random city {seed}", seed=seed, start_utc=1_795_000_000.0,
                        duration_s=history_s + test_s, center_lat=CENTER[0], center_lon=CENTER[1],
                        radius_m=radius_m, propagation=Propagation(3.0, float(rng.uniform(4, 6)), 50.0),
                        sensors=tuple(sensors), emitters=tuple(legit + fakes), source=f"<random city {seed}>")
    return City(scenario, history_s, test_s, kinds, tuple(sorted(new)), tuple(_reference(rng, legit, new)))
