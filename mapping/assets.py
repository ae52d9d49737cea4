"""Offline map assets: Leaflet and the plugins folium's pages use, shipped inside rfhunt.

:func:`install_assets` copies them beside a map and :func:`use_local_assets` points a folium
map at the copies, so a page written by rfhunt references no CDN and renders without
internet (tiles aside: see ``tiles`` in :func:`mapping.folium_map.render_map`).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import folium

#: Folder written beside each map, holding the assets.
ASSET_DIR = "rfhunt-assets"

#: folium's names for its page dependencies -> the shipped file, relative to ``static/``.
JS = (
    ("leaflet", "leaflet/leaflet.js"),
    ("jquery", "jquery/jquery.min.js"),
    ("bootstrap", "bootstrap/bootstrap.bundle.min.js"),
    ("awesome_markers", "awesome-markers/leaflet.awesome-markers.min.js"),
)
CSS = (
    ("leaflet_css", "leaflet/leaflet.css"),
    ("bootstrap_css", "bootstrap/bootstrap.min.css"),
    ("awesome_markers_font_css", "fontawesome/css/all.min.css"),
    ("awesome_markers_css", "awesome-markers/leaflet.awesome-markers.css"),
)


def install_assets(out_dir: str | Path) -> Path:
    """Copy the shipped assets into ``out_dir/rfhunt-assets`` (replacing an older copy)."""
    dest = Path(out_dir) / ASSET_DIR
    src = resources.files("mapping").joinpath("static")
    with resources.as_file(src) as src_path:
        shutil.copytree(src_path, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    return dest


def use_local_assets(fmap: folium.Map) -> None:
    """Make ``fmap`` load its JavaScript and CSS from ``rfhunt-assets/`` beside the page.

    folium's icon-rotation stylesheet and the Bootstrap 3 glyphicons are left out: rfhunt's
    maps use Font Awesome icons and never rotate them.
    """
    fmap.default_js = [(name, f"{ASSET_DIR}/{path}") for name, path in JS]
    fmap.default_css = [(name, f"{ASSET_DIR}/{path}") for name, path in CSS]
