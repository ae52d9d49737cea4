"""Headless Chromium (Debian's chromium) for the map tests: DOM dump, screenshot, console errors.

Chromium writes its log (``--enable-logging=stderr``) with each console message and
uncaught exception; :func:`js_errors` picks the lines that mean a script failed or a file
did not load. :func:`read_png` decodes Chromium's screenshots (8-bit RGB/RGBA PNG) with
numpy and zlib.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
         "--allow-file-access-from-files"]
needs_chromium = [pytest.mark.external,
                  pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")]


def run(page: Path, *args: str, size: tuple[int, int] = (1000, 800)) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
                               *args, page.as_uri()], capture_output=True, text=True, timeout=120)


def dom(page: Path) -> tuple[str, str]:
    """(DOM after the scripts ran, Chromium's log)."""
    r = run(page, "--dump-dom")
    return r.stdout, r.stderr


def screenshot(page: Path, out: Path, size: tuple[int, int] = (1000, 800)) -> tuple[np.ndarray, str]:
    """(RGB image of the page's first screen, Chromium's log)."""
    r = run(page, f"--screenshot={out}", size=size)
    assert out.exists(), r.stderr[-2000:]
    return read_png(out.read_bytes()), r.stderr


def js_errors(log: str) -> list[str]:
    bad = ("Uncaught", "ERR_FILE_NOT_FOUND", "ERR_NAME_NOT_RESOLVED", "ERR_INTERNET_DISCONNECTED", "is not defined")
    return [line for line in log.splitlines() if any(b in line for b in bad)]


def read_png(data: bytes) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB of an 8-bit, non-interlaced RGB or RGBA PNG (alpha dropped)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unsupported PNG {ihdr}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if ft == 0:
            cur = line
        elif ft == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) & 0xFF
        elif ft == 2:
            cur = (line + prev) & 0xFF
        else:
            cur_l = [0] * stride
            ln, pv = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = pv[i]
                if ft == 3:
                    cur_l[i] = (ln[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = pv[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_l[i] = (ln[i] + pred) & 0xFF
            cur = np.array(cur_l, np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3].copy()


def colour_pixels(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 6) -> int:
    """How many pixels are within ``tol`` of ``rgb`` on every channel."""
    return int(np.sum(np.all(np.abs(img.astype(int) - np.array(rgb)) <= tol, axis=2)))
