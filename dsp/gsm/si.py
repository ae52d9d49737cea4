"""System Information and CCCH messages of 3GPP TS 44.018: parse 23-octet L2 frames, encode them.

A BCCH/CCCH block carries one L2 frame of 23 octets: the L2 pseudo length (§10.5.2.19; bits
8..3 count the octets of the message that are not rest octets, bits 2..1 are ``01``), the RR
protocol discriminator (``0x06``, skip indicator 0), the message type, the IEs, rest octets,
and padding ``0x2B``. :func:`parse_l2_frame` turns one into a frozen dataclass:

* :class:`SystemInformation1`, ``2``, ``2bis``, ``2ter``, ``2quater``, ``3``, ``4``, ``13``
  (all :class:`SiMessage`): identity, cell and reselection parameters, neighbour lists;
* :class:`PagingMessage` (Paging Request Type 1/2/3: counts of the mobile identities, never the
  identities themselves);
* :class:`ImmediateAssignment` (Immediate Assignment, -Extended, -Reject: type only);
* :class:`OtherMessage` for anything else.

Both load-indicator kinds (paging and immediate assignment) are counted, not decoded.
:func:`encode` (and the ``encode_si*`` helpers) make the frames a simulated cell broadcasts.
Every result has ``to_dict()`` with JSON-ready values. Errors raise :class:`SiParseError`
(a :class:`rfhunt.errors.DspError`) naming the message, field and octet; octets are numbered
from 1 = the L2 pseudo length, as in the message tables of §9.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from dsp.gsm.freqlist import (
    FreqListError,
    FrequencyList,
    NeighbourCellDescription,
    NeighbourCellDescription2,
    choose_format,
    decode_cell_channel_description,
    decode_neighbour_cell_description,
    decode_neighbour_cell_description_2,
    encode_cell_channel_description,
    encode_neighbour_cell_description,
    encode_neighbour_cell_description_2,
)
from dsp.gsm.si_fields import (
    BLOCK_OCTETS,
    PADDING,
    CellOptions,
    CellSelectionParameters,
    ControlChannelDescription,
    LocationAreaId,
    RachControl,
    RestReader,
    RestWriter,
    SelectionParameters,
    SiEncodeError,
    SiParseError,
    _Json,
    check_int,
    ms_txpwr_max_cch_dbm,
)

__all__ = [
    "BLOCK_OCTETS",
    "MESSAGE_TYPES",
    "PADDING",
    "PD_RR",
    "CellOptions",
    "CellSelectionParameters",
    "ControlChannelDescription",
    "ImmediateAssignment",
    "LocationAreaId",
    "OtherMessage",
    "PagingMessage",
    "RachControl",
    "SelectionParameters",
    "Si3RestOctets",
    "Si4RestOctets",
    "SiEncodeError",
    "SiMessage",
    "SiParseError",
    "SystemInformation1",
    "SystemInformation2",
    "SystemInformation2bis",
    "SystemInformation2quater",
    "SystemInformation2ter",
    "SystemInformation3",
    "SystemInformation4",
    "SystemInformation13",
    "encode",
    "encode_si1",
    "encode_si2",
    "encode_si2bis",
    "encode_si2ter",
    "encode_si3",
    "encode_si4",
    "encode_si13_minimal",
    "ms_txpwr_max_cch_dbm",
    "parse_l2_frame",
]

PD_RR = 0x06
"""Protocol discriminator of Radio Resource management messages (TS 24.007)."""

MESSAGE_TYPES = {
    0x19: "SI1", 0x1A: "SI2", 0x02: "SI2bis", 0x03: "SI2ter", 0x07: "SI2quater", 0x1B: "SI3",
    0x1C: "SI4", 0x00: "SI13", 0x18: "SI8", 0x04: "SI9", 0x3D: "SI16", 0x3E: "SI17",
    0x40: "SI2n", 0x41: "SI14", 0x43: "SI15", 0x44: "SI18", 0x45: "SI19", 0x46: "SI20",
    0x42: "SI13alt", 0x01: "SI21", 0x1D: "SI5", 0x1E: "SI6", 0x1F: "SI7", 0x05: "SI5bis",
    0x06: "SI5ter",
    0x21: "Paging Request Type 1", 0x22: "Paging Request Type 2", 0x24: "Paging Request Type 3",
    0x3F: "Immediate Assignment", 0x39: "Immediate Assignment Extended",
    0x3A: "Immediate Assignment Reject", 0x20: "Notification/NCH",
}
"""RR message types (§10.4, table 10.4.1) that can appear on the BCCH/CCCH."""

_SI_TYPES = {"SI1": 0x19, "SI2": 0x1A, "SI2bis": 0x02, "SI2ter": 0x03, "SI2quater": 0x07,
             "SI3": 0x1B, "SI4": 0x1C, "SI13": 0x00}

_IDENTITY_TYPES = {0: "none", 1: "imsi", 2: "imei", 3: "imeisv", 4: "tmsi", 5: "tmgi"}


# --------------------------------------------------------------------------------------------
# rest octets of SI3 / SI4

@dataclass(frozen=True)
class Si3RestOctets(_Json):
    """The parts of the SI3 Rest Octets (§10.5.2.34) that cell selection uses.

    Attributes
    ----------
    selection : SelectionParameters or None
        Optional Selection Parameters (CBQ, CRO, TO, PT); None when absent (C2 = C1).
    power_offset_code : int or None
        POWER_OFFSET (DCS1800 class 3 MS: 2 dB × code), None when absent.
    si2ter_present : bool
        System Information 2ter Indicator.
    early_classmark_sending : bool
        Early Classmark Sending Control: H = explicitly accepted.
    scheduling_where : int or None
        WHERE of "Scheduling if and where" (SI scheduling in SI9), None when absent.
    ra_colour : int or None
        GPRS Indicator RA COLOUR (None: no GPRS).
    si13_position : int or None
        GPRS Indicator SI13 POSITION (0 BCCH Norm, 1 BCCH Ext).
    utran_early_classmark_restricted : bool
        3G Early Classmark Sending Restriction (H).
    si2quater_position : int or None
        SI2quater POSITION (0 BCCH Norm, 1 BCCH Ext) when SI2quater is broadcast.
    """

    selection: SelectionParameters | None = None
    power_offset_code: int | None = None
    si2ter_present: bool = False
    early_classmark_sending: bool = False
    scheduling_where: int | None = None
    ra_colour: int | None = None
    si13_position: int | None = None
    utran_early_classmark_restricted: bool = False
    si2quater_position: int | None = None
    _derived = ("gprs", "si2quater_present")

    @property
    def gprs(self) -> bool:
        """The cell supports GPRS (GPRS Indicator present)."""
        return self.ra_colour is not None

    @property
    def si2quater_present(self) -> bool:
        """SI2quater is broadcast."""
        return self.si2quater_position is not None

    @classmethod
    def decode(cls, data: bytes) -> Si3RestOctets:
        """Decode the rest octets (missing octets count as padding)."""
        r = RestReader(data)
        sel = SelectionParameters.read(r) if r.lh() else None
        power = r.bits(2) if r.lh() else None
        si2ter = r.lh()
        ecsc = r.lh()
        where = r.bits(3) if r.lh() else None
        ra_colour = si13_pos = None
        if r.lh():
            ra_colour, si13_pos = r.bits(3), r.bits(1)
        utran = r.lh()
        si2q = r.bits(1) if r.lh() else None
        return cls(sel, power, si2ter, ecsc, where, ra_colour, si13_pos, utran, si2q)

    def encode(self, n_octets: int = 4) -> bytes:
        """Encode into ``n_octets`` rest octets, padded with 0x2B."""
        w = RestWriter(n_octets, "SI3 Rest Octets")
        _write_o(w, self.selection, self.power_offset_code, None)
        w.lh(bool(self.si2ter_present))
        w.lh(bool(self.early_classmark_sending))
        w.lh(self.scheduling_where is not None)
        if self.scheduling_where is not None:
            w.bits(check_int(self.scheduling_where, 0, 7, "SI3 Rest Octets WHERE"), 3)
        _write_gprs(w, self.ra_colour, self.si13_position, "SI3 Rest Octets")
        w.lh(bool(self.utran_early_classmark_restricted))
        w.lh(self.si2quater_position is not None)
        if self.si2quater_position is not None:
            w.bits(check_int(self.si2quater_position, 0, 1, "SI3 Rest Octets SI2quater POSITION"), 1)
        return w.octets()


def _write_o(w: RestWriter, sel, power, _unused) -> None:
    w.lh(sel is not None)
    if sel is not None:
        sel.write(w)
    w.lh(power is not None)
    if power is not None:
        w.bits(check_int(power, 0, 3, f"{w.name} POWER_OFFSET"), 2)


def _write_gprs(w: RestWriter, ra_colour, si13_position, name: str) -> None:
    w.lh(ra_colour is not None)
    if ra_colour is not None:
        w.bits(check_int(ra_colour, 0, 7, f"{name} RA COLOUR"), 3)
        w.bits(check_int(si13_position if si13_position is not None else 0, 0, 1,
                         f"{name} SI13 POSITION"), 1)


@dataclass(frozen=True)
class Si4RestOctets(_Json):
    """The SI4 Rest Octets_O part (§10.5.2.35): what cell reselection uses.

    Attributes
    ----------
    selection : SelectionParameters or None
        Optional Selection Parameters.
    power_offset_code : int or None
        POWER_OFFSET code.
    ra_colour : int or None
        GPRS Indicator RA COLOUR.
    si13_position : int or None
        GPRS Indicator SI13 POSITION.
    """

    selection: SelectionParameters | None = None
    power_offset_code: int | None = None
    ra_colour: int | None = None
    si13_position: int | None = None
    _derived = ("gprs",)

    @property
    def gprs(self) -> bool:
        """The cell supports GPRS."""
        return self.ra_colour is not None

    @classmethod
    def decode(cls, data: bytes) -> Si4RestOctets:
        """Decode the rest octets (missing octets count as padding)."""
        r = RestReader(data)
        sel = SelectionParameters.read(r) if r.lh() else None
        power = r.bits(2) if r.lh() else None
        ra_colour = si13_pos = None
        if r.lh():
            ra_colour, si13_pos = r.bits(3), r.bits(1)
        return cls(sel, power, ra_colour, si13_pos)

    def encode(self, n_octets: int) -> bytes:
        """Encode into ``n_octets`` rest octets, padded with 0x2B."""
        w = RestWriter(n_octets, "SI4 Rest Octets")
        _write_o(w, self.selection, self.power_offset_code, None)
        _write_gprs(w, self.ra_colour, self.si13_position, "SI4 Rest Octets")
        return w.octets()


# --------------------------------------------------------------------------------------------
# messages

@dataclass(frozen=True)
class SiMessage(_Json):
    """Base of the System Information messages; ``si_type`` names it (``"SI3"``...)."""

    si_type: ClassVar[str] = ""
    pseudo_length: int = field(default=-1, compare=False, kw_only=True)

    @property
    def message_type(self) -> int:
        """The RR message type octet."""
        return _SI_TYPES[self.si_type]

    def to_dict(self) -> dict:
        """JSON-ready values, with ``"type"`` the SI type (``"SI3"``...)."""
        out = {"type": self.si_type}
        out.update(super().to_dict())
        return out


@dataclass(frozen=True)
class SystemInformation1(SiMessage):
    """SYSTEM INFORMATION TYPE 1 (§9.1.31): the cell allocation.

    Attributes
    ----------
    cell_channels : FrequencyList
        Cell Channel Description: the ARFCNs of the cell (cell allocation).
    rach : RachControl
    nch_position : int or None
        NCH position code of the SI1 rest octets (None: no NCH).
    band_pcs1900 : bool
        BAND_INDICATOR: ARFCNs 512..810 are PCS1900 (True) or DCS1800 (False).
    """

    si_type: ClassVar[str] = "SI1"
    cell_channels: FrequencyList = FrequencyList("bitmap0", ())
    rach: RachControl = RachControl()
    nch_position: int | None = None
    band_pcs1900: bool = False


@dataclass(frozen=True)
class SystemInformation2(SiMessage):
    """SYSTEM INFORMATION TYPE 2 (§9.1.32): BCCH allocation of the neighbour cells.

    Attributes
    ----------
    neighbours : NeighbourCellDescription
        Neighbour ARFCNs with EXT-IND and BA-IND.
    ncc_permitted : tuple of int
        NCCs (0..7) whose cells the MS may report.
    rach : RachControl
    """

    si_type: ClassVar[str] = "SI2"
    neighbours: NeighbourCellDescription = NeighbourCellDescription("bitmap0", (), False, 0)
    ncc_permitted: tuple[int, ...] = tuple(range(8))
    rach: RachControl = RachControl()


@dataclass(frozen=True)
class SystemInformation2bis(SiMessage):
    """SYSTEM INFORMATION TYPE 2bis (§9.1.33): extension of the BCCH allocation.

    Attributes
    ----------
    neighbours : NeighbourCellDescription
        Extended BCCH Frequency List.
    rach : RachControl
    """

    si_type: ClassVar[str] = "SI2bis"
    neighbours: NeighbourCellDescription = NeighbourCellDescription("bitmap0", (), False, 0)
    rach: RachControl = RachControl()


@dataclass(frozen=True)
class SystemInformation2ter(SiMessage):
    """SYSTEM INFORMATION TYPE 2ter (§9.1.34): BCCH allocation in other bands.

    Attributes
    ----------
    neighbours : NeighbourCellDescription2
        Extended BCCH Frequency List (Neighbour Cell Description 2).
    mp_change_mark, change_mark_3g, index, count : int or None
        SI2ter rest octets (None when absent).
    """

    si_type: ClassVar[str] = "SI2ter"
    neighbours: NeighbourCellDescription2 = NeighbourCellDescription2("bitmap0", (), 0, 0)
    mp_change_mark: int | None = None
    change_mark_3g: int | None = None
    index: int | None = None
    count: int | None = None


@dataclass(frozen=True)
class SystemInformation2quater(SiMessage):
    """SYSTEM INFORMATION TYPE 2quater (§9.1.34a): presence and instance numbering.

    Attributes
    ----------
    ba_ind, ba_ind_3g, mp_change_mark : int
        Leading bits of the SI2quater rest octets.
    index : int
        SI2quater_INDEX (0..15).
    count : int
        SI2quater_COUNT (0..15): the last index of the set.
    rest_octets : bytes
        The raw rest octets (3G/E-UTRAN neighbours etc. are not decoded).
    """

    si_type: ClassVar[str] = "SI2quater"
    ba_ind: int = 0
    ba_ind_3g: int = 0
    mp_change_mark: int = 0
    index: int = 0
    count: int = 0
    rest_octets: bytes = field(default=b"", compare=False)


@dataclass(frozen=True)
class SystemInformation3(SiMessage):
    """SYSTEM INFORMATION TYPE 3 (§9.1.35): the cell's identity and selection parameters.

    Attributes
    ----------
    cell_identity : int
        CI, 0..65535.
    lai : LocationAreaId
        MCC, MNC, LAC.
    control_channel : ControlChannelDescription
        ATT, BS_AG_BLKS_RES, CCCH_CONF, BS_PA_MFRMS, T3212.
    cell_options : CellOptions
        PWRC, DTX, RADIO-LINK-TIMEOUT.
    cell_selection : CellSelectionParameters
        Hysteresis, MS_TXPWR_MAX_CCH, ACS, NECI, RXLEV_ACCESS_MIN.
    rach : RachControl
        Includes CELL_BAR_ACCESS.
    rest : Si3RestOctets
        CBQ/CRO/TO/PT, GPRS, SI2ter/SI2quater indicators.
    """

    si_type: ClassVar[str] = "SI3"
    cell_identity: int = 0
    lai: LocationAreaId = LocationAreaId("001", "01", 1)
    control_channel: ControlChannelDescription = ControlChannelDescription()
    cell_options: CellOptions = CellOptions()
    cell_selection: CellSelectionParameters = CellSelectionParameters()
    rach: RachControl = RachControl()
    rest: Si3RestOctets = Si3RestOctets()


@dataclass(frozen=True)
class SystemInformation4(SiMessage):
    """SYSTEM INFORMATION TYPE 4 (§9.1.36): the LAI and selection parameters, again.

    Attributes
    ----------
    lai : LocationAreaId
    cell_selection : CellSelectionParameters
    rach : RachControl
    cbch_channel : bytes or None
        The 3 value octets of the CBCH Channel Description IE (IEI 0x64) when present
        (not encoded by :func:`encode`).
    cbch_mobile_allocation : bytes or None
        The value octets of the CBCH Mobile Allocation IE (IEI 0x72) when present.
    rest : Si4RestOctets
    """

    si_type: ClassVar[str] = "SI4"
    lai: LocationAreaId = LocationAreaId("001", "01", 1)
    cell_selection: CellSelectionParameters = CellSelectionParameters()
    rach: RachControl = RachControl()
    cbch_channel: bytes | None = None
    cbch_mobile_allocation: bytes | None = None
    rest: Si4RestOctets = Si4RestOctets()


@dataclass(frozen=True)
class SystemInformation13(SiMessage):
    """SYSTEM INFORMATION TYPE 13 (§9.1.43a): the cell has GPRS.

    Attributes
    ----------
    bcch_change_mark : int or None
        BCCH_CHANGE_MARK of the SI13 rest octets (None when the rest octets start with L).
    si_change_field : int or None
        SI_CHANGE_FIELD.
    rest_octets : bytes
        The raw 20 rest octets (GPRS cell options, PBCCH... are not decoded).
    """

    si_type: ClassVar[str] = "SI13"
    bcch_change_mark: int | None = None
    si_change_field: int | None = None
    rest_octets: bytes = field(default=b"", compare=False)


@dataclass(frozen=True)
class PagingMessage(_Json):
    """A Paging Request Type 1, 2 or 3 (§9.1.22-24), counted as a load indicator.

    Attributes
    ----------
    paging_type : int
        1, 2 or 3.
    page_mode : int
        Page Mode code (0 normal, 1 extended, 2 reorganization, 3 same as before).
    n_identities : int
        Mobile identities paged (a "No Identity" filler does not count).
    n_tmsi : int
        Of which TMSI/P-TMSI.
    n_imsi : int
        Of which IMSI.
    """

    paging_type: int
    page_mode: int
    n_identities: int
    n_tmsi: int
    n_imsi: int

    def to_dict(self) -> dict:
        """JSON-ready values with ``"type": "paging"``."""
        out = {"type": "paging"}
        out.update(super().to_dict())
        return out


@dataclass(frozen=True)
class ImmediateAssignment(_Json):
    """An Immediate Assignment (-Extended, -Reject) on the AGCH: type only (a load indicator).

    Attributes
    ----------
    kind : str
        ``assignment``, ``assignment_extended`` or ``reject``.
    message_type : int
    """

    kind: str
    message_type: int

    def to_dict(self) -> dict:
        """JSON-ready values with ``"type": "immediate_assignment"``."""
        out = {"type": "immediate_assignment"}
        out.update(super().to_dict())
        return out


@dataclass(frozen=True)
class OtherMessage(_Json):
    """Anything else: another RR message, another protocol, or an empty (all-padding) frame.

    Attributes
    ----------
    name : str
        The message's name (table 10.4.1), ``empty`` for a frame without a message, or
        ``unknown``.
    protocol_discriminator : int or None
    message_type : int or None
    pseudo_length : int
    """

    name: str
    protocol_discriminator: int | None
    message_type: int | None
    pseudo_length: int

    def to_dict(self) -> dict:
        """JSON-ready values with ``"type": "other"``."""
        out = {"type": "other"}
        out.update(super().to_dict())
        return out


ParsedFrame = SiMessage | PagingMessage | ImmediateAssignment | OtherMessage


# --------------------------------------------------------------------------------------------
# parsing

class _Frame:
    """Bounds-checked access to the frame's octets, numbered from 1."""

    def __init__(self, data: bytes, msg: str) -> None:
        self.data = data
        self.msg = msg

    def take(self, first: int, n: int, field_name: str) -> bytes:
        if first + n - 1 > len(self.data):
            raise SiParseError(f"{self.msg}: {field_name} needs octets {first}-{first + n - 1}, "
                               f"the frame ends at octet {len(self.data)}")
        return self.data[first - 1:first - 1 + n]

    def rest(self, first: int) -> bytes:
        return self.data[first - 1:] if first - 1 < len(self.data) else b""


