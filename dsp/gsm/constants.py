"""GSM physical-layer constants (3GPP TS 45.002, TS 45.004).

Bit sequences are stored as read-only ``uint8`` arrays of 0/1 in transmission order
(bit 0 first on air).
"""

from __future__ import annotations

import numpy as np


def _bits(text: str) -> np.ndarray:
    arr = np.frombuffer(text.replace(" ", "").encode(), dtype=np.uint8) - ord("0")
    arr.flags.writeable = False
    return arr


#: Modulating symbol rate, symbols/s (TS 45.004 §2.1: 1625/6 ksymb/s).
SYMBOL_RATE_HZ = 1625000.0 / 6.0
#: One symbol period, s (~3.69 µs).
SYMBOL_PERIOD_S = 1.0 / SYMBOL_RATE_HZ
#: Gaussian filter bandwidth-time product (TS 45.004 §2.5).
GMSK_BT = 0.3
#: Frequency of the FCCH tone relative to the carrier, Hz (symbol rate / 4).
FCCH_OFFSET_HZ = SYMBOL_RATE_HZ / 4.0

#: Symbols in one TDMA frame (8 timeslots of 156.25 symbols).
FRAME_SYMBOLS = 1250
#: TDMA frame duration, s (120/26 ms).
FRAME_PERIOD_S = FRAME_SYMBOLS * SYMBOL_PERIOD_S
#: Timeslots per TDMA frame.
N_TIMESLOTS = 8
#: Average timeslot length, symbols.
SLOT_SYMBOLS_AVG = 156.25
#: Timeslot layout used here (gr-gsm / OsmoTRX convention): TS0 and TS4 are 157 symbols long,
#: the others 156, so that every slot starts on a whole symbol.
SLOT_LEN_SYMBOLS = np.array([157, 156, 156, 156, 157, 156, 156, 156], dtype=np.int64)
#: Start of each timeslot within the frame, symbols.
SLOT_START_SYMBOLS = np.concatenate(([0], np.cumsum(SLOT_LEN_SYMBOLS)[:-1])).astype(np.int64)
#: Frame-number modulus (hyperframe = 2048 * 26 * 51 frames).
HYPERFRAME = 2048 * 26 * 51
#: Uplink TDMA frames start this many timeslots after the downlink frame of the same FN
#: (TS 45.002 §4.3.2, before timing advance).
UPLINK_DELAY_TIMESLOTS = 3

#: Bits of a normal, FCCH, SCH or dummy burst (guard period excluded).
BURST_BITS = 148
#: Bits of an access burst (guard period excluded).
ACCESS_BURST_BITS = 88
#: Encrypted data bits carried in one normal burst (2 x 57).
NORMAL_DATA_BITS = 114
#: Tail bits at each end of a normal burst.
TAIL_BITS = 3

#: The 8 normal-burst training sequences, TSC 0..7 (TS 45.002 §5.2.3), shape (8, 26).
TSC_BITS = np.array([
    _bits("00100101110000100010010111"),
    _bits("00101101110111100010110111"),
    _bits("01000011101110100100001110"),
    _bits("01000111101101000100011110"),
    _bits("00011010111001000001101011"),
    _bits("01001110101100000100111010"),
    _bits("10100111110110001010011111"),
    _bits("11101111000100101110111100"),
], dtype=np.uint8)
TSC_BITS.flags.writeable = False

#: Extended training sequence of the synchronization burst (TS 45.002 §5.2.5), 64 bits.
SCH_TRAINING_BITS = _bits(
    "1011100101100010000001000000111100101101010001010111011000011011")

#: Synchronization sequence of the access burst, training sequence TS0 (TS 45.002 §5.2.7), 41 bits.
ACCESS_SYNC_BITS = _bits("01001011011111111001100110101010001111000")
#: Extended tail bits that open an access burst (TS 45.002 §5.2.7), 8 bits.
ACCESS_EXT_TAIL_BITS = _bits("00111010")

#: The C0 dummy burst (TS 45.002 §5.2.6), 148 bits including the tail bits.
DUMMY_BURST_BITS = _bits(
    "0001111101101110110000010100100111000"
    "0010010001000000011111000111000101110"
    "0010111000101011101001010001100110011"
    "1001111010011111000100101111101010000")

#: 51-multiframe positions (FN mod 51) of the FCCH and SCH on timeslot 0 (TS 45.002 §6.3.3).
FCCH_FRAMES = (0, 10, 20, 30, 40)
SCH_FRAMES = (1, 11, 21, 31, 41)
#: FN mod 51 of the BCCH block on timeslot 0.
BCCH_FRAMES = (2, 3, 4, 5)
#: FN mod 51 of the idle frame on timeslot 0 (the C0 carrier sends a dummy burst).
IDLE_FRAME = 50
