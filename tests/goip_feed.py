"""A crafted GSM uplink feed with known truth: the detections rooftop sensors would publish
for GOIP gateways and phone crowds, capture by capture (for collector.goip tests)."""

from __future__ import annotations

import math

import numpy as np

from rfhunt.geo import from_enu
from rfhunt.records import Detection

LAT0, LON0 = 22.54, 114.05
#: Rooftops on a 1.2 km square plus one in the middle (east, north m).
SENSORS = {"s1": (-600.0, -600.0), "s2": (600.0, -600.0), "s3": (600.0, 600.0), "s4": (-600.0, 600.0),
           "s5": (0.0, 0.0)}
START_UTC = 20775 * 86400.0 - LON0 / 15 * 3600  # a local solar midnight at LON0
EVERY_S = 120.0


def rx_dbm(e: float, n: float, tx_dbm: float) -> dict[str, float]:
    """Received power at each sensor from (e, n): exponent 3, no shadowing."""
    out = {}
    for s, (se, sn) in SENSORS.items():
        d = max(math.hypot(e - se, n - sn), 10.0)
        out[s] = tx_dbm - 31.5 - 30 * math.log10(d)
    return out


class Feed:
    """Builds the detections sensors would publish, capture by capture."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.dets: list[Detection] = []
        self.truth: list[str] = []
        self.seq = 0

    def link(self, t_s: float, who: str, arfcn: int, ts: int, powers: dict[str, float], noise_db: float = 1.0,
             floor_dbm: float = -96.0) -> None:
        for s, p in powers.items():
            p = p + float(self.rng.normal(0, noise_db))
            if p < floor_dbm:
                continue
            self.seq += 1
            lat, lon = from_enu(*SENSORS[s], LAT0, LON0)
            self.dets.append(Detection(s, self.seq, START_UTC + t_s + 1.0, float(lat), float(lon), "gsm_uplink",
                                       890e6 + 0.2e6 * arfcn, arfcn, 200e3, round(p, 2), round(p + 104, 2),
                                       {"timeslot": ts, "n_bursts": 417, "n_access": 0, "duty": 0.96,
                                        "capture_s": 2.0}))
            self.truth.append(who)

    def gateway(self, who: str, e: float, n: float, tx_dbm: float, hours: tuple[float, float], busy: int,
                arfcns=(20, 33), churn: float = 0.3, level_spread_db: float = 0.0) -> None:
        """``busy`` channels on the air at every capture of ``hours``, each on a link of
        ``arfcns``; a fraction ``churn`` of the links change at every capture (new calls),
        each call at a level uniform within +-``level_spread_db`` of ``tx_dbm``."""
        links = [(a, t) for a in arfcns for t in range(1, 8)]
        cur = list(range(busy))
        lvl = {i: 0.0 for i in cur}
        for t in np.arange(hours[0] * 3600, hours[1] * 3600, EVERY_S):
            for k in range(busy):
                if self.rng.random() < churn:
                    free = [i for i in range(len(links)) if i not in cur]
                    cur[k] = int(self.rng.choice(free))
                    lvl[cur[k]] = float(self.rng.uniform(-level_spread_db, level_spread_db))
            for i in cur:
                self.link(float(t), who, *links[i], rx_dbm(e, n, tx_dbm + lvl.get(i, 0.0)))

    def crowd(self, who: str, e: float, n: float, radius_m: float, hours: tuple[float, float], calls: float,
              night_factor: float = 1.0, arfcns=(40, 41, 42)) -> None:
        """About ``calls`` phones at once (``night_factor`` of that 00-06 local), each from its
        own spot in the disk, at its own power-control level."""
        for t in np.arange(hours[0] * 3600, hours[1] * 3600, EVERY_S):
            hour = (t / 3600) % 24
            lam = calls * (night_factor if hour < 6 else 1.0)
            for _ in range(self.rng.poisson(lam)):
                r, phi = radius_m * math.sqrt(self.rng.random()), self.rng.uniform(0, 2 * math.pi)
                pw = rx_dbm(e + r * math.cos(phi), n + r * math.sin(phi), float(self.rng.uniform(5, 33)))
                pw = {s: p + float(self.rng.normal(0, 6)) for s, p in pw.items()}  # their own shadowing
                self.link(float(t), who, int(self.rng.choice(arfcns)), int(self.rng.integers(1, 8)), pw)
