"""System Information parsing and encoding (TS 44.018): golden frames of live cells, round
trips, fuzzing, and Wireshark as an independent decoder."""

import json
import re
import shutil
import struct
import subprocess
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dsp.gsm.freqlist import (
    FORMATS,
    FrequencyList,
    NeighbourCellDescription,
    NeighbourCellDescription2,
)
from dsp.gsm.si import (
    BLOCK_OCTETS,
    PADDING,
    CellOptions,
    CellSelectionParameters,
    ControlChannelDescription,
    ImmediateAssignment,
    LocationAreaId,
    OtherMessage,
    PagingMessage,
    RachControl,
    SelectionParameters,
    Si3RestOctets,
    Si4RestOctets,
    SiEncodeError,
    SiMessage,
    SiParseError,
    SystemInformation1,
    SystemInformation2,
    SystemInformation2bis,
    SystemInformation2quater,
    SystemInformation2ter,
    SystemInformation3,
    SystemInformation4,
    SystemInformation13,
    encode,
    encode_si1,
    encode_si2,
    encode_si2bis,
    encode_si2ter,
    encode_si3,
    encode_si4,
    encode_si13_minimal,
    ms_txpwr_max_cch_dbm,
    parse_l2_frame,
)
from rfhunt.errors import DspError
from tests.shared_data import DATA_DIR, requires

VF725 = DATA_DIR / "gsm" / "vf725" / "expected_grgsm_bcch_ts0.txt"
VF725_CI = DATA_DIR / "gsm" / "vf725" / "grgsm_decode_test1_expected.txt"
THC = DATA_DIR / "gsm" / "thc2007" / "expected_grgsm_953.6MHz_128.txt"


def _frames(path):
    """(fn, frame) of each line ``FN A5-COUNT:  hex bytes`` of a gr-gsm output file."""
    out = []
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        head, payload = line.split(":", 1)
        out.append((int(head.split()[0]), bytes.fromhex(payload.replace(" ", ""))))
    return out


# -------------------------------------------------------------------------------------------
# golden: a live Vodafone DE cell

@requires(VF725)
def test_vodafone_cell_every_frame_parses_and_identity_agrees():
    frames = _frames(VF725)
    assert len(frames) == 293
    parsed = [parse_l2_frame(f) for _, f in frames]
    kinds = Counter(m.si_type if isinstance(m, SiMessage) else type(m).__name__ for m in parsed)
    for si in ("SI1", "SI2", "SI2ter", "SI2quater", "SI3", "SI4", "SI13"):
        assert kinds[si] > 0, si
    assert kinds["PagingMessage"] == 234 and kinds["ImmediateAssignment"] == 2
    assert kinds["OtherMessage"] == 24      # Notification/NCH
    assert {m.name for m in parsed if isinstance(m, OtherMessage)} == {"Notification/NCH"}

    si3 = {m for m in parsed if isinstance(m, SystemInformation3)}
    si4 = {m for m in parsed if isinstance(m, SystemInformation4)}
    assert len(si3) == 1 and len(si4) == 1       # the cell repeats the same SI3/SI4
    (si3,), (si4,) = si3, si4
    assert si3.lai == LocationAreaId("262", "02", 318)   # Vodafone GmbH, 2-digit MNC
    assert si3.cell_identity == 11225
    # same cell: SI3 and SI4 agree
    assert si4.lai == si3.lai
    assert si4.cell_selection == si3.cell_selection
    assert si4.rach == si3.rach
    assert si4.rest.selection == si3.rest.selection
    assert si4.rest.ra_colour == si3.rest.ra_colour

    cc = si3.control_channel
    assert (cc.att, cc.bs_ag_blks_res, cc.ccch_conf, cc.bs_cc_chans, cc.ccch_combined) == (True, 1, 0, 1, False)
    assert (cc.bs_pa_mfrms, cc.t3212_decihours, cc.t3212_s) == (9, 10, 3600)
    cs = si3.cell_selection
    assert (cs.cell_reselect_hysteresis_db, cs.ms_txpwr_max_cch, cs.rxlev_access_min_dbm) == (6, 0, -101)
    assert (cs.neci, cs.acs) == (False, False)
    assert (si3.cell_options.pwrc, si3.cell_options.dtx, si3.cell_options.radio_link_timeout_blocks) == (False, 1, 24)
    assert si3.rach.cell_barred is False
    sel = si3.rest.selection
    assert (sel.cbq, sel.cell_reselect_offset_db, sel.temporary_offset_db, sel.penalty_time_code) == (1, 80, 0, 31)
    assert sel.c2_subtracts_cro
    assert si3.rest.si2ter_present and si3.rest.si2quater_present and si3.rest.gprs

    (si1,) = {m for m in parsed if isinstance(m, SystemInformation1)}
    assert si1.cell_channels.arfcns == (725,)               # the BCCH carrier itself
    (si2,) = {m for m in parsed if isinstance(m, SystemInformation2)}
    assert si2.neighbours.arfcns == (730, 733, 734, 741, 746)
    assert si2.ncc_permitted == (3, 4, 5, 6)
    (si2ter,) = {m for m in parsed if isinstance(m, SystemInformation2ter)}
    assert si2ter.neighbours.arfcns == (4, 6, 8, 10, 12, 53, 61, 63, 65, 67, 69, 75)
    (si2q,) = {m for m in parsed if isinstance(m, SystemInformation2quater)}
    assert (si2q.index, si2q.count) == (0, 0)
    (si13,) = {m for m in parsed if isinstance(m, SystemInformation13)}
    assert si13.bcch_change_mark == 4

    paging = [m for m in parsed if isinstance(m, PagingMessage)]
    assert sum(m.n_identities for m in paging) > 0
    assert all(m.n_identities == m.n_tmsi + m.n_imsi for m in paging)
    for m in parsed:
        json.dumps(m.to_dict())


