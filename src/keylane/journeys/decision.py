"""What a decision produces: send intents, timers, cancellations and reasons; and the relay's
dispatch-time verdict.

All are immutable msgspec structs (cheap to build on the hot path, and encodable as they are for
an outbox row or an API response). Reasons are data: a :class:`ReasonCode` plus the journey, the
step and a human detail, so they can be counted per code and shown per subscriber.

Imports msgspec and the domain's model only.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from keylane.journeys.model import Channel, MessageClass
from keylane.journeys.state import SubscriberState

__all__ = [
    "SYSTEM_JOURNEY",
    "Decision",
    "Reason",
    "ReasonCode",
    "SendIntent",
    "TimerSpec",
    "Verdict",
    "VerdictAction",
]

#: The journey name of keyword replies (STOP/START confirmations, HELP replies).
SYSTEM_JOURNEY = "_system"


class ReasonCode(enum.StrEnum):
    """Why a decision did what it did. One code per outcome; see docs/journeys.md."""

    SENT = "sent"
    DEFERRED_QUIET_HOURS = "deferred_quiet_hours"
    SKIPPED_FREQUENCY_CAP = "skipped_frequency_cap"
    SKIPPED_STALE = "skipped_stale"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    SKIPPED_NO_ADDRESS = "skipped_no_address"
    SKIPPED_SUPPRESSED = "skipped_suppressed"
    SKIPPED_QUIET_HOURS = "skipped_quiet_hours"
    SKIPPED_CANCELLED = "skipped_cancelled"
    CANCELLED_PENDING_FULL = "cancelled_pending_full"
    SEND_NOT_DUE = "send_not_due"
    TEMPLATE_ERROR = "template_error"
    ENTERED = "entered"
    REENTRY_BLOCKED = "reentry_blocked"
    RESTARTED = "restarted"
    EXITED_GOAL = "exited_goal"
    EXITED_COMPLETED = "exited_completed"
    EXITED_OPT_OUT = "exited_opt_out"
    EXITED_INVALID = "exited_invalid"
    WAIT_ARRIVED = "wait_arrived"
    TIMER_FIRED = "timer_fired"
    TIMER_NOT_DUE = "timer_not_due"
    TIMER_NOT_ARMED = "timer_not_armed"
    OPTED_OUT = "opted_out"
    ALREADY_OPTED_OUT = "already_opted_out"
    OPTED_IN = "opted_in"
    CONSENT_OLDER_THAN_OPT_OUT = "consent_older_than_opt_out"
    HELP_REQUESTED = "help_requested"
    INBOUND_IGNORED = "inbound_ignored"
    PROFILE_UPDATED = "profile_updated"
    DUPLICATE = "duplicate"


class Reason(msgspec.Struct, frozen=True):
    """One reason: its code, where it happened and a human detail."""

    code: ReasonCode
    journey: str | None = None
    step: str | None = None
    detail: str = ""


class SendIntent(msgspec.Struct, frozen=True, kw_only=True):
    """One message to send: what the relay needs to call the provider, plus scheduling.

    Attributes:
        idempotency_key: deterministic from brand, subscriber, journey, run, step and
            occurrence; the provider and the outbox dedupe on it.
        channel: ``sms`` or ``email``.
        to: the E.164 number or the email address.
        brand_id: the brand.
        subscriber_id: the subscriber.
        journey: the journey (``_system`` for keyword replies).
        run_id: the run.
        step: the send step (or ``stop_confirmation``, ``start_confirmation``, ``help_reply``).
        body: the rendered text.
        subject: the rendered email subject, if any.
        message_class: ``marketing`` or ``transactional``.
        not_before: the earliest dispatch time (UTC); a quiet-hours deferral moves it to the
            window's opening plus a per-key jitter.
        expires_at: after this the send is stale (the intended time + the journey's
            ``max_lateness``); ``None`` for keyword replies.
        subscriber_timezone: the recipient's zone when there is exactly one candidate.
    """

    idempotency_key: str
    channel: Channel
    to: str
    brand_id: str
    subscriber_id: str
    journey: str
    run_id: str
    step: str
    body: str
    subject: str | None
    message_class: MessageClass
    not_before: datetime
    expires_at: datetime | None
    subscriber_timezone: str | None


class TimerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An armed timer, for the runtime's wake-up index: deliver ``timer_fired`` at ``due_at``."""

    timer_id: str
    brand_id: str
    subscriber_id: str
    journey: str
    run_id: str
    step: str
    due_at: datetime


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one event: the new state and the effects to commit with it.

    Attributes:
        new_state: the state to store (compare-and-set on the old one).
        sends: send intents to insert into the outbox.
        timers_to_arm: timers to index for wake-ups.
        timers_to_disarm: ids of timers to drop from the index.
        cancel_sends: idempotency keys of this subscriber's pending sends to cancel.
        reasons: why, as data.
        duplicate: the event was seen before; nothing else happened.
    """

    new_state: SubscriberState
    sends: tuple[SendIntent, ...] = ()
    timers_to_arm: tuple[TimerSpec, ...] = ()
    timers_to_disarm: tuple[str, ...] = ()
    cancel_sends: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()
    duplicate: bool = False


class VerdictAction(enum.StrEnum):
    """What the relay does with a pending send."""

    SEND = "send"
    DEFER = "defer"
    SKIP = "skip"


class Verdict(msgspec.Struct, frozen=True):
    """The dispatch-time re-check's answer: send now, defer until ``until``, or skip."""

    action: VerdictAction
    until: datetime | None = None
    reason: ReasonCode | None = None

    @classmethod
    def send(cls) -> Verdict:
        """Dispatch now."""
        return cls(VerdictAction.SEND)

    @classmethod
    def defer(
        cls, until: datetime, reason: ReasonCode = ReasonCode.DEFERRED_QUIET_HOURS
    ) -> Verdict:
        """Keep the row and dispatch at ``until`` (quiet hours closed, or not due yet)."""
        return cls(VerdictAction.DEFER, until, reason)

    @classmethod
    def skip(cls, reason: ReasonCode) -> Verdict:
        """Drop the row for ``reason``."""
        return cls(VerdictAction.SKIP, None, reason)
