"""The FM monitor on a sensor: captures -> every station's features -> detections, the gain
test that unmasks the receiver's own intermodulation, and evidence files.

* :func:`fm_features` turns one capture's stations into detection features (pilot, RDS,
  deviation, frequency error, bandwidth), replacing the power sweep's level with the
  demodulator's (the channel's power over the whole capture, noise removed).
* :func:`gain_test` re-measures carriers that sit on a third-order product of stronger ones
  at a lower gain: a real carrier keeps its level at the antenna, a product of the
  receiver's own front end falls about 2 dB per dB of gain (feature
  ``gain_slope_db_per_db``).
* :func:`decode_fm_band` is the long-dwell monitor sweep (RDS needs seconds): it captures
  only the hops where a power sweep saw stations.
* :func:`sweep_fm_band` is that sweep also returning snippets (:class:`StationSnippet`) of
  the stations an evidence request names, for the node to send to the collector.
* :func:`write_evidence` stores a station's demodulated audio (50 µs de-emphasis, 48 kHz
  16-bit WAV) and its channel IQ (SigMF, complex float) for a detection.

Detection features of an FM carrier (all scalars; None where not measured):
``freq_error_hz``, ``offset_hz`` (the same), ``noise_dbm``, ``gain_db``, ``occupied_bw_khz``,
``deviation_khz`` (peak: exceeded 0.01 % of the time), ``rms_deviation_khz``, ``pilot``,
``pilot_snr_db``, ``pilot_khz``, ``rds`` (True: RDS on air; False: none in a capture of at
least :data:`RDS_MIN_CAPTURE_S`; None: capture too short to tell), ``rds_snr_db``,
``rds_pi`` (4 hex digits), ``rds_ps``, ``rds_pty``, ``rds_rt``, ``rds_groups``,
``rds_blocks``, ``rds_block_errors``, ``rds_blocks_corrected``, ``capture_s``; after a gain
test ``gain_slope_db_per_db``; with evidence ``evidence_wav`` and ``evidence_iq`` (paths on
the sensor). A capture too short to demodulate (under about 15 ms) keeps the power sweep's
features only.
"""

from __future__ import annotations

import datetime as _dt
import math
import wave
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dsp.bands import FM_RASTER_HZ
from dsp.bands import band as band_by_name
from dsp.fm.demod import AUDIO_RATE_HZ, mono_audio
from dsp.fm.rds_demod import MIN_DURATION_S
from dsp.fm.station import (CaptureAnalysis, FmStationFeatures, StationCandidates, analyze_stations,
                            min_capture_samples)
from dsp.plan import Hop
from rfhunt.errors import RecordingError
from sensors.config import ScanSpec
from sensors.scan import CarrierMeasurement, ChannelSnippet, Sweep, capture_hop, hops_for, measure_block
from sensors.sources.base import IQBlock
from sensors.sources.recording import write_sigmf

#: Shortest capture in which missing RDS counts as absent (about 5 groups), s.
RDS_MIN_CAPTURE_S = 0.5
#: A spectral RDS SNR above this means RDS is on air even when nothing decoded, dB.
RDS_SPECTRAL_SNR_DB = 3.0
#: Gain step of the intermodulation test, dB.
GAIN_TEST_STEP_DB = 10.0


def _finite(v: float, digits: int = 2) -> float | None:
    return round(float(v), digits) if v is not None and math.isfinite(v) else None


def station_features(st: FmStationFeatures, capture_s: float) -> dict:
    """Detection features of one analysed station (see the module notes)."""
    r = st.rds
    if r.present or st.rds_snr_db >= RDS_SPECTRAL_SNR_DB:
        rds = True
    elif capture_s >= RDS_MIN_CAPTURE_S:
        rds = False
    else:
        rds = None
    tried = capture_s >= MIN_DURATION_S
    counts = (r.n_groups, r.n_blocks, r.n_errors, r.n_corrected) if tried else (None,) * 4
    return {
        "freq_error_hz": round(st.freq_error_hz, 1), "offset_hz": round(st.freq_error_hz, 1),
        "occupied_bw_khz": _finite(st.occupied_bw_hz / 1e3, 1),
        "deviation_khz": _finite(st.peak_deviation_hz / 1e3, 1),
        "rms_deviation_khz": _finite(st.rms_deviation_hz / 1e3, 1),
        "pilot": bool(st.pilot), "pilot_snr_db": _finite(st.pilot_snr_db, 1) if st.pilot else None,
        "pilot_khz": _finite(st.pilot_deviation_hz / 1e3, 2) if st.pilot else None,
        "rds": rds, "rds_snr_db": _finite(st.rds_snr_db, 1),
        "rds_pi": None if r.pi is None else f"{r.pi:04X}", "rds_ps": r.ps, "rds_pty": r.pty,
        "rds_rt": r.rt or None, "rds_groups": counts[0], "rds_blocks": counts[1],
        "rds_block_errors": counts[2], "rds_blocks_corrected": counts[3],
        "capture_s": round(capture_s, 3),
    }


