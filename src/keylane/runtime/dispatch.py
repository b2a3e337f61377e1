"""The relay's dispatch-time frequency-cap check, against the times sends really went out.

A decision reserves a cap slot at the send's *planned* time. The relay may dispatch later than
planned (a provider outage, a quiet-hours deferral, a slow relay), so before each marketing send it
checks the caps again against the subscriber's delivery ledger: the sends that went out (SENT or
UNKNOWN) on the same channel, each at the time its outcome was recorded. That time is at or after
the send's ``sent_at``, and the new send's ``sent_at`` is the instant this check uses, so the gaps
it sees are never wider than the gaps between the ``sent_at`` times the gateway logs: an audit of
the log cannot find a window this check let through. The outbox dispatches at most one send per
subscriber at a time, so the check cannot race another relay.

Imports the journeys and state contracts; no backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec

from keylane.journeys import JourneySet, MessageClass, SendIntent, SubscriberState
from keylane.journeys.policies import caps
from keylane.journeys.sending import cap_rules
from keylane.runtime.codec import decode_intent
from keylane.state import SendRecord, SendStatus

__all__ = ["caps_defer_until"]

_WENT_OUT = (SendStatus.SENT, SendStatus.UNKNOWN)


def caps_defer_until(
    state: SubscriberState,
    intent: SendIntent,
    ledger: Sequence[SendRecord],
    now: datetime,
    journeys: JourneySet,
) -> datetime | None:
    """None when ``intent`` may go out at ``now``; else the earliest time the caps allow it."""
    if intent.message_class is not MessageClass.MARKETING:
        return None
    rules = cap_rules(intent.channel, state.phone_state, journeys.brand(intent.brand_id))
    if not rules:
        return None
    times = sorted(_dispatch_times(ledger, intent))
    t = int(now.timestamp() * 1000)
    if caps.allows(times, t, rules):
        return None
    candidates = sorted(
        {x + rule.window_ms for x in times for rule in rules if x + rule.window_ms > t}
    )
    for candidate in candidates:
        if caps.allows(times, candidate, rules):
            return datetime.fromtimestamp(candidate / 1000, UTC)
    return None  # unreachable: past the last window every rule allows one more


def _dispatch_times(ledger: Sequence[SendRecord], intent: SendIntent) -> list[int]:
    times: list[int] = []
    for record in ledger:
        if record.status not in _WENT_OUT or record.finished_at is None:
            continue
        if record.idempotency_key == intent.idempotency_key or record.channel != intent.channel:
            continue
        try:
            other = decode_intent(record.payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if other.message_class is MessageClass.MARKETING:
            times.append(int(record.finished_at * 1000) + 1)  # rounded up: never narrower
    return times
