"""The folium map rendered from a store."""

from __future__ import annotations

import re

import numpy as np

from collector.store import Store
from mapping.folium_map import emitter_colours, emitter_ellipse, render_map, safe_text
from rfhunt.geo import to_enu
from rfhunt.records import Detection, Heartbeat

T0 = 1_750_000_000.0


def filled_store(url: str) -> Store:
    store = Store.open(url)
    store.add_batch([
        Heartbeat("fixed1", 1, T0, 45.07, 7.68, False, "ok", 100, 0, 1),
        Heartbeat("car1", 1, T0, 45.06, 7.66, True, "ok", 100, 0, 1),
        Heartbeat("car1", 2, T0 + 60, 45.065, 7.67, True, "ok", 200, 0, 2),
        Heartbeat("car1", 3, T0 + 120, 45.07, 7.675, True, "ok", 300, 0, 3),
    ])
    for i, (key, kind, f, ch, verdict, semi) in enumerate([
        ("gsm_downlink:arfcn:62", "gsm_downlink", 947.4e6, 62, "suspicious", 800.0),
        ("gsm_uplink:arfcn:12", "gsm_uplink", 892.4e6, 12, "goip_suspect", 300.0),
        ("fm:101500000", "fm", 101.5e6, None, "licensed", None),
    ]):
        eid = store.get_or_create_emitter(key, kind, f, ch)
        store.add_detection(Detection("fixed1", 10 + i, T0 + i, 45.07, 7.68, kind, f, ch, 200e3, -60.0, 20.0))
        store.assign_detections(eid, [d.id for d in store.detections() if d.emitter_id is None])
        store.update_emitter(
            eid, lat=45.08 + 0.01 * i, lon=7.69, semi_major_m=semi, semi_minor_m=None if semi is None else semi / 2,
            orientation_deg=None if semi is None else 30.0, est_power_dbm=30.0, verdict=verdict,
            reasons=[f"reason <{i}>"],
        )
    return store


def test_render_map(tmp_path):
    with filled_store(f"sqlite:///{tmp_path / 'm.db'}") as store:
        out = render_map(store, tmp_path / "out" / "map.html", title="Test <map>")
        emitters = store.emitters()
    html = out.read_text()
    assert out.exists() and "Test &lt;map&gt;" in html
    assert html.count("L.marker(") == 5              # 3 emitters + 2 sensors
    assert html.count("L.polygon(") == 2             # FM has no ellipse
    assert html.count("L.polyline(") == 1            # the mobile sensor's track
    assert "L.control.layers(" in html
    for name in ("GSM downlink", "GSM uplink", "FM broadcast", "Sensors", "Sensor tracks"):
        assert name in html
    assert "ARFCN 62" in html and "goip_suspect" in html and "reason &lt;0&gt;" in html
    assert "2025-06-15T15:06:40+00:00" in html     # first seen, UTC ISO
    assert html.count('"icon": "car"') == 1 and html.count('"icon": "satellite-dish"') == 1
    for em in emitters:
        ring = emitter_ellipse(em)
        if ring is None:
            continue
        assert ring[0] == ring[-1]
        lats = np.array([p[0] for p in ring])
        lons = np.array([p[1] for p in ring])
        assert np.all(np.abs(lats - 45.1) < 0.1) and np.all(np.abs(lons - 7.69) < 0.1)   # [lat, lon]
        e, n = to_enu(lats, lons, em.lat, em.lon)
        assert abs(np.max(np.hypot(e, n)) - em.semi_major_m) < 1.0
        first = re.escape(f"[{ring[0][0]}, {ring[0][1]}]")
        assert re.search(first, html), "ellipse vertex not in the HTML in [lat, lon] order"
    assert emitter_colours(emitters[0])[0] == "red" and emitter_colours(emitters[2])[0] == "green"


def test_render_empty_store(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'e.db'}") as store:
        out = render_map(store, tmp_path / "empty.html")
    assert "L.control.layers(" in out.read_text()


HOSTILE = "x`${alert(document.cookie)}`<img src=y onerror=alert(1)>\\"


