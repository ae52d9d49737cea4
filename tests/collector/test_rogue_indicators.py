"""Each rogue-cell indicator on crafted observations, next to a legitimate network that must
stay quiet; verdicts from scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from collector.cells import CellTracker, Fix
from collector.reference import GsmCell
from collector.refindex import ReferenceIndex
from collector.rogue import DEFAULT_MODEL, RogueModel, judge_cells
from collector.store import BaselineCellRow, DetectionRow, EmitterRow
from rfhunt.geo import from_enu

LAT0, LON0 = 22.54, 114.05
T0 = 1_790_000_000.0
#: Four fixed sensors, (east, north) metres from the centre.
SENSORS = {"n": (0.0, 2000.0), "e": (2000.0, 0.0), "s": (0.0, -2000.0), "w": (-2000.0, 0.0)}
#: Each sensor's remaining LO error in each decode pass, ppm (the same for every cell of a pass).
LO = {"n": (-9.37, -11.9, -8.9), "e": (3.1, 0.0, -0.01), "s": (-1.7, 0.0, 0.004), "w": (-8.95, -9.42, -9.24)}
#: The operator's cells: id -> (ARFCN, BSIC, LAC, CID, east, north).
CELLS = {1: (12, 21, 9510, 20311, -800.0, 500.0), 2: (25, 34, 9510, 20312, 900.0, 700.0),
         3: (38, 12, 9511, 20417, 300.0, -900.0), 4: (47, 45, 9511, 20418, -700.0, -600.0)}


def ll(e: float, n: float) -> tuple[float, float]:
    lat, lon = from_enu(e, n, LAT0, LON0)
    return float(lat), float(lon)


def power_at(sensor: str, e: float, n: float, p0: float = 40.0) -> float:
    se, sn = SENSORS[sensor]
    return p0 - 32.0 - 30.0 * np.log10(max(np.hypot(se - e, sn - n), 10.0))


class Air:
    """Detections of a few cells at four sensors, and what the judge makes of them."""

    def __init__(self) -> None:
        self.dets: list[DetectionRow] = []
        self.emitters: dict[int, EmitterRow] = {}

    def emitter(self, eid: int, channel: int, e: float | None = None, n: float | None = None, **kw) -> None:
        lat, lon = (None, None) if e is None else ll(e, n)
        self.emitters[eid] = EmitterRow(
            id=eid, assoc_key=f"gsm_downlink:arfcn:{channel}:bsic:{eid}", kind="gsm_downlink",
            freq_hz=935e6 + 0.2e6 * channel, channel=channel, first_seen_utc=kw.pop("first_seen_utc", T0),
            last_seen_utc=None, n_detections=0, lat=lat, lon=lon, semi_major_m=kw.pop("semi_major_m", 300.0),
            semi_minor_m=150.0, orientation_deg=0.0, est_power_dbm=None, path_loss_exponent=3.0,
            rms_residual_db=1.0, underdetermined=False, verdict=None, reasons=(), updated_utc=None, **kw)

    def _add(self, eid: int, t: float, sensor: str, power: float, features: dict, lat_lon=None) -> None:
        lat, lon = lat_lon or ll(*SENSORS[sensor])
        em = self.emitters[eid]
        self.dets.append(DetectionRow(len(self.dets) + 1, sensor, len(self.dets) + 1, T0 + t, lat, lon, "gsm_downlink",
                                      em.freq_hz, em.channel, 200e3, power, power + 104.0, features, eid))

    def sweep(self, eid: int, t: float, sensor: str, power: float, lat_lon=None) -> None:
        self._add(eid, t, sensor, power, {"noise_dbm": -104.0, "sensor_ppm": 1.0}, lat_lon)

    def decode(self, eid: int, t: float, sensor: str, power: float, *, bsic: int, lac: int, cid: int | None,
               mcc: str = "460", mnc: str = "00", ppm: float = 0.0, sensor_ppm: float = 1.0,
               neighbours: tuple[int, ...] | None = (), cro: int = 0, penalty_s: int | None = 20,
               t3212_s: int = 3600, lat_lon=None) -> None:
        f = {"decoded": True, "bsic": bsic, "mcc": mcc, "mnc": mnc, "lac": lac, "ppm": round(ppm, 3),
             "sensor_ppm": sensor_ppm, "cro_db": cro, "si_types": "SI3,SI4" + (",SI2" if neighbours is not None else ""),
             "neighbours": ",".join(map(str, neighbours or ()))}
        if cid is not None:
            f.update(cid=cid, t3212_s=t3212_s)
        if cro:
            f["temporary_offset_db"] = 0
            if penalty_s is not None:
                f["penalty_time_s"] = penalty_s
        self._add(eid, t, sensor, power, f, lat_lon)

    def network(self, passes: int = 3) -> None:
        """The four legitimate cells, decoded by every sensor in ``passes`` passes 40 s apart."""
        arfcns = [c[0] for c in CELLS.values()]
        for eid, (arfcn, bsic, lac, cid, e, n) in CELLS.items():
            self.emitter(eid, arfcn, e, n)
        for k in range(passes):
            for s in SENSORS:
                for j, (eid, (arfcn, bsic, lac, cid, e, n)) in enumerate(CELLS.items()):
                    self.decode(eid, 40.0 * k + 1.2 * j, s, power_at(s, e, n, 45.0), bsic=bsic, lac=lac, cid=cid,
                                ppm=-LO[s][k] + 0.003 * j, sensor_ppm=float(k),
                                neighbours=tuple(a for a in arfcns if a != arfcn))

    def judge(self, ref=None, baseline=(), mobile=(), model: RogueModel = DEFAULT_MODEL):
        tracker = CellTracker()
        tracker.add(self.dets)
        ems = []
        for eid, em in self.emitters.items():
            ts = [d.t_utc for d in self.dets if d.emitter_id == eid]
            ems.append(replace(em, last_seen_utc=max(ts) if ts else None))
        ref = REFERENCE if ref is None else ref
        return judge_cells(ems, tracker, ReferenceIndex(ref, baseline), model=model, mobile_sensors=set(mobile))


REFERENCE = tuple(GsmCell(460, 0, lac, cid, arfcn, bsic, *ll(e, n)) for arfcn, bsic, lac, cid, e, n in CELLS.values()) \
    + (GsmCell(460, 1, 42310, 5121, 102, 50, *ll(1500.0, 1500.0)),)


def names(j) -> set[str]:
    return {i["name"] for i in j.indicators}


def quiet_network(out) -> None:
    for eid in CELLS:
        assert out[eid].verdict == "known" and out[eid].score == 0.0, (eid, out[eid])


def fake(air: Air, eid: int = 9, arfcn: int = 63, e: float = 200.0, n: float = 100.0, passes: int = 3, **decode) -> None:
    """A cell at (e, n) decoded by every sensor in each pass, with ``decode`` overrides."""
    air.emitter(eid, arfcn, e, n)
    kw = dict(bsic=9, lac=9510, cid=20399, neighbours=(12, 25, 38, 47))
    kw.update(decode)
    for k in range(passes):
        for s in SENSORS:
            air.decode(eid, 40.0 * k + 6.0, s, power_at(s, e, n, 37.0), ppm=-LO[s][k], sensor_ppm=float(k), **kw)


def test_the_legitimate_network_is_quiet_and_known():
    air = Air()
    air.network()
    out = air.judge()
    quiet_network(out)
    assert out[1].identity == "460-00-9510-20311"
    assert "matches the known network" in out[1].reasons[0]


def test_unknown_identity_and_lonely_lac():
    air = Air()
    air.network()
    fake(air, lac=4321, cid=77)
    out = air.judge()
    quiet_network(out)
    assert {"unknown_identity", "lonely_lac", "arfcn_outside_plan"} <= names(out[9])
    lonely = next(i for i in out[9].indicators if i["name"] == "lonely_lac")
    assert lonely["evidence"]["lac"] == 4321 and "LAC 4321" in lonely["reason"]
    # a cell of a network the reference does not cover is not "unknown"
    assert "unknown_identity" not in names(air.judge(ref=REFERENCE[4:])[9])
    # a known LAC is not lonely
    assert "lonely_lac" not in names(_with_fake(lac=9511, cid=77).judge()[9])


def _with_fake(**decode) -> Air:
    air = Air()
    air.network()
    fake(air, **decode)
    return air


def test_identity_elsewhere_other_channel_and_on_two_channels():
    # a clone of cell 2 (ARFCN 25, BSIC 34) on ARFCN 63 with BSIC 9, while cell 2 is on air
    air = _with_fake(lac=9510, cid=20312, neighbours=(12, 38))
    out = air.judge()
    quiet_network(out)
    got = names(out[9])
    assert {"identity_other_channel", "identity_on_two_channels"} <= got
    other = next(i for i in out[9].indicators if i["name"] == "identity_other_channel")
    assert other["evidence"]["known_arfcn"] == 25 and other["evidence"]["arfcn"] == 63
    assert out[9].verdict == "rogue"
    # the reference puts that identity 40 km away: elsewhere (heard at ~-60 dBm here)
    far = tuple(replace(c, lat=c.lat + 0.36) if c.cid == 20312 else c for c in REFERENCE)
    assert "identity_elsewhere" in names(air.judge(ref=far)[9])
    assert "identity_elsewhere" not in names(air.judge()[9])


def test_second_cell_on_the_channel_and_identity_change():
    air = Air()
    air.network()
    # BSIC 9 then BSIC 17 on ARFCN 63, heard by the same sensors, both unknown
    fake(air, eid=9, passes=1, lac=1234, cid=1)
    air.emitter(10, 63, 200.0, 100.0)
    for s in SENSORS:
        air.decode(10, 86.0, s, power_at(s, 200.0, 100.0, 37.0), bsic=17, lac=1241, cid=1, ppm=-LO[s][2],
                   sensor_ppm=2.0)
    out = air.judge()
    assert "identity_change" in names(out[10]) and "identity_change" in names(out[9])
    # LAC cycling on one emitter: two changes seen by one sensor make it "cycling"
    air = Air()
    air.network()
    fake(air, passes=1, lac=1234, cid=1)
    for k, lac in ((1, 1241), (2, 1248)):
        for s in SENSORS:
            air.decode(9, 40.0 * k + 6.0, s, power_at(s, 200.0, 100.0, 37.0), bsic=9, lac=lac, cid=1,
                       ppm=-LO[s][k], sensor_ppm=float(k))
    ind = next(i for i in air.judge()[9].indicators if i["name"] == "identity_cycling")
    assert ind["evidence"]["changes"] == 2 and "1234-1 → 460-00-1241-1" in ind["reason"]
    # ... whereas SI4-only decodes (no CID) of the same cell are no change
    air = Air()
    air.network()
    fake(air, passes=1, lac=1234, cid=1)
    air.decode(9, 50.0, "n", -60.0, bsic=9, lac=1234, cid=None, ppm=-LO["n"][1], sensor_ppm=1.0)
    assert not names(air.judge()[9]) & {"identity_change", "identity_cycling"}


def test_two_cells_on_one_channel_at_once():
    air = Air()
    air.network()
    # a second BSIC on cell 1's ARFCN 12, heard by the same sensors at the same time
    air.emitter(9, 12, 200.0, 100.0)
    for s in ("n", "e"):
        air.decode(9, 7.0, s, -70.0, bsic=40, lac=4321, cid=5, ppm=-LO[s][0], sensor_ppm=0.0)
    out = air.judge()
    assert "second_cell_on_channel" in names(out[9])
    assert "second_cell_on_channel" not in names(out[1])  # the known cell is not blamed


def test_foreign_network():
    out = _with_fake(mcc="001", mnc="01", lac=1, cid=1).judge()
    ind = next(i for i in out[9].indicators if i["name"] == "foreign_network")
    assert ind["evidence"]["network"] == "001-01" and "460-00" in ind["reason"]


def test_neighbour_lists():
    out = _with_fake(lac=4321, cid=77, neighbours=()).judge()
    assert "no_neighbours" in names(out[9])
    # SI2 not decoded says nothing about the neighbours
    assert "no_neighbours" not in names(_with_fake(lac=4321, cid=77, neighbours=None).judge()[9])
    # a copied list: the cells it names do not name ARFCN 63 back
    out = _with_fake(lac=9510, cid=20399, neighbours=(12, 25, 38)).judge()
    ind = next(i for i in out[9].indicators if i["name"] == "neighbours_not_reciprocal")
    assert ind["evidence"]["checked"] == [12, 25, 38]
    quiet_network(out)


@pytest.mark.parametrize("cro, penalty_s, expect", [
    (60, 20, "reselection_pull_strong"), (30, 20, "reselection_pull"), (20, 20, None),
    (60, None, None),    # PENALTY_TIME 31: C2 = C1 - CRO pushes phones away
    (0, 20, None),
])
def test_reselection_pull(cro, penalty_s, expect):
    out = _with_fake(cro=cro, penalty_s=penalty_s).judge()
    got = names(out[9]) & {"reselection_pull", "reselection_pull_strong"}
    assert got == ({expect} if expect else set())


@pytest.mark.parametrize("t3212_s, expect", [(360, "short_t3212_strong"), (1440, "short_t3212"), (1800, None),
                                              (0, None)])
def test_short_t3212(t3212_s, expect):
    got = names(_with_fake(t3212_s=t3212_s).judge()[9]) & {"short_t3212", "short_t3212_strong"}
    assert got == ({expect} if expect else set())


def test_clock_offset_beyond_the_sensor_lo_error():
    # the fake's carrier is 2.4 ppm off; every sensor's LO error differs from pass to pass
    air = _with_fake(lac=9510, cid=20399)
    for k in range(3):
        for s in SENSORS:
            air.dets[-12 + 4 * k + list(SENSORS).index(s)] = replace(
                air.dets[-12 + 4 * k + list(SENSORS).index(s)],
                features={**air.dets[-12 + 4 * k + list(SENSORS).index(s)].features, "ppm": round(2.4 - LO[s][k], 3)})
    out = air.judge()
    quiet_network(out)  # the LO errors (up to 11.9 ppm) are removed from the real cells
    ind = next(i for i in out[9].indicators if i["name"] == "clock_offset_strong")
    assert ind["evidence"]["residual_ppm"] == pytest.approx(2.4, abs=0.02) and ind["evidence"]["captures"] == 12
    # 0.3 ppm is "clock_offset", 0.1 ppm nothing
    for off, expect in ((0.3, {"clock_offset"}), (0.1, set())):
        a = _with_fake(lac=9510, cid=20399)
        a.dets = [replace(d, features={**d.features, "ppm": round(d.features["ppm"] + off, 3)})
                  if d.emitter_id == 9 else d for d in a.dets]
        assert names(a.judge()[9]) & {"clock_offset", "clock_offset_strong"} == expect


def test_arfcn_outside_the_operators_plan():
    assert "arfcn_outside_plan" in names(_with_fake().judge()[9])
    # the plan of another operator does not count: 460-01's plan has 102, not 460-00's
    assert "arfcn_outside_plan" in names(_with_fake(arfcn=102).judge()[9])
    # a never-decoded carrier is checked against every operator's plan
    air = Air()
    air.network()
    air.emitter(9, 102, 200.0, 100.0)
    air.emitter(10, 71, 200.0, 100.0)
    for s in SENSORS:
        air.sweep(9, 5.0, s, -80.0)
        air.sweep(10, 5.0, s, -80.0)
    out = air.judge()
    assert out[9].verdict == "known" and out[10].verdict == "unverified"
    assert names(out[10]) == {"arfcn_outside_plan"} and "not decoded" not in out[10].reasons[0]


def _baseline(cid: int = 20312, arfcn: int = 25, bsic: int = 34, first: float = T0 - 86400.0,
              power: dict | None = None) -> BaselineCellRow:
    lat, lon = ll(900.0, 700.0)
    return BaselineCellRow(1, 460, 0, 9510, cid, arfcn, bsic, first, T0 - 3600.0, 200, lat, lon,
                           power if power is not None else {
                               s: {"n": 50, "mean_dbm": power_at(s, 900.0, 700.0, 45.0), "std_db": 1.0,
                                   "lat": ll(*SENSORS[s])[0], "lon": ll(*SENSORS[s])[1]} for s in SENSORS},
                           T0 - 3600.0)


def test_power_far_above_the_baseline():
    # a clone of cell 2 on the same ARFCN and BSIC, 30 m from sensor "n"
    air = Air()
    air.network()
    for k in range(3):
        air.decode(2, 40.0 * k + 30.0, "n", -45.0, bsic=34, lac=9510, cid=20312, ppm=-LO["n"][k],
                   sensor_ppm=float(k), neighbours=(12, 38, 47))
    out = air.judge(baseline=[_baseline()])
    ind = next(i for i in out[2].indicators if i["name"] == "power_above_baseline")
    assert ind["evidence"]["sensor"] == "n" and ind["evidence"]["excess_db"] > 10
    # without that sensor's baseline, nothing to compare with
    assert "power_above_baseline" not in names(air.judge(baseline=[_baseline(power={})])[2])


def test_new_cell_where_the_baseline_is_mature():
    learned = [_baseline(cid=c[3], arfcn=c[0], bsic=c[1]) for c in CELLS.values()]
    air = _with_fake(lac=9510, cid=20399)
    out = air.judge(baseline=learned)
    assert "new_cell" in names(out[9])
    assert all("new_cell" not in names(out[e]) for e in CELLS)
    # a baseline without powers at these sensors is no grounds
    bare = [replace(b, power={}) for b in learned]
    assert "new_cell" not in names(air.judge(baseline=bare)[9])


def test_short_lifetime():
    air = _with_fake(lac=4321, cid=77, passes=2)          # on air 40 s ...
    for k in range(3, 12):                               # ... and the sensors keep listening for 6 min
        for eid, (arfcn, bsic, lac, cid, e, n) in CELLS.items():
            air.sweep(eid, 40.0 * k, "n", power_at("n", e, n, 45.0))
    ind = next(i for i in air.judge()[9].indicators if i["name"] == "short_lifetime")
    assert ind["evidence"]["lifetime_s"] == pytest.approx(46.0) and ind["evidence"]["sensors"] == ["n"]
    # still on air: not a short life
    assert "short_lifetime" not in names(_with_fake(lac=4321, cid=77, passes=2).judge()[9])


def test_motion_from_powers_at_fixed_sensors():
    air = Air()
    air.network()
    air.emitter(9, 63)
    rng = np.random.default_rng(3)
    for k in range(12):   # a car driving west to east along the middle at 10 m/s
        e = -1500.0 + 250.0 * k
        for s in SENSORS:
            air.sweep(9, 20.0 * k, s, power_at(s, e, 0.0, 35.0) + rng.normal(0, 1.0))
    out = air.judge()
    ind = next(i for i in out[9].indicators if i["name"] == "moving_power")
    assert len([s for s in ind["evidence"]["sensors"].values() if s["std_db"] > 4]) >= 2
    # the same swings seen by a moving sensor mean nothing
    assert "moving_power" not in names(air.judge(mobile=set(SENSORS))[9])
    # a fixed cell with 1 dB of noise does not move
    still = Air()
    still.network()
    still.emitter(9, 63)
    for k in range(12):
        for s in SENSORS:
            still.sweep(9, 20.0 * k, s, power_at(s, 0.0, 0.0, 35.0) + rng.normal(0, 1.0))
    assert "moving_power" not in names(still.judge()[9])


def test_motion_from_located_positions():
    air = _with_fake(lac=4321, cid=77)
    tracker_fixes = [Fix(T0 + 0.0, *ll(-1500.0, 0.0), 300.0), Fix(T0 + 300.0, *ll(1500.0, 0.0), 300.0)]
    tracker = CellTracker()
    tracker.add(air.dets)
    for f in tracker_fixes:
        tracker.record_fix(9, f)
    ems = [replace(em, last_seen_utc=T0 + 86.0) for em in air.emitters.values()]
    out = judge_cells(ems, tracker, ReferenceIndex(REFERENCE))
    ind = next(i for i in out[9].indicators if i["name"] == "moving_position")
    assert 2900 < ind["evidence"]["distance_m"] < 3100
    # wide ellipses that overlap are no motion
    tracker.cells[9].fixes = [replace(f, semi_major_m=2000.0) for f in tracker_fixes]
    assert "moving_position" not in names(judge_cells(ems, tracker, ReferenceIndex(REFERENCE))[9])


def test_scores_make_verdicts():
    air = _with_fake(lac=4321, cid=77)
    out = air.judge()
    j = out[9]
    assert j.score == pytest.approx(sum(i["weight"] for i in j.indicators))
    assert j.verdict == ("rogue" if j.score >= DEFAULT_MODEL.rogue_score else "suspicious")
    low = RogueModel(suspicious_score=j.score + 1, rogue_score=j.score + 2)
    assert air.judge(model=low)[9].verdict == "unverified"
    mid = RogueModel(suspicious_score=j.score - 1, rogue_score=j.score + 1)
    assert air.judge(model=mid)[9].verdict == "suspicious"
    # reasons are the indicators' reasons, strongest first
    weights = [i["weight"] for i in j.indicators]
    assert weights == sorted(weights, reverse=True) and j.reasons[0] == j.indicators[0]["reason"]
    # a weight of zero switches an indicator off
    off = RogueModel(weights={**DEFAULT_MODEL.weights, "lonely_lac": 0.0})
    assert "lonely_lac" not in names(air.judge(model=off)[9])


def test_a_shared_channel_is_measured_by_the_cells_own_decodes():
    """A fake switching on over cell 1's ARFCN makes the sweeps on that ARFCN jump: that is
    not cell 1 moving, nor cell 1 arriving above its baseline."""
    air = Air()
    air.network()
    learned = [_baseline(cid=c[3], arfcn=c[0], bsic=c[1], power={
        s: {"n": 50, "mean_dbm": power_at(s, c[4], c[5], 45.0), "std_db": 1.0, "lat": ll(*SENSORS[s])[0],
            "lon": ll(*SENSORS[s])[1]} for s in SENSORS}) for c in CELLS.values()]
    air.emitter(9, 12, 200.0, 100.0)
    for k in range(12):
        for s in SENSORS:
            loud = power_at(s, 200.0, 100.0, 37.0) if k % 2 else power_at(s, -800.0, 500.0, 45.0)
            air.sweep(1, 100.0 + 20.0 * k, s, loud)       # sweeps on ARFCN 12 went to the known cell ...
        air.decode(9, 101.0 + 20.0 * k, "n", power_at("n", 200.0, 100.0, 37.0), bsic=40, lac=4321, cid=5,
                   ppm=-LO["n"][2], sensor_ppm=9.0)       # ... while the fake's own decodes are its own
    out = air.judge(baseline=learned)
    assert not names(out[1]) & {"moving_power", "power_above_baseline"}
    assert out[1].verdict == "known"


def test_a_trusted_cell_is_where_it_always_was():
    # the baseline learned cell 2 with a bad position 40 km off: still not "elsewhere"
    air = Air()
    air.network()
    far = replace(_baseline(), lat=_baseline().lat + 0.36)
    out = air.judge(ref=REFERENCE[:1] + REFERENCE[2:], baseline=[far])
    assert out[2].verdict == "known" and "identity_elsewhere" not in names(out[2])


def test_a_bare_carrier_that_became_a_decoded_cell_did_not_die():
    air = Air()
    air.network()
    air.emitter(9, 63)   # sweeps on ARFCN 63 before its cell was decoded ...
    for s in SENSORS:
        air.sweep(9, 0.0, s, -80.0)
    fake(air, eid=10, passes=3)   # ... then the decoded cell on ARFCN 63 goes on for minutes
    for k in range(3, 12):
        for s in SENSORS:
            air.sweep(10, 40.0 * k, s, -80.0)
    out = air.judge()
    assert "short_lifetime" not in names(out[9])
