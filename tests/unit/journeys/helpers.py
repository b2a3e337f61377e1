"""Builders shared by the journeys tests: events, subscribers and a decision log."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keylane.journeys import (
    Decision,
    Event,
    JourneySet,
    SendIntent,
    SubscriberState,
    decide,
    parse_event,
)

#: A Wednesday in June (EDT, UTC-4): 16:00 UTC is noon in New York.
NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
FL_PHONE = "+13055550123"  # Miami: America/New_York, Florida
CA_PHONE = "+14155550123"  # San Francisco: America/Los_Angeles
NY_PHONE = "+12125550123"  # New York
AK_PHONE = "+19075550123"  # Alaska: America/Adak and America/Anchorage
OK_PHONE = "+14055550123"  # Oklahoma City: America/Chicago, Oklahoma

_ids = itertools.count(1)


def event(
    kind: str,
    at: datetime,
    *,
    subscriber: str = "u1",
    brand: str = "acme",
    event_id: str | None = None,
    **properties: Any,
) -> Event:
    """A validated event."""
    return parse_event(
        {
            "event_id": event_id or f"t-{next(_ids)}",
            "brand_id": brand,
            "subscriber_id": subscriber,
            "type": kind,
            "occurred_at": at.isoformat(),
            "properties": properties,
        }
    )


def subscribed(
    at: datetime,
    phone: str | None = FL_PHONE,
    *,
    sms: bool = True,
    email: str | None = "ann@example.com",
    email_ok: bool = True,
    timezone: str | None = None,
    subscriber: str = "u1",
    event_id: str | None = None,
) -> Event:
    """A ``subscribed`` event with consent as given."""
    props: dict[str, Any] = {
        "consent": {"sms": sms, "email": email_ok},
        "attributes": {"first_name": "Ann"},
    }
    if phone:
        props["phone"] = phone
    if email:
        props["email"] = email
    if timezone:
        props["timezone"] = timezone
    return event("subscribed", at, subscriber=subscriber, event_id=event_id, **props)


@dataclass
class Subscriber:
    """Drives one subscriber through decisions, delivering its timers like the runtime."""

    journeys: JourneySet
    state: SubscriberState | None = None
    decisions: list[Decision] = field(default_factory=list)
    sends: list[SendIntent] = field(default_factory=list)
    timers: dict[str, datetime] = field(default_factory=dict)

    @property
    def current(self) -> SubscriberState:
        """The state after the last decision (there must have been one)."""
        assert self.state is not None
        return self.state

    def feed(self, ev: Event, now: datetime | None = None) -> Decision:
        decision = decide(self.state, ev, now or ev.occurred_at, self.journeys)
        self.state = decision.new_state
        self.decisions.append(decision)
        self.sends.extend(decision.sends)
        for spec in decision.timers_to_arm:
            self.timers[spec.timer_id] = spec.due_at
        for timer_id in decision.timers_to_disarm:
            self.timers.pop(timer_id, None)
        return decision

    def run_until(self, until: datetime) -> list[Decision]:
        """Fire every timer due up to ``until``, in due order, each at its due time."""
        out: list[Decision] = []
        while True:
            due = sorted((at, tid) for tid, at in self.timers.items() if at <= until)
            if not due:
                return out
            at, timer_id = due[0]
            self.timers.pop(timer_id)
            assert self.state is not None
            out.append(
                self.feed(
                    event(
                        "timer_fired",
                        at,
                        subscriber=self.state.subscriber_id,
                        brand=self.state.brand_id,
                        timer_id=timer_id,
                    )
                )
            )

    def codes(self) -> list[str]:
        return [r.code.value for d in self.decisions for r in d.reasons]
