"""Police handoff: a self-contained case folder about one emitter, and its verification.

:func:`export_case` writes, from the collector's store::

    case.html            the case page (中文 / English): map with the location, the 95 %
                         ellipse, the track and the sensors that heard it; identity and
                         indicators; a timeline of detections per sensor; spectrum and
                         waterfall of the first IQ evidence; the evidence list
    rfhunt-assets/       Leaflet and its plugins (the page loads nothing from the internet)
    case.geojson         RFC 7946 ([lon, lat]) emitter, ellipse, track, sensors
    case.kml             the same in KML 2.2
    detections.csv       every detection of the emitter
    spectrum.png, waterfall.png
    evidence/*.sigmf-meta, *.sigmf-data
                         IQ snippets as SigMF (cf32_le, core:geolocation, core:sha512)
    evidence/*.f32       audio snippets (float32 little-endian) with a .json description
    MANIFEST.sha256      SHA-256 of every other file, in ``sha256sum`` format

:func:`verify_case` checks a folder against its manifest (and each SigMF dataset against
its own SHA-512) and names every file changed, missing or added.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import wave
from datetime import UTC, datetime
from pathlib import Path

import folium
import numpy as np

from collector.evidence import EvidenceRow, evidence_for_emitter, read_evidence
from collector.store import DetectionRow, EmitterRow, Store
from mapping.assets import install_assets, use_local_assets
from mapping.folium_map import KIND_ICONS, KIND_LABELS, emitter_colours, emitter_ellipse, indicators_table, safe_text
from mapping.geoexport import (
    KIND_LABELS_ZH,
    SensorHeard,
    case_geojson,
    case_kml,
    emitter_track,
    iso,
    sensors_heard,
    track_moved,
)
from mapping.pictures import db_range, spectrum_db, spectrum_png, waterfall_db, waterfall_png
from rfhunt.errors import RfhuntError

MANIFEST = "MANIFEST.sha256"
#: Colour of the track on the case map.
TRACK_COLOUR = "#ff8c00"
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_VERDICT_ZH = {"rogue": "伪基站", "suspicious": "可疑", "known": "已知", "licensed": "持证", "unlicensed": "未持证",
               "goip_suspect": "疑似GOIP", "unknown": "未知"}


class CaseError(RfhuntError):
    """A case cannot be exported (no such emitter, folder not empty, unwritable) or read."""


# ----------------------------------------------------------------------------- manifest
def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _case_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` but the manifest, as sorted POSIX relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.relative_to(folder).as_posix() != MANIFEST)


def write_manifest(folder: str | Path) -> Path:
    """Write ``MANIFEST.sha256`` (``sha256sum`` format, sorted) over every other file of ``folder``."""
    root = Path(folder)
    lines = [f"{sha256_file(root / rel)}  {rel}\n" for rel in _case_files(root)]
    out = root / MANIFEST
    out.write_text("".join(lines), encoding="utf-8")
    return out


def verify_case(folder: str | Path) -> list[str]:
    """Check a case folder; return its problems (empty: intact).

    Each problem names a file: ``changed: F`` (bytes differ from the manifest), ``missing: F``
    (listed, not there), ``extra: F`` (there, not listed), ``bad manifest line N: ...``, or
    ``changed: F.sigmf-data (SHA-512 differs from F.sigmf-meta)``. A folder that does not
    exist or has no manifest gives one problem saying so.
    """
    root = Path(folder)
    if not root.is_dir():
        return [f"not a case folder: {root}"]
    man = root / MANIFEST
    try:
        text = man.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"missing: {MANIFEST}"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"unreadable: {MANIFEST} ({exc})"]
    problems: list[str] = []
    listed: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _MANIFEST_LINE.match(line)
        rel = m.group(2) if m else ""
        if not m or rel.startswith("/") or ".." in Path(rel).parts or rel in listed:
            problems.append(f"bad manifest line {n}: {line[:120]!r}")
            continue
        listed[rel] = m.group(1)
    present = set(_case_files(root))
    for rel, digest in listed.items():
        p = root / rel
        if rel not in present:
            problems.append(f"missing: {rel}")
        elif sha256_file(p) != digest:
            problems.append(f"changed: {rel}")
    for rel in sorted(present - set(listed)):
        problems.append(f"extra: {rel}")
    for meta in sorted(root.rglob("*.sigmf-meta")):
        data = meta.with_suffix(".sigmf-data")
        rel = data.relative_to(root).as_posix()
        try:
            want = json.loads(meta.read_text(encoding="utf-8"))["global"]["core:sha512"]
            got = hashlib.sha512(data.read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable or missing: the manifest check has named it
        if got != want:
            problems.append(f"changed: {rel} (SHA-512 differs from {meta.name})")
    return problems


# ----------------------------------------------------------------------------- helpers
def _e(text: object) -> str:
    # the page's text goes to the HTML body, not a script; escaped as folium's tooltips are anyway
    return safe_text(text)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:40] or "x"


def _stamp(t_utc: float) -> str:
    return datetime.fromtimestamp(t_utc, UTC).strftime("%Y%m%dT%H%M%SZ")


def _verdict_label(em: EmitterRow) -> str:
    if not em.verdict:
        return "未判定 / not judged"
    zh = _VERDICT_ZH.get(em.verdict)
    return f"{zh} / {em.verdict}" if zh else em.verdict


def identities_seen(dets: list[DetectionRow]) -> list[tuple[str, float, float, int]]:
    """Cell identities ``MCC-MNC-LAC-CID`` decoded in ``dets``: (identity, first, last, count) by first time."""
    seen: dict[str, list[float]] = {}
    for d in dets:
        f = d.features
        if all(f.get(k) not in (None, "") for k in ("mcc", "mnc", "lac", "cid")):
            seen.setdefault(f"{f['mcc']}-{f['mnc']}-{f['lac']}-{f['cid']}", []).append(d.t_utc)
    return sorted(((k, min(v), max(v), len(v)) for k, v in seen.items()), key=lambda r: r[1])


def _power_colour(p: float, lo: float, hi: float) -> str:
    x = 0.0 if hi <= lo else min(max((p - lo) / (hi - lo), 0.0), 1.0)
    r, g, b = int(40 + 200 * x), int(90 + 60 * (1 - abs(2 * x - 1))), int(220 - 190 * x)
    return f"#{r:02x}{g:02x}{b:02x}"


def timeline_svg(dets: list[DetectionRow], evidence: list[EvidenceRow] = (), width: int = 900) -> str:
    """An inline SVG: one row per sensor, a dot per detection at its time coloured by power
    (blue weak, red strong), evidence snippets as black ticks; UTC time axis."""
    if not dets:
        return "<p>无检测 / no detections</p>"
    sensors = sorted({d.sensor_id for d in dets})
    t0, t1 = min(d.t_utc for d in dets), max(d.t_utc for d in dets)
    if t1 - t0 < 1.0:
        t0, t1 = t0 - 30.0, t1 + 30.0
    left, right, row_h, top = 150, 20, 22, 10
    h = top + row_h * len(sensors) + 40
    lo, hi = min(d.power_dbm for d in dets), max(d.power_dbm for d in dets)

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * (width - left - right)

    parts = [f'<svg class="timeline" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" font-family="sans-serif" font-size="11">']
    for i, sid in enumerate(sensors):
        y = top + row_h * i + row_h / 2
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{_e(sid[:24])}</text>')
    row_of = {sid: i for i, sid in enumerate(sensors)}
    for d in dets:
        y = top + row_h * row_of[d.sensor_id] + row_h / 2
        parts.append(f'<circle cx="{x(d.t_utc):.1f}" cy="{y:.1f}" r="3" fill="{_power_colour(d.power_dbm, lo, hi)}">'
                     f"<title>{_e(iso(d.t_utc))} {_e(d.sensor_id)} {d.power_dbm:.1f} dBm</title></circle>")
    for ev in evidence:
        if ev.sensor_id in row_of:
            y = top + row_h * row_of[ev.sensor_id] + row_h / 2
            parts.append(f'<line class="evidence-tick" x1="{x(ev.t_utc):.1f}" x2="{x(ev.t_utc):.1f}" '
                         f'y1="{y - 8:.1f}" y2="{y + 8:.1f}" stroke="black" stroke-width="2"/>')
    axis_y = top + row_h * len(sensors) + 4
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{axis_y}" y2="{axis_y}" stroke="#333"/>')
    for t in np.linspace(t0, t1, 5):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis_y}" y2="{axis_y + 5}" stroke="#333"/>'
                     f'<text x="{x(t):.1f}" y="{axis_y + 18}" text-anchor="middle">'
                     f"{datetime.fromtimestamp(t, UTC).strftime('%H:%M:%S')}</text>")
    parts.append(f'<text x="{left}" y="{axis_y + 34}">时间 / time (UTC), {_e(iso(t0)[:10])}; '
                 f"颜色 / colour: {lo:.0f} dBm (蓝 / blue) … {hi:.0f} dBm (红 / red)</text></svg>")
    return "".join(parts)


def _links(names: list[str]) -> str:
    return "<br>".join(f"<a href='evidence/{_e(n)}'>{_e(n)}</a>" for n in names)


def _table(rows: list[tuple[str, object]]) -> str:
    return "<table class='kv'>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


# ----------------------------------------------------------------------------- map
def _case_map(em: EmitterRow, heard: list[SensorHeard], track: list[tuple[float, float, float, float | None]] | None,
              tiles: str | None) -> folium.Map:
    fmap = folium.Map(location=[em.lat or 0.0, em.lon or 0.0], zoom_start=14, control_scale=True, tiles=None,
                      width="100%", height="460px")
    use_local_assets(fmap)
    if tiles == "openstreetmap":
        folium.TileLayer("openstreetmap", name="OpenStreetMap").add_to(fmap)
    elif tiles:
        folium.TileLayer(tiles, attr="local tiles", name="Local tiles").add_to(fmap)
    points: list[tuple[float, float]] = []
    icon_colour, poly_colour = emitter_colours(em)
    ring = emitter_ellipse(em)
    if ring is not None:
        folium.Polygon([list(p) for p in ring], color=poly_colour, weight=2, fill=True, fill_color=poly_colour,
                       fill_opacity=0.25, tooltip=safe_text("95 % 置信椭圆 / 95 % ellipse")).add_to(fmap)
        points.extend(ring)
    for s in heard:
        if em.lat is not None:
            folium.PolyLine([[s.lat, s.lon], [em.lat, em.lon]], color="#555555", weight=1, opacity=0.6,
                            dash_array="4 4").add_to(fmap)
        folium.Marker([s.lat, s.lon], tooltip=safe_text(f"传感器 / sensor {s.sensor_id}: {s.n_detections} det., "
                                                         f"max {s.max_power_dbm:.1f} dBm"),
                      icon=folium.Icon(color="gray", icon="satellite-dish", prefix="fa")).add_to(fmap)
        points.append((s.lat, s.lon))
    if track and len(track) >= 2:
        folium.PolyLine([[lat, lon] for _, lat, lon, _ in track], color=TRACK_COLOUR, weight=3, opacity=0.9,
                        tooltip=safe_text("轨迹 / track")).add_to(fmap)
        points.extend((lat, lon) for _, lat, lon, _ in track)
    if em.lat is not None and em.lon is not None:
        folium.Marker([em.lat, em.lon], tooltip=safe_text(f"发射源 / emitter {em.id}"),
                      icon=folium.Icon(color=icon_colour, icon=KIND_ICONS.get(em.kind, "question"), prefix="fa"),
                      ).add_to(fmap)
        points.append((em.lat, em.lon))
    if points:
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        fmap.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(20, 20))
    return fmap


_CSS = """<style>
html, body { height: auto !important; }
body { display: flex; flex-direction: column; font-family: sans-serif; font-size: 14px; color: #222; }
.case-head { order: 0; padding: 8px 16px; background: #1d2b3a; color: white; }
.case-head h1 { font-size: 20px; margin: 4px 0; }
.folium-map { order: 1; flex: 0 0 460px; }
.case-body { order: 2; padding: 8px 16px 40px; }
.case-body h2 { font-size: 17px; border-bottom: 1px solid #ccc; margin-top: 22px; }
.case-body h3 { font-size: 15px; margin-top: 14px; }
table.kv th { text-align: left; padding-right: 16px; vertical-align: top; white-space: nowrap; }
table { border-collapse: collapse; }
table.grid td, table.grid th { border: 1px solid #ccc; padding: 2px 6px; font-size: 12px; }
.verdict { display: inline-block; padding: 2px 8px; border-radius: 4px; background: #b22; }
.pic { display: inline-block; margin: 0 16px 8px 0; vertical-align: top; }
.pic figcaption { font-size: 12px; color: #444; max-width: 512px; }
code { font-size: 11px; word-break: break-all; }
</style>"""


# ----------------------------------------------------------------------------- export
def export_case(store: Store, emitter_id: int, out_dir: str | Path, *, tiles: str | None = None,
                max_evidence: int = 10, now_utc: float | None = None) -> Path:
    """Write the case folder of one emitter (see module notes) and its manifest.

    Parameters
    ----------
    store : Store
    emitter_id : int
    out_dir : str or Path
        Folder to write; created, and must be empty if it exists.
    tiles : str or None
        Base map of the case page: None (default: none, fully offline), ``"openstreetmap"``
        or a tile URL template of a local tile folder, relative to the page.
    max_evidence : int
        At most this many evidence snippets (the oldest) are included.
    now_utc : float, optional
        Export time shown on the page (default: the clock), Unix s.

    Returns
    -------
    Path
        The case page ``out_dir/case.html``.

    Raises
    ------
    CaseError
        If the emitter does not exist, ``out_dir`` is not empty or cannot be written, or an
        evidence snippet is unreadable or fails its SHA-512.
    """
    em = store.emitter(emitter_id)
    if em is None:
        raise CaseError(f"no emitter with id {emitter_id} in {store.url}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaseError(f"case folder {out} exists and is not empty; choose a new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _export(store, em, out, tiles, max_evidence, now_utc)
    except OSError as exc:
        raise CaseError(f"cannot write case folder {out}: {exc.strerror or exc}") from None


def _export(store: Store, em: EmitterRow, out: Path, tiles: str | None, max_evidence: int,
            now_utc: float | None) -> Path:
    from sensors.sources.recording import write_sigmf

    now = datetime.now(UTC).timestamp() if now_utc is None else now_utc
    dets = store.detections(emitter_id=em.id)
    heard = sensors_heard(dets)
    track = emitter_track(dets, path_loss_exponent=em.path_loss_exponent or 3.0)
    moved = track_moved(track)
    shown_track = track if moved else None

    # evidence
    evs = evidence_for_emitter(store, em.id)[:max_evidence]
    ev_dir = out / "evidence"
    ev_rows, first_iq = [], None
    for ev in evs:
        try:
            samples = read_evidence(store, ev)
        except RfhuntError as exc:
            raise CaseError(f"evidence {ev.id} of emitter {em.id}: {exc}") from None
        ev_dir.mkdir(exist_ok=True)
        base = ev_dir / f"ev{ev.id}_{_safe_name(ev.sensor_id)}_{_stamp(ev.t_utc)}_{ev.kind}"
        geo = None if ev.lat is None or ev.lon is None else (ev.lat, ev.lon)
        if ev.kind == "iq":
            desc = (f"rfhunt evidence {ev.id}: emitter {em.id} ({em.kind}, {em.freq_hz / 1e6:.4f} MHz), detection "
                    f"{ev.detection_id}, sensor {ev.sensor_id}; geolocation is the sensor's position")
            meta, data = write_sigmf(base, samples, sample_rate_hz=ev.sample_rate_hz, center_freq_hz=ev.center_freq_hz,
                                     datatype="cf32_le", t_utc=ev.t_utc, description=desc, geolocation=geo)
            if json.loads(meta.read_text())["global"]["core:sha512"] != ev.sha512:
                raise CaseError(f"evidence {ev.id}: SigMF bytes differ from the stored snippet")
            files = [meta.name, data.name]
            if first_iq is None:
                first_iq = (ev, samples)
        else:
            data = base.with_suffix(".f32")
            data.write_bytes(samples.astype("<f4").tobytes())
            meta = base.with_suffix(".json")
            meta.write_text(json.dumps({"kind": ev.kind, "format": "float32 little-endian mono",
                                        "sample_rate_hz": ev.sample_rate_hz, "freq_hz": ev.center_freq_hz,
                                        "t_utc": iso(ev.t_utc), "sensor_id": ev.sensor_id,
                                        "geolocation": None if geo is None else {
                                            "type": "Point", "coordinates": [geo[1], geo[0]]},
                                        "sha512": ev.sha512,
                                        "listen": f"{base.name}.wav (16-bit PCM copy for listening)"},
                                       indent=2, ensure_ascii=False) + "\n")
            wav = base.with_suffix(".wav")
            pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
            with wave.open(str(wav), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(int(round(ev.sample_rate_hz)))
                w.writeframes(pcm.tobytes())
            files = [meta.name, data.name, wav.name]
        ev_rows.append((ev, files))

    # pictures
    pics = ""
    if first_iq is not None:
        ev, iq = first_iq
        nfft = 256 if iq.size >= 256 * 8 else 64
        if iq.size >= nfft:
            spec, wf = spectrum_db(iq, nfft), waterfall_db(iq, nfft, rows=128)
            (out / "spectrum.png").write_bytes(spectrum_png(spec))
            (out / "waterfall.png").write_bytes(waterfall_png(wf))
            lo_hz, hi_hz = ev.center_freq_hz - ev.sample_rate_hz / 2, ev.center_freq_hz + ev.sample_rate_hz / 2
            span = f"{lo_hz / 1e6:.4f} … {hi_hz / 1e6:.4f} MHz"
            s_lo, s_hi = db_range(spec)
            w_lo, w_hi = db_range(wf)
            dur = iq.size / ev.sample_rate_hz
            pics = (f"<figure class='pic'><img id='spectrum' src='spectrum.png' width='512' alt='spectrum'>"
                    f"<figcaption>频谱 / spectrum: {span}（横轴 / x）, {s_lo:.0f} … {s_hi:.0f} dBFS（纵轴 / y, "
                    f"10 dB 网格 / grid）; 证据 / evidence {ev.id}, {_e(ev.sensor_id)}, {_e(iso(ev.t_utc))}"
                    f"</figcaption></figure>"
                    f"<figure class='pic'><img id='waterfall' src='waterfall.png' width='512' alt='waterfall'>"
                    f"<figcaption>瀑布图 / waterfall: {span}（横轴 / x）, 0 … {dur * 1e3:.0f} ms（纵轴向下 / y down）, "
                    f"{w_lo:.0f} … {w_hi:.0f} dBFS（深蓝→红 / dark blue → red）</figcaption></figure>")
    if not pics:
        pics = "<p>无IQ证据 / no IQ evidence was kept for this emitter</p>"

    # data files
    with (out / "detections.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["detection_id", "t_utc_iso", "t_utc", "sensor_id", "sensor_lat", "sensor_lon", "kind", "freq_hz",
                    "channel", "bandwidth_hz", "power_dbm", "snr_db", "features_json"])
        for d in dets:
            w.writerow([d.id, iso(d.t_utc), d.t_utc, d.sensor_id, d.sensor_lat, d.sensor_lon, d.kind, d.freq_hz,
                        d.channel, d.bandwidth_hz, d.power_dbm, d.snr_db,
                        json.dumps(d.features, ensure_ascii=False, sort_keys=True)])
    gj = case_geojson(em, heard, shown_track)
    (out / "case.geojson").write_text(json.dumps(gj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "case.kml").write_text(case_kml(em, heard, shown_track), encoding="utf-8")

    # the page
    fmap = _case_map(em, heard, shown_track, tiles)
    fig = fmap.get_root()
    fig.header.add_child(folium.Element(_CSS))
    kind = f"{KIND_LABELS_ZH.get(em.kind, em.kind)} / {KIND_LABELS.get(em.kind, em.kind)}"
    head = (f"<div class='case-head'><h1>rfhunt 案件 / Case — 发射源 / Emitter {em.id}</h1>"
            f"{_e(kind)}, {em.freq_hz / 1e6:.4f} MHz — <span class='verdict'>{_e(_verdict_label(em))}</span>"
            f" — 导出时间 / exported {_e(iso(now))}</div>")
    loc = "—" if em.lat is None else f"{em.lat:.6f}, {em.lon:.6f}"
    ident_rows = [
        ("类型 / Kind", kind),
        ("频率 / Frequency", f"{em.freq_hz / 1e6:.4f} MHz"),
        ("信道 / Channel (ARFCN)", "—" if em.channel is None else em.channel),
        ("身份 / Identity (MCC-MNC-LAC-CID)", em.identity or "—"),
        ("判定 / Verdict", _verdict_label(em) + ("" if em.score is None else f" (评分 / score {em.score:.1f})")),
        ("首次发现 / First seen (UTC)", iso(em.first_seen_utc) or "—"),
        ("最后发现 / Last seen (UTC)", iso(em.last_seen_utc) or "—"),
        ("检测次数 / Detections", em.n_detections),
        ("位置 / Location (lat, lon, WGS84)", loc),
        ("95 % 置信椭圆 / 95 % ellipse", "—" if em.semi_major_m is None else
         f"{em.semi_major_m:.0f} × {em.semi_minor_m:.0f} m, 长轴方位 / major axis {em.orientation_deg:.0f}°"),
        ("轨迹 / Track", f"移动 / moved ({len(track)} fixes)" if moved else "未见移动 / no movement seen"),
        ("1 m 处估计功率 / Power at 1 m", "—" if em.est_power_dbm is None else f"{em.est_power_dbm:.1f} dBm"),
        ("关联键 / Association key", em.assoc_key),
    ]
    ids = identities_seen(dets)
    ids_html = "" if not ids else (
        "<h3>出现过的身份 / Identities decoded</h3><table class='grid'><tr><th>身份 / identity</th>"
        "<th>首次 / first (UTC)</th><th>最后 / last (UTC)</th><th>次数 / count</th></tr>"
        + "".join(f"<tr><td>{_e(i)}</td><td>{_e(iso(a))}</td><td>{_e(iso(b))}</td><td>{n}</td></tr>"
                  for i, a, b, n in ids) + "</table>")
    reasons = "".join(f"<li>{_e(r)}</li>" for r in em.reasons)
    indicators = indicators_table(em) or "<p>无 / none</p>"
    sensors_tbl = ("<table class='grid'><tr><th>传感器 / sensor</th><th>纬度, 经度 / lat, lon</th><th>次数 / detections</th>"
                   "<th>最强 / max dBm</th><th>首次 / first (UTC)</th><th>最后 / last (UTC)</th></tr>"
                   + "".join(f"<tr><td>{_e(s.sensor_id)}</td><td>{s.lat:.6f}, {s.lon:.6f}</td><td>{s.n_detections}</td>"
                             f"<td>{s.max_power_dbm:.1f}</td><td>{_e(iso(s.first_utc))}</td><td>{_e(iso(s.last_utc))}</td></tr>"
                             for s in heard) + "</table>")
    ev_tbl = "<p>无 / none</p>" if not ev_rows else (
        "<table class='grid'><tr><th>#</th><th>类型 / kind</th><th>传感器 / sensor</th><th>时间 / time (UTC)</th>"
        "<th>纬度, 经度 / lat, lon</th><th>采样率 / rate</th><th>中心频率 / centre</th><th>文件 / files</th>"
        "<th>SHA-512</th></tr>"
        + "".join(f"<tr><td>{ev.id}</td><td>{_e(ev.kind)}</td><td>{_e(ev.sensor_id)}</td><td>{_e(iso(ev.t_utc))}</td>"
                  f"<td>{'—' if ev.lat is None else f'{ev.lat:.6f}, {ev.lon:.6f}'}</td>"
                  f"<td>{ev.sample_rate_hz / 1e3:.1f} kS/s</td><td>{ev.center_freq_hz / 1e6:.4f} MHz</td>"
                  f"<td>{_links(files)}</td>"
                  f"<td><code>{ev.sha512}</code></td></tr>" for ev, files in ev_rows) + "</table>")
    body = (
        "<div class='case-body'>"
        f"<h2>身份与判定 / Identity and verdict</h2>{_table(ident_rows)}{ids_html}"
        f"<h2>指标与证据 / Indicators and evidence</h2>{indicators}"
        + (f"<h3>理由 / Reasons</h3><ul>{reasons}</ul>" if reasons else "")
        + f"<h2>时间线 / Timeline</h2>{timeline_svg(dets, [ev for ev, _ in ev_rows])}"
        f"<h2>接收传感器 / Sensors that heard it</h2>{sensors_tbl}"
        f"<h2>频谱与瀑布图 / Spectrum and waterfall</h2>{pics}"
        f"<h2>证据文件 / Evidence files (SigMF)</h2>{ev_tbl}"
        "<h2>文件与校验 / Files and integrity</h2><ul>"
        "<li><a href='case.geojson'>case.geojson</a> (GeoJSON, RFC 7946, [经度 lon, 纬度 lat])</li>"
        "<li><a href='case.kml'>case.kml</a> (KML 2.2)</li>"
        "<li><a href='detections.csv'>detections.csv</a> (全部检测 / every detection)</li>"
        f"<li><a href='{MANIFEST}'>{MANIFEST}</a>: 校验 / verify with <code>rfhunt case verify FOLDER</code> "
        f"or <code>sha256sum -c {MANIFEST}</code></li></ul></div>")
    fig.html.add_child(folium.Element(head + body))
    fmap.save(str(out / "case.html"))
    install_assets(out)
    write_manifest(out)
    return out / "case.html"
