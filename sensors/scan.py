"""Sweeping bands with an IQ source and turning captures into carrier measurements."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dsp.bands import Band, band as band_by_name
from dsp.plan import Hop, plan_hops
from dsp.spectrum import channel_powers, detect_carriers
from sensors.config import ScanSpec
from sensors.sources.base import IQBlock, IQSource

#: Raster spacing inside which only the strongest FM raster point is a station.
FM_SEPARATION_HZ = 250e3


@dataclass(frozen=True)
class CarrierMeasurement:
    """One carrier found in one capture (before the sensor stamps it with id and position)."""

    t_utc: float
    kind: str
    freq_hz: float
    channel: int | None
    bandwidth_hz: float
    power_dbm: float
    snr_db: float
    features: dict = field(default_factory=dict)


def measure_block(block: IQBlock, band: Band, channel_freqs_hz: np.ndarray, *, calibration_db: float,
                  nfft: int = 256) -> list[CarrierMeasurement]:
    """Carriers of ``band`` in one capture, with powers in dBm at the antenna."""
    iq = block.as_complex64()
    fs = block.sample_rate_hz
    cp = channel_powers(iq, fs, block.center_freq_hz, channel_freqs_hz, band.bandwidth_hz, nfft=nfft)
    found = detect_carriers(cp, band.bandwidth_hz, fs, bursty=band.bursty,
                            min_separation_hz=FM_SEPARATION_HZ if band.kind == "fm" else 0.0)
    to_dbm = calibration_db - block.gain_db
    chans = band.channel_numbers(found.freq_hz)
    t_mid = block.t_utc + block.n_samples / fs / 2
    out = []
    for i, idx in enumerate(found.index):
        feats = {"noise_dbm": round(float(cp.noise_dbfs[idx] + to_dbm), 2),
                 "duty_cycle": round(float(cp.duty_cycle[idx]), 4),
                 "gain_db": block.gain_db, "tuned_hz": block.center_freq_hz}
        if band.bursty:
            feats["mean_power_dbm"] = round(float(cp.power_dbfs[idx] + to_dbm), 2)
        out.append(CarrierMeasurement(
            t_utc=t_mid, kind=band.kind, freq_hz=float(found.freq_hz[i]),
            channel=None if chans is None else int(chans[i]), bandwidth_hz=band.bandwidth_hz,
            power_dbm=round(float(found.signal_dbfs[i] + to_dbm), 2), snr_db=round(float(found.snr_db[i]), 2),
            features=feats))
    return out


def hops_for(spec: ScanSpec) -> list[Hop]:
    """The hops that sweep one band as the spec asks."""
    return plan_hops(band_by_name(spec.band), spec.sample_rate_hz)


def scan_band(source: IQSource, spec: ScanSpec, *, calibration_db: float,
              hops: list[Hop] | None = None) -> tuple[list[CarrierMeasurement], int]:
    """Sweep one band once. Returns the carriers and the samples dropped during the sweep."""
    b = band_by_name(spec.band)
    n = int(round(spec.dwell_s * spec.sample_rate_hz))
    n = max(n - n % spec.nfft, spec.nfft)
    found: list[CarrierMeasurement] = []
    dropped = 0
    for hop in hops if hops is not None else hops_for(spec):
        source.tune(hop.center_freq_hz, hop.sample_rate_hz, spec.gain_db)
        block = source.read(n)
        dropped += block.dropped_samples
        found.extend(measure_block(block, b, hop.channel_freqs_hz, calibration_db=calibration_db,
                                   nfft=spec.nfft))
    return found, dropped
