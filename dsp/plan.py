"""Scan plans: how a tuner with a narrow span hops across a wide band.

Each hop sees ``usable_fraction * sample_rate_hz`` of flat spectrum around its centre.
Hops overlap so that every channel is wholly inside at least one hop; each channel is then
assigned to the hop where it sits farthest from the span's edges, and hop centres avoid
putting the DC spike on a channel centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.bands import Band
from rfhunt.errors import DspError


@dataclass(frozen=True)
class Hop:
    """One tuning of a scan.

    Attributes
    ----------
    band : Band
    center_freq_hz, sample_rate_hz : float
    channel_freqs_hz : ndarray
        Channels this hop is responsible for measuring.
    """

    band: Band
    center_freq_hz: float
    sample_rate_hz: float
    channel_freqs_hz: np.ndarray


def plan_hops(band: Band, sample_rate_hz: float, *, usable_fraction: float = 0.8,
              overlap_hz: float | None = None) -> list[Hop]:
    """Cover every channel of ``band`` with overlapping hops.

    Parameters
    ----------
    band : Band
    sample_rate_hz : float
        Rate of each capture; sets the span of a hop.
    usable_fraction : float
        Flat part of the span (an RTL-SDR at 2.4 MS/s is flat over about 80 %).
    overlap_hz : float, optional
        Overlap of consecutive hops, rounded up to whole channels; defaults to one channel,
        so a carrier on the seam is wholly seen by both neighbours.

    Raises
    ------
    DspError
        If the usable span cannot hold a single channel.
    """
    usable = usable_fraction * sample_rate_hz
    bw = band.bandwidth_hz
    if usable < bw + band.channel_hz:
        raise DspError(f"{sample_rate_hz:.0f} S/s leaves {usable:.0f} Hz usable, too narrow for "
                       f"{band.name} channels of {bw:.0f} Hz")
    chans = band.channel_freqs_hz()
    # channels one hop holds wholly; an even count puts the DC spike between two channels
    per_hop = int(np.floor((usable - bw) / band.channel_hz + 1e-9)) + 1
    if per_hop % 2 and per_hop > 1:
        per_hop -= 1
    overlap_ch = 1 if overlap_hz is None else int(np.ceil(overlap_hz / band.channel_hz))
    step_ch = max(1, per_hop - overlap_ch)
    starts = list(range(0, max(chans.size - per_hop, 0) + 1, step_ch))
    if starts[-1] + per_hop < chans.size:
        starts.append(chans.size - per_hop)
    last = np.minimum(np.asarray(starts) + per_hop - 1, chans.size - 1)
    centers = (chans[np.asarray(starts)] + chans[last]) / 2
    if per_hop == 1:
        centers = centers + band.channel_hz / 2
    # margin of each channel to the edges of each hop's usable span
    margin = usable / 2 - bw / 2 - np.abs(chans[:, None] - centers[None, :])
    best = np.argmax(margin, axis=1)
    if np.any(margin[np.arange(chans.size), best] < 0):
        bad = chans[margin[np.arange(chans.size), best] < 0][0]
        raise DspError(f"scan plan leaves channel {bad / 1e6:.3f} MHz uncovered")
    hops = []
    for h, fc in enumerate(centers):
        mine = chans[best == h]
        if mine.size:
            hops.append(Hop(band, float(fc), float(sample_rate_hz), mine))
    return hops
