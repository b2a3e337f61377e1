"""Who owns which key hashes: a Key_Shared subscription's consumers, ranges and draining hashes.

One reader for both backends, in the shape of Pulsar's admin API
(``subscriptions[name].consumers[*].keyHashRangeArrays`` and ``drainingHashes``):

- the embedded broker answers :meth:`~keylane.brokers.memory.MemoryBroker.subscription_stats`
  from its selector;
- the Pulsar backend asks the broker's admin REST API (``PulsarBroker.admin``).

So the owner of a key is read from the broker, which sees every consumer of the subscription
(in every process), not computed from this process's consumers. A key's slot is
:func:`keylane.hashing.slot_consistent` when the ranges start at 1 (the consistent-hashing
selector, Pulsar's default) and :func:`keylane.hashing.slot_range` when one starts at 0.

Imports the broker contract, the embedded broker and :mod:`keylane.hashing`; the Pulsar backend
only through the broker object it is given (no ``pulsar`` import).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from keylane.brokers.base import Broker
from keylane.errors import BrokerError
from keylane.hashing import slot_consistent, slot_range

__all__ = [
    "ConsumerRanges",
    "DrainingHash",
    "SubscriptionView",
    "parse_subscription",
    "read_subscription",
]


@dataclass(frozen=True, slots=True)
class DrainingHash:
    """A hash slot that moved to another consumer while this one still held its messages."""

    slot: int
    unacked: int
    blocked_attempts: int


@dataclass(frozen=True, slots=True)
class ConsumerRanges:
    """One consumer of the subscription, as the broker sees it.

    Attributes:
        name: the consumer's name (``<worker>-<n>`` for keylane's workers).
        ranges: inclusive ``(start, end)`` slot ranges it owns.
        draining: its draining hashes.
        unacked: messages delivered to it and not acknowledged.
        permits: flow permits left.
    """

    name: str
    ranges: tuple[tuple[int, int], ...]
    draining: tuple[DrainingHash, ...]
    unacked: int
    permits: int

    @property
    def slots(self) -> int:
        """How many slots its ranges cover."""
        return sum(end - start + 1 for start, end in self.ranges)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "ranges": [list(r) for r in self.ranges],
            "range_count": len(self.ranges),
            "slots": self.slots,
            "draining": [
                {"slot": d.slot, "unacked": d.unacked, "blocked_attempts": d.blocked_attempts}
                for d in self.draining
            ],
            "unacked": self.unacked,
            "permits": self.permits,
        }


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription's consumers and their slot ranges at one moment.

    Attributes:
        topic: the topic (partition) read.
        subscription: the subscription.
        source: ``"memory"`` (the embedded broker's selector) or ``"pulsar-admin"``.
        consumers: every consumer, in the broker's order.
        consistent: whether slots are consistent-hashing slots (1..65535).
    """

    topic: str
    subscription: str
    source: str
    consumers: tuple[ConsumerRanges, ...]
    consistent: bool

    def slot_of(self, key: str) -> int:
        """``key``'s slot in this subscription's hash space."""
        return slot_consistent(key) if self.consistent else slot_range(key)

    def owner_of(self, slot: int) -> str | None:
        """The consumer whose range holds ``slot`` (None: nobody, e.g. no consumer)."""
        starts: list[tuple[int, int, str]] = sorted(
            (start, end, c.name) for c in self.consumers for start, end in c.ranges
        )
        index = bisect.bisect_right([s for s, _, _ in starts], slot) - 1
        if index >= 0 and starts[index][0] <= slot <= starts[index][1]:
            return starts[index][2]
        return None

    def draining_of(self, slot: int) -> DrainingHash | None:
        """The draining entry of ``slot``, if a consumer is still draining it."""
        for consumer in self.consumers:
            for drain in consumer.draining:
                if drain.slot == slot:
                    return drain
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "topic": self.topic,
            "subscription": self.subscription,
            "source": self.source,
            "slot_function": "slot_consistent" if self.consistent else "slot_range",
            "consumers": [c.to_dict() for c in self.consumers],
        }


class _StatsReader(Protocol):
    async def subscription_stats(self, topic: str, subscription: str) -> dict[str, Any] | None:
        """Pulsar-admin-shaped stats of one subscription."""


def _ints(value: object) -> tuple[int, int] | None:
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


def _number(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def parse_subscription(
    stats: Mapping[str, Any], *, topic: str, subscription: str, source: str
) -> SubscriptionView:
    """A :class:`SubscriptionView` from Pulsar-admin-shaped stats (unknown fields ignored)."""
    consumers = []
    raw = stats.get("consumers")
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        ranges = tuple(
            r for r in (_ints(v) for v in item.get("keyHashRangeArrays") or ()) if r is not None
        )
        draining = tuple(
            DrainingHash(
                _number(d.get("hash")),
                _number(d.get("unackedMessages")),
                _number(d.get("blockedAttempts")),
            )
            for d in item.get("drainingHashes") or ()
            if isinstance(d, Mapping)
        )
        consumers.append(
            ConsumerRanges(
                name=str(item.get("consumerName", "")),
                ranges=tuple(sorted(ranges)),
                draining=draining,
                unacked=_number(item.get("unackedMessages")),
                permits=_number(item.get("availablePermits")),
            )
        )
    starts = [start for c in consumers for start, _ in c.ranges]
    return SubscriptionView(
        topic=topic,
        subscription=subscription,
        source=source,
        consumers=tuple(consumers),
        consistent=not starts or min(starts) >= 1,
    )


def _inner(broker: Broker) -> Broker:
    """The broker under keylane's wrappers (a tracing broker has ``inner``)."""
    seen = 0
    while seen < 8 and isinstance(getattr(broker, "inner", None), Broker):
        broker = broker.inner  # type: ignore[attr-defined]
        seen += 1
    return broker


async def read_subscription(broker: Broker, topic: str, subscription: str) -> SubscriptionView:
    """Read ``subscription``'s consumers and ranges from the broker.

    Raises:
        BrokerError: the broker cannot say (a backend without stats, the admin API down, no
            such subscription).
    """
    broker = _inner(broker)
    reader: _StatsReader | None = None
    source = "memory"
    admin = getattr(broker, "admin", None)
    if callable(getattr(broker, "subscription_stats", None)):
        reader = broker  # type: ignore[assignment]
    elif admin is not None and callable(getattr(admin, "subscription_stats", None)):
        reader, source = admin, "pulsar-admin"
    if reader is None:
        raise BrokerError(f"{type(broker).__name__} does not report subscription stats")
    stats = await reader.subscription_stats(topic, subscription)
    if stats is None:
        raise BrokerError(f"no subscription {subscription!r} on {topic}")
    return parse_subscription(stats, topic=topic, subscription=subscription, source=source)