@requires(VF725)
def test_vodafone_frames_re_encode_byte_exact():
    for _, frame in _frames(VF725):
        m = parse_l2_frame(frame)
        if isinstance(m, (SystemInformation1, SystemInformation2, SystemInformation3,
                          SystemInformation4)):
            assert encode(m) == frame, m.si_type


@requires(VF725_CI)
def test_grgsm_ci_fixture_parses():
    parsed = [parse_l2_frame(f) for _, f in _frames(VF725_CI)]
    si3 = [m for m in parsed if isinstance(m, SystemInformation3)]
    assert si3 and all((m.lai.mcc, m.lai.mnc, m.lai.lac, m.cell_identity) == ("262", "02", 318, 11225)
                       for m in si3)


@requires(THC)
def test_thc2007_frames():
    parsed = [parse_l2_frame(f) for _, f in _frames(THC)]
    assert parsed[0] == OtherMessage("empty", None, None, 0)
    assert isinstance(parsed[1], PagingMessage) and parsed[1].n_identities == 0


# -------------------------------------------------------------------------------------------
# CCCH load indicators

@pytest.mark.parametrize("hexframe, ptype, n, n_tmsi", [
    ("15062100 01f08b" + "2b" * 16, 1, 0, 0),
    ("410621a005f4015cbf9c1705f4015bf93f8b2b2b2b2b2b", 1, 2, 2),
    ("490622a0015bf93f015cbf9c1705f4015cff76d12b2b2b", 2, 3, 3),
    ("250621200829262007324938288b2b2b2b2b2b2b2b2b2b", 1, 1, 0),   # an IMSI
])
def test_paging_counts(hexframe, ptype, n, n_tmsi):
    m = parse_l2_frame(bytes.fromhex(hexframe))
    assert (m.paging_type, m.n_identities, m.n_tmsi) == (ptype, n, n_tmsi)


def test_immediate_assignment_types():
    ia = parse_l2_frame(bytes.fromhex("2d063f004902d52654c701002b" + "2b" * 10))
    assert ia == ImmediateAssignment("assignment", 0x3F)
    rej = parse_l2_frame(bytes([0x4D, 0x06, 0x3A]) + bytes([PADDING] * 20))
    assert rej.kind == "reject"
    assert rej.to_dict()["type"] == "immediate_assignment"


# -------------------------------------------------------------------------------------------
# encoders

def test_encode_si3_frame_layout():
    frame = encode_si3(mcc="001", mnc="001", lac=0x1234, cid=0xBEEF,
                       selection=SelectionParameters(0, 20, 3, 4))
    assert len(frame) == BLOCK_OCTETS
    assert frame[0] == (18 << 2) | 1 and frame[1:3] == b"\x06\x1b"
    m = parse_l2_frame(frame)
    assert (m.lai.mcc, m.lai.mnc, m.lai.lac, m.cell_identity) == ("001", "001", 0x1234, 0xBEEF)
    assert m.rest.selection.cell_reselect_offset_db == 40
    assert m.rest.selection.penalty_time_s == 100 and m.rest.selection.temporary_offset_db == 30


