"""recheck: the relay's dispatch-time verdict from the subscriber's current state."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import msgspec

from keylane.journeys import (
    JourneySet,
    ReasonCode,
    SendIntent,
    Verdict,
    VerdictAction,
    recheck,
)
from keylane.journeys.policies.quiet_hours import jitter_seconds

from .helpers import CA_PHONE, NOON_NY, Subscriber, event, subscribed

LA = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)


def pending_cart_sms(journeys: JourneySet, phone: str = CA_PHONE) -> tuple[Subscriber, SendIntent]:
    """A California subscriber whose cart SMS is due at 20:30 Los Angeles time."""
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY, phone=phone))
    added = NOON_NY + timedelta(hours=11)  # 20:00 in Los Angeles
    sub.feed(event("added_to_cart", added))
    sub.run_until(added + HOUR)
    sms = sub.sends[-1]
    assert sms.step == "cart_sms"
    assert sms.not_before == added + timedelta(minutes=30)
    return sub, sms


def test_send_when_everything_still_holds(journeys):
    sub, sms = pending_cart_sms(journeys)
    assert recheck(sub.current, sms, sms.not_before, journeys) == Verdict.send()


def test_defer_when_quiet_hours_closed_before_dispatch(journeys):
    sub, sms = pending_cart_sms(journeys)
    late = sms.not_before + timedelta(minutes=35)  # 21:05 in Los Angeles
    verdict = recheck(sub.current, sms, late, journeys)
    assert verdict.action is VerdictAction.DEFER
    assert verdict.reason is ReasonCode.DEFERRED_QUIET_HOURS
    assert verdict.until is not None
    morning = late.astimezone(LA).replace(hour=8, minute=0) + timedelta(days=1)
    assert verdict.until == morning + timedelta(seconds=jitter_seconds("acme:u1", 1800))
    assert sms.expires_at is not None
    assert verdict.until <= sms.expires_at


def test_skip_stale_after_expiry(journeys):
    sub, sms = pending_cart_sms(journeys)
    assert sms.expires_at is not None
    verdict = recheck(sub.current, sms, sms.expires_at + timedelta(seconds=1), journeys)
    assert verdict == Verdict.skip(ReasonCode.SKIPPED_STALE)


def test_skip_when_consent_was_withdrawn(journeys):
    sub, sms = pending_cart_sms(journeys)
    sub.feed(event("profile_updated", sms.not_before, consent={"sms": False}))
    assert recheck(sub.current, sms, sms.not_before, journeys).reason is (
        ReasonCode.SKIPPED_NO_CONSENT
    )


def test_early_dispatch_is_deferred_to_not_before(journeys):
    sub, sms = pending_cart_sms(journeys)
    verdict = recheck(sub.current, sms, sms.not_before - timedelta(minutes=1), journeys)
    assert verdict == Verdict.defer(sms.not_before, ReasonCode.SEND_NOT_DUE)


def test_skip_quiet_hours_when_the_window_can_never_open(journeys):
    sub, sms = pending_cart_sms(journeys)
    apart = msgspec.structs.replace(
        sub.current, phone_zones=("America/New_York", "Asia/Shanghai"), phone_state="FL"
    )
    assert recheck(apart, sms, sms.not_before, journeys) == Verdict.skip(
        ReasonCode.SKIPPED_QUIET_HOURS
    )


def test_a_send_no_longer_pending_is_cancelled(journeys):
    sub, sms = pending_cart_sms(journeys)
    forgotten = msgspec.structs.replace(sub.current, pending=())
    assert recheck(forgotten, sms, sms.not_before, journeys) == Verdict.skip(
        ReasonCode.SKIPPED_CANCELLED
    )
