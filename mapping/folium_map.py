"""An HTML map of the collector's store: sensors, their tracks, emitters and ellipses.

Folium wants ``[lat, lon]`` (degrees), which is the order used throughout this module.
Emitters are coloured by kind, alarming verdicts (:data:`collector.judge.ALARMING`) in red
tones; each kind is one layer, sensors and tracks are two more, and a layer control
switches them.

Folium 0.20 writes tooltips and popups into JavaScript template literals, where ``${...}``
runs code and a backtick ends the literal; every text that reaches one goes through
:func:`safe_text`, which escapes it for HTML and for template literals.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path

import folium

from collector.fm_schedule import Schedule, fm_schedules, profile_bar
from collector.judge import ALARMING
from collector.localize import ellipse_points
from collector.store import EmitterRow, SensorRow, Store
from mapping.assets import install_assets, use_local_assets

KIND_LABELS = {"gsm_downlink": "GSM downlink", "gsm_uplink": "GSM uplink", "fm": "FM broadcast"}
#: (marker colour, polygon colour) by kind for unalarming verdicts; folium.Icon colour names.
KIND_COLOURS = {"gsm_downlink": ("blue", "#2a6fdb"), "gsm_uplink": ("purple", "#7b3fa0"), "fm": ("green", "#2e8b3a")}
#: The same for alarming verdicts: red tones.
ALARM_COLOURS = {"gsm_downlink": ("red", "#d62728"), "gsm_uplink": ("darkred", "#8b0000"), "fm": ("lightred", "#ff6f61")}
KIND_ICONS = {"gsm_downlink": "tower-cell", "gsm_uplink": "phone", "fm": "radio"}


def safe_text(text: object) -> str:
    """``text`` escaped for HTML inside a JavaScript template literal.

    :func:`html.escape` plus character references for the backtick, ``$`` and the
    backslash, which a template literal would otherwise interpret.
    """
    return html.escape(str(text)).translate(_TEMPLATE_LITERAL_ESCAPES)


_TEMPLATE_LITERAL_ESCAPES = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def _iso(t_utc: float | None) -> str:
    return "—" if t_utc is None else datetime.fromtimestamp(t_utc, UTC).isoformat(timespec="seconds")


def emitter_colours(em: EmitterRow) -> tuple[str, str]:
    """(marker icon colour, ellipse colour) of an emitter from its kind and verdict."""
    table = ALARM_COLOURS if em.verdict in ALARMING else KIND_COLOURS
    return table.get(em.kind, ("gray", "#808080"))


def emitter_ellipse(em: EmitterRow) -> list[tuple[float, float]] | None:
    """The emitter's 95 % ellipse as closed ``(lat, lon)`` vertices, or None if it has none."""
    if None in (em.lat, em.lon, em.semi_major_m, em.semi_minor_m, em.orientation_deg):
        return None
    return ellipse_points(em.lat, em.lon, em.semi_major_m, em.semi_minor_m, em.orientation_deg)


def _evidence_text(evidence: object) -> str:
    """A short ``key: value`` text of an indicator's evidence."""
    if not isinstance(evidence, dict):
        return str(evidence)
    parts = []
    for k, v in evidence.items():
        if isinstance(v, dict):
            v = "; ".join(f"{a} {b}" for a, b in v.items())
        elif isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v[:8])) + (" ..." if len(v) > 8 else "")
        parts.append(f"{k}: {v}")
    return "; ".join(parts)


def _weight_text(weight: object) -> str:
    try:
        return f"{float(weight):+.1f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(weight)


def indicators_table(em: EmitterRow) -> str:
    """HTML table of the indicators that fired (weight, reason, evidence), or ``""``."""
    if not em.indicators:
        return ""
    e = safe_text
    rows = "".join(
        f"<tr><td>{e(_weight_text(i.get('weight')))}</td><td><b>{e(i.get('name', '?'))}</b>: "
        f"{e(i.get('reason', ''))}<br><small>{e(_evidence_text(i.get('evidence', {})))}</small></td></tr>"
        for i in em.indicators)
    return f"<table><tr><th>weight</th><th>indicator and evidence</th></tr>{rows}</table>"


