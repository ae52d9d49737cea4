"""FM broadcast, both ways.

Transmit (the simulator's stations): the stereo multiplex with pilot and RDS, frequency
modulated (:mod:`dsp.fm.tx`, :mod:`dsp.fm.rds`).

Receive (the black-radio monitor): every station of a capture channelized at once
(:mod:`dsp.fm.demod`), its multiplex measured (:mod:`dsp.fm.mpx`), its RDS demodulated
(:mod:`dsp.fm.rds_demod`) and decoded (:mod:`dsp.fm.rds_decode`); :mod:`dsp.fm.station` ties
them together.
"""

from dsp.fm.rds import RdsConfig, rds_syndrome
from dsp.fm.rds_decode import RdsResult, decode_rds
from dsp.fm.station import FmStationFeatures, analyze_stations, detect_stations, scan_capture
from dsp.fm.tx import fm_broadcast_iq, fm_mpx

__all__ = ["RdsConfig", "rds_syndrome", "fm_broadcast_iq", "fm_mpx", "RdsResult", "decode_rds",
           "FmStationFeatures", "analyze_stations", "detect_stations", "scan_capture"]
