"""The embedded broker's storage: entries, per-partition logs and subscription cursors.

An *entry* is what Pulsar stores and dispatches: one message, or one batch of messages produced
together. Its sticky key (the Key_Shared routing key) comes from its first message. A *cursor*
records what a subscription has acknowledged: everything up to ``mark_delete`` plus individually
acknowledged entries (and batch indexes) above it, and where normal reads continue.

Imports only :mod:`keylane.hashing`, :mod:`keylane.brokers.base` and this package's ``objects``
and ``ranges``; no dispatching logic.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from keylane.brokers.base import MessageId
from keylane.brokers.memory.objects import new_message_id
from keylane.brokers.memory.ranges import RangeSet
from keylane.hashing import slot_consistent, slot_range

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import Subscription

__all__ = [
    "NONE_KEY",
    "Cursor",
    "Entry",
    "InputMessage",
    "StoredMessage",
    "TopicLog",
    "partition_index",
]

#: Sticky key of a message without ordering key, partition key or producer sequence id.
NONE_KEY = "NONE_KEY"

#: A stored message: (data, key, ordering_key, properties, message_id, publish_time, event_time).
StoredMessage = tuple[
    bytes, str | None, str | None, Mapping[str, str], MessageId, float, float | None
]

#: A message handed to :meth:`TopicLog.append`:
#: (data, key, ordering_key, properties, publish_time, event_time).
InputMessage = tuple[bytes, str | None, str | None, Mapping[str, str], float, float | None]

#: Memo of the slot functions by sticky key (cleared when it reaches the size below).
_CONSISTENT_SLOTS: dict[str, int] = {}
_RANGE_SLOTS: dict[str, int] = {}
_SLOT_CACHE_SIZE = 1 << 16

#: Entries every subscription has read before the tail is trimmed (checked every 4096 appends).
_TRIM_CHUNK = 4096


def partition_index(topic: str) -> int:
    """Partition number parsed from ``<name>-partition-<n>``, or -1 (Pulsar ``TopicName``)."""
    head, sep, tail = topic.rpartition("-partition-")
    if sep and head and tail.isdigit():
        return int(tail)
    return -1


class Entry:
    """One stored entry: a single message or a batch; dispatch, replay and acks are per entry."""

    __slots__ = ("deliver_at", "entry_id", "messages", "size", "slot_c", "slot_r", "sticky_key")

    def __init__(
        self,
        entry_id: int,
        messages: tuple[StoredMessage, ...],
        sticky_key: str,
        deliver_at: float | None,
    ) -> None:
        self.entry_id = entry_id
        self.messages = messages
        self.size = len(messages)
        self.sticky_key = sticky_key
        #: Loop time before which Shared/Key_Shared must not deliver it, or None.
        self.deliver_at = deliver_at
        #: Cached Key_Shared slots (0 = not computed yet; a real slot is never 0).
        self.slot_c = 0
        self.slot_r = 0

    def consistent_slot(self) -> int:
        """Slot for the consistent-hashing selector (cached per entry and per key)."""
        slot = self.slot_c
        if not slot:
            key = self.sticky_key
            slot = _CONSISTENT_SLOTS.get(key, 0)
            if not slot:
                if len(_CONSISTENT_SLOTS) >= _SLOT_CACHE_SIZE:
                    _CONSISTENT_SLOTS.clear()
                slot = _CONSISTENT_SLOTS[key] = slot_consistent(key)
            self.slot_c = slot
        return slot

    def range_slot(self) -> int:
        """Slot for the hash-range selectors (cached per entry and per key)."""
        slot = self.slot_r
        if not slot:
            key = self.sticky_key
            slot = _RANGE_SLOTS.get(key, 0)
            if not slot:
                if len(_RANGE_SLOTS) >= _SLOT_CACHE_SIZE:
                    _RANGE_SLOTS.clear()
                slot = _RANGE_SLOTS[key] = slot_range(key)
            self.slot_r = slot
        return slot


class Cursor:
    """A subscription's acknowledgement state on one partition (Pulsar ``ManagedCursor``).

    Attributes:
        mark_delete: every entry id <= this is acknowledged.
        deleted: fully acknowledged entry ids above ``mark_delete``, as ranges (Pulsar
            ``individuallyDeletedMessages``): one hole costs one range, whatever follows it.
        batch_acks: acknowledged batch indexes of partially acknowledged batch entries; only
            filled when the broker acknowledges at batch-index level.
        read_position: next entry id a normal read returns (acked entries are skipped).
    """

    __slots__ = ("batch_acks", "deleted", "mark_delete", "read_position")

    def __init__(self, mark_delete: int) -> None:
        self.mark_delete = mark_delete
        self.deleted = RangeSet()
        self.batch_acks: dict[int, set[int]] = {}
        self.read_position = mark_delete + 1

    def is_acked(self, entry_id: int) -> bool:
        """Whether the whole entry is acknowledged."""
        return entry_id <= self.mark_delete or (
            bool(self.deleted.starts) and entry_id in self.deleted
        )

    def rewind(self) -> None:
        """Restart normal reads at the first entry not acknowledged (``cursor.rewind()``)."""
        self.read_position = self.mark_delete + 1

    def unacked_indexes(self, entry: Entry) -> list[int] | None:
        """Batch indexes of ``entry`` still to deliver; None means all of them."""
        acked = self.batch_acks.get(entry.entry_id)
        if acked is None:
            return None
        return [i for i in range(entry.size) if i not in acked]

    def unacked_count(self, entry: Entry) -> int:
        """Messages of ``entry`` not acknowledged yet."""
        if self.is_acked(entry.entry_id):
            return 0
        acked = self.batch_acks.get(entry.entry_id)
        return entry.size - (len(acked) if acked else 0)

    def ack(self, entry: Entry, batch_index: int) -> int:
        """Acknowledge one message (its batch index, for a batch entry).

        Returns:
            0 if it was already acknowledged, 1 if newly acknowledged, 2 if that completed the
            entry (so the entry is now acknowledged as a whole).
        """
        entry_id = entry.entry_id
        if self.is_acked(entry_id):
            return 0
        if entry.size > 1:
            acked = self.batch_acks.get(entry_id)
            if acked is None:
                acked = self.batch_acks[entry_id] = set()
            elif batch_index in acked:
                return 0
            acked.add(batch_index)
            if len(acked) < entry.size:
                return 1
            del self.batch_acks[entry_id]
        self.delete(entry_id)
        return 2

    def ack_entry(self, entry_id: int) -> bool:
        """Acknowledge a whole entry; returns False if it already was."""
        if self.is_acked(entry_id):
            return False
        if self.batch_acks:
            self.batch_acks.pop(entry_id, None)
        self.delete(entry_id)
        return True

    def delete(self, entry_id: int) -> None:
        """Mark one entry as fully acknowledged (it must not be acknowledged yet)."""
        if entry_id == self.mark_delete + 1:
            end = self.deleted.pop_first_if_starts_at(entry_id + 1)
            self.mark_delete = entry_id if end is None else end - 1
        else:
            self.deleted.add(entry_id)

    def ack_cumulative(self, entry: Entry, batch_index: int, batch_level: bool) -> None:
        """Acknowledge every message up to and including ``(entry, batch_index)``.

        A cumulative ack that stops inside a batch acknowledges that batch's prefix only with
        ``batch_level`` (batch-index acknowledgement on); otherwise it stops at the entry before
        (Pulsar marks the previous position deleted).
        """
        entry_id = entry.entry_id
        partial = entry.size > 1 and 0 <= batch_index < entry.size - 1
        upto = entry_id - 1 if partial else entry_id
        if upto > self.mark_delete:
            self.mark_delete = upto
            self.deleted.discard_below(upto + 1)
            if self.batch_acks:
                self.batch_acks = {e: s for e, s in self.batch_acks.items() if e > upto}
            end = self.deleted.pop_first_if_starts_at(upto + 1)
            if end is not None:
                self.mark_delete = end - 1
        if partial and batch_level and not self.is_acked(entry_id):
            self.batch_acks.setdefault(entry_id, set()).update(range(batch_index + 1))


class TopicLog:
    """One topic partition (or a non-partitioned topic): its entries and subscriptions.

    Entries from ``base`` on are kept in a list (the tail every normal read walks). Below
    ``base`` only *islands* are kept: entries some subscription has not acknowledged (a parked
    or in-flight message, a replay, a delayed message). An entry every subscription has
    acknowledged is freed, so the memory behind one unacknowledged message is O(unacknowledged),
    not O(throughput) (issue 7 item 4).
    """

    __slots__ = (
        "base",
        "entries",
        "island_order",
        "islands",
        "ledger_id",
        "name",
        "partition",
        "subscriptions",
    )

    def __init__(self, name: str, partition: int, ledger_id: int) -> None:
        self.name = name
        #: Partition index, or -1 for a non-partitioned topic.
        self.partition = partition
        #: Unique per log, so a MessageId names its topic.
        self.ledger_id = ledger_id
        #: Retained tail; ``entries[i]`` has entry id ``base + i``.
        self.entries: list[Entry] = []
        self.base = 0
        #: Retained entries below ``base`` (not yet acknowledged by every subscription).
        self.islands: dict[int, Entry] = {}
        #: ``islands``' ids, ascending (rebuilt when islands are added or dropped).
        self.island_order: list[int] = []
        self.subscriptions: dict[str, Subscription] = {}

    @property
    def end(self) -> int:
        """Entry id the next appended entry gets."""
        return self.base + len(self.entries)

    @property
    def retained(self) -> int:
        """Entries held in memory (the tail and the islands)."""
        return len(self.entries) + len(self.islands)

    def get(self, entry_id: int) -> Entry | None:
        """The retained entry with this id, or None (never stored, or freed)."""
        index = entry_id - self.base
        if index >= 0:
            return self.entries[index] if index < len(self.entries) else None
        return self.islands.get(entry_id) if self.islands else None

    def islands_from(self, entry_id: int) -> list[int]:
        """Ids of the islands >= ``entry_id``, ascending (reads that start below ``base``)."""
        order = self.island_order
        return order[bisect.bisect_left(order, entry_id) :]

    def new_cursor(self, earliest: bool) -> Cursor:
        """A cursor for a new subscription: at the end, or before the first retained entry.

        From the earliest position, ids that were freed (every other subscription had
        acknowledged them) count as acknowledged: they can no longer be delivered.
        """
        if not earliest:
            return Cursor(self.end - 1)
        order = self.island_order
        cursor = Cursor((order[0] if order else self.base) - 1)
        for i, entry_id in enumerate(order):
            following = order[i + 1] if i + 1 < len(order) else self.base
            cursor.deleted.add_range(entry_id + 1, following)
        return cursor

    def append_single(
        self,
        data: bytes,
        key: str | None,
        ordering_key: str | None,
        properties: Mapping[str, str],
        publish_time: float,
        event_time: float | None,
        deliver_at: float | None = None,
        fallback_key: str = NONE_KEY,
    ) -> Entry:
        """Store one unbatched message (batch index -1) as an entry and notify subscriptions.

        Args:
            deliver_at: loop time before which Shared/Key_Shared must not deliver it.
            fallback_key: sticky key of a keyless message (Pulsar 4.x ``peekStickyKey``:
                ``"<producer name>-<sequence id>"``).
        """
        entry_id = self.base + len(self.entries)
        mid = new_message_id(self.partition, self.ledger_id, entry_id, -1)
        sticky = (
            ordering_key if ordering_key is not None else key if key is not None else fallback_key
        )
        entry = Entry(
            entry_id,
            ((data, key, ordering_key, properties, mid, publish_time, event_time),),
            sticky,
            deliver_at,
        )
        self._store(entry)
        return entry

    def append_batch(self, messages: Sequence[InputMessage], fallback_key: str = NONE_KEY) -> Entry:
        """Store ``messages`` as one batch entry (batch indexes 0..N-1); notify subscriptions.

        Each message is ``(data, key, ordering_key, properties, publish_time, event_time)``;
        the entry's sticky key is the first message's (``fallback_key`` when it has no key: the
        batch header's ``"<producer name>-<first sequence id>"``).
        """
        entry_id = self.base + len(self.entries)
        partition, ledger = self.partition, self.ledger_id
        if len(messages) == 1:
            d, k, ok, props, pt, et = messages[0]
            stored: tuple[StoredMessage, ...] = (
                (d, k, ok, props, new_message_id(partition, ledger, entry_id, 0), pt, et),
            )
        else:
            stored = tuple(
                [
                    (d, k, ok, props, new_message_id(partition, ledger, entry_id, i), pt, et)
                    for i, (d, k, ok, props, pt, et) in enumerate(messages)
                ]
            )
        _, key, ordering_key, _, _, _ = messages[0]
        sticky = (
            ordering_key if ordering_key is not None else key if key is not None else fallback_key
        )
        entry = Entry(entry_id, stored, sticky, None)
        self._store(entry)
        return entry

    def _store(self, entry: Entry) -> None:
        self.entries.append(entry)
        subscriptions = self.subscriptions
        if subscriptions:
            for sub in subscriptions.values():
                dispatcher = sub.dispatcher
                if dispatcher is not None and not dispatcher.scheduled and sub.consumers:
                    dispatcher.on_new_entries()
        if not entry.entry_id & (_TRIM_CHUNK - 1) and entry.entry_id:
            self.trim()

    def trim(self) -> None:
        """Free the entries every subscription has acknowledged (kept while there are none).

        The tail up to the slowest read position moves into ``islands`` when some subscription
        still needs it, and is dropped otherwise; islands every subscription has acknowledged
        since are dropped too.
        """
        if not self.subscriptions:
            return
        cursors = [sub.cursor for sub in self.subscriptions.values()]
        low = min(c.mark_delete for c in cursors) + 1
        islands = self.islands
        changed = False
        if islands:
            keep = {
                i: e
                for i, e in islands.items()
                if i >= low and not all(c.is_acked(i) for c in cursors)
            }
            changed = len(keep) != len(islands)
            self.islands = islands = keep
        target = min(min(c.read_position for c in cursors), self.end)
        drop = target - self.base
        if drop >= _TRIM_CHUNK:
            for entry in self.entries[:drop]:
                entry_id = entry.entry_id
                if entry_id >= low and not all(c.is_acked(entry_id) for c in cursors):
                    islands[entry_id] = entry
                    changed = True
            del self.entries[:drop]
            self.base = target
        if changed:
            self.island_order = sorted(islands)