def test_hostile_text_in_the_store_cannot_break_out_of_tooltips_or_popups(tmp_path):
    # Straight into the store, as if the wire decoder had let it through.
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as store:
        store.add_batch([
            Heartbeat(HOSTILE, 1, T0, 45.07, 7.68, True, HOSTILE, 100, 0, 1),
            Heartbeat(HOSTILE, 2, T0 + 60, 45.071, 7.681, True, HOSTILE, 100, 0, 2),
        ])
        eid = store.get_or_create_emitter("k", HOSTILE, 900e6, None)
        store.update_emitter(eid, lat=45.08, lon=7.69, semi_major_m=300.0, semi_minor_m=100.0, orientation_deg=10.0,
                             verdict=HOSTILE, reasons=[HOSTILE])
        html = render_map(store, tmp_path / "h.html").read_text()
    assert "alert(" in html                       # the text is shown ...
    assert "${alert" not in html and "`${" not in html and "<img" not in html   # ... but inert
    assert "&#36;{alert(document.cookie)}" in html and "&#96;" in html and "&#92;" in html
    assert safe_text(HOSTILE) == (
        "x&#96;&#36;{alert(document.cookie)}&#96;&lt;img src=y onerror=alert(1)&gt;&#92;"
    )


def test_tracks_are_loaded_for_mobile_sensors_only(tmp_path, monkeypatch):
    with filled_store(f"sqlite:///{tmp_path / 't.db'}") as store:
        asked = []
        real = store.sensor_tracks
        monkeypatch.setattr(store, "sensor_tracks", lambda ids=None: asked.append(None if ids is None else sorted(ids))
                            or real(ids))
        html = render_map(store, tmp_path / "t.html").read_text()
    assert asked == [["car1"]]
    assert html.count("L.polyline(") == 1


def test_rogue_cell_popup_shows_score_indicators_and_evidence(tmp_path):
    from mapping.folium_map import emitter_popup

    with Store.open(f"sqlite:///{tmp_path / 'r.db'}") as store:
        eid = store.get_or_create_emitter("gsm_downlink:arfcn:63:bsic:9", "gsm_downlink", 947.6e6, 63)
        store.update_emitter(eid, lat=45.08, lon=7.69, verdict="rogue", score=11.5, identity="460-00-1241-1",
                             reasons=["carrier +2.40 ppm off"],
                             indicators=[{"name": "clock_offset_strong", "weight": 4.0, "reason": "carrier +2.40 ppm off",
                                          "evidence": {"residual_ppm": 2.4, "captures": 12}},
                                         {"name": "identity_cycling", "weight": 5.0, "reason": HOSTILE,
                                          "evidence": {"identities": ["460-00-1234-1", "460-00-1241-1"]}}])
        (em,) = store.emitters()
        popup = emitter_popup(em)
        html = render_map(store, tmp_path / "r.html").read_text()
    assert "rogue (score 11.5)" in popup and "460-00-1241-1" in popup
    assert "clock_offset_strong" in popup and "+4.0" in popup and "residual_ppm: 2.4; captures: 12" in popup
    assert "identities: 460-00-1234-1, 460-00-1241-1" in popup
    assert "${alert" not in popup and "<img" not in popup      # indicator texts are escaped too
    assert "clock_offset_strong" in html and "rogue (score 11.5)" in html


def test_fm_popup_shows_the_on_air_schedule(tmp_path):
    """A night-only FM transmitter's popup says when it is on air (local time, UTC+8)."""
    night0 = 1_767_097_800.0           # 2025-12-30 20:30 at UTC+8 (12:30 UTC)
    with Store.open(f"sqlite:///{tmp_path / 'fm.db'}") as store:
        eid = store.get_or_create_emitter("fm:99100000", "fm", 99.1e6, None)
        seq = 0
        for night in range(4):
            for k in range(0, 11 * 3600, 600):       # every 10 min, 20:30 to 07:30
                seq += 1
                store.add_detection(Detection("fixed1", seq, night0 + night * 86400 + k, 45.07, 7.68, "fm",
                                              99.1e6, None, 200e3, -50.0, 30.0))
        store.assign_detections(eid, [d.id for d in store.detections() if d.emitter_id is None])
        store.update_emitter(eid, lat=45.08, lon=7.69, verdict="unlicensed", reasons=["no licence"])
        html = render_map(store, tmp_path / "map.html").read_text()
    assert "On air (UTC+8)" in html and "20:30" in html and "07:30" in html and "night only" in html
    assert "Daily profile 00-24 h" in html
