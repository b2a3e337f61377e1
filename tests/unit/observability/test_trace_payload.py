"""The outbox payload carries the decision's trace context (runtime.codec), invisibly to readers."""

from __future__ import annotations

from datetime import UTC, datetime

from keylane.journeys import Channel, MessageClass, SendIntent
from keylane.runtime import codec

TRACE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def _intent() -> SendIntent:
    return SendIntent(
        idempotency_key="k" * 32,
        channel=Channel.SMS,
        to="+14155550123",
        brand_id="acme",
        subscriber_id="u1",
        journey="welcome",
        run_id="r1",
        step="sms",
        body="hi",
        subject=None,
        message_class=MessageClass.MARKETING,
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=None,
        subscriber_timezone=None,
    )


def test_a_traced_payload_reads_back_as_the_same_intent_and_its_trace():
    payload = codec.encode_intent(_intent(), TRACE)
    assert codec.decode_intent(payload) == _intent()
    assert codec.trace_of(payload) == TRACE


def test_without_a_trace_the_payload_is_unchanged_and_has_none():
    plain = codec.encode_intent(_intent())
    assert plain == codec.encode_intent(_intent(), None)
    assert codec.trace_of(plain) is None
    assert codec.trace_of(b"\xc1 not msgpack") is None


def test_commit_of_writes_the_context_var_into_every_row():
    from keylane.journeys import Decision, EventType, new_state, parse_event

    event = parse_event(
        {
            "event_id": "e1",
            "brand_id": "acme",
            "subscriber_id": "u1",
            "type": EventType.PRODUCT_VIEWED.value,
            "occurred_at": "2026-01-01T00:00:00Z",
        }
    )
    decision = Decision(new_state=new_state("acme", "u1"), sends=(_intent(),))
    token = codec.TRACE_CONTEXT.set(TRACE)
    try:
        traced = codec.commit_of(event, decision, 0, b"s", None)
    finally:
        codec.TRACE_CONTEXT.reset(token)
    untraced = codec.commit_of(event, decision, 0, b"s", None)
    assert [codec.trace_of(r.payload) for r in traced.sends] == [TRACE]
    assert [codec.trace_of(r.payload) for r in untraced.sends] == [None]
