"""Spectrum and waterfall pictures of an IQ snippet, as PNG, with numpy and zlib only.

:func:`spectrum_db` and :func:`waterfall_db` compute (Welch-averaged and per-row) power
spectra in dB relative to full scale; :func:`spectrum_png` and :func:`waterfall_png`
draw them as RGB images; :func:`encode_png` writes any ``(h, w, 3)`` uint8 array as PNG.
The axes' labels are left to the page that shows the picture (it knows the language).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from rfhunt.errors import DspError

#: Colour map of the waterfall, low to high: dark blue, blue, cyan, yellow, red (RGB 0-255).
_STOPS = np.array([[0, 0, 48], [0, 60, 200], [0, 200, 220], [250, 230, 40], [220, 20, 20]], dtype=float)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an ``(height, width, 3)`` uint8 RGB image (8 bit, no interlace).

    Raises
    ------
    DspError
        If the array is not ``(h, w, 3)`` uint8 with h, w >= 1.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
        raise DspError(f"encode_png needs an (h, w, 3) uint8 array, got {img.shape} {img.dtype}")
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, 3 * w)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _frames(iq: np.ndarray, nfft: int) -> np.ndarray:
    x = np.asarray(iq, dtype=np.complex64).ravel()
    if nfft < 8 or x.size < nfft:
        raise DspError(f"need at least nfft={nfft} samples (>= 8) for a spectrum, got {x.size}")
    n = x.size // nfft
    return x[: n * nfft].reshape(n, nfft)


def waterfall_db(iq: np.ndarray, nfft: int = 256, rows: int = 128) -> np.ndarray:
    """Power spectra of consecutive stretches of ``iq``, dB full scale, DC in the middle.

    Returns an ``(r, nfft)`` array, r <= ``rows`` (consecutive FFT frames averaged into each row).
    """
    frames = _frames(iq, nfft)
    win = np.hanning(nfft).astype(np.float32)
    p = np.abs(np.fft.fftshift(np.fft.fft(frames * win, axis=1), axes=1)) ** 2 / (np.sum(win) ** 2)
    per = max(1, frames.shape[0] // rows)
    r = frames.shape[0] // per
    p = p[: r * per].reshape(r, per, nfft).mean(axis=1)
    return 10.0 * np.log10(p + 1e-20)


def spectrum_db(iq: np.ndarray, nfft: int = 256) -> np.ndarray:
    """Welch-averaged power spectrum of ``iq``, dB full scale, DC in the middle (``nfft`` bins)."""
    wf = waterfall_db(iq, nfft, rows=1)
    return wf[0]


def _colour(v: np.ndarray) -> np.ndarray:
    """RGB uint8 of values in [0, 1] through :data:`_STOPS`."""
    x = np.clip(v, 0.0, 1.0) * (len(_STOPS) - 1)
    i = np.minimum(x.astype(int), len(_STOPS) - 2)
    f = (x - i)[..., None]
    return (_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


def db_range(values_db: np.ndarray) -> tuple[float, float]:
    """(low, high) dB shown: from the 5th percentile (the noise) to the maximum, at least 20 dB."""
    lo = float(np.percentile(values_db, 5))
    hi = float(np.max(values_db))
    return lo, max(hi, lo + 20.0)


def waterfall_png(wf_db: np.ndarray, width: int = 512) -> bytes:
    """PNG of a waterfall (rows: time, top first; columns: frequency, low on the left)."""
    lo, hi = db_range(wf_db)
    img = _colour((wf_db - lo) / (hi - lo))
    reps = max(1, width // img.shape[1])
    img = np.repeat(np.repeat(img, reps, axis=1), 2, axis=0)
    return encode_png(np.ascontiguousarray(img))


def spectrum_png(spec_db: np.ndarray, width: int = 512, height: int = 200) -> bytes:
    """PNG of a spectrum: a filled blue trace on white with a light grid every 10 dB."""
    lo, hi = db_range(spec_db)
    x_src = np.linspace(0, spec_db.size - 1, width)
    trace = np.interp(x_src, np.arange(spec_db.size), spec_db)
    y = np.clip((hi - trace) / (hi - lo), 0.0, 1.0) * (height - 1)   # 0 at the top
    img = np.full((height, width, 3), 255, np.uint8)
    for level in np.arange(np.ceil(lo / 10) * 10, hi, 10.0):
        row = int(round((hi - level) / (hi - lo) * (height - 1)))
        img[row, :, :] = 225
    rows = np.arange(height)[:, None]
    below = rows >= np.round(y)[None, :]
    img[below] = (170, 200, 240)
    top = np.round(y).astype(int)
    cols = np.arange(width)
    for d in (-1, 0, 1):
        img[np.clip(top + d, 0, height - 1), cols] = (20, 60, 170)
    return encode_png(img)
