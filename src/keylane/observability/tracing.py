"""OpenTelemetry tracing through the broker: W3C trace context in message properties.

One trace runs from the HTTP ingest to the provider call:

```
POST /v1/events                       SERVER    (web.api, :meth:`Tracing.server_span`)
 └ send <topic>                       PRODUCER  (:class:`TracedProducer`: traceparent injected
    │                                            into the message's properties)
    └ process <topic>                 CONSUMER  (the handler wrapper, :mod:`.instrument`; child
       │                                          of the producer's context and linked to it)
       ├ send <topic>                 PRODUCER  (a timer's wake-up, published while deciding)
       └ outbox send <channel>        INTERNAL  (the provider wrapper; the outbox row carries
          └ provider <channel>        CLIENT     the decision's context, so a deferred send
                                                 keeps its trace)
```

Spans follow the messaging semantic conventions: ``messaging.system=pulsar`` (the embedded
broker has Pulsar's semantics, so it reports ``pulsar`` too, with ``keylane.broker=memory``),
``messaging.destination.name``, ``messaging.destination.subscription.name``,
``messaging.message.id``, ``messaging.operation.type`` / ``messaging.operation.name``.

Nothing is global: a :class:`Tracing` holds its own ``TracerProvider`` (OTLP over HTTP when an
endpoint is configured; the tests pass one with the SDK's in-memory exporter) and its own W3C
propagator. Without a :class:`Tracing` nothing is wrapped and nothing is exported.

Imports the broker contract and opentelemetry (``web`` extra; the OTLP exporter is the ``otlp``
extra); no backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    Duration,
    MessageId,
    Producer,
)
from keylane.errors import MissingExtraError

__all__ = ["TRACE_KEYS", "TracedBroker", "TracedProducer", "Tracing", "short_topic"]

#: The message properties (and outbox fields) that carry the W3C trace context.
TRACE_KEYS = ("traceparent", "tracestate")
SYSTEM = "pulsar"


def short_topic(topic: str) -> str:
    """``persistent://public/default/x`` -> ``x`` (span names stay short and low-cardinality)."""
    return topic.rpartition("/")[2] or topic


class Tracing:
    """A tracer and a W3C propagator over one ``TracerProvider``.

    Args:
        provider: the SDK provider spans go to (it owns the exporters).
        broker_kind: ``"memory"`` or ``"pulsar"``, for ``keylane.broker``.
    """

    def __init__(self, provider: TracerProvider, broker_kind: str = "memory") -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("keylane")
        self.broker_kind = broker_kind
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def otlp(cls, endpoint: str, *, service_name: str = "keylane") -> Tracing:
        """Export spans over OTLP/HTTP to ``endpoint`` (the collector's base URL).

        Raises:
            MissingExtraError: ``pip install 'keylane[otlp]'`` is missing.
        """
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingExtraError("OTLP trace export", "otlp", str(exc.name)) from exc
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        return cls(provider)

    def shutdown(self) -> None:
        """Flush and stop the provider's exporters."""
        self.provider.shutdown()

    # -- context in carriers ---------------------------------------------------------------

    def inject(self, context: Context | None = None) -> dict[str, str]:
        """The W3C carrier (``traceparent``, maybe ``tracestate``) of ``context`` (default: now)."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=context)
        return carrier

    def extract(self, carrier: Mapping[str, str] | None) -> Context:
        """The context in ``carrier`` (an empty context when it holds none)."""
        picked = {k: carrier[k] for k in TRACE_KEYS if carrier and k in carrier}
        return self._propagator.extract(picked)

    @staticmethod
    def link_to(context: Context) -> list[Link]:
        """A link to the span of ``context``, if it has a valid one."""
        span_context = trace.get_current_span(context).get_span_context()
        return [Link(span_context)] if span_context.is_valid else []

    # -- spans -----------------------------------------------------------------------------

    def messaging_attributes(self, topic: str, operation: str, kind: str) -> dict[str, Any]:
        """The semantic-convention attributes every messaging span has."""
        return {
            "messaging.system": SYSTEM,
            "messaging.destination.name": topic,
            "messaging.operation.type": kind,
            "messaging.operation.name": operation,
            "keylane.broker": self.broker_kind,
        }

    @contextlib.contextmanager
    def server_span(self, method: str, route: str, headers: Mapping[str, str]) -> Iterator[Span]:
        """A SERVER span for one HTTP request, continuing the caller's ``traceparent``."""
        parent = self.extract(headers)
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route, "url.path": route},
        ) as span:
            yield span

    def event_span(
        self, name: str, carrier: Mapping[str, str] | None, attributes: Mapping[str, Any]
    ) -> None:
        """A zero-length INTERNAL span under ``carrier``'s context (an outbox outcome)."""
        span = self.tracer.start_span(
            name, context=self.extract(carrier), kind=SpanKind.INTERNAL, attributes=attributes
        )
        span.end()


class TracedProducer(Producer):
    """A producer whose sends are PRODUCER spans, their context injected into the properties."""

    def __init__(self, inner: Producer, tracing: Tracing) -> None:
        self.inner = inner
        self._tracing = tracing

    @property
    def topic(self) -> str:
        return self.inner.topic

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        tracing = self._tracing
        attributes = tracing.messaging_attributes(self.topic, "send", "send")
        attributes["messaging.message.body.size"] = len(data)
        if key is not None:
            attributes["messaging.pulsar.message.key"] = key
        with tracing.tracer.start_as_current_span(
            f"send {short_topic(self.topic)}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            merged = {**(properties or {}), **tracing.inject()}
            try:
                message_id = await self.inner.send(
                    data,
                    key=key,
                    ordering_key=ordering_key,
                    properties=merged,
                    deliver_after=deliver_after,
                    deliver_at=deliver_at,
                    event_time=event_time,
                )
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            span.set_attribute("messaging.message.id", str(message_id))
            return message_id

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


class TracedBroker(Broker):
    """A broker whose producers are :class:`TracedProducer`; everything else passes through."""

    def __init__(self, inner: Broker, tracing: Tracing) -> None:
        self.inner = inner
        self._tracing = tracing

    async def __aenter__(self) -> TracedBroker:
        await self.inner.__aenter__()
        return self

    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        await self.inner.create_topic(topic, partitions)

    async def topic_partitions(self, topic: str) -> list[str]:
        return await self.inner.topic_partitions(topic)

    async def create_producer(
        self,
        topic: str,
        *,
        batching: BatchingType | None = BatchingType.KEY_BASED,
        batching_max_messages: int = 1000,
        batching_max_publish_delay: Duration = 0.01,
        producer_name: str | None = None,
    ) -> Producer:
        producer = await self.inner.create_producer(
            topic,
            batching=batching,
            batching_max_messages=batching_max_messages,
            batching_max_publish_delay=batching_max_publish_delay,
            producer_name=producer_name,
        )
        return TracedProducer(producer, self._tracing)

    async def subscribe(self, topic: str, subscription: str, **options: Any) -> Consumer:
        return await self.inner.subscribe(topic, subscription, **options)

    async def close(self) -> None:
        await self.inner.close()
