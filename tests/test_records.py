"""Wire records: round trips, and every kind of malformed message rejected with a reason."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfhunt.errors import RfhuntError, WireError
from rfhunt.records import MAX_MESSAGE_BYTES, Detection, Heartbeat, decode, encode


def det(**kw):
    base = dict(sensor_id="roof-1", seq=7, t_utc=1.79e9, sensor_lat=22.5, sensor_lon=114.05,
                kind="gsm_downlink", freq_hz=937.4e6, channel=12, bandwidth_hz=180e3,
                power_dbm=-71.5, snr_db=30.2, features={"duty_cycle": 1.0, "note": "x", "flag": True, "n": None})
    base.update(kw)
    return Detection(**base)


def test_round_trip_detection_and_heartbeat():
    d = det()
    assert decode(encode(d)) == d
    hb = Heartbeat("car-1", 1, 1.79e9, 22.5, 114.0, True, "ok", 10, 0, 3)
    assert decode(encode(hb)) == hb


@settings(max_examples=200, deadline=None)
@given(power=st.floats(-200, 50), snr=st.floats(-50, 200), lat=st.floats(-90, 90), lon=st.floats(-180, 180),
       seq=st.integers(0, 2**40), chan=st.one_of(st.none(), st.integers(0, 1023)),
       feats=st.dictionaries(st.text(min_size=1, max_size=20).filter(str.isprintable), st.one_of(
           st.none(), st.booleans(), st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False),
           st.text(max_size=50).filter(str.isprintable)), max_size=10))
def test_round_trip_property(power, snr, lat, lon, seq, chan, feats):
    d = det(power_dbm=power, snr_db=snr, sensor_lat=lat, sensor_lon=lon, seq=seq, channel=chan, features=feats)
    assert decode(encode(d)) == d


def _msg(**changes):
    body = {"v": 1, "type": "detection", **det().__dict__}
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize("data, words", [
    (b"\xff\xfe", "not UTF-8 JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{", "not UTF-8 JSON"),
    (_msg(v=2), "unsupported wire version 2"),
    (_msg(type="spam"), "unknown message type 'spam'"),
    (_msg(extra=1), "unknown field(s) 'extra'"),
    (_msg(sensor_lat=91.0), "'sensor_lat'"),
    (_msg(power_dbm="loud"), "'power_dbm'"),
    (_msg(seq=-1), "'seq'"),
    (_msg(seq=True), "'seq'"),
    (_msg(kind="tv"), "'kind'"),
    (_msg(sensor_id=""), "'sensor_id'"),
    (_msg(sensor_id="<img src=x onerror=alert(1)>"), "'sensor_id'"),
    (_msg(features={"a": "x\u0000y"}), "feature 'a' must be printable"),
    (_msg(features={"a": "\ud800"}), "feature 'a' must be printable"),
    (_msg(features={"a": [1]}), "feature 'a'"),
    (_msg(features=[1]), "'features'"),
    (_msg(channel=1.5), "'channel'"),
    (_msg().replace(b"-71.5", b"NaN"), "non-finite"),
    (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "over the"),
])
def test_malformed_messages_are_rejected_with_a_reason(data, words):
    with pytest.raises(WireError) as ei:
        decode(data)
    assert words in str(ei.value)
    assert isinstance(ei.value, RfhuntError)


def test_missing_field_is_named():
    body = json.loads(_msg())
    del body["freq_hz"]
    with pytest.raises(WireError, match="lacks field.*'freq_hz'"):
        decode(json.dumps(body).encode())


def test_encode_refuses_invalid_record():
    with pytest.raises(WireError, match="sensor_lon"):
        encode(det(sensor_lon=500.0))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_decoder(data):
    try:
        decode(data)
    except WireError:
        pass


def test_heartbeat_text_must_be_printable_and_encodable():
    hb = Heartbeat("car-1", 3, 1.79e9, 22.5, 114.0, True, "ok", 10, 0, 3)
    for bad in ("ok\x00", "\ud800", "a\nb"):
        body = {"v": 1, "type": "heartbeat", **hb.__dict__, "source_state": bad}
        with pytest.raises(WireError, match="source_state") as ei:
            decode(json.dumps(body).encode())
        assert ei.value.reason == "field" and ei.value.seq == 3


@pytest.mark.parametrize("data, reason, seq", [
    (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "oversize", None),
    (b"\xff", "not_json", None),
    (b"[]", "not_object", None),
    (_msg(v=9), "version", 7),
    (_msg(type="x"), "type", 7),
    (_msg(power_dbm=None), "field", 7),
])
def test_wire_errors_carry_a_reason_class_and_the_seq(data, reason, seq):
    with pytest.raises(WireError) as ei:
        decode(data)
    assert (ei.value.reason, ei.value.seq) == (reason, seq)


def test_heartbeat_outbox_depth_is_optional_and_checked():
    hb = Heartbeat("car-1", 4, 1.79e9, 22.5, 114.0, True, "ok", 10, 0, 3, outbox_depth=1234)
    assert decode(encode(hb)) == hb
    plain = Heartbeat("car-1", 4, 1.79e9, 22.5, 114.0, True, "ok", 10, 0, 3)
    assert b"outbox_depth" not in encode(plain)  # left out: older collectors accept the message
    assert decode(encode(plain)).outbox_depth is None
    body = json.loads(encode(hb))
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(WireError, match="outbox_depth"):
            decode(json.dumps({**body, "outbox_depth": bad}).encode())