def test_mnc_digit_count_is_kept():
    for mnc in ("01", "001", "260"):
        assert parse_l2_frame(encode_si4(mcc="460", mnc=mnc, lac=1)).lai.mnc == mnc


def test_padding_is_0x2b():
    frame = encode_si2(neighbour_arfcns=[1, 2, 3])
    assert frame[0] == (22 << 2) | 1
    frame = encode_si4(mcc="262", mnc="02", lac=318)
    assert frame[0] == (12 << 2) | 1 and frame[-6:] == bytes([PADDING] * 6)
    assert encode_si4(mcc="262", mnc="02", lac=318, selection=None)[13:] == bytes([PADDING] * 10)
    si13 = encode_si13_minimal(bcch_change_mark=2)
    assert si13[0] == 1 and parse_l2_frame(si13).bcch_change_mark == 2


def test_encoder_errors():
    with pytest.raises(SiEncodeError, match="MCC must be 3 digits"):
        encode_si3(mcc="26", mnc="02", lac=1, cid=1)
    with pytest.raises(SiEncodeError, match="LAC"):
        encode_si3(mcc="262", mnc="02", lac=70000, cid=1)
    with pytest.raises(SiEncodeError, match="CELL_RESELECT_OFFSET"):
        encode_si3(mcc="262", mnc="02", lac=1, cid=1, selection=SelectionParameters(0, 64, 0, 0))
    with pytest.raises(SiEncodeError, match="SI2: .*cannot carry|no format carries"):
        encode_si2(range(0, 1024, 9))
    assert issubclass(SiEncodeError, DspError)


def test_ms_txpwr_max_cch_dbm():
    assert ms_txpwr_max_cch_dbm(5, "gsm900") == 33
    assert ms_txpwr_max_cch_dbm(0, "dcs1800") == 30
    assert ms_txpwr_max_cch_dbm(29, "dcs1800") == 36


lais = st.builds(LocationAreaId, st.text("0123456789", min_size=3, max_size=3),
                 st.text("0123456789", min_size=2, max_size=3), st.integers(0, 0xFFFF))
raches = st.builds(RachControl, st.integers(0, 3), st.integers(0, 15), st.booleans(), st.booleans(),
                   st.sets(st.integers(0, 15)).map(lambda s: tuple(sorted(s))))
csps = st.builds(CellSelectionParameters, st.integers(0, 7), st.integers(0, 31), st.booleans(),
                 st.booleans(), st.integers(0, 63))
sels = st.none() | st.builds(SelectionParameters, st.integers(0, 1), st.integers(0, 63),
                             st.integers(0, 7), st.integers(0, 31))
opt = lambda s: st.none() | s
gprs = st.one_of(st.tuples(st.none(), st.none()), st.tuples(st.integers(0, 7), st.integers(0, 1)))


@st.composite
def arfcn_lists(draw):
    fmt = draw(st.sampled_from(FORMATS))
    if fmt == "bitmap0":
        s = draw(st.sets(st.integers(1, 124), max_size=124))
    elif fmt == "range1024":
        s = draw(st.sets(st.integers(0, 1023), max_size=16))
    else:
        span = {"range512": 511, "range256": 255, "range128": 127, "variable_bitmap": 111}[fmt]
        o = draw(st.integers(0, 1023))
        cap = {"range512": 17, "range256": 21, "range128": 28, "variable_bitmap": 111}[fmt]
        s = {o} | {(o + k) % 1024 for k in draw(st.sets(st.integers(1, span), max_size=cap))}
    return fmt, tuple(sorted(s))


@st.composite
def si3s(draw):
    ra, pos = draw(gprs)
    rest = Si3RestOctets(draw(sels), draw(opt(st.integers(0, 3))), draw(st.booleans()),
                         draw(st.booleans()), draw(opt(st.integers(0, 7))), ra, pos,
                         draw(st.booleans()), draw(opt(st.integers(0, 1))))
    cc = ControlChannelDescription(*[draw(st.integers(0, hi)) for hi in (1, 1, 7, 7, 3, 7, 255)])
    cc = ControlChannelDescription(cc.mscr, bool(cc.att), *[getattr(cc, f) for f in (
        "bs_ag_blks_res", "ccch_conf", "cbq3", "bs_pa_mfrms_code", "t3212_decihours")])
    co = CellOptions(draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 3)), draw(st.integers(0, 15)))
    return SystemInformation3(draw(st.integers(0, 0xFFFF)), draw(lais), cc, co, draw(csps), draw(raches), rest)


