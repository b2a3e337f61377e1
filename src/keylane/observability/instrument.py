"""Wrappers that observe the handler and the provider from outside: timing and tracing.

- :class:`InstrumentedHandler` wraps the worker's :class:`~keylane.runtime.JourneyHandler`
  (``Worker(..., wrap_handler=...)``): it counts broker redeliveries and, with a
  :class:`~.tracing.Tracing`, runs each attempt in a CONSUMER span ``process <topic>``, the
  child of the producer's context found in the message's properties and linked to it. While it
  runs, :data:`keylane.runtime.codec.TRACE_CONTEXT` holds the span's context, so every outbox
  row the decision commits carries it.
- :class:`InstrumentedProvider` wraps the provider: it times every call
  (``keylane_provider_request_duration_seconds``) and, with tracing, opens ``outbox send
  <channel>`` and the CLIENT span ``provider <channel>`` under the outbox row's context (the
  relay sets :data:`~keylane.runtime.codec.TRACE_CONTEXT` from the row while it dispatches).
- :func:`outbox_span_hook` makes a zero-length span of every other outcome the relay records
  (a dispatch-time deferral, a skip), under the row's context.

Imports the runtime's codec, the lanes and providers contracts; no backend.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from keylane.brokers.base import Message
from keylane.lanes import Handler, HandlerContext
from keylane.observability.metrics import ServiceMetrics
from keylane.observability.tracing import Tracing, short_topic
from keylane.providers import Outcome, Provider
from keylane.providers.base import Delivery, Receipt
from keylane.runtime import DecisionRecord, WorkerConfig
from keylane.runtime.codec import TRACE_CONTEXT, trace_of
from keylane.state import ClaimedSend

__all__ = [
    "InstrumentedHandler",
    "InstrumentedProvider",
    "annotate_decision",
    "outbox_span_hook",
    "wrap_handler",
]


class InstrumentedHandler:
    """``async (message, context)``: the inner handler, counted and (optionally) traced.

    Args:
        inner: the handler lanes would run.
        config: the worker's config (topic and subscription for the span attributes).
        metrics: counts broker redeliveries.
        tracing: traces each attempt; None traces nothing.
    """

    def __init__(
        self,
        inner: Handler,
        config: WorkerConfig,
        metrics: ServiceMetrics | None,
        tracing: Tracing | None,
    ) -> None:
        self._inner = inner
        self._config = config
        self._metrics = metrics
        self._tracing = tracing
        self._name = f"process {short_topic(config.topic)}"

    async def __call__(self, message: Message, context: HandlerContext) -> None:
        if self._metrics is not None and message.redelivery_count > 0 and context.attempt == 1:
            self._metrics.broker_redeliveries += 1
        tracing = self._tracing
        if tracing is None:
            await self._inner(message, context)
            return
        parent = tracing.extract(message.properties)
        attributes = tracing.messaging_attributes(message.topic, "process", "process")
        attributes.update(
            {
                "messaging.destination.subscription.name": self._config.subscription,
                "messaging.consumer.group.name": self._config.subscription,
                "messaging.message.id": str(message.message_id),
                "messaging.client.id": context.consumer_name,
                "messaging.pulsar.message.key": context.key,
                "messaging.pulsar.redelivery_count": message.redelivery_count,
                "keylane.attempt": context.attempt,
            }
        )
        with tracing.tracer.start_as_current_span(
            self._name,
            context=parent,
            kind=SpanKind.CONSUMER,
            links=tracing.link_to(parent),
            attributes=attributes,
        ) as span:
            token = TRACE_CONTEXT.set(tracing.inject())
            try:
                await self._inner(message, context)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                raise
            finally:
                TRACE_CONTEXT.reset(token)


def annotate_decision(record: DecisionRecord) -> None:
    """A decision observer: the attempt's outcome and reasons as an event of the current span.

    Observers run inside the handler call, so the current span is the ``process`` span.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    reasons = () if record.decision is None else record.decision.reasons
    attributes: dict[str, str | int | list[str]] = {
        "keylane.decision.outcome": record.outcome.value,
        "keylane.decision.reasons": [r.code.value for r in reasons],
        "keylane.key": record.key,
    }
    if record.event_id is not None:
        attributes["keylane.event_id"] = record.event_id
    if record.event_type is not None:
        attributes["keylane.event_type"] = record.event_type.value
    if record.version is not None:
        attributes["keylane.state.version"] = record.version
    if record.decision is not None:
        attributes["keylane.decision.sends"] = len(record.decision.sends)
    span.add_event("decision", attributes)
    span.set_attribute("keylane.decision.outcome", record.outcome.value)


