"""From a wideband capture to every GSM cell's broadcast identity and parameters.

:func:`decode_bcch` chains the receiver front end (:func:`dsp.gsm.rx.receive_bcch`), the
control-channel decoder (:func:`dsp.gsm.xcch.xcch_decode`, batched over every block of every
channel) and the System Information parser (:func:`dsp.gsm.si.parse_l2_frame`), and merges
what each cell broadcast into one :class:`CellReport`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.bands import downlink_hz_to_arfcn
from dsp.gsm.bcch import block_of
from dsp.gsm.rx import receive_bcch
from dsp.gsm.rx.receiver import KIND_NORMAL
from dsp.gsm.si import SiParseError, parse_l2_frame
from dsp.gsm.xcch import burst_data_bits, xcch_decode


@dataclass(frozen=True)
class L2Frame:
    """One decoded BCCH/CCCH block.

    Attributes
    ----------
    freq_hz : float
        Nominal centre of the channel, Hz.
    arfcn : int or None
        Its ARFCN when the frequency is a GSM900/DCS1800 downlink channel.
    fn : int
        TDMA frame number of the block's first burst.
    timeslot : int
    channel : str
        ``"BCCH"`` or ``"CCCH"``.
    payload : bytes
        The 23-byte L2 frame.
    snr_db : float
        Mean training-sequence SNR of the block's four bursts, dB.
    """

    freq_hz: float
    arfcn: int | None
    fn: int
    timeslot: int
    channel: str
    payload: bytes
    snr_db: float


@dataclass(frozen=True)
class CellReport:
    """Everything one BCCH carrier was heard to broadcast in a capture.

    Attributes
    ----------
    freq_hz, arfcn
        The channel.
    offset_hz, ppm : float
        Carrier frequency error as received (the receiver's LO error plus the cell's own).
    bsic : int or None
        From the SCH; None when no SCH was decoded.
    fn : int or None
        Frame number of the first SCH.
    n_frames : int
        Blocks that passed the Fire check.
    snr_db : float
        Median burst SNR, dB.
    fields : dict
        Flattened system information (``mcc``, ``mnc``, ``lac``, ``cid``, ``cro_db``, ...), and
        ``receiver_ppm`` (the receiver's LO error: median offset of the cells that gave an SCH,
        None with fewer than two) and ``residual_ppm`` (this cell's offset beyond it: real base
        stations hold +-0.05 ppm, so more is a fingerprint).
    """

    freq_hz: float
    arfcn: int | None
    offset_hz: float
    ppm: float
    bsic: int | None
    fn: int | None
    n_frames: int
    snr_db: float
    fields: dict[str, Any] = field(default_factory=dict)


def _flatten(messages: list[dict]) -> dict[str, Any]:
    """Merge parsed messages of one cell into flat, JSON-ready fields."""
    by_type: dict[str, dict] = {}
    for m in messages:
        by_type.setdefault(m["type"], m)
    counts = Counter(m["type"] for m in messages)
    out: dict[str, Any] = {"si_types": sorted(t for t in by_type if t.startswith("SI")),
                           "paging_requests": counts.get("paging", 0),
                           "paged_identities": sum(m.get("n_identities", 0) for m in messages
                                                   if m["type"] == "paging"),
                           "immediate_assignments": counts.get("immediate_assignment", 0)}
    ident = by_type.get("SI3") or by_type.get("SI4")
    if ident:
        out.update(mcc=ident["lai"]["mcc"], mnc=ident["lai"]["mnc"], lac=ident["lai"]["lac"])
        cs, rach = ident["cell_selection"], ident["rach"]
        out.update(cell_reselect_hysteresis_db=cs["cell_reselect_hysteresis_db"],
                   rxlev_access_min_dbm=cs["rxlev_access_min_dbm"], ms_txpwr_max_cch=cs["ms_txpwr_max_cch"],
                   neci=cs["neci"], acs=cs["acs"], cell_barred=rach["cell_barred"])
        sel = (ident.get("rest") or {}).get("selection")
        out.update(cbq=None if sel is None else sel["cbq"],
                   cro_db=0 if sel is None else sel["cell_reselect_offset_db"],
                   temporary_offset_db=None if sel is None else sel["temporary_offset_db"],
                   penalty_time_s=None if sel is None else sel["penalty_time_s"],
                   c2_subtracts_cro=None if sel is None else sel["c2_subtracts_cro"])
    if "SI3" in by_type:
        si3 = by_type["SI3"]
        cc = si3["control_channel"]
        out.update(cid=si3["cell_identity"], t3212_s=cc["t3212_s"], att=cc["att"],
                   bs_ag_blks_res=cc["bs_ag_blks_res"], bs_pa_mfrms=cc["bs_pa_mfrms"],
                   ccch_conf=cc["ccch_conf"], ccch_combined=cc["ccch_combined"],
                   si2ter_present=si3.get("rest", {}).get("si2ter_present"),
                   si2quater_present=si3.get("rest", {}).get("si2quater_present"))
    if "SI1" in by_type:
        out["cell_allocation"] = by_type["SI1"]["cell_channels"]["arfcns"]
    nb = set()
    for t in ("SI2", "SI2bis", "SI2ter"):
        if t in by_type:
            nb.update(by_type[t]["neighbours"]["arfcns"])
    if any(t in by_type for t in ("SI2", "SI2bis", "SI2ter")):
        out["neighbours"] = sorted(nb)
    out["si13_present"] = "SI13" in by_type
    return out


def _one_result_per_cell(results: list) -> list:
    """Drop a channel that only shows a neighbour: the same cell (same BSIC and TDMA frame
    number at the same instant) found again through a filter skirt, further off its nominal
    frequency than the channel it really is on."""
    keep = []
    for r in results:
        twin = next((o for o in results if o is not r and o.bsic is not None and o.bsic == r.bsic
                     and abs(o.freq_hz - r.freq_hz) <= 600e3 and o.timing is not None and r.timing is not None
                     and _same_grid(o, r) and abs(o.offset_hz) < abs(r.offset_hz)), None)
        if twin is None:
            keep.append(r)
    return keep


def _same_grid(a, b) -> bool:
    """Whether two channels' SCHs put the same frame number at the same instant (both
    channels' streams run at the same rate)."""
    ta, tb = a.timing, b.timing
    if ta.fn_frame0 is None or tb.fn_frame0 is None or a.stream_rate_hz != b.stream_rate_hz:
        return False
    start_a = ta.frame0_sample + (tb.fn_frame0 - ta.fn_frame0) * ta.frame_samples
    return abs(start_a - tb.frame0_sample) < 0.25 * ta.frame_samples


