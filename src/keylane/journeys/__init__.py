"""The decision engine: a pure domain that turns a subscriber's events into messages.

``decide(state, event, now, journeys) -> Decision`` decides one event of one subscriber with no
I/O, no asyncio and no backend: the runtime loads the state, calls it, and commits the new state
with the decision's sends, timers and cancellations in one transaction. At dispatch time the
relay asks ``recheck(state, intent, now, journeys)`` whether a pending send may still go.

Journeys come from a TOML file (:func:`load_journeys`; :func:`load_default_journeys` for the
packaged one). Events come in through :func:`parse_event`. The semantics of every policy (quiet
hours, caps, consent, timers, re-entry) are in docs/journeys.md.

Imports nothing from keylane but :mod:`keylane.errors` and :mod:`keylane.clock`.
"""

from __future__ import annotations

from keylane.journeys.decision import (
    Decision,
    Reason,
    ReasonCode,
    SendIntent,
    TimerSpec,
    Verdict,
    VerdictAction,
)
from keylane.journeys.engine import decide
from keylane.journeys.errors import EventError, JourneyFileError, StateError, StateVersionError
from keylane.journeys.events import Event, EventType, parse_event, subscriber_key
from keylane.journeys.loader import load_default_journeys, load_journeys, parse_journeys
from keylane.journeys.model import Channel, JourneySet, MessageClass
from keylane.journeys.sending import recheck
from keylane.journeys.state import (
    STATE_VERSION,
    SubscriberState,
    decode_state,
    encode_state,
    new_state,
)

__all__ = [
    "STATE_VERSION",
    "Channel",
    "Decision",
    "Event",
    "EventError",
    "EventType",
    "JourneyFileError",
    "JourneySet",
    "MessageClass",
    "Reason",
    "ReasonCode",
    "SendIntent",
    "StateError",
    "StateVersionError",
    "SubscriberState",
    "TimerSpec",
    "Verdict",
    "VerdictAction",
    "armed_timers",
    "decide",
    "decode_state",
    "encode_state",
    "load_default_journeys",
    "load_journeys",
    "new_state",
    "parse_event",
    "parse_journeys",
    "recheck",
    "subscriber_key",
]


def armed_timers(state: SubscriberState) -> tuple[TimerSpec, ...]:
    """The subscriber's armed timers, for the runtime's wake-up index."""
    from keylane.journeys.work import from_ms

    return tuple(
        TimerSpec(
            timer_id=t.timer_id,
            brand_id=state.brand_id,
            subscriber_id=state.subscriber_id,
            journey=t.journey,
            run_id=t.run_id,
            step=t.step,
            due_at=from_ms(t.due_ms),
        )
        for t in state.timers
    )
