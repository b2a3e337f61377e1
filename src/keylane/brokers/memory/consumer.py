"""The embedded broker's client-side consumer: prefetch queue, acks, nacks, timeouts, DLQ.

This models the C++ client that the Python ``pulsar-client`` wraps: a receive queue filled by the
broker within the flow permits (refilled when half the queue was consumed), an ack-timeout
tracker, a negative-ack tracker, and the client-side dead letter policy. A consumer of a
partitioned topic has one :class:`~keylane.brokers.memory.subscription.BrokerConsumer` per
partition feeding one queue.

Waiting receivers are woken once per delivered batch, not per message; ``receive`` on a
non-empty queue returns without suspending, and ``receive_many`` hands out what is queued (up
to its maximum) in one call. Imports the broker-side subscription types only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType

from keylane.brokers.base import (
    Consumer,
    DeadLetterPolicy,
    Duration,
    Message,
    MessageId,
    SubscriptionType,
    check_max_messages,
    to_seconds,
)
from keylane.brokers.memory.storage import TopicLog
from keylane.brokers.memory.subscription import BrokerConsumer
from keylane.brokers.memory.trackers import AckTimeoutTracker, NegativeAckTracker
from keylane.errors import (
    AlreadyClosedError,
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
)

__all__ = ["DeadLetterPublisher", "MemoryConsumer"]

logger = logging.getLogger("keylane.brokers.memory")

#: Publishes a dead letter: (dlq_topic, initial_subscription, data, key, ordering_key,
#: properties, event_time).
DeadLetterPublisher = Callable[
    [str, str | None, bytes, str | None, str | None, Mapping[str, str], float | None], None
]

_MULTI = (SubscriptionType.SHARED, SubscriptionType.KEY_SHARED)


class MemoryConsumer(Consumer):
    """A consumer of :class:`~keylane.brokers.memory.MemoryBroker` (created by ``subscribe``)."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        topic: str,
        subscription: str,
        name: str,
        sub_type: SubscriptionType,
        ack_timeout: float | None,
        nack_delay: float,
        dead_letter_policy: DeadLetterPolicy | None,
        publish_dead_letter: DeadLetterPublisher,
        on_close: Callable[[MemoryConsumer], None],
        batch_index_ack_enabled: bool = False,
    ) -> None:
        self._loop = loop
        self._topic = topic
        self._subscription = subscription
        self._name = name
        self._sub_type = sub_type
        self._multi = sub_type in _MULTI
        self._nack_delay = nack_delay
        self._dlq = dead_letter_policy
        self._dlq_max = dead_letter_policy.max_redeliver_count if dead_letter_policy else None
        self._publish_dead_letter = publish_dead_letter
        self._on_close = on_close
        #: (partition, entry_id) -> messages of that entry seen at the redelivery limit.
        self._possible_dlq: dict[tuple[int, int], list[Message]] = {}
        #: The client's batch-index acknowledgement switch (``batch_index_ack_enabled``).
        self._batch_index_ack = batch_index_ack_enabled
        #: (partition, entry_id) -> acked indexes of the current delivery of a batch entry
        #: (C++ ``BatchMessageAcker``): the entry is acked as a whole once all are. Dropped
        #: whenever this consumer asks for the entry again (nack, ack timeout, redeliver), so
        #: the next delivery starts with a new one.
        self._ackers: dict[tuple[int, int], set[int]] = {}
        self._parts: list[BrokerConsumer] = []
        self._by_log: dict[TopicLog, BrokerConsumer] = {}
        self._by_partition: dict[int, BrokerConsumer] = {}
        self._queue: deque[Message] = deque()
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._closed = False
        self._ack_tracker = (
            AckTimeoutTracker(loop, ack_timeout, self._redeliver) if ack_timeout else None
        )
        self._nack_tracker: NegativeAckTracker | None = None

    def _attach(self, parts: list[BrokerConsumer]) -> None:
        """Bind the broker-side consumers (one per partition); called by the broker."""
        self._parts = parts
        self._by_log = {p.sub.log: p for p in parts}
        self._by_partition = {p.partition: p for p in parts}

    def __repr__(self) -> str:
        return f"<MemoryConsumer {self._name!r} {self._topic} / {self._subscription}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def subscription(self) -> str:
        return self._subscription

    @property
    def consumer_name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscription_type(self) -> SubscriptionType:
        """The subscription type this consumer joined with."""
        return self._sub_type

    def _check_open(self) -> None:
        if self._closed:
            raise AlreadyClosedError(f"consumer {self._name!r} is closed")

    # ------------------------------------------------------------------ receiving

    def _enqueue(self, messages: list[Message]) -> None:
        """Called by the dispatcher with freshly dispatched messages."""
        if self._closed:
            return
        if self._dlq_max is not None:
            messages = self._screen_dead_letters(messages)
        self._queue.extend(messages)
        waiters = self._waiters
        wake = len(messages)
        while wake and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
                wake -= 1

    def _take(self) -> Message:
        message = self._queue.popleft()
        part: BrokerConsumer = message.handle  # type: ignore[assignment]
        part.freed += 1
        if part.freed >= part.refill:
            part.flow()
        if self._ack_tracker is not None:
            self._ack_tracker.add(message.message_id)
        return message

    async def receive(self, timeout: Duration | None = None) -> Message:
        self._check_open()
        # The timeout is checked first, as on Pulsar, even when a message is waiting.
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        if not self._queue:
            await self._wait(seconds)
        return self._take()

    async def receive_many(
        self, max_messages: int, timeout: Duration | None = None
    ) -> list[Message]:
        self._check_open()
        count = check_max_messages(max_messages)
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        queue = self._queue
        if not queue:
            await self._wait(seconds)
        take = self._take
        out = [take() for _ in range(min(count, len(queue)))]
        if queue and self._waiters:
            self._wake_one()  # another receiver waits for what this one left
        return out

    async def _wait(self, seconds: float | None) -> None:
        """Return once the queue is not empty; TimeoutError after ``seconds`` (None: never)."""
        if seconds == 0:
            raise TimeoutError("no message prefetched")
        loop = self._loop
        deadline = None if seconds is None else loop.time() + seconds
        while True:
            waiter: asyncio.Future[bool] = loop.create_future()
            self._waiters.append(waiter)
            timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
            try:
                timed_out = await waiter
            except asyncio.CancelledError:
                if self._queue and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            self._check_open()
            if self._queue:
                return
            if timed_out:
                raise TimeoutError(f"no message within {seconds} s")

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
                return

    # ------------------------------------------------------------------ acknowledging

    def _resolve(self, message: Message | MessageId) -> tuple[BrokerConsumer, MessageId]:
        if isinstance(message, Message):
            part = message.handle
            if isinstance(part, BrokerConsumer):
                if part.owner is self:
                    return part, message.message_id
                mine = self._by_log.get(part.sub.log)
                if mine is not None and part.sub.name == self._subscription:
                    return mine, message.message_id
            raise InvalidArgumentError(
                f"message {message.message_id} of {message.topic} was not received on "
                f"subscription {self._subscription!r} of {self._topic}"
            )
        if isinstance(message, MessageId):
            mine = self._by_partition.get(message.partition)
            if mine is None and len(self._parts) == 1:
                mine = self._parts[0]
            if mine is None or mine.sub.log.ledger_id != message.ledger_id:
                raise InvalidArgumentError(f"message id {message} does not belong to {self._topic}")
            return mine, message
        raise InvalidArgumentError(f"expected a Message or MessageId, not {type(message).__name__}")

    async def acknowledge(self, message: Message | MessageId) -> None:
        if self._closed:
            raise AlreadyClosedError(f"consumer {self._name!r} is closed")
        part = getattr(message, "handle", None)
        if part.__class__ is BrokerConsumer and part.owner is self:
            mid = message.message_id  # type: ignore[union-attr]
        else:
            part, mid = self._resolve(message)
        self._ack(part, mid)

    def _ack(self, part: BrokerConsumer, mid: MessageId) -> None:
        """Acknowledge one message the way the C++ client does (``prepareIndividualAck``).

        A message of a batch entry is marked in the entry's acker; the broker hears of it only
        once every message of the batch is acked (then as a whole entry), or at once as a batch
        index when this consumer has ``batch_index_ack_enabled``. The ack-timeout tracker and
        the dead-letter candidates forget the entry only when it is acked as a whole.
        """
        entry_id, index = mid.entry_id, mid.batch_index
        sub = part.sub
        if index >= 0:
            entry = sub.log.get(entry_id)
            if entry is not None:
                if index >= entry.size:
                    raise InvalidArgumentError(
                        f"batch index {index} out of range for entry {entry_id} on {sub.log.name}"
                    )
                if entry.size > 1:
                    key = (mid.partition, entry_id)
                    acker = self._ackers.get(key)
                    if acker is None:
                        acker = self._ackers[key] = set()
                    acker.add(index)
                    if len(acker) < entry.size:
                        if self._batch_index_ack:
                            sub.ack(part, entry_id, index)
                        return
                    del self._ackers[key]
        sub.ack(part, entry_id, -1)
        if self._ack_tracker is not None:
            self._ack_tracker.remove(mid)
        if self._possible_dlq:
            self._possible_dlq.pop((mid.partition, entry_id), None)

    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        self._check_open()
        if self._multi:
            raise CumulativeAckNotAllowedError(
                "Cannot use cumulative acks on a non-exclusive subscription "
                f"({self._sub_type.value})"
            )
        part, mid = self._resolve(message)
        index = mid.batch_index
        if self._ackers:
            for key in [k for k in self._ackers if k[0] == mid.partition and k[1] < mid.entry_id]:
                del self._ackers[key]
        if index >= 0:
            entry = part.sub.log.get(mid.entry_id)
            key = (mid.partition, mid.entry_id)
            if entry is None or entry.size <= 1:
                index = -1
            else:
                acker = self._ackers.setdefault(key, set())
                acker.update(range(index + 1))
                if len(acker) >= entry.size:
                    del self._ackers[key]
                    index = -1
        part.sub.ack_cumulative(mid.entry_id, index, self._batch_index_ack)
        if self._ack_tracker is not None:
            self._ack_tracker.remove_up_to(mid)

    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        self._check_open()
        _, mid = self._resolve(message)
        if self._ack_tracker is not None:
            self._ack_tracker.remove(mid)
        if self._ackers:  # the entry comes back whole, with a new acker
            self._ackers.pop((mid.partition, mid.entry_id), None)
        if self._nack_tracker is None:
            self._nack_tracker = NegativeAckTracker(self._loop, self._nack_delay, self._redeliver)
        self._nack_tracker.add(mid)

    async def redeliver_unacknowledged_messages(self) -> None:
        self._check_open()
        if self._ack_tracker is not None:
            self._ack_tracker.clear()
        self._ackers.clear()
        for part in self._parts:
            dispatcher = part.sub.dispatcher
            if dispatcher is not None and part.connected:
                dispatcher.redeliver(part, None)

    def _redeliver(self, message_ids: list[MessageId]) -> None:
        """Redeliver these messages' entries (all unacked ones on Exclusive and Failover)."""
        if self._closed:
            return
        if not self._multi:
            for part in self._parts:
                dispatcher = part.sub.dispatcher
                if dispatcher is not None and part.connected:
                    dispatcher.redeliver(part, None)
            return
        by_part: dict[BrokerConsumer, list[int]] = {}
        for mid in message_ids:
            part = self._by_partition.get(mid.partition) or self._parts[0]
            key = (mid.partition, mid.entry_id)
            if self._ackers:
                self._ackers.pop(key, None)
            dead = self._possible_dlq.pop(key, None)
            if dead is not None and self._try_dead_letter(dead):
                continue
            by_part.setdefault(part, []).append(mid.entry_id)
        for part, entry_ids in by_part.items():
            dispatcher = part.sub.dispatcher
            if dispatcher is not None and part.connected:
                dispatcher.redeliver(part, entry_ids)

    # ------------------------------------------------------------------ dead letters

    def _screen_dead_letters(self, messages: list[Message]) -> list[Message]:
        """Remember dead-letter candidates; hold back messages already past the limit.

        Like the C++ client, the candidates of a batch delivered at the limit are *all* its
        messages, those left out as already acknowledged (batch-index acks) included: if it is
        dead-lettered, the whole batch goes to the dead letter topic.
        """
        limit = self._dlq_max
        assert limit is not None
        if all(m.redelivery_count < limit for m in messages):
            return messages
        keep: list[Message] = []
        seen: set[tuple[int, int]] = set()
        dead: dict[tuple[int, int], None] = {}  # entries past the limit, in order
        for m in messages:
            if m.redelivery_count >= limit:
                key = (m.message_id.partition, m.message_id.entry_id)
                if key not in seen:  # a new delivery at the limit replaces older candidates
                    seen.add(key)
                    self._possible_dlq[key] = self._whole_batch(m)
                if m.redelivery_count > limit:
                    part: BrokerConsumer = m.handle  # type: ignore[assignment]
                    part.freed += 1  # never handed to the application
                    dead[key] = None
                    continue
            keep.append(m)
        if dead:
            candidates = [c for key in dead for c in self._possible_dlq.get(key, [])]
            self._loop.call_soon(self._dead_letter_now, candidates)
        return keep

    def _whole_batch(self, message: Message) -> list[Message]:
        """Every message of ``message``'s entry, as delivered with it (its redelivery count)."""
        part: BrokerConsumer = message.handle  # type: ignore[assignment]
        entry = part.sub.log.get(message.message_id.entry_id)
        if entry is None or message.message_id.batch_index < 0:
            return [message]
        count = message.redelivery_count
        return [
            Message(data, key, okey, props, mid, message.topic, ptime, count, etime, part)
            for data, key, okey, props, mid, ptime, etime in entry.messages
        ]

    def _dead_letter_now(self, messages: list[Message]) -> None:
        if not self._closed:
            for m in messages:
                self._possible_dlq.pop((m.message_id.partition, m.message_id.entry_id), None)
            self._try_dead_letter(messages)
            for part in self._parts:
                if part.freed >= part.refill:
                    part.flow()

    def _try_dead_letter(self, messages: list[Message]) -> bool:
        """:meth:`_dead_letter`, logging a failure instead of raising into a loop callback.

        Returns:
            False if it failed: the messages stay unacknowledged (redelivered later).
        """
        try:
            self._dead_letter(messages)
        except Exception:
            logger.exception(
                "memory broker: consumer %r could not dead-letter %d message(s) of %s; "
                "they stay unacknowledged",
                self._name,
                len(messages),
                self._topic,
            )
            return False
        return True

    def _dead_letter(self, messages: list[Message]) -> None:
        """Publish ``messages`` to the dead letter topic, then acknowledge the originals."""
        policy = self._dlq
        assert policy is not None
        for m in messages:
            topic = policy.dead_letter_topic or f"{m.topic}-{self._subscription}-DLQ"
            props = dict(m.properties)
            props.setdefault("REAL_TOPIC", m.topic)
            props.setdefault("ORIGIN_MESSAGE_ID", str(m.message_id))
            self._publish_dead_letter(
                topic,
                policy.initial_subscription_name,
                m.data,
                m.key,
                m.ordering_key,
                MappingProxyType(props),
                m.event_time,
            )
            part, mid = self._resolve(m)
            self._ack(part, mid)

    # ------------------------------------------------------------------ closing

    def _shutdown(self) -> None:
        self._closed = True
        if self._ack_tracker is not None:
            self._ack_tracker.close()
        if self._nack_tracker is not None:
            self._nack_tracker.close()
        self._queue.clear()
        self._ackers.clear()
        for part in self._parts:
            part.sub.remove(part)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
        self._on_close(self)

    async def close(self) -> None:
        if not self._closed:
            self._shutdown()

    async def unsubscribe(self) -> None:
        self._check_open()
        for part in self._parts:
            others = [c for c in part.sub.consumers if c is not part]
            if others:
                raise ConsumerBusyError(
                    f"Subscription {self._subscription!r} on {part.sub.log.name} has other "
                    f"connected consumers ({', '.join(c.name for c in others)}); "
                    "close them before unsubscribing"
                )
        self._shutdown()
        for part in self._parts:
            part.sub.delete()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)
