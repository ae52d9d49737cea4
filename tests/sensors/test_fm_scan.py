"""The FM monitor on a sensor: features in detections, RDS on long dwells, the gain test that
unmasks the receiver's own intermodulation, evidence files, and `rfhunt scan fm`."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from collector.fm_verdict import FmObservation, fm_verdict
from collector.reference import FmStation
from dsp.fm.rds import RdsConfig
from dsp.fm.station import scan_capture
from dsp.fm.tx import fm_broadcast_iq
from rfhunt.cli import main
from rfhunt.errors import RecordingError
from rfhunt.records import Detection, decode, encode
from sensors.config import ScanSpec, SensorConfig
from sensors.fm_scan import decode_fm_band, station_features, write_evidence
from sensors.gps import SourcePosition
from sensors.node import SensorNode
from sensors.scan import scan_band
from sensors.sim.fm_effects import receiver_intermod_iq
from sensors.sim.scenario import load_scenario
from sensors.sim.source import SimulatedSource
from sensors.sim.world import World
from sensors.sources.base import IQBlock, IQSource, complex_to_cu8
from sensors.sources.recording import RecordingSource
from tests.shared_data import DATA_DIR, requires

WORLD = World(load_scenario())
FM_SWEEP = ScanSpec("fm", 2.4e6, 0.02, 20.7)
BAND = DATA_DIR / "fm" / "fm_band_2400k.sigmf-meta"


def _fm_truth(sensor_id):
    sc = WORLD.scenario
    rx = WORLD.sensor_position(sensor_id, 0)
    return {e.freq_hz: (e, e.power_dbm + WORLD.path_gain_db(e, e.freq_hz, rx, 0))
            for e in sc.emitters if e.type == "fm"}


def test_power_sweep_carries_fm_features_in_valid_records():
    src = SimulatedSource(WORLD, "roof-nw", seed=2)
    found, dropped = scan_band(src, FM_SWEEP, calibration_db=-5.0, ppm=12.5)
    assert dropped == 0
    truth = _fm_truth("roof-nw")
    assert sorted(m.freq_hz for m in found) == sorted(truth)  # each once, though hops overlap
    for m in found:
        em, p_dbm = truth[m.freq_hz]
        f = m.features
        assert m.power_dbm == pytest.approx(p_dbm, abs=1.5)
        assert f["pilot"] == em.stereo
        assert abs(f["freq_error_hz"]) < 500  # the LO error is tuned out
        assert f["capture_s"] == 0.02 and f["rds_pi"] is None and f["rds_groups"] is None
        # 20 ms cannot show RDS missing; a strong RDS subcarrier shows in the spectrum
        assert f["rds"] in (None, True) and (f["rds"] is None or em.rds_pi is not None)
        over = em.deviation_khz > 80
        if m.snr_db > 10:
            assert (f["deviation_khz"] > 82.5) == over, (m.freq_hz, f["deviation_khz"])
        det = Detection("roof-nw", 1, m.t_utc, 22.5, 114.0, m.kind, m.freq_hz, m.channel, m.bandwidth_hz,
                        m.power_dbm, m.snr_db, {**f, "sensor_ppm": 12.5})
        assert decode(encode(det)) == det


def test_a_sweep_too_short_to_demodulate_still_gives_power():
    src = SimulatedSource(WORLD, "roof-nw", seed=2)
    found, _ = scan_band(src, ScanSpec("fm", 2.4e6, 0.01, 20.7), calibration_db=-5.0, ppm=12.5)
    assert {m.freq_hz for m in found} == set(_fm_truth("roof-nw"))
    assert all("pilot" not in m.features and m.snr_db > 0 for m in found)


def test_monitor_sweep_decodes_rds_and_the_node_publishes_it():
    """A node with an FM power sweep and an FM monitor scan (1 s dwells on occupied hops)
    publishes each licensed station's PI and PS; the black radios are mono or without RDS."""
    src = SimulatedSource(WORLD, "roof-se", seed=3)
    out = []
    cfg = SensorConfig("roof-se", "sim:roof-se", max_scans=1, ppm=1.7, track_ppm=False,
                       scans=(FM_SWEEP, ScanSpec("fm", 2.4e6, 1.0, 20.7, decode=True)))
    SensorNode(cfg, src, SourcePosition(src), out.append).run()
    dets = [r for r in out if isinstance(r, Detection)]
    monitor = {d.freq_hz: d.features for d in dets if d.features.get("capture_s") == 1.0}
    truth = _fm_truth("roof-se")
    assert set(monitor) <= set(truth) and len(monitor) >= 3
    for f_hz, feats in monitor.items():
        em, _ = truth[f_hz]
        if em.rds_pi is not None:
            assert feats["rds_pi"] == f"{em.rds_pi:04X}" and feats["rds_ps"] == em.rds_ps and feats["rds"] is True
            assert feats["rds_block_errors"] == 0 and feats["rds_groups"] >= 8
        else:
            assert feats["rds_pi"] is None and feats["rds"] is False
        assert feats["pilot"] == em.stereo


