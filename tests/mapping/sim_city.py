"""A collector database filled by the real pipeline from the built-in simulated city.

The :class:`~sensors.sim.observe.Observer` makes the records the city's five sensors (one
driving) would publish over ``minutes`` of air; a :class:`~collector.service.Collector`
ingests them as one batch (association), then locates and judges them against the
operators' reference and raises alerts. Evidence IQ is captured from the simulated
world at the sensors that detected the chosen emitters, as their dongles would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq

from collector.config import CollectorConfig
from collector.evidence import add_evidence
from collector.service import Collector
from collector.store import Store
from rfhunt.demo import write_reference_files
from sensors.sim.observe import Observer
from sensors.sim.scenario import Scenario, load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World

EVIDENCE_SAMPLES = 32768
EVIDENCE_RATE_HZ = 1.0e6


@dataclass(frozen=True)
class SimCity:
    url: str
    scenario: Scenario
    rogue_ids: tuple[int, ...]      # emitters judged rogue, by id
    evidence_ids: tuple[int, ...]   # evidence rows added (to the first rogue emitter)


def build(folder: Path, minutes: float = 5.0, seed: int = 1, evidence: int = 2) -> SimCity:
    sc = load_scenario(None)
    folder.mkdir(parents=True, exist_ok=True)
    gsm, fm = write_reference_files(sc, folder)
    url = f"sqlite:///{folder / 'rfhunt.db'}"
    cfg = CollectorConfig(db_url=url, bind="tcp://127.0.0.1:*", gsm_csv=str(gsm), fm_registry_csv=str(fm))
    world = World(sc)
    records = [o.record for o in Observer(world, seed=seed).run(0.0, minutes * 60.0, scan_interval_s=20.0,
                                                                   decode_every=2)]
    ctx = zmq.Context()
    try:
        with Collector(cfg, context=ctx) as col:
            col.ingest(records)
            col.flush(now_utc=sc.start_utc + minutes * 60.0)
    finally:
        ctx.term()
    with Store.open(url) as store:
        rogue = tuple(e.id for e in store.emitters() if e.verdict == "rogue" and e.semi_major_m is not None)
        ev_ids = []
        if rogue:
            dets = store.detections(emitter_id=rogue[0])
            picked = {}
            for d in sorted(dets, key=lambda d: -d.power_dbm):   # the strongest detection of each sensor
                picked.setdefault(d.sensor_id, d)
            for d in list(picked.values())[:evidence]:
                src = SimulatedSource(world, d.sensor_id, t_s=d.t_utc - sc.start_utc, seed=seed)
                src.tune(d.freq_hz, EVIDENCE_RATE_HZ, 30.0)
                iq = src.read(EVIDENCE_SAMPLES).as_complex64()
                ev_ids.append(add_evidence(store, d.id, iq, sample_rate_hz=EVIDENCE_RATE_HZ,
                                           center_freq_hz=d.freq_hz, t_utc=d.t_utc).id)
    return SimCity(url, sc, rogue, tuple(ev_ids))
