"""Broker backends behind one contract (:mod:`keylane.brokers.base`).

``memory://`` is the embedded in-process broker (the default); ``pulsar://host:port`` is a real
Apache Pulsar broker and needs the ``pulsar`` extra.
"""

from __future__ import annotations

import inspect
from typing import Any

from keylane._validate import check_text
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
        InvalidArgumentError: ``url`` is not a str, not UTF-8 or of an unknown scheme; an
            option the backend does not take; a bad option value (the backend's message).
        MissingExtraError: ``pulsar://`` without the ``pulsar`` extra.
    """
    if not isinstance(url, str):
        raise InvalidArgumentError(
            f"url must be a str such as 'memory://' or 'pulsar://host:6650', "
            f"not {type(url).__name__}"
        )
    check_text("url", url)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        from keylane.brokers.memory import MemoryBroker

        _check_options(MemoryBroker, url, options)
        return MemoryBroker(**options)
    if scheme in ("pulsar", "pulsar+ssl"):
        from keylane.brokers.pulsar import PulsarBroker

        _check_options(PulsarBroker, url, options, positional=1)
        return PulsarBroker(url, **options)
    raise InvalidArgumentError(
        f"unknown broker URL {url!r}: use 'memory://' or 'pulsar://host:6650'"
    )


def _check_options(
    backend: type[Broker], url: str, options: dict[str, Any], positional: int = 0
) -> None:
    """Reject an option ``backend``'s constructor does not take (it would be a TypeError)."""
    parameters = list(inspect.signature(backend).parameters.values())[positional:]
    names = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for name in options:
        if name not in names:
            raise InvalidArgumentError(
                f"unknown option {name!r} for {url!r}; {backend.__name__} takes "
                f"{', '.join(names) or 'no options'}"
            )
