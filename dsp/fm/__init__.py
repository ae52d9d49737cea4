"""FM broadcast transmit side: the stereo multiplex with pilot and RDS, frequency-modulated."""

from dsp.fm.rds import RdsConfig, rds_syndrome
from dsp.fm.tx import fm_broadcast_iq, fm_mpx

__all__ = ["RdsConfig", "rds_syndrome", "fm_broadcast_iq", "fm_mpx"]