def analyze_block(block: IQBlock, freqs_hz: np.ndarray, *, center_freq_hz: float | None = None,
                  decode: bool = True, keep_baseband: bool = False) -> CaptureAnalysis:
    """Analyse the stations on ``freqs_hz`` (raster points) of one capture.

    ``center_freq_hz`` is the capture's true centre when the tuner was asked for another
    frequency to correct its LO error (default: the block's tuning).
    """
    fc = block.center_freq_hz if center_freq_hz is None else center_freq_hz
    f = np.asarray(freqs_hz, dtype=float)
    z = np.zeros(f.size)
    samples = block.samples if block.native == "cu8" else block.as_complex64()
    return analyze_stations(samples, block.sample_rate_hz, fc, StationCandidates(f, z, z, z, z), decode=decode,
                            keep_baseband=keep_baseband)


def fm_features(block: IQBlock, found: list[CarrierMeasurement], *, calibration_db: float,
                center_freq_hz: float | None = None, decode: bool = True, keep_baseband: bool = False
                ) -> tuple[list[CarrierMeasurement], CaptureAnalysis | None]:
    """Add FM features to the power sweep's measurements of one capture.

    Returns the measurements (level and SNR from the demodulator) and the analysis (for
    evidence), or the input unchanged and None when there are no stations.
    """
    if not found or block.n_samples < min_capture_samples(block.sample_rate_hz):
        return found, None  # too short a capture to demodulate: power only
    an = analyze_block(block, np.array([m.freq_hz for m in found]), center_freq_hz=center_freq_hz, decode=decode,
                       keep_baseband=keep_baseband)
    to_dbm = calibration_db - block.gain_db
    capture_s = block.n_samples / block.sample_rate_hz
    out = []
    for m, st in zip(found, an.stations):
        feats = {**m.features, **station_features(st, capture_s),
                 "noise_dbm": round(st.noise_dbfs + to_dbm, 2), "gain_db": block.gain_db}
        out.append(replace(m, power_dbm=round(st.signal_dbfs + to_dbm, 2), snr_db=round(st.snr_db, 2),
                           features=feats))
    return out, an


def measure_fm_block(block: IQBlock, channel_freqs_hz: np.ndarray, *, calibration_db: float,
                     nfft: int = 256, center_freq_hz: float | None = None, decode: bool = True,
                     keep_baseband: bool = False) -> tuple[list[CarrierMeasurement], CaptureAnalysis | None]:
    """The power sweep's FM carriers of one capture (:func:`sensors.scan.measure_block`), with
    their FM features."""
    found = measure_block(block, band_by_name("fm"), channel_freqs_hz, calibration_db=calibration_db, nfft=nfft,
                          center_freq_hz=center_freq_hz)
    return fm_features(block, found, calibration_db=calibration_db, center_freq_hz=center_freq_hz, decode=decode,
                       keep_baseband=keep_baseband)


