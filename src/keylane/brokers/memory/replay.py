"""Replay queue and delayed-delivery tracker of the multi-consumer dispatchers.

:class:`ReplayQueue` is Pulsar's ``MessageRedeliveryController``: entries to dispatch again, in
position order, each with the Key_Shared slot that blocks newer entries of the same key (0 when
the position carries no slot: delayed messages, positions of a negative ack, or out-of-order
Key_Shared). :class:`DelayedTracker` is ``InMemoryDelayedDeliveryTracker``.

Pure data structures; no event loop, no other backend.
"""

from __future__ import annotations

import heapq
import math

__all__ = ["DelayedTracker", "ReplayQueue"]


class ReplayQueue:
    """Entry ids waiting for redelivery, with their blocking slot (0 = none)."""

    __slots__ = ("_max", "_slots", "_sorted", "positions")

    def __init__(self) -> None:
        #: Queued entry id -> slot (read-only outside this class).
        self.positions: dict[int, int] = {}
        #: slot -> number of queued positions with that slot.
        self._slots: dict[int, int] = {}
        self._sorted = True
        self._max = -1

    def __len__(self) -> int:
        return len(self.positions)

    def __bool__(self) -> bool:
        return bool(self.positions)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self.positions

    def add(self, entry_id: int, slot: int = 0) -> bool:
        """Queue ``entry_id``; returns False if it was already queued."""
        if entry_id in self.positions:
            return False
        self.positions[entry_id] = slot
        if slot:
            self._slots[slot] = self._slots.get(slot, 0) + 1
        if entry_id < self._max:
            self._sorted = False
        else:
            self._max = entry_id
        return True

    def remove(self, entry_id: int) -> None:
        """Drop ``entry_id`` if queued."""
        slot = self.positions.pop(entry_id, None)
        if slot:
            count = self._slots[slot] - 1
            if count:
                self._slots[slot] = count
            else:
                del self._slots[slot]

    def has_slot(self, slot: int) -> bool:
        """Whether a queued position blocks ``slot`` (Pulsar ``containsStickyKeyHash``)."""
        return slot in self._slots

    def ordered(self) -> list[int]:
        """Queued entry ids in position order (a snapshot)."""
        if not self._sorted:
            self.positions = dict(sorted(self.positions.items()))
            self._sorted = True
        return list(self.positions)

    def clear(self) -> None:
        """Forget everything."""
        self.positions.clear()
        self._slots.clear()
        self._sorted = True
        self._max = -1


class DelayedTracker:
    """Entries whose delivery time has not come (loop time), ordered by that time.

    Non-strict mode releases an entry up to one tick early; its timer fires at the delivery time
    rounded down to the tick's power-of-two precision (Pulsar ``trimLowerBit``).
    """

    __slots__ = ("_heap", "_ids", "_precision", "strict", "tick")

    def __init__(self, tick: float, strict: bool) -> None:
        self.tick = tick
        self.strict = strict
        self._heap: list[tuple[float, int]] = []
        self._ids: set[int] = set()
        tick_ms = max(int(tick * 1000), 1)
        self._precision = 0.0 if strict else (1 << (tick_ms.bit_length() - 1)) / 1000

    def __len__(self) -> int:
        return len(self._ids)

    def __bool__(self) -> bool:
        return bool(self._ids)

    def cutoff(self, now: float) -> float:
        """Entries due at or before this time may be delivered now."""
        # The epsilon absorbs timers that fire a clock-resolution early.
        return (now if self.strict else now + self.tick) + 1e-6

    def add(self, entry_id: int, deliver_at: float, now: float) -> bool:
        """Hold ``entry_id`` back; returns False if it is due already (deliver it now)."""
        if deliver_at <= self.cutoff(now):
            return False
        if entry_id not in self._ids:
            self._ids.add(entry_id)
            heapq.heappush(self._heap, (deliver_at, entry_id))
        return True

    def pop_due(self, now: float) -> list[int]:
        """Entry ids that may be delivered now, in delivery-time order."""
        cutoff = self.cutoff(now)
        heap, due = self._heap, []
        while heap and heap[0][0] <= cutoff:
            _, entry_id = heapq.heappop(heap)
            self._ids.discard(entry_id)
            due.append(entry_id)
        return due

    def next_fire(self, last_tick: float) -> float | None:
        """When the timer should fire next, or None if nothing is held."""
        if not self._heap:
            return None
        at = self._heap[0][0]
        if self._precision:
            at = math.floor(at / self._precision) * self._precision
        return max(at, last_tick + self.tick)

    def clear(self) -> None:
        """Forget everything."""
        self._heap.clear()
        self._ids.clear()