def _freq(fn, octets: bytes, msg: str, field_name: str, octet_no: int):
    try:
        return fn(octets)
    except FreqListError as exc:
        raise SiParseError(f"{msg}: {field_name} (octets {octet_no}-{octet_no + 15}): {exc}") from exc


def _parse_si1(f: _Frame, pl: int) -> SystemInformation1:
    cells = _freq(decode_cell_channel_description, f.take(4, 16, "Cell Channel Description"),
                  f.msg, "Cell Channel Description", 4)
    rach = RachControl.decode(f.take(20, 3, "RACH Control Parameters"))
    r = RestReader(f.rest(23))
    nch = r.bits(5) if r.lh() else None
    return SystemInformation1(cells, rach, nch, r.lh(), pseudo_length=pl)


def _parse_si2(f: _Frame, pl: int) -> SystemInformation2:
    ncd = _freq(decode_neighbour_cell_description, f.take(4, 16, "Neighbour Cell Description"),
                f.msg, "Neighbour Cell Description", 4)
    ncc = f.take(20, 1, "NCC Permitted")[0]
    rach = RachControl.decode(f.take(21, 3, "RACH Control Parameters"))
    return SystemInformation2(ncd, tuple(n for n in range(8) if ncc >> n & 1), rach,
                              pseudo_length=pl)


