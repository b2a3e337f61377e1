"""Key_Shared dispatching, Pulsar 4.0.x (PIP-379): each key to one consumer, in order.

Per read batch, entries are taken in order (spec section 1.4.4): an entry whose slot is already
blocked in this batch, whose slot has no owner, whose owner has no permits, whose slot has an
older entry in the replay queue (normal reads only), or whose slot is *draining* at another
consumer goes to the replay queue and blocks its slot for the rest of the batch. Draining
(section 1.4.5): when a slot moves between connected consumers while the old owner holds
unacknowledged entries of it, the slot stays blocked for everybody else until those are
acknowledged or the old owner leaves. Normal reads stop while the replay queue holds the
look-ahead limit.

Imports the selectors, storage, config, the dispatcher base's logger and the Shared machinery only.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import TYPE_CHECKING

from keylane.brokers.base import KeySharedMode, KeySharedPolicy, SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.dispatcher import logger
from keylane.brokers.memory.multi import MultiConsumerDispatcher
from keylane.brokers.memory.range_selectors import HashRangeAutoSplitSelector, StickyRangeSelector
from keylane.brokers.memory.selectors import ConsistentHashingSelector, Selector
from keylane.brokers.memory.storage import Entry

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["DrainingHash", "KeySharedDispatcher"]


class DrainingHash:
    """A slot that moved away from ``consumer`` while it held ``ref_count`` entries of it."""

    __slots__ = ("blocked", "consumer", "ref_count")

    def __init__(self, consumer: BrokerConsumer) -> None:
        self.consumer = consumer
        self.ref_count = 0
        #: Dispatch attempts to other consumers refused because of this entry.
        self.blocked = 0


class KeySharedDispatcher(MultiConsumerDispatcher):
    """Key_Shared with the AUTO_SPLIT (consistent hashing or hash ranges) or STICKY selector."""

    sub_type = SubscriptionType.KEY_SHARED

    def __init__(
        self,
        sub: Subscription,
        loop: asyncio.AbstractEventLoop,
        config: MemoryBrokerConfig,
        policy: KeySharedPolicy,
    ) -> None:
        super().__init__(sub, loop, config)
        self.policy = policy
        self.selector: Selector[BrokerConsumer]
        if policy.mode is KeySharedMode.STICKY:
            self.selector = StickyRangeSelector()
        elif config.key_shared_use_consistent_hashing:
            self.selector = ConsistentHashingSelector(config.key_shared_replica_points)
        else:
            self.selector = HashRangeAutoSplitSelector()
        self._consistent = self.selector.uses_consistent_slots
        self._ordered = not policy.allow_out_of_order_delivery
        self.draining_required = policy.mode is KeySharedMode.AUTO_SPLIT and self._ordered
        self.has_pending_hook = self.draining_required
        #: slot -> draining entry (Pulsar ``DrainingHashesTracker``).
        self.draining: dict[int, DrainingHash] = {}
        #: Entries left out because their sticky key could not be hashed.
        self.quarantined = 0
        self._unblock_timer: asyncio.TimerHandle | None = None

    def slot(self, entry: Entry) -> int:
        """The entry's slot in this selector's hash range."""
        if self._consistent:
            return entry.slot_c or entry.consistent_slot()
        return entry.slot_r or entry.range_slot()

    def replay_slot(self, entry: Entry) -> int:
        return self.slot(entry) if self._ordered else 0

    def look_ahead_limit(self) -> int:
        """Replay-queue size at which normal reads stop (Pulsar ``getEffectiveLookAheadLimit``)."""
        cfg = self.config
        per_consumer, per_sub = (
            cfg.key_shared_look_ahead_per_consumer,
            cfg.key_shared_look_ahead_per_subscription,
        )
        if per_consumer <= 0:
            limit = per_sub
        else:
            limit = per_consumer * len(self.consumers)
            if 0 < per_sub < limit:
                limit = per_sub
        if limit <= 0:
            by_sub = cfg.max_unacked_per_subscription or 2**31 - 1
            by_consumers = len(self.consumers) * cfg.max_unacked_per_consumer or 2**31 - 1
            limit = min(by_sub, by_consumers)
        return limit

    # ------------------------------------------------------------------ consumers

    def check_add(self, consumer: BrokerConsumer) -> None:
        self.selector.validate(consumer, consumer.sticky_ranges)

    def add_consumer(self, consumer: BrokerConsumer) -> None:
        lost = self.selector.add(consumer, consumer.sticky_ranges)
        super().add_consumer(consumer)
        if self.draining_required:
            self._register_draining(consumer, lost)

    def remove_consumer(self, consumer: BrokerConsumer) -> None:
        # Out of the selector first, so nothing is dispatched to it any more.
        lost = self.selector.remove(consumer)
        super().remove_consumer(consumer)
        if self.draining_required:
            self._register_draining(consumer, lost)
            for slot in [s for s, d in self.draining.items() if d.consumer is consumer]:
                del self.draining[slot]
            if not self.consumers:
                self.draining.clear()

    def _register_draining(
        self, skip: BrokerConsumer, lost: dict[BrokerConsumer, list[tuple[int, int]]]
    ) -> None:
        log = self.sub.log
        for consumer, ranges in lost.items():
            if consumer is skip or not consumer.pending:
                continue
            starts = [r[0] for r in ranges]
            for entry_id in consumer.pending:
                entry = log.get(entry_id)
                if entry is None:
                    continue
                slot = self.slot(entry)
                i = bisect.bisect_right(starts, slot) - 1
                if i >= 0 and slot <= ranges[i][1]:
                    draining = self.draining.get(slot)
                    if draining is None:
                        draining = self.draining[slot] = DrainingHash(consumer)
                    if draining.consumer is consumer:
                        draining.ref_count += 1

    def pending_removed(self, consumer: BrokerConsumer, entry: Entry) -> None:
        draining = self.draining
        if not draining:
            return
        slot = self.slot(entry)
        entry_d = draining.get(slot)
        if entry_d is None or entry_d.consumer is not consumer:
            return
        entry_d.ref_count -= 1
        if entry_d.ref_count <= 0:
            del draining[slot]
            if entry_d.blocked:
                self._schedule_unblock()

    def _schedule_unblock(self) -> None:
        if self._unblock_timer is None and not self._closed:
            self._unblock_timer = self.loop.call_later(
                self.config.key_shared_unblocking_interval, self._on_unblock
            )

    def _on_unblock(self) -> None:
        self._unblock_timer = None
        self.wake()

    # ------------------------------------------------------------------ dispatch

    def read_limit(self) -> int:
        look_ahead = self.look_ahead_limit()
        queued = len(self.replay)
        if queued >= look_ahead:
            return 0
        total = self.total_available()
        if total <= 0:
            return 0
        return min(self.config.dispatcher_max_read_batch_size, total, max(look_ahead - queued, 1))

    def replay_read(self) -> int:
        """Dispatch replayable entries in position order (Pulsar ``ReplayPositionFilter``)."""
        if self.total_available() <= 0:
            return 0
        log, cursor, replay = self.sub.log, self.sub.cursor, self.replay
        limit = self.config.dispatcher_max_read_batch_size
        entries: list[Entry] = []
        for entry_id in replay.ordered():
            entry = log.get(entry_id)
            if entry is None or cursor.is_acked(entry_id):
                replay.remove(entry_id)
                continue
            entries.append(entry)
        if not entries:
            return 0
        return self.dispatch(entries, normal=False, limit=limit)

    def dispatch(self, entries: list[Entry], normal: bool, limit: int = 0) -> int:
        """Filter and group entries by consumer (``filterAndGroupEntriesForDispatching``).

        ``limit`` (replay reads) stops after that many dispatchable entries; the rest stay queued.
        """
        select = self.selector.select
        consistent = self._consistent
        replay = self.replay
        check_replay = normal and bool(replay)
        draining = self.draining if self.draining_required else None
        cursor = self.sub.cursor
        unacked_count = cursor.unacked_count
        batch_acks = cursor.batch_acks
        groups: dict[BrokerConsumer, list[Entry]] = {}
        permits: dict[BrokerConsumer, int] = {}
        blocked: set[int] = set()
        dispatched = 0
        for entry in entries:
            if limit and dispatched >= limit:
                break
            try:
                if consistent:
                    slot = entry.slot_c or entry.consistent_slot()
                else:
                    slot = entry.slot_r or entry.range_slot()
            except Exception:
                self._quarantine(entry)
                continue
            consumer = None
            if slot not in blocked:
                consumer = select(slot)
                if consumer is not None:
                    left = permits.get(consumer)
                    if left is None:
                        left = self.available(consumer)
                    if (
                        left > 0
                        and not (check_replay and replay.has_slot(slot))
                        and not (draining and self._draining_blocks(consumer, slot))
                    ):
                        permits[consumer] = left - (
                            unacked_count(entry) if batch_acks else entry.size
                        )
                        group = groups.get(consumer)
                        if group is None:
                            groups[consumer] = [entry]
                        else:
                            group.append(entry)
                        dispatched += 1
                        continue
                    permits[consumer] = left
            blocked.add(slot)
            if normal:
                replay.add(entry.entry_id, slot if self._ordered else 0)
        for consumer, group in groups.items():
            self.deliver(consumer, group)
        return dispatched

    def _quarantine(self, entry: Entry) -> None:
        """``entry``'s sticky key cannot be hashed: log it and leave it out of dispatching.

        It stays unacknowledged in the backlog (it is read again after a rewind, and logged
        again); every other entry goes on flowing.
        """
        self.replay.remove(entry.entry_id)
        self.quarantined += 1
        logger.exception(
            "memory broker: entry %d on %s / %s has a sticky key that cannot be hashed (%r); "
            "it is not dispatched and stays unacknowledged",
            entry.entry_id,
            self.sub.log.name,
            self.sub.name,
            entry.sticky_key,
        )

    def _draining_blocks(self, consumer: BrokerConsumer, slot: int) -> bool:
        entry = self.draining.get(slot)
        if entry is None or entry.consumer is consumer:
            return False
        entry.blocked += 1
        return True

    def close(self) -> None:
        super().close()
        if self._unblock_timer is not None:
            self._unblock_timer.cancel()
            self._unblock_timer = None