def wrap_handler(
    metrics: ServiceMetrics | None, tracing: Tracing | None
) -> Callable[[Handler, WorkerConfig], Handler]:
    """A ``wrap_handler`` for :class:`~keylane.runtime.Worker` and the service's Pipeline."""

    def wrap(inner: Handler, config: WorkerConfig) -> Handler:
        return InstrumentedHandler(inner, config, metrics, tracing)

    return wrap


class InstrumentedProvider(Provider):
    """The inner provider, timed and (optionally) traced; closing it closes the inner one."""

    def __init__(
        self, inner: Provider, metrics: ServiceMetrics | None, tracing: Tracing | None
    ) -> None:
        self.inner = inner
        self._metrics = metrics
        self._tracing = tracing
        self._kind = type(inner).__name__

    async def _send(self, delivery: Delivery) -> Receipt:
        tracing = self._tracing
        if tracing is None:
            return await self._timed(delivery)
        parent = tracing.extract(TRACE_CONTEXT.get())
        with tracing.tracer.start_as_current_span(
            f"outbox send {delivery.channel}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                "keylane.idempotency_key": delivery.idempotency_key,
                "keylane.channel": delivery.channel,
                "keylane.journey": delivery.journey,
                "keylane.step": delivery.step,
                "keylane.message_class": delivery.message_class,
            },
        ) as outer:
            with tracing.tracer.start_as_current_span(
                f"provider {delivery.channel}",
                kind=SpanKind.CLIENT,
                attributes={"keylane.provider": self._kind},
            ) as span:
                receipt = await self._timed(delivery)
                span.set_attribute("keylane.receipt.outcome", receipt.outcome.value)
                span.set_attribute("keylane.receipt.replayed", receipt.replayed)
                if receipt.status_code is not None:
                    span.set_attribute("http.response.status_code", receipt.status_code)
                if receipt.outcome is not Outcome.SENT:
                    span.set_attribute("error.type", receipt.outcome.value)
                    span.set_status(Status(StatusCode.ERROR, receipt.detail[:200]))
            outer.set_attribute("keylane.send.outcome", receipt.outcome.value)
            return receipt

    async def _timed(self, delivery: Delivery) -> Receipt:
        began = time.perf_counter()
        receipt = await self.inner.send(delivery)
        if self._metrics is not None:
            self._metrics.provider_duration.labels(delivery.channel, receipt.outcome.value).observe(
                time.perf_counter() - began
            )
        return receipt

    async def close(self) -> None:
        await self.inner.close()


def outbox_span_hook(tracing: Tracing) -> Callable[[ClaimedSend, datetime | None, str], None]:
    """A relay ``on_delivered`` hook: a span for each outcome that is not a provider call."""

    def hook(claim: ClaimedSend, sent_at: datetime | None, word: str) -> None:
        if word in ("sent", "retry", "failed_permanent", "unknown"):
            return  # the provider call has its own spans
        tracing.event_span(
            f"outbox {word.split('_', 1)[0]} {claim.channel}",
            trace_of(claim.payload),
            {
                "keylane.idempotency_key": claim.idempotency_key,
                "keylane.channel": claim.channel,
                "keylane.send.outcome": word,
                "keylane.attempt": claim.attempt,
            },
        )

    return hook
