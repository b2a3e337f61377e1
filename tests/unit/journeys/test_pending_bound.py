"""decide: a send dropped at the pending bound (``MAX_PENDING``) is cancelled, with a reason.

The state lists at most ``MAX_PENDING`` sends not yet known to be dispatched; past that the
earliest-expiring are dropped. A dropped send must not vanish: an earlier decision's send is in
``cancel_sends`` (the commit cancels its outbox row), this decision's own is withdrawn, and each
carries ``cancelled_pending_full``.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from keylane.journeys import JourneySet, SubscriberState, new_state
from keylane.journeys.state import MAX_PENDING, Pending

from .helpers import NOON_NY, Subscriber, subscribed

FULL = "cancelled_pending_full"


def _ms(delta: timedelta) -> int:
    return int((NOON_NY + delta).timestamp() * 1000)


def _full(first_expiry: timedelta) -> SubscriberState:
    """A subscriber with ``MAX_PENDING`` pending sends, expiring 1 s apart from ``first_expiry``."""
    pending = tuple(
        Pending(f"k{i:02d}", "cart_abandonment", f"r{i}", "sms", _ms(first_expiry) + 1000 * i)
        for i in range(MAX_PENDING)
    )
    return msgspec.structs.replace(new_state("acme", "u1"), pending=pending)


def test_an_earlier_send_dropped_at_the_bound_is_cancelled_with_a_reason(journeys: JourneySet):
    # Given 32 pending sends expiring within minutes, and a welcome (expiring in 1 h) added
    sub = Subscriber(journeys, _full(timedelta(minutes=5)))
    decision = sub.feed(subscribed(NOON_NY))
    assert [s.step for s in decision.sends] == ["welcome_sms"]
    # Then the earliest-expiring is dropped, cancelled and named
    assert decision.cancel_sends == ("k00",)
    assert [(r.code.value, r.journey) for r in decision.reasons if r.code.value == FULL] == [
        (FULL, "cart_abandonment")
    ]
    kept = {p.idempotency_key for p in sub.current.pending}
    assert len(kept) == MAX_PENDING
    assert "k00" not in kept
    assert decision.sends[0].idempotency_key in kept


def test_this_decision_s_own_send_dropped_at_the_bound_is_withdrawn(journeys: JourneySet):
    # Given 32 pending sends expiring tomorrow: the new welcome (1 h) expires first
    before = _full(timedelta(days=1))
    sub = Subscriber(journeys, before)
    decision = sub.feed(subscribed(NOON_NY))
    # Then it is not sent, nothing older is cancelled, and the reason says why
    assert [s.step for s in decision.sends] == []
    assert decision.cancel_sends == ()
    assert [(r.code.value, r.journey) for r in decision.reasons if r.code.value == FULL] == [
        (FULL, "welcome")
    ]
    assert sub.current.pending == before.pending
