"""Offline map assets: Leaflet and the plugins folium's pages use, shipped inside rfhunt.

:func:`install_assets` copies them beside a map and :func:`use_local_assets` points a folium
map at the copies, so a page written by rfhunt references no CDN and renders without
internet (tiles aside: see ``tiles`` in :func:`mapping.folium_map.render_map`).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import re

import folium

from rfhunt.errors import RfhuntError

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


#: Page dependencies of the folium plugins rfhunt uses (HeatMap, HeatMapWithTime) -> shipped file.
PLUGIN_FILES = {
    "leaflet-heat.js": "leaflet-heat/leaflet-heat.min.js",
    "iso8601": "iso8601/iso8601.js",
    "leaflet.timedimension.min.js": "timedimension/leaflet.timedimension.min.js",
    "heatmap.min.js": "heatmapjs/pa7_hm.min.js",
    "leaflet-heatmap.js": "heatmapjs/pa7_leaflet_hm.min.js",
    "leaflet.timedimension.control.min.css": "timedimension/leaflet.timedimension.control.offline.css",
}
#: Extra stylesheet of the time player: its icons from the shipped Font Awesome.
TIMECONTROL_ICONS_CSS = ("rfhunt_timecontrol_icons", "rfhunt/timecontrol-icons.css")


def use_local_plugin_assets(element: folium.MacroElement) -> folium.MacroElement:
    """Make a folium plugin (HeatMap, HeatMapWithTime) load its scripts and styles from
    ``rfhunt-assets/``; returns ``element``.

    Raises
    ------
    RfhuntError
        If the plugin needs a file rfhunt does not ship (it would otherwise come from a CDN).
    """
    def local(deps: list[tuple[str, str]]) -> list[tuple[str, str]]:
        missing = [name for name, _ in deps if name not in PLUGIN_FILES]
        if missing:
            raise RfhuntError(f"{type(element).__name__} needs {', '.join(missing)}, which rfhunt does not ship "
                              "for offline maps")
        return [(name, f"{ASSET_DIR}/{PLUGIN_FILES[name]}") for name, _ in deps]

    element.default_js = local(list(getattr(element, "default_js", [])))
    css = local(list(getattr(element, "default_css", [])))
    if any(name.startswith("leaflet.timedimension") for name, _ in css):
        css.append((TIMECONTROL_ICONS_CSS[0], f"{ASSET_DIR}/{TIMECONTROL_ICONS_CSS[1]}"))
    element.default_css = css
    return element


_REMOTE = re.compile(
    r"""<(?:script|link|img|iframe|source|embed|audio|video)\b[^>]*?\b(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]+)"""
    r"""|url\(\s*["']?((?:https?:)?//[^"')\s]+)|@import\s+["']((?:https?:)?//[^"']+)""",
    re.IGNORECASE)


def remote_references(text: str) -> list[str]:
    """Every URL a page or stylesheet would fetch from another host: ``src``/``href`` of
    scripts, stylesheets, images and frames, CSS ``url()`` and ``@import``; ``http://``,
    ``https://`` or protocol-relative ``//`` (links a person may click are not fetches)."""
    return [next(g for g in groups if g) for groups in _REMOTE.findall(text)]
