"""Information elements of 3GPP TS 44.018 §10.5.2 shared by the System Information messages.

Each IE is a frozen dataclass with ``decode`` (from octets) and ``encode`` (to octets), the raw
field values as the standard names them, and derived values in physical units (dB, dBm, s)
as properties that :meth:`to_dict` also emits. Also the CSN.1 bit reader and writer of the rest
octets, whose L/H bits are read against the padding pattern 0x2B (§10.1, TS 24.007 §11.3.1):
an L bit equals the padding bit at its position, an H bit differs from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rfhunt.errors import DspError

PADDING = 0x2B
"""The filler of unused octets and bits of a BCCH/CCCH block (§10.1)."""

BLOCK_OCTETS = 23
"""Octets of one BCCH/CCCH L2 frame."""


class SiParseError(DspError):
    """A BCCH/CCCH frame or one of its IEs is truncated or malformed; the message names the
    message type, the field and the octet (1-based, octet 1 being the L2 pseudo length)."""


class SiEncodeError(DspError):
    """A value given to an SI encoder is out of its field's range."""


def to_json(value):
    """JSON-ready form of a dataclass tree: dataclasses to dicts (with their ``_derived``
    properties), tuples to lists, bytes to hex."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            out[f.name] = to_json(getattr(value, f.name))
        for name in getattr(value, "_derived", ()):
            out[name] = to_json(getattr(value, name))
        return out
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return value


class _Json:
    _derived: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready values: every field and derived quantity."""
        return to_json(self)


def check_int(value, lo: int, hi: int, name: str) -> int:
    """``value`` as an int in ``lo..hi`` or :class:`SiEncodeError` naming ``name``."""
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise SiEncodeError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# CSN.1 rest octets

class RestReader:
    """Reads the bits of rest octets; past their end every bit is padding (L for L/H).

    Parameters
    ----------
    data : bytes
        The rest octets.
    """

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    def _pad_bit(self, pos: int) -> int:
        return (PADDING >> (7 - (pos & 7))) & 1

    def _raw(self, pos: int) -> int:
        if pos >> 3 >= len(self.data):
            return self._pad_bit(pos)
        return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1

    def bits(self, n: int) -> int:
        """The next ``n`` bits as an unsigned integer, MSB first."""
        value = 0
        for _ in range(n):
            value = (value << 1) | self._raw(self.pos)
            self.pos += 1
        return value

    def lh(self) -> bool:
        """The next L/H bit: True for H."""
        if self.pos >> 3 >= len(self.data):
            self.pos += 1
            return False
        bit = self._raw(self.pos)
        h = bit != self._pad_bit(self.pos)
        self.pos += 1
        return h


class RestWriter:
    """Writes rest octets over a field of padding 0x2B.

    Parameters
    ----------
    n_octets : int
        Length of the rest octets.
    name : str
        The message, for errors.
    """

    def __init__(self, n_octets: int, name: str) -> None:
        self.buf = bytearray([PADDING] * n_octets)
        self.pos = 0
        self.name = name

    def _set(self, bit: int) -> None:
        if self.pos >> 3 >= len(self.buf):
            raise SiEncodeError(f"{self.name}: rest octets overflow their {len(self.buf)} octets")
        mask = 0x80 >> (self.pos & 7)
        if bit:
            self.buf[self.pos >> 3] |= mask
        else:
            self.buf[self.pos >> 3] &= ~mask & 0xFF
        self.pos += 1

    def bits(self, value: int, n: int) -> None:
        """Append ``value`` on ``n`` bits, MSB first."""
        for k in range(n - 1, -1, -1):
            self._set((value >> k) & 1)

    def lh(self, h: bool) -> None:
        """Append an H (True) or L (False) bit."""
        pad = (PADDING >> (7 - (self.pos & 7))) & 1
        self._set(pad ^ 1 if h else pad)

    def octets(self) -> bytes:
        """The rest octets: what was written, then padding."""
        return bytes(self.buf)


# --------------------------------------------------------------------------------------------
# §10.5.1.3 Location Area Identification, §10.5.1.1 Cell Identity

