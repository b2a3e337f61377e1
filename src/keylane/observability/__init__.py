"""Observability of a keylane service process: Prometheus metrics, tracing, recent decisions.

- :class:`Observability` (``hub``): everything below wired around one worker.
- :mod:`.metrics`: the metric names (:data:`METRICS`), the registry, the scrape-time collector.
- :mod:`.tracing` and :mod:`.instrument`: OpenTelemetry spans through the broker (W3C trace
  context in message properties and outbox rows), and the handler and provider wrappers.
- :mod:`.decisions`: the per-subscriber ring of recent decisions and the live feed.
- :mod:`.sampler`: background reads of the store and the broker, and the dashboard's series.
- :mod:`.ownership`: a Key_Shared subscription's consumers, hash ranges and draining hashes.
- :mod:`.redact`: a logging filter that masks tokens and phone numbers.

An applications-layer package (layer 4): imports the runtime, lanes, state, journeys, providers
and the broker contract; never the web framework or the CLI. Needs the ``web`` extra
(prometheus-client, opentelemetry-api/-sdk).
"""

from __future__ import annotations

from keylane.observability.decisions import DecisionEntry, DecisionLog, DeliveryEntry
from keylane.observability.hub import Observability
from keylane.observability.metrics import METRICS, MetricSpec, ServiceMetrics
from keylane.observability.ownership import SubscriptionView, read_subscription
from keylane.observability.redact import RedactingFilter, redact
from keylane.observability.sampler import Point, Sample, Sampler
from keylane.observability.tracing import Tracing

__all__ = [
    "METRICS",
    "DecisionEntry",
    "DecisionLog",
    "DeliveryEntry",
    "MetricSpec",
    "Observability",
    "Point",
    "RedactingFilter",
    "Sample",
    "Sampler",
    "ServiceMetrics",
    "SubscriptionView",
    "Tracing",
    "read_subscription",
    "redact",
]