@st.composite
def si4s(draw):
    ra, pos = draw(gprs)
    cbch = draw(st.booleans())
    return SystemInformation4(draw(lais), draw(csps), draw(raches),
                              draw(st.binary(min_size=3, max_size=3)) if cbch else None, None,
                              Si4RestOctets(draw(sels), draw(opt(st.integers(0, 3))), ra, pos))


@st.composite
def si12s(draw):
    fmt, arfcns = draw(arfcn_lists())
    kind = draw(st.sampled_from(["SI1", "SI2", "SI2bis", "SI2ter"]))
    if kind == "SI1":
        return SystemInformation1(FrequencyList(fmt, arfcns), draw(raches),
                                  draw(opt(st.integers(0, 31))), draw(st.booleans()))
    if kind == "SI2ter":
        idx = draw(opt(st.integers(0, 7)))
        marks = (None, None, None) if idx is None else (draw(st.integers(0, 1)), draw(st.integers(0, 1)),
                                                        draw(st.integers(0, 7)))
        return SystemInformation2ter(NeighbourCellDescription2(fmt, arfcns, draw(st.integers(0, 3)),
                                                               draw(st.integers(0, 1))),
                                     marks[0], marks[1], idx, marks[2])
    ncd = NeighbourCellDescription(fmt, arfcns, draw(st.booleans()), draw(st.integers(0, 1)))
    if kind == "SI2":
        return SystemInformation2(ncd, tuple(sorted(draw(st.sets(st.integers(0, 7))))), draw(raches))
    return SystemInformation2bis(ncd, draw(raches))


others = st.one_of(
    st.builds(SystemInformation2quater, st.integers(0, 1), st.integers(0, 1), st.integers(0, 1),
              st.integers(0, 15), st.integers(0, 15)),
    st.builds(SystemInformation13, st.integers(0, 7), st.integers(0, 15)))


@settings(max_examples=400, deadline=None)
@given(st.one_of(si3s(), si4s(), si12s(), others))
def test_encode_parse_round_trip(msg):
    try:
        frame = encode(msg)
    except SiEncodeError as exc:   # SI3 rest octets hold 32 bits, not every optional field at once
        assert "rest octets overflow" in str(exc)
        assume(False)
    assert len(frame) == BLOCK_OCTETS and frame[0] & 3 == 1 and frame[1] == 0x06
    back = parse_l2_frame(frame)
    assert back == msg
    assert back.pseudo_length == frame[0] >> 2
    json.dumps(back.to_dict())


def test_convenience_encoders_round_trip():
    assert parse_l2_frame(encode_si1([1, 5, 60])).cell_channels.arfcns == (1, 5, 60)
    si2 = parse_l2_frame(encode_si2([512, 600, 885], ext_ind=True, ba_ind=1))
    assert (si2.neighbours.arfcns, si2.neighbours.ext_ind, si2.neighbours.ba_ind) == ((512, 600, 885), True, 1)
    assert parse_l2_frame(encode_si2bis([0, 1023])).neighbours.arfcns == (0, 1023)
    assert parse_l2_frame(encode_si2ter([1, 975, 1000], multiband_reporting=2)).neighbours.multiband_reporting == 2
    si3 = parse_l2_frame(encode_si3(mcc="262", mnc="02", lac=1, cid=2, cell_barred=True, ra_colour=3))
    assert si3.rach.cell_barred and si3.rest.ra_colour == 3


# -------------------------------------------------------------------------------------------
# malformed frames: SiParseError, never IndexError

def test_errors_name_message_field_and_octet():
    si3 = encode_si3(mcc="262", mnc="02", lac=1, cid=2)
    with pytest.raises(SiParseError, match=r"SI3: Control Channel Description needs octets 11-13"):
        parse_l2_frame(si3[:11])
    with pytest.raises(SiParseError, match=r"SI3: Location Area Identification MCC in octets 6-7"):
        parse_l2_frame(si3[:5] + b"\xfa" + si3[6:])
    with pytest.raises(SiParseError, match="24 octets"):
        parse_l2_frame(si3 + b"\x2b")
    with pytest.raises(SiParseError, match="octet 1"):
        parse_l2_frame(b"\x4a" + si3[1:])
    with pytest.raises(SiParseError, match="empty"):
        parse_l2_frame(b"")
    with pytest.raises(SiParseError, match=r"SI2: Neighbour Cell Description \(octets 4-19\).*reserved"):
        parse_l2_frame(bytes([0x59, 0x06, 0x1A, 0x40]) + bytes(19))
    assert issubclass(SiParseError, DspError)


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=23, max_size=23))
def test_fuzz_random_frames(frame):
    try:
        m = parse_l2_frame(frame)
    except SiParseError:
        return
    json.dumps(m.to_dict())