def emitter_popup(em: EmitterRow, schedule: Schedule | None = None) -> str:
    """HTML popup text of an emitter (every text through :func:`safe_text`): its fields, the
    rogue-cell score with every indicator that fired and its evidence, and the reasons; an FM
    emitter's on-air ``schedule`` (:func:`collector.fm_schedule.fm_schedules`) adds its summary
    and daily profile."""
    e = safe_text
    chan = f"ARFCN {em.channel}, " if em.channel is not None else ""
    verdict = em.verdict or "not judged"
    if em.score is not None and em.kind == "gsm_downlink":
        verdict += f" (score {em.score:.1f})"
    rows = [
        ("Kind", KIND_LABELS.get(em.kind, em.kind)),
        ("Channel", f"{chan}{em.freq_hz / 1e6:.3f} MHz"),
        *([("Identity", em.identity)] if em.identity else []),
        ("Verdict", verdict),
        ("First seen (UTC)", _iso(em.first_seen_utc)),
        ("Last seen (UTC)", _iso(em.last_seen_utc)),
        ("Power at 1 m", "—" if em.est_power_dbm is None else f"{em.est_power_dbm:.1f} dBm"),
        ("Detections", str(em.n_detections)),
        ("95 % ellipse", "—" if em.semi_major_m is None else f"{em.semi_major_m:.0f} × {em.semi_minor_m:.0f} m"),
        *([(f"On air (UTC{schedule.utc_offset_h:+g})",
            schedule.summary + (", night only" if schedule.night_only else "")),
           ("Daily profile 00-24 h", profile_bar(schedule.profile).replace(" ", "·"))] if schedule is not None else []),
    ]
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    table = indicators_table(em)
    if table:
        return f"<b>Emitter {em.id}</b><table>{body}</table>{table}"
    reasons = "".join(f"<li>{e(r)}</li>" for r in em.reasons)
    return f"<b>Emitter {em.id}</b><table>{body}</table>" + (f"<ul>{reasons}</ul>" if reasons else "")


def _sensor_popup(s: SensorRow) -> str:
    e = safe_text
    kind = {True: "mobile", False: "fixed", None: "unknown"}[s.mobile]
    return (
        f"<b>Sensor {e(s.sensor_id)}</b> ({kind})<br>last position {_iso(s.last_position_utc)}"
        f"<br>last heartbeat {_iso(s.last_heartbeat_utc)}<br>source {e(s.source_state or '—')}"
        f"<br>dropped samples {e(s.dropped_samples if s.dropped_samples is not None else '—')}"
    )