def gain_test(source, spec: ScanSpec, found: list[CarrierMeasurement], *, calibration_db: float,
              hops: list[Hop] | None = None, ppm: float = 0.0) -> tuple[list[CarrierMeasurement], int]:
    """Re-measure, at a lower gain, FM carriers that sit on a third-order product of stronger
    ones; their features gain ``gain_slope_db_per_db``.

    A real carrier keeps its level at the antenna; a product of the receiver's front end
    falls about 2 dB per dB of gain, and where the ADC's noise dominates its SNR falls 3 dB
    per dB. The gain step is therefore chosen to leave a product about 6 dB over the noise:
    ``(snr_db - 6) / 3``, between 3 and :data:`GAIN_TEST_STEP_DB`. A carrier that then
    vanishes although a real one would still stand 6 dB over the new noise gets the slope
    its disappearance proves at least; when even that is unclear, none.

    Returns the measurements (the others unchanged) and the samples dropped.
    """
    from collector.fm_verdict import FmVerdictParams, intermod_products

    params = FmVerdictParams()
    carriers = [(m.freq_hz, m.power_dbm) for m in found]
    suspects = [i for i, m in enumerate(found) if m.kind == "fm"
                and intermod_products(m.freq_hz, m.power_dbm, carriers, params)]
    if not suspects:
        return found, 0
    hops = hops if hops is not None else hops_for(spec)
    n = max(int(round(spec.dwell_s * spec.sample_rate_hz)), 8192)
    out = list(found)
    dropped = 0
    for hop in hops:
        mine = [i for i in suspects if np.isin(np.rint(found[i].freq_hz), np.rint(hop.channel_freqs_hz))]
        if not mine:
            continue
        g1 = float(found[mine[0]].features.get("gain_db", spec.gain_db))
        snr = min(found[i].snr_db for i in mine)
        step = float(np.clip((snr - 6.0) / 3.0, 3.0, GAIN_TEST_STEP_DB))
        source.tune(hop.center_freq_hz / (1 + ppm * 1e-6), hop.sample_rate_hz, max(g1 - step, 0.0))
        block = source.read(n)
        dropped += block.dropped_samples
        g2 = block.gain_db
        if g1 - g2 < 2.0:
            continue
        an = analyze_block(block, np.array([found[i].freq_hz for i in mine]), center_freq_hz=hop.center_freq_hz,
                           decode=False)
        to_dbm = calibration_db - g2
        for i, st in zip(mine, an.stations):
            p1 = found[i].power_dbm
            noise2 = st.noise_dbfs + to_dbm
            if st.snr_db > 0:
                slope = (p1 - (st.signal_dbfs + to_dbm)) / (g1 - g2)
            elif p1 - noise2 >= 6.0 and (p1 - noise2) / (g1 - g2) >= params.im_min_slope_db_per_db:
                slope = (p1 - noise2) / (g1 - g2)  # at least this: a real carrier would still show
            else:
                continue
            out[i] = replace(found[i], features={**found[i].features, "gain_slope_db_per_db": round(slope, 2)})
    return out, dropped


@dataclass(frozen=True)
class StationSnippet(ChannelSnippet):
    """A station's evidence in memory: its channel IQ (the :class:`~sensors.scan.ChannelSnippet`
    fields) and its demodulated audio.

    Attributes
    ----------
    audio : ndarray of float32
        Mono audio (50 µs de-emphasis) at ``audio_rate_hz``; 1.0 is 75 kHz of deviation.
    audio_rate_hz : float
    """

    audio: np.ndarray
    audio_rate_hz: float


def station_snippet(analysis: CaptureAnalysis, index: int, *, capture_center_hz: float, t_utc: float,
                    seconds: float | None = None) -> StationSnippet:
    """Audio and channel IQ of station ``index`` of an analysis made with ``keep_baseband=True``
    (the first ``seconds`` of each).

    Raises
    ------
    RecordingError
        If the analysis kept no channel IQ.
    """
    st = analysis.stations[index]
    ch = analysis.channels
    if ch.baseband.shape[1] == 0:
        raise RecordingError("no channel IQ to write: analyse with keep_baseband=True for evidence")
    rate = ch.sample_rate_hz
    n = ch.baseband.shape[1] if seconds is None else min(ch.baseband.shape[1], int(seconds * rate))
    audio = mono_audio(analysis.mpx_hz[index, :max(n - 1, 1)], rate).astype(np.float32)
    return StationSnippet(float(st.freq_hz), float(t_utc), np.ascontiguousarray(ch.baseband[index, :n],
                                                                              dtype=np.complex64),
                          float(rate), capture_center_hz + float(ch.center_offset_hz[index]), audio,
                          float(AUDIO_RATE_HZ))


def decode_fm_band(source, spec: ScanSpec, *, calibration_db: float, hops: list[Hop] | None = None,
                   ppm: float = 0.0, near_freqs_hz: np.ndarray | None = None, evidence_dir: str | Path | None = None,
                   evidence_seconds: float = 10.0, position: tuple[float, float] | None = None
                   ) -> tuple[list[CarrierMeasurement], int]:
    """The FM monitor sweep: ``dwell_s`` (seconds: RDS repeats its PS about every 0.4-2.3 s)
    on each hop, every station measured and its RDS decoded, then the gain test.

    Parameters
    ----------
    near_freqs_hz : array_like, optional
        Stations a power sweep found: only hops responsible for one of them are captured.
    evidence_dir : path, optional
        Evidence files: each station's audio and channel IQ are written here
        (:func:`write_evidence`, the first ``evidence_seconds``) and their paths attached to
        its detection as the features ``evidence_wav`` and ``evidence_iq``.
    position : (lat, lon), optional
        The sensor's position, stored with the IQ evidence (WGS84 degrees).

    Returns the measurements and the samples dropped (:func:`sweep_fm_band` also returns
    snippets in memory).
    """
    sweep = sweep_fm_band(source, spec, calibration_db=calibration_db, hops=hops, ppm=ppm,
                          near_freqs_hz=near_freqs_hz, evidence_dir=evidence_dir, evidence_seconds=evidence_seconds,
                          position=position)
    return sweep.found, sweep.dropped


