"""What a BCCH carrier's timeslot 0 sends in each 4-burst block of the 51-multiframe.

The BCCH block (frames 2-5) carries a System Information type chosen by
``TC = (FN div 51) mod 8`` (3GPP TS 45.002 §6.3.1.3): SI1 at TC 0, SI2 at 1, SI3 at 2 and 6,
SI4 at 3 and 7, SI13 (or SI2ter) at 4, SI2ter/SI2bis/SI2quater at 5. The nine CCCH blocks carry
paging; an idle cell pages nobody. :func:`bcch_payload` turns the frames into the data bits
the transmitter (:func:`dsp.gsm.tx.gsm_downlink_iq`) puts in each burst.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dsp.gsm.xcch import xcch_encode
from rfhunt.errors import DspError

#: Frame (FN mod 51) of the first burst of each 4-burst block on timeslot 0.
BLOCK_STARTS = np.array([2, 6, 12, 16, 22, 26, 32, 36, 42, 46], dtype=np.int64)
#: SI type broadcast at each TC, with the fall-backs used when a cell does not send that type.
TC_SCHEDULE = (("SI1", "SI3"), ("SI2", "SI3"), ("SI3",), ("SI4", "SI3"), ("SI13", "SI2ter", "SI3"),
               ("SI2ter", "SI2bis", "SI2quater", "SI4", "SI3"), ("SI3",), ("SI4", "SI3"))
#: PAGING REQUEST TYPE 1 paging nobody: page mode normal, one "no identity" mobile identity.
EMPTY_PAGING = bytes.fromhex("15062100 01f0".replace(" ", "")) + b"\x2b" * 17


def block_of(fn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(block index 0-9 in the multiframe, burst 0-3 within it) of timeslot-0 frames;
    -1 for FCCH, SCH and idle frames."""
    t51 = np.asarray(fn, dtype=np.int64) % 51
    idx = np.searchsorted(BLOCK_STARTS, t51, side="right") - 1
    k = t51 - BLOCK_STARTS[np.maximum(idx, 0)]
    inside = (idx >= 0) & (k < 4)
    return np.where(inside, idx, -1), np.where(inside, k, -1)


def bcch_payload(si_frames: Mapping[str, bytes], ccch_frame: bytes = EMPTY_PAGING):
    """The ``payload(fn, tn)`` callable of a cell broadcasting ``si_frames``.

    Parameters
    ----------
    si_frames : mapping
        ``{"SI1": frame, "SI3": frame, ...}``, 23-byte L2 frames; SI3 is required.
    ccch_frame : bytes
        The 23-byte frame every CCCH block carries.

    Raises
    ------
    DspError
        If SI3 is missing or a frame is not 23 bytes.
    """
    if "SI3" not in si_frames:
        raise DspError("a BCCH needs at least SI3 (si_frames has " + ", ".join(si_frames) + ")")
    for name, frame in [*si_frames.items(), ("CCCH", ccch_frame)]:
        if len(frame) != 23:
            raise DspError(f"{name} frame must be 23 bytes, got {len(frame)}")
    tc_frames = [next(si_frames[n] for n in names if n in si_frames) for names in TC_SCHEDULE]
    table = xcch_encode(np.frombuffer(b"".join([*tc_frames, ccch_frame]), dtype=np.uint8).reshape(-1, 23))

    def payload(fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
        block, k = block_of(fn)
        if np.any(block < 0):
            raise DspError("payload asked for a frame that holds no BCCH/CCCH block")
        tc = (np.asarray(fn, dtype=np.int64) // 51) % 8
        row = np.where(block == 0, tc, 8)
        return table[row, k]

    return payload