def render_map(store: Store, out_path: str | Path, *, title: str | None = None,
               tiles: str | None = "openstreetmap", since_utc: float | None = None,
               until_utc: float | None = None, analysis: bool = True, refresh_s: float | None = None,
               time_step_s: float | None = None) -> Path:
    """Draw everything in ``store`` on a folium map and write it as HTML.

    The page loads Leaflet and its plugins from ``rfhunt-assets/`` written beside it, never
    from a CDN, so it renders without internet. It is written to a temporary file and
    renamed, so a browser reloading it never reads half a page.

    Parameters
    ----------
    store : Store
    out_path : str or Path
        HTML file to write (parent directories are created).
    title : str, optional
        Shown at the top of the map.
    tiles : str or None
        Base map: ``"openstreetmap"`` (fetched online by the browser), ``None`` for none
        (offline; markers and ellipses on a plain background), or a tile URL template such
        as ``"tiles/{z}/{x}/{y}.png"`` for a local tile folder.
    since_utc, until_utc : float, optional
        Time filter, Unix s: only detections in the window, and emitters seen in it.
    analysis : bool
        Add the analysis layers of :mod:`mapping.layers`: detection and per-band received
        power heatmaps, detections over time (with a time slider), sensor coverage and
        emitter tracks.
    refresh_s : float, optional
        The page reloads itself this often (for ``rfhunt map --watch``), s.
    time_step_s : float, optional
        Step of the detections-over-time heatmap, s (default: about 48 steps, whole minutes).

    Returns
    -------
    Path
        ``out_path``.
    """
    from mapping.layers import TimeWindow, add_analysis_layers

    out = Path(out_path)
    window = TimeWindow(since_utc, until_utc)
    sensors = store.sensors()
    emitters = [em for em in store.emitters() if window.has_emitter(em)]
    tracks = store.sensor_tracks([s.sensor_id for s in sensors if s.mobile])
    points: list[tuple[float, float]] = []
    fmap = folium.Map(location=[0.0, 0.0], zoom_start=2, control_scale=True, tiles=None)
    use_local_assets(fmap)
    if tiles == "openstreetmap":
        folium.TileLayer("openstreetmap", name="OpenStreetMap").add_to(fmap)
    elif tiles:
        folium.TileLayer(tiles, attr="local tiles", name="Local tiles").add_to(fmap)
    if refresh_s:
        fmap.get_root().header.add_child(folium.Element(f'<meta http-equiv="refresh" content="{max(1, round(refresh_s))}">'))
    if since_utc is not None or until_utc is not None:
        title = f"{title or ''} ({window.label()})".strip()
    if title:
        fmap.get_root().html.add_child(folium.Element(
            f'<h3 style="position:absolute;z-index:1000;left:60px;top:4px;background:white;'
            f'padding:2px 8px;">{html.escape(title)}</h3>'
        ))

    groups = {k: folium.FeatureGroup(name=label) for k, label in KIND_LABELS.items()}
    schedules = fm_schedules(store, emitters)
    for em in emitters:
        if em.lat is None or em.lon is None:
            continue
        if em.kind not in groups:
            groups[em.kind] = folium.FeatureGroup(name=safe_text(em.kind))
        group = groups[em.kind]
        icon_colour, poly_colour = emitter_colours(em)
        ring = emitter_ellipse(em)
        if ring is not None:
            folium.Polygon(
                [list(p) for p in ring], color=poly_colour, weight=1, fill=True, fill_opacity=0.15,
                tooltip=safe_text(f"emitter {em.id}: 95 % ellipse"),
            ).add_to(group)
        folium.Marker(
            [em.lat, em.lon], popup=folium.Popup(emitter_popup(em, schedules.get(em.id)), max_width=480),
            tooltip=safe_text(f"{KIND_LABELS.get(em.kind, em.kind)} {em.verdict or ''}".strip()),
            icon=folium.Icon(color=icon_colour, icon=KIND_ICONS.get(em.kind, "question"), prefix="fa"),
        ).add_to(group)
        points.append((em.lat, em.lon))

    sensor_group = folium.FeatureGroup(name="Sensors")
    track_group = folium.FeatureGroup(name="Sensor tracks")
    for s in sensors:
        if s.lat is None or s.lon is None:
            continue
        folium.Marker(
            [s.lat, s.lon], popup=folium.Popup(_sensor_popup(s), max_width=300), tooltip=safe_text(f"sensor {s.sensor_id}"),
            icon=folium.Icon(color="black" if s.mobile else "gray", icon="car" if s.mobile else "satellite-dish",
                             prefix="fa"),
        ).add_to(sensor_group)
        points.append((s.lat, s.lon))
        track = [(lat, lon) for t, lat, lon in tracks.get(s.sensor_id, []) if window.contains(t)]
        if s.mobile and len(track) >= 2:
            folium.PolyLine([list(p) for p in track], color="#333333", weight=2, opacity=0.7,
                            tooltip=safe_text(f"track of {s.sensor_id}")).add_to(track_group)
            points.extend(track)

    for group in [*groups.values(), track_group, sensor_group]:
        group.add_to(fmap)
    if analysis:
        dets = store.detections(since_utc=since_utc, until_utc=until_utc)
        add_analysis_layers(fmap, sensors, emitters, dets, time_step_s=time_step_s)
    folium.LayerControl(collapsed=False).add_to(fmap)
    if points:  # markers and tracks: a poorly located emitter's huge ellipse must not zoom the city away
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(20, 20))
    out.parent.mkdir(parents=True, exist_ok=True)
    install_assets(out.parent)
    tmp = out.with_name(f".{out.name}.tmp")
    fmap.save(str(tmp))
    os.replace(tmp, out)
    return out
