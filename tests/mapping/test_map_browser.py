"""The map as a person sees it: rendered offline in headless Chromium (Debian's chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest

from mapping.folium_map import render_map
from tests.mapping.test_folium_map import filled_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0"]


@pytest.mark.external
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_map_renders_offline_with_markers_and_ellipses(tmp_path):
    with filled_store(f"sqlite:///{tmp_path / 'm.db'}") as store:
        out = render_map(store, tmp_path / "map.html", tiles=None)
    html = out.read_text()
    assert "https://" not in html and "http://" not in html  # no CDN, no tiles: works offline
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", out.as_uri()],
                           capture_output=True, text=True, timeout=120)
    dom = r.stdout
    # Leaflet ran and drew: 5 marker icons (3 emitters, 2 sensors), 2 ellipses and a track as SVG paths
    assert len(re.findall(r'class="awesome-marker-icon-[a-z]+ awesome-marker', dom)) == 5, r.stderr[-2000:]
    assert dom.count("<path") >= 3
    assert "leaflet-control-layers" in dom
    # Font Awesome loaded from the shipped assets: the icons are <i class="fa ...">
    assert "fa-satellite-dish" in dom and "fa-car" in dom
    errors = [line for line in r.stderr.splitlines() if "Uncaught" in line or "ERR_FILE_NOT_FOUND" in line]
    assert errors == []
