"""Client-side redelivery timers of the embedded broker's consumers (C++ client semantics).

:class:`AckTimeoutTracker` is ``UnAckedMessageTrackerEnabled``: received messages sit in
``ceil(timeout / tick) + 1`` time buckets; every tick the oldest bucket times out, so a message
is redelivered between ``timeout`` and ``timeout + tick`` after it was received. Like the C++
client it tracks *entries* (the batch index is dropped): a batch is tracked until it is acked as
a whole or negatively acknowledged.
:class:`NegativeAckTracker` is ``NegativeAcksTracker``: a negatively acknowledged message is
redelivered once its delay has passed (whole entries: the batch index is dropped).

Both run on the event loop's clock (``loop.call_later``), so virtual time (looptime) applies.
Imports nothing from the broker side.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import deque
from collections.abc import Callable

from keylane.brokers.base import MessageId

__all__ = ["ACK_TIMEOUT_TICK", "AckTimeoutTracker", "NegativeAckTracker"]


def _entry_of(message_id: MessageId) -> MessageId:
    """The id of ``message_id``'s entry (batch index -1, C++ ``discardBatch``)."""
    return MessageId(message_id.partition, message_id.ledger_id, message_id.entry_id)


#: Tick of the ack-timeout tracker (C++ ``tickDurationInMs`` default, 1 s).
ACK_TIMEOUT_TICK = 1.0


class AckTimeoutTracker:
    """Redelivers messages not acknowledged within ``timeout`` seconds of their receipt."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        on_timeout: Callable[[list[MessageId]], None],
        tick: float = ACK_TIMEOUT_TICK,
    ) -> None:
        self._loop = loop
        self._tick = tick
        self._on_timeout = on_timeout
        buckets = math.ceil(timeout / tick) + 1
        self._buckets: deque[set[MessageId]] = deque(set() for _ in range(buckets))
        self._where: dict[MessageId, set[MessageId]] = {}
        self._timer: asyncio.TimerHandle | None = loop.call_later(tick, self._on_tick)

    def __len__(self) -> int:
        return len(self._where)

    def add(self, message_id: MessageId) -> None:
        """Start the clock for a message the application just received (its entry)."""
        if message_id.batch_index >= 0:
            message_id = _entry_of(message_id)
        if message_id not in self._where:
            bucket = self._buckets[-1]
            bucket.add(message_id)
            self._where[message_id] = bucket

    def remove(self, message_id: MessageId) -> None:
        """The message's entry was acknowledged (or a message of it negatively acknowledged)."""
        if message_id.batch_index >= 0:
            message_id = _entry_of(message_id)
        bucket = self._where.pop(message_id, None)
        if bucket is not None:
            bucket.discard(message_id)

    def remove_up_to(self, message_id: MessageId) -> None:
        """A cumulative acknowledgement of ``message_id`` (same partition, up to it)."""
        partition = message_id.partition
        for mid in [m for m in self._where if m.partition == partition and m <= message_id]:
            self.remove(mid)

    def clear(self) -> None:
        """Forget every tracked message (``redeliver_unacknowledged_messages``)."""
        for bucket in self._buckets:
            bucket.clear()
        self._where.clear()

    def _on_tick(self) -> None:
        expired = self._buckets.popleft()
        self._buckets.append(set())
        self._timer = self._loop.call_later(self._tick, self._on_tick)
        if expired:
            for mid in expired:
                self._where.pop(mid, None)
            self._on_timeout(sorted(expired))

    def close(self) -> None:
        """Stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.clear()


class NegativeAckTracker:
    """Redelivers negatively acknowledged messages after ``delay`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        delay: float,
        on_due: Callable[[list[MessageId]], None],
    ) -> None:
        self._loop = loop
        self._delay = delay
        self._on_due = on_due
        self._heap: list[tuple[float, MessageId]] = []
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, message_id: MessageId) -> None:
        """Schedule the redelivery of ``message_id``'s entry."""
        due = self._loop.time() + self._delay
        entry_id = _entry_of(message_id)
        heapq.heappush(self._heap, (due, entry_id))
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time() + 1e-6
        due: dict[MessageId, None] = {}  # insertion-ordered set: each id once, in due order
        while self._heap and self._heap[0][0] <= now:
            due[heapq.heappop(self._heap)[1]] = None
        if self._heap:
            self._timer = self._loop.call_at(self._heap[0][0], self._on_timer)
        if due:
            self._on_due(list(due))

    def close(self) -> None:
        """Stop the timer and forget pending redeliveries."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
