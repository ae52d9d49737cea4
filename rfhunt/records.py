"""Records that travel from sensor nodes to the collector, and their wire encoding.

A record is a frozen dataclass with units in its field names. On the wire it is one
UTF-8 JSON object with a schema version ``"v"`` and a ``"type"``; :func:`decode` checks
every field and raises :class:`~rfhunt.errors.WireError` naming the first bad one, so a
collector can reject garbage with a reason and go on.

Sensors send detections, heartbeats and evidence chunks (:class:`EvidenceChunk`: a snippet
of audio or IQ cut by :func:`evidence_chunks` into messages under the size limit); the
collector sends sensors evidence requests (:class:`EvidenceRequest`,
:func:`encode_request` / :func:`decode_request`) on the same connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rfhunt.errors import WireError

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_FEATURES = 64

#: Kinds of detection a sensor reports.
KINDS = ("gsm_downlink", "gsm_uplink", "fm")

FeatureValue = float | int | str | bool | None


@dataclass(frozen=True)
class Detection:
    """One carrier seen by one sensor in one capture.

    Attributes
    ----------
    sensor_id : str
        Name of the sensor node.
    seq : int
        Per-sensor message number, increasing (the collector stores each (sensor_id, seq) once).
    t_utc : float
        Unix time (seconds, UTC) of the middle of the capture.
    sensor_lat, sensor_lon : float
        WGS84 position of the sensor's antenna at ``t_utc``, degrees.
    kind : str
        One of :data:`KINDS`.
    freq_hz : float
        Centre frequency of the channel the carrier occupies, Hz.
    channel : int or None
        ARFCN for GSM kinds, ``None`` for FM.
    bandwidth_hz : float
        Width of the channel the power was measured in, Hz.
    power_dbm : float
        Received power at the antenna port, dBm (bursts: mean power while on air).
    snr_db : float
        Power over the noise floor in the same bandwidth, dB.
    features : dict
        Kind-specific scalars (duty cycle, decoded identity, ...).
    """

    sensor_id: str
    seq: int
    t_utc: float
    sensor_lat: float
    sensor_lon: float
    kind: str
    freq_hz: float
    channel: int | None
    bandwidth_hz: float
    power_dbm: float
    snr_db: float
    features: dict[str, FeatureValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Heartbeat:
    """A sensor's periodic status.

    Attributes
    ----------
    sensor_id : str
    seq : int
    t_utc : float
    sensor_lat, sensor_lon : float
        Position in WGS84 degrees (mobile sensors move).
    mobile : bool
    source_state : str
        ``"ok"``, ``"error: ..."``, ``"closed"``.
    samples_read : int
        Samples delivered by the IQ source since start.
    dropped_samples : int
        Samples the source lost since start (USB overflow, network stall, recording gap).
    scans_done : int
    outbox_depth : int or None
        Records in the sensor's outbox waiting for the collector's acknowledgement (None:
        not told; the field is then left out of the message).
    """

    sensor_id: str
    seq: int
    t_utc: float
    sensor_lat: float
    sensor_lon: float
    mobile: bool
    source_state: str
    samples_read: int
    dropped_samples: int
    scans_done: int
    outbox_depth: int | None = None


#: Kinds of evidence snippet and the bytes of one of their samples on the wire (``iq``:
#: little-endian complex64, ``audio``: little-endian float32, both full scale 1).
EVIDENCE_KINDS = {"iq": 8, "audio": 4}
#: Largest snippet bytes one chunk carries (base64 makes it 4/3 larger; the rest of the
#: message fits in what is left of :data:`MAX_MESSAGE_BYTES`).
EVIDENCE_CHUNK_BYTES = 45_000
#: Most chunks of one snippet (about 184 MB: 11 minutes of FM channel IQ at 240 kHz).
EVIDENCE_MAX_PARTS = 4096


@dataclass(frozen=True)
class EvidenceChunk:
    """One piece of an evidence snippet (IQ or demodulated audio) a sensor recorded.

    A snippet too long for one message travels as ``parts`` chunks, each its own record
    with its own ``seq`` (so each is stored once and acknowledged on its own); the
    collector joins them when all have arrived and checks the whole against ``sha512``.

    Attributes
    ----------
    sensor_id, seq, sensor_lat, sensor_lon
        As in :class:`Detection`.
    t_utc : float
        Unix time of the snippet's first sample (seconds, UTC).
    detection_seq : int
        ``seq`` of the detection (same sensor) the snippet documents.
    request_id : str or None
        The collector's evidence request this answers (None: the sensor's own initiative).
    kind : str
        One of :data:`EVIDENCE_KINDS`.
    sample_rate_hz : float
        Sample rate of the snippet, Hz.
    center_freq_hz : float
        Centre of the IQ, or the station's frequency for audio, Hz.
    n_samples : int
        Samples in the whole snippet.
    sha512 : str
        Lower-case hex SHA-512 of the whole snippet's bytes.
    part, parts : int
        This chunk's index (from 0) and the number of chunks.
    data_b64 : str
        This chunk's bytes, base64 (standard alphabet, padded).
    """

    sensor_id: str
    seq: int
    t_utc: float
    sensor_lat: float
    sensor_lon: float
    detection_seq: int
    request_id: str | None
    kind: str
    sample_rate_hz: float
    center_freq_hz: float
    n_samples: int
    sha512: str
    part: int
    parts: int
    data_b64: str

    @property
    def data(self) -> bytes:
        """This chunk's bytes."""
        return base64.b64decode(self.data_b64)