def _parse_si2bis(f: _Frame, pl: int) -> SystemInformation2bis:
    ncd = _freq(decode_neighbour_cell_description, f.take(4, 16, "Extended BCCH Frequency List"),
                f.msg, "Extended BCCH Frequency List", 4)
    rach = RachControl.decode(f.take(20, 3, "RACH Control Parameters"))
    return SystemInformation2bis(ncd, rach, pseudo_length=pl)


def _parse_si2ter(f: _Frame, pl: int) -> SystemInformation2ter:
    ncd = _freq(decode_neighbour_cell_description_2, f.take(4, 16, "Extended BCCH Frequency List"),
                f.msg, "Extended BCCH Frequency List", 4)
    r = RestReader(f.rest(20))
    if r.lh():
        return SystemInformation2ter(ncd, r.bits(1), r.bits(1), r.bits(3), r.bits(3),
                                     pseudo_length=pl)
    return SystemInformation2ter(ncd, pseudo_length=pl)


def _parse_si2quater(f: _Frame, pl: int) -> SystemInformation2quater:
    rest = f.take(4, 2, "SI2quater Rest Octets (index and count)") + f.rest(6)
    r = RestReader(rest)
    return SystemInformation2quater(r.bits(1), r.bits(1), r.bits(1), r.bits(4), r.bits(4),
                                    rest, pseudo_length=pl)


