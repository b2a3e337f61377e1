"""The runtime's codec: events on the wire, decisions as commits, intents as payloads and
deliveries, and the order key of broker positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keylane.journeys import (
    Channel,
    Decision,
    Event,
    MessageClass,
    SendIntent,
    TimerSpec,
    decide,
    load_default_journeys,
    new_state,
    parse_event,
)
from keylane.runtime.codec import (
    commit_of,
    decode_intent,
    delivery_of,
    encode_event,
    encode_intent,
    seq_of_position,
)
from keylane.state import Position

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def _event(kind: str = "subscribed", **props: object) -> Event:
    if kind == "subscribed" and not props:
        props = {"phone": "+14155551000", "consent": {"sms": True}, "email": "a@example.com"}
    return parse_event(
        {
            "event_id": "e-1",
            "brand_id": "acme",
            "subscriber_id": "ann",
            "type": kind,
            "occurred_at": "2026-11-27T17:00:00Z",
            "properties": props,
        }
    )


def _intent(**overrides: object) -> SendIntent:
    fields: dict[str, object] = {
        "idempotency_key": "k1",
        "channel": Channel.EMAIL,
        "to": "ann@example.com",
        "brand_id": "acme",
        "subscriber_id": "ann",
        "journey": "post_purchase",
        "run_id": "r1",
        "step": "thank_you",
        "body": "Thanks!",
        "subject": "Your order",
        "message_class": MessageClass.MARKETING,
        "not_before": NOW,
        "expires_at": NOW + timedelta(hours=24),
        "subscriber_timezone": "America/Los_Angeles",
    }
    fields.update(overrides)
    return SendIntent(**fields)  # type: ignore[arg-type]


def test_an_event_round_trips_through_the_wire_format() -> None:
    event = _event()
    assert parse_event(encode_event(event)) == event
    cart = _event("added_to_cart", sku="s1", price=9.5)
    assert parse_event(encode_event(cart)) == cart


def test_an_intent_round_trips_as_an_outbox_payload() -> None:
    intent = _intent()
    payload = encode_intent(intent)
    assert isinstance(payload, bytes)
    assert decode_intent(payload) == intent


@pytest.mark.parametrize("payload", [b"", b"\xc1", msgspec.msgpack.encode({"x": 1})])
def test_a_foreign_payload_is_refused(payload: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode_intent(payload)


def test_a_decision_becomes_one_commit() -> None:
    # Given the decision of a subscription (a welcome SMS)
    event = _event()
    decision = decide(None, event, NOW, load_default_journeys())
    assert decision.sends
    position = Position(0, 7, 42, -1)
    # When it is turned into a commit at version 3
    commit = commit_of(event, decision, 3, b"state", position)
    # Then the commit carries the key, the CAS version, the state, the event id and position
    assert (commit.key, commit.expected_version, commit.state) == ("acme:ann", 3, b"state")
    assert (commit.event_id, commit.position) == ("e-1", position)
    # And one outbox row per send, whose payload is the intent itself
    assert len(commit.sends) == len(decision.sends)
    for row, intent in zip(commit.sends, decision.sends, strict=True):
        assert row.idempotency_key == intent.idempotency_key
        assert (row.key, row.channel) == ("acme:ann", intent.channel.value)
        assert row.not_before == intent.not_before.timestamp()
        assert decode_intent(row.payload) == intent


def test_cancels_timers_and_expiry_are_carried() -> None:
    event = _event("added_to_cart")
    due = NOW + timedelta(minutes=30)
    timer = TimerSpec(
        timer_id="t1", brand_id="acme", subscriber_id="ann", journey="cart_abandonment",
        run_id="r1", step="wait", due_at=due,
    )  # fmt: skip
    intent = _intent(expires_at=NOW + timedelta(hours=12))
    decision = Decision(
        new_state=new_state("acme", "ann"),
        sends=(intent,),
        timers_to_arm=(timer,),
        timers_to_disarm=("t0",),
        cancel_sends=("old-1", "old-2"),
    )
    commit = commit_of(event, decision, 0, b"s", None)
    assert commit.position is None
    assert commit.cancel_sends == ("old-1", "old-2")
    assert [(t.key, t.timer_id, t.due_at) for t in commit.arm] == [
        ("acme:ann", "t1", due.timestamp())
    ]
    assert commit.disarm == ("t0",)
    assert commit.sends[0].expires_at == (NOW + timedelta(hours=12)).timestamp()
    later = Decision(new_state=new_state("acme", "ann"), sends=(_intent(expires_at=None),))
    no_expiry = commit_of(event, later, 0, b"s", None)
    assert no_expiry.sends[0].expires_at is None


def test_a_delivery_is_stamped_at_dispatch_and_an_email_subject_leads_its_body() -> None:
    sent_at = NOW + timedelta(minutes=5)
    email = delivery_of(_intent(), sent_at)
    assert email.body == "Subject: Your order\n\nThanks!"
    assert (email.channel, email.to, email.message_class) == (
        "email",
        "ann@example.com",
        "marketing",
    )
    assert (email.idempotency_key, email.journey, email.step) == (
        "k1",
        "post_purchase",
        "thank_you",
    )
    assert email.sent_at == sent_at
    assert email.subscriber_timezone == "America/Los_Angeles"
    sms = delivery_of(
        _intent(channel=Channel.SMS, to="+14155551000", subject=None, subscriber_timezone=None),
        sent_at,
    )
    assert sms.body == "Thanks!"
    assert sms.subscriber_timezone is None


_positions = st.builds(
    Position,
    st.just(0),
    st.integers(0, 2**19 - 1),
    st.integers(0, 2**28 - 1),
    st.integers(-1, 2**16 - 2),
)


@given(_positions, _positions)
def test_seq_orders_like_the_positions_within_its_bounds(a: Position, b: Position) -> None:
    # Within one partition, seq compares exactly as the broker positions do
    assert (seq_of_position(a) < seq_of_position(b)) == (a < b)
    assert (seq_of_position(a) == seq_of_position(b)) == (a == b)
    assert 0 <= seq_of_position(a) < 2**63  # a signed 64-bit integer, as histories need


def test_seq_of_an_unbatched_message_precedes_its_entry_s_batch_indexes() -> None:
    assert (
        seq_of_position(Position(0, 1, 5, -1))
        < seq_of_position(Position(0, 1, 5, 0))
        < seq_of_position(Position(0, 1, 5, 1))
        < seq_of_position(Position(0, 1, 6, -1))
        < seq_of_position(Position(0, 2, 0, -1))
    )
