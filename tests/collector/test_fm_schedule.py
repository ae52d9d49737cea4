"""On-air schedules of FM emitters (collector.fm_schedule) from crafted detections over
simulated days and nights, in local time (UTC+8 unless told)."""

from __future__ import annotations

import numpy as np
import pytest

from collector.fm_registry import fm_evidence
from collector.fm_schedule import (
    ScheduleParams,
    emitter_schedule,
    fm_schedules,
    merge_gap_s,
    on_air_intervals,
    profile_bar,
)
from collector.judge import judge_fm
from collector.reference import Reference
from collector.store import Store
from rfhunt.cli import main
from rfhunt.errors import ConfigError
from rfhunt.records import Detection

#: A local (UTC+8) midnight, as Unix seconds: 2025-11-27 00:00 in Beijing.
MIDNIGHT = 1_764_172_800.0
H = 3600.0


def on_air(days, start_h, end_h, *, scan_s=600.0, skip=(), seed=0, jitter_s=90.0):
    """Detection times of an emitter on air every local day ``d`` in ``range(days)`` (not in
    ``skip``) from ``start_h`` to ``end_h`` (past midnight when smaller), one per scan with
    some jitter."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(days):
        if d in skip:
            continue
        a = MIDNIGHT + d * 86400 + start_h * H
        b = MIDNIGHT + d * 86400 + (end_h if end_h > start_h else end_h + 24) * H
        t = np.arange(a + rng.uniform(0, 60), b - 60, scan_s)
        out += list(t + rng.uniform(0, jitter_s, t.size))
    return sorted(out)


def test_black_radio_on_a_timer_is_recovered():
    # six nights 20:30-07:30, the fourth missed (the timer failed): 5 of 6
    s = emitter_schedule(on_air(6, 20.5, 7.5, skip=(3,)))
    assert s.window == (20 * 60 + 30, 7 * 60 + 30)
    assert s.summary == "on air 20:30-07:30 on 5 of 6 nights"
    assert s.night_only and s.night_share == 1.0
    assert len(s.intervals) == 5 and s.n_days == 7
    bar = profile_bar(s.profile)
    assert len(bar) == 48 and bar[15:41].strip() == "" and " " not in bar[:15] + bar[41:]


def test_daytime_and_round_the_clock_stations_are_not_night_transmitters():
    day = emitter_schedule(on_air(6, 6.0, 24.0, seed=1))
    assert day.summary == "on air 06:00-00:00 on 6 of 6 days" and not day.night_only
    assert day.night_share < 0.5
    always = emitter_schedule(on_air(4, 0.0, 24.0, seed=2) + [MIDNIGHT + 4 * 86400 - 30])
    assert always.window == (0, 1440) and always.summary.startswith("on air around the clock")
    assert not always.night_only


def test_local_time_follows_the_utc_offset():
    times = on_air(5, 20.5, 7.5, seed=3)
    berlin = emitter_schedule(times, ScheduleParams(utc_offset_h=1.0))  # 7 h earlier on the clock
    assert berlin.window == (13 * 60 + 30, 30) and not berlin.night_only


def test_one_night_is_not_a_night_transmitter_and_lone_detections_count():
    s = emitter_schedule(on_air(1, 21.0, 5.0))
    assert not s.night_only  # on air on one night only: min_nights is 2
    lone = emitter_schedule([MIDNIGHT + 10 * H])
    assert lone.intervals == ((MIDNIGHT + 10 * H, MIDNIGHT + 10 * H),) and lone.profile[20] == 1.0
    assert emitter_schedule([]).summary == "never detected"


def test_intervals_merge_short_gaps_only():
    t = [0.0, 600.0, 1200.0, 1800.0, 2400.0, 9000.0, 9600.0]
    assert merge_gap_s(t) == 1800.0  # three times the 600 s scan interval
    assert on_air_intervals(t, 1800.0) == [(0.0, 2400.0), (9000.0, 9600.0)]
    assert merge_gap_s(t, ScheduleParams(max_gap_s=10_000.0)) == 10_000.0
    assert on_air_intervals([], 600.0) == []


@pytest.mark.parametrize("kw", [dict(utc_offset_h=15), dict(slot_s=7 * 60), dict(max_gap_s=0),
                                dict(usual_fraction=0)])
def test_bad_params(kw):
    with pytest.raises(ConfigError):
        ScheduleParams(**kw)


def _associate(store):
    """Attach every stored detection to the FM emitter of its frequency."""
    by_freq = {}
    for d in store.detections():
        by_freq.setdefault(d.freq_hz, []).append(d.id)
    for f, ids in by_freq.items():
        store.assign_detections(store.get_or_create_emitter(f"fm:{f:.0f}", "fm", f, None), ids)


def _dets(times, freq_hz, seq0, power_dbm=-50.0, **features):
    return [Detection("s1", seq0 + i, t, 22.54, 114.05, "fm", freq_hz, None, 200e3, power_dbm, 35.0,
                      {"rds": False, "pilot": False, **features}) for i, t in enumerate(times)]


def test_schedules_from_the_store_cli_and_verdict_reason(sqlite_url, capsys):
    black = _dets(on_air(6, 20.5, 7.5, skip=(3,), scan_s=1200.0), 99.7e6, 0)
    licensed = _dets(on_air(6, 6.0, 24.0, scan_s=1200.0, seed=4), 97.1e6, 10_000, rds=True, rds_pi="C201")
    with Store.open(sqlite_url) as store:
        store.add_batch(black + licensed)
        _associate(store)
        ems = {e.freq_hz: e for e in store.emitters(kind="fm")}
        sched = fm_schedules(store)
        ev = fm_evidence(store, list(ems.values()))
    assert sched[ems[99.7e6].id].summary == "on air 20:30-07:30 on 5 of 6 nights"
    assert sched[ems[97.1e6].id].summary == "on air 06:00-00:00 on 6 of 6 days"
    v = judge_fm(ems[99.7e6], Reference(), ev[ems[99.7e6].id])
    assert v.verdict == "unlicensed" and any("20:30-07:30" in r and "night" in r for r in v.reasons)
    assert not any("night" in r for r in judge_fm(ems[97.1e6], Reference(), ev[ems[97.1e6].id]).reasons)
    assert main(["fm", "schedule", "--db", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert "99.70" in out and "on air 20:30-07:30 on 5 of 6 nights  [night only]" in out
    assert "on air 06:00-00:00 on 6 of 6 days" in out and "2 FM emitter(s)" in out
    assert main(["fm", "schedule", "--db", sqlite_url, "--format", "jsonl", "--utc-offset", "1"]) == 0
    assert '"window": [810, 30]' in capsys.readouterr().out  # 13:30-00:30 in UTC+1
