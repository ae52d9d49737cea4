"""IQ recordings as sources: SigMF datasets and raw RTL-SDR / GNU Radio files, and a SigMF writer.

Formats (by extension, or ``fmt=``):

=====================  ============  ==============================================
extension              format        native block dtype
=====================  ============  ==============================================
``.sigmf-meta/-data``  from metadata cu8 → uint8 (``native="cu8"``), others complex64
``.cu8``, ``.bin``     cu8           uint8 interleaved (RTL-SDR ``rtl_sdr`` output)
``.cfile``, ``.cf32``  cf32_le       complex64 (GNU Radio file sink)
``.cs8``, ``.ci8``     ci8           complex64, ``s / 128``
``.cs16``, ``.ci16``   ci16_le       complex64, ``s / 32768``
=====================  ============  ==============================================

Raw files carry no metadata, so ``sample_rate_hz`` and ``center_freq_hz`` are required.
Files are memory-mapped; each block is copied out. Blocks never span a discontinuity: at a
SigMF capture boundary where the frequency changes or ``core:datetime`` shows a gap, a block
ends early, and the next block carries the new frequency and the gap as ``dropped_samples``.
A read that wants more samples than remain raises :class:`SourceError` ("end of recording")
unless ``loop=True``; :attr:`RecordingSource.remaining_samples` says how many are left.
``t_utc`` is absolute when the metadata has ``core:datetime``, else counted from 0; each loop
adds :attr:`RecordingSource.loop_period_s` (capture gaps included).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rfhunt.errors import RecordingError, SourceError
from sensors.sources.base import IQBlock, IQSource, complex_to_cu8, cu8_to_complex64

RAW_EXTENSIONS = {".cu8": "cu8", ".bin": "cu8", ".cfile": "cf32_le", ".cf32": "cf32_le",
                  ".fc32": "cf32_le", ".cs8": "ci8", ".ci8": "ci8", ".cs16": "ci16_le",
                  ".ci16": "ci16_le"}
FMT_ALIASES = {"cfile": "cf32_le", "cf32": "cf32_le", "fc32": "cf32_le", "cs8": "ci8",
               "cs16": "ci16_le", "ci16": "ci16_le", "cu16": "cu16_le", "cf64": "cf64_le"}
WRITE_DATATYPES = ("cu8", "ci8", "ci16_le", "cf32_le")
_DATATYPE = re.compile(r"^([cr])(f32|f64|i8|u8|i16|u16|i32|u32)(_le|_be)?$")


def parse_datatype(datatype: str, where: str) -> np.dtype:
    """SigMF datatype string to the numpy dtype of one I or Q component."""
    m = _DATATYPE.match(datatype)
    if not m:
        raise RecordingError(f"{where}: unknown datatype {datatype!r} (expected e.g. cu8, ci8, "
                             f"ci16_le, cf32_le)")
    kind, comp, endian = m.groups()
    if kind == "r":
        raise RecordingError(f"{where}: datatype {datatype!r} is real-valued; rfhunt needs "
                             f"complex I/Q")
    if comp not in ("i8", "u8") and endian is None:
        raise RecordingError(f"{where}: datatype {datatype!r} needs _le or _be")
    order = ">" if endian == "_be" else "<"
    return np.dtype(order + {"f": "f", "i": "i", "u": "u"}[comp[0]] + str(int(comp[1:]) // 8))


def _to_complex64(raw: np.ndarray, comp: np.dtype) -> np.ndarray:
    """Raw component bytes to complex64 (full scale ±1 for integer types)."""
    if comp == np.uint8:
        return cu8_to_complex64(raw)
    vals = raw.view(comp)
    if comp.kind == "f":
        out = vals.astype(np.float32)
    elif comp.kind == "i":
        out = vals.astype(np.float32) * np.float32(1.0 / 2 ** (8 * comp.itemsize - 1))
    else:                       # cu16, cu32: centred like cu8
        half = (2 ** (8 * comp.itemsize) - 1) / 2.0
        out = (vals.astype(np.float32) - np.float32(half)) * np.float32(1.0 / half)
    return out.view(np.complex64)


def _parse_datetime(text: object, where: str) -> tuple[float, float]:
    """ISO-8601 UTC to (unix time, resolution in seconds)."""
    if not isinstance(text, str):
        raise RecordingError(f"{where}: core:datetime must be a string, got {text!r}")
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordingError(f"{where}: core:datetime {text!r} is not ISO-8601") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    frac = re.search(r"\d{2}:\d{2}:\d{2}\.(\d+)", text)
    return t.timestamp(), (10.0 ** -len(frac.group(1)) if frac else 1.0)


def format_datetime(t_utc: float) -> str:
    """Unix time to SigMF ``core:datetime`` (microseconds, ``Z``)."""
    return _dt.datetime.fromtimestamp(t_utc, tz=_dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Capture:
    """One SigMF capture segment (a raw file is one capture)."""

    sample_start: int
    n_samples: int
    center_freq_hz: float
    t_utc: float
    byte_offset: int            # file offset of sample ``sample_start``
    dropped_before: int = 0     # samples missing between the previous capture and this one


def _number(d: dict, key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RecordingError(f"{where}: {key} must be a number, got {v!r}")
    return float(v)


class RecordingSource(IQSource):
    """A recording as an :class:`IQSource` (not real time; cannot be retuned).

    Attributes
    ----------
    path, data_path, meta_path : Path
        What was asked for, the sample file, and the SigMF metadata (None for raw files).
    datatype : str
        SigMF-style datatype (``cu8``, ``cf32_le``, ...).
    captures : list[Capture]
    total_samples, remaining_samples : int
    truncated_bytes : int
        Bytes at the end of the data file that do not make a whole sample (ignored).
    meta : dict or None
        The parsed SigMF metadata.
    """

    realtime = False

    def __init__(self, path: str | Path, *, sample_rate_hz: float | None = None,
                 center_freq_hz: float | None = None, fmt: str | None = None,
                 loop: bool = False, verify: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.loop = bool(loop)
        self.meta: dict | None = None
        self.meta_path: Path | None = None
        self._mm: np.ndarray | None = None
        meta_path, data_path = self._resolve(self.path, fmt)
        if meta_path is not None:
            self.meta_path = meta_path
            self._load_sigmf(meta_path, data_path, sample_rate_hz, center_freq_hz, verify)
        else:
            self._load_raw(data_path, fmt, sample_rate_hz, center_freq_hz)
        self._cap = 0
        self._pos = 0               # absolute sample index
        self._loops = 0
        self._pending_drop = 0
        self.center_freq_hz = self.captures[0].center_freq_hz
        self.status.state = "ok"

    # -- opening -------------------------------------------------------------------------

    @staticmethod
    def _resolve(path: Path, fmt: str | None) -> tuple[Path | None, Path]:
        name = path.name
        if name.endswith(".sigmf-meta"):
            return path, path.with_name(name[:-len(".sigmf-meta")] + ".sigmf-data")
        if name.endswith(".sigmf-data"):
            return path.with_name(name[:-len(".sigmf-data")] + ".sigmf-meta"), path
        if fmt is None:
            base = name[:-len(".sigmf")] if name.endswith(".sigmf") else name
            meta = path.with_name(base + ".sigmf-meta")
            if meta.exists():
                return meta, path.with_name(base + ".sigmf-data")
            if name.endswith(".sigmf"):
                raise RecordingError(f"{path}: SigMF archives (.sigmf tar files) are not "
                                     f"supported; extract the .sigmf-meta and .sigmf-data")
        return None, path

    def _map(self, data_path: Path) -> None:
        if not data_path.exists():
            raise RecordingError(f"{data_path}: data file does not exist")
        if data_path.stat().st_size == 0:
            raise RecordingError(f"{data_path}: data file is empty")
        try:
            self._mm = np.memmap(data_path, dtype=np.uint8, mode="r")
        except OSError as exc:
            raise RecordingError(f"{data_path}: cannot read ({exc.strerror or exc})") from None
        self.data_path = data_path

    def _set_format(self, datatype: str, where: str) -> None:
        self.datatype = datatype
        self._comp = parse_datatype(datatype, where)
        self._sample_bytes = 2 * self._comp.itemsize

    def _load_raw(self, data_path: Path, fmt: str | None, rate: float | None,
                  freq: float | None) -> None:
        if fmt is None:
            fmt = RAW_EXTENSIONS.get(data_path.suffix.lower())
            if fmt is None:
                raise RecordingError(
                    f"{data_path}: unknown recording format {data_path.suffix!r}; use a SigMF "
                    f"recording, one of {', '.join(sorted(RAW_EXTENSIONS))}, or pass fmt=")
        self._set_format(FMT_ALIASES.get(fmt, fmt), str(data_path))
        for name, v in (("sample_rate_hz", rate), ("center_freq_hz", freq)):
            if v is None:
                raise RecordingError(f"{data_path}: a raw {self.datatype} file has no metadata: "
                                     f"pass {name}")
            if not (isinstance(v, (int, float)) and v > 0):
                raise RecordingError(f"{data_path}: {name}={v!r} must be a positive number")
        self._map(data_path)
        self.sample_rate_hz = float(rate)  # type: ignore[arg-type]
        total, self.truncated_bytes = divmod(self._mm.size, self._sample_bytes)  # type: ignore
        if total == 0:
            raise RecordingError(f"{data_path}: shorter than one {self.datatype} sample")
        self.total_samples = total
        self.captures = [Capture(0, total, float(freq), 0.0, 0)]  # type: ignore[arg-type]

    def _load_sigmf(self, meta_path: Path, data_path: Path, rate: float | None,
                    freq: float | None, verify: bool) -> None:
        where = str(meta_path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecordingError(f"{meta_path}: metadata file does not exist") from None
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{meta_path}: malformed JSON ({exc.msg} at line {exc.lineno}, "
                                 f"column {exc.colno})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{meta_path}: cannot read ({exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
            raise RecordingError(f"{meta_path}: no 'global' object: not SigMF metadata")
        self.meta = meta
        glob = meta["global"]
        if glob.get("core:metadata_only"):
            raise RecordingError(f"{meta_path}: metadata-only SigMF recording has no samples")
        if "core:datatype" not in glob:
            raise RecordingError(f"{meta_path}: global has no core:datatype")
        self._set_format(str(glob["core:datatype"]), where)
        n_ch = glob.get("core:num_channels", 1)
        if n_ch != 1:
            raise RecordingError(f"{meta_path}: core:num_channels={n_ch!r}: only single-channel "
                                 f"recordings are supported")
        if isinstance(glob.get("core:dataset"), str):
            data_path = meta_path.parent / glob["core:dataset"]
        meta_rate = _number(glob, "core:sample_rate", where)
        if meta_rate is not None and rate is not None and abs(meta_rate - rate) > 1e-6:
            raise RecordingError(f"{meta_path}: core:sample_rate is {meta_rate} but "
                                 f"sample_rate_hz={rate} was passed")
        rate = meta_rate if meta_rate is not None else rate
        if rate is None or not rate > 0:
            raise RecordingError(f"{meta_path}: no core:sample_rate in global: pass "
                                 f"sample_rate_hz")
        self.sample_rate_hz = float(rate)
        self._map(data_path)
        if verify:
            self._verify_sha512(glob, where)
        caps = meta.get("captures", [])
        if not isinstance(caps, list) or not caps:
            caps = [{"core:sample_start": 0}]
        self.captures = self._build_captures(caps, freq, where)
        self._check_annotations(meta.get("annotations", []), where)

    def _verify_sha512(self, glob: dict, where: str) -> None:
        want = glob.get("core:sha512")
        if not want:
            raise RecordingError(f"{where}: verify=True but the metadata has no core:sha512")
        h = hashlib.sha512()
        step = 1 << 24
        for i in range(0, self._mm.size, step):  # type: ignore[union-attr]
            h.update(self._mm[i:i + step])  # type: ignore[index]
        if h.hexdigest() != str(want).lower():
            raise RecordingError(f"{self.data_path}: sha512 does not match core:sha512 in {where}")

    def _build_captures(self, caps: list, freq: float | None, where: str) -> list[Capture]:
        size = self._sample_bytes
        header_total = 0
        starts: list[tuple[int, int, float, tuple[float, float] | None]] = []
        for i, c in enumerate(caps):
            cw = f"{where}: captures[{i}]"
            if not isinstance(c, dict):
                raise RecordingError(f"{cw} is not an object")
            start = c.get("core:sample_start", 0)
            if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                raise RecordingError(f"{cw}: core:sample_start must be a non-negative integer, "
                                     f"got {start!r}")
            if starts and start <= starts[-1][0]:
                raise RecordingError(f"{cw}: core:sample_start {start} is not after the "
                                     f"previous capture's {starts[-1][0]}")
            hb = c.get("core:header_bytes", 0)
            if not isinstance(hb, int) or hb < 0:
                raise RecordingError(f"{cw}: core:header_bytes must be a non-negative integer")
            header_total += hb
            f = _number(c, "core:frequency", cw)
            if f is None:
                f = freq if freq is not None else (starts[-1][2] if starts else None)
            elif freq is not None and abs(f - freq) > 0.5:
                raise RecordingError(f"{cw}: core:frequency is {f} but center_freq_hz={freq} "
                                     f"was passed")
            if f is None:
                raise RecordingError(f"{cw}: no core:frequency: pass center_freq_hz")
            t = _parse_datetime(c["core:datetime"], cw) if "core:datetime" in c else None
            starts.append((start, header_total, f, t))
        if starts[0][0] != 0:
            raise RecordingError(f"{where}: the first capture starts at sample {starts[0][0]}, "
                                 f"not 0")
        total, self.truncated_bytes = divmod(self._mm.size - header_total, size)  # type: ignore
        self.total_samples = total
        if total <= starts[-1][0]:
            raise RecordingError(
                f"{self.data_path}: holds {max(total, 0)} samples but {where} declares a capture "
                f"starting at sample {starts[-1][0]}: the data file is truncated")
        out: list[Capture] = []
        rate = self.sample_rate_hz
        prev_res: float | None = None   # resolution of the previous capture's absolute time
        for i, (start, hdr, f, t) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else total
            cont = out[-1].t_utc + out[-1].n_samples / rate if out else 0.0
            t_utc, dropped = cont, 0
            if t is not None:
                t_utc = t[0]
                if out and prev_res is not None:
                    gap = round((t[0] - cont) * rate)
                    if gap > max(1.0, max(t[1], prev_res) * rate):
                        dropped = int(gap)
                    else:
                        t_utc = cont
                prev_res = t[1] if prev_res is None or dropped else min(prev_res, t[1])
            out.append(Capture(start, end - start, f, t_utc, hdr + start * size, dropped))
        return out

    def _check_annotations(self, anns: object, where: str) -> None:
        if not isinstance(anns, list):
            return
        for a in anns:
            if not isinstance(a, dict):
                continue
            s, n = a.get("core:sample_start"), a.get("core:sample_count")
            if isinstance(s, int) and isinstance(n, int) and s + n > self.total_samples:
                raise RecordingError(
                    f"{self.data_path}: holds {self.total_samples} samples but an annotation in "
                    f"{where} runs to sample {s + n}: the data file is truncated")

    # -- the IQSource interface ----------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Seconds of samples in the recording (capture gaps not counted)."""
        return self.total_samples / self.sample_rate_hz

    @property
    def loop_period_s(self) -> float:
        """How far ``t_utc`` advances per loop: from the first capture's start to the last
        capture's end, so capture gaps count and loops never overlap in time."""
        first, last = self.captures[0], self.captures[-1]
        return last.t_utc + last.n_samples / self.sample_rate_hz - first.t_utc

    @property
    def remaining_samples(self) -> int:
        """Samples left before the end (not counting loops)."""
        return self.total_samples - self._pos

    def tune(self, center_freq_hz: float, sample_rate_hz: float | None = None,
             gain_db: float | None = None) -> None:
        """Accept only the recorded tuning; gain is a label (a recording cannot change it)."""
        where = self.meta_path or self.data_path
        if abs(center_freq_hz - self.center_freq_hz) > 0.5:
            raise SourceError(f"{where}: recorded at {self.center_freq_hz:.0f} Hz; a recording "
                              f"cannot be retuned to {center_freq_hz:.0f} Hz")
        if sample_rate_hz is not None and abs(sample_rate_hz - self.sample_rate_hz) > 1e-6:
            raise SourceError(f"{where}: recorded at {self.sample_rate_hz:.0f} S/s; a recording "
                              f"cannot be resampled to {sample_rate_hz:.0f} S/s")
        if gain_db is not None:
            self.gain_db = float(gain_db)

    def _next_cap(self, i: int) -> int | None:
        if i + 1 < len(self.captures):
            return i + 1
        return 0 if self.loop else None

    def _joins(self, i: int, j: int) -> bool:
        """Can a block run on from capture i into capture j?"""
        a, b = self.captures[i], self.captures[j]
        return a.center_freq_hz == b.center_freq_hz and (j == 0 or not b.dropped_before)

    def _run_to_eof(self) -> int:
        """Samples left if nothing but the end stops the current run, else a huge number."""
        i = self._cap
        while i + 1 < len(self.captures):
            if not self._joins(i, i + 1):
                return 1 << 62
            i += 1
        return self.remaining_samples

    def read(self, n_samples: int) -> IQBlock:
        if self._mm is None:
            raise SourceError(f"{self.data_path}: recording is closed")
        if n_samples <= 0:
            raise SourceError(f"{self.data_path}: n_samples must be > 0, got {n_samples}")
        if not self.loop and self._run_to_eof() < n_samples:
            raise SourceError(f"end of recording {self.data_path}: {self.remaining_samples} "
                              f"samples left, {n_samples} asked for")
        cap = self.captures[self._cap]
        self.center_freq_hz = cap.center_freq_hz
        t_utc = (cap.t_utc + (self._pos - cap.sample_start) / self.sample_rate_hz
                 + self._loops * self.loop_period_s)
        dropped, self._pending_drop = self._pending_drop, 0
        parts: list[np.ndarray] = []
        want = n_samples
        while want:
            cap = self.captures[self._cap]
            in_cap = cap.sample_start + cap.n_samples - self._pos
            k = min(want, in_cap)
            off = cap.byte_offset + (self._pos - cap.sample_start) * self._sample_bytes
            parts.append(self._mm[off:off + k * self._sample_bytes])
            want -= k
            self._pos += k
            if k == in_cap:
                nxt = self._next_cap(self._cap)
                if nxt is None:
                    break
                joins = self._joins(self._cap, nxt)
                if nxt == 0:
                    self._pos = 0
                    self._loops += 1
                self._cap = nxt
                if not joins:
                    self._pending_drop = self.captures[nxt].dropped_before
                    break
        raw = np.concatenate(parts) if len(parts) > 1 else np.array(parts[0])
        n_got = raw.size // self._sample_bytes
        self._account(n_got, dropped)
        if self.datatype == "cu8":
            return IQBlock(raw, self.center_freq_hz, self.sample_rate_hz, self.gain_db, t_utc,
                           dropped, native="cu8")
        return IQBlock(_to_complex64(raw, self._comp), self.center_freq_hz, self.sample_rate_hz,
                       self.gain_db, t_utc, dropped, native="cf32")

    def close(self) -> None:
        self._mm = None
        super().close()