def _parse_si3(f: _Frame, pl: int) -> SystemInformation3:
    ci = f.take(4, 2, "Cell Identity")
    lai = LocationAreaId.decode(f.take(6, 5, "Location Area Identification"), f.msg, 6)
    return SystemInformation3(
        ci[0] << 8 | ci[1], lai,
        ControlChannelDescription.decode(f.take(11, 3, "Control Channel Description")),
        CellOptions.decode(f.take(14, 1, "Cell Options (BCCH)")[0]),
        CellSelectionParameters.decode(f.take(15, 2, "Cell Selection Parameters")),
        RachControl.decode(f.take(17, 3, "RACH Control Parameters")),
        Si3RestOctets.decode(f.rest(20)), pseudo_length=pl)


def _parse_si4(f: _Frame, pl: int) -> SystemInformation4:
    lai = LocationAreaId.decode(f.take(4, 5, "Location Area Identification"), f.msg, 4)
    csp = CellSelectionParameters.decode(f.take(9, 2, "Cell Selection Parameters"))
    rach = RachControl.decode(f.take(11, 3, "RACH Control Parameters"))
    # optional IEs up to the end of the pseudo length, then the rest octets
    end = min(max(pl + 1, 13), len(f.data))      # last octet number of the non-rest part
    pos = 14
    cbch = cbch_ma = None
    while pos <= end:
        iei = f.take(pos, 1, "optional IE identifier")[0]
        if iei == 0x64 and cbch is None and cbch_ma is None:
            cbch = f.take(pos + 1, 3, "CBCH Channel Description")
            pos += 4
        elif iei == 0x72 and cbch_ma is None:
            n = f.take(pos + 1, 1, "CBCH Mobile Allocation length")[0]
            cbch_ma = f.take(pos + 2, n, "CBCH Mobile Allocation")
            pos += 2 + n
        else:   # not an IE of SI4: the pseudo length overstates, the rest octets start here
            break
    return SystemInformation4(lai, csp, rach, cbch, cbch_ma, Si4RestOctets.decode(f.rest(pos)),
                              pseudo_length=pl)


