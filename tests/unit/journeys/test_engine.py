"""decide: dedupe, timers, goals, re-entry, STOP/START/HELP, profile changes, run-time errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest

from keylane.errors import InvalidArgumentError
from keylane.journeys import (
    Channel,
    JourneySet,
    ReasonCode,
    VerdictAction,
    armed_timers,
    decide,
    encode_state,
    new_state,
    parse_journeys,
    recheck,
)

from .helpers import CA_PHONE, NOON_NY, Subscriber, event, subscribed

HOUR = timedelta(hours=1)


def subscriber(journeys: JourneySet, at: datetime = NOON_NY, **kwargs: Any) -> Subscriber:
    sub = Subscriber(journeys)
    sub.feed(subscribed(at, **kwargs))
    return sub


def test_a_repeated_event_id_is_a_duplicate_with_no_effects(journeys):
    sub = subscriber(journeys)
    first = sub.feed(event("added_to_cart", NOON_NY, event_id="cart-1"))
    assert first.timers_to_arm
    again = decide(
        sub.current, event("added_to_cart", NOON_NY, event_id="cart-1"), NOON_NY, journeys
    )
    assert again.duplicate
    assert again.new_state is sub.current
    assert (again.sends, again.timers_to_arm, again.cancel_sends) == ((), (), ())
    assert [r.code for r in again.reasons] == [ReasonCode.DUPLICATE]


def test_decide_does_not_modify_its_input_state(journeys):
    sub = subscriber(journeys)
    before = encode_state(sub.current)
    state = sub.current
    decide(state, event("added_to_cart", NOON_NY), NOON_NY, journeys)
    assert encode_state(state) == before


def test_timer_early_duplicate_and_unknown_firings_are_harmless(journeys):
    sub = subscriber(journeys)
    armed = sub.feed(event("added_to_cart", NOON_NY)).timers_to_arm[0]
    assert armed_timers(sub.current) == (armed,)
    early = sub.feed(
        event("timer_fired", armed.due_at - timedelta(seconds=1), timer_id=armed.timer_id)
    )
    assert [r.code for r in early.reasons] == [ReasonCode.TIMER_NOT_DUE]
    assert early.sends == ()
    assert armed_timers(sub.current) == (armed,)  # still armed
    fired = sub.feed(event("timer_fired", armed.due_at, timer_id=armed.timer_id))
    assert ReasonCode.TIMER_FIRED in [r.code for r in fired.reasons]
    assert [s.step for s in fired.sends] == ["cart_sms"]
    assert armed.timer_id in fired.timers_to_disarm
    again = sub.feed(event("timer_fired", armed.due_at + HOUR, timer_id=armed.timer_id))
    assert [r.code for r in again.reasons] == [ReasonCode.TIMER_NOT_ARMED]
    assert again.sends == ()
    unknown = sub.feed(event("timer_fired", NOON_NY, timer_id="nope"))
    assert [r.code for r in unknown.reasons] == [ReasonCode.TIMER_NOT_ARMED]


def test_a_goal_ends_the_run_disarms_its_timer_and_cancels_its_pending_send(journeys):
    sub = subscriber(journeys)
    sub.feed(event("added_to_cart", NOON_NY))
    sub.run_until(NOON_NY + 31 * 60 * timedelta(seconds=1))
    cart_sms = sub.sends[-1]
    assert cart_sms.step == "cart_sms"
    order = sub.feed(event("order_placed", NOON_NY + HOUR))
    assert ReasonCode.EXITED_GOAL in [r.code for r in order.reasons]
    assert cart_sms.idempotency_key in order.cancel_sends
    assert any(t.startswith("cart_abandonment:") for t in order.timers_to_disarm)
    assert sub.current.run_of("cart_abandonment") is None
    verdict = recheck(sub.current, cart_sms, NOON_NY + HOUR, journeys)
    assert verdict.action is VerdictAction.SKIP
    assert verdict.reason is ReasonCode.SKIPPED_CANCELLED


def test_reentry_ignore_and_min_interval(journeys):
    sub = subscriber(journeys)
    sub.feed(event("product_viewed", NOON_NY))
    blocked = sub.feed(event("product_viewed", NOON_NY + timedelta(minutes=5)))
    assert [(r.code, r.detail) for r in blocked.reasons] == [
        (ReasonCode.REENTRY_BLOCKED, "a run is active")
    ]
    sub.run_until(NOON_NY + 2 * HOUR)  # the browse SMS goes, the run completes
    assert sub.current.run_of("browse_abandonment") is None
    later = sub.feed(event("product_viewed", NOON_NY + 3 * HOUR))
    assert [r.detail for r in later.reasons] == ["within reentry.min_interval"]
    next_day = sub.feed(event("product_viewed", NOON_NY + 25 * HOUR))
    assert ReasonCode.ENTERED in [r.code for r in next_day.reasons]


def test_reentry_restart_replaces_the_run(journeys):
    sub = subscriber(journeys)
    sub.feed(event("order_placed", NOON_NY, order_id="o1"))
    first_run = sub.current.run_of("post_purchase")
    assert first_run is not None
    second = sub.feed(event("order_placed", NOON_NY + timedelta(minutes=30), order_id="o2"))
    assert ReasonCode.RESTARTED in [r.code for r in second.reasons]
    run = sub.current.run_of("post_purchase")
    assert run is not None
    assert run.run_id != first_run.run_id
    sub.run_until(NOON_NY + 3 * HOUR)
    thanks = [s for s in sub.sends if s.journey == "post_purchase"]
    assert len(thanks) == 1
    assert "o2" in thanks[0].body
    assert thanks[0].not_before == NOON_NY + timedelta(minutes=90)


def test_stop_racing_a_pending_send_cancels_it_and_the_relay_skips_it(journeys):
    # Given a cart SMS deferred overnight (the timer fires at 21:10 New York time)...
    evening = NOON_NY + timedelta(hours=8, minutes=40)
    sub = subscriber(journeys)
    sub.feed(event("added_to_cart", evening))
    sub.run_until(evening + HOUR)
    pending = sub.sends[-1]
    assert pending.not_before > evening + HOUR  # deferred to the morning
    # When STOP arrives before it is dispatched...
    stop = sub.feed(event("sms_received", evening + 2 * HOUR, text="Stop"))
    # Then it is cancelled, the timers are disarmed, and one confirmation goes.
    assert pending.idempotency_key in stop.cancel_sends
    assert stop.timers_to_disarm
    assert [(s.step, s.message_class.value) for s in stop.sends] == [
        ("stop_confirmation", "transactional")
    ]
    assert sub.current.runs == ()
    assert sub.current.timers == ()
    # ...and a relay that still holds the row skips it at dispatch.
    verdict = recheck(sub.current, pending, pending.not_before, journeys)
    assert verdict.reason is ReasonCode.SKIPPED_SUPPRESSED
    assert recheck(sub.current, stop.sends[0], evening + 2 * HOUR, journeys).action is (
        VerdictAction.SEND
    )


def test_after_stop_nothing_but_the_one_confirmation_until_start(journeys):
    sub = subscriber(journeys)
    sub.feed(event("sms_received", NOON_NY, text="STOP"))
    again = sub.feed(event("sms_received", NOON_NY, text="unsubscribe"))
    assert [r.code for r in again.reasons] == [ReasonCode.ALREADY_OPTED_OUT]
    help_reply = sub.feed(event("sms_received", NOON_NY, text="HELP"))
    assert help_reply.sends == ()
    shopping = sub.feed(event("added_to_cart", NOON_NY))
    assert shopping.sends == ()
    assert [r.code for r in shopping.reasons] == [ReasonCode.SKIPPED_SUPPRESSED]
    sub.run_until(NOON_NY + 3 * HOUR)
    assert [s.step for s in sub.sends] == ["welcome_sms", "stop_confirmation"]
    start = sub.feed(event("sms_received", NOON_NY + 3 * HOUR, text="start"))
    assert [s.step for s in start.sends] == ["start_confirmation"]
    assert sub.current.sms_consent
    assert not sub.current.opted_out


def test_start_without_prior_consent_does_not_opt_in(journeys):
    sub = subscriber(journeys, sms=False)
    sub.feed(event("sms_received", NOON_NY, text="STOP"))
    start = sub.feed(event("sms_received", NOON_NY, text="YES"))
    assert [r.code for r in start.reasons] == [ReasonCode.SKIPPED_NO_CONSENT]
    assert start.sends == ()
    assert sub.current.opted_out


def test_help_replies_and_plain_texts_are_ignored(journeys):
    sub = subscriber(journeys)
    reply = sub.feed(event("sms_received", NOON_NY, text="info"))
    assert [s.step for s in reply.sends] == ["help_reply"]
    assert "STOP" in reply.sends[0].body
    chat = sub.feed(event("sms_received", NOON_NY, text="STOP PLEASE"))
    assert chat.sends == ()
    assert [r.code for r in chat.reasons] == [ReasonCode.INBOUND_IGNORED]
    assert not sub.current.opted_out


def test_a_new_subscription_opts_in_again_but_a_profile_update_does_not(journeys):
    sub = subscriber(journeys)
    sub.feed(event("sms_received", NOON_NY, text="STOP"))
    update = sub.feed(event("profile_updated", NOON_NY, consent={"sms": True}))
    still_out = sub.current
    assert still_out.opted_out
    assert ReasonCode.SKIPPED_SUPPRESSED in [r.code for r in update.reasons]
    sub.feed(subscribed(NOON_NY + HOUR))
    back = sub.current
    assert not back.opted_out
    assert back.sms_consent


def test_a_new_phone_number_needs_its_own_consent(journeys):
    sub = subscriber(journeys)
    sub.feed(event("profile_updated", NOON_NY, phone=CA_PHONE))
    assert sub.current.phone == CA_PHONE
    assert sub.current.phone_zones == ("America/Los_Angeles",)
    assert not sub.current.sms_consent
    sub.feed(event("added_to_cart", NOON_NY + HOUR))
    decisions = sub.run_until(NOON_NY + 2 * HOUR)
    assert ReasonCode.SKIPPED_NO_CONSENT in [r.code for d in decisions for r in d.reasons]
    assert [s.channel for s in sub.sends if s.journey == "cart_abandonment"] == []


def test_a_template_error_at_run_time_is_a_counted_skip_and_the_run_moves_on():
    journeys = parse_journeys(
        """
        version = 1
        [journeys.strict]
        [[journeys.strict.steps]]
        id = "viewed"
        kind = "trigger"
        event = "product_viewed"
        [[journeys.strict.steps]]
        id = "sms"
        kind = "send"
        channel = "sms"
        class = "transactional"
        template = "Price: {{ trigger.price }}"
        [[journeys.strict.steps]]
        id = "email"
        kind = "send"
        channel = "email"
        class = "transactional"
        template = "Thanks"
        """
    )
    sub = subscriber(journeys)
    decision = sub.feed(event("product_viewed", NOON_NY, product_id="p1"))
    reasons = [(r.code, r.step) for r in decision.reasons]
    assert (ReasonCode.TEMPLATE_ERROR, "sms") in reasons
    assert [s.channel for s in decision.sends] == [Channel.EMAIL]
    detail = next(r.detail for r in decision.reasons if r.code is ReasonCode.TEMPLATE_ERROR)
    assert "has no attribute 'price'" in detail


def test_a_run_of_a_removed_journey_ends_when_its_subscriber_is_next_decided(journeys):
    sub = subscriber(journeys)
    sub.feed(event("added_to_cart", NOON_NY))
    smaller = parse_journeys(
        'version = 1\n[journeys.other]\n[[journeys.other.steps]]\nid = "t"\nkind = "trigger"\n'
        'event = "checkout_started"\n[[journeys.other.steps]]\nid = "x"\nkind = "exit"\n'
    )
    decision = decide(sub.current, event("product_viewed", NOON_NY), NOON_NY, smaller)
    assert [r.code for r in decision.reasons] == [ReasonCode.EXITED_INVALID]
    assert decision.timers_to_disarm
    assert decision.new_state.runs == ()


def test_bad_calls_are_clear_errors(journeys):
    ev = event("product_viewed", NOON_NY)
    with pytest.raises(InvalidArgumentError, match="now: must be timezone-aware"):
        decide(None, ev, datetime(2026, 6, 10, 12), journeys)
    with pytest.raises(InvalidArgumentError, match="state: is for acme:u2"):
        decide(new_state("acme", "u2"), ev, NOON_NY, journeys)
    other = msgspec.structs.replace(subscriber(journeys).sends[0], subscriber_id="u9")
    with pytest.raises(InvalidArgumentError, match="intent: is for acme:u9"):
        recheck(new_state("acme", "u1"), other, NOON_NY, journeys)
