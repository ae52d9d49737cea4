"""A sensor's outbox: every outgoing record on disk until the collector acknowledges it.

Field sensors sit on flaky mobile links and collectors restart; a record that lived only in
memory is lost with the sensor process. The outbox is a small SQLite database (WAL
journal: a committed record survives ``kill -9`` of the sensor) holding each encoded
record under its sequence number until the collector's acknowledgement deletes it.

It also owns the sequence numbers: they continue across restarts from the largest ever
issued (kept even after the records are acknowledged), so the collector's exactly-once
rule on (sensor_id, seq) never drops a new record as a duplicate of an old one.

Bounds and the policy when full: at most ``max_records`` records are kept. When a new
record would exceed that, the oldest heartbeats go first (a newer status supersedes them),
then the oldest detections; each record dropped is counted in :attr:`Outbox.dropped`
and logged by the caller. A sensor cut off for long thus keeps its most recent picture.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rfhunt.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    heartbeat INTEGER NOT NULL,
    payload BLOB NOT NULL,
    queued_utc REAL NOT NULL,
    last_sent REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# added after the first release: outboxes written before get the column on opening
_NEXT_DUE = """
ALTER TABLE outbox ADD COLUMN next_due REAL NOT NULL DEFAULT 0;
"""
_DUE_INDEX = "CREATE INDEX IF NOT EXISTS ix_outbox_due ON outbox (next_due, seq)"

#: A record not acknowledged is sent again after ``resend_after_s``, then after twice that,
#: four times, ... (at most this many doublings) ...
MAX_BACKOFF_DOUBLINGS = 4
#: ... and never waits longer than this between two sends, s.
MAX_RESEND_INTERVAL_S = 120.0


@dataclass(frozen=True)
class OutboxStats:
    """Counters of an outbox (since it was opened, except ``depth``)."""

    depth: int
    queued: int
    acked: int
    dropped: int
    next_seq: int


class Outbox:
    """The on-disk queue of one sensor's unacknowledged records.

    Parameters
    ----------
    path : str or Path or None
        SQLite file (created with its folder); None keeps it in memory (tests, demos).
    max_records : int
        Bound on the records kept (see the module notes for the policy when full).
    first_seq : int
        Sequence number of the very first record of a new outbox (a fresh sensor's outbox
        starts at its start-up time in microseconds, so numbers never repeat even if the
        file is deleted).

    Raises
    ------
    ConfigError
        If the file cannot be opened or is not an outbox.
    """

    def __init__(self, path: str | Path | None, *, max_records: int = 1_000_000, first_seq: int | None = None) -> None:
        if max_records < 1:
            raise ConfigError(f"outbox max_records must be at least 1, got {max_records!r}")
        self.path = None if path is None else Path(path)
        self.max_records = int(max_records)
        self._lock = threading.Lock()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path),
                                       check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
            if "next_due" not in cols:
                self._db.executescript(_NEXT_DUE)
            self._db.execute(_DUE_INDEX)
            row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        except sqlite3.Error as exc:
            raise ConfigError(f"outbox {self.path}: cannot open ({exc})") from None
        if row is None:
            start = time.time_ns() // 1000 if first_seq is None else int(first_seq)
            self._db.execute("INSERT INTO meta VALUES ('next_seq', ?)", (start,))
            self._next = start
        else:
            self._next = int(row[0])
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self.queued = 0
        self.acked = 0
        self.dropped = 0

    # -- sequence numbers ----------------------------------------------------------------
    def next_seq(self) -> int:
        """A new sequence number, never issued before by this outbox (persisted)."""
        with self._lock:
            seq = self._next
            self._next += 1
            self._db.execute("UPDATE meta SET value=? WHERE key='next_seq'", (self._next,))
            return seq

    # -- queue ---------------------------------------------------------------------------
    def put(self, seq: int, payload: bytes, *, heartbeat: bool = False) -> int:
        """Store one encoded record; returns how many older records were dropped to make room."""
        return self.put_many([(seq, payload, heartbeat)])

    def put_many(self, records: Iterable[tuple[int, bytes, bool]]) -> int:
        """Store records ``(seq, payload, is_heartbeat)`` in one transaction; returns the
        number of older records dropped to stay within ``max_records``."""
        rows = [(int(s), 1 if hb else 0, bytes(p), time.time()) for s, p, hb in records]
        if not rows:
            return 0
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany("INSERT OR REPLACE INTO outbox (seq, heartbeat, payload, queued_utc) VALUES (?,?,?,?)",
                                rows)
                top = max(r[0] for r in rows) + 1
                if top > self._next:
                    self._next = top
                    cur.execute("UPDATE meta SET value=? WHERE key='next_seq'", (self._next,))
                depth = int(cur.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
                over = depth - self.max_records
                dropped = 0
                if over > 0:
                    # Heartbeats first, then detections, oldest first; never the new rows.
                    new = tuple(r[0] for r in rows)
                    victims = [s for (s,) in cur.execute(
                        "SELECT seq FROM outbox ORDER BY heartbeat DESC, seq ASC LIMIT ?", (over + len(new),))
                        if s not in new][:over]
                    cur.executemany("DELETE FROM outbox WHERE seq=?", [(s,) for s in victims])
                    dropped = len(victims)
                    depth -= dropped
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._depth = depth
            self.queued += len(rows)
            self.dropped += dropped
            return dropped

    def ack(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged records; returns how many were still queued."""
        keys = [(int(s),) for s in seqs]
        if not keys:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.executemany("DELETE FROM outbox WHERE seq=?", keys)
            n = self._db.total_changes - before
            self._depth -= n
            self.acked += n
            return n

    def due(self, older_than_s: float | None = None, limit: int = 1000) -> list[tuple[int, bytes]]:
        """Records due to be sent: never sent, or not acknowledged by the time
        :meth:`mark_sent` set (oldest first among those due at once; an index makes this
        cheap however full the outbox is).

        ``older_than_s`` is accepted for callers of the first version and ignored: the
        resend interval is now :meth:`mark_sent`'s ``resend_after_s``.
        """
        with self._lock:
            rows = self._db.execute("SELECT seq, payload FROM outbox WHERE next_due <= ? ORDER BY next_due, seq "
                                    "LIMIT ?", (time.time(), int(limit))).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def mark_sent(self, seqs: Iterable[int], resend_after_s: float = 5.0) -> None:
        """Note that records went out now: each is due again ``resend_after_s`` later, twice
        that after its second send, and so on (at most :data:`MAX_BACKOFF_DOUBLINGS`
        doublings and :data:`MAX_RESEND_INTERVAL_S`), so a slow or overloaded collector is
        not flooded with copies of what it has not acknowledged yet."""
        now = time.time()
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET last_sent=?, attempts=attempts+1, "
                "next_due=? + min(?, ? * (1 << min(attempts, ?))) WHERE seq=?",
                [(now, now, MAX_RESEND_INTERVAL_S, float(resend_after_s), MAX_BACKOFF_DOUBLINGS, int(s))
                 for s in seqs])

    def reset_sent(self) -> None:
        """Make every queued record due at once, its back-off forgotten (after a reconnect:
        what went into the dead connection is lost, not slow to be acknowledged)."""
        with self._lock:
            self._db.execute("UPDATE outbox SET last_sent=0, next_due=0, attempts=0")

    @property
    def depth(self) -> int:
        """Records waiting for an acknowledgement."""
        return self._depth

    def stats(self) -> OutboxStats:
        return OutboxStats(depth=self._depth, queued=self.queued, acked=self.acked, dropped=self.dropped,
                           next_seq=self._next)

    def close(self) -> None:
        with self._lock:
            self._db.close()
