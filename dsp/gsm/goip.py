"""GOIP / modem-pool signature in one capture from one sensor.

The handsets of one gateway share its antenna: one sensor hears their uplink bursts at
nearly the same power, on several channels (ARFCN x timeslot) at once, for as long as the
calls last. Ordinary phones near a sensor are spread out: their powers differ by tens of
dB. :func:`capture_groups` groups the links of a capture whose median burst powers lie
within :data:`GROUP_SPREAD_DB` of their neighbours' (single linkage over power), and
judges each group: ``goip_suspect`` when at least :data:`GOIP_MIN_LINKS` of its links are
on the air in the same TDMA frame, ``uplink`` otherwise, with the reasons.

This is one sensor's view of a few seconds. Whether the group is really one place (its
location), persists for hours and runs at night is for the collector to judge across
sensors and time; the reasons say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.gsm.uplink import KIND_NORMAL, UplinkActivity, UplinkBursts

#: Links whose median powers lie within this of a group member's join the group, dB.
GROUP_SPREAD_DB = 4.0
#: Links of one group on the air in one TDMA frame that make a gateway suspect.
GOIP_MIN_LINKS = 4


@dataclass(frozen=True)
class LinkGroup:
    """Links heard at about one power level, and the verdict on them.

    Attributes
    ----------
    link : numpy.ndarray
        int64 indices into the :class:`~dsp.gsm.uplink.UplinkActivity` arrays.
    power_dbfs : float
        Median of the links' median burst powers, dB full scale.
    concurrent_max : int
        Most links of the group with a burst in one TDMA frame.
    concurrent_mean : float
        Mean links of the group per TDMA frame.
    verdict : str
        ``goip_suspect`` or ``uplink``.
    reasons : tuple of str
    """

    link: np.ndarray
    power_dbfs: float
    concurrent_max: int
    concurrent_mean: float
    verdict: str
    reasons: tuple[str, ...]


def capture_groups(bursts: UplinkBursts, activity: UplinkActivity,
                   arfcn: np.ndarray | None = None) -> list[LinkGroup]:
    """Group a capture's links by received power and judge each group (module notes).

    Parameters
    ----------
    bursts : UplinkBursts
        The capture's bursts.
    activity : UplinkActivity
        :func:`~dsp.gsm.uplink.uplink_activity` of the same bursts.
    arfcn : numpy.ndarray, optional
        ARFCN of each channel index, for the reasons (channel indices otherwise).

    Returns
    -------
    list of LinkGroup
        Strongest group first.
    """
    n = activity.channel.size
    if n == 0:
        return []
    order = np.argsort(activity.power_dbfs)
    gaps = np.diff(activity.power_dbfs[order]) > GROUP_SPREAD_DB
    label = np.empty(n, np.int64)
    label[order] = np.concatenate(([0], np.cumsum(gaps)))
    nb = bursts.kind == KIND_NORMAL
    key = bursts.channel[nb] * 8 + bursts.timeslot[nb]
    frame = bursts.slot[nb] // 8
    link_key = activity.channel * 8 + activity.timeslot
    frames_total = max(1.0, activity.capture_s / (8 * 156.25 / 270833.333))
    names = activity.channel if arfcn is None else np.asarray(arfcn)[activity.channel]
    out = []
    for g in np.unique(label):
        members = np.flatnonzero(label == g)
        in_g = np.isin(key, link_key[members])
        if in_g.any():
            per_frame = np.unique(np.stack((frame[in_g], key[in_g])), axis=1)[0]
            _, counts = np.unique(per_frame, return_counts=True)
            c_max, c_mean = int(counts.max()), float(counts.sum() / frames_total)
        else:  # pragma: no cover - every link has normal bursts by construction
            c_max, c_mean = 0, 0.0
        power = float(np.median(activity.power_dbfs[members]))
        chans = sorted({int(names[m]) for m in members})
        links = ", ".join(f"{int(names[m])}/TS{int(activity.timeslot[m])}" for m in members)
        spread = float(np.ptp(activity.power_dbfs[members])) if members.size > 1 else 0.0
        if c_max >= GOIP_MIN_LINKS:
            verdict = "goip_suspect"
            reasons = (f"{c_max} uplink channels on the air in one TDMA frame at one power level "
                       f"({power:.1f} dBFS, spread {spread:.1f} dB): {links}",
                       f"on {len(chans)} ARFCN(s); mean {c_mean:.1f} channels per frame over "
                       f"{activity.capture_s:.1f} s",
                       "one sensor, one capture: location, persistence and night activity are judged by the "
                       "collector")
        else:
            verdict = "uplink"
            reasons = (f"{c_max} uplink channel(s) at most in one frame at {power:.1f} dBFS "
                       f"(fewer than {GOIP_MIN_LINKS}): {links}",)
        out.append(LinkGroup(link=members, power_dbfs=power, concurrent_max=c_max, concurrent_mean=c_mean,
                             verdict=verdict, reasons=reasons))
    out.sort(key=lambda grp: -grp.power_dbfs)
    return out