_TYPES = [0x19, 0x1A, 0x02, 0x03, 0x07, 0x1B, 0x1C, 0x00, 0x21, 0x22, 0x24, 0x3F, 0x3A, 0x20, 0x55]


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 63), st.sampled_from(_TYPES), st.binary(max_size=20), st.integers(3, 23))
def test_fuzz_rr_frames_any_length(pl, mt, tail, length):
    frame = (bytes([pl << 2 | 1, 0x06, mt]) + tail + bytes([PADDING] * 20))[:length]
    try:
        m = parse_l2_frame(frame)
    except SiParseError as exc:
        assert "octet" in str(exc)
        return
    json.dumps(m.to_dict())


# -------------------------------------------------------------------------------------------
# Wireshark as an independent decoder

def _gsmtap_pcap(frames, path):
    """A pcap of GSMTAP v2 (Um, BCCH) UDP packets, one per frame."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        gsmtap = struct.pack(">BBBBHbbIBBBB", 2, 4, 1, 0, 725, -60, 20, i, 1, 0, 0, 0) + frame
        udp = struct.pack(">HHHH", 4729, 4729, 8 + len(gsmtap), 0) + gsmtap
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        eth = bytes(12) + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", i, 0, len(eth), len(eth)) + eth)
    path.write_bytes(b"".join(out))


def _tshark_packets(frames, tmp_path):
    _gsmtap_pcap(frames, tmp_path / "si.pcap")
    text = subprocess.run(["tshark", "-r", str(tmp_path / "si.pcap"), "-V"], capture_output=True,
                          text=True, timeout=120, check=True).stdout
    packets = re.split(r"^Frame \d+:", text, flags=re.MULTILINE)[1:]
    assert len(packets) == len(frames)
    return packets


def _field(packet, pattern):
    found = re.search(pattern, packet)
    return found.group(1) if found else None


def _ws_arfcns(packet):
    text = _field(packet, r"List of ARFCNs = ([\d ]*)")
    return None if text is None else tuple(sorted(int(a) for a in text.split()))


_NO_TSHARK = shutil.which("tshark") is None


@pytest.mark.external
@pytest.mark.skipif(_NO_TSHARK, reason="tshark not installed (Debian package 'tshark'); "
                    "Wireshark is the independent SI decoder of this test")
@requires(VF725)
def test_wireshark_agrees_on_every_distinct_si_frame(tmp_path):
    frames = []
    for _, frame in _frames(VF725) + _frames(VF725_CI):
        if isinstance(parse_l2_frame(frame), SiMessage) and frame not in frames:
            frames.append(frame)
    packets = _tshark_packets(frames, tmp_path)
    checked = Counter()
    for frame, pkt in zip(frames, packets):
        m = parse_l2_frame(frame)
        assert f"System Information Type {m.si_type[2:]}" in pkt
        checked[m.si_type] += 1
        if isinstance(m, (SystemInformation3, SystemInformation4)):
            assert _field(pkt, r"Mobile Country Code \(MCC\):.*\((\d+)\)") == m.lai.mcc
            assert _field(pkt, r"Mobile Network Code \(MNC\):.*\((\d+)\)") == m.lai.mnc
            assert int(_field(pkt, r"Location Area Code \(LAC\): 0x[0-9a-f]+ \((\d+)\)")) == m.lai.lac
            cs = m.cell_selection
            assert int(_field(pkt, r"RXLEV-ACCESS-MIN: .*\((\d+)\)")) == cs.rxlev_access_min
            assert f"{cs.rxlev_access_min_dbm - 1} <= x < {cs.rxlev_access_min_dbm} dBm" in pkt
            assert int(_field(pkt, r"MS TXPWR MAX CCH: (\d+)")) == cs.ms_txpwr_max_cch
            assert int(_field(pkt, r"Cell Reselection Hysteresis: (\d+)")) == cs.cell_reselect_hysteresis_code
            assert int(_field(pkt, r"CELL_BARR_ACCESS: .*\((\d)\)")) == m.rach.cell_barred
            sel = m.rest.selection
            assert int(_field(pkt, r"Cell Reselect Offset: (\d+) dB")) == sel.cell_reselect_offset_db
            assert int(_field(pkt, r"Temporary Offset: (\d+) dB")) == sel.temporary_offset_db
            assert int(_field(pkt, r"Penalty Time: .*\((\d+)\)")) == sel.penalty_time_code
            assert int(_field(pkt, r"CBQ: (\d)")) == sel.cbq
            assert int(_field(pkt, r"GPRS RA Colour: (\d)")) == m.rest.ra_colour
        if isinstance(m, SystemInformation3):
            assert int(_field(pkt, r"Cell CI: 0x[0-9a-f]+ \((\d+)\)")) == m.cell_identity
            assert int(_field(pkt, r"T3212: (\d+)")) == m.control_channel.t3212_decihours
            assert int(_field(pkt, r"BS_AG_BLKS_RES: (\d)")) == m.control_channel.bs_ag_blks_res
            assert int(_field(pkt, r"CCCH-CONF: .*\((\d)\)")) == m.control_channel.ccch_conf
            assert int(_field(pkt, r"Radio Link Timeout: (\d+)")) == m.cell_options.radio_link_timeout_blocks
        if isinstance(m, SystemInformation1):
            assert _ws_arfcns(pkt) == m.cell_channels.arfcns
        if isinstance(m, (SystemInformation2, SystemInformation2bis, SystemInformation2ter)):
            assert _ws_arfcns(pkt) == m.neighbours.arfcns
        if isinstance(m, SystemInformation13):
            assert int(_field(pkt, r"BCCH Change Mark: (\d)")) == m.bcch_change_mark
    assert set(checked) >= {"SI1", "SI2", "SI2ter", "SI2quater", "SI3", "SI4", "SI13"}


@pytest.mark.external
@pytest.mark.skipif(_NO_TSHARK, reason="tshark not installed (Debian package 'tshark'); "
                    "Wireshark is the independent SI decoder of this test")
def test_wireshark_reads_our_encoder_in_every_frequency_list_format(tmp_path):
    """Wireshark's own Annex J decoder reads back what we encode (short lists only: tshark
    truncates long text labels)."""
    import random
    rnd = random.Random(7)
    cases = []
    for fmt in FORMATS:
        for n in (1, 2, 3, 5, 9, 16):
            if fmt == "bitmap0":
                s = rnd.sample(range(1, 125), n)
            elif fmt == "range1024":
                s = rnd.sample(range(1, 1024), n) + ([0] if n % 2 else [])
            else:
                span = {"range512": 511, "range256": 255, "range128": 127, "variable_bitmap": 111}[fmt]
                o = rnd.randrange(1024)
                s = [o] + [(o + k) % 1024 for k in rnd.sample(range(1, span + 1), n)]
            cases.append((fmt, tuple(sorted(set(s)))))
    frames = []
    for fmt, s in cases:
        frames += [encode_si1(s, fmt=fmt), encode_si2(s, fmt=fmt), encode_si2ter(s, fmt=fmt)]
    frames.append(encode_si3(mcc="001", mnc="001", lac=4660, cid=48879,
                             selection=SelectionParameters(0, 31, 2, 5), ra_colour=5))
    frames.append(encode_si4(mcc="460", mnc="00", lac=7, selection=SelectionParameters(1, 63, 7, 0)))
    packets = _tshark_packets(frames, tmp_path)
    for k, (fmt, s) in enumerate(cases):
        for pkt in packets[3 * k:3 * k + 3]:
            assert _ws_arfcns(pkt) == s, (fmt, s)
    si3, si4 = packets[-2:]
    assert _field(si3, r"Mobile Network Code \(MNC\):.*\((\d+)\)") == "001"
    assert int(_field(si3, r"Cell CI: 0x[0-9a-f]+ \((\d+)\)")) == 48879
    assert int(_field(si3, r"Cell Reselect Offset: (\d+) dB")) == 62
    assert int(_field(si3, r"Temporary Offset: (\d+) dB")) == 20
    assert int(_field(si3, r"GPRS RA Colour: (\d)")) == 5
    assert _field(si4, r"Mobile Country Code \(MCC\):.*\((\d+)\)") == "460"
    assert _field(si4, r"Mobile Network Code \(MNC\):.*\((\d+)\)") == "00"
    assert int(_field(si4, r"Cell Reselect Offset: (\d+) dB")) == 126
    assert "SYSTEM INFORMATION TYPE 2ter: Not available" in si3
