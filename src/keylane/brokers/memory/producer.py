"""The embedded broker's producer: validation, partition routing and batching.

Routing follows the Pulsar clients (spec section 3): a partition key goes to
``partition_for_key(key, n)`` (Murmur3); keyless messages go round robin, per message without
batching and per batch with batching. Batching follows the C++ client: DEFAULT puts any messages
in one batch (routed by its first message's key); KEY_BASED keeps one batch per key (ordering
key, else partition key); a partition's batches are flushed together when they hold
``batching_max_messages`` messages, after ``batching_max_publish_delay``, or on flush/close.
Delayed messages are never batched. ``send`` resolves when its entry is stored.

Imports storage only; no dispatching and no other backend.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from keylane.brokers.base import BatchingType, Duration, MessageId, Producer, to_seconds
from keylane.brokers.memory.storage import NONE_KEY, Entry, InputMessage, TopicLog
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from keylane.hashing import partition_for_key

__all__ = ["MemoryProducer"]

_NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})


class _Batch:
    __slots__ = ("entry", "first_sequence_id", "messages")

    def __init__(self, first_sequence_id: int) -> None:
        self.messages: list[InputMessage] = []
        self.entry: Entry | None = None
        #: Sequence id of the batch header (its first message's), for the keyless sticky key.
        self.first_sequence_id = first_sequence_id


class _Container:
    """The open batches of one partition."""

    __slots__ = ("batches", "count", "timer", "waiters")

    def __init__(self) -> None:
        self.batches: dict[str | None, _Batch] = {}
        self.count = 0
        self.timer: asyncio.TimerHandle | None = None
        self.waiters: list[asyncio.Future[None]] = []


def _check_key(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str or None, not {type(value).__name__}")


def _properties(properties: object) -> Mapping[str, str]:
    if not isinstance(properties, Mapping):
        raise InvalidArgumentError(
            f"properties must be a mapping of str to str, not {type(properties).__name__}"
        )
    if not properties:
        return _NO_PROPERTIES
    for k, v in properties.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"properties must map str to str, got {k!r}: {v!r}")
    return MappingProxyType(dict(properties))


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
        self._rr = random.randrange(self._partitions) if self._partitions else 0
        self._rr_count = 0
        self._rr_changed = -math.inf

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

    def _deliver_at(
        self, deliver_after: Duration | None, deliver_at: datetime | float | None
    ) -> float | None:
        if deliver_after is None and deliver_at is None:
            return None
        if deliver_after is not None and deliver_at is not None:
            raise InvalidArgumentError("give deliver_after or deliver_at, not both")
        if deliver_after is not None:
            return self._loop.time() + to_seconds(deliver_after, "deliver_after")
        if isinstance(deliver_at, datetime):
            epoch = deliver_at.timestamp()
        elif isinstance(deliver_at, bool) or not isinstance(deliver_at, int | float):
            raise InvalidArgumentError(
                f"deliver_at must be a datetime or seconds since the epoch, not {deliver_at!r}"
            )
        else:
            epoch = float(deliver_at)
            if not epoch >= 0:
                raise InvalidArgumentError(f"deliver_at must not be negative, got {deliver_at}")
        return self._loop.time() + (epoch - time.time())

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
        if self._closed:
            raise AlreadyClosedError(f"producer {self._name!r} is closed")
        if not isinstance(data, bytes):
            raise InvalidArgumentError(f"data must be bytes, not {type(data).__name__}")
        if key is not None and key.__class__ is not str:
            _check_key("key", key)
        if ordering_key is not None and ordering_key.__class__ is not str:
            _check_key("ordering_key", ordering_key)
        props = _NO_PROPERTIES if properties is None else _properties(properties)
        if event_time is not None and (
            isinstance(event_time, bool) or not isinstance(event_time, int | float)
        ):
            raise InvalidArgumentError(f"event_time must be seconds, not {event_time!r}")
        at = self._deliver_at(deliver_after, deliver_at)
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
                time.time(),
                event_time,
                at,
                self._fallback_key(key, ordering_key, sequence_id),
            )
            return entry.messages[0][4]
        message: InputMessage = (data, key, ordering_key, props, time.time(), event_time)
        return await self._add_to_batch(partition, message, sequence_id)

    def _fallback_key(self, key: str | None, ordering_key: str | None, sequence_id: int) -> str:
        """The keyless sticky key when the message has no key (unused otherwise)."""
        if key is None and ordering_key is None:
            return self._keyless(sequence_id)
        return NONE_KEY

    def _keyless(self, sequence_id: int) -> str:
        """Sticky key of a keyless message: Pulsar 4.x's ``"<producer name>-<sequence id>"``."""
        return f"{self._name}-{sequence_id}"

    async def _add_to_batch(
        self, partition: int, message: InputMessage, sequence_id: int
    ) -> MessageId:
        container = self._containers[partition]
        bkey = None
        if self._key_based:
            bkey = message[2] if message[2] is not None else message[1]
        batch = container.batches.get(bkey)
        if batch is None:
            batch = container.batches[bkey] = _Batch(sequence_id)
        index = len(batch.messages)
        batch.messages.append(message)
        container.count += 1
        if container.count >= self._max_messages:
            self._flush(partition)
        elif container.timer is None:
            container.timer = self._loop.call_later(self._max_delay, self._flush, partition)
        if batch.entry is None:
            waiter: asyncio.Future[None] = self._loop.create_future()
            container.waiters.append(waiter)
            await waiter
            if batch.entry is None:
                raise AlreadyClosedError(f"producer {self._name!r} closed before the send")
        return batch.entry.messages[index][4]

    def _flush(self, partition: int) -> None:
        container = self._containers[partition]
        if container.timer is not None:
            container.timer.cancel()
            container.timer = None
        if not container.count:
            return
        batches, waiters = container.batches, container.waiters
        container.batches, container.waiters, container.count = {}, [], 0
        log = self._logs[partition]
        for batch in batches.values():
            batch.entry = log.append_batch(batch.messages, self._keyless(batch.first_sequence_id))
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

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
            time.time(),
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
        for partition in range(len(self._containers)):
            self._flush(partition)
        self._closed = True
        self._on_close(self)

    async def close(self) -> None:
        if not self._closed:
            self._shutdown()