@dataclass(frozen=True)
class LocationAreaId(_Json):
    """Location Area Identification (TS 24.008 §10.5.1.3).

    Attributes
    ----------
    mcc : str
        Three decimal digits.
    mnc : str
        Two or three decimal digits, as broadcast ("01" and "001" differ).
    lac : int
        Location area code, 0..65535.
    """

    mcc: str
    mnc: str
    lac: int

    @classmethod
    def decode(cls, octets: bytes, msg: str, octet_no: int) -> LocationAreaId:
        """Decode 5 octets (``octet_no`` is the first one's number, for errors)."""
        d = [octets[0] & 0xF, octets[0] >> 4, octets[1] & 0xF, octets[1] >> 4,
             octets[2] & 0xF, octets[2] >> 4]
        mcc_d, mnc3, mnc_d = d[0:3], d[3], d[4:6]
        if any(x > 9 for x in mcc_d):
            raise SiParseError(f"{msg}: Location Area Identification MCC in octets {octet_no}-"
                               f"{octet_no + 1} has a non-decimal digit ({octets[:2].hex()})")
        if any(x > 9 for x in mnc_d) or (mnc3 > 9 and mnc3 != 0xF):
            raise SiParseError(f"{msg}: Location Area Identification MNC in octets {octet_no + 1}-"
                               f"{octet_no + 2} has a non-decimal digit ({octets[1:3].hex()})")
        mnc = "".join(map(str, mnc_d)) + ("" if mnc3 == 0xF else str(mnc3))
        return cls("".join(map(str, mcc_d)), mnc, octets[3] << 8 | octets[4])

    def encode(self) -> bytes:
        """5 octets."""
        if not (isinstance(self.mcc, str) and len(self.mcc) == 3 and self.mcc.isdigit()):
            raise SiEncodeError(f"Location Area Identification: MCC must be 3 digits, got {self.mcc!r}")
        if not (isinstance(self.mnc, str) and len(self.mnc) in (2, 3) and self.mnc.isdigit()):
            raise SiEncodeError(f"Location Area Identification: MNC must be 2 or 3 digits, got {self.mnc!r}")
        lac = check_int(self.lac, 0, 0xFFFF, "Location Area Identification LAC")
        m = [int(c) for c in self.mcc]
        n = [int(c) for c in self.mnc]
        n3 = n[2] if len(n) == 3 else 0xF
        return bytes([m[1] << 4 | m[0], n3 << 4 | m[2], n[1] << 4 | n[0], lac >> 8, lac & 0xFF])


# --------------------------------------------------------------------------------------------
# §10.5.2.11 Control Channel Description

_BS_CC_CHANS = {0: 1, 1: 1, 2: 2, 4: 3, 6: 4}


