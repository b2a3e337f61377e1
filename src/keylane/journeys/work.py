"""The scratch pad of one decision: a mutable copy of the state plus the effects gathered so far.

:func:`keylane.journeys.engine.decide` creates one :class:`Work` per event, the step runner and
the send planner change it, and :meth:`Work.finish` freezes it into the new state and the
:class:`~keylane.journeys.decision.Decision`. The input state is never modified.

Imports the standard library, msgspec and the domain only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from keylane.journeys.decision import Decision, Reason, ReasonCode, SendIntent, TimerSpec
from keylane.journeys.events import Event
from keylane.journeys.model import BrandConfig, JourneySet
from keylane.journeys.state import (
    MAX_PENDING,
    STATE_VERSION,
    Pending,
    Run,
    SubscriberState,
    Timer,
    remember,
)

__all__ = ["Work", "event_digest", "from_ms", "idempotency_key", "prune_pending"]


def event_digest(event_id: str) -> bytes:
    """An 8-byte digest of an event id: its dedupe hash and the run id it starts."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def idempotency_key(
    brand: str, subscriber: str, journey: str, run_id: str, step: str, occurrence: int
) -> str:
    """The send's key: a hash of its journey position, never of time, attempt or chance."""
    text = "\x1f".join((brand, subscriber, journey, run_id, step, str(occurrence)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def prune_pending(pending: Sequence[Pending], now_ms: int) -> Sequence[Pending]:
    """``pending`` (sorted by expiry) without the expired (the relay skips those as stale).

    The ``MAX_PENDING`` bound is not enforced here: :meth:`Work.finish` cancels the overflow
    (``cancelled_pending_full``) so that no send leaves ``pending`` without a cancellation.
    """
    if pending and pending[0].expires_ms < now_ms:
        return [p for p in pending if p.expires_ms >= now_ms]
    return pending


def from_ms(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


class Work:
    """One decision in progress (mutable; private to the engine)."""

    def __init__(
        self,
        state: SubscriberState,
        event: Event,
        now: datetime,
        now_ms: int,
        digest: bytes,
        journeys: JourneySet,
    ) -> None:
        self.state = state
        self.event = event
        self.now = now
        self.now_ms = now_ms
        self.digest = digest
        self.run_id = digest.hex()
        self.journeys = journeys
        self.brand: BrandConfig = journeys.brand(state.brand_id)
        self.phone = state.phone
        self.email = state.email
        self.timezone = state.timezone
        self.phone_zones = state.phone_zones
        self.phone_state = state.phone_state
        self.sms_consent = state.sms_consent
        self.email_consent = state.email_consent
        self.sms_consent_ever = state.sms_consent_ever
        self.opted_out = state.opted_out
        self.opted_out_at = state.opted_out_at
        self.attributes = state.attributes
        self.orders = state.orders
        self.clicks = state.clicks
        self.runs = list(state.runs)
        self.timers = list(state.timers)
        self.pending = list(state.pending)
        self.sms_sends = state.sms_sends
        self.email_sends = state.email_sends
        self.last_started = state.last_started
        self.sends: list[SendIntent] = []
        self.arm: list[TimerSpec] = []
        self.disarm: list[str] = []
        self.cancel: list[str] = []
        self.reasons: list[Reason] = []
        self.current_trigger: dict[str, Any] = {}

    # -- reasons ---------------------------------------------------------------------------

    def reason(
        self,
        code: ReasonCode,
        journey: str | None = None,
        step: str | None = None,
        detail: str = "",
    ) -> None:
        """Record why something happened."""
        self.reasons.append(Reason(code, journey, step, detail))

    # -- runs and timers -------------------------------------------------------------------

    def run_of(self, journey: str) -> Run | None:
        """The active run of ``journey``."""
        for run in self.runs:
            if run.journey == journey:
                return run
        return None

    def put_run(self, run: Run) -> None:
        """Store ``run`` (replacing the journey's active run, if any)."""
        for index, existing in enumerate(self.runs):
            if existing.journey == run.journey:
                self.runs[index] = run
                return
        self.runs.append(run)

    def arm_timer(self, run: Run, due_ms: int) -> None:
        """Arm the timer of ``run`` at its current step."""
        timer_id = f"{run.journey}:{run.run_id}:{run.step}:{run.seq}"
        self.timers.append(Timer(timer_id, run.journey, run.run_id, run.step, due_ms))
        self.arm.append(self.timer_spec(timer_id, run.journey, run.run_id, run.step, due_ms))

    def timer_spec(
        self, timer_id: str, journey: str, run_id: str, step: str, due_ms: int
    ) -> TimerSpec:
        """The runtime's view of a timer."""
        return TimerSpec(
            timer_id=timer_id,
            brand_id=self.state.brand_id,
            subscriber_id=self.state.subscriber_id,
            journey=journey,
            run_id=run_id,
            step=step,
            due_at=from_ms(due_ms),
        )

    def drop_timer(self, timer_id: str) -> None:
        """Disarm one timer."""
        self.timers = [t for t in self.timers if t.timer_id != timer_id]
        if any(spec.timer_id == timer_id for spec in self.arm):
            self.arm = [spec for spec in self.arm if spec.timer_id != timer_id]
        else:
            self.disarm.append(timer_id)

    def end_run(self, run: Run, code: ReasonCode, detail: str = "", *, cancel: bool) -> None:
        """End ``run``: drop it and its timers; with ``cancel``, also its pending sends."""
        self.runs = [r for r in self.runs if r.journey != run.journey]
        for timer in [
            t for t in self.timers if t.run_id == run.run_id and t.journey == run.journey
        ]:
            self.drop_timer(timer.timer_id)
        if cancel:
            for item in [
                p for p in self.pending if p.run_id == run.run_id and p.journey == run.journey
            ]:
                self.cancel_pending(item)
        self.reason(code, run.journey, run.step, detail)

    def cancel_pending(self, item: Pending) -> None:
        """Cancel one pending send (this decision's own intents are simply withdrawn)."""
        self.pending.remove(item)
        own = [s for s in self.sends if s.idempotency_key == item.idempotency_key]
        if own:
            self.sends.remove(own[0])
        else:
            self.cancel.append(item.idempotency_key)

    def drop_overflow(self) -> None:
        """Cancel the earliest-expiring live pending sends beyond ``MAX_PENDING``."""
        live = [p for p in self.pending if p.expires_ms >= self.now_ms]
        for item in live[: len(live) - MAX_PENDING]:
            self.cancel_pending(item)
            self.reason(
                ReasonCode.CANCELLED_PENDING_FULL,
                item.journey,
                detail=f"{MAX_PENDING} sends pending: {item.idempotency_key} expires first",
            )

    # -- the result ------------------------------------------------------------------------

    def finish(self) -> Decision:
        """Freeze the new state and the effects."""
        if len(self.pending) > MAX_PENDING:
            self.drop_overflow()
        seen, seen_at = remember(self.state, self.digest, self.now_ms)
        pending = prune_pending(self.pending, self.now_ms)
        state = SubscriberState(
            STATE_VERSION,
            self.state.brand_id,
            self.state.subscriber_id,
            self.phone,
            self.email,
            self.timezone,
            self.phone_zones,
            self.phone_state,
            self.sms_consent,
            self.email_consent,
            self.sms_consent_ever,
            self.opted_out,
            self.attributes,
            self.orders,
            self.clicks,
            tuple(self.runs),
            tuple(self.timers),
            tuple(pending),
            self.sms_sends,
            self.email_sends,
            self.last_started,
            seen,
            seen_at,
            self.opted_out_at if self.opted_out else None,
        )
        return Decision(
            new_state=state,
            sends=tuple(self.sends),
            timers_to_arm=tuple(self.arm),
            timers_to_disarm=tuple(self.disarm),
            cancel_sends=tuple(self.cancel),
            reasons=tuple(self.reasons),
        )

    def scopes(self, run: Run) -> dict[str, Any]:
        """What branch conditions read."""
        return {
            "event": self.event.properties,
            "trigger": run.trigger,
            "profile": self.attributes,
            "state": {
                "orders": self.orders,
                "clicks": self.clicks,
                "sms_ok": bool(self.phone and self.sms_consent and not self.opted_out),
                "email_ok": bool(self.email and self.email_consent and not self.opted_out),
                "has_phone": self.phone is not None,
                "has_email": self.email is not None,
            },
        }