class FmAir(IQSource):
    """A receiver on a synthetic FM band whose front end makes third-order products (the
    simulator's model), so the gain test can be seen at work."""

    realtime = False

    def __init__(self, stations, noise_dbfs=-75.0, calibration_db=-5.0):
        super().__init__()
        self.stations = stations  # (freq_hz, power_dbm, stereo, rds)
        self.noise_dbfs = noise_dbfs
        self.calibration_db = calibration_db
        self.t_s = 0.0
        self.rng = np.random.default_rng(8)

    def tune(self, center_freq_hz, sample_rate_hz=None, gain_db=None):
        self.center_freq_hz = center_freq_hz
        self.sample_rate_hz = sample_rate_hz or self.sample_rate_hz
        self.gain_db = self.gain_db if gain_db is None else gain_db

    def read(self, n):
        fs, lo, g = self.sample_rate_hz, self.center_freq_hz, self.gain_db
        to_dbfs = g - self.calibration_db
        t = np.arange(n) / fs
        sigma = np.sqrt(10 ** (self.noise_dbfs / 10) / 2)
        x = (sigma * (self.rng.standard_normal(n) + 1j * self.rng.standard_normal(n))).astype(np.complex64)

        def wave_of(i):
            f, p, stereo, rds = self.stations[i]
            return fm_broadcast_iq(self.t_s, n, fs, stereo=stereo, rds=rds, audio_seed=i)

        for i, (f, p, _, _) in enumerate(self.stations):
            if abs(f - lo) < fs / 2 + 150e3:
                amp = 10 ** ((p + to_dbfs) / 20)
                x += (amp * wave_of(i) * np.exp(2j * np.pi * (f - lo) * (t + self.t_s))).astype(np.complex64)
        x += receiver_intermod_iq([(f, p) for f, p, _, _ in self.stations], wave_of, lo_hz=lo, sample_rate_hz=fs,
                                  t_s=self.t_s, n_samples=n, gain_db=g, to_dbfs_db=to_dbfs)
        self.t_s += n / fs
        return IQBlock(complex_to_cu8(x), lo, fs, g, 1.7e9 + self.t_s, 0, "cu8")


def test_gain_test_tells_intermodulation_from_a_station():
    """Two strong stations make products at 2 f1 - f2 = 96.7 MHz and 2 f2 - f1 = 97.9 MHz; a
    real (weak) station also sits on 97.9 MHz. The product's level moves 2 dB per dB of gain
    and is judged intermod; the real station's stays put and is judged on its licence."""
    air = FmAir([(97.1e6, -42.0, True, RdsConfig(0xC201, "CNR-1   ")), (97.5e6, -43.0, True, None),
                 (97.9e6, -70.0, False, None)])
    found, _ = scan_band(air, ScanSpec("fm", 2.4e6, 0.05, 30.0), calibration_db=-5.0)
    by_f = {m.freq_hz: m for m in found}
    assert {96.7e6, 97.1e6, 97.5e6, 97.9e6} <= set(by_f)
    im, real = by_f[96.7e6], by_f[97.9e6]
    assert im.features["gain_slope_db_per_db"] == pytest.approx(2.0, abs=0.5)
    assert abs(real.features["gain_slope_db_per_db"]) < 0.5
    assert "gain_slope_db_per_db" not in by_f[97.1e6].features
    registry = [FmStation(97.1e6, "CNR-1", "C201", 22.5, 114.0, None, "L1"),
                FmStation(97.5e6, "Other", None, 22.5, 114.0, None, "L2")]
    carriers = [(m.freq_hz, m.power_dbm) for m in found]
    verdicts = {f: fm_verdict(FmObservation.from_features(f, m.power_dbm, m.snr_db, m.features), registry,
                              carriers=carriers).verdict for f, m in by_f.items()}
    assert verdicts[96.7e6] == "intermod" and verdicts[97.9e6] == "unlicensed"
    assert verdicts[97.1e6] == verdicts[97.5e6] == "licensed"


def test_monitor_sweep_attaches_evidence_on_request(tmp_path):
    air = FmAir([(97.1e6, -45.0, True, RdsConfig(0xC201, "CNR-1   ")), (98.9e6, -55.0, False, None)])
    found, _ = decode_fm_band(air, ScanSpec("fm", 2.4e6, 0.6, 20.0, decode=True), calibration_db=-5.0,
                              near_freqs_hz=[97.1e6, 98.9e6], evidence_dir=tmp_path, evidence_seconds=0.25,
                              position=(22.5, 114.0))
    assert [m.freq_hz for m in found] == [97.1e6, 98.9e6]
    assert found[0].features["rds_pi"] == "C201" and found[1].features["rds"] is False
    for m in found:
        with wave.open(m.features["evidence_wav"]) as w:
            assert w.getnframes() == pytest.approx(0.25 * 48000, rel=0.02)
        iq = RecordingSource(m.features["evidence_iq"])
        assert iq.center_freq_hz == m.freq_hz and iq.remaining_samples == int(0.25 * iq.sample_rate_hz)
        iq.close()


