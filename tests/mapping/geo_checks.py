"""Structural checks of GeoJSON (RFC 7946) and KML 2.2 written by rfhunt."""

from __future__ import annotations

import xml.etree.ElementTree as ET

KML_NS = "{http://www.opengis.net/kml/2.2}"


def _position(p) -> tuple[float, float]:
    assert isinstance(p, list) and len(p) in (2, 3) and all(isinstance(v, (int, float)) for v in p), p
    lon, lat = p[0], p[1]
    assert -180 <= lon <= 180 and -90 <= lat <= 90, f"position {p} is not [lon, lat]"
    return lon, lat


def ring_area2(ring) -> float:
    """Twice the signed area of a ring of [lon, lat] (positive: counter-clockwise)."""
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring[:-1], ring[1:]))


def check_geojson(doc: dict) -> dict[str, list[dict]]:
    """Assert RFC 7946 structure; return the features by their ``role`` property."""
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list)
    assert "crs" not in doc   # RFC 7946 removed crs: WGS84 only
    roles: dict[str, list[dict]] = {}
    for f in doc["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict)
        g = f["geometry"]
        if g["type"] == "Point":
            _position(g["coordinates"])
        elif g["type"] == "LineString":
            assert len(g["coordinates"]) >= 2
            for p in g["coordinates"]:
                _position(p)
        elif g["type"] == "Polygon":
            for k, ring in enumerate(g["coordinates"]):
                assert len(ring) >= 4 and ring[0] == ring[-1], "polygon ring not closed"
                for p in ring:
                    _position(p)
                area = ring_area2(ring)
                assert (area > 0) if k == 0 else (area < 0), "RFC 7946: exterior ring counter-clockwise"
        else:
            raise AssertionError(f"unexpected geometry {g['type']}")
        roles.setdefault(f["properties"].get("role"), []).append(f)
    return roles


def _coords(text: str) -> list[list[float]]:
    out = []
    for tup in text.split():
        vals = [float(v) for v in tup.split(",")]
        assert len(vals) in (2, 3), tup
        out.append(list(_position(vals)))
    return out


def check_kml(text: str) -> dict[str, list[list[list[float]]]]:
    """Assert KML 2.2 structure; return coordinates of Points, LineStrings and LinearRings."""
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{KML_NS}kml"
    doc = root.find(f"{KML_NS}Document")
    assert doc is not None
    out: dict[str, list[list[list[float]]]] = {"Point": [], "LineString": [], "LinearRing": []}
    for pm in doc.iter(f"{KML_NS}Placemark"):
        assert pm.find(f"{KML_NS}name") is not None
        for kind in out:
            for geom in pm.iter(f"{KML_NS}{kind}"):
                c = _coords(geom.find(f"{KML_NS}coordinates").text)
                if kind == "LinearRing":
                    assert len(c) >= 4 and c[0] == c[-1], "KML ring not closed"
                out[kind].append(c)
    return out
