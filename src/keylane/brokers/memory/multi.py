"""The machinery Shared and Key_Shared dispatching have in common.

:class:`MultiConsumerDispatcher` is Pulsar ``PersistentDispatcherMultipleConsumers``: pending
acknowledgements per consumer, the replay queue (read before the log), redelivery counts, delayed
delivery, and the unacknowledged-message limits. Subclasses decide how entries are spread over
consumers (:meth:`~MultiConsumerDispatcher.dispatch`) and how much a normal read may read.

Imports storage, replay, objects, config and the dispatcher base only.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from keylane.brokers.base import Message
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.dispatcher import RUN_BUDGET, Dispatcher
from keylane.brokers.memory.objects import FAST, MESSAGE_SETTERS
from keylane.brokers.memory.replay import DelayedTracker, ReplayQueue
from keylane.brokers.memory.storage import Entry

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["MultiConsumerDispatcher"]

_new = object.__new__


class MultiConsumerDispatcher(Dispatcher):
    """Common part of the Shared and Key_Shared dispatchers."""

    def __init__(
        self, sub: Subscription, loop: asyncio.AbstractEventLoop, config: MemoryBrokerConfig
    ) -> None:
        super().__init__(sub, loop, config)
        #: Connected consumers, ordered by priority level (stable within a level).
        self.consumers: list[BrokerConsumer] = []
        self.replay = ReplayQueue()
        #: Entry id -> redelivery count (Pulsar ``InMemoryRedeliveryTracker``).
        self.counts: dict[int, int] = {}
        self.delayed = DelayedTracker(config.delayed_delivery_tick, config.delayed_delivery_strict)
        self.total_unacked = 0
        #: Stopped by ``max_unacked_per_subscription`` until the total halves.
        self.blocked = False
        self._max_unacked = config.max_unacked_per_consumer
        self._max_unacked_sub = config.max_unacked_per_subscription
        self._delay_timer: asyncio.TimerHandle | None = None
        self._last_tick = float("-inf")
        #: Whether :meth:`pending_removed` must be called (Key_Shared draining).
        self.has_pending_hook = False
        #: Bumped by every change that may make a queued replay entry dispatchable; a replay
        #: pass that dispatched nothing is not repeated until it changes.
        self.replay_epoch = 0
        self._idle_epoch = -1

    def wake(self) -> None:
        """Something that may unblock replayed entries changed: dispatch again soon."""
        self.replay_epoch += 1
        self.schedule()

    def on_flow(self, consumer: BrokerConsumer) -> None:
        self.wake()

    # ------------------------------------------------------------------ consumers

    def add_consumer(self, consumer: BrokerConsumer) -> None:
        if not self.consumers:
            # First consumer of an empty dispatcher: start again from the first unacked entry.
            self.sub.cursor.rewind()
            self.replay.clear()
            self.counts.clear()
            self.delayed.clear()
            self.total_unacked = 0
            self.blocked = False
        index = len(self.consumers)
        while index > 0 and self.consumers[index - 1].priority > consumer.priority:
            index -= 1
        self.consumers.insert(index, consumer)
        self.wake()

    def remove_consumer(self, consumer: BrokerConsumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        # Its pending entries are dispatched again to the others; the count is not bumped.
        for entry_id, count in consumer.pending.items():
            entry = self.sub.log.get(entry_id)
            slot = self.replay_slot(entry) if entry is not None else 0
            self.replay.add(entry_id, slot)
            self.total_unacked -= count
            if entry is not None:
                self.pending_removed(consumer, entry)
        consumer.pending = {}
        consumer.unacked = 0
        if not self.consumers:
            self.replay.clear()
            self.counts.clear()
        self._check_sub_unblocked()
        self.wake()

    def replay_slot(self, entry: Entry) -> int:
        """Slot stored with a replayed position (0: the position blocks no key)."""
        return 0

    def pending_removed(self, consumer: BrokerConsumer, entry: Entry) -> None:
        """``entry`` left ``consumer``'s pending acknowledgements."""

    # ------------------------------------------------------------------ acks and redelivery

    def on_ack(self, consumer: BrokerConsumer | None, entry: Entry, complete: bool) -> None:
        entry_id = entry.entry_id
        holder = consumer
        left = holder.pending.get(entry_id, 0) if holder is not None else 0
        if not left:
            holder = None
            for c in self.consumers:
                if entry_id in c.pending:
                    holder = c
                    left = c.pending[entry_id]
                    break
        if holder is not None:
            # A whole-entry ack settles every delivered message of it, an index ack one.
            acked = left if complete else 1
            left -= acked
            if left <= 0:
                del holder.pending[entry_id]
                if self.has_pending_hook:
                    self.pending_removed(holder, entry)
            else:
                holder.pending[entry_id] = left
            holder.unacked -= acked
            self.total_unacked -= acked
            if holder.blocked and holder.unacked <= self._max_unacked // 2:
                holder.blocked = False
                self.wake()
            if self.blocked:
                self._check_sub_unblocked()
        if complete:
            if self.counts:
                self.counts.pop(entry_id, None)
            if self.replay.positions and entry_id in self.replay.positions:
                self.replay.remove(entry_id)

    def _check_sub_unblocked(self) -> None:
        if self.blocked and self.total_unacked <= self._max_unacked_sub // 2:
            self.blocked = False
            self.wake()

    def redeliver(self, consumer: BrokerConsumer, entry_ids: Iterable[int] | None) -> None:
        """Move ``consumer``'s pending entries to the replay queue, bumping their counts.

        All pending entries (``entry_ids`` None) keep their Key_Shared slot; named positions do
        not (Pulsar passes no sticky hash for them), so they block no newer entry of the key.
        """
        pending = consumer.pending
        if entry_ids is None:
            ids = list(pending)
        else:
            ids = list(dict.fromkeys(e for e in entry_ids if e in pending))
        log = self.sub.log
        for entry_id in ids:
            count = pending.pop(entry_id)
            consumer.unacked -= count
            self.total_unacked -= count
            entry = log.get(entry_id)
            if entry is None:
                continue
            slot = self.replay_slot(entry) if entry_ids is None else 0
            if self.replay.add(entry_id, slot):
                self.counts[entry_id] = self.counts.get(entry_id, 0) + 1
            self.pending_removed(consumer, entry)
        if consumer.blocked and consumer.unacked <= self._max_unacked // 2:
            consumer.blocked = False
        self._check_sub_unblocked()
        self.wake()

    # ------------------------------------------------------------------ dispatch loop

    def available(self, consumer: BrokerConsumer) -> int:
        """Messages ``consumer`` may still get: its permits, capped by the unacked limit."""
        if consumer.blocked:
            return 0
        permits = consumer.permits
        if permits <= 0:
            return 0
        limit = self._max_unacked
        if limit:
            room = limit - consumer.unacked
            if room <= 0:
                return 0
            if room < permits:
                return room
        return permits

    def total_available(self) -> int:
        """Sum of :meth:`available` over the consumers, capped by the subscription's limit."""
        total = sum(self.available(c) for c in self.consumers)
        limit = self._max_unacked_sub
        if limit:
            return min(total, max(limit - self.total_unacked, 0))
        return total

    def run(self) -> None:
        if not self.consumers:
            return
        budget = RUN_BUDGET
        while budget > 0 and not self.blocked:
            if self.delayed:
                self._release_due()
            if self.replay and self._idle_epoch != self.replay_epoch:
                dispatched = self.replay_read()
                if dispatched:
                    budget -= dispatched
                    continue
                self._idle_epoch = self.replay_epoch
            read = self.normal_read()
            if read < 0:
                return
            budget -= max(read, 1)
        if budget <= 0:
            self.schedule()

    @abc.abstractmethod
    def dispatch(self, entries: list[Entry], normal: bool) -> int:
        """Hand ``entries`` to consumers; returns how many were dispatched.

        Undispatched entries of a normal read go to the replay queue; those of a replay read
        stay there.
        """

    @abc.abstractmethod
    def read_limit(self) -> int:
        """How many entries a normal read may read now (0: no normal read)."""

    def replay_read(self) -> int:
        """Dispatch from the replay queue in position order; returns entries dispatched."""
        limit = min(self.config.dispatcher_max_read_batch_size, self.total_available())
        if limit <= 0:
            return 0
        log, cursor, replay = self.sub.log, self.sub.cursor, self.replay
        entries: list[Entry] = []
        for entry_id in replay.ordered():
            entry = log.get(entry_id)
            if entry is None or cursor.is_acked(entry_id):
                replay.remove(entry_id)
                continue
            entries.append(entry)
            if len(entries) >= limit:
                break
        if not entries:
            return 0
        return self.dispatch(entries, normal=False)

    def normal_read(self) -> int:
        """Read new entries from the cursor and dispatch them.

        Returns:
            Entries read (0 if only acknowledged or delayed ones were passed), -1 if nothing can
            be read now.
        """
        limit = self.read_limit()
        if limit <= 0:
            return -1
        sub = self.sub
        log, cursor = sub.log, sub.cursor
        log_entries, base, end = log.entries, log.base, log.end
        pos = cursor.read_position
        if pos >= end:
            return -1
        mark_delete, deleted = cursor.mark_delete, cursor.deleted
        holes = deleted.starts
        entries: list[Entry] = []
        now: float | None = None
        if pos < base:  # after a rewind: the retained entries below the tail come first
            pos = self._read_islands(pos, entries, limit)  # < base only once limit is reached
        while pos < end and len(entries) < limit:
            if pos <= mark_delete:
                pos = mark_delete + 1
                continue
            if holes:
                after = deleted.end_of(pos)
                if after != pos:
                    pos = after
                    continue
            entry = log_entries[pos - base]
            pos += 1
            if entry.deliver_at is not None:
                if now is None:
                    now = self.loop.time()
                if self.delayed.add(entry.entry_id, entry.deliver_at, now):
                    self._arm_delay_timer()
                    continue
            entries.append(entry)
        cursor.read_position = pos
        if entries:
            try:
                self.dispatch(entries, normal=True)
            except Exception:
                self._requeue_undelivered(entries)
                raise
        return len(entries)

    def _read_islands(self, pos: int, entries: list[Entry], limit: int) -> int:
        """Read retained entries below the log's tail from ``pos`` on into ``entries``.

        Returns:
            Where the normal read goes on: the log's ``base`` once all islands are read.
        """
        log, cursor = self.sub.log, self.sub.cursor
        now = self.loop.time()
        for entry_id in log.islands_from(pos):
            if len(entries) >= limit:
                return entry_id
            if cursor.is_acked(entry_id):
                continue
            entry = log.islands[entry_id]
            if entry.deliver_at is not None and self.delayed.add(entry_id, entry.deliver_at, now):
                self._arm_delay_timer()
                continue
            entries.append(entry)
        return log.base

    def _requeue_undelivered(self, entries: list[Entry]) -> None:
        """After a failed dispatch: queue for replay what was read but reached no consumer."""
        cursor = self.sub.cursor
        for entry in entries:
            entry_id = entry.entry_id
            if cursor.is_acked(entry_id) or any(entry_id in c.pending for c in self.consumers):
                continue
            self.replay.add(entry_id, 0)

    def deliver(self, consumer: BrokerConsumer, entries: list[Entry]) -> None:
        """Send ``entries`` to ``consumer``: pending acks, permits, then its client queue."""
        sub = self.sub
        topic = sub.log.name
        batch_acks = sub.cursor.batch_acks
        counts, replay, pending = self.counts, self.replay, consumer.pending
        out: list[Message] = []
        append = out.append
        total = 0
        new = _new
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = MESSAGE_SETTERS
        for entry in entries:
            entry_id = entry.entry_id
            if replay.positions:
                replay.remove(entry_id)
            count = counts.get(entry_id, 0) if counts else 0
            messages = entry.messages
            if batch_acks and entry_id in batch_acks:
                acked = batch_acks[entry_id]
                messages = tuple(m for i, m in enumerate(messages) if i not in acked)
            for data, key, okey, props, mid, ptime, etime in messages:
                if FAST:
                    m = new(Message)
                    s0(m, data)
                    s1(m, key)
                    s2(m, okey)
                    s3(m, props)
                    s4(m, mid)
                    s5(m, topic)
                    s6(m, ptime)
                    s7(m, count)
                    s8(m, etime)
                    s9(m, consumer)
                else:
                    m = Message(data, key, okey, props, mid, topic, ptime, count, etime, consumer)
                append(m)
            pending[entry_id] = len(messages)
            total += len(messages)
        consumer.permits -= total
        consumer.unacked += total
        self.total_unacked += total
        if self._max_unacked and consumer.unacked >= self._max_unacked:
            consumer.blocked = True
        if self._max_unacked_sub and self.total_unacked >= self._max_unacked_sub:
            self.blocked = True
        consumer.owner._enqueue(out)

    # ------------------------------------------------------------------ delayed delivery

    def _release_due(self) -> None:
        due = self.delayed.pop_due(self.loop.time())
        for entry_id in due:
            self.replay.add(entry_id, 0)
        if due:
            self.replay_epoch += 1
        self._arm_delay_timer()

    def _arm_delay_timer(self) -> None:
        fire = self.delayed.next_fire(self._last_tick)
        timer = self._delay_timer
        if fire is None:
            return
        if timer is not None:
            if timer.when() <= fire:
                return
            timer.cancel()
        self._delay_timer = self.loop.call_at(fire, self._on_delay_timer)

    def _on_delay_timer(self) -> None:
        self._delay_timer = None
        if self._closed:
            return
        self._last_tick = self.loop.time()
        self._release_due()
        self.wake()

    def close(self) -> None:
        super().close()
        if self._delay_timer is not None:
            self._delay_timer.cancel()
            self._delay_timer = None