@dataclass(frozen=True)
class ControlChannelDescription(_Json):
    """Control Channel Description (§10.5.2.11), in SI3.

    Attributes
    ----------
    mscr : int
        MSC release bit (0: R98 or older, 1: R99 onwards).
    att : bool
        IMSI attach/detach allowed.
    bs_ag_blks_res : int
        CCCH blocks reserved for access grant, 0..7.
    ccch_conf : int
        CCCH_CONF code: 0 one non-combined CCCH, 1 one CCCH combined with SDCCH, 2/4/6 two,
        three, four non-combined CCCHs.
    cbq3 : int
        CBQ3 (Iu mode cell barring), 0..3.
    bs_pa_mfrms_code : int
        BS_PA_MFRMS code, 0..7 (multiframes between paging = code + 2).
    t3212_decihours : int
        Periodic location update timer, in 6-minute units; 0 means no periodic update.
    """

    mscr: int = 1
    att: bool = True
    bs_ag_blks_res: int = 1
    ccch_conf: int = 0
    cbq3: int = 0
    bs_pa_mfrms_code: int = 3
    t3212_decihours: int = 10
    _derived = ("ccch_combined", "bs_cc_chans", "bs_pa_mfrms", "t3212_s")

    @property
    def ccch_combined(self) -> bool:
        """True when the CCCH shares timeslot 0 with SDCCH/4 (CCCH_CONF 001)."""
        return self.ccch_conf == 1

    @property
    def bs_cc_chans(self) -> int | None:
        """Basic physical channels carrying CCCH (None for a reserved CCCH_CONF)."""
        return _BS_CC_CHANS.get(self.ccch_conf)

    @property
    def bs_pa_mfrms(self) -> int:
        """51-multiframes between transmissions of paging to the same paging group (2..9)."""
        return self.bs_pa_mfrms_code + 2

    @property
    def t3212_s(self) -> int:
        """T3212 in seconds (0 = infinite, no periodic location updating)."""
        return self.t3212_decihours * 360

    @classmethod
    def decode(cls, o: bytes) -> ControlChannelDescription:
        """Decode 3 octets."""
        return cls(o[0] >> 7, bool(o[0] >> 6 & 1), o[0] >> 3 & 7, o[0] & 7, o[1] >> 5 & 3,
                   o[1] & 7, o[2])

    def encode(self) -> bytes:
        """3 octets."""
        n = "Control Channel Description"
        return bytes([
            check_int(self.mscr, 0, 1, f"{n} MSCR") << 7 | int(bool(self.att)) << 6
            | check_int(self.bs_ag_blks_res, 0, 7, f"{n} BS_AG_BLKS_RES") << 3
            | check_int(self.ccch_conf, 0, 7, f"{n} CCCH_CONF"),
            check_int(self.cbq3, 0, 3, f"{n} CBQ3") << 5 | check_int(self.bs_pa_mfrms_code, 0, 7,
                                                                      f"{n} BS_PA_MFRMS"),
            check_int(self.t3212_decihours, 0, 255, f"{n} T3212")])


# --------------------------------------------------------------------------------------------
# §10.5.2.3 Cell Options (BCCH)

@dataclass(frozen=True)
class CellOptions(_Json):
    """Cell Options (BCCH) (§10.5.2.3), in SI3.

    Attributes
    ----------
    dn_ind : bool
        Dynamic ARFCN mapping indicator.
    pwrc : bool
        Power control indicator (PWRC): BCCH carrier excluded from downlink power control
        measurements averaging.
    dtx : int
        DTX code: 0 MS may use uplink DTX, 1 MS shall use it, 2 MS shall not use it.
    radio_link_timeout_code : int
        RADIO-LINK-TIMEOUT code 0..15 (SACCH blocks = 4 × (code + 1)).
    """

    dn_ind: bool = False
    pwrc: bool = False
    dtx: int = 2
    radio_link_timeout_code: int = 15
    _derived = ("radio_link_timeout_blocks",)

    @property
    def radio_link_timeout_blocks(self) -> int:
        """RADIO-LINK-TIMEOUT in SACCH blocks (4..64)."""
        return 4 * (self.radio_link_timeout_code + 1)

    @classmethod
    def decode(cls, o: int) -> CellOptions:
        """Decode one octet."""
        return cls(bool(o >> 7), bool(o >> 6 & 1), o >> 4 & 3, o & 15)

    def encode(self) -> bytes:
        """1 octet."""
        return bytes([int(bool(self.dn_ind)) << 7 | int(bool(self.pwrc)) << 6
                      | check_int(self.dtx, 0, 3, "Cell Options DTX") << 4
                      | check_int(self.radio_link_timeout_code, 0, 15, "Cell Options RADIO-LINK-TIMEOUT")])


# --------------------------------------------------------------------------------------------
# §10.5.2.4 Cell Selection Parameters

def ms_txpwr_max_cch_dbm(level: int, band: str = "gsm900") -> int:
    """The maximum MS transmit power on the RACH, in dBm, of a power control level.

    Parameters
    ----------
    level : int
        MS_TXPWR_MAX_CCH, 0..31 (TS 45.005 §4.1.1 power control levels).
    band : str
        ``gsm900`` (also GSM850/GSM450), ``dcs1800`` or ``pcs1900``.

    Returns
    -------
    int
    """
    level = check_int(level, 0, 31, "MS_TXPWR_MAX_CCH")
    if band == "gsm900":
        return 39 if level <= 2 else max(5, 43 - 2 * level)
    if band == "dcs1800":
        if level >= 29:
            return 36 - 2 * (level - 29)
        return max(0, 30 - 2 * level)
    if band == "pcs1900":
        if level >= 30:
            return 33 - (level - 30)
        return max(0, 30 - 2 * level)
    raise SiEncodeError(f"MS_TXPWR_MAX_CCH: unknown band {band!r} (gsm900, dcs1800, pcs1900)")


