"""What a list of events contains: counts by type, the shopping mix, replies, hot keys.

:func:`summarize` measures a workload (generated or loaded from a file) so that a run can print
it and a test can hold the generator to its target ratios. :func:`subscriber_phones` gives the
compliance audit each subscriber's phone (for email quiet hours in the phone's zones).

Imports the journeys' event model and keyword classifier only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keylane.journeys import Event, EventType
from keylane.journeys.policies.consent import Keyword, classify

__all__ = ["SHOPPING_TYPES", "WorkloadSummary", "subscriber_phones", "summarize"]

#: The event types of the shopping mix.
SHOPPING_TYPES: tuple[EventType, ...] = (
    EventType.PRODUCT_VIEWED,
    EventType.ADDED_TO_CART,
    EventType.CHECKOUT_STARTED,
    EventType.ORDER_PLACED,
    EventType.MESSAGE_CLICKED,
)
_FAST = timedelta(seconds=1)
_PROFILE_TYPES = (EventType.SUBSCRIBED, EventType.PROFILE_UPDATED)


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """The measured content of a workload.

    Attributes:
        events: how many events.
        by_type: events per type name.
        shopping_shares: each shopping type's share of all shopping events.
        replies: inbound SMS by meaning (``opt_out``, ``opt_in``, ``help``, ``none``).
        keys: distinct subscriber keys.
        brands: distinct brands.
        sessions: distinct ``session_id`` properties.
        fast_orders: orders placed within 1 s of the same key's add-to-cart.
        hottest_key: the key with the most events, and ``hottest_key_events`` their count.
        first, last: the earliest and latest ``occurred_at``.
    """

    events: int
    by_type: dict[str, int]
    shopping_shares: dict[str, float]
    replies: dict[str, int]
    keys: int
    brands: int
    sessions: int
    fast_orders: int
    hottest_key: str | None
    hottest_key_events: int
    first: datetime | None
    last: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON values."""
        return {
            "events": self.events,
            "by_type": dict(self.by_type),
            "shopping_shares": {k: round(v, 5) for k, v in self.shopping_shares.items()},
            "replies": dict(self.replies),
            "keys": self.keys,
            "brands": self.brands,
            "sessions": self.sessions,
            "fast_orders": self.fast_orders,
            "hottest_key": self.hottest_key,
            "hottest_key_events": self.hottest_key_events,
            "first": None if self.first is None else self.first.isoformat(),
            "last": None if self.last is None else self.last.isoformat(),
        }


def summarize(events: Iterable[Event]) -> WorkloadSummary:
    """Measure ``events`` (any order)."""
    by_type: Counter[str] = Counter()
    replies: Counter[str] = Counter({k.value: 0 for k in Keyword})
    per_key: Counter[str] = Counter()
    brands: set[str] = set()
    sessions: set[str] = set()
    last_cart: dict[str, datetime] = {}
    fast = 0
    first: datetime | None = None
    last: datetime | None = None
    for event in sorted(events, key=lambda e: e.occurred_at):
        by_type[event.type.value] += 1
        key = event.key
        per_key[key] += 1
        brands.add(event.brand_id)
        at = event.occurred_at
        first = at if first is None else first
        last = at
        session = event.properties.get("session_id")
        if isinstance(session, str):
            sessions.add(session)
        if event.type is EventType.SMS_RECEIVED:
            replies[classify(str(event.properties.get("text", ""))).value] += 1
        elif event.type is EventType.ADDED_TO_CART:
            last_cart[key] = at
        elif event.type is EventType.ORDER_PLACED:
            cart_at = last_cart.get(key)
            if cart_at is not None and at - cart_at < _FAST:
                fast += 1
    shopping = sum(by_type[t.value] for t in SHOPPING_TYPES)
    shares = {t.value: (by_type[t.value] / shopping if shopping else 0.0) for t in SHOPPING_TYPES}
    hottest = per_key.most_common(1)
    return WorkloadSummary(
        events=sum(by_type.values()),
        by_type={t.value: by_type[t.value] for t in EventType if by_type[t.value]},
        shopping_shares=shares,
        replies=dict(replies),
        keys=len(per_key),
        brands=len(brands),
        sessions=len(sessions),
        fast_orders=fast,
        hottest_key=hottest[0][0] if hottest else None,
        hottest_key_events=hottest[0][1] if hottest else 0,
        first=first,
        last=last,
    )


def subscriber_phones(events: Iterable[Event]) -> dict[str, str]:
    """Each subscriber key's phone: the last one its ``subscribed``/``profile_updated`` gave.

    The audit's ``phones`` argument (:func:`keylane.audit.audit`).
    """
    phones: dict[str, str] = {}
    for event in events:
        if event.type in _PROFILE_TYPES:
            phone = event.properties.get("phone")
            if isinstance(phone, str):
                phones[event.key] = phone
    return phones
