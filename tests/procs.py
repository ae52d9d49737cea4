"""Helpers for tests that run rfhunt services as real processes on real sockets."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = zmq.Context.instance().socket(zmq.ROUTER)
    port = s.bind_to_random_port("tcp://127.0.0.1")
    s.close(0)
    return port


def rfhunt_process(args: list[str], log: Path, *, verbose: bool = True) -> subprocess.Popen:
    """``rfhunt ARGS`` in a child process (this interpreter, the repo's code), its output
    appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "rfhunt.cli", *(["-v"] if verbose else []), *args], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


def stored_detections(db: Path) -> tuple[int, int]:
    """(rows, distinct seqs) of a SQLite store's detections table; (0, 0) before it exists."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*), COUNT(DISTINCT seq) FROM detections").fetchone()
    except sqlite3.Error:
        return 0, 0
