"""The collector's decoder fast path (issue 7): a detection is accepted by the fast checks
exactly when the full validation accepts it, and a bad one is still refused with a reason
naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfhunt.errors import WireError
from rfhunt.records import Detection, _valid_detection, _validate, decode, encode

BODY = {"sensor_id": "roof-1", "seq": 7, "t_utc": 1.79e9, "sensor_lat": 22.5, "sensor_lon": 114.05,
        "kind": "gsm_downlink", "freq_hz": 937.4e6, "channel": 12, "bandwidth_hz": 180e3, "power_dbm": -71.5,
        "snr_db": 30.2, "features": {"duty_cycle": 1.0, "note": "x", "flag": True, "n": None, "k": 3}}

#: Values a field may be replaced with: right and wrong types, edges and beyond.
ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([10**400, -(10**400), 2**63 - 1, 2**63]),
    st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1.0, 90.0, 90.000001, 1e11, 1e999, -1e999, 65535, 65536]),
    st.text(max_size=70), st.sampled_from(["gsm_downlink", "gsm_uplink", "fm", "tv", "a" * 64, "a" * 65, "\x00"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
FEATURE_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(), st.text(max_size=1030),
                           st.lists(st.integers(), max_size=1), st.dictionaries(st.text(max_size=2), st.none(),
                                                                                max_size=1))


def _message(body: dict) -> bytes:
    # json writes inf as Infinity: spell overflowing numbers as the literal a sensor could send
    text = json.dumps({"v": 1, "type": "detection", **body}).replace("-Infinity", "-1e999")
    return text.replace("Infinity", "1e999").replace("NaN", "1e999").encode()


def _full(body: dict) -> bool:
    try:
        _validate("detection", dict(body))
    except WireError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(sorted(BODY)), value=ODD, drop=st.booleans(), extra=st.booleans(),
       feats=st.dictionaries(st.text(max_size=70), FEATURE_VALUES, max_size=4))
def test_fast_path_accepts_exactly_what_validation_accepts(field, value, drop, extra, feats):
    body = json.loads(_message(BODY))
    del body["v"], body["type"]
    if drop:
        body.pop(field)
    else:
        body[field] = value
    if extra:
        body["features"] = feats if field != "features" else value
    body = json.loads(_message(body))  # as the wire gives it (1e999 -> inf, tuples -> lists)
    del body["v"], body["type"]
    ok = _full(body)
    fast = _valid_detection(dict(body))
    assert (fast is not None) == ok
    if ok:
        want = Detection(**body)
        assert fast == want and decode(_message(body)) == want
    else:
        with pytest.raises(WireError) as ei:
            decode(_message(body))
        assert ei.value.reason == "field"


def test_a_message_without_features_gets_the_default():
    body = {k: v for k, v in BODY.items() if k != "features"}
    got = decode(_message(body))
    assert got == Detection(**body) and got.features == {}


def test_overflowing_numbers_are_refused_naming_the_field():
    # a huge JSON integer used to reach math.isfinite and raise OverflowError, not WireError
    for field in ("t_utc", "power_dbm"):
        with pytest.raises(WireError, match=repr(field)) as ei:
            decode(_message({**BODY, field: 10**400}))
        assert ei.value.reason == "field" and ei.value.seq == 7
    with pytest.raises(WireError, match="'t_utc'"):
        decode(_message({**BODY, "t_utc": float("inf")}))


def test_an_unhashable_type_is_refused_with_its_reason():
    with pytest.raises(WireError, match="unknown message type") as ei:
        decode(json.dumps({"v": 1, "type": ["detection"], **BODY}).encode())
    assert ei.value.reason == "type" and ei.value.seq == 7


def test_round_trip_is_unchanged():
    d = Detection(**BODY)
    got = decode(encode(d))
    assert got == d and type(got) is Detection and got.features == BODY["features"]
