"""What the dashboard reads from this process's decision log: a subscriber's timeline, the latest
deliveries, and a key search.

- :func:`timeline`: a subscriber's remembered decision attempts grouped by event (the decision,
  its reasons, the sends it created) joined with the relay's outcomes and the store's delivery
  ledger by idempotency key, so each event reads "what came in, what was decided and why, what
  went out";
- :func:`recent_deliveries`: the latest relay outcomes of the most recently active subscribers;
- :func:`search_keys`: the remembered subscriber keys that contain a text.

Pure functions over JSON-ready dicts and the :class:`~keylane.observability.DecisionLog`; no web
framework, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from keylane.observability.decisions import DecisionEntry, DecisionLog, DeliveryEntry

__all__ = ["recent_deliveries", "search_keys", "timeline"]

#: The most recently active subscribers scanned for :func:`recent_deliveries`.
SCAN_KEYS = 2000


def _latest_keys(log: DecisionLog, limit: int) -> list[str]:
    """The ``limit`` most recently active keys, the latest first."""
    keys = list(log)
    return keys[: -limit - 1 : -1] if limit < len(keys) else keys[::-1]


def recent_deliveries(log: DecisionLog, limit: int = 12) -> list[dict[str, Any]]:
    """The latest relay outcomes (``sent``, deferrals, skips) of the latest active subscribers.

    Args:
        log: the decision log.
        limit: how many to return, the latest first.
    """
    found: list[DeliveryEntry] = []
    for key in _latest_keys(log, SCAN_KEYS):
        found.extend(log.deliveries_of(key))
    found.sort(key=lambda d: d.wall_time, reverse=True)
    return [d.to_dict() for d in found[:limit]]


def search_keys(log: DecisionLog, text: str, limit: int = 20) -> list[str]:
    """Remembered keys that contain ``text`` (case-insensitive), the latest active first."""
    needle = text.casefold()
    hits = (k for k in _latest_keys(log, len(log)) if needle in k.casefold())
    return list(islice(hits, limit))


def _event_group(attempts: list[DecisionEntry]) -> dict[str, Any]:
    """One event: its attempts, and the decision of the attempt that counted."""
    final = next((a for a in reversed(attempts) if a.outcome == "ok"), attempts[-1])
    data = final.to_dict()
    return {
        "event_id": final.event_id,
        "event_type": final.event_type,
        "message_id": final.message_id,
        "consumer": final.consumer,
        "outcome": final.outcome,
        "decided_at": final.decided_at,
        "wall_time": attempts[0].wall_time,
        "version": final.version,
        "duration_seconds": final.duration,
        "reasons": data["reasons"],
        "detail": final.detail,
        "attempts": [
            {
                "outcome": a.outcome,
                "attempt": a.attempt,
                "consumer": a.consumer,
                "wall_time": a.wall_time,
                "detail": a.detail,
            }
            for a in attempts
        ],
        "sends": [dict(s) for s in data["sends"]],
    }


def _join_send(
    send: dict[str, Any],
    ledger: Mapping[str, dict[str, Any]],
    deliveries: Mapping[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    row = ledger.get(send["idempotency_key"])
    outcomes = deliveries.get(send["idempotency_key"], [])
    status = None if row is None else row["status"]
    return {
        **send,
        "status": status,
        "delivered": status == "sent" or any(d["outcome"] == "sent" for d in outcomes),
        "ledger": row,
        "deliveries": outcomes,
    }


def timeline(
    decisions: Iterable[DecisionEntry],
    deliveries: Iterable[DeliveryEntry],
    ledger: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """A subscriber's events in order, each with its decision, reasons, sends and deliveries.

    Args:
        decisions: the subscriber's remembered attempts, oldest first.
        deliveries: its remembered relay outcomes.
        ledger: its outbox rows as :func:`~keylane.web.api.views.ledger_row` dicts (the store's
            whole truth, including sends older than the remembered decisions).

    Returns:
        ``events`` (oldest first; attempts of one event, or of one message when the event did
        not parse, are grouped), ``earlier_sends`` (ledger rows no remembered decision created)
        and ``delivered`` (how many sends went out).
    """
    rows = {row["idempotency_key"]: row for row in ledger}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for entry in deliveries:
        item = entry.to_dict()
        outcomes.setdefault(entry.idempotency_key, []).append(
            {k: item[k] for k in ("outcome", "attempt", "sent_at", "wall_time")}
        )
    groups: dict[str, list[DecisionEntry]] = {}
    for attempt in decisions:
        group_key = attempt.event_id if attempt.event_id is not None else attempt.message_id
        groups.setdefault(group_key, []).append(attempt)
    events = [_event_group(attempts) for attempts in groups.values()]
    events.sort(key=lambda e: float(e["wall_time"]))
    claimed: set[str] = set()
    for event in events:
        event["sends"] = [_join_send(s, rows, outcomes) for s in event["sends"]]
        claimed.update(s["idempotency_key"] for s in event["sends"])
    earlier = [
        {
            **row,
            "delivered": row["status"] == "sent",
            "deliveries": outcomes.get(ikey, []),
        }
        for ikey, row in rows.items()
        if ikey not in claimed
    ]
    delivered = sum(row["status"] == "sent" for row in rows.values())
    return {"events": events, "earlier_sends": earlier, "delivered": delivered}