def sweep_fm_band(source, spec: ScanSpec, *, calibration_db: float, hops: list[Hop] | None = None,
                  ppm: float = 0.0, near_freqs_hz: np.ndarray | None = None, evidence_dir: str | Path | None = None,
                  evidence_seconds: float = 10.0, position: tuple[float, float] | None = None,
                  snippet_freqs_hz: np.ndarray | None = None, snippet_seconds: float = 5.0) -> Sweep:
    """:func:`decode_fm_band`, and snippets of the stations asked for.

    Parameters
    ----------
    snippet_freqs_hz : array_like, optional
        Stations (matched on the 100 kHz raster) whose audio and channel IQ are wanted in
        memory (evidence requests). A station found on one of them gets
        ``snippet_seconds`` of each: from the sweep's own capture when that is long
        enough, else from one more capture of that length on its hop.
    """
    hops = hops if hops is not None else hops_for(spec)
    n = int(round(spec.dwell_s * spec.sample_rate_hz))
    want = np.rint(np.asarray(snippet_freqs_hz if snippet_freqs_hz is not None else [], dtype=float) / FM_RASTER_HZ)
    found: list[CarrierMeasurement] = []
    snippets: dict[int, StationSnippet] = {}
    dropped = 0
    for hop in hops:
        if near_freqs_hz is not None and not np.isin(np.rint(hop.channel_freqs_hz),
                                                     np.rint(np.asarray(near_freqs_hz, dtype=float))).any():
            continue
        block, d = capture_hop(source, hop, n, spec.gain_db, ppm)
        dropped += d
        asked = [i for i, f in enumerate(hop.channel_freqs_hz) if np.rint(f / FM_RASTER_HZ) in want]
        ms, an = measure_fm_block(block, hop.channel_freqs_hz, calibration_db=calibration_db, nfft=spec.nfft,
                                  center_freq_hz=hop.center_freq_hz,
                                  keep_baseband=evidence_dir is not None or bool(asked))
        if evidence_dir is not None and an is not None:
            for i, m in enumerate(ms):
                wav, meta = write_evidence(evidence_dir, an, i, capture_center_hz=hop.center_freq_hz, t_utc=block.t_utc,
                                           seconds=evidence_seconds, position=position)
                ms[i] = replace(m, features={**m.features, "evidence_wav": str(wav), "evidence_iq": str(meta)})
        hits = [i for i, m in enumerate(ms) if np.rint(m.freq_hz / FM_RASTER_HZ) in want]
        if hits and an is not None:
            if block.n_samples >= snippet_seconds * block.sample_rate_hz:
                for i in hits:
                    snippets[len(found) + i] = station_snippet(an, i, capture_center_hz=hop.center_freq_hz,
                                                               t_utc=block.t_utc, seconds=snippet_seconds)
            else:
                long, d = capture_hop(source, hop, int(round(snippet_seconds * spec.sample_rate_hz)), spec.gain_db, ppm)
                dropped += d
                lan = analyze_block(long, np.array([ms[i].freq_hz for i in hits]), center_freq_hz=hop.center_freq_hz,
                                    decode=False, keep_baseband=True)
                for k, i in enumerate(hits):
                    snippets[len(found) + i] = station_snippet(lan, k, capture_center_hz=hop.center_freq_hz,
                                                               t_utc=long.t_utc, seconds=snippet_seconds)
        found.extend(ms)
    found, d = gain_test(source, spec, found, calibration_db=calibration_db, hops=hops, ppm=ppm)
    return Sweep(found, dropped + d, snippets)


