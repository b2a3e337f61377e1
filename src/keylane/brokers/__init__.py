"""Broker backends behind one contract (:mod:`keylane.brokers.base`).

``memory://`` is the embedded in-process broker (the default); ``pulsar://host:port`` is a real
Apache Pulsar broker and needs the ``pulsar`` extra.
"""

from __future__ import annotations

from typing import Any

from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    DeadLetterPolicy,
    InitialPosition,
    KeySharedMode,
    KeySharedPolicy,
    Message,
    MessageId,
    Producer,
    SubscriptionType,
)
from keylane.errors import InvalidArgumentError

__all__ = [
    "BatchingType",
    "Broker",
    "Consumer",
    "DeadLetterPolicy",
    "InitialPosition",
    "KeySharedMode",
    "KeySharedPolicy",
    "Message",
    "MessageId",
    "Producer",
    "SubscriptionType",
    "connect",
]


def connect(url: str = "memory://", **options: Any) -> Broker:
    """Return an unstarted broker for ``url``; use it as ``async with connect(url) as broker``.

    ``memory://`` gives a :class:`~keylane.brokers.memory.MemoryBroker`; ``pulsar://host:port``
    (or ``pulsar+ssl://``) gives a :class:`~keylane.brokers.pulsar.PulsarBroker`. ``options`` go
    to the backend's constructor.

    Raises:
        InvalidArgumentError: unknown scheme.
        MissingExtraError: ``pulsar://`` without the ``pulsar`` extra.
    """
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        from keylane.brokers.memory import MemoryBroker

        return MemoryBroker(**options)
    if scheme in ("pulsar", "pulsar+ssl"):
        from keylane.brokers.pulsar import PulsarBroker

        return PulsarBroker(url, **options)
    raise InvalidArgumentError(
        f"unknown broker URL {url!r}: use 'memory://' or 'pulsar://host:6650'"
    )
