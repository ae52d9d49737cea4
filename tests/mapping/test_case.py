"""The police case folder: export from a store the real pipeline filled, structure of its
GeoJSON / KML / SigMF, the manifest and tamper detection, the CLI, and the page in Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from collector.evidence import evidence_for_emitter, read_evidence
from collector.store import Store
from mapping.case import MANIFEST, CaseError, export_case, verify_case
from mapping.geoexport import emitter_track, track_moved
from rfhunt.cli import main
from rfhunt.geo import distance_m, from_enu
from rfhunt.records import Detection
from tests.mapping import browser
from tests.mapping.geo_checks import check_geojson, check_kml

pytestmark = pytest.mark.slow   # the simulated city takes several seconds to build


@pytest.fixture(scope="module")
def case_dir(city, tmp_path_factory):
    out = tmp_path_factory.mktemp("cases") / "case"
    with Store.open(city.url) as store:
        export_case(store, city.rogue_ids[0], out, now_utc=city.scenario.start_utc + 3600.0)
    return out


def test_the_city_gives_a_located_rogue_with_evidence(city):
    assert city.rogue_ids, "the simulated city's fake base stations were not judged rogue"
    assert len(city.evidence_ids) == 2


def test_case_folder_contents_geojson_kml_and_sigmf(city, case_dir):
    with Store.open(city.url) as store:
        em = store.emitter(city.rogue_ids[0])
        dets = store.detections(emitter_id=em.id)
        evs = evidence_for_emitter(store, em.id)
        samples = {ev.id: read_evidence(store, ev) for ev in evs}
    files = sorted(p.relative_to(case_dir).as_posix() for p in case_dir.rglob("*") if p.is_file())
    for name in ("case.html", "case.geojson", "case.kml", "detections.csv", "spectrum.png", "waterfall.png",
                 MANIFEST, "rfhunt-assets/leaflet/leaflet.js"):
        assert name in files
    # the manifest covers every other file, in sha256sum format
    listed = {}
    for line in (case_dir / MANIFEST).read_text().splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    assert sorted(listed) == [f for f in files if f != MANIFEST]
    assert listed["case.kml"] == hashlib.sha256((case_dir / "case.kml").read_bytes()).hexdigest()
    assert verify_case(case_dir) == []

    # GeoJSON: RFC 7946, [lon, lat], the emitter, its ellipse and every sensor that heard it
    roles = check_geojson(json.loads((case_dir / "case.geojson").read_text()))
    (point,) = roles["emitter"]
    assert point["geometry"]["coordinates"] == [em.lon, em.lat]
    assert point["properties"]["verdict"] == "rogue" and point["properties"]["identity"] == em.identity
    (ellipse,) = roles["ellipse95"]
    ring = np.array(ellipse["geometry"]["coordinates"][0])
    assert abs(ring[:, 0].mean() - em.lon) < 0.05 and abs(ring[:, 1].mean() - em.lat) < 0.05
    assert sorted(f["properties"]["sensor_id"] for f in roles["sensor"]) == sorted({d.sensor_id for d in dets})

    # KML: the same geometry
    kml = check_kml((case_dir / "case.kml").read_text())
    assert len(kml["LinearRing"]) == 1 and len(kml["LinearRing"][0]) == len(ring)
    assert np.allclose(kml["LinearRing"][0], ring[:, :2], atol=1e-6)
    assert any(np.allclose(c[0][:2], [em.lon, em.lat], atol=1e-6) for c in kml["Point"])
    assert len(kml["Point"]) == 1 + len(roles["sensor"])

    # SigMF evidence: the stored bytes, with the sensor's position and the SHA-512
    metas = sorted((case_dir / "evidence").glob("*.sigmf-meta"))
    assert len(metas) == len(evs) == 2
    for meta_path, ev in zip(metas, evs):
        meta = json.loads(meta_path.read_text())
        g = meta["global"]
        data = meta_path.with_suffix(".sigmf-data").read_bytes()
        assert g["core:datatype"] == "cf32_le" and g["core:sample_rate"] == ev.sample_rate_hz
        assert g["core:sha512"] == hashlib.sha512(data).hexdigest() == ev.sha512
        assert g["core:geolocation"] == {"type": "Point", "coordinates": [ev.lon, ev.lat]}
        assert meta["captures"][0]["core:frequency"] == ev.center_freq_hz
        assert np.array_equal(np.frombuffer(data, "<c8"), samples[ev.id])

    # the page: bilingual, offline, showing the identity, indicators and pictures
    page = (case_dir / "case.html").read_text()
    assert "http://" not in page and "https://" not in page
    for text in ("身份与判定 / Identity and verdict", "指标与证据 / Indicators and evidence", "时间线 / Timeline",
                 "频谱与瀑布图 / Spectrum and waterfall", em.identity, "src='spectrum.png'", "src='waterfall.png'"):
        assert text in page
    assert page.count("<circle ") == len(dets)               # one timeline dot per detection
    assert page.count('class="evidence-tick"') == 2
    for ind in em.indicators:
        assert ind["name"] in page


def test_the_waterfall_shows_the_emitters_carrier(case_dir):
    img = browser.read_png((case_dir / "waterfall.png").read_bytes())
    # the evidence is tuned to the cell: its 200 kHz around the centre is the brightest part
    warm = img[:, :, 0].astype(float) - img[:, :, 2]        # red minus blue: hot colours
    w = img.shape[1]
    centre, edges = warm[:, int(w * 0.45):int(w * 0.55)].mean(), np.r_[warm[:, :w // 8], warm[:, -w // 8:]].mean()
    assert centre > edges + 50


@pytest.mark.parametrize("tamper, expect", [
    ("modify", "changed: case.kml"),
    ("modify_evidence", "changed: evidence/ev"),
    ("delete", "missing: detections.csv"),
    ("add", "extra: evidence/note.txt"),
    ("manifest", "bad manifest line"),
    ("resign", "changed: evidence/ev"),
])
def test_tampering_makes_verify_fail_and_names_the_file(case_dir, tmp_path, capsys, tamper, expect):
    d = tmp_path / "copy"
    shutil.copytree(case_dir, d)
    data = sorted((d / "evidence").glob("*.sigmf-data"))[0]
    if tamper == "modify":
        p = d / "case.kml"
        b = bytearray(p.read_bytes())
        b[200] ^= 0x01
        p.write_bytes(bytes(b))
    elif tamper == "modify_evidence":
        b = bytearray(data.read_bytes())
        b[-1] ^= 0x80
        data.write_bytes(bytes(b))
    elif tamper == "delete":
        (d / "detections.csv").unlink()
    elif tamper == "add":
        (d / "evidence" / "note.txt").write_text("x")
    elif tamper == "manifest":
        with (d / MANIFEST).open("a") as f:
            f.write("not a manifest line\n")
    elif tamper == "resign":   # altered IQ and a regenerated manifest: the SigMF hash still tells
        from mapping.case import write_manifest

        b = bytearray(data.read_bytes())
        b[0] ^= 0x01
        data.write_bytes(bytes(b))
        write_manifest(d)
    problems = verify_case(d)
    hits = [p for p in problems if p.startswith(expect)]
    assert len(hits) >= 1, problems
    if tamper == "modify_evidence":
        assert any(p == f"changed: evidence/{data.name}" for p in problems), problems
    if tamper == "resign":   # the manifest matches again; the SigMF SHA-512 does not
        assert problems == [f"changed: evidence/{data.name} (SHA-512 differs from {data.stem}.sigmf-meta)"]
    else:                    # only the tampered file is named
        assert all(data.name in p or p.startswith(expect) for p in problems), problems
    assert main(["case", "verify", str(d)]) == 1
    err = capsys.readouterr().err
    assert hits[0] in err and "FAILED" in err


def test_cli_export_and_verify(city, tmp_path, capsys):
    out = tmp_path / "cli-case"
    r = subprocess.run([sys.executable, "-m", "rfhunt.cli", "case", "export", str(city.rogue_ids[-1]), "--out", str(out),
                        "--db", city.url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "case.html").exists() and (out / MANIFEST).exists()
    assert main(["case", "verify", str(out)]) == 0 and "OK" in capsys.readouterr().out
    # a folder already used, an unknown emitter, a folder without manifest: one line, exit 2 or 1
    for args, code, words in [
        (["export", str(city.rogue_ids[-1]), "--out", str(out), "--db", city.url], 2, "not empty"),
        (["export", "999999", "--out", str(tmp_path / "n"), "--db", city.url], 2, "no emitter with id 999999"),
        (["verify", str(tmp_path)], 1, f"missing: {MANIFEST}"),
    ]:
        assert main(["case", *args]) == code
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err


def test_export_refuses_a_non_empty_folder_and_an_unknown_emitter(city, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with Store.open(city.url) as store:
        with pytest.raises(CaseError, match="not empty"):
            export_case(store, city.rogue_ids[0], tmp_path / "used")
        with pytest.raises(CaseError, match="no emitter with id 424242"):
            export_case(store, 424242, tmp_path / "new")


# ----------------------------------------------------------------------------- moving emitter
T0 = 1_750_000_000.0
LAT0, LON0 = 45.07, 7.68


def _moving_store(url: str, speed_mps: float, seed: int = 3) -> tuple[Store, int, np.ndarray]:
    """Nine fixed sensors on a 1.5 km grid hear an emitter driving east at ``speed_mps`` for
    10 min (log-distance n = 3, 2 dB noise); returns the store, the emitter and its true path."""
    rng = np.random.default_rng(seed)
    store = Store.open(url)
    gx, gy = np.meshgrid([-1500.0, 0.0, 1500.0], [-1500.0, 0.0, 1500.0])
    slat, slon = from_enu(gx.ravel(), gy.ravel(), LAT0, LON0)
    ts = np.arange(0.0, 600.0, 20.0)
    east = -1500.0 + speed_mps * ts
    tlat, tlon = from_enu(east, np.zeros_like(east), LAT0, LON0)
    recs, seq = [], 0
    for k, t in enumerate(ts):
        d = np.hypot(gx.ravel() - east[k], gy.ravel())
        p = -10.0 - 30.0 * np.log10(np.maximum(d, 1.0)) + rng.normal(0, 2.0, d.size)
        for i in range(d.size):
            seq += 1
            recs.append(Detection(f"s{i}", seq, T0 + t, float(slat[i]), float(slon[i]), "gsm_downlink", 947.4e6, 62,
                                  200e3, float(p[i]), 20.0))
    store.add_batch(recs)
    eid = store.get_or_create_emitter("gsm_downlink:arfcn:62", "gsm_downlink", 947.4e6, 62)
    store.assign_detections(eid, [d.id for d in store.detections()])
    store.update_emitter(eid, lat=float(tlat[-1]), lon=float(tlon[-1]), semi_major_m=400.0, semi_minor_m=200.0,
                         orientation_deg=90.0, verdict="rogue", path_loss_exponent=3.0)
    return store, eid, np.c_[ts, tlat, tlon]


@pytest.mark.parametrize("speed_mps, moved", [(5.0, True), (0.0, False)])
def test_track_of_a_moving_emitter(tmp_path, speed_mps, moved):
    store, eid, truth = _moving_store(f"sqlite:///{tmp_path / 'mv.db'}", speed_mps)
    with store:
        track = emitter_track(store.detections(emitter_id=eid), path_loss_exponent=3.0)
        assert len(track) == 5                      # 600 s in 120 s windows
        assert track_moved(track) is moved
        if moved:   # each fix within its 95 % ellipse of the true position at its time; going east
            for t, lat, lon, semi_major_m in track:
                true_lat, true_lon = (np.interp(t - T0, truth[:, 0], truth[:, k]) for k in (1, 2))
                assert distance_m(lat, lon, true_lat, true_lon) < semi_major_m
            assert distance_m(track[0][1], track[0][2], track[-1][1], track[-1][2]) > 1500.0
            assert track[-1][2] > track[0][2]
        out = tmp_path / "case"
        export_case(store, eid, out)
    roles = check_geojson(json.loads((out / "case.geojson").read_text()))
    kml = check_kml((out / "case.kml").read_text())
    if moved:
        (line,) = roles["track"]
        assert [c for c in line["geometry"]["coordinates"]] == [[lon, lat] for _, lat, lon, _ in track]
        assert len(kml["LineString"]) == 1 and np.allclose(kml["LineString"][0], line["geometry"]["coordinates"])
    else:
        assert "track" not in roles and kml["LineString"] == []
    assert "无IQ证据 / no IQ evidence" in (out / "case.html").read_text()
    assert verify_case(out) == []


# ----------------------------------------------------------------------------- in Chromium
@pytest.mark.external
@pytest.mark.skipif(browser.CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_case_page_in_chromium_draws_map_markers_and_ellipse(city, case_dir, tmp_path):
    with Store.open(city.url) as store:
        em = store.emitter(city.rogue_ids[0])
        n_sensors = len({d.sensor_id for d in store.detections(emitter_id=em.id)})
    page = case_dir / "case.html"
    dom, log = browser.dom(page)
    # Leaflet ran: the emitter's and each sensor's awesome-marker, the ellipse as an SVG path
    assert dom.count("awesome-marker-icon-") == 1 + n_sensors, log[-2000:]
    assert 'stroke="#d62728"' in dom and "leaflet-interactive" in dom
    # the ellipse as Leaflet drew it (SVG path, page pixels): its area and perimeter on screen
    (d,) = re.findall(r'<path[^>]*stroke="#d62728"[^>]*\sd="([^"]+)"', dom) or re.findall(
        r'<path[^>]*\sd="([^"]+)"[^>]*stroke="#d62728"', dom)
    xy = np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]).reshape(-1, 2)
    area_px = 0.5 * abs(np.sum(xy[:-1, 0] * xy[1:, 1] - xy[1:, 0] * xy[:-1, 1]))
    perimeter_px = float(np.sum(np.hypot(*np.diff(np.r_[xy, xy[:1]], axis=0).T)))
    assert area_px > 500, "the ellipse is too small on screen to check"
    img, log2 = browser.screenshot(page, tmp_path / "case.png")
    assert browser.js_errors(log + log2) == []
    map_area = img[80:530]                                   # under the header, the 460 px map
    # its outline (#d62728) and its fill (#d62728 at 25 % over Leaflet's #ddd) are on screen;
    # markers hide part of a small one
    assert browser.colour_pixels(map_area, (214, 39, 40), tol=3) > 0.4 * perimeter_px
    assert browser.colour_pixels(map_area, (219, 175, 175), tol=3) > 0.25 * area_px
    # grey sensor markers (awesome-markers' gray sprite) and no tiles: the background is #ddd
    assert browser.colour_pixels(map_area, (87, 87, 87), tol=3) > 50 * n_sensors
    assert browser.colour_pixels(map_area, (221, 221, 221), tol=0) > 0.5 * map_area.shape[0] * map_area.shape[1]


def test_hostile_text_stays_inert_in_every_case_file(tmp_path):
    from collector.evidence import add_evidence
    from tests.mapping.test_folium_map import HOSTILE

    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        for i, (lat, lon) in enumerate([(45.07, 7.68), (45.08, 7.70), (45.06, 7.69)]):
            store.add_detection(Detection(f"{HOSTILE}{i}", 1, T0 + i, lat, lon, "gsm_downlink", 947.4e6, 62, 200e3,
                                          -60.0 - i, 20.0, {"mcc": "460", "mnc": "00", "lac": HOSTILE, "cid": "1"}))
        eid = store.get_or_create_emitter("k", "gsm_downlink", 947.4e6, 62)
        store.assign_detections(eid, [d.id for d in store.detections()])
        store.update_emitter(eid, lat=45.07, lon=7.69, semi_major_m=500.0, semi_minor_m=200.0, orientation_deg=20.0,
                             verdict=HOSTILE, reasons=[HOSTILE], identity=HOSTILE,
                             indicators=[{"name": HOSTILE, "weight": 1.0, "reason": HOSTILE, "evidence": {"x": HOSTILE}}])
        add_evidence(store, store.detections()[0].id, np.ones(4096, np.complex64), sample_rate_hz=1e6,
                     center_freq_hz=947.4e6)
        out = tmp_path / "case"
        export_case(store, eid, out)
    page = (out / "case.html").read_text()
    assert "alert(document.cookie)" in page                                  # shown ...
    assert "<img" not in page.replace("<img id='spectrum'", "").replace("<img id='waterfall'", "")
    assert "${alert" not in page and "`${" not in page                       # ... and inert
    check_kml((out / "case.kml").read_text())                                 # still well-formed XML
    assert json.loads((out / "case.geojson").read_text())["features"][0]["properties"]["identity"] == HOSTILE
    names = [p.name for p in (out / "evidence").iterdir()]
    assert len(names) == 2 and all(re.fullmatch(r"[A-Za-z0-9_.-]+", n) for n in names)   # safe file names
    assert verify_case(out) == []


def test_audio_evidence_comes_with_a_wav_to_listen_to(tmp_path):
    """A black radio's demodulated audio is in the case as the stored float32 and as a 16-bit
    WAV at its rate that any player opens, both named in the manifest."""
    import wave

    from collector.evidence import add_evidence

    t = np.arange(48_000) / 48_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        for i, (lat, lon) in enumerate([(22.53, 114.05), (22.54, 114.06), (22.55, 114.05)]):
            store.add_detection(Detection(f"s{i}", 1, T0 + i, lat, lon, "fm", 93.6e6, None, 200e3, -60.0 - i, 30.0,
                                          {"pilot": False}))
        eid = store.get_or_create_emitter("fm:93.6", "fm", 93.6e6, None)
        store.assign_detections(eid, [d.id for d in store.detections()])
        store.update_emitter(eid, lat=22.54, lon=114.055, semi_major_m=400.0, semi_minor_m=300.0,
                             orientation_deg=0.0, verdict="unlicensed", reasons=["no licence at 93.6 MHz"])
        ev = add_evidence(store, store.detections()[0].id, tone, sample_rate_hz=48_000, center_freq_hz=93.6e6,
                          kind="audio")
        out = tmp_path / "case"
        export_case(store, eid, out)
    (wav_path,) = (out / "evidence").glob("*.wav")
    with wave.open(str(wav_path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 48_000, 48_000)
        pcm = np.frombuffer(w.readframes(48_000), "<i2") / 32767
    assert np.max(np.abs(pcm - tone)) < 1e-4
    meta = json.loads(next((out / "evidence").glob("*.json")).read_text())
    assert meta["sha512"] == ev.sha512 and meta["listen"].startswith(wav_path.name)
    assert wav_path.relative_to(out).as_posix() in (out / MANIFEST).read_text()
    assert verify_case(out) == []