def _stamp(t_utc: float) -> str:
    return _dt.datetime.fromtimestamp(t_utc, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_evidence(out_dir: str | Path, analysis: CaptureAnalysis, index: int, *, capture_center_hz: float,
                   t_utc: float, seconds: float | None = None,
                   position: tuple[float, float] | None = None) -> tuple[Path, Path]:
    """Write one station's evidence: demodulated audio (WAV) and channel IQ (SigMF).

    Parameters
    ----------
    out_dir : path
        Folder (created if missing).
    analysis : CaptureAnalysis
        From :func:`analyze_block` / :func:`dsp.fm.station.scan_capture` with
        ``keep_baseband=True``.
    index : int
        Which station of ``analysis``.
    capture_center_hz : float
        Centre frequency of the capture, Hz (the channel IQ is centred on the station).
    t_utc : float
        Time of the capture's first sample (Unix seconds).
    seconds : float, optional
        Keep only the first ``seconds`` of each.
    position : (lat, lon), optional
        The sensor's position (WGS84 degrees), stored in the SigMF metadata.

    Returns
    -------
    (wav_path, sigmf_meta_path)

    Raises
    ------
    RecordingError
        When the files cannot be written, or the analysis kept no channel IQ.
    """
    st = analysis.stations[index]
    ch = analysis.channels
    snip = station_snippet(analysis, index, capture_center_hz=capture_center_hz, t_utc=t_utc, seconds=seconds)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot create the evidence folder ({exc.strerror or exc})") from None
    base = out / f"fm_{st.freq_hz / 1e3:.0f}kHz_{_stamp(t_utc)}"
    pcm = (np.clip(snip.audio, -1.0, 1.0) * 32767).astype("<i2")
    wav_path = base.with_suffix(".wav")
    try:
        with wave.open(str(wav_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(AUDIO_RATE_HZ)
            w.writeframes(pcm.tobytes())
    except OSError as exc:
        raise RecordingError(f"{wav_path}: cannot write WAV ({exc.strerror or exc})") from None
    centre = snip.iq_center_hz
    pi = f", RDS PI {st.rds.pi:04X} PS {st.rds.ps!r}" if st.rds.pi is not None else ""
    desc = (f"FM station {st.freq_hz / 1e6:.1f} MHz, channel IQ centred on {centre / 1e6:.4f} MHz "
            f"(+-{ch.passband_hz / 1e3:.0f} kHz flat), {'stereo' if st.pilot else 'mono'}, "
            f"peak deviation {st.peak_deviation_hz / 1e3:.0f} kHz{pi}")
    meta, _ = write_sigmf(base, snip.iq, sample_rate_hz=snip.iq_rate_hz, center_freq_hz=centre,
                          datatype="cf32_le", t_utc=t_utc, description=desc, geolocation=position)
    return wav_path, meta



def judge_stations(analysis: CaptureAnalysis, *, to_dbm: float, registry, sensor_lat: float | None = None,
                   sensor_lon: float | None = None, capture_s: float) -> list[dict]:
    """One ``fm_station`` row per station of a capture, judged against the registry.

    Parameters
    ----------
    analysis : CaptureAnalysis
    to_dbm : float
        dBFS to dBm: ``calibration_db - gain_db``.
    registry : sequence of collector.reference.FmStation, or None
    sensor_lat, sensor_lon : float, optional
        Where the capture was made (WGS84 degrees).
    capture_s : float
        Length of the capture, s.

    Returns
    -------
    list of dict
        ``{"type": "fm_station", "freq_hz", "power_dbm", "snr_db", "deviation_khz", "pilot",
        "rds_pi", "rds_ps", "verdict", "reasons"}`` in frequency order, each with the
        station's full features under the extra key ``"features"`` (callers drop it for the
        short form).
    """
    from collector.fm_verdict import FmObservation, fm_verdict

    sts = sorted(analysis.stations, key=lambda s: s.freq_hz)
    carriers = [(s.freq_hz, s.signal_dbfs + to_dbm) for s in sts]
    rows = []
    for st in sts:
        feats = station_features(st, capture_s)
        power = st.signal_dbfs + to_dbm
        obs = FmObservation.from_features(st.freq_hz, power, st.snr_db, feats)
        v = fm_verdict(obs, registry, sensor_lat=sensor_lat, sensor_lon=sensor_lon, carriers=carriers)
        rows.append({"type": "fm_station", "freq_hz": st.freq_hz, "power_dbm": round(power, 2),
                     "snr_db": round(st.snr_db, 2), "deviation_khz": feats["deviation_khz"], "pilot": bool(st.pilot),
                     "rds_pi": feats["rds_pi"], "rds_ps": feats["rds_ps"], "verdict": v.verdict,
                     "reasons": list(v.reasons), "features": feats})
    return rows
