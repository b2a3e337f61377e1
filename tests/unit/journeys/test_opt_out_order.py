"""decide: a consent grant lifts an opt-out only if it *occurred* after it (event time).

A CRM backlog can deliver a ``subscribed`` event that happened before a STOP after the STOP was
decided; that grant must not undo the STOP. The subscriber's own START is their latest word and
always applies; a STOP always applies, whatever grant came before it (fail closed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from keylane.journeys import (
    JourneySet,
    ReasonCode,
    SubscriberState,
    VerdictAction,
    decode_state,
    encode_state,
    new_state,
    recheck,
)

from .helpers import NOON_NY, Subscriber, event, subscribed

HOUR = timedelta(hours=1)
OLDER = "consent_older_than_opt_out"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _stopped(journeys: JourneySet, stop_at: datetime = NOON_NY + HOUR) -> Subscriber:
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("sms_received", stop_at, text="STOP"))
    assert sub.current.opted_out
    return sub


def test_a_subscription_older_than_the_stop_does_not_lift_it(journeys):
    # Given a STOP at 13:00, and a CRM backlog's subscription from 12:30 decided at 14:00
    sub = _stopped(journeys)
    late = sub.feed(subscribed(NOON_NY + HOUR / 2), now=NOON_NY + 2 * HOUR)
    # Then the opt-out stays, with a named reason, and nothing goes out
    assert [r.code.value for r in late.reasons].count(OLDER) == 1
    assert ReasonCode.OPTED_IN not in [r.code for r in late.reasons]
    assert late.sends == ()
    assert sub.current.opted_out
    assert not sub.current.sms_consent
    shopping = sub.feed(event("added_to_cart", NOON_NY + 2 * HOUR))
    assert [r.code for r in shopping.reasons] == [ReasonCode.SKIPPED_SUPPRESSED]
    welcome = sub.sends[0]
    assert recheck(sub.current, welcome, NOON_NY + 2 * HOUR, journeys).action is (
        VerdictAction.SKIP
    )


def test_a_subscription_at_the_very_instant_of_the_stop_does_not_lift_it(journeys):
    sub = _stopped(journeys)
    same = sub.feed(subscribed(NOON_NY + HOUR), now=NOON_NY + 2 * HOUR)
    assert OLDER in [r.code.value for r in same.reasons]
    assert sub.current.opted_out


def test_a_subscription_after_the_stop_lifts_it_even_when_decided_late(journeys):
    sub = _stopped(journeys)
    back = sub.feed(subscribed(NOON_NY + 2 * HOUR), now=NOON_NY + 5 * HOUR)
    assert ReasonCode.OPTED_IN in [r.code for r in back.reasons]
    assert not sub.current.opted_out
    assert sub.current.sms_consent
    assert sub.current.opted_out_at is None


def test_a_later_stop_moves_the_opt_out_time(journeys):
    # STOP at 13:00, STOP again at 15:00 (already out), then a grant from 14:00: still out
    sub = _stopped(journeys)
    again = sub.feed(event("sms_received", NOON_NY + 3 * HOUR, text="stop"))
    assert [r.code for r in again.reasons] == [ReasonCode.ALREADY_OPTED_OUT]
    assert sub.current.opted_out_at == _ms(NOON_NY + 3 * HOUR)
    # An older repeated STOP decided later does not move it back
    sub.feed(event("sms_received", NOON_NY + HOUR / 2, text="stop"), now=NOON_NY + 4 * HOUR)
    assert sub.current.opted_out_at == _ms(NOON_NY + 3 * HOUR)
    grant = sub.feed(subscribed(NOON_NY + 2 * HOUR), now=NOON_NY + 4 * HOUR)
    assert OLDER in [r.code.value for r in grant.reasons]
    assert sub.current.opted_out


def test_the_opt_out_time_is_the_stop_event_s_own_time(journeys):
    sub = _stopped(journeys, stop_at=NOON_NY + HOUR)
    assert sub.current.opted_out_at == _ms(NOON_NY + HOUR)
    # decided late, the STOP still dates from when it occurred
    late = Subscriber(journeys)
    late.feed(subscribed(NOON_NY))
    late.feed(event("sms_received", NOON_NY + HOUR, text="STOP"), now=NOON_NY + 9 * HOUR)
    assert late.current.opted_out_at == _ms(NOON_NY + HOUR)


def test_start_is_the_subscriber_s_latest_word_whatever_its_event_time(journeys):
    sub = _stopped(journeys)
    start = sub.feed(event("sms_received", NOON_NY, text="START"), now=NOON_NY + 2 * HOUR)
    assert ReasonCode.OPTED_IN in [r.code for r in start.reasons]
    assert [s.step for s in start.sends] == ["start_confirmation"]
    assert not sub.current.opted_out
    assert sub.current.opted_out_at is None


def test_a_stop_older_than_an_applied_grant_still_applies(journeys):
    # Given a subscription from 14:00 already applied, a STOP from 13:00 arriving late
    sub = _stopped(journeys)
    sub.feed(subscribed(NOON_NY + 2 * HOUR))
    assert not sub.current.opted_out
    stop = sub.feed(event("sms_received", NOON_NY + HOUR / 2, text="STOP"), now=NOON_NY + 3 * HOUR)
    # Then it opts out all the same (fail closed)
    assert ReasonCode.OPTED_OUT in [r.code for r in stop.reasons]
    assert sub.current.opted_out


def test_an_older_grant_still_counts_as_consent_given_for_a_later_start(journeys):
    # A subscriber who texted STOP before any subscription was decided...
    sub = Subscriber(journeys)
    sub.feed(event("sms_received", NOON_NY + HOUR, text="STOP"))
    # ...whose older subscription arrives late: still out, but START now works
    sub.feed(subscribed(NOON_NY), now=NOON_NY + 2 * HOUR)
    assert sub.current.opted_out
    assert sub.current.sms_consent_ever
    start = sub.feed(event("sms_received", NOON_NY + 3 * HOUR, text="START"))
    assert ReasonCode.OPTED_IN in [r.code for r in start.reasons]


def test_a_version_1_state_without_the_opt_out_time_still_decodes():
    # Version 1 wrote the struct without opted_out_at (the last field)
    fields = msgspec.structs.fields(SubscriberState)
    assert fields[-1].name == "opted_out_at"
    current = msgspec.structs.replace(new_state("acme", "u1"), opted_out=True)
    old = msgspec.msgpack.decode(encode_state(current))[: len(fields) - 1]
    old[0] = 1
    state = decode_state(msgspec.msgpack.encode(old))
    assert state.version == 1
    assert state.opted_out
    assert state.opted_out_at is None


def test_an_opt_out_of_unknown_time_is_not_lifted_by_a_grant(journeys):
    # A version 1 state opted out before the time was kept: fail closed, START still works
    legacy = msgspec.structs.replace(
        new_state("acme", "u1"), version=1, opted_out=True, sms_consent_ever=True
    )
    sub = Subscriber(journeys, legacy)
    grant = sub.feed(subscribed(NOON_NY))
    assert OLDER in [r.code.value for r in grant.reasons]
    assert sub.current.opted_out
    sub.feed(event("sms_received", NOON_NY + HOUR, text="START"))
    assert not sub.current.opted_out
