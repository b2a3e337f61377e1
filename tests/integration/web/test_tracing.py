"""One whole trace, asserted span by span: HTTP ingest -> publish -> process/decide -> the outbox
(a send deferred by quiet hours) -> the provider call.

The real pipeline (memory broker, SQLite, the embedded gateway) under a ManualClock: the SMS is
decided at 07:59:30 in New York, deferred to 08:00, and only goes out once the clock is moved
past 08:00, long after the decision's span ended. The SDK's in-memory exporter collects spans.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from keylane.clock import ManualClock
from keylane.journeys import parse_journeys
from keylane.observability import Tracing
from keylane.runtime import DEFAULT_SUBSCRIPTION, DEFAULT_TOPIC
from tests.integration.web.conftest import AUTH, start_service, stop_service, subscribed, until

JOURNEYS = """
version = 1

[brand]
name = "Acme"
timezone = "America/New_York"
jitter = "0s"

[journeys.instant]
[[journeys.instant.steps]]
id = "viewed"
kind = "trigger"
event = "product_viewed"

[[journeys.instant.steps]]
id = "nudge"
kind = "send"
channel = "sms"
template = "Still thinking about it?"
"""

# 07:59:30 in New York (EST, UTC-5): half a minute before the SMS window opens.
EARLY = datetime(2026, 1, 15, 12, 59, 30, tzinfo=UTC)


def _viewed() -> dict[str, Any]:
    return {
        "event_id": "view-1",
        "brand_id": "acme",
        "subscriber_id": "t1",
        "type": "product_viewed",
        "occurred_at": "2026-01-15T12:59:29Z",
        "properties": {"sku": "boots"},
    }


def _one(spans: list[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, f"{name} {attributes}: {[s.name for s in spans]}"
    return found[0]


async def test_one_trace_from_the_ingest_to_the_provider_call(tmp_path: Path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clock = ManualClock(EARLY)
    running = await start_service(
        tmp_path, journeys=parse_journeys(JOURNEYS), clock=clock, tracing=Tracing(provider)
    )
    try:
        profile = {**subscribed("t1"), "occurred_at": "2026-01-15T12:59:28Z"}
        response = await running.client.post("/v1/events", json=[profile, _viewed()], headers=AUTH)
        assert response.status_code == 202
        message_id = response.json()["results"][1]["message_id"]

        def decided() -> bool:
            names = [s.name for s in exporter.get_finished_spans()]
            return names.count("process keylane-events") == 2

        await until(decided)
        view = (await running.client.get("/v1/subscribers/acme/t1", headers=AUTH)).json()
        (row,) = view["ledger"]
        assert row["status"] == "pending"  # deferred: not before 08:00
        assert row["not_before"].startswith("2026-01-15T13:00:00")
        assert not [s for s in exporter.get_finished_spans() if s.name.startswith("provider")]

        clock.set(datetime(2026, 1, 15, 13, 0, 5, tzinfo=UTC))  # 08:00:05 in New York
        await until(lambda: any(s.name == "provider sms" for s in exporter.get_finished_spans()))
    finally:
        await stop_service(running)
    spans = list(exporter.get_finished_spans())

    ingest = _one(spans, "POST /v1/events")
    assert ingest.kind is SpanKind.SERVER
    assert (ingest.attributes or {})["http.response.status_code"] == 202
    publish = _one(spans, "send keylane-events", **{"messaging.message.id": message_id})
    process = _one(spans, "process keylane-events", **{"messaging.message.id": message_id})
    outbox = _one(spans, "outbox send sms")
    call = _one(spans, "provider sms")

    trace_id = ingest.context.trace_id
    assert {s.context.trace_id for s in (publish, process, outbox, call)} == {trace_id}
    # Parents: ingest -> publish -> process -> outbox send -> provider call.
    assert publish.parent is not None
    assert publish.parent.span_id == ingest.context.span_id
    assert process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert outbox.parent is not None
    assert outbox.parent.span_id == process.context.span_id
    assert call.parent is not None
    assert call.parent.span_id == outbox.context.span_id
    # The consumer span links to the producer span.
    assert [link.context.span_id for link in process.links] == [publish.context.span_id]

    assert publish.kind is SpanKind.PRODUCER
    assert dict(publish.attributes or {}) | {
        "messaging.system": "pulsar",
        "messaging.destination.name": DEFAULT_TOPIC,
        "messaging.operation.type": "send",
    } == dict(publish.attributes or {})
    assert process.kind is SpanKind.CONSUMER
    attributes = dict(process.attributes or {})
    assert attributes["messaging.system"] == "pulsar"
    assert attributes["messaging.destination.name"] == DEFAULT_TOPIC
    assert attributes["messaging.destination.subscription.name"] == DEFAULT_SUBSCRIPTION
    assert attributes["messaging.operation.type"] == "process"
    (decision,) = [e for e in process.events if e.name == "decision"]
    assert (decision.attributes or {})["keylane.decision.outcome"] == "ok"
    reasons = (decision.attributes or {})["keylane.decision.reasons"]
    assert isinstance(reasons, tuple | list)
    assert "deferred_quiet_hours" in reasons

    assert outbox.kind is SpanKind.INTERNAL
    assert (outbox.attributes or {})["keylane.journey"] == "instant"
    assert (outbox.attributes or {})["keylane.send.outcome"] == "sent"
    assert call.kind is SpanKind.CLIENT
    assert (call.attributes or {})["keylane.receipt.outcome"] == "sent"
    assert (call.attributes or {})["http.response.status_code"] == 201
    # The deferred send went out after the decision's span had ended.
    assert process.end_time is not None
    assert call.start_time is not None
    assert call.start_time > process.end_time
