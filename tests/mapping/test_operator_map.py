"""The operator map: heatmaps, coverage, drive and emitter tracks, time filter, offline
assets, ``rfhunt map --watch``, and the page in Chromium."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collector.store import Store
from mapping.assets import PLUGIN_FILES, remote_references
from mapping.folium_map import render_map
from mapping.layers import detection_heat, heat_frames, parse_time, power_heat
from rfhunt.errors import ConfigError
from rfhunt.records import Detection
from tests.mapping import browser
from tests.mapping.test_case import _moving_store
from tests.mapping.test_folium_map import T0, filled_store


def local_files_exist(page: Path) -> list[str]:
    """Every script / stylesheet the page loads, and each ``url()`` of those stylesheets,
    relative to the page; returns those missing."""
    html = page.read_text()
    missing = []
    for ref in re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"', html):
        p = page.parent / ref
        if not p.exists():
            missing.append(ref)
        elif p.suffix == ".css":
            for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", p.read_text()):
                f = p.parent / u.split("?")[0].split("#")[0]
                # older font formats are fallbacks: the shipped .woff2 is what browsers load
                if not u.startswith("data:") and not f.exists() and not f.with_suffix(".woff2").exists():
                    missing.append(f"{ref} -> {u}")
    return missing


@pytest.mark.slow
def test_operator_map_layers_of_the_simulated_city(city, tmp_path):
    with Store.open(city.url) as store:
        dets = store.detections()
        out = render_map(store, tmp_path / "ops" / "map.html", tiles=None, time_step_s=60.0)
    html = out.read_text()
    # offline: nothing from another host, every loaded file shipped beside the page
    assert remote_references(html) == [] and "https://" not in html and "http://" not in html
    assert local_files_exist(out) == []
    # heatmaps: detections, and received power per band (the city's sensors hear GSM downlink)
    bands = sorted({d.kind for d in dets})
    assert html.count("L.heatLayer(") == 1 + len(bands)
    assert html.count("Received power: GSM") == len(bands)   # layer names (folium writes the Chinese as \\u escapes)
    # detections over time: one frame per minute, labelled in UTC
    assert "new HeatmapOverlay" in html and "L.TimeDimension" in html
    labels = re.findall(r"""['"](\d{4}-\d\d-\d\dT\d\d:\d\d\+00:00)['"]""", html)
    ts = [d.t_utc for d in dets]
    assert len(labels) == int((max(ts) - min(ts)) // 60) + 1 >= 5
    # coverage: a circle per sensor that heard a located emitter; the car's drive track
    assert html.count("L.circle(") == 5
    assert html.count("L.polyline(") >= 1 and "track of car-1" in html
    for name in ("Detections heatmap", "Sensor coverage", "Emitter tracks", "Detections over time"):
        assert name in html


def test_heat_points_and_frames_from_known_detections():
    def det(i, lat, lon, p, t):
        from collector.store import DetectionRow
        return DetectionRow(i, "s", i, t, lat, lon, "fm", 1e8, None, 2e5, p, 20.0, {}, None)

    dets = [det(1, 45.0, 7.0, -80.0, T0), det(2, 45.0, 7.0, -60.0, T0 + 10), det(3, 45.01, 7.0, -70.0, T0 + 130),
            det(4, 45.02, 7.0, -65.0, T0 + 135)]
    assert detection_heat(dets) == [[45.0, 7.0, 1.0], [45.01, 7.0, 0.5], [45.02, 7.0, 0.5]]
    # the strongest power per cell, -70 dBm -> 0.05, -60 dBm -> 1
    assert power_heat(dets) == [[45.0, 7.0, 1.0], [45.01, 7.0, 0.05], [45.02, 7.0, pytest.approx(0.525)]]
    frames, labels = heat_frames(dets, step_s=60.0)
    assert [len(f) for f in frames] == [1, 0, 2] and labels == ["2025-06-15T15:06+00:00", "2025-06-15T15:07+00:00",
                                                                 "2025-06-15T15:08+00:00"]


def test_time_filter_keeps_what_was_seen_in_the_window(tmp_path):
    with filled_store(f"sqlite:///{tmp_path / 'f.db'}") as store:
        everything = render_map(store, tmp_path / "all.html", tiles=None).read_text()
        late = render_map(store, tmp_path / "late.html", tiles=None, since_utc=T0 + 1.5).read_text()
        early = render_map(store, tmp_path / "early.html", tiles=None, until_utc=T0 + 0.5).read_text()
    assert everything.count("L.marker(") == 5
    assert late.count("L.marker(") == 3 and "FM broadcast" in late and "ARFCN 62" not in late   # 1 emitter + 2 sensors
    assert early.count("L.marker(") == 3 and "ARFCN 62" in early and "goip_suspect" not in early
    # the drive track keeps only its points inside the window (car1 at T0, T0+60, T0+120)
    assert late.count("L.polyline(") == 1 and "45.065, 7.67" in late and "45.06, 7.66" not in late
    assert "2025-06-15T15:06 — … UTC" in late


def test_parse_time_forms():
    now = 1_750_000_000.0
    assert parse_time("2h", now) == now - 7200 and parse_time("30m", now) == now - 1800
    assert parse_time("1750000000", now) == now
    assert parse_time("2025-06-15T15:06:40Z", now) == now == parse_time("2025-06-15T15:06:40", now)
    assert parse_time("2025-06-15T17:06:40+02:00", now) == now
    with pytest.raises(ConfigError, match="'yesterday'"):
        parse_time("yesterday", now)


def test_a_moving_emitter_gets_a_track_on_the_operator_map(tmp_path):
    store, eid, _ = _moving_store(f"sqlite:///{tmp_path / 'mv.db'}", 5.0)
    with store:
        html = render_map(store, tmp_path / "mv.html", tiles=None).read_text()
    assert f"emitter {eid}: 轨迹 / track, 5 fixes" in html


def test_plugins_never_fall_back_to_a_cdn():
    from folium.plugins import HeatMap, HeatMapWithTime, MarkerCluster

    from mapping.assets import use_local_plugin_assets
    from rfhunt.errors import RfhuntError

    for plugin in (HeatMap([[45.0, 7.0]]), HeatMapWithTime([[[45.0, 7.0]]])):
        use_local_plugin_assets(plugin)
        for _, url in [*plugin.default_js, *plugin.default_css]:
            assert url.startswith("rfhunt-assets/") and (Path("mapping/static") / url.split("/", 1)[1]).exists()
    assert set(PLUGIN_FILES) >= {n for n, _ in HeatMapWithTime.default_js}
    with pytest.raises(RfhuntError, match="MarkerCluster needs"):
        use_local_plugin_assets(MarkerCluster())


@pytest.mark.slow
def test_map_watch_regenerates_until_stopped(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    filled_store(url).close()
    out = tmp_path / "live" / "map.html"
    proc = subprocess.Popen([sys.executable, "-m", "rfhunt.cli", "map", "--db", url, "--out", str(out), "--tiles",
                             "none", "--watch", "0.5", "--since", "2025-06-15T15:00:00Z"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.exists()
        assert '<meta http-equiv="refresh" content="1">' in out.read_text()
        with Store.open(url) as store:   # the collector stores a new emitter ...
            store.add_detection(Detection("fixed1", 99, T0 + 30, 45.07, 7.68, "fm", 99.1e6, None, 200e3, -50.0, 30.0))
            eid = store.get_or_create_emitter("fm:99100000", "fm", 99.1e6, None)
            store.assign_detections(eid, [d.id for d in store.detections(unassociated=True)])
            store.update_emitter(eid, lat=45.09, lon=7.70, verdict="unlicensed")
        while "unlicensed" not in out.read_text() and time.monotonic() < deadline:   # ... the map follows
            time.sleep(0.1)
        assert "unlicensed" in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "stopped watching" in stdout and "Traceback" not in stderr
    assert not list(out.parent.glob(".*.tmp"))   # written by rename: no half page left behind


def test_map_watch_refuses_a_bad_period(tmp_path, capsys):
    from rfhunt.cli import main

    assert main(["map", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--watch", "0"]) == 2
    assert "--watch 0.0" in capsys.readouterr().err


@pytest.mark.external
@pytest.mark.slow
@pytest.mark.skipif(browser.CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_operator_map_in_chromium_draws_heatmap_markers_and_time_player(city, tmp_path):
    with Store.open(city.url) as store:
        n_emitters = sum(e.lat is not None for e in store.emitters())
        n_sensors = len(store.sensors())
        n_rogue = sum(e.verdict == "rogue" and e.semi_major_m is not None for e in store.emitters())
        plain = render_map(store, tmp_path / "plain" / "map.html", tiles=None, analysis=False)
        page = render_map(store, tmp_path / "ops" / "map.html", tiles=None)
    dom, log = browser.dom(page)
    assert len(re.findall(r'class="awesome-marker-icon-[a-z]+ awesome-marker', dom)) == n_emitters + n_sensors
    assert "leaflet-heatmap-layer" in dom                      # Leaflet.heat's canvas
    assert len(re.findall(r'<path[^>]*stroke="#d62728"', dom)) == n_rogue   # the rogue cells' ellipses
    assert "timecontrol-play" in dom and "leaflet-control-layers" in dom
    assert "检测热力图 / Detections heatmap" in dom and "接收功率 / Received power: GSM 下行 / downlink" in dom
    img, log2 = browser.screenshot(page, tmp_path / "ops.png")
    img0, log3 = browser.screenshot(plain, tmp_path / "plain.png")
    assert browser.js_errors(log + log2 + log3) == []

    # Leaflet.heat's blobs are the only difference in the map away from the controls (layer
    # list top right, time player bottom left): same data, same bounds, other layers hidden
    changed = np.abs(img.astype(int) - img0.astype(int)).sum(axis=2) > 30
    assert changed[80:690, :550].sum() > 2000
    # the time player's icons come from the shipped Font Awesome (the Glyphicons CDN font is gone)
    css = (page.parent / "rfhunt-assets/timedimension/leaflet.timedimension.control.offline.css").read_text()
    assert not re.search(r"@font-face\s*{", css) and remote_references(css) == []

