"""GSM downlink receiver front end: wideband IQ -> soft bits of every BCCH carrier's timeslot 0.

Stages (each vectorized over channels and bursts): :func:`channelize` (FFT filter bank, any
input rate), :func:`detect_fcch` (FCCH bursts and carrier offset), :func:`find_sch` /
:func:`fit_timing` (SCH timing and the TDMA grid), :func:`demodulate_bursts` (training-sequence
channel estimate and max-log MLSE), glued by :func:`receive_bcch`.
"""

from dsp.gsm.rx.channelizer import Channelized, channelize
from dsp.gsm.rx.equalizer import (
    TRAINING_DUMMY,
    TRAINING_SCH,
    DemodulatedBursts,
    demodulate_bursts,
    mlse_soft,
)
from dsp.gsm.rx.fcch import FcchBursts, FcchResult, detect_fcch, fcch_offset_at
from dsp.gsm.rx.receiver import (
    KIND_NORMAL,
    KIND_SCH,
    ChannelResult,
    Ts0Bursts,
    receive_bcch,
)
from dsp.gsm.rx.sync import SchBursts, TdmaTiming, find_sch, fit_timing

__all__ = [
    "KIND_NORMAL",
    "KIND_SCH",
    "TRAINING_DUMMY",
    "TRAINING_SCH",
    "ChannelResult",
    "Channelized",
    "DemodulatedBursts",
    "FcchBursts",
    "FcchResult",
    "SchBursts",
    "TdmaTiming",
    "Ts0Bursts",
    "channelize",
    "demodulate_bursts",
    "detect_fcch",
    "fcch_offset_at",
    "find_sch",
    "fit_timing",
    "mlse_soft",
    "receive_bcch",
]
