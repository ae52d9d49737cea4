"""GSM transmit side: constants, SCH channel coding, bursts, GMSK and carrier waveforms.

The waveform entry points are :func:`~dsp.gsm.tx.gsm_downlink_iq` (a BCCH carrier) and
:func:`~dsp.gsm.tx.gsm_uplink_iq` (one mobile's bursts); both are pure functions of the time
since the cell's TDMA epoch.
"""

from dsp.gsm.bursts import access_bursts, dummy_bursts, fcch_bursts, normal_bursts, sch_bursts
from dsp.gsm.gmsk import gmsk_modulate, gsm_diff_encode
from dsp.gsm.tx import downlink_burst_bits, gsm_downlink_iq, gsm_uplink_iq

__all__ = [
    "access_bursts", "dummy_bursts", "fcch_bursts", "normal_bursts", "sch_bursts",
    "gmsk_modulate", "gsm_diff_encode", "downlink_burst_bits", "gsm_downlink_iq", "gsm_uplink_iq",
]
