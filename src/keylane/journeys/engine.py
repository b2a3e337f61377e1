"""``decide(state, event, now, journeys) -> Decision``: the pure decision of one event.

Pure and deterministic: the same state, event, ``now`` and journeys always give the same
decision; nothing is read from the clock, the environment or a random source, and the input
state is never modified. The order of work for one event:

1. a repeated ``event_id`` (within the dedupe window) is a no-op: ``duplicate``;
2. runs of journeys (or steps) no longer in the file end (``exited_invalid``);
3. the event's own effects: profile and consent (``subscribed``, ``profile_updated``),
   counters (``order_placed``, ``message_clicked``), SMS keywords (``sms_received``: STOP,
   START, HELP end the decision here), timers (``timer_fired``);
4. goals end active runs (``exited_goal``), cancelling their pending sends;
5. runs waiting for this event move on (``wait_arrived``);
6. journeys triggered by this event start runs, under their re-entry rules.

Imports the domain only (no I/O, no asyncio, no backend).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from keylane.errors import InvalidArgumentError
from keylane.journeys.decision import SYSTEM_JOURNEY, Decision, Reason, ReasonCode
from keylane.journeys.events import MAX_ATTRIBUTES, Event, EventType
from keylane.journeys.model import JourneySet, all_match
from keylane.journeys.policies.consent import Keyword, classify
from keylane.journeys.policies.zones import phone_location
from keylane.journeys.runner import (
    drop_invalid_runs,
    end_goals,
    fire_timer,
    start_runs,
    wait_arrivals,
)
from keylane.journeys.sending import HELP_REPLY, START_CONFIRMATION, STOP_CONFIRMATION, send_reply
from keylane.journeys.state import (
    MAX_PENDING,
    STATE_VERSION,
    SubscriberState,
    new_state,
    remember,
    seen_before,
)
from keylane.journeys.work import Work, event_digest, from_ms, prune_pending

__all__ = ["decide"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_PROFILE_EVENTS = (EventType.SUBSCRIBED, EventType.PROFILE_UPDATED)
#: Events with no effect of their own: only goals, waits and triggers can make them matter.
_PLAIN_EVENTS = frozenset(
    {EventType.PRODUCT_VIEWED, EventType.ADDED_TO_CART, EventType.CHECKOUT_STARTED}
)


def decide(
    state: SubscriberState | None, event: Event, now: datetime, journeys: JourneySet
) -> Decision:
    """Decide one event for one subscriber.

    Args:
        state: the subscriber's state, or ``None`` for a subscriber never seen.
        event: the event (from :func:`~keylane.journeys.parse_event`).
        now: the decision time, timezone-aware (from the runtime's clock).
        journeys: the journeys to run.

    Returns:
        the new state and the effects to commit atomically with it.

    Raises:
        InvalidArgumentError: ``now`` is naive, or ``state`` belongs to another subscriber.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidArgumentError(f"now: must be timezone-aware, got naive {now}")
    if state is None:
        state = new_state(event.brand_id, event.subscriber_id)
    elif state.brand_id != event.brand_id or state.subscriber_id != event.subscriber_id:
        raise InvalidArgumentError(f"state: is for {state.key}, not for the event's {event.key}")
    return _decide(state, event, now, journeys, fast=True)


def _decide(
    state: SubscriberState, event: Event, now: datetime, journeys: JourneySet, *, fast: bool
) -> Decision:
    digest = event_digest(event.event_id)
    if seen_before(state, digest):
        return Decision(
            new_state=state,
            duplicate=True,
            reasons=(Reason(ReasonCode.DUPLICATE, detail=event.event_id),),
        )
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    now_ms = int(now.timestamp() * 1000)
    if fast:
        decision = _unchanged_runs(state, event, now_ms, digest, journeys)
        if decision is not None:
            return decision
    w = Work(state, event, now, now_ms, digest, journeys)
    if w.runs:
        drop_invalid_runs(w)
    kind = event.type
    if kind in _PROFILE_EVENTS:
        _update_profile(w)
    elif kind is EventType.ORDER_PLACED:
        w.orders += 1
    elif kind is EventType.MESSAGE_CLICKED:
        w.clicks += 1
    elif kind is EventType.SMS_RECEIVED and _keyword(w):
        return w.finish()
    elif kind is EventType.TIMER_FIRED:
        fire_timer(w, str(event.properties.get("timer_id", "")))
        return w.finish()
    if kind in journeys.by_goal:
        end_goals(w)
    if kind in journeys.waited_for and w.runs:
        wait_arrivals(w)
    if kind in journeys.by_trigger:
        start_runs(w)
    return w.finish()


def _unchanged_runs(
    state: SubscriberState, event: Event, now_ms: int, digest: bytes, journeys: JourneySet
) -> Decision | None:
    """The common case, decided without a :class:`Work`: a shopping event that starts, ends and
    moves no run (e.g. another product view while browse abandonment is running).

    Returns ``None`` when the event may do more; the full path then decides it. Both paths give
    the same decision (tests/unit/journeys/test_engine_properties.py checks it).
    """
    kind = event.type
    if kind not in _PLAIN_EVENTS or len(state.pending) > MAX_PENDING:
        return None
    runs = state.runs
    if runs:
        if kind in journeys.waited_for:
            return None
        for run in runs:
            journey = journeys.journeys.get(run.journey)
            if journey is None or run.step not in journey.steps:
                return None
        for journey in journeys.by_goal.get(kind, ()):
            if state.run_of(journey.name) is not None:
                return None
    reasons = []
    for journey in journeys.by_trigger.get(kind, ()):
        trigger = journey.trigger
        if trigger.where and not all_match(trigger.where, {"props": event.properties}):
            continue
        if state.opted_out:
            reasons.append(
                Reason(
                    ReasonCode.SKIPPED_SUPPRESSED,
                    journey.name,
                    trigger.id,
                    "opted out: run not started",
                )
            )
            continue
        if not journey.restart and state.run_of(journey.name) is not None:
            reasons.append(
                Reason(ReasonCode.REENTRY_BLOCKED, journey.name, trigger.id, "a run is active")
            )
            continue
        last = state.last_started.get(journey.name)
        if last is not None and now_ms - last < journey.min_interval_ms:
            reasons.append(
                Reason(
                    ReasonCode.REENTRY_BLOCKED,
                    journey.name,
                    trigger.id,
                    "within reentry.min_interval",
                )
            )
            continue
        return None
    seen, seen_at = remember(state, digest, now_ms)
    pending = prune_pending(state.pending, now_ms)
    new = msgspec.structs.replace(
        state,
        version=STATE_VERSION,
        seen=seen,
        seen_at=seen_at,
        pending=state.pending if pending is state.pending else tuple(pending),
    )
    return Decision(new_state=new, reasons=tuple(reasons))


def _update_profile(w: Work) -> None:
    props: dict[str, Any] = w.event.properties
    consent: dict[str, bool] = props.get("consent") or {}
    changed = []
    phone = props.get("phone")
    if isinstance(phone, str) and phone != w.phone:
        w.phone = phone
        w.phone_zones, w.phone_state = phone_location(phone)
        w.sms_consent = False  # consent belongs to a number; a new number needs its own
        changed.append("phone")
    email = props.get("email")
    if isinstance(email, str) and email != w.email:
        w.email = email
        w.email_consent = False
        changed.append("email")
    zone = props.get("timezone")
    if isinstance(zone, str) and zone != w.timezone:
        w.timezone = zone
        changed.append("timezone")
    sms = consent.get("sms")
    if sms is True and w.opted_out:
        if w.event.type is not EventType.SUBSCRIBED:
            w.reason(
                ReasonCode.SKIPPED_SUPPRESSED,
                detail="opted out: only START or a new subscription opts in again",
            )
            sms = None
        elif w.opted_out_at is None or _event_ms(w) <= w.opted_out_at:
            # A grant that occurred before the opt-out (a CRM backlog) must not undo it; it
            # still shows consent was given once, so a later START is honoured.
            w.reason(ReasonCode.CONSENT_OLDER_THAN_OPT_OUT, detail=_older_detail(w))
            w.sms_consent_ever = w.sms_consent_ever or w.phone is not None
            sms = None
        else:
            w.opted_out = False
            w.opted_out_at = None
            w.reason(ReasonCode.OPTED_IN, detail="subscribed again")
    if sms is not None and w.phone is not None:
        w.sms_consent = bool(sms)
        w.sms_consent_ever = w.sms_consent_ever or bool(sms)
        changed.append("consent.sms")
    if consent.get("email") is not None and w.email is not None:
        w.email_consent = bool(consent["email"])
        changed.append("consent.email")
    attributes = props.get("attributes")
    if isinstance(attributes, dict) and attributes:
        merged = {**w.attributes, **attributes}
        w.attributes = dict(list(merged.items())[-MAX_ATTRIBUTES:])
        changed.append("attributes")
    if changed:
        w.reason(ReasonCode.PROFILE_UPDATED, detail=", ".join(changed))


def _keyword(w: Work) -> bool:
    """Handle STOP / START / HELP; ``True`` when the text was a keyword (the decision ends)."""
    keyword = classify(str(w.event.properties.get("text", "")))
    if keyword is Keyword.NONE:
        w.reason(ReasonCode.INBOUND_IGNORED, detail="not a keyword")
        return False
    if keyword is Keyword.OPT_OUT:
        occurred = _event_ms(w)
        if w.opted_out:
            # The latest STOP dates the opt-out (an unknown date stays unknown: fail closed).
            if w.opted_out_at is not None and occurred > w.opted_out_at:
                w.opted_out_at = occurred
            w.reason(ReasonCode.ALREADY_OPTED_OUT, SYSTEM_JOURNEY)
            return True
        w.opted_out = True
        w.opted_out_at = occurred
        w.sms_consent = False
        for run in list(w.runs):
            w.end_run(run, ReasonCode.EXITED_OPT_OUT, cancel=True)
        for timer in list(w.timers):
            w.drop_timer(timer.timer_id)
        for item in list(w.pending):
            w.cancel_pending(item)
        w.reason(ReasonCode.OPTED_OUT, SYSTEM_JOURNEY)
        send_reply(w, STOP_CONFIRMATION, w.brand.stop_reply)
    elif keyword is Keyword.OPT_IN:
        if not w.opted_out:
            w.reason(ReasonCode.INBOUND_IGNORED, SYSTEM_JOURNEY, detail="not opted out")
        elif not w.sms_consent_ever:
            w.reason(
                ReasonCode.SKIPPED_NO_CONSENT,
                SYSTEM_JOURNEY,
                detail="opt-in needs consent given before",
            )
        else:
            w.opted_out = False
            w.opted_out_at = None
            w.sms_consent = True
            w.reason(ReasonCode.OPTED_IN, SYSTEM_JOURNEY)
            send_reply(w, START_CONFIRMATION, w.brand.start_reply)
    elif w.opted_out:
        w.reason(ReasonCode.SKIPPED_SUPPRESSED, SYSTEM_JOURNEY, HELP_REPLY, "opted out")
    else:
        w.reason(ReasonCode.HELP_REQUESTED, SYSTEM_JOURNEY)
        send_reply(w, HELP_REPLY, w.brand.help_reply)
    return True


def _event_ms(w: Work) -> int:
    """When the event occurred (not when it is decided), in epoch milliseconds."""
    return (w.event.occurred_at - _EPOCH) // _MS


def _older_detail(w: Work) -> str:
    if w.opted_out_at is None:
        return "opted out at an unknown time (a version 1 state): only START opts in again"
    return (
        f"consent of {w.event.occurred_at.isoformat()} is not later than the opt-out of "
        f"{from_ms(w.opted_out_at).isoformat()}"
    )
