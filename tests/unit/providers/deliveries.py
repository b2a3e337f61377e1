"""Deliveries for provider and gateway tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from keylane.providers import Delivery

SENT_AT = dt.datetime(2026, 11, 27, 14, 30, tzinfo=dt.UTC)


def make_delivery(n: int = 1, **changes: Any) -> Delivery:
    """A valid sms delivery whose key, subscriber and number derive from ``n``."""
    fields: dict[str, Any] = {
        "idempotency_key": f"brand-1:sub-{n}:abandoned-cart:run-1:reminder",
        "channel": "sms",
        "to": f"+1405555{n:04d}",
        "brand_id": "brand-1",
        "subscriber_id": f"sub-{n}",
        "journey": "abandoned-cart",
        "step": "reminder",
        "body": f"You left something in your cart ({n})",
        "message_class": "marketing",
        "sent_at": SENT_AT,
        "subscriber_timezone": "America/Chicago",
    }
    fields.update(changes)
    return Delivery(**fields)
