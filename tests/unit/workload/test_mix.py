"""summarize: counts, shares, replies, fast orders and hot keys of hand-built events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.journeys import Event, parse_event
from keylane.workload import subscriber_phones, summarize

T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def _event(n: int, kind: str, seconds: float, subscriber: str = "u1", **props: Any) -> Event:
    return parse_event(
        {
            "event_id": f"e{n}",
            "brand_id": "acme",
            "subscriber_id": subscriber,
            "type": kind,
            "occurred_at": (T0 + timedelta(seconds=seconds)).isoformat(),
            "properties": props,
        }
    )


def test_counts_shares_and_patterns() -> None:
    # Given views, a fast and a slow order, replies of each kind, two subscribers
    events = [
        _event(1, "product_viewed", 0, session_id="s1"),
        _event(2, "product_viewed", 10, session_id="s1"),
        _event(3, "added_to_cart", 20, session_id="s1"),
        _event(4, "order_placed", 20.5, session_id="s1"),  # 0.5 s after the cart: fast
        _event(5, "added_to_cart", 30, "u2", session_id="s2"),
        _event(6, "order_placed", 40, "u2", session_id="s2"),  # 10 s: not fast
        _event(7, "sms_received", 50, text="Stop."),
        _event(8, "sms_received", 60, text="unstop"),
        _event(9, "sms_received", 70, text="info"),
        _event(10, "sms_received", 80, text="thanks"),
    ]
    # When summarized (in any order)
    summary = summarize(reversed(events))
    # Then
    assert summary.events == 10
    assert summary.by_type == {
        "product_viewed": 2, "added_to_cart": 2, "order_placed": 2, "sms_received": 4,
    }  # fmt: skip
    assert summary.shopping_shares["product_viewed"] == pytest.approx(2 / 6)
    assert summary.shopping_shares["checkout_started"] == 0.0
    assert summary.replies == {"opt_out": 1, "opt_in": 1, "help": 1, "none": 1}
    assert summary.fast_orders == 1
    assert summary.keys == 2
    assert summary.sessions == 2
    assert summary.hottest_key == "acme:u1"
    assert summary.hottest_key_events == 8
    assert summary.first == T0
    assert summary.last == T0 + timedelta(seconds=80)
    assert summary.to_dict()["first"] == T0.isoformat()


def test_an_empty_workload() -> None:
    summary = summarize([])
    assert summary.events == 0
    assert summary.hottest_key is None
    assert set(summary.shopping_shares.values()) == {0.0}
    assert summary.to_dict()["last"] is None


def test_subscriber_phones_keeps_the_last_phone_of_each_key() -> None:
    events = [
        _event(1, "subscribed", 0, phone="+12125550123", consent={"sms": True}),
        _event(2, "profile_updated", 10, phone="+13055550123"),
        _event(3, "profile_updated", 20, "u2", email="b@example.com"),
        _event(4, "product_viewed", 30, "u3"),
    ]
    assert subscriber_phones(events) == {"acme:u1": "+13055550123"}