@dataclass(frozen=True)
class CellSelectionParameters(_Json):
    """Cell Selection Parameters (§10.5.2.4), in SI3 and SI4.

    Attributes
    ----------
    cell_reselect_hysteresis_code : int
        0..7 (hysteresis = 2 dB × code).
    ms_txpwr_max_cch : int
        Power control level 0..31 (see :func:`ms_txpwr_max_cch_dbm`).
    acs : bool
        Additional reselect parameter indication (SI16/SI17 or rest octets).
    neci : bool
        New establishment causes supported.
    rxlev_access_min : int
        RXLEV-ACCESS-MIN code 0..63.
    """

    cell_reselect_hysteresis_code: int = 2
    ms_txpwr_max_cch: int = 5
    acs: bool = False
    neci: bool = True
    rxlev_access_min: int = 8
    _derived = ("cell_reselect_hysteresis_db", "rxlev_access_min_dbm")

    @property
    def cell_reselect_hysteresis_db(self) -> int:
        """CELL-RESELECT-HYSTERESIS in dB (0..14)."""
        return 2 * self.cell_reselect_hysteresis_code

    @property
    def rxlev_access_min_dbm(self) -> int:
        """Least received level to access the cell, in dBm (lower edge of the RXLEV step)."""
        return -110 + self.rxlev_access_min

    @classmethod
    def decode(cls, o: bytes) -> CellSelectionParameters:
        """Decode 2 octets."""
        return cls(o[0] >> 5, o[0] & 31, bool(o[1] >> 7), bool(o[1] >> 6 & 1), o[1] & 63)

    def encode(self) -> bytes:
        """2 octets."""
        n = "Cell Selection Parameters"
        return bytes([
            check_int(self.cell_reselect_hysteresis_code, 0, 7, f"{n} CELL-RESELECT-HYSTERESIS") << 5
            | check_int(self.ms_txpwr_max_cch, 0, 31, f"{n} MS-TXPWR-MAX-CCH"),
            int(bool(self.acs)) << 7 | int(bool(self.neci)) << 6
            | check_int(self.rxlev_access_min, 0, 63, f"{n} RXLEV-ACCESS-MIN")])


# --------------------------------------------------------------------------------------------
# §10.5.2.29 RACH Control Parameters

_MAX_RETRANS = (1, 2, 4, 7)
_TX_INTEGER = (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 20, 25, 32, 50)


@dataclass(frozen=True)
class RachControl(_Json):
    """RACH Control Parameters (§10.5.2.29), in SI1, SI2, SI2bis, SI3, SI4.

    Attributes
    ----------
    max_retrans_code : int
        0..3 (retransmissions 1, 2, 4, 7).
    tx_integer_code : int
        0..15 (slots between retransmissions 3..50).
    cell_barred : bool
        CELL_BAR_ACCESS: the cell is barred for access.
    re : bool
        RE bit: True when call re-establishment is NOT allowed.
    access_class_barred : tuple of int
        Access classes 0..15 whose bit is set (class 10 is the EC bit: emergency calls
        restricted to classes 11..15).
    """

    max_retrans_code: int = 3
    tx_integer_code: int = 14
    cell_barred: bool = False
    re: bool = True
    access_class_barred: tuple[int, ...] = ()
    _derived = ("max_retrans", "tx_integer_slots", "emergency_call_restricted")

    @property
    def max_retrans(self) -> int:
        """Maximum RACH retransmissions."""
        return _MAX_RETRANS[self.max_retrans_code]

    @property
    def tx_integer_slots(self) -> int:
        """Tx-integer: RACH slots spread between retransmissions."""
        return _TX_INTEGER[self.tx_integer_code]

    @property
    def emergency_call_restricted(self) -> bool:
        """EC bit: emergency calls only for access classes 11..15."""
        return 10 in self.access_class_barred

    @classmethod
    def decode(cls, o: bytes) -> RachControl:
        """Decode 3 octets."""
        acs = o[1] << 8 | o[2]
        return cls(o[0] >> 6, o[0] >> 2 & 15, bool(o[0] >> 1 & 1), bool(o[0] & 1),
                   tuple(c for c in range(16) if acs >> c & 1))

    def encode(self) -> bytes:
        """3 octets."""
        n = "RACH Control Parameters"
        acs = 0
        for c in self.access_class_barred:
            acs |= 1 << check_int(c, 0, 15, f"{n} access class")
        return bytes([check_int(self.max_retrans_code, 0, 3, f"{n} Max retrans") << 6
                      | check_int(self.tx_integer_code, 0, 15, f"{n} Tx-integer") << 2
                      | int(bool(self.cell_barred)) << 1 | int(bool(self.re)),
                      acs >> 8, acs & 0xFF])