def _parse_si13(f: _Frame, pl: int) -> SystemInformation13:
    rest = f.rest(4)
    r = RestReader(rest)
    if r.lh():
        return SystemInformation13(r.bits(3), r.bits(4), rest, pseudo_length=pl)
    return SystemInformation13(None, None, rest, pseudo_length=pl)


_SI_PARSERS = {0x19: _parse_si1, 0x1A: _parse_si2, 0x02: _parse_si2bis, 0x03: _parse_si2ter,
               0x07: _parse_si2quater, 0x1B: _parse_si3, 0x1C: _parse_si4, 0x00: _parse_si13}


def _identity_type(f: _Frame, pos: int, field_name: str) -> tuple[str, int]:
    """(type, octets consumed) of an LV Mobile Identity at octet ``pos``."""
    n = f.take(pos, 1, f"{field_name} length")[0]
    if n < 1:
        raise SiParseError(f"{f.msg}: {field_name} at octet {pos} has length 0")
    first = f.take(pos + 1, n, field_name)[0]
    return _IDENTITY_TYPES.get(first & 7, "unknown"), 1 + n


def _parse_paging(f: _Frame, pl: int, mt: int) -> PagingMessage:
    page_mode = f.take(4, 1, "Page Mode")[0] & 3
    types: list[str] = []
    end = pl + 1
    if mt == 0x21:
        t, n = _identity_type(f, 5, "Mobile Identity 1")
        types.append(t)
        pos = 5 + n
        if pos <= end and pos <= len(f.data) and f.data[pos - 1] == 0x17:
            t, _ = _identity_type(f, pos + 1, "Mobile Identity 2")
            types.append(t)
        ptype = 1
    elif mt == 0x22:
        f.take(5, 8, "TMSI/P-TMSI 1 and 2")
        types += ["tmsi", "tmsi"]
        pos = 13
        if pos <= end and pos <= len(f.data) and f.data[pos - 1] == 0x17:
            t, _ = _identity_type(f, pos + 1, "Mobile Identity 3")
            types.append(t)
        ptype = 2
    else:
        f.take(5, 16, "TMSI/P-TMSI 1 to 4")
        types += ["tmsi"] * 4
        ptype = 3
    real = [t for t in types if t != "none"]
    return PagingMessage(ptype, page_mode, len(real), real.count("tmsi"), real.count("imsi"))