RECORD_TYPES: dict[str, type] = {"detection": Detection, "heartbeat": Heartbeat, "evidence": EvidenceChunk}
_TYPE_OF = {cls: name for name, cls in RECORD_TYPES.items()}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in RECORD_TYPES.values()}
_NAMES = {name: frozenset(_FIELDS[cls]) for name, cls in RECORD_TYPES.items()}
#: Fields a message may leave out.
_OPTIONAL = frozenset({"features", "outbox_depth"})


def _as_dict(record: Detection | Heartbeat) -> dict[str, Any]:
    """The record's fields (features copied: they are scalars, so a shallow copy is a deep one)."""
    out = {n: getattr(record, n) for n in _FIELDS[type(record)]}
    if "features" in out:
        feats = out["features"]
        out["features"] = dict(feats) if isinstance(feats, dict) else feats
    return out


def encode(record: Detection | Heartbeat) -> bytes:
    """Encode a record as one JSON message (UTF-8 bytes)."""
    try:
        type_name = _TYPE_OF[type(record)]
    except KeyError:
        raise WireError(f"cannot encode {type(record).__name__}: not a wire record") from None
    values = _as_dict(record)
    if values.get("outbox_depth", 0) is None:
        del values["outbox_depth"]  # optional: older collectors do not know the field
    _validate(type_name, values)
    body = {"v": WIRE_VERSION, "type": type_name, **values}
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(f"{type_name} message is {len(data)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit")
    return data