def test_station_features_say_what_a_capture_can_tell():
    x = fm_broadcast_iq(0.0, int(2.4e6 * 0.6), 2.4e6, stereo=False)
    an = scan_capture(x, 2.4e6, 98e6)
    (st,) = an.stations
    long = station_features(st, 0.6)
    assert long["rds"] is False and long["rds_groups"] == 0 and long["pilot"] is False
    assert long["pilot_snr_db"] is None and long["deviation_khz"] > 60
    assert station_features(st, 0.05)["rds"] is None and station_features(st, 0.05)["rds_groups"] is None
    assert all(not isinstance(v, float) or np.isfinite(v) for v in long.values())


@requires(BAND)
def test_evidence_audio_and_iq(tmp_path):
    src = RecordingSource(BAND)
    block = src.read(int(1.5 * src.sample_rate_hz))
    src.close()
    an = scan_capture(block.samples, block.sample_rate_hz, block.center_freq_hz, keep_baseband=True)
    wav, meta = write_evidence(tmp_path / "ev", an, 0, capture_center_hz=block.center_freq_hz, t_utc=block.t_utc,
                               seconds=1.0, position=(22.54, 114.05))
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48000)
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float)
    assert audio.size == pytest.approx(48000, rel=0.01)
    # CNR-1's programme: tones at 220, 330 and 440 Hz (and 1 kHz on the right channel) stand out
    spec = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    f = np.fft.rfftfreq(audio.size, 1 / 48000)
    strongest = f[np.argsort(spec)[::-1][:60]]
    for tone in (220, 330, 440):
        assert np.any(np.abs(strongest - tone) < 3), tone
    iq = RecordingSource(meta)
    assert iq.center_freq_hz == 97.1e6 and iq.sample_rate_hz == pytest.approx(2.4e6 / 9)
    assert iq.remaining_samples == int(iq.sample_rate_hz)
    assert "97.1 MHz" in json.loads(meta.read_text())["global"]["core:description"]
    iq.close()
    with pytest.raises(RecordingError, match="keep_baseband"):
        write_evidence(tmp_path, scan_capture(block.samples, block.sample_rate_hz, block.center_freq_hz), 0,
                       capture_center_hz=block.center_freq_hz, t_utc=block.t_utc)


@requires(BAND)
def test_cli_scan_fm_jsonl_against_a_registry(tmp_path, capsys):
    reg = tmp_path / "registry.csv"
    reg.write_text("frequency_hz,name,pi,lat,lon,erp_w,licence\n"
                   "97100000,CNR-1,C201,22.54,114.05,10000,GD-001\n"
                   "98400000,GDRADIO,C3A4,22.60,114.10,,GD-002\n", encoding="utf-8")
    assert main(["scan", "fm", str(BAND), "--registry", str(reg), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    keys = ["type", "freq_hz", "power_dbm", "snr_db", "deviation_khz", "pilot", "rds_pi", "rds_ps", "verdict",
            "reasons"]
    assert all(list(r) == keys and r["type"] == "fm_station" for r in rows)
    got = [(r["freq_hz"], r["pilot"], r["rds_pi"], r["rds_ps"], r["verdict"]) for r in rows]
    assert got == [(97.1e6, True, "C201", "CNR-1   ", "licensed"),
                   (98.4e6, True, "C3A5", "GDRADIO ", "suspicious"),  # the registry says C3A4
                   (98.9e6, False, None, None, "unlicensed")]
    assert any("C3A4" in why for why in rows[1]["reasons"])
    assert rows[2]["deviation_khz"] > 82.5 and any("over-deviated" in why for why in rows[2]["reasons"])
    assert main(["scan", "fm", str(BAND), "--format", "jsonl", "--details", "--seconds", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["verdict"] == "unknown" and rows[0]["features"]["rds_snr_db"] > 10


@pytest.mark.parametrize("args, words", [
    (["--registry", "{bad}"], "column 'pi'"),
    (["--lat", "22.5"], "--lat and --lon"),
])
def test_cli_scan_fm_user_errors(tmp_path, capsys, args, words):
    bad = tmp_path / "bad.csv"
    bad.write_text("frequency_hz,name,pi,lat,lon,erp_w,licence\n97100000,X,XYZ,22,114,,L\n", encoding="utf-8")
    args = [str(bad) if a == "{bad}" else a for a in args]
    assert main(["scan", "fm", str(BAND), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rfhunt: error:") and words in err
