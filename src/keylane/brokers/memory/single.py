"""Exclusive and Failover dispatching: one active consumer per partition, in log order.

Pulsar ``PersistentDispatcherSingleActiveConsumer`` (spec sections 1.1, 1.2): the active consumer
is picked by ``(priority, name)``; on a partition ``partition % eligible``, on a non-partitioned
topic the consistent-hash ring. Every change of active consumer rewinds the cursor, so the new one
starts at the first unacknowledged message; Failover waits ``failover_delay`` first. Redelivery is
always "rewind everything", and redelivery counts are always 0.

Imports storage, config and the dispatcher base only.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from keylane.brokers.base import Message, SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.dispatcher import RUN_BUDGET, Dispatcher
from keylane.errors import ConsumerBusyError
from keylane.hashing import murmur31

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["SingleActiveDispatcher", "failover_ring_index"]

#: Ring points per consumer of the non-partitioned Failover ring (Pulsar constant).
_FAILOVER_RING_POINTS = 100


@functools.lru_cache(maxsize=256)
def failover_ring_index(names: tuple[str, ...], topic: str) -> int:
    """Index into ``names`` of the active consumer chosen by the Failover hash ring.

    ``names`` are the eligible consumers in ``(priority, name)`` order. Ring key of consumer ``i``
    and point ``j`` is ``murmur31(name + str(j))``; later consumers overwrite collisions; the
    topic point is ``murmur31(topic)``; the first ring key at or after it wins (wrapping).
    """
    ring: dict[int, int] = {}
    for i, name in enumerate(names):
        for j in range(_FAILOVER_RING_POINTS):
            ring[murmur31(f"{name}{j}")] = i
    points = sorted(ring)
    at = bisect.bisect_left(points, murmur31(topic))
    return ring[points[at % len(points)]]


class SingleActiveDispatcher(Dispatcher):
    """Dispatcher of Exclusive and Failover subscriptions."""

    def __init__(
        self,
        sub: Subscription,
        loop: asyncio.AbstractEventLoop,
        config: MemoryBrokerConfig,
        sub_type: SubscriptionType,
    ) -> None:
        super().__init__(sub, loop, config)
        self.sub_type = sub_type
        self.consumers: list[BrokerConsumer] = []
        self.active: BrokerConsumer | None = None
        self._rewind_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ consumers

    def check_add(self, consumer: BrokerConsumer) -> None:
        if self.sub_type is SubscriptionType.EXCLUSIVE and self.consumers:
            raise ConsumerBusyError("Exclusive consumer is already connected")

    def add_consumer(self, consumer: BrokerConsumer) -> None:
        self.check_add(consumer)
        self.consumers.append(consumer)
        self._pick_active()

    def remove_consumer(self, consumer: BrokerConsumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        if not self.consumers:
            self.active = None
            self._cancel_timer()
            return
        self._pick_active()

    def _pick_active(self) -> None:
        consumers = sorted(self.consumers, key=lambda c: (c.priority, c.name))
        best = consumers[0].priority
        eligible = [c for c in consumers if c.priority == best]
        partition = self.sub.log.partition
        if partition >= 0 and not self.config.failover_consistent_hashing:
            index = partition % len(eligible)
        else:
            index = failover_ring_index(tuple(c.name for c in eligible), self.sub.log.name)
        selected = eligible[index]
        if selected is not self.active:
            self.active = selected
            self._schedule_read_on_active()

    def _schedule_read_on_active(self) -> None:
        delay = self.config.failover_delay
        if self.sub_type is not SubscriptionType.FAILOVER or delay <= 0:
            self._cancel_timer()
            self.sub.cursor.rewind()
            self.schedule()
        elif self._rewind_timer is None:
            self._rewind_timer = self.loop.call_later(delay, self._rewind_after_delay)

    def _rewind_after_delay(self) -> None:
        self._rewind_timer = None
        if self._closed:
            return
        self.sub.cursor.rewind()
        self.schedule()

    def _cancel_timer(self) -> None:
        if self._rewind_timer is not None:
            self._rewind_timer.cancel()
            self._rewind_timer = None

    # ------------------------------------------------------------------ delivery

    def on_flow(self, consumer: BrokerConsumer) -> None:
        if consumer is self.active and self._rewind_timer is None:
            self.schedule()

    def on_new_entries(self) -> None:
        if self.active is not None and self._rewind_timer is None:
            self.schedule()

    def redeliver(self, consumer: BrokerConsumer, entry_ids: Iterable[int] | None) -> None:
        """Rewind and redeliver everything unacknowledged, if asked by the active consumer."""
        if consumer is self.active and self._rewind_timer is None:
            self.sub.cursor.rewind()
            self.schedule()

    def run(self) -> None:
        consumer = self.active
        if consumer is None or self._rewind_timer is not None or consumer.permits <= 0:
            return
        sub = self.sub
        log, cursor = sub.log, sub.cursor
        topic = log.name
        entries, base, end = log.entries, log.base, log.end
        pos = max(cursor.read_position, base)
        mark_delete, deleted, batch_acks = cursor.mark_delete, cursor.deleted, cursor.batch_acks
        permits = consumer.permits
        out: list[Message] = []
        budget = RUN_BUDGET
        while pos < end and permits > 0 and budget > 0:
            if pos <= mark_delete or pos in deleted:
                pos += 1
                continue
            entry = entries[pos - base]
            messages = entry.messages
            if batch_acks and pos in batch_acks:
                acked = batch_acks[pos]
                messages = tuple(m for i, m in enumerate(messages) if i not in acked)
            for data, key, okey, props, mid, ptime, etime in messages:
                out.append(Message(data, key, okey, props, mid, topic, ptime, 0, etime, consumer))
            permits -= len(messages)
            budget -= 1
            pos += 1
        cursor.read_position = pos
        consumer.permits = permits
        if out:
            consumer.owner._enqueue(out)
        if budget <= 0:
            self.schedule()

    def close(self) -> None:
        super().close()
        self._cancel_timer()
