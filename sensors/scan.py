"""Sweeping bands with an IQ source and turning captures into carrier measurements."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from dsp.bands import GSM_CHANNEL_HZ, Band, downlink_channels_in_span, uplink_channels_in_span
from dsp.bands import band as band_by_name
from dsp.gsm.decode import L2Frame, decode_bcch
from dsp.gsm.rx.channelizer import channelize
from dsp.gsm.uplink import KIND_ACCESS, KIND_NORMAL, SLOT_S, UplinkBursts, detect_uplink_bursts, uplink_activity
from dsp.plan import Hop, plan_hops
from dsp.spectrum import channel_powers, detect_carriers
from sensors.config import ScanSpec
from sensors.sources.base import IQBlock, IQSource


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


def _utc_slots(bursts: UplinkBursts, t_utc: float) -> UplinkBursts:
    """``bursts`` with ``slot`` and ``timeslot`` numbered on a grid tied to UTC.

    The capture's own slot grid (the phase of its normal bursts' starts, or of all its bursts
    when it has no normal ones) is kept; each slot boundary is numbered by the UTC time it
    falls on, divided by the slot length. A handset keeps its timeslot number from capture to
    capture, and sensors whose clocks agree to a small fraction of a slot (577 us) number it
    alike, which the collector needs to match links across sensors.
    """
    if len(bursts) == 0:
        return bursts
    phase = bursts.slot_phase_s
    if not np.isfinite(phase):
        ang = 2 * np.pi * (bursts.start_s % SLOT_S) / SLOT_S
        w = 10 ** (bursts.power_dbfs / 10)
        phase = float(np.angle(np.sum(w * np.exp(1j * ang))) % (2 * np.pi) / (2 * np.pi) * SLOT_S)
    slot = np.floor((bursts.start_s - phase) / SLOT_S + 0.5).astype(np.int64)
    slot += int(np.rint((t_utc + phase) / SLOT_S))  # number of the capture's first boundary on the UTC grid
    return replace(bursts, slot=slot, timeslot=slot % 8, slot_phase_s=phase)


def measure_uplink_links(block: IQBlock, band: Band, channel_freqs_hz: np.ndarray, *, calibration_db: float,
                         center_freq_hz: float | None = None, threshold_db: float = 8.0
                         ) -> list[CarrierMeasurement]:
    """The GSM uplink links (ARFCN x timeslot) of ``channel_freqs_hz`` active in one capture.

    The bursts of every uplink channel the capture holds are found
    (:func:`dsp.gsm.uplink.detect_uplink_bursts`: all of them, so a strong burst's skirt on a
    neighbour is told apart) and summed up per link (:func:`dsp.gsm.uplink.uplink_activity`).
    Timeslots are numbered on a grid tied to UTC from the block's ``t_utc`` (see
    :func:`_utc_slots`), not from the serving cell's frame, which an uplink capture does not
    hear.

    Returns one measurement per link with normal bursts (``power_dbm``: its median burst
    power; ``snr_db``: the median burst SNR; features ``timeslot``, ``n_bursts``, ``n_access``
    (access bursts on that link in the capture), ``duty`` (bursts over the TDMA frames of the
    capture), ``capture_s``, ``offset_hz``, ``noise_dbm``, ``gain_db``), and one per link with
    access bursts only (a call set-up: ``n_bursts`` 0, ``n_access``, ``access_t_s``: start
    of its first access burst from the capture's first sample, s). ``t_utc`` is the middle of
    the capture, as for every other detection.

    Raises
    ------
    DspError
        For a capture shorter than one timeslot.
    """
    iq = block.as_complex64()
    fs = block.sample_rate_hz
    fc = block.center_freq_hz if center_freq_hz is None else center_freq_hz
    chans = uplink_channels_in_span(fc, fs)
    chans = chans[np.isin(np.rint(chans), np.rint(band.channel_freqs_hz()))]
    mine = np.isin(np.rint(chans), np.rint(np.asarray(channel_freqs_hz, dtype=float)))
    if not mine.any():
        return []
    capture_s = iq.size / fs
    bursts = _utc_slots(detect_uplink_bursts(iq, fs, fc, chans, threshold_db=threshold_db), block.t_utc)
    act = uplink_activity(bursts, capture_s)
    arfcn = band.channel_numbers(chans)
    to_dbm = calibration_db - block.gain_db
    t_mid = block.t_utc + capture_s / 2
    link_of_burst = bursts.channel * 8 + bursts.timeslot
    normal = bursts.kind == KIND_NORMAL
    access = bursts.kind == KIND_ACCESS
    out = []
    for i in range(act.channel.size):
        ch, ts = int(act.channel[i]), int(act.timeslot[i])
        if not mine[ch]:
            continue
        sel = normal & (link_of_burst == ch * 8 + ts)
        feats = {"timeslot": ts, "n_bursts": int(act.bursts[i]),
                 "n_access": int(np.count_nonzero(access & (link_of_burst == ch * 8 + ts))),
                 "duty": round(float(act.duty[i]), 3), "capture_s": round(capture_s, 6),
                 "offset_hz": round(float(np.median(bursts.offset_hz[sel])), 1),
                 "noise_dbm": round(float(bursts.noise_dbfs[ch] + to_dbm), 2), "gain_db": block.gain_db}
        out.append(CarrierMeasurement(t_mid, band.kind, float(chans[ch]), int(arfcn[ch]), band.bandwidth_hz,
                                      round(float(act.power_dbfs[i] + to_dbm), 2),
                                      round(float(np.median(bursts.snr_db[sel])), 2), feats))
    # call set-ups: access bursts on links without normal bursts in this capture
    links_with_calls = set((act.channel * 8 + act.timeslot).tolist())
    for key in np.unique(link_of_burst[access]):
        ch, ts = int(key) // 8, int(key) % 8
        if not mine[ch] or int(key) in links_with_calls:
            continue
        sel = access & (link_of_burst == key)
        p = float(np.median(bursts.power_dbfs[sel]))
        feats = {"timeslot": ts, "n_bursts": 0, "n_access": int(np.count_nonzero(sel)), "duty": 0.0,
                 "capture_s": round(capture_s, 6), "access_t_s": round(float(bursts.start_s[sel].min()), 4),
                 "offset_hz": round(float(np.median(bursts.offset_hz[sel])), 1),
                 "noise_dbm": round(float(bursts.noise_dbfs[ch] + to_dbm), 2), "gain_db": block.gain_db}
        out.append(CarrierMeasurement(t_mid, band.kind, float(chans[ch]), int(arfcn[ch]), band.bandwidth_hz,
                                      round(p + to_dbm, 2), round(float(np.median(bursts.snr_db[sel])), 2), feats))
    return out


#: A carrier at least this much weaker than the one at its mirror frequency about the
#: capture's centre may be the receiver's image of that one, dB. An RTL-SDR's IQ imbalance
#: leaves an image 25-45 dB down (0.1 dB of gain imbalance: 45 dB).
IMAGE_REJECTION_DB = 25.0
#: ... and is taken for one when at least this share of its channel's power is the mirrored
#: conjugate of that carrier's (the image of x is a scaled conj(x): its spectrum at +f is
#: the conjugate of the parent's at -f). An image at 8 dB SNR scores about 0.86, a real
#: station or an intermodulation product about 1 / (bins in the channel).
IMAGE_MIN_COHERENCE = 0.5


def iq_image(iq: np.ndarray, sample_rate_hz: float, cp, freq_hz: np.ndarray, signal_dbfs: np.ndarray,
             center_freq_hz: float, bandwidth_hz: float) -> np.ndarray:
    """Which carriers are the receiver's IQ-imbalance images of a stronger one.

    IQ imbalance adds ``e * conj(x)`` to a capture ``x``: each carrier at ``+f`` from the
    centre leaves a copy at ``-f`` whose spectrum is the conjugate of its own,
    ``Y[-k] = e * conj(X[k])``. A carrier is taken for an image when the channel at its
    mirror frequency is at least :data:`IMAGE_REJECTION_DB` stronger and the two channels'
    spectra are coherent that way: ``|sum Y[k] Y[-k]|^2 / (sum |Y[k]|^2 sum |Y[-k]|^2)``
    over the carrier's channel at least :data:`IMAGE_MIN_COHERENCE` (one FFT of the capture;
    the share of the channel's power the image explains, whatever the programme, and robust
    down to a few dB of SNR). A real station or an intermodulation product at the mirror
    frequency moves on its own and scores near zero.

    Parameters
    ----------
    iq : ndarray of complex
        The capture.
    sample_rate_hz, center_freq_hz, bandwidth_hz : float
        Its rate and true centre, and the channel width, Hz.
    cp : dsp.spectrum.ChannelPowers
        The capture's channel powers.
    freq_hz, signal_dbfs : ndarray
        The carriers found and their signal levels, Hz and dBFS.

    Returns
    -------
    ndarray of bool
    """
    f = np.asarray(freq_hz, dtype=float)
    out = np.zeros(f.shape, dtype=bool)
    if f.size == 0 or cp.freq_hz.size == 0:
        return out
    mirror = 2.0 * center_freq_hz - f
    j = np.clip(np.searchsorted(cp.freq_hz, mirror), 1, cp.freq_hz.size - 1)
    j = np.where(np.abs(cp.freq_hz[j - 1] - mirror) < np.abs(cp.freq_hz[j] - mirror), j - 1, j)
    on_grid = np.abs(cp.freq_hz[j] - mirror) <= bandwidth_hz / 2
    other = np.abs(mirror - f) > bandwidth_hz
    level = np.maximum(cp.power_dbfs[j], cp.burst_power_dbfs[j])
    cand = np.flatnonzero(on_grid & other & (level >= np.asarray(signal_dbfs, dtype=float) + IMAGE_REJECTION_DB))
    x = np.asarray(iq)
    n = x.size
    if cand.size == 0 or n < 64:
        return out
    spec = np.fft.fft(x.astype(np.complex64, copy=False))
    df = sample_rate_hz / n
    half = max(1, int(0.45 * bandwidth_hz / df))
    for k in cand:
        k0 = int(round((f[k] - center_freq_hz) / df))
        idx = np.arange(k0 - half, k0 + half + 1) % n
        y, z = spec[idx], spec[(-idx) % n]  # the carrier's bins and their mirrors
        den = float(np.sum(np.abs(y) ** 2) * np.sum(np.abs(z) ** 2))
        out[k] = den > 0 and float(np.abs(np.sum(y * z)) ** 2) / den >= IMAGE_MIN_COHERENCE
    return out


def measure_block(block: IQBlock, band: Band, channel_freqs_hz: np.ndarray, *, calibration_db: float,
                  nfft: int = 256, center_freq_hz: float | None = None) -> list[CarrierMeasurement]:
    """Carriers on ``channel_freqs_hz`` (those of ``band`` this capture is responsible for),
    with powers in dBm at the antenna.

    Every channel of the band inside the capture's span is measured, so that a carrier's
    neighbours (assigned to the next hop) still take part in skirt rejection and FM peak
    picking; only carriers on ``channel_freqs_hz`` are returned. ``center_freq_hz`` is the
    true centre of the capture when the tuner was asked for another frequency to correct
    its LO error (default: the block's tuning). An FM carrier that is the receiver's image
    of a much stronger one (:func:`iq_image`) is not reported.
    """
    iq = block.as_complex64()
    fs = block.sample_rate_hz
    fc = block.center_freq_hz if center_freq_hz is None else center_freq_hz
    everything = band.channel_freqs_hz()
    everything = everything[np.abs(everything - fc) < fs / 2]
    cp = channel_powers(iq, fs, fc, everything, band.bandwidth_hz, nfft=nfft)
    if band.kind == "fm":
        from dsp.fm.station import pick_stations  # a station's own raster point, not its skirts

        found = pick_stations(cp)
        # an FM station's power spreads over neighbouring raster points; its spectrum is
        # symmetric about the carrier, so the centroid names the raster point it is on (and
        # a skirt at the capture's edge names its station beyond, whose own hop reports it)
        named = np.rint((found.freq_hz + cp.centroid_hz[found.index]) / band.channel_hz) * band.channel_hz
    else:
        found = detect_carriers(cp, bursty=band.bursty, own_channel_only=True)
        named = found.freq_hz
    mine = np.isin(np.rint(named), np.rint(np.asarray(channel_freqs_hz, dtype=float)))
    if band.kind == "fm":
        # the image of a strong station would pass for an unlicensed one (GSM sweeps show
        # images too; the test is not applied there yet, so that the rogue-cell figures of
        # bench/RESULTS.md remain those of the code they were measured with)
        mine &= ~iq_image(iq, fs, cp, found.freq_hz, found.signal_dbfs, fc, band.bandwidth_hz)
    to_dbm = calibration_db - block.gain_db
    chans = band.channel_numbers(found.freq_hz)
    t_mid = block.t_utc + block.n_samples / fs / 2
    out = []
    for i, idx in enumerate(found.index):
        if not mine[i]:
            continue
        feats = {"noise_dbm": round(float(cp.noise_dbfs[idx] + to_dbm), 2),
                 "duty_cycle": round(float(cp.duty_cycle[idx]), 4),
                 "gain_db": block.gain_db, "offset_hz": round(float(cp.centroid_hz[idx]), 1)}
        if band.bursty:
            feats["mean_power_dbm"] = round(float(cp.power_dbfs[idx] + to_dbm), 2)
        freq = float(named[i])
        if band.kind == "fm":
            feats["offset_hz"] = round(float(found.freq_hz[i] + cp.centroid_hz[idx] - freq), 1)
        out.append(CarrierMeasurement(
            t_utc=t_mid, kind=band.kind, freq_hz=freq,
            channel=None if chans is None else int(chans[i]), bandwidth_hz=band.bandwidth_hz,
            power_dbm=round(float(found.signal_dbfs[i] + to_dbm), 2), snr_db=round(float(found.snr_db[i]), 2),
            features=feats))
    return out


#: Share of ADC samples at full scale above which a capture counts as overloaded.
MAX_CLIP_FRACTION = 1e-4
GAIN_STEP_DB = 10.0


def clip_fraction(block: IQBlock) -> float:
    """Share of I and Q values at the ADC's limits (0 or 255 for cu8, |x| >= 1 for float)."""
    if block.native == "cu8":
        raw = block.samples
        return float(np.count_nonzero((raw == 0) | (raw == 255))) / max(raw.size, 1)
    x = block.as_complex64()
    over = np.count_nonzero(np.abs(x.real) >= 1.0) + np.count_nonzero(np.abs(x.imag) >= 1.0)
    return over / max(2 * x.size, 1)


def capture_hop(source: IQSource, hop: Hop, n: int, gain_db: float, ppm: float) -> tuple[IQBlock, int]:
    """One capture of ``n`` samples at a hop, tuned ``f / (1 + ppm * 1e-6)`` so the LO lands
    on ``f``; returns it and the samples the source dropped meanwhile.

    An overloaded 8-bit ADC fills the band with intermodulation that looks like carriers:
    while more than :data:`MAX_CLIP_FRACTION` of the samples clip, the gain is backed off by
    :data:`GAIN_STEP_DB` and the capture made again (at most three times), as an operator would.
    """
    dropped, tries = 0, 0
    while True:
        source.tune(hop.center_freq_hz / (1 + ppm * 1e-6), hop.sample_rate_hz, gain_db)
        block = source.read(n)
        dropped += block.dropped_samples
        if clip_fraction(block) <= MAX_CLIP_FRACTION or gain_db <= 0 or tries >= 3:
            return block, dropped
        gain_db, tries = max(gain_db - GAIN_STEP_DB, 0.0), tries + 1


def hops_for(spec: ScanSpec) -> list[Hop]:
    """The hops that sweep one band as the spec asks."""
    return plan_hops(band_by_name(spec.band), spec.sample_rate_hz)


def scan_band(source: IQSource, spec: ScanSpec, *, calibration_db: float,
              hops: list[Hop] | None = None, ppm: float = 0.0) -> tuple[list[CarrierMeasurement], int]:
    """Sweep one band once. Returns the carriers and the samples dropped during the sweep.

    ``ppm`` is the tuner's known LO error: each hop is tuned to ``f / (1 + ppm * 1e-6)`` so
    that the LO lands on ``f``. A GSM uplink band with ``spec.links`` yields one measurement per
    link (ARFCN x timeslot) of each capture instead of one per carrier (see
    :func:`measure_uplink_links`). FM carriers also carry their stations' features (see
    :mod:`sensors.fm_scan`: level from the demodulator, pilot, deviation, RDS when the dwell
    is long enough), and those on an intermodulation product of stronger ones are measured
    again at a lower gain.
    """
    b = band_by_name(spec.band)
    n = int(round(spec.dwell_s * spec.sample_rate_hz))
    n = max(n - n % spec.nfft, spec.nfft)
    found: list[CarrierMeasurement] = []
    dropped = 0
    for hop in hops if hops is not None else hops_for(spec):
        block, d = capture_hop(source, hop, n, spec.gain_db, ppm)
        dropped += d
        if b.kind == "gsm_uplink" and spec.links:
            found.extend(measure_uplink_links(block, b, hop.channel_freqs_hz, calibration_db=calibration_db,
                                              center_freq_hz=hop.center_freq_hz))
            continue
        ms = measure_block(block, b, hop.channel_freqs_hz, calibration_db=calibration_db, nfft=spec.nfft,
                           center_freq_hz=hop.center_freq_hz)
        if b.kind == "fm" and ms:
            from sensors.fm_scan import fm_features  # FM stations: pilot, deviation, RDS, ...

            ms, _ = fm_features(block, ms, calibration_db=calibration_db, center_freq_hz=hop.center_freq_hz)
        found.extend(ms)
    if b.kind == "fm":
        from sensors.fm_scan import gain_test  # the receiver's own intermodulation moves with gain

        found, more = gain_test(source, spec, found, calibration_db=calibration_db,
                                hops=hops if hops is not None else hops_for(spec), ppm=ppm)
        dropped += more
    return found, dropped


def estimate_ppm(carriers: list[CarrierMeasurement], *, min_snr_db: float = 15.0, min_carriers: int = 3
                 ) -> float | None:
    """The tuner's residual LO error, ppm, from GSM downlink carriers.

    Base stations hold their carrier to +-0.05 ppm, so the median offset of strong downlink
    carriers (their spectral centroid against the channel centre) is the sensor's own error
    with the sign turned: an LO that runs high shows every carrier low.
    Returns None with fewer than ``min_carriers`` usable carriers.

    The centroid of a BCCH carrier leans by about +9 kHz (its idle timeslots repeat the
    dummy burst, whose spectrum is not symmetric), so this estimate settles within about
    10 ppm of the truth at GSM900: enough to keep carriers in their channels, not to
    fingerprint cells. Decoding the FCCH gives the exact offset.
    """
    offs = [-m.features["offset_hz"] / m.freq_hz * 1e6 for m in carriers
            if m.kind == "gsm_downlink" and m.snr_db >= min_snr_db and "offset_hz" in m.features]
    if len(offs) < min_carriers:
        return None
    return float(np.median(offs))


#: Largest carrier offset (Hz) a decoded cell may show once the sensor's LO error is corrected.
MAX_CELL_OFFSET_HZ = 40e3

#: Cell fields a decoded GSM cell reports as detection features (scalars only).
CELL_FEATURES = ("mcc", "mnc", "lac", "cid", "cro_db", "temporary_offset_db", "penalty_time_s", "t3212_s",
                 "cell_barred", "rxlev_access_min_dbm", "ms_txpwr_max_cch", "cell_reselect_hysteresis_db",
                 "paging_requests", "paged_identities", "immediate_assignments", "residual_ppm", "receiver_ppm")


def decode_band(source: IQSource, spec: ScanSpec, *, calibration_db: float, hops: list[Hop] | None = None,
                ppm: float = 0.0, near_freqs_hz: np.ndarray | None = None,
                on_frame: Callable[[L2Frame], None] | None = None) -> tuple[list[CarrierMeasurement], int]:
    """Decode every GSM cell of a downlink band: FCCH, SCH and BCCH of each hop's channels.

    Parameters
    ----------
    near_freqs_hz : array_like, optional
        Carriers a power sweep found: only hops responsible for one of them are captured
        (a survey then costs ``dwell_s`` per occupied hop, not per hop).
    on_frame : callable, optional
        Called with every decoded L2 frame of the hop's own channels (GSMTAP output).

    Returns the decoded cells as measurements whose features carry the identity and the
    broadcast parameters, and the samples dropped (:func:`sweep_gsm_band` also returns
    snippets of channel IQ).
    """
    sweep = sweep_gsm_band(source, spec, calibration_db=calibration_db, hops=hops, ppm=ppm, near_freqs_hz=near_freqs_hz,
                           on_frame=on_frame)
    return sweep.found, sweep.dropped


@dataclass(frozen=True)
class ChannelSnippet:
    """One channel's IQ from a capture (evidence of a cell).

    Attributes
    ----------
    freq_hz : float
        The channel (carrier) it documents, Hz.
    t_utc : float
        Time of the first sample, Unix s.
    iq : ndarray of complex64
        The channel, filtered and resampled, full scale 1.
    iq_rate_hz : float
        Its sample rate, Hz (4 samples per GSM symbol: 1.0833 MS/s).
    iq_center_hz : float
        The RF frequency at its 0 Hz, Hz.
    """

    freq_hz: float
    t_utc: float
    iq: np.ndarray
    iq_rate_hz: float
    iq_center_hz: float


@dataclass
class Sweep:
    """What a decode sweep (:func:`sweep_gsm_band`, :func:`sensors.fm_scan.sweep_fm_band`)
    found: the measurements, the samples the source dropped, and the snippets asked for (by
    index into ``found``)."""

    found: list[CarrierMeasurement]
    dropped: int
    snippets: dict[int, ChannelSnippet] = field(default_factory=dict)


def channel_snippet(iq: np.ndarray, sample_rate_hz: float, center_freq_hz: float, freq_hz: float, *,
                    t_utc: float, seconds: float | None = None) -> ChannelSnippet:
    """The GSM channel ``freq_hz`` of a capture as a snippet (4 samples per symbol), the
    first ``seconds`` of it."""
    ch = channelize(iq, sample_rate_hz, center_freq_hz, [freq_hz], sps=4)
    x = ch.iq[0]
    if seconds is not None:
        x = x[:max(1, int(seconds * ch.sample_rate_hz))]
    return ChannelSnippet(float(freq_hz), float(t_utc), np.ascontiguousarray(x, dtype=np.complex64),
                          float(ch.sample_rate_hz), float(freq_hz - ch.residual_hz[0]))


def sweep_gsm_band(source: IQSource, spec: ScanSpec, *, calibration_db: float, hops: list[Hop] | None = None,
                   ppm: float = 0.0, near_freqs_hz: np.ndarray | None = None,
                   on_frame: Callable[[L2Frame], None] | None = None, snippet_freqs_hz: np.ndarray | None = None,
                   snippet_seconds: float = 2.0) -> Sweep:
    """:func:`decode_band`, and snippets of the cells asked for.

    Parameters
    ----------
    snippet_freqs_hz : array_like, optional
        Carriers (matched on the 200 kHz raster) whose channel IQ is wanted (evidence
        requests). A cell decoded on one of them gets ``snippet_seconds`` of it: from the
        decode capture when that is long enough, else from one more capture of that length
        on its hop.
    """
    b = band_by_name(spec.band)
    n = int(round(spec.dwell_s * spec.sample_rate_hz))
    out: list[CarrierMeasurement] = []
    snippets: dict[int, ChannelSnippet] = {}
    want = np.rint(np.asarray(snippet_freqs_hz if snippet_freqs_hz is not None else [], dtype=float) / GSM_CHANNEL_HZ)
    dropped = 0
    for hop in hops if hops is not None else hops_for(spec):
        if near_freqs_hz is not None and not np.isin(np.rint(hop.channel_freqs_hz),
                                                     np.rint(np.asarray(near_freqs_hz, dtype=float))).any():
            continue
        source.tune(hop.center_freq_hz / (1 + ppm * 1e-6), hop.sample_rate_hz, spec.gain_db)
        block = source.read(n)
        dropped += block.dropped_samples
        fc, fs = hop.center_freq_hz, hop.sample_rate_hz
        chans = downlink_channels_in_span(fc, fs)
        iq = block.as_complex64()
        frames, cells = decode_bcch(iq, fs, fc, chans)
        if on_frame is not None:
            for f in frames:
                if np.isin(np.rint(f.freq_hz), np.rint(hop.channel_freqs_hz)):
                    on_frame(f)
        # The tuner's LO error is corrected, so a cell sits within a few kHz of its channel; one
        # found far off (a neighbour's SCH through the filter skirt, whose own channel may lie
        # in another hop) is not on this channel.
        # A cell counts once a block passed its 40-bit Fire check: the SCH's 10-bit parity
        # alone passes on noise about once in a thousand tries.
        mine = [c for c in cells if np.isin(np.rint(c.freq_hz), np.rint(hop.channel_freqs_hz)) and c.bsic is not None
                and c.n_frames > 0 and abs(c.offset_hz) <= MAX_CELL_OFFSET_HZ]
        if not mine:
            continue
        cp = channel_powers(iq, fs, fc, np.array([c.freq_hz for c in mine]), b.bandwidth_hz, nfft=spec.nfft)
        power = {round(f): (p, s, nz) for f, p, s, nz in zip(cp.freq_hz, cp.power_dbfs, cp.snr_db, cp.noise_dbfs)}
        to_dbm = calibration_db - block.gain_db
        t_mid = block.t_utc + block.n_samples / fs / 2
        asked: list[int] = []
        for c in mine:
            p_dbfs, snr, noise = power.get(round(c.freq_hz), (np.nan, np.nan, np.nan))
            if not np.isfinite(p_dbfs):
                continue
            feats = {k: c.fields[k] for k in CELL_FEATURES if c.fields.get(k) is not None}
            feats.update(decoded=True, bsic=c.bsic, ppm=round(c.ppm, 3), freq_offset_hz=round(c.offset_hz, 1),
                         n_frames=c.n_frames, si_types=",".join(c.fields.get("si_types", [])),
                         neighbours=",".join(map(str, c.fields.get("neighbours", []))),
                         n_neighbours=len(c.fields.get("neighbours", [])), gain_db=block.gain_db,
                         noise_dbm=round(float(noise + to_dbm), 2))
            signal_dbfs = 10 * np.log10(max(10 ** (p_dbfs / 10) - 10 ** (noise / 10), 1e-30))
            out.append(CarrierMeasurement(t_mid, b.kind, c.freq_hz, c.arfcn, b.bandwidth_hz,
                                          round(float(signal_dbfs + to_dbm), 2),
                                          round(float(snr), 2) if np.isfinite(snr) else 0.0, feats))
            if want.size and np.rint(c.freq_hz / GSM_CHANNEL_HZ) in want:
                asked.append(len(out) - 1)
        if asked:  # the requested cells' channel IQ: from this capture, or one more as long as asked
            src, t0 = iq, block.t_utc
            if block.n_samples < snippet_seconds * fs:
                more, d = capture_hop(source, hop, int(round(snippet_seconds * fs)), spec.gain_db, ppm)
                dropped += d
                src, t0 = more.as_complex64(), more.t_utc
            for i in asked:
                snippets[i] = channel_snippet(src, fs, fc, out[i].freq_hz, t_utc=t0, seconds=snippet_seconds)
    return Sweep(out, dropped, snippets)
