"""The embedded broker's storage: entries, per-partition logs and subscription cursors.

An *entry* is what Pulsar stores and dispatches: one message, or one batch of messages produced
together. Its sticky key (the Key_Shared routing key) comes from its first message. A *cursor*
records what a subscription has acknowledged: everything up to ``mark_delete`` plus individually
acknowledged entries (and batch indexes) above it, and where normal reads continue.

Imports only :mod:`keylane.hashing`, :mod:`keylane.brokers.base` and this package's ``objects``; no
dispatching logic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from keylane.brokers.base import MessageId
from keylane.brokers.memory.objects import new_message_id
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

#: Entries kept below every cursor's mark-delete position before the log is trimmed.
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
        deleted: fully acknowledged entry ids above ``mark_delete``.
        batch_acks: acknowledged batch indexes of partially acknowledged batch entries.
        read_position: next entry id a normal read returns (acked entries are skipped).
    """

    __slots__ = ("batch_acks", "deleted", "mark_delete", "read_position")

    def __init__(self, mark_delete: int) -> None:
        self.mark_delete = mark_delete
        self.deleted: set[int] = set()
        self.batch_acks: dict[int, set[int]] = {}
        self.read_position = mark_delete + 1

    def is_acked(self, entry_id: int) -> bool:
        """Whether the whole entry is acknowledged."""
        return entry_id <= self.mark_delete or entry_id in self.deleted

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
        """Acknowledge one message.

        Returns:
            0 if it was already acknowledged, 1 if newly acknowledged, 2 if that completed the
            entry (so the entry is now acknowledged as a whole).
        """
        entry_id = entry.entry_id
        if entry_id <= self.mark_delete or entry_id in self.deleted:
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
        if entry_id <= self.mark_delete or entry_id in self.deleted:
            return False
        self.batch_acks.pop(entry_id, None)
        self.delete(entry_id)
        return True

    def delete(self, entry_id: int) -> None:
        """Mark one entry as fully acknowledged (it must not be acknowledged yet)."""
        if entry_id == self.mark_delete + 1:
            md = entry_id
            deleted = self.deleted
            while md + 1 in deleted:
                md += 1
                deleted.remove(md)
            self.mark_delete = md
        else:
            self.deleted.add(entry_id)

    def ack_cumulative(self, entry: Entry, batch_index: int) -> list[int]:
        """Acknowledge every message up to and including ``(entry, batch_index)``.

        Returns:
            Entry ids that became fully acknowledged by this call.
        """
        entry_id = entry.entry_id
        newly: list[int] = []
        if entry_id - 1 > self.mark_delete:
            newly.extend(e for e in range(self.mark_delete + 1, entry_id) if e not in self.deleted)
            self.mark_delete = entry_id - 1
            md = self.mark_delete
            self.deleted = {e for e in self.deleted if e > md}
            self.batch_acks = {e: s for e, s in self.batch_acks.items() if e > md}
        if entry.size > 1 and 0 <= batch_index < entry.size - 1:
            if not self.is_acked(entry_id):
                acked = self.batch_acks.setdefault(entry_id, set())
                acked.update(range(batch_index + 1))
        elif self.ack_entry(entry_id):
            newly.append(entry_id)
        if self.mark_delete + 1 in self.deleted:
            self.deleted.discard(self.mark_delete + 1)
            self.delete(self.mark_delete + 1)
        return newly


class TopicLog:
    """One topic partition (or a non-partitioned topic): its entries and subscriptions."""

    __slots__ = ("base", "entries", "ledger_id", "name", "partition", "subscriptions")

    def __init__(self, name: str, partition: int, ledger_id: int) -> None:
        self.name = name
        #: Partition index, or -1 for a non-partitioned topic.
        self.partition = partition
        #: Unique per log, so a MessageId names its topic.
        self.ledger_id = ledger_id
        #: Retained entries; ``entries[i]`` has entry id ``base + i``.
        self.entries: list[Entry] = []
        self.base = 0
        self.subscriptions: dict[str, Subscription] = {}

    @property
    def end(self) -> int:
        """Entry id the next appended entry gets."""
        return self.base + len(self.entries)

    def get(self, entry_id: int) -> Entry | None:
        """The retained entry with this id, or None."""
        index = entry_id - self.base
        if 0 <= index < len(self.entries):
            return self.entries[index]
        return None

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
        """Drop entries every subscription has acknowledged (kept while there are none)."""
        if not self.subscriptions:
            return
        low = min(sub.cursor.mark_delete for sub in self.subscriptions.values()) + 1
        drop = low - self.base
        if drop >= _TRIM_CHUNK:
            del self.entries[:drop]
            self.base = low