def parse_l2_frame(frame: bytes) -> ParsedFrame:
    """Parse one BCCH/CCCH L2 frame.

    Parameters
    ----------
    frame : bytes
        The frame: 23 octets starting with the L2 pseudo length. A shorter frame parses when
        all mandatory IEs of its message are present (missing rest octets count as padding).

    Returns
    -------
    SiMessage or PagingMessage or ImmediateAssignment or OtherMessage

    Raises
    ------
    SiParseError
        On a frame longer than 23 octets or empty, a pseudo-length octet whose bits 2..1 are
        not ``01``, or a truncated or malformed IE (the message names type, field and octet).
    """
    try:
        frame = bytes(frame)
    except (TypeError, ValueError) as exc:
        raise SiParseError(f"L2 frame: not bytes ({type(frame).__name__})") from exc
    if not frame:
        raise SiParseError("L2 frame: empty, octet 1 (L2 pseudo length) missing")
    if len(frame) > BLOCK_OCTETS:
        raise SiParseError(f"L2 frame: {len(frame)} octets, a BCCH/CCCH block holds {BLOCK_OCTETS}")
    if frame[0] & 3 != 1:
        raise SiParseError(f"L2 frame: octet 1 (L2 pseudo length 0x{frame[0]:02x}) has bits 2..1 "
                           f"{frame[0] & 3:02b}, expected 01")
    pl = frame[0] >> 2
    if len(frame) < 2 or (pl == 0 and frame[1] == PADDING):
        return OtherMessage("empty", None, None, pl)
    pd, skip = frame[1] & 0xF, frame[1] >> 4
    if pd != PD_RR or skip != 0:
        return OtherMessage("unknown", pd, None, pl)
    if len(frame) < 3:
        raise SiParseError("RR message: octet 3 (message type) missing, the frame ends at octet 2")
    mt = frame[2]
    name = MESSAGE_TYPES.get(mt, "unknown")
    f = _Frame(frame, name if name != "unknown" else f"RR message type 0x{mt:02x}")
    if mt in _SI_PARSERS:
        return _SI_PARSERS[mt](f, pl)
    if mt in (0x21, 0x22, 0x24):
        return _parse_paging(f, pl, mt)
    if mt in (0x3F, 0x39, 0x3A):
        return ImmediateAssignment({0x3F: "assignment", 0x39: "assignment_extended",
                                    0x3A: "reject"}[mt], mt)
    return OtherMessage(name, pd, mt, pl)


# --------------------------------------------------------------------------------------------
# encoding

def _frame(msg_type: int, body: bytes, pseudo_length: int, rest: bytes, name: str) -> bytes:
    out = bytes([pseudo_length << 2 | 1, PD_RR, msg_type]) + body + rest
    if len(out) > BLOCK_OCTETS:
        raise SiEncodeError(f"{name}: {len(out)} octets exceed the {BLOCK_OCTETS}-octet block")
    return out + bytes([PADDING] * (BLOCK_OCTETS - len(out)))


def encode(msg: SiMessage) -> bytes:
    """Encode a System Information message as a 23-octet L2 frame.

    Parameters
    ----------
    msg : SiMessage
        SI1, SI2, SI2bis, SI2ter, SI2quater (index/count only), SI3, SI4 or SI13 (change mark
        only). ``pseudo_length`` of ``msg`` is ignored: the standard's value is written.

    Returns
    -------
    bytes
        23 octets: L2 pseudo length, RR header, IEs, rest octets, 0x2B padding.

    Raises
    ------
    SiEncodeError
        When a field is out of range or a frequency list cannot carry its ARFCNs.
    """
    name = getattr(msg, "si_type", type(msg).__name__)
    try:
        return _encode(msg, name)
    except FreqListError as exc:
        raise SiEncodeError(f"{name}: {exc}") from exc


def _nb(ncd: NeighbourCellDescription) -> bytes:
    return encode_neighbour_cell_description(ncd.arfcns, ncd.format, ext_ind=ncd.ext_ind,
                                             ba_ind=ncd.ba_ind)


