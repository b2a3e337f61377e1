"""The Apache Pulsar backend (``pulsar://``): keylane's broker contract over ``pulsar-client``.

Use :class:`PulsarBroker` directly or through ``keylane.brokers.connect("pulsar://host:6650")``.
It wraps the official client's asyncio API (``pulsar.asyncio``, pulsar-client 3.13) and the
broker's admin REST API. See ``docs/backends.md`` for what maps to what.

This package is the only place in keylane that imports ``pulsar``; it imports no other backend.
"""

from __future__ import annotations

from keylane.errors import MissingExtraError

try:
    import pulsar as _pulsar  # noqa: F401  (fail early with an install hint)
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError("The Pulsar backend", "pulsar", "pulsar-client") from exc

from keylane.brokers.pulsar.broker import PulsarBroker
from keylane.brokers.pulsar.consumer import PulsarConsumer
from keylane.brokers.pulsar.producer import PulsarProducer

__all__ = ["PulsarBroker", "PulsarConsumer", "PulsarProducer"]