def decode_bcch(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float,
                channel_freqs_hz: np.ndarray, *, ccch: bool = True) -> tuple[list[L2Frame], list[CellReport]]:
    """Decode every BCCH carrier on ``channel_freqs_hz`` in one capture.

    Parameters
    ----------
    iq : ndarray of complex
        The capture, full scale 1.
    sample_rate_hz, center_freq_hz : float
        Its tuning.
    channel_freqs_hz : array_like
        Nominal centres of the channels to look at, Hz.
    ccch : bool
        Decode the CCCH blocks too (paging and access-grant counts, every frame); False
        decodes the BCCH alone, which is all a cell's identity needs, in less time.

    Returns
    -------
    frames : list of L2Frame
        Every block that passed the Fire check, in channel then frame order.
    cells : list of CellReport
        One per channel where an FCCH was found.
    """
    # An RTL-SDR's DC spike sits 100 kHz from the two middle channels of a hop, inside their
    # filters; GMSK carriers average to nothing over a capture, so the mean is the spike.
    results = _one_result_per_cell(receive_bcch(np.asarray(iq), sample_rate_hz, center_freq_hz, channel_freqs_hz,
                                                ccch=ccch, remove_dc=True))
    blocks, owners = [], []
    for ci, res in enumerate(results):
        t = res.timing
        if t is None or t.fn_frame0 is None or res.bursts is None:
            continue
        b = res.bursts
        normal = b.kind == KIND_NORMAL
        fn = t.fn_frame0 + b.frame[normal]
        block, k = block_of(fn)
        soft, snr = b.soft[normal], b.snr_db[normal]
        start = fn - np.maximum(k, 0)
        for s in np.unique(start[block >= 0]):
            sel = np.flatnonzero((start == s) & (block >= 0))
            if sel.size == 4 and set(k[sel]) == {0, 1, 2, 3}:
                order = sel[np.argsort(k[sel])]
                blocks.append(burst_data_bits(soft[order]))
                owners.append((ci, int(s), int(block[order[0]]), float(np.mean(snr[order]))))
    frames: list[L2Frame] = []
    per_cell: dict[int, list[dict]] = {i: [] for i in range(len(results))}
    if blocks:
        dec = xcch_decode(np.stack(blocks))
        arfcns = [int(downlink_hz_to_arfcn(r.freq_hz)) for r in results]
        parsed: dict[bytes, dict] = {}  # a cell repeats its SI and idle paging frames: parse each once
        for (ci, fn0, blk, snr), ok, payload in zip(owners, dec.ok, dec.frames):
            if not ok:
                continue
            res, data = results[ci], bytes(payload)
            frames.append(L2Frame(res.freq_hz, None if arfcns[ci] < 0 else arfcns[ci], fn0, 0,
                                  "BCCH" if blk == 0 else "CCCH", data, snr))
            if data not in parsed:
                try:
                    parsed[data] = parse_l2_frame(data).to_dict()
                except SiParseError:
                    parsed[data] = {"type": "unparsed"}
            per_cell[ci].append(parsed[data])
    # The receiver's own LO error moves every carrier alike; base stations hold +-0.05 ppm.
    # The median over cells whose SCH decoded estimates the former, and what is left of each
    # cell's offset is the cell's own clock error: a fingerprint (needs two or more cells).
    locked = [r.ppm for r in results if r.bsic is not None and np.isfinite(r.ppm)]
    lo_ppm = float(np.median(locked)) if len(locked) >= 2 else None
    cells = []
    for ci, res in enumerate(results):
        arfcn = int(downlink_hz_to_arfcn(res.freq_hz))
        snr = float(np.median(res.bursts.snr_db)) if res.bursts is not None and res.bursts.snr_db.size else float("nan")
        fn0 = None if res.timing is None else res.timing.fn_frame0
        fields = _flatten(per_cell[ci])
        fields["receiver_ppm"] = None if lo_ppm is None else round(lo_ppm, 3)
        fields["residual_ppm"] = None if lo_ppm is None or not np.isfinite(res.ppm) else round(res.ppm - lo_ppm, 3)
        cells.append(CellReport(res.freq_hz, None if arfcn < 0 else arfcn, res.offset_hz, res.ppm, res.bsic, fn0,
                                len(per_cell[ci]) - sum(m["type"] == "unparsed" for m in per_cell[ci]), snr,
                                fields))
    return frames, cells