# --------------------------------------------------------------------------------------------
# Optional Selection Parameters of the SI3/SI4 rest octets (§10.5.2.34)

@dataclass(frozen=True)
class SelectionParameters(_Json):
    """The Optional Selection Parameters of the SI3/SI4 rest octets (C2 reselection, TS 45.008 §6.4).

    Attributes
    ----------
    cbq : int
        CELL_BAR_QUALIFY (0/1).
    cell_reselect_offset_code : int
        CELL_RESELECT_OFFSET code 0..63 (CRO = 2 dB × code).
    temporary_offset_code : int
        TEMPORARY_OFFSET code 0..7 (10 dB × code; 7 means infinity).
    penalty_time_code : int
        PENALTY_TIME code 0..31 (20 s × (code + 1); 31 means CRO is subtracted from C2 and
        TEMPORARY_OFFSET ignored).
    """

    cbq: int = 0
    cell_reselect_offset_code: int = 0
    temporary_offset_code: int = 0
    penalty_time_code: int = 0
    _derived = ("cell_reselect_offset_db", "temporary_offset_db", "temporary_offset_infinite",
                "penalty_time_s", "c2_subtracts_cro")

    @property
    def cell_reselect_offset_db(self) -> int:
        """CELL_RESELECT_OFFSET (CRO) in dB, 0..126."""
        return 2 * self.cell_reselect_offset_code

    @property
    def temporary_offset_db(self) -> int | None:
        """TEMPORARY_OFFSET in dB (None when infinite)."""
        return None if self.temporary_offset_code == 7 else 10 * self.temporary_offset_code

    @property
    def temporary_offset_infinite(self) -> bool:
        """TEMPORARY_OFFSET is infinity (code 7)."""
        return self.temporary_offset_code == 7

    @property
    def penalty_time_s(self) -> int | None:
        """PENALTY_TIME in seconds (None for code 31, which makes C2 = C1 − CRO)."""
        return None if self.penalty_time_code == 31 else 20 * (self.penalty_time_code + 1)

    @property
    def c2_subtracts_cro(self) -> bool:
        """PENALTY_TIME 11111: C2 = C1 − CELL_RESELECT_OFFSET (the cell is made less attractive)."""
        return self.penalty_time_code == 31

    @classmethod
    def read(cls, r: RestReader) -> SelectionParameters:
        """Read the 15 bits after the H bit."""
        return cls(r.bits(1), r.bits(6), r.bits(3), r.bits(5))

    def write(self, w: RestWriter) -> None:
        """Write the 15 bits after the H bit."""
        n = "Optional Selection Parameters"
        w.bits(check_int(self.cbq, 0, 1, f"{n} CBQ"), 1)
        w.bits(check_int(self.cell_reselect_offset_code, 0, 63, f"{n} CELL_RESELECT_OFFSET"), 6)
        w.bits(check_int(self.temporary_offset_code, 0, 7, f"{n} TEMPORARY_OFFSET"), 3)
        w.bits(check_int(self.penalty_time_code, 0, 31, f"{n} PENALTY_TIME"), 5)
