"""The embedded broker's producer: validation, partition routing and batching.

Routing follows the Pulsar clients (spec section 3): a partition key goes to
``partition_for_key(key, n)`` (Murmur3); keyless messages go round robin, per message without
batching and per batch with batching. Batching follows the C++ client: DEFAULT puts any messages
in one batch (routed by its first message's key); KEY_BASED keeps one batch per key (ordering
key, else partition key); a partition's batches are flushed together when they hold
``batching_max_messages`` messages, after ``batching_max_publish_delay``, or on flush/close.
Delayed messages are never batched. ``send`` resolves when its entry is stored; an awaited
``send`` closes its batch at the end of the event-loop iteration (the contract's rule, so that a
send loop never waits for the publish delay), and the awaited sends of a partition's open
batches share one future. A long run of messages sent one at a time logs one warning
(:class:`~keylane.brokers.serial_sends.SerialSendWatch`). ``enqueue`` returns a future at once:
unbatched and delayed messages are stored before it returns, batched ones resolve when their
batch is. The argument rules are :mod:`keylane.brokers.validation`'s; a send of bytes with ASCII
str keys (which always encode to UTF-8) and no properties, event time or delay (the common case)
skips them.

Imports storage and the shared argument rules only; no dispatching and no other backend.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from keylane.brokers.base import BatchingType, Duration, MessageId, Producer
from keylane.brokers.memory.storage import NONE_KEY, Entry, InputMessage, TopicLog
from keylane.brokers.serial_sends import SerialSendWatch
from keylane.brokers.validation import NO_PROPERTIES, check_send_args, delivery_time
from keylane.errors import AlreadyClosedError, BrokerError
from keylane.hashing import partition_for_key

__all__ = ["MemoryProducer"]

logger = logging.getLogger("keylane.brokers.memory")


class _Batch:
    __slots__ = ("entry", "error", "first_sequence_id", "futures", "messages")

    def __init__(self, first_sequence_id: int) -> None:
        self.messages: list[InputMessage] = []
        #: Per message: the future ``enqueue`` returned (resolved with the id when the batch is
        #: stored, or failed with BrokerError), or None for an awaited ``send``.
        self.futures: list[asyncio.Future[MessageId] | None] = []
        self.entry: Entry | None = None
        #: Why storing the batch failed (its sends raise BrokerError from it).
        self.error: Exception | None = None
        #: Sequence id of the batch header (its first message's), for the keyless sticky key.
        self.first_sequence_id = first_sequence_id


class _Container:
    """The open batches of one partition."""

    __slots__ = ("batches", "count", "flushed", "timer")

    def __init__(self) -> None:
        self.batches: dict[str | None, _Batch] = {}
        self.count = 0
        self.timer: asyncio.TimerHandle | None = None
        #: Resolved when the open batches are stored: what awaited sends wait on (one future
        #: for all of them rather than one each).
        self.flushed: asyncio.Future[None] | None = None


class MemoryProducer(Producer):
    """A producer of :class:`~keylane.brokers.memory.MemoryBroker` (see ``create_producer``)."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        topic: str,
        logs: list[TopicLog],
        partitioned: bool,
        batching: BatchingType | None,
        batching_max_messages: int,
        batching_max_publish_delay: float,
        name: str,
        on_close: Callable[[MemoryProducer], None],
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._loop = loop
        self._topic = topic
        self._logs = logs
        self._partitions = len(logs) if partitioned else 0
        self._batching = batching
        self._key_based = batching is BatchingType.KEY_BASED
        self._max_messages = batching_max_messages
        self._max_delay = batching_max_publish_delay
        self._name = name
        self._on_close = on_close
        self._containers = [_Container() for _ in logs]
        # Next sequence id per partition producer (Pulsar: per internal producer, from 0).
        self._sequence_ids = [0] * len(logs)
        self._closed = False
        # Keyless round robin (C++ RoundRobinMessageRouter): random start partition.
        self._wall_clock = wall_clock
        self._rr = (rng or random.Random()).randrange(self._partitions) if self._partitions else 0
        self._rr_count = 0
        self._rr_changed = -math.inf
        #: Batched messages not stored yet (all partitions), and taken since it was last 0.
        self._unflushed = 0
        self._spell = 0
        self._flush_soon: asyncio.Handle | None = None
        self._serial = SerialSendWatch(f"producer {name!r} on {topic}")

    def __repr__(self) -> str:
        return f"<MemoryProducer {self._name!r} {self._topic}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def producer_name(self) -> str:
        """This producer's name."""
        return self._name

    def _route(self, key: str | None) -> int:
        n = self._partitions
        if n <= 1:
            return 0
        if key is not None:
            return partition_for_key(key, n)
        if self._batching is None:
            self._rr += 1
            return (self._rr - 1) % n
        self._rr_count += 1
        now = self._loop.time()
        if self._rr_count > self._max_messages or now - self._rr_changed >= self._max_delay:
            self._rr += 1
            self._rr_count = 1
            self._rr_changed = now
        return self._rr % n

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        stored = self._publish(
            data, key, ordering_key, properties, deliver_after, deliver_at, event_time, False
        )
        if isinstance(stored, MessageId):
            return stored
        partition, batch, index = stored
        if batch.entry is None and batch.error is None:
            if self._flush_soon is None:  # close the batch at the end of this loop iteration
                self._flush_soon = self._loop.call_soon(self._flush_all)
            container = self._containers[partition]
            if container.flushed is None:
                container.flushed = self._loop.create_future()
            await container.flushed
        if batch.entry is not None:
            return batch.entry.messages[index][4]
        if batch.error is not None:
            raise BrokerError(
                f"producer {self._name!r} could not store its batch on "
                f"{self._logs[partition].name}: {batch.error!r}"
            ) from batch.error
        raise AlreadyClosedError(f"producer {self._name!r} closed before the send")

    async def enqueue(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> asyncio.Future[MessageId]:
        stored = self._publish(
            data, key, ordering_key, properties, deliver_after, deliver_at, event_time, True
        )
        if isinstance(stored, MessageId):
            future: asyncio.Future[MessageId] = self._loop.create_future()
            future.set_result(stored)
            return future
        _, batch, index = stored
        queued = batch.futures[index]
        assert queued is not None
        return queued

    def _publish(
        self,
        data: bytes,
        key: str | None,
        ordering_key: str | None,
        properties: Mapping[str, str] | None,
        deliver_after: Duration | None,
        deliver_at: datetime | float | None,
        event_time: float | None,
        with_future: bool,
    ) -> MessageId | tuple[int, _Batch, int]:
        """Check, route and store (or batch) one message: its id if stored at once, else
        ``(partition, batch, index)`` (with a future in ``batch.futures`` if ``with_future``)."""
        if self._closed:
            raise AlreadyClosedError(f"producer {self._name!r} is closed")
        # Hot path: plain bytes, ASCII-str-or-None keys and nothing else need no further checks.
        if (
            data.__class__ is bytes
            and (key is None or (key.__class__ is str and key.isascii()))
            and (ordering_key is None or (ordering_key.__class__ is str and ordering_key.isascii()))
            and properties is None
            and event_time is None
        ):
            props = NO_PROPERTIES
        else:
            props = check_send_args(data, key, ordering_key, properties, event_time)
        at = None
        if deliver_after is not None or deliver_at is not None:
            at = delivery_time(deliver_after, deliver_at, self._loop.time(), self._wall_clock())
        partition = self._route(key) if self._partitions > 1 else 0
        sequence_id = self._sequence_ids[partition]
        self._sequence_ids[partition] = sequence_id + 1
        if self._batching is None or at is not None:
            if self._batching is not None:
                self._flush(partition)  # keep send order on the partition
            entry = self._logs[partition].append_single(
                data,
                key,
                ordering_key,
                props,
                self._wall_clock(),
                event_time,
                at,
                self._fallback_key(key, ordering_key, sequence_id),
            )
            return entry.messages[0][4]
        message: InputMessage = (data, key, ordering_key, props, self._wall_clock(), event_time)
        return self._add_to_batch(partition, message, sequence_id, with_future)

    def _fallback_key(self, key: str | None, ordering_key: str | None, sequence_id: int) -> str:
        """The keyless sticky key when the message has no key (unused otherwise)."""
        if key is None and ordering_key is None:
            return self._keyless(sequence_id)
        return NONE_KEY

    def _keyless(self, sequence_id: int) -> str:
        """Sticky key of a keyless message: Pulsar 4.x's ``"<producer name>-<sequence id>"``."""
        return f"{self._name}-{sequence_id}"

    def _add_to_batch(
        self, partition: int, message: InputMessage, sequence_id: int, with_future: bool
    ) -> tuple[int, _Batch, int]:
        container = self._containers[partition]
        bkey = None
        if self._key_based:
            bkey = message[2] if message[2] is not None else message[1]
        batch = container.batches.get(bkey)
        if batch is None:
            batch = container.batches[bkey] = _Batch(sequence_id)
        index = len(batch.messages)
        batch.messages.append(message)
        batch.futures.append(self._loop.create_future() if with_future else None)
        container.count += 1
        if not self._unflushed:
            self._serial.busy(self._loop.time())
            self._spell = 0
        self._unflushed += 1
        self._spell += 1
        if container.count >= self._max_messages:
            self._flush(partition)
        elif container.timer is None:
            container.timer = self._loop.call_later(self._max_delay, self._flush, partition)
        return partition, batch, index

    def _flush_all(self) -> None:
        self._flush_soon = None
        for partition in range(len(self._containers)):
            self._flush(partition)

    def _flush(self, partition: int) -> None:
        container = self._containers[partition]
        if container.timer is not None:
            container.timer.cancel()
            container.timer = None
        if not container.count:
            return
        batches, flushed = container.batches, container.flushed
        self._unflushed -= container.count
        container.batches, container.count, container.flushed = {}, 0, None
        log = self._logs[partition]
        for batch in batches.values():
            try:
                entry = batch.entry = log.append_batch(
                    batch.messages, self._keyless(batch.first_sequence_id)
                )
            except Exception as exc:  # fail these sends, not the flush timer or other batches
                batch.error = exc
                logger.exception(
                    "memory broker: producer %r could not store a batch of %d message(s) on %s",
                    self._name,
                    len(batch.messages),
                    log.name,
                )
                for future in batch.futures:
                    if future is not None and not future.done():
                        error = BrokerError(
                            f"producer {self._name!r} could not store its batch on "
                            f"{log.name}: {exc!r}"
                        )
                        error.__cause__ = exc
                        future.set_exception(error)
                continue
            for future, stored in zip(batch.futures, entry.messages, strict=True):
                if future is not None and not future.done():
                    future.set_result(stored[4])
        if flushed is not None and not flushed.done():
            flushed.set_result(None)
        if not self._unflushed:
            self._serial.idle(self._loop.time(), self._spell)
            if self._flush_soon is not None:
                # Nothing left for it; a send after this flush asks again, so its flush runs
                # after the tasks this flush woke, which may fill the next batch first.
                self._flush_soon.cancel()
                self._flush_soon = None

    def _publish_now(
        self,
        data: bytes,
        key: str | None,
        ordering_key: str | None,
        properties: Mapping[str, str],
        event_time: float | None,
    ) -> MessageId:
        """Store one unbatched message at once (dead letters)."""
        partition = self._route(key)
        sequence_id = self._sequence_ids[partition]
        self._sequence_ids[partition] = sequence_id + 1
        entry = self._logs[partition].append_single(
            data,
            key,
            ordering_key,
            properties,
            self._wall_clock(),
            event_time,
            None,
            self._fallback_key(key, ordering_key, sequence_id),
        )
        return entry.messages[0][4]

    async def flush(self) -> None:
        if self._closed:
            raise AlreadyClosedError(f"producer {self._name!r} is closed")
        for partition in range(len(self._containers)):
            self._flush(partition)

    def _shutdown(self) -> None:
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        for partition in range(len(self._containers)):
            self._flush(partition)
        self._closed = True
        self._on_close(self)

    async def close(self) -> None:
        if not self._closed:
            self._shutdown()