def decode(data: bytes) -> Detection | Heartbeat:
    """Decode and validate one message.

    Raises
    ------
    WireError
        If the message is oversize, not JSON, of an unknown version or type, or any field
        is missing, unknown, of the wrong type or out of range.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                        reason="oversize")
    try:
        obj = _DECODER.decode(data.decode("utf-8"))
    except WireError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"message is not UTF-8 JSON: {exc}", reason="not_json") from None
    if not isinstance(obj, dict):
        raise WireError("message is not a JSON object", reason="not_object")
    seq = obj.get("seq")
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None
    version = obj.pop("v", None)
    if version != WIRE_VERSION:
        raise WireError(f"unsupported wire version {version!r} (this collector speaks {WIRE_VERSION})",
                        reason="version", seq=seq)
    type_name = obj.pop("type", None)
    if not isinstance(type_name, str) or type_name not in RECORD_TYPES:
        raise WireError(f"unknown message type {type_name!r:.80}", reason="type", seq=seq)
    if type_name == "detection":
        det = _valid_detection(obj)
        if det is not None:
            return det
    try:
        _validate(type_name, obj)
    except WireError as exc:
        exc.seq = seq
        raise
    return RECORD_TYPES[type_name](**obj)


def _reject_constant(name: str) -> None:
    raise WireError(f"non-finite number {name} in message", reason="not_json")


# made once: json.loads(..., parse_constant=...) builds a decoder per call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _is_real(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    # an int is finite however large (math.isfinite would overflow on a huge one)
    return isinstance(v, int) and not isinstance(v, bool)


_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _check_id(name: str, v: Any) -> None:
    # ids end up in file names, log lines and map pages: letters, digits and . _ : - only
    if not isinstance(v, str) or not _ID_RE.fullmatch(v):
        raise WireError(f"field {name!r} must be 1-64 of A-Z a-z 0-9 . _ : -, got {v!r:.80}")


def _check_text(name: str, v: Any, max_len: int) -> None:
    # printable excludes NUL, control characters and lone surrogates (not encodable as UTF-8)
    if not isinstance(v, str) or len(v) > max_len or not v.isprintable():
        raise WireError(f"{name} must be printable text of at most {max_len} characters, got {v!r:.80}")


def _check_range(name: str, v: Any, lo: float, hi: float) -> None:
    if not _is_real(v) or not lo <= v <= hi:
        raise WireError(f"field {name!r} must be a finite number in [{lo}, {hi}], got {v!r:.80}")


def _check_int(name: str, v: Any, lo: int = 0, hi: int = 2**63 - 1) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise WireError(f"field {name!r} must be an integer in [{lo}, {hi}], got {v!r:.80}")


_DET_ALL = frozenset(_FIELDS[Detection])
_DET_REQUIRED = _DET_ALL - _OPTIONAL
_DET_REALS = (("t_utc", 0.0, 1e11), ("sensor_lat", -90.0, 90.0), ("sensor_lon", -180.0, 180.0),
              ("freq_hz", 1.0, 10e9), ("bandwidth_hz", 1.0, 100e6), ("power_dbm", -250.0, 100.0),
              ("snr_db", -100.0, 250.0))
_KIND_SET = frozenset(KINDS)
_INT_MAX = 2**63 - 1


def _valid_detection(obj: dict[str, Any]) -> Detection | None:
    """The detection of a parsed message body (``v`` and ``type`` taken out) when every
    field passes the checks of :func:`_validate`, else None (``_validate`` then names the
    first bad field).

    The same rules as ``_validate``'s, written for the common case of a good message
    (exact types as ``json`` produces them, no message text built): the collector decodes
    every message it receives with it.
    """
    keys = obj.keys()
    if keys != _DET_ALL:
        if keys != _DET_REQUIRED:
            return None
        obj["features"] = {}  # optional: what Detection's default would give
    sid = obj["sensor_id"]
    if type(sid) is not str or not _ID_RE.fullmatch(sid):
        return None
    v = obj["seq"]
    if type(v) is not int or not 0 <= v <= _INT_MAX:
        return None
    for name, lo, hi in _DET_REALS:
        v = obj[name]
        t = type(v)
        # NaN and infinities fail the bounds (all finite); bools are not int here (exact type)
        if (t is not float and t is not int) or not lo <= v <= hi:
            return None
    kind = obj["kind"]
    if type(kind) is not str or kind not in _KIND_SET:
        return None
    v = obj["channel"]
    if v is not None and (type(v) is not int or not 0 <= v <= 65535):
        return None
    feats = obj["features"]
    if type(feats) is not dict or len(feats) > MAX_FEATURES:
        return None
    for key, val in feats.items():
        if type(key) is not str or not key or len(key) > 64 or not key.isprintable():
            return None
        t = type(val)
        if t is str:
            if len(val) > 1024 or not val.isprintable():
                return None
        elif t is float:
            if not math.isfinite(val):
                return None
        elif val is not None and t is not int and t is not bool:
            return None
    det = object.__new__(Detection)  # every field checked: skip the frozen __init__'s setattr calls
    det.__dict__.update(obj)
    return det


def _validate(type_name: str, obj: dict[str, Any]) -> None:
    cls = RECORD_TYPES[type_name]
    names = _NAMES[type_name]
    unknown = sorted(set(obj) - names)
    if unknown:
        raise WireError(f"{type_name} has unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [n for n in _FIELDS[cls] if n not in obj and n not in _OPTIONAL]
    if missing:
        raise WireError(f"{type_name} lacks field(s) {', '.join(map(repr, missing))}")
    _check_id("sensor_id", obj["sensor_id"])
    _check_int("seq", obj["seq"])
    _check_range("t_utc", obj["t_utc"], 0.0, 1e11)
    _check_range("sensor_lat", obj["sensor_lat"], -90.0, 90.0)
    _check_range("sensor_lon", obj["sensor_lon"], -180.0, 180.0)
    if type_name == "detection":
        if obj["kind"] not in KINDS:
            raise WireError(f"field 'kind' must be one of {KINDS}, got {obj['kind']!r:.80}")
        _check_range("freq_hz", obj["freq_hz"], 1.0, 10e9)
        if obj["channel"] is not None:
            _check_int("channel", obj["channel"], 0, 65535)
        _check_range("bandwidth_hz", obj["bandwidth_hz"], 1.0, 100e6)
        _check_range("power_dbm", obj["power_dbm"], -250.0, 100.0)
        _check_range("snr_db", obj["snr_db"], -100.0, 250.0)
        feats = obj.get("features", {})
        if not isinstance(feats, dict) or len(feats) > MAX_FEATURES:
            raise WireError(f"field 'features' must be an object of at most {MAX_FEATURES} entries")
        for key, val in feats.items():
            if not isinstance(key, str) or not key:
                raise WireError(f"feature name {key!r:.80} must be a non-empty string")
            _check_text(f"feature name {key[:64]!r}", key, 64)
            if isinstance(val, float) and not math.isfinite(val):
                raise WireError(f"feature {key!r} is not finite")
            if val is not None and not isinstance(val, (bool, int, float, str)):
                raise WireError(f"feature {key!r} must be a scalar, got {type(val).__name__}")
            if isinstance(val, str):
                _check_text(f"feature {key!r}", val, 1024)
    elif type_name == "evidence":
        _validate_evidence(obj)
    else:
        if not isinstance(obj["mobile"], bool):
            raise WireError(f"field 'mobile' must be true or false, got {obj['mobile']!r:.80}")
        _check_text("field 'source_state'", obj["source_state"], 256)
        for name in ("samples_read", "dropped_samples", "scans_done"):
            _check_int(name, obj[name])
        if obj.get("outbox_depth") is not None:
            _check_int("outbox_depth", obj["outbox_depth"])


_SHA512_RE = re.compile(r"[0-9a-f]{128}")


def _validate_evidence(obj: dict[str, Any]) -> None:
    _check_int("detection_seq", obj["detection_seq"])
    if obj["request_id"] is not None:
        _check_id("request_id", obj["request_id"])
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in EVIDENCE_KINDS:
        raise WireError(f"field 'kind' must be one of {tuple(EVIDENCE_KINDS)}, got {kind!r:.80}")
    _check_range("sample_rate_hz", obj["sample_rate_hz"], 1.0, 100e6)
    _check_range("center_freq_hz", obj["center_freq_hz"], 1.0, 10e9)
    if not isinstance(obj["sha512"], str) or not _SHA512_RE.fullmatch(obj["sha512"]):
        raise WireError(f"field 'sha512' must be 128 lower-case hex digits, got {obj['sha512']!r:.80}")
    _check_int("parts", obj["parts"], 1, EVIDENCE_MAX_PARTS)
    _check_int("part", obj["part"], 0, obj["parts"] - 1)
    size = EVIDENCE_KINDS[kind]
    _check_int("n_samples", obj["n_samples"], 1, EVIDENCE_MAX_PARTS * EVIDENCE_CHUNK_BYTES // size)
    total = obj["n_samples"] * size
    if not (obj["parts"] - 1) * EVIDENCE_CHUNK_BYTES < total <= obj["parts"] * EVIDENCE_CHUNK_BYTES:
        raise WireError(f"field 'parts' = {obj['parts']} does not fit {obj['n_samples']} {kind} samples "
                        f"({total} bytes in chunks of {EVIDENCE_CHUNK_BYTES})")
    text = obj["data_b64"]
    if not isinstance(text, str) or len(text) > 4 * (EVIDENCE_CHUNK_BYTES // 3 + 1):
        raise WireError("field 'data_b64' must be a base64 string of at most "
                        f"{EVIDENCE_CHUNK_BYTES} bytes")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise WireError(f"field 'data_b64' is not base64: {exc}") from None
    last = obj["part"] == obj["parts"] - 1
    want = total - (obj["parts"] - 1) * EVIDENCE_CHUNK_BYTES if last else EVIDENCE_CHUNK_BYTES
    if len(data) != want:
        raise WireError(f"chunk {obj['part']} of {obj['parts']} holds {len(data)} bytes, expected {want}")


def evidence_chunks(samples: Any, *, kind: str, sensor_id: str, seqs: Any, t_utc: float, sensor_lat: float,
                    sensor_lon: float, detection_seq: int, sample_rate_hz: float, center_freq_hz: float,
                    request_id: str | None = None) -> list[EvidenceChunk]:
    """Cut a snippet into :class:`EvidenceChunk` records.

    Parameters
    ----------
    samples : ndarray
        Complex IQ (sent as complex64) for ``kind="iq"``, real audio (float32) for ``"audio"``.
    seqs : iterator of int
        Supplies one fresh sequence number per chunk (e.g. an outbox's ``next_seq``
        wrapped in ``iter(f, None)``), in order.
    t_utc : float
        Time of the first sample, Unix s.

    Raises
    ------
    WireError
        If the kind is unknown, the samples are empty, of the wrong type for the kind, or
        too long for :data:`EVIDENCE_MAX_PARTS` chunks.
    """
    if kind not in EVIDENCE_KINDS:
        raise WireError(f"evidence kind {kind!r} is not one of {', '.join(EVIDENCE_KINDS)}")
    arr = np.asarray(samples)
    if arr.ndim != 1 or arr.size == 0:
        raise WireError(f"evidence samples must be a non-empty 1-D array, got shape {arr.shape}")
    if np.iscomplexobj(arr) != (kind == "iq"):
        raise WireError(f"{kind} evidence cannot be made of {arr.dtype} samples")
    payload = np.ascontiguousarray(arr, dtype="<c8" if kind == "iq" else "<f4").tobytes()
    parts = -(-len(payload) // EVIDENCE_CHUNK_BYTES)
    if parts > EVIDENCE_MAX_PARTS:
        raise WireError(f"evidence of {len(payload)} bytes needs {parts} chunks, over the limit of "
                        f"{EVIDENCE_MAX_PARTS}")
    digest = hashlib.sha512(payload).hexdigest()
    seq_iter = iter(seqs)
    out = []
    for k in range(parts):
        piece = payload[k * EVIDENCE_CHUNK_BYTES:(k + 1) * EVIDENCE_CHUNK_BYTES]
        out.append(EvidenceChunk(sensor_id, next(seq_iter), float(t_utc), sensor_lat, sensor_lon, int(detection_seq),
                                 request_id, kind, float(sample_rate_hz), float(center_freq_hz), int(arr.size),
                                 digest, k, parts, base64.b64encode(piece).decode("ascii")))
    return out


# ------------------------------------------------------------------ collector -> sensor
@dataclass(frozen=True)
class EvidenceRequest:
    """The collector asks sensors for evidence of a carrier (sent on the ROUTER socket to a
    sensor's DEALER, beside the acknowledgements).

    A sensor that finds the carrier in one of its decode scans before ``expires_utc``
    sends the snippets of that detection (:class:`EvidenceChunk` with this ``request_id``)
    once per request; a request it cannot serve expires quietly.

    Attributes
    ----------
    request_id : str
    kind : str
        Detection kind of the carrier (one of :data:`KINDS`).
    freq_hz : float
        The carrier, Hz (matched on the kind's channel raster).
    seconds : float
        Length of each snippet, s.
    want : tuple of str
        Snippet kinds wanted, from :data:`EVIDENCE_KINDS`.
    expires_utc : float
        Unix time after which the request lapses.
    """

    request_id: str
    kind: str
    freq_hz: float
    seconds: float
    want: tuple[str, ...]
    expires_utc: float


#: Longest snippet a request may ask for, s (a sensor captures it in one piece: 10 s at
#: 2.4 MS/s is 48 MB of 8-bit samples, 192 MB as complex64).
MAX_EVIDENCE_SECONDS = 10.0


def encode_request(req: EvidenceRequest) -> bytes:
    """One JSON message for a sensor (validated as :func:`decode_request` would)."""
    body = {"v": WIRE_VERSION, "type": "evidence_request", "request_id": req.request_id, "kind": req.kind,
            "freq_hz": req.freq_hz, "seconds": req.seconds, "want": list(req.want), "expires_utc": req.expires_utc}
    _validate_request(body)
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def decode_request(obj: dict[str, Any]) -> EvidenceRequest:
    """Check a parsed ``evidence_request`` message from the collector.

    Raises
    ------
    WireError
        If the version is unknown or a field is missing, unknown or out of range.
    """
    _validate_request(obj)
    return EvidenceRequest(obj["request_id"], obj["kind"], float(obj["freq_hz"]), float(obj["seconds"]),
                           tuple(obj["want"]), float(obj["expires_utc"]))


_REQUEST_FIELDS = frozenset({"v", "type", "request_id", "kind", "freq_hz", "seconds", "want", "expires_utc"})


def _validate_request(obj: dict[str, Any]) -> None:
    if obj.get("v") != WIRE_VERSION:
        raise WireError(f"unsupported wire version {obj.get('v')!r} in a request (this sensor speaks {WIRE_VERSION})")
    if obj.get("type") != "evidence_request":
        raise WireError(f"not an evidence request: type {obj.get('type')!r:.80}")
    if set(obj) != _REQUEST_FIELDS:
        odd = sorted(set(obj) ^ _REQUEST_FIELDS)
        raise WireError(f"evidence_request has unknown or missing field(s) {', '.join(map(repr, odd))}")
    _check_id("request_id", obj["request_id"])
    if not isinstance(obj["kind"], str) or obj["kind"] not in KINDS:
        raise WireError(f"field 'kind' must be one of {KINDS}, got {obj['kind']!r:.80}")
    _check_range("freq_hz", obj["freq_hz"], 1.0, 10e9)
    _check_range("seconds", obj["seconds"], 0.01, MAX_EVIDENCE_SECONDS)
    want = obj["want"]
    if not isinstance(want, list) or not want or any(not isinstance(w, str) or w not in EVIDENCE_KINDS for w in want) \
            or len(set(want)) != len(want):
        raise WireError(f"field 'want' must list distinct kinds from {tuple(EVIDENCE_KINDS)}, got {want!r:.80}")
    _check_range("expires_utc", obj["expires_utc"], 0.0, 1e11)
