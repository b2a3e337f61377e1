"""Shared dispatching (Pulsar ``PersistentDispatcherMultipleConsumers``, spec section 1.3).

Each entry goes to one consumer: the highest priority level with an available consumer first,
round robin within the level, in chunks of at most ``dispatcher_max_round_robin_batch_size``
entries. Everything else (replay, pending acks, limits, delayed delivery) is
:class:`~keylane.brokers.memory.multi.MultiConsumerDispatcher`.

Imports the multi-consumer base, storage and config only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from keylane.brokers.base import SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.multi import MultiConsumerDispatcher
from keylane.brokers.memory.storage import Entry

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["SharedDispatcher"]


class SharedDispatcher(MultiConsumerDispatcher):
    """Shared: each entry to one consumer, priority levels first, round robin in chunks."""

    sub_type = SubscriptionType.SHARED

    def __init__(
        self, sub: Subscription, loop: asyncio.AbstractEventLoop, config: MemoryBrokerConfig
    ) -> None:
        super().__init__(sub, loop, config)
        #: Priority level -> index (within the level) of the next consumer to serve.
        self._next_index: dict[int, int] = {}

    def next_consumer(self) -> BrokerConsumer | None:
        """The next available consumer: highest priority level first, round robin within it."""
        consumers = self.consumers
        n = len(consumers)
        start = 0
        while start < n:
            level = consumers[start].priority
            stop = start
            while stop < n and consumers[stop].priority == level:
                stop += 1
            size = stop - start
            first = self._next_index.get(level, 0)
            for k in range(size):
                index = (first + k) % size
                candidate = consumers[start + index]
                if self.available(candidate) > 0:
                    self._next_index[level] = index + 1
                    return candidate
            start = stop
        return None

    def read_limit(self) -> int:
        return min(self.config.dispatcher_max_read_batch_size, self.total_available())

    def dispatch(self, entries: list[Entry], normal: bool) -> int:
        n = len(entries)
        average = max(sum(e.size for e in entries) // n, 1)
        chunk_max = self.config.dispatcher_max_round_robin_batch_size
        i = 0
        while i < n and not self.blocked:
            consumer = self.next_consumer()
            if consumer is None:
                break
            k = min(n - i, max(self.available(consumer) // average, 1), chunk_max)
            self.deliver(consumer, entries[i : i + k])
            i += k
        if normal:
            for entry in entries[i:]:
                self.replay.add(entry.entry_id, 0)
        return i