def _encode(msg: SiMessage, name: str) -> bytes:
    if isinstance(msg, SystemInformation1):
        w = RestWriter(1, "SI1 Rest Octets")
        w.lh(msg.nch_position is not None)
        if msg.nch_position is not None:
            w.bits(check_int(msg.nch_position, 0, 31, "SI1 Rest Octets NCH Position"), 5)
        w.lh(bool(msg.band_pcs1900))
        body = encode_cell_channel_description(msg.cell_channels.arfcns, msg.cell_channels.format)
        return _frame(0x19, body + msg.rach.encode(), 21, w.octets(), name)
    if isinstance(msg, SystemInformation2):
        ncc = 0
        for n in msg.ncc_permitted:
            ncc |= 1 << check_int(n, 0, 7, "SI2 NCC Permitted")
        return _frame(0x1A, _nb(msg.neighbours) + bytes([ncc]) + msg.rach.encode(), 22, b"", name)
    if isinstance(msg, SystemInformation2bis):
        return _frame(0x02, _nb(msg.neighbours) + msg.rach.encode(), 21, b"", name)
    if isinstance(msg, SystemInformation2ter):
        n2 = msg.neighbours
        body = encode_neighbour_cell_description_2(n2.arfcns, n2.format,
                                                   multiband_reporting=n2.multiband_reporting,
                                                   ba_ind=n2.ba_ind)
        w = RestWriter(4, "SI2ter Rest Octets")
        present = msg.index is not None
        w.lh(present)
        if present:
            w.bits(check_int(msg.mp_change_mark or 0, 0, 1, "SI2ter MP_CHANGE_MARK"), 1)
            w.bits(check_int(msg.change_mark_3g or 0, 0, 1, "SI2ter 3G_CHANGE_MARK"), 1)
            w.bits(check_int(msg.index, 0, 7, "SI2ter INDEX"), 3)
            w.bits(check_int(msg.count or 0, 0, 7, "SI2ter COUNT"), 3)
            w.bits(0, 3)   # no UTRAN FDD, UTRAN TDD, 3G measurement parameters descriptions
        return _frame(0x03, body, 18, w.octets(), name)
    if isinstance(msg, SystemInformation2quater):
        w = RestWriter(20, "SI2quater Rest Octets")
        w.bits(check_int(msg.ba_ind, 0, 1, "SI2quater BA_IND"), 1)
        w.bits(check_int(msg.ba_ind_3g, 0, 1, "SI2quater 3G_BA_IND"), 1)
        w.bits(check_int(msg.mp_change_mark, 0, 1, "SI2quater MP_CHANGE_MARK"), 1)
        w.bits(check_int(msg.index, 0, 15, "SI2quater INDEX"), 4)
        w.bits(check_int(msg.count, 0, 15, "SI2quater COUNT"), 4)
        w.bits(0, 10)  # none of the ten optional descriptions that follow ('0' flags)
        return _frame(0x07, b"", 1, w.octets(), name)
    if isinstance(msg, SystemInformation3):
        ci = check_int(msg.cell_identity, 0, 0xFFFF, "SI3 Cell Identity")
        body = (bytes([ci >> 8, ci & 0xFF]) + msg.lai.encode() + msg.control_channel.encode()
                + msg.cell_options.encode() + msg.cell_selection.encode() + msg.rach.encode())
        return _frame(0x1B, body, 18, msg.rest.encode(4), name)
    if isinstance(msg, SystemInformation4):
        body = msg.lai.encode() + msg.cell_selection.encode() + msg.rach.encode()
        if msg.cbch_channel is not None:
            if len(msg.cbch_channel) != 3:
                raise SiEncodeError("SI4 CBCH Channel Description must be 3 octets")
            body += b"\x64" + bytes(msg.cbch_channel)
        if msg.cbch_mobile_allocation is not None:
            ma = bytes(msg.cbch_mobile_allocation)
            body += bytes([0x72, len(ma)]) + ma
        n_rest = BLOCK_OCTETS - 3 - len(body)
        if n_rest < 1:
            raise SiEncodeError("SI4: the CBCH IEs leave no room for the rest octets")
        return _frame(0x1C, body, 2 + len(body), msg.rest.encode(n_rest), name)
    if isinstance(msg, SystemInformation13):
        w = RestWriter(20, "SI13 Rest Octets")
        w.lh(True)
        w.bits(check_int(msg.bcch_change_mark or 0, 0, 7, "SI13 BCCH_CHANGE_MARK"), 3)
        w.bits(check_int(msg.si_change_field or 0, 0, 15, "SI13 SI_CHANGE_FIELD"), 4)
        _write_si13_minimal_tail(w)
        return _frame(0x00, b"", 0, w.octets(), name)
    raise SiEncodeError(f"encode: cannot encode a {type(msg).__name__}")


def _write_si13_minimal_tail(w: RestWriter) -> None:
    """The rest of a minimal SI13 rest octets: no GPRS MA, no PBCCH, default GPRS cell options."""
    w.bits(0, 1)           # no SI13_CHANGE_MARK / GPRS Mobile Allocation
    w.bits(0, 1)           # no PBCCH: RAC, SPGC_CCCH_SUP, PRIORITY_ACCESS_THR, NC, GPRS options
    w.bits(0, 8)           # RAC
    w.bits(0, 1)           # SPGC_CCCH_SUP
    w.bits(6, 3)           # PRIORITY_ACCESS_THR: packet access allowed for all priorities
    w.bits(0, 2)           # NETWORK_CONTROL_ORDER NC0
    # GPRS Cell Options (§12.24): NMO II, T3168, T3192, DRX_TIMER_MAX, ACCESS_BURST_TYPE,
    # CONTROL_ACK_TYPE, BS_CV_MAX, no PAN, no extension
    w.bits(1, 2)
    w.bits(4, 3)
    w.bits(0, 3)
    w.bits(7, 3)
    w.bits(0, 1)
    w.bits(1, 1)
    w.bits(15, 4)
    w.bits(0, 1)
    w.bits(0, 1)
    # GPRS Power Control Parameters: ALPHA, T_AVG_W, T_AVG_T, PC_MEAS_CHAN, N_AVG_I
    w.bits(0, 4)
    w.bits(15, 5)
    w.bits(5, 5)
    w.bits(0, 1)
    w.bits(4, 4)


def _rach(cell_barred: bool, rach: RachControl | None) -> RachControl:
    rach = rach or RachControl()
    if cell_barred != rach.cell_barred:
        rach = RachControl(rach.max_retrans_code, rach.tx_integer_code, bool(cell_barred), rach.re,
                           rach.access_class_barred)
    return rach


