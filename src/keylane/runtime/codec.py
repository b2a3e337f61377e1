"""How the runtime turns the domain's values into the store's and the provider's, and back.

- A :class:`~keylane.journeys.Decision` becomes one :class:`~keylane.state.Commit` (the new state,
  the send intents as outbox rows, the cancellations, the timer arms and disarms, the event id
  and the broker position).
- An outbox row's payload is the domain's :class:`~keylane.journeys.SendIntent`, as MessagePack,
  plus the W3C trace context (``trace``) of the decision that created it, when one is set in
  :data:`TRACE_CONTEXT`: a deferred send keeps its trace (readers of the intent ignore it).
- A due intent becomes a provider :class:`~keylane.providers.Delivery` stamped with the engine's
  clock at dispatch.
- Events travel on the broker as the schema's JSON (:func:`encode_event`).

Imports the journeys, state and providers contracts; no backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime

import msgspec

from keylane.journeys import Decision, Event, SendIntent
from keylane.providers import Delivery
from keylane.state import Commit, Position, Timer
from keylane.state import SendIntent as OutboxRow

__all__ = [
    "TRACE_CONTEXT",
    "commit_of",
    "decode_intent",
    "delivery_of",
    "encode_event",
    "encode_intent",
    "seq_of_position",
    "trace_of",
]

#: The W3C trace context (``traceparent``, ``tracestate``) of the work in progress: set by a
#: tracing wrapper around the handler while it decides (every outbox row it commits carries it)
#: and by the relay while it dispatches a row (from the row), for a tracing provider to read.
#: ``None``, the default, adds nothing to the rows.
TRACE_CONTEXT: ContextVar[Mapping[str, str] | None] = ContextVar(
    "keylane_trace_context", default=None
)


class _TracedIntent(SendIntent, frozen=True, kw_only=True):
    """An intent with the trace context of the decision that created it (outbox payloads)."""

    trace: dict[str, str] | None = None


class _TraceOnly(msgspec.Struct):
    trace: dict[str, str] | None = None


_intent_encoder = msgspec.msgpack.Encoder()
_intent_decoder = msgspec.msgpack.Decoder(SendIntent)
_trace_decoder = msgspec.msgpack.Decoder(_TraceOnly)
_event_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """The event as the schema's JSON, which :func:`~keylane.journeys.parse_event` reads."""
    return _event_encoder.encode(event)


def encode_intent(intent: SendIntent, trace: Mapping[str, str] | None = None) -> bytes:
    """An intent as an outbox payload, with ``trace`` (a W3C trace context) when given."""
    if not trace:
        return _intent_encoder.encode(intent)
    fields = msgspec.structs.asdict(intent)
    return _intent_encoder.encode(_TracedIntent(**fields, trace=dict(trace)))


def trace_of(payload: bytes) -> dict[str, str] | None:
    """The trace context stored in an outbox payload, or None (none stored, or unreadable)."""
    try:
        return _trace_decoder.decode(payload).trace
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def decode_intent(payload: bytes) -> SendIntent:
    """An outbox payload back as the intent.

    Raises:
        msgspec.DecodeError, msgspec.ValidationError: not a payload this keylane wrote.
    """
    return _intent_decoder.decode(payload)


def commit_of(
    event: Event,
    decision: Decision,
    expected_version: int,
    state: bytes,
    position: Position | None,
) -> Commit:
    """The one transaction that records ``decision`` for ``event``'s subscriber."""
    key = event.key
    trace = TRACE_CONTEXT.get()
    return Commit(
        key=key,
        expected_version=expected_version,
        state=state,
        event_id=event.event_id,
        position=position,
        sends=tuple(
            OutboxRow(
                idempotency_key=s.idempotency_key,
                key=key,
                channel=s.channel.value,
                payload=encode_intent(s, trace),
                not_before=s.not_before.timestamp(),
                expires_at=None if s.expires_at is None else s.expires_at.timestamp(),
            )
            for s in decision.sends
        ),
        cancel_sends=decision.cancel_sends,
        arm=tuple(Timer(key, t.timer_id, t.due_at.timestamp()) for t in decision.timers_to_arm),
        disarm=decision.timers_to_disarm,
    )


def delivery_of(intent: SendIntent, sent_at: datetime) -> Delivery:
    """The provider call for ``intent`` at ``sent_at`` (an email's subject leads its body)."""
    body = intent.body
    if intent.subject:
        body = f"Subject: {intent.subject}\n\n{body}"
    return Delivery(
        idempotency_key=intent.idempotency_key,
        channel=intent.channel.value,
        to=intent.to,
        brand_id=intent.brand_id,
        subscriber_id=intent.subscriber_id,
        journey=intent.journey,
        step=intent.step,
        body=body,
        message_class=intent.message_class.value,
        sent_at=sent_at,
        subscriber_timezone=intent.subscriber_timezone,
    )


def seq_of_position(position: Position) -> int:
    """An integer that orders a key's messages by publication (ledger, entry, batch index).

    A key lives on one partition, so its messages order by ledger, then entry, then batch
    index; the history checker's ``seq`` needs one signed 64-bit integer per message. Bits:
    ledger 19 (ids below 524,288), entry 28 (below 268 million per ledger), batch index 16. Pulsar
    rolls ledgers over every 50,000 entries by default, and the embedded broker's ledger ids
    count topics, so both stay far inside these bounds.
    """
    return (
        (position.ledger << 44)
        | ((position.entry & 0xFFF_FFFF) << 16)
        | ((position.batch + 1) & 0xFFFF)
    )
