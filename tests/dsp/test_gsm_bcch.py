"""The BCCH schedule: the right SI in the right block, decodable by the receive chain."""

import numpy as np
import pytest

from dsp.gsm.bcch import EMPTY_PAGING, TC_SCHEDULE, bcch_payload, block_of
from dsp.gsm.si import encode_si3, encode_si4, parse_l2_frame
from dsp.gsm.tx import downlink_burst_bits
from dsp.gsm.xcch import burst_data_bits, xcch_decode
from rfhunt.errors import DspError

SI3 = encode_si3(mcc="460", mnc="00", lac=9510, cid=20311)
SI4 = encode_si4(mcc="460", mnc="00", lac=9510)


def test_blocks_of_the_multiframe():
    block, k = block_of(np.arange(51))
    assert list(np.flatnonzero(k == 0)) == [2, 6, 12, 16, 22, 26, 32, 36, 42, 46]
    assert set(block[[0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50]]) == {-1}  # FCCH, SCH, idle
    assert np.all(np.bincount(block[block >= 0]) == 4)


@pytest.mark.parametrize("mf", range(8))
def test_tx_bursts_decode_to_the_scheduled_frames(mf):
    frames = {"SI3": SI3, "SI4": SI4}
    payload = bcch_payload(frames)
    fn0 = 51 * (1000 + mf)
    fn = fn0 + np.arange(51)
    bursts = downlink_burst_bits(fn, np.zeros(51, dtype=np.int64), bsic=21, payload=payload)
    block, k = block_of(fn)
    data = burst_data_bits(bursts[block >= 0]).reshape(10, 4, 114)
    dec = xcch_decode(1.0 - 2.0 * data)
    assert dec.ok.all() and (dec.n_bit_errors == 0).all()
    want = next(frames[n] for n in TC_SCHEDULE[mf] if n in frames)  # TC = mf here (1000 is a multiple of 8)
    assert bytes(dec.frames[0]) == want
    assert all(bytes(f) == EMPTY_PAGING for f in dec.frames[1:])
    assert parse_l2_frame(bytes(dec.frames[1])).to_dict()["type"].lower().startswith("paging")


def test_bad_schedules_are_refused():
    with pytest.raises(DspError, match="at least SI3"):
        bcch_payload({"SI4": SI4})
    with pytest.raises(DspError, match="23 bytes"):
        bcch_payload({"SI3": SI3[:20]})
