"""Exclusive and Failover dispatching: one active consumer per partition, in log order.

Pulsar ``PersistentDispatcherSingleActiveConsumer`` (spec sections 1.1, 1.2): the active consumer
is picked by ``(priority, name)``; on a partition ``partition % eligible``, on a non-partitioned
topic the consistent-hash ring. Every change of active consumer rewinds the cursor, so the new one
starts at the first unacknowledged message; Failover waits ``failover_delay`` first. Redelivery is
always "rewind everything", and redelivery counts are always 0.

Imports storage, config, the dispatcher base and the active-consumer selector only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from keylane.brokers.base import Message, SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.dispatcher import RUN_BUDGET, Dispatcher
from keylane.brokers.memory.failover import ActiveConsumerSelector
from keylane.brokers.memory.storage import Entry
from keylane.errors import ConsumerBusyError

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["SingleActiveDispatcher"]


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
        partition = sub.log.partition
        by_partition = partition >= 0 and not config.failover_consistent_hashing
        self._selector: ActiveConsumerSelector[BrokerConsumer] = ActiveConsumerSelector(
            sub.log.name, partition if by_partition else None
        )
        self._rewind_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ consumers

    def check_add(self, consumer: BrokerConsumer) -> None:
        if self.sub_type is SubscriptionType.EXCLUSIVE and self.consumers:
            raise ConsumerBusyError("Exclusive consumer is already connected")

    def add_consumer(self, consumer: BrokerConsumer) -> None:
        self.check_add(consumer)
        self.consumers.append(consumer)
        self._selector.add(consumer)
        self._pick_active()

    def remove_consumer(self, consumer: BrokerConsumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
            self._selector.remove(consumer)
        if not self.consumers:
            self.active = None
            self._cancel_timer()
            return
        self._pick_active()

    def _pick_active(self) -> None:
        selected = self._selector.active()
        if selected is not None and selected is not self.active:
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
        entries, base, end = log.entries, log.base, log.end
        pos = cursor.read_position
        mark_delete, deleted = cursor.mark_delete, cursor.deleted
        holes = deleted.starts
        permits = consumer.permits
        out: list[Message] = []
        budget = RUN_BUDGET
        if pos < base:  # after a rewind: the retained entries below the tail come first
            for entry_id in log.islands_from(pos):
                if permits <= 0 or budget <= 0:
                    pos = entry_id
                    break
                if not cursor.is_acked(entry_id):
                    permits -= self._emit(out, log.islands[entry_id], consumer)
                    budget -= 1
            else:
                pos = base
        while pos < end and permits > 0 and budget > 0:
            if pos <= mark_delete:
                pos = mark_delete + 1
                continue
            if holes:
                after = deleted.end_of(pos)
                if after != pos:
                    pos = after
                    continue
            permits -= self._emit(out, entries[pos - base], consumer)
            budget -= 1
            pos += 1
        if out:
            consumer.owner._enqueue(out)  # if it raises, the next pass reads the same entries
        cursor.read_position = pos
        consumer.permits = permits
        if budget <= 0:
            self.schedule()

    def _emit(self, out: list[Message], entry: Entry, consumer: BrokerConsumer) -> int:
        """Append ``entry``'s messages not acknowledged yet to ``out``; returns how many."""
        messages = entry.messages
        batch_acks = self.sub.cursor.batch_acks
        if batch_acks and entry.entry_id in batch_acks:
            acked = batch_acks[entry.entry_id]
            messages = tuple(m for i, m in enumerate(messages) if i not in acked)
        topic = self.sub.log.name
        for data, key, okey, props, mid, ptime, etime in messages:
            out.append(Message(data, key, okey, props, mid, topic, ptime, 0, etime, consumer))
        return len(messages)

    def close(self) -> None:
        super().close()
        self._cancel_timer()
