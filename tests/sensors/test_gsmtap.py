"""GSMTAP: header round trip, a real UDP socket, and Wireshark's dissector as the judge."""

import shutil
import socket
import struct
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfhunt.errors import ConfigError, WireError
from sensors.gsmtap import CHANNEL_TYPES, GsmtapFrame, GsmtapSender, decode_gsmtap, encode_gsmtap

# A real SI3 of the Vodafone DE cell (ARFCN 725): FN 860984 of
# shared/data/gsm/vf725/expected_grgsm_bcch_ts0.txt, as gr-gsm decoded it from the air
SI3 = bytes.fromhex("49061b2bd962f220013ec8070a156009b90000e81f461b")


def test_header_layout():
    d = encode_gsmtap(GsmtapFrame(arfcn=725, timeslot=0, fn=860902, channel="BCCH", payload=SI3,
                                  signal_dbm=-61.4, snr_db=22.6))
    assert len(d) == 16 + 23
    assert d[:4] == bytes([2, 4, 1, 0])
    assert struct.unpack("!H", d[4:6])[0] == 725
    assert struct.unpack("!bb", d[6:8]) == (-61, 23)
    assert struct.unpack("!I", d[8:12])[0] == 860902
    assert d[12] == CHANNEL_TYPES["BCCH"] == 1


@given(arfcn=st.integers(0, 0x3FFF), ts=st.integers(0, 7), fn=st.integers(0, 2048 * 26 * 51 - 1),
       ch=st.sampled_from(sorted(CHANNEL_TYPES)), payload=st.binary(max_size=64),
       sig=st.integers(-128, 127), snr=st.integers(-128, 127), up=st.booleans(), pcs=st.booleans())
def test_round_trip(arfcn, ts, fn, ch, payload, sig, snr, up, pcs):
    f = GsmtapFrame(arfcn, ts, fn, ch, payload, sig, snr, up, pcs)
    assert decode_gsmtap(encode_gsmtap(f)) == f


@pytest.mark.parametrize("frame, words", [
    (GsmtapFrame(0x4000, 0, 0, "BCCH", b""), "14 bits"),
    (GsmtapFrame(1, 8, 0, "BCCH", b""), "timeslot 8"),
    (GsmtapFrame(1, 0, 2048 * 26 * 51, "BCCH", b""), "hyperframe"),
    (GsmtapFrame(1, 0, 0, "TCH", b""), "unknown channel type 'TCH'"),
])
def test_bad_frames_are_named(frame, words):
    with pytest.raises(WireError, match=words):
        encode_gsmtap(frame)


def test_bad_datagrams_and_destinations():
    with pytest.raises(WireError, match="shorter than"):
        decode_gsmtap(b"\x02\x04")
    with pytest.raises(WireError, match="version 3"):
        decode_gsmtap(bytes([3, 4, 1, 0]) + bytes(12))
    with pytest.raises(ConfigError, match="HOST:PORT"):
        GsmtapSender("127.0.0.1:http")


def test_sent_over_a_real_udp_socket():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    with GsmtapSender(f"127.0.0.1:{rx.getsockname()[1]}") as tx:
        tx.send(GsmtapFrame(725, 0, 860902, "BCCH", SI3))
    got = decode_gsmtap(rx.recv(2048))
    rx.close()
    assert (got.arfcn, got.fn, got.channel, got.payload) == (725, 860902, "BCCH", SI3)


def _pcap(datagrams: list[bytes], port: int = 4729) -> bytes:
    """A pcap of raw IPv4/UDP packets (linktype 101) carrying the datagrams."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for i, d in enumerate(datagrams):
        udp = struct.pack("!HHHH", 40000, port, 8 + len(d), 0) + d
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
        csum = sum(struct.unpack("!10H", ip))
        csum = (csum & 0xFFFF) + (csum >> 16)
        ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
        pkt = ip + udp
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(pkt), len(pkt)) + pkt)
    return b"".join(out)


@pytest.mark.external
@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs Wireshark's tshark (apt-get install tshark)")
def test_wireshark_dissects_our_gsmtap(tmp_path):
    p = tmp_path / "si3.pcap"
    p.write_bytes(_pcap([encode_gsmtap(GsmtapFrame(725, 0, 860902, "BCCH", SI3, -61, 23, pcs=False))]))
    r = subprocess.run(["tshark", "-r", str(p), "-V", "-o", "gui.column.format:\"Info\",\"%i\""],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout
    assert "GSM TAP Header" in out, r.stderr[-500:]
    assert "ARFCN: 725" in out and "GSM Frame Number: 860902" in out
    assert "System Information Type 3" in out
    assert "Mobile Country Code (MCC): Germany (262)" in out
    assert "Cell CI: 0x2bd9" in out
