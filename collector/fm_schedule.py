"""On-air schedule of FM emitters from their detections.

Black radios often run on timers (20:30-07:30 is common), licensed stations around the clock
or from early morning to midnight. From the times an emitter was detected:

* **intervals**: detections closer than ``max_gap_s`` (by default a few of the emitter's own
  scan intervals: :data:`GAP_SCAN_INTERVALS` times the median gap between its detections,
  within :data:`MIN_GAP_S` .. :data:`MAX_GAP_S`) are one on-air interval;
* **daily profile**: local time (UTC plus ``utc_offset_h``, default +8, Asia/Shanghai) is
  cut into slots of ``slot_s`` (30 min); a slot of a day is on air when an interval overlaps
  it (or holds a lone detection). The profile is, per slot of the day, the fraction of the
  observed days on air in it; the observed days are the local dates from the first detection
  to the last;
* **window**: the longest run of slots (wrapping past midnight) on air on at least
  ``usual_fraction`` of the days, e.g. 20:30-07:30, and on how many of its occurrences within
  the observed days the emitter was on air for at least half of it: the summary "on air
  20:30-07:30 on 5 of 6 nights";
* **night flag**: at least ``night_fraction`` of the on-air slots lie in local night hours
  (``night_start_h`` to ``night_end_h``, 19:00-08:00) and the emitter was on air on at least
  ``min_nights`` different nights: a timer-driven night transmitter, which the verdict's
  reasons mention.

Times are Unix seconds (UTC); slots and windows are local time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from collector.store import EmitterRow, Store
from rfhunt.errors import ConfigError

DAY_S = 86400.0
#: The merge gap is this many times an emitter's median gap between detections ...
GAP_SCAN_INTERVALS = 3.0
#: ... and at least / at most this, s.
MIN_GAP_S = 300.0
MAX_GAP_S = 3600.0


@dataclass(frozen=True)
class ScheduleParams:
    """Settings of :func:`emitter_schedule` (see the module notes).

    Attributes
    ----------
    utc_offset_h : float
        Local time is UTC plus this many hours (China: +8).
    slot_s : float
        Slot length, s; must divide a day.
    max_gap_s : float or None
        Detections closer than this are one interval; None: from the emitter's own rhythm.
    usual_fraction : float
        A slot belongs to the usual window when on air on at least this fraction of days.
    night_start_h, night_end_h : float
        Local night hours (the night wraps past midnight).
    night_fraction : float
        Fraction of on-air slots at night that makes an emitter a night transmitter.
    min_nights : int
        Nights (local dates of on-air night slots, a night counted from its evening) needed
        for the night flag.
    """

    utc_offset_h: float = 8.0
    slot_s: float = 1800.0
    max_gap_s: float | None = None
    usual_fraction: float = 0.5
    night_start_h: float = 19.0
    night_end_h: float = 8.0
    night_fraction: float = 0.8
    min_nights: int = 2

    def __post_init__(self) -> None:
        if not -14 <= self.utc_offset_h <= 14:
            raise ConfigError(f"utc_offset_h must be within [-14, 14] hours, got {self.utc_offset_h!r}")
        if not (60 <= self.slot_s <= DAY_S and (DAY_S / self.slot_s).is_integer()):
            raise ConfigError(f"slot_s must divide a day into whole slots of at least 60 s, got {self.slot_s!r}")
        if self.max_gap_s is not None and not self.max_gap_s > 0:
            raise ConfigError(f"max_gap_s must be positive, got {self.max_gap_s!r}")
        if not 0 < self.usual_fraction <= 1 or not 0 < self.night_fraction <= 1:
            raise ConfigError("usual_fraction and night_fraction must be in (0, 1]")


@dataclass(frozen=True)
class Schedule:
    """An emitter's on-air schedule (see the module notes).

    Attributes
    ----------
    intervals : tuple of (start_utc, end_utc)
        On-air intervals, Unix seconds; a lone detection gives a zero-length one.
    profile : tuple of float
        Per slot of the local day (from 00:00), the fraction of observed days on air.
    n_days : int
        Observed days (local dates from the first detection to the last).
    window : (start_min, end_min) or None
        The usual on-air window, minutes after local midnight (``end`` may be smaller than
        ``start``: past midnight); ``(0, 1440)`` around the clock; None when there is none.
    n_on, n_occasions : int
        Occurrences of the window within the observed days, and those on air for at least
        half of it.
    night_only : bool
        A night transmitter (see the module notes).
    night_share : float
        Fraction of on-air slots in night hours.
    summary : str
        E.g. "on air 20:30-07:30 on 5 of 6 nights".
    utc_offset_h : float
    """

    intervals: tuple[tuple[float, float], ...]
    profile: tuple[float, ...]
    n_days: int
    window: tuple[int, int] | None
    n_on: int
    n_occasions: int
    night_only: bool
    night_share: float
    summary: str
    utc_offset_h: float


def merge_gap_s(times_utc: Sequence[float], params: ScheduleParams = ScheduleParams()) -> float:
    """The gap (s) under which detections are one interval (see the module notes)."""
    if params.max_gap_s is not None:
        return float(params.max_gap_s)
    t = np.unique(np.asarray(times_utc, dtype=float))
    gaps = np.diff(t)
    typical = float(np.median(gaps)) if gaps.size else 0.0
    return float(np.clip(GAP_SCAN_INTERVALS * typical, MIN_GAP_S, MAX_GAP_S))


def on_air_intervals(times_utc: Iterable[float], max_gap_s: float) -> list[tuple[float, float]]:
    """Detection times merged into (start, end) intervals where consecutive ones are less than
    ``max_gap_s`` apart."""
    t = np.unique(np.asarray(list(times_utc), dtype=float))
    t = t[np.isfinite(t)]
    if t.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) >= max_gap_s)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [t.size - 1]])
    return [(float(t[a]), float(t[b])) for a, b in zip(starts, ends)]


def _hhmm(minutes: int) -> str:
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def emitter_schedule(times_utc: Sequence[float], params: ScheduleParams = ScheduleParams()) -> Schedule:
    """The on-air schedule of one emitter from its detection times (Unix seconds, UTC).

    Raises
    ------
    ConfigError
        For bad ``params``.
    """
    per_day = int(round(DAY_S / params.slot_s))
    off_s = params.utc_offset_h * 3600.0
    times = [float(t) for t in times_utc if np.isfinite(t)]
    intervals = on_air_intervals(times, merge_gap_s(times, params)) if times else []
    if not intervals:
        return Schedule((), (0.0,) * per_day, 0, None, 0, 0, False, 0.0, "never detected", params.utc_offset_h)
    # absolute local slots, from the first observed local midnight
    day0 = int(np.floor((intervals[0][0] + off_s) / DAY_S))
    day1 = int(np.floor((intervals[-1][1] + off_s) / DAY_S))
    n_days = day1 - day0 + 1
    on = np.zeros(n_days * per_day, dtype=bool)
    base = day0 * DAY_S
    for a, b in intervals:
        s0 = int(np.floor((a + off_s - base) / params.slot_s))
        s1 = max(int(np.ceil((b + off_s - base) / params.slot_s)), s0 + 1)
        on[s0:s1] = True
    grid = on.reshape(n_days, per_day)
    profile = grid.mean(axis=0)
    # night hours and the night flag
    slot_h = np.arange(per_day) * params.slot_s / 3600.0
    if params.night_start_h > params.night_end_h:
        night = (slot_h >= params.night_start_h) | (slot_h < params.night_end_h)
    else:
        night = (slot_h >= params.night_start_h) & (slot_h < params.night_end_h)
    n_on_slots = int(on.sum())
    night_share = float(grid[:, night].sum() / n_on_slots) if n_on_slots else 0.0
    # a night is named by its evening: morning slots belong to the previous date
    abs_slot = np.flatnonzero(on)
    tod = abs_slot % per_day
    in_night = night[tod]
    evening_date = abs_slot // per_day - (slot_h[tod] < params.night_end_h).astype(int)
    n_nights = int(np.unique(evening_date[in_night]).size)
    night_only = night_share >= params.night_fraction and n_nights >= params.min_nights
    # the usual window: the longest circular run of usual slots
    usual = profile >= params.usual_fraction
    window, n_on, n_occ = None, 0, 0
    noun = "nights" if night_only else "days"
    if usual.all():
        window = (0, 1440)
        n_occ = n_days
        n_on = int(np.sum(grid.mean(axis=1) >= 0.5))
        summary = f"on air around the clock on {n_on} of {n_occ} days"
    elif usual.any():
        start_run = np.flatnonzero(usual & ~np.roll(usual, 1))
        best_len, best_start = 0, 0
        for s in start_run:
            length = 0
            while usual[(s + length) % per_day] and length < per_day:
                length += 1
            if length > best_len:
                best_len, best_start = length, int(s)
        slot_min = int(round(params.slot_s / 60))
        window = (best_start * slot_min, ((best_start + best_len) * slot_min) % 1440)
        # occurrences of the window that lie within the observed days
        for d in range(n_days):
            a = d * per_day + best_start
            b = a + best_len
            if b > on.size:
                break
            n_occ += 1
            n_on += bool(on[a:b].mean() >= 0.5)
        summary = f"on air {_hhmm(window[0])}-{_hhmm(window[1])} on {n_on} of {n_occ} {noun}"
    else:
        summary = f"on air irregularly: {len(intervals)} interval(s) over {n_days} day(s)"
    if window is not None and n_occ == 0:
        summary = f"on air {_hhmm(window[0])}-{_hhmm(window[1])} (not yet a whole occurrence seen)"
    return Schedule(tuple(intervals), tuple(float(p) for p in profile), n_days, window, n_on, n_occ,
                    bool(night_only), night_share, summary, params.utc_offset_h)


def fm_schedules(store: Store, emitters: Sequence[EmitterRow] | None = None,
                 params: ScheduleParams = ScheduleParams()) -> dict[int, Schedule]:
    """The schedule of every FM emitter of the store (or of ``emitters``), by emitter id.

    Raises
    ------
    StoreError
        If the database refuses.
    """
    ems = [e for e in (store.emitters(kind="fm") if emitters is None else emitters) if e.kind == "fm"]
    if not ems:
        return {}
    times: dict[int, list[float]] = {e.id: [] for e in ems}
    for d in store.detections(emitter_ids=list(times), kind="fm"):
        times[d.emitter_id].append(d.t_utc)  # type: ignore[index]
    return {eid: emitter_schedule(t, params) for eid, t in times.items()}


def profile_bar(profile: Sequence[float]) -> str:
    """A profile as one character per slot: `` `` never, ``.`` under 25 %, ``-`` under 50 %,
    ``+`` under 75 %, ``#`` from 75 % of days."""
    return "".join(" " if p <= 0 else "." if p < 0.25 else "-" if p < 0.5 else "+" if p < 0.75 else "#"
                   for p in profile)
