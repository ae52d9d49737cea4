"""Rogue-cell alerts: one per emitter, raised when it becomes ``rogue`` and updated as the
evidence grows.

Each raise or update is a row in the ``alerts`` table, a structured log line (``key=value``
pairs; WARNING when raised, INFO when updated) and, when the collector has a live feed, a message ``[b"alert", json]``
on its PUB socket. An update happens when the verdict, the set of indicators or the identity
changes, the score moves by 1 or more, or the position by more than :data:`MOVED_M`; an
alert stays when the emitter's verdict later drops (its ``verdict`` column says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from collector.judge import Judgement
from collector.store import AlertRow, EmitterRow, Store
from rfhunt import geo

log = logging.getLogger(__name__)

ALERT_VERDICTS = frozenset({"rogue"})
#: A position this far from the alert's is news, m.
MOVED_M = 300.0


def alert_json(alert: AlertRow) -> dict[str, Any]:
    """An alert as a JSON-ready dict (the live feed's payload)."""
    out = asdict(alert)
    out["indicators"] = [dict(i) for i in alert.indicators]
    return out


def _news(old: tuple | None, new: tuple) -> bool:
    """Whether a judgement differs enough from the last alerted one (see module notes)."""
    if old is None:
        return True
    (v0, s0, n0, i0, p0), (v1, s1, n1, i1, p1) = old, new
    if (v0, n0, i0) != (v1, n1, i1) or abs(s1 - s0) >= 1.0:
        return True
    if (p0 is None) != (p1 is None):
        return True
    return p0 is not None and float(geo.distance_m(p0[0], p0[1], p1[0], p1[1])) > MOVED_M


def _signature(em: EmitterRow, j: Judgement) -> tuple:
    return (j.verdict, float(j.score or 0.0), tuple(sorted(i["name"] for i in j.indicators)), j.identity,
            None if em.lat is None or em.lon is None else (em.lat, em.lon))


class AlertDesk:
    """Raises and updates alerts.

    Parameters
    ----------
    store : Store
    publish : callable, optional
        ``publish(topic, payload)``: sends one live-feed message.
    """

    def __init__(self, store: Store, publish: Callable[[bytes, dict[str, Any]], None] | None = None) -> None:
        self.store = store
        self.publish = publish
        self._sig: dict[int, tuple] = {}
        self._open = {a.emitter_id for a in store.alerts()}

    def update(self, emitters: Sequence[EmitterRow], judgements: Mapping[int, Judgement], now_utc: float
               ) -> list[AlertRow]:
        """Raise or update the alerts the judgements call for; returns those written."""
        written = []
        for em in emitters:
            j = judgements.get(em.id)
            if j is None or em.kind != "gsm_downlink":
                continue
            if j.verdict not in ALERT_VERDICTS and em.id not in self._open:
                continue
            sig = _signature(em, j)
            if not _news(self._sig.get(em.id), sig):
                continue
            if em.id in self._open and em.id not in self._sig and j.verdict not in ALERT_VERDICTS:
                self._sig[em.id] = sig
                continue
            self._sig[em.id] = sig
            alert, new = self.store.upsert_alert(
                em.id, raised_utc=now_utc, updated_utc=now_utc, first_seen_utc=em.first_seen_utc,
                verdict=j.verdict, score=float(j.score or 0.0), channel=em.channel, identity=j.identity,
                lat=em.lat, lon=em.lon, indicators=list(j.indicators))
            self._open.add(em.id)
            written.append(alert)
            names = ",".join(i["name"] for i in j.indicators)
            log.log(logging.WARNING if new else logging.INFO,
                    "alert %s emitter=%d arfcn=%s identity=%s verdict=%s score=%.1f lat=%s lon=%s "
                    "indicators=%s updates=%d reason=%r", "raised" if new else "updated", em.id, em.channel,
                    j.identity, j.verdict, j.score or 0.0,
                    "none" if em.lat is None else f"{em.lat:.6f}", "none" if em.lon is None else f"{em.lon:.6f}",
                    names, alert.n_updates, j.reasons[0] if j.reasons else "")
            if self.publish is not None:
                self.publish(b"alert", alert_json(alert))
        return written