def encode_si3(*, mcc: str, mnc: str, lac: int, cid: int,
               control_channel: ControlChannelDescription | None = None,
               cell_options: CellOptions | None = None,
               cell_selection: CellSelectionParameters | None = None,
               rach: RachControl | None = None, cell_barred: bool = False,
               selection: SelectionParameters | None = None, ra_colour: int | None = None,
               si2ter_present: bool = False, si2quater_position: int | None = None) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 3 (23 octets).

    Parameters
    ----------
    mcc, mnc : str
        Three digits; two or three digits.
    lac, cid : int
        Location area code and cell identity, 0..65535.
    control_channel, cell_options, cell_selection, rach : optional
        IEs; defaults are a typical non-combined CCCH cell.
    cell_barred : bool
        CELL_BAR_ACCESS (overrides ``rach``'s).
    selection : SelectionParameters or None
        CBQ/CRO/TO/PT of the rest octets (None: absent).
    ra_colour : int or None
        GPRS Indicator (None: no GPRS); SI13 is then on BCCH Norm.
    si2ter_present : bool
        SI2ter Indicator.
    si2quater_position : int or None
        SI2quater Indicator.

    Returns
    -------
    bytes
    """
    return encode(SystemInformation3(
        cid, LocationAreaId(mcc, mnc, lac), control_channel or ControlChannelDescription(),
        cell_options or CellOptions(), cell_selection or CellSelectionParameters(),
        _rach(cell_barred, rach),
        Si3RestOctets(selection, None, si2ter_present, False, None, ra_colour,
                      None if ra_colour is None else 0, False, si2quater_position)))


def encode_si4(*, mcc: str, mnc: str, lac: int,
               cell_selection: CellSelectionParameters | None = None,
               rach: RachControl | None = None, cell_barred: bool = False,
               selection: SelectionParameters | None = None,
               ra_colour: int | None = None) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 4 (23 octets, no CBCH).

    Parameters
    ----------
    mcc, mnc : str
    lac : int
    cell_selection, rach : optional
    cell_barred : bool
    selection : SelectionParameters or None
    ra_colour : int or None

    Returns
    -------
    bytes
    """
    return encode(SystemInformation4(
        LocationAreaId(mcc, mnc, lac), cell_selection or CellSelectionParameters(),
        _rach(cell_barred, rach), None, None,
        Si4RestOctets(selection, None, ra_colour, None if ra_colour is None else 0)))


def encode_si1(cell_arfcns: Iterable[int], *, rach: RachControl | None = None,
               cell_barred: bool = False, fmt: str | None = None,
               band_pcs1900: bool = False) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 1 (23 octets) with the cell allocation.

    Parameters
    ----------
    cell_arfcns : iterable of int
        The cell's ARFCNs.
    rach : RachControl or None
    cell_barred : bool
    fmt : str or None
        Frequency list format (see :data:`dsp.gsm.freqlist.FORMATS`); None picks one.
    band_pcs1900 : bool

    Returns
    -------
    bytes
    """
    arfcns = tuple(sorted(set(cell_arfcns)))
    return encode(SystemInformation1(FrequencyList(fmt or _auto(arfcns), arfcns),
                                     _rach(cell_barred, rach), None, band_pcs1900))


def _auto(arfcns) -> str:
    try:
        return choose_format(arfcns)
    except FreqListError as exc:
        raise SiEncodeError(str(exc)) from exc


def encode_si2(neighbour_arfcns: Iterable[int], *, ext_ind: bool = False, ba_ind: int = 0,
               ncc_permitted: Iterable[int] = range(8), rach: RachControl | None = None,
               cell_barred: bool = False, fmt: str | None = None) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 2 (23 octets) with the neighbour BCCH ARFCNs.

    Parameters
    ----------
    neighbour_arfcns : iterable of int
    ext_ind : bool
        EXT-IND (more neighbours in SI2bis).
    ba_ind : int
    ncc_permitted : iterable of int
    rach : RachControl or None
    cell_barred : bool
    fmt : str or None

    Returns
    -------
    bytes
    """
    arfcns = tuple(sorted(set(neighbour_arfcns)))
    ncd = NeighbourCellDescription(fmt or _auto(arfcns), arfcns, bool(ext_ind), ba_ind)
    return encode(SystemInformation2(ncd, tuple(sorted(set(ncc_permitted))),
                                     _rach(cell_barred, rach)))


def encode_si2bis(neighbour_arfcns: Iterable[int], *, ext_ind: bool = False, ba_ind: int = 0,
                  rach: RachControl | None = None, cell_barred: bool = False,
                  fmt: str | None = None) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 2bis (23 octets).

    Returns
    -------
    bytes
    """
    arfcns = tuple(sorted(set(neighbour_arfcns)))
    ncd = NeighbourCellDescription(fmt or _auto(arfcns), arfcns, bool(ext_ind), ba_ind)
    return encode(SystemInformation2bis(ncd, _rach(cell_barred, rach)))


def encode_si2ter(neighbour_arfcns: Iterable[int], *, multiband_reporting: int = 0,
                  ba_ind: int = 0, fmt: str | None = None) -> bytes:
    """Encode SYSTEM INFORMATION TYPE 2ter (23 octets): neighbours in the other band.

    Returns
    -------
    bytes
    """
    arfcns = tuple(sorted(set(neighbour_arfcns)))
    ncd = NeighbourCellDescription2(fmt or _auto(arfcns), arfcns, multiband_reporting, ba_ind)
    return encode(SystemInformation2ter(ncd))


def encode_si13_minimal(*, bcch_change_mark: int = 0, si_change_field: int = 0) -> bytes:
    """Encode a minimal SYSTEM INFORMATION TYPE 13 (23 octets): GPRS on the CCCH, no PBCCH.

    Returns
    -------
    bytes
    """
    return encode(SystemInformation13(bcch_change_mark, si_change_field))