# ----------------------------------------------------------------------------------- writer


def _encode(samples: object, datatype: str) -> bytes:
    if isinstance(samples, IQBlock):
        samples = samples.samples
    arr = np.asarray(samples)
    if arr.dtype == np.uint8:
        if datatype == "cu8":
            if arr.size % 2:
                raise RecordingError(f"cu8 samples have an odd number of bytes ({arr.size})")
            return arr.tobytes()
        arr = cu8_to_complex64(arr)
    if not np.iscomplexobj(arr):
        raise RecordingError(f"write_sigmf needs complex samples or uint8 cu8 bytes, "
                             f"got {arr.dtype}")
    iq = np.ascontiguousarray(arr, dtype=np.complex64).reshape(-1)
    if datatype == "cu8":
        return complex_to_cu8(iq).tobytes()
    if datatype == "cf32_le":
        return iq.astype("<c8").tobytes()
    comp = np.dtype(np.int8 if datatype == "ci8" else "<i2")
    lo, hi = np.iinfo(comp).min, np.iinfo(comp).max
    return np.clip(np.rint(iq.view(np.float32) * -float(lo)), lo, hi).astype(comp).tobytes()


def write_sigmf(path_base: str | Path, samples: object, *, sample_rate_hz: float,
                center_freq_hz: float, datatype: str = "cu8", t_utc: float | None = None,
                description: str | None = None,
                geolocation: tuple[float, float] | tuple[float, float, float] | None = None,
                ) -> tuple[Path, Path]:
    """Write ``samples`` as a SigMF 1.x dataset ``path_base.sigmf-meta`` / ``.sigmf-data``.

    ``samples`` is complex (full scale ±1), uint8 interleaved cu8, or an IQBlock. ``datatype``
    is one of ``cu8``, ``ci8``, ``ci16_le``, ``cf32_le``. ``geolocation`` is (lat, lon[, alt m])
    and is stored as a GeoJSON Point ``[lon, lat, alt]``. Returns (meta_path, data_path).
    """
    if datatype not in WRITE_DATATYPES:
        raise RecordingError(f"write_sigmf: datatype {datatype!r} not one of "
                             f"{', '.join(WRITE_DATATYPES)}")
    if not sample_rate_hz > 0 or not center_freq_hz > 0:
        raise RecordingError(f"write_sigmf: sample_rate_hz={sample_rate_hz} and "
                             f"center_freq_hz={center_freq_hz} must be positive")
    base = str(path_base)
    for suffix in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if base.endswith(suffix):
            base = base[:-len(suffix)]
            break
    meta_path, data_path = Path(base + ".sigmf-meta"), Path(base + ".sigmf-data")
    payload = _encode(samples, datatype)
    glob: dict = {"core:datatype": datatype, "core:sample_rate": float(sample_rate_hz),
                  "core:version": "1.0.0", "core:num_channels": 1,
                  "core:sha512": hashlib.sha512(payload).hexdigest(), "core:recorder": "rfhunt"}
    if description is not None:
        glob["core:description"] = description
    if geolocation is not None:
        if len(geolocation) not in (2, 3):
            raise RecordingError(f"write_sigmf: geolocation must be (lat, lon) or "
                                 f"(lat, lon, alt), got {geolocation!r}")
        lat, lon = float(geolocation[0]), float(geolocation[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise RecordingError(f"write_sigmf: geolocation lat={lat}, lon={lon} out of range")
        coords = [lon, lat] + [float(a) for a in geolocation[2:]]
        glob["core:geolocation"] = {"type": "Point", "coordinates": coords}
    capture: dict = {"core:sample_start": 0, "core:frequency": float(center_freq_hz)}
    if t_utc is not None:
        capture["core:datetime"] = format_datetime(t_utc)
    meta = {"global": glob, "captures": [capture], "annotations": []}
    try:
        data_path.write_bytes(payload)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"{base}: cannot write SigMF ({exc})") from None
    return meta_path, data_path
