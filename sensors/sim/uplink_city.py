"""Randomized districts for judging GOIP detection: rooftop sensors, crowds of ordinary
phones and (optionally) GOIP gateways, drawn from a seed.

A district (:func:`uplink_city`) is ``radius_m`` around a centre with 5-8 rooftop sensors
about a kilometre apart (a ring with jitter, and one near the middle in half the
districts). Its ordinary traffic is 6-12 crowds:

* places (offices, malls, homes): 200-1500 subscribers over 50-400 m, 0.02-0.04 Erlang each
  in the busy hour, 3-15 % of that at night, power control anywhere between 5 and 33 dBm;
* roads: 100-800 subscribers along 300-800 m, half to all of their calls from phones driving
  at 8-15 m/s.

Each crowd is served by one ARFCN per 5 busy-hour Erlang (2-8) of GSM900. A GOIP gateway has ``channels`` handsets
busy 50-90 % of the time with calls of 60-180 s on average, day and night, transmitting at
one level of 24-33 dBm (power control of a box indoors, far from its cell), within
0.6 ``radius_m`` of the centre, in half the districts inside a crowd's place. Times: the
scenario starts at a random local solar hour (``start_hour``) when given, else at local
midnight, so that a 24-hour run sees one night and one day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rfhunt.geo import from_enu
from sensors.sim.scenario import EmitterSpec, Propagation, Scenario, SensorSpec

CENTER = (22.5431, 114.0579)
#: Unix time of a local (solar) midnight at :data:`CENTER`.
_MIDNIGHT_UTC = 1_795_046_400.0 - CENTER[1] / 15.0 * 3600.0


@dataclass(frozen=True)
class UplinkCity:
    """A drawn district and its truth: ``goips`` maps each gateway's id to its channels."""

    scenario: Scenario
    goips: dict[str, int] = field(default_factory=dict)


def _ll(e: float, n: float) -> tuple[float, float]:
    lat, lon = from_enu(e, n, *CENTER)
    return float(lat), float(lon)


def _arfcns(rng: np.random.Generator, k: int) -> tuple[int, ...]:
    return tuple(int(a) for a in rng.choice(np.arange(1, 125), size=k, replace=False))


def _trx(erlang: float) -> int:
    """TRXs (ARFCNs) a cell plans for a busy-hour load (about 5 Erlang each), 2-8."""
    return int(min(max(math.ceil(erlang / 5.0), 2), 8))


def uplink_city(seed: int, goip_channels: tuple[int, ...] | list[int] = (), *, duration_s: float = 3600.0,
                radius_m: float = 1200.0, goip_start_s: float = 0.0, start_hour: float | None = None
                ) -> UplinkCity:
    """Draw a district (module notes) with one GOIP gateway per entry of ``goip_channels``.

    Parameters
    ----------
    seed : int
    goip_channels : sequence of int
        Channels of each gateway (e.g. ``(8,)``); empty for crowds only.
    duration_s : float
        Length of the scenario, s.
    radius_m : float
        Radius of the district, m.
    goip_start_s : float
        When the gateways switch on, s into the scenario.
    start_hour : float, optional
        Local solar hour at the scenario's start; by default drawn uniformly.
    """
    rng = np.random.default_rng([seed, 20261126])
    hour = float(rng.uniform(0, 24)) if start_hour is None else float(start_hour)
    sensors = []
    n_ring = int(rng.integers(5, 8))
    ang0 = float(rng.uniform(0, 2 * np.pi))
    for k in range(n_ring):
        a = ang0 + 2 * np.pi * k / n_ring + float(rng.uniform(-0.25, 0.25))
        r = float(rng.uniform(0.45, 0.9)) * radius_m
        sensors.append(SensorSpec(f"roof-{k}", *_ll(r * math.cos(a), r * math.sin(a))))
    if rng.random() < 0.5:
        sensors.append(SensorSpec("roof-c", *_ll(*(float(v) for v in rng.uniform(-0.2, 0.2, 2) * radius_m))))
    emitters: list[EmitterSpec] = []
    places = []
    for i in range(int(rng.integers(6, 13))):
        e, n = (float(v) for v in rng.uniform(-1, 1, 2) * radius_m)
        nf = float(rng.uniform(0.03, 0.15))
        if rng.random() < 0.75:
            radius = float(rng.uniform(50, 400))
            count, erl = int(rng.integers(200, 1501)), float(rng.uniform(0.02, 0.04))
            emitters.append(EmitterSpec(
                id=f"crowd-{i}", type="phones", lat=_ll(e, n)[0], lon=_ll(e, n)[1], power_dbm=33.0,
                arfcns=_arfcns(rng, _trx(count * erl)), count=count, radius_m=radius, erlang=erl,
                call_mean_s=float(rng.uniform(80, 150)), night_factor=nf, power_min_dbm=5.0))
            places.append((e, n, radius))
        else:
            count, erl = int(rng.integers(100, 801)), float(rng.uniform(0.02, 0.04))
            emitters.append(EmitterSpec(
                id=f"road-{i}", type="phones", lat=_ll(e, n)[0], lon=_ll(e, n)[1], power_dbm=33.0,
                arfcns=_arfcns(rng, _trx(count * erl)), count=count,
                radius_m=float(rng.uniform(300, 800)), erlang=erl,
                call_mean_s=float(rng.uniform(80, 150)), night_factor=nf, moving=float(rng.uniform(0.5, 1.0)),
                speed_mps=float(rng.uniform(8, 15)), power_min_dbm=5.0))
    goips = {}
    for i, ch in enumerate(goip_channels):
        if places and rng.random() < 0.5:
            e0, n0, r0 = places[int(rng.integers(len(places)))]
            e, n = e0 + float(rng.uniform(-0.5, 0.5)) * r0, n0 + float(rng.uniform(-0.5, 0.5)) * r0
            lim = 0.6 * radius_m
            e, n = float(np.clip(e, -lim, lim)), float(np.clip(n, -lim, lim))
        else:
            e, n = (float(v) for v in rng.uniform(-0.6, 0.6, 2) * radius_m)
        serving = _arfcns(rng, int(rng.integers(2, 4)))
        gid = f"goip-{i}-{ch}ch"
        emitters.append(EmitterSpec(
            id=gid, type="goip", lat=_ll(e, n)[0], lon=_ll(e, n)[1], power_dbm=float(rng.uniform(24, 33)),
            channels=int(ch), arfcns=tuple(serving[k % len(serving)] for k in range(int(ch))),
            activity=float(rng.uniform(0.5, 0.9)), call_mean_s=float(rng.uniform(60, 180)), start_s=goip_start_s))
        goips[gid] = int(ch)
    scenario = Scenario(name=f"uplink district {seed}", seed=seed, start_utc=_MIDNIGHT_UTC + hour * 3600.0,
                        duration_s=duration_s, center_lat=CENTER[0], center_lon=CENTER[1], radius_m=radius_m,
                        propagation=Propagation(3.0, float(rng.uniform(5, 7)), 50.0), sensors=tuple(sensors),
                        emitters=tuple(emitters), source=f"<uplink district {seed}>")
    return UplinkCity(scenario, goips)
