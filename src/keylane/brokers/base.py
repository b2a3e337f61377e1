"""The broker contract that every keylane backend implements.

Names mirror the official ``pulsar-client`` Python API wherever one exists, so a Pulsar user feels
at home; the semantics are Apache Pulsar 4.0.x's (see ``docs/backends.md``). Times are seconds as
``float`` or :class:`~datetime.timedelta`.

Delivery guarantees, per subscription type (the backends are held to them by ``tests/contract``):

* ``EXCLUSIVE``: one consumer; total order per topic partition.
* ``FAILOVER``: one active consumer per partition; order per partition, with possible duplicates
  around an active-consumer switch.
* ``SHARED``: each message to one consumer at a time; no order, no key affinity.
* ``KEY_SHARED``: each key's messages to one consumer, in order; with the 4.x "draining hashes"
  rule a key is outstanding (delivered, not acked) at no more than one consumer at a time.

This module imports no backend.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from keylane._validate import (
    MAX_INT32,
    check_bool,
    check_int,
    check_seconds,
    check_text,
    is_int,
    show,
)
from keylane.errors import InvalidArgumentError
from keylane.hashing import KEY_SHARED_RANGE_SIZE
from keylane.resource import AsyncClosable

__all__ = [
    "MAX_RECEIVE_MANY",
    "BatchingType",
    "Broker",
    "Consumer",
    "DeadLetterPolicy",
    "Duration",
    "InitialPosition",
    "KeySharedMode",
    "KeySharedPolicy",
    "Message",
    "MessageId",
    "Producer",
    "SubscriptionType",
    "check_max_messages",
    "normalize_topic",
    "to_seconds",
]


#: A duration in seconds, or a timedelta.
Duration = float | int | timedelta


def to_seconds(value: Duration, name: str) -> float:
    """Convert a duration argument to seconds (the contract's rule for every duration).

    Raises:
        InvalidArgumentError: not a number or timedelta, NaN, infinite, negative, or more than
            :data:`keylane._validate.MAX_SECONDS` (100 years).
    """
    return check_seconds(name, value, allow_timedelta=True)


#: Largest ``max_messages`` of :meth:`Consumer.receive_many` (the largest receiver queue).
MAX_RECEIVE_MANY = 1_000_000


def check_max_messages(value: object) -> int:
    """The ``max_messages`` argument of :meth:`Consumer.receive_many` (the contract's rule).

    Raises:
        InvalidArgumentError: not an int (bools are not), below 1 or above
            :data:`MAX_RECEIVE_MANY`.
    """
    return check_int("max_messages", value, 1, MAX_RECEIVE_MANY)


def normalize_topic(topic: str) -> str:
    """Return Pulsar's fully qualified name of ``topic``.

    ``"t1"`` becomes ``"persistent://public/default/t1"``; ``"tenant/ns/t1"`` becomes
    ``"persistent://tenant/ns/t1"``; a fully qualified name is returned unchanged.

    Raises:
        InvalidArgumentError: the name is empty, not a string, not UTF-8 or malformed.
    """
    if not isinstance(topic, str):
        raise InvalidArgumentError(f"topic must be a string, not {type(topic).__name__}")
    check_text("topic", topic)
    name = topic.strip()
    if not name:
        raise InvalidArgumentError("topic name must not be empty")
    if "://" in name:
        scheme, _, rest = name.partition("://")
        if scheme not in ("persistent", "non-persistent"):
            raise InvalidArgumentError(f"unknown topic domain {scheme!r} in {topic!r}")
        parts = rest.split("/")
        if len(parts) != 3 or not all(parts):
            raise InvalidArgumentError(f"malformed topic name {topic!r}")
        return name
    parts = name.split("/")
    if len(parts) == 1:
        return f"persistent://public/default/{name}"
    if len(parts) == 3 and all(parts):
        return f"persistent://{name}"
    raise InvalidArgumentError(f"malformed topic name {topic!r}")


class SubscriptionType(enum.Enum):
    """How a subscription shares messages among its consumers (Pulsar ``ConsumerType``)."""

    EXCLUSIVE = "Exclusive"
    SHARED = "Shared"
    FAILOVER = "Failover"
    KEY_SHARED = "Key_Shared"


class InitialPosition(enum.Enum):
    """Where a new subscription's cursor starts."""

    LATEST = "Latest"
    EARLIEST = "Earliest"


class KeySharedMode(enum.Enum):
    """How Key_Shared hash slots are assigned to consumers."""

    #: The broker splits the hash space among consumers (consistent hashing by default).
    AUTO_SPLIT = "AutoSplit"
    #: Each consumer declares fixed hash ranges.
    STICKY = "Sticky"


class BatchingType(enum.Enum):
    """How a batching producer groups messages into one entry."""

    #: Any messages share a batch; the batch goes where its first message's key goes.
    DEFAULT = "Default"
    #: One batch per key, so Key_Shared never routes a key with another key's batch.
    KEY_BASED = "KeyBased"


@dataclass(frozen=True, slots=True)
class KeySharedPolicy:
    """Key_Shared options (Pulsar ``ConsumerKeySharedPolicy``).

    Args:
        mode: AUTO_SPLIT (the broker assigns slots) or STICKY (``sticky_ranges`` are fixed).
        allow_out_of_order_delivery: drop the "one consumer per outstanding key" rule during
            rebalances, trading key order and exclusivity for no draining waits.
        sticky_ranges: inclusive ``(start, end)`` slot ranges within 0..65535, STICKY only.
    """

    mode: KeySharedMode = KeySharedMode.AUTO_SPLIT
    allow_out_of_order_delivery: bool = False
    sticky_ranges: Sequence[tuple[int, int]] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.mode, KeySharedMode):
            raise InvalidArgumentError(f"mode must be a KeySharedMode, not {self.mode!r}")
        check_bool("allow_out_of_order_delivery", self.allow_out_of_order_delivery)
        ranges = _sticky_ranges(self.sticky_ranges)
        object.__setattr__(self, "sticky_ranges", ranges)
        if self.mode is KeySharedMode.STICKY and not ranges:
            raise InvalidArgumentError("Ranges for KeyShared policy must not be empty.")
        if self.mode is KeySharedMode.AUTO_SPLIT and ranges:
            raise InvalidArgumentError("sticky_ranges are only allowed with KeySharedMode.STICKY")
        for start, end in ranges:
            if not 0 <= start <= end < KEY_SHARED_RANGE_SIZE:
                raise InvalidArgumentError(
                    f"invalid sticky range ({start}, {end}): need 0 <= start <= end <= 65535"
                )
        ordered = sorted(ranges)
        for (s1, e1), (s2, e2) in itertools.pairwise(ordered):
            if s2 <= e1:
                raise InvalidArgumentError(f"sticky ranges ({s1}, {e1}) and ({s2}, {e2}) overlap")


def _sticky_ranges(value: object) -> tuple[tuple[int, int], ...]:
    """``sticky_ranges`` as a tuple of ``(start, end)`` int pairs (not checked against 0..65535)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidArgumentError(
            f"sticky_ranges must be a sequence of (start, end) int pairs, not {show(value)}"
        )
    ranges = []
    for item in value:
        pair = tuple(item) if isinstance(item, tuple | list) else ()
        if len(pair) != 2 or not (is_int(pair[0]) and is_int(pair[1])):
            raise InvalidArgumentError(
                f"sticky_ranges must hold (start, end) int pairs, got {show(item)}"
            )
        ranges.append((pair[0], pair[1]))
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """Dead-letter options (Pulsar ``ConsumerDeadLetterPolicy``); Shared and Key_Shared only.

    A message is shown to the application ``max_redeliver_count + 1`` times (redelivery counts
    0..max); its next failure publishes it to the dead letter topic and acks the original.

    Args:
        max_redeliver_count: 1 to 2**31 - 1 (the client's int).
        dead_letter_topic: defaults to ``<topic>-<subscription>-DLQ`` (per partition).
        initial_subscription_name: a subscription created on the DLQ topic before the first
            dead letter is published, so none is lost.
    """

    max_redeliver_count: int
    dead_letter_topic: str | None = None
    initial_subscription_name: str | None = None

    def __post_init__(self) -> None:
        check_int("max_redeliver_count", self.max_redeliver_count, 1, MAX_INT32)
        if self.dead_letter_topic is not None:
            check_text("dead_letter_topic", self.dead_letter_topic)
            try:
                normalize_topic(self.dead_letter_topic)
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"dead_letter_topic: {exc}") from None
        if self.initial_subscription_name is not None:
            check_text("initial_subscription_name", self.initial_subscription_name)


@dataclass(frozen=True, slots=True, order=True)
class MessageId:
    """Position of a message: ``(ledger_id, entry_id, batch_index)`` within a topic partition.

    ``partition`` is -1 on a non-partitioned topic; ``batch_index`` is -1 for a message that was
    not batched. Ids order by position within one partition.
    """

    partition: int
    ledger_id: int
    entry_id: int
    batch_index: int = -1

    def __str__(self) -> str:
        return f"({self.ledger_id},{self.entry_id},{self.partition},{self.batch_index})"


@dataclass(frozen=True, slots=True)
class Message:
    """A received message.

    Attributes:
        data: the payload.
        key: the partition key (routing key; also the Key_Shared key when no ordering key).
        ordering_key: the Key_Shared key, when set; never used for partition routing.
        properties: application properties.
        message_id: the position; pass the message (or this id) back to acknowledge it.
        topic: the fully qualified topic (the partition's name on a partitioned topic).
        publish_time: publication time, seconds since the epoch.
        redelivery_count: how often the broker redelivered it (Shared and Key_Shared only).
    """

    data: bytes
    key: str | None
    ordering_key: str | None
    properties: Mapping[str, str]
    message_id: MessageId
    topic: str
    publish_time: float
    redelivery_count: int = 0
    event_time: float | None = None
    #: Backend handle used to acknowledge this exact delivery.
    handle: object = field(default=None, compare=False, repr=False)

    @property
    def sticky_key(self) -> str:
        """The message's ordering key, else its partition key, else ``"NONE_KEY"``.

        This is the key Key_Shared routes by and the key lanes serialise on. A keyless message has
        no key affinity: Pulsar 4.x routes it on Key_Shared by ``"<producer>-<sequence id>"``, so
        keyless messages spread over consumers; in lanes they share the one ``"NONE_KEY"`` lane.
        """
        if self.ordering_key is not None:
            return self.ordering_key
        if self.key is not None:
            return self.key
        return "NONE_KEY"


class Producer(AsyncClosable):
    """Publishes messages to one topic (all partitions of a partitioned topic).

    Messages of one producer with the same partition key land on the same partition, in send
    order. Keyed routing is Murmur3_32 of the UTF-8 key modulo the partition count (the Java
    client's ``Murmur3_32Hash`` scheme) on every backend.

    Two ways to publish:

    * ``await send(...)`` returns the message's id once the broker has stored it. On a batching
      producer the message's batch is closed at the end of the current event-loop iteration,
      so an awaited send never waits for ``batching_max_publish_delay`` (sends started in the
      same iteration, e.g. by ``asyncio.gather``, still share batches). It still costs one
      round trip to the broker per awaited message, so a loop that awaits each send before
      starting the next logs one warning after a long run of them (``docs/backends.md``,
      "Pipelined sends").
    * ``future = await enqueue(...)`` returns as soon as the producer has taken the message,
      with a future of its id; it waits only while the producer's window of unconfirmed
      messages is full, never for the broker. Batches follow the producer's batching rules
      (``batching_max_messages``, ``batching_max_publish_delay``, :meth:`flush`). This is the
      fast path: many messages in flight, and no event-loop wake-up per message.

    Both keep the call order: a key's messages are stored, and their futures complete, in the
    order they were sent.
    """

    @property
    @abc.abstractmethod
    def topic(self) -> str:
        """The fully qualified topic name."""

    @abc.abstractmethod
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
        """Publish one message and return its id once the broker has stored it.

        Args:
            data: the payload; must be ``bytes``.
            key: partition key (routing and Key_Shared key).
            ordering_key: Key_Shared key that does not influence routing.
            properties: string-to-string application properties.
            deliver_after: delay before delivery (Shared and Key_Shared only; other types
                deliver at once, as Pulsar does).
            deliver_at: absolute delivery time, a datetime or seconds since the epoch.
            event_time: application event time, seconds since the epoch.

        Raises:
            InvalidArgumentError: non-bytes data, a negative delay, both delay forms, bad
                properties.
            AlreadyClosedError: the producer is closed.
            BrokerError: the broker did not store the message (a subclass says why).
        """

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
        """Hand one message to the producer; return once it is queued, with a future of its id.

        Awaiting ``enqueue`` waits only while the producer's window of unconfirmed messages is
        full. The future resolves with the :class:`MessageId` once the broker has stored the
        message, or fails with the :class:`~keylane.errors.BrokerError` :meth:`send` would
        raise. Cancelling the future does not recall the message. Arguments are those of
        :meth:`send`, checked by the same rules.

        This default wraps :meth:`send` in a task (one task per message); the backends
        override it with a pipelined path that costs no event-loop wake-up per message.

        Raises:
            InvalidArgumentError: a bad argument (raised here, before anything is queued, by
                the backends; the default reports it through the future).
            AlreadyClosedError: the producer is closed.
        """
        return asyncio.ensure_future(
            self.send(
                data,
                key=key,
                ordering_key=ordering_key,
                properties=properties,
                deliver_after=deliver_after,
                deliver_at=deliver_at,
                event_time=event_time,
            )
        )

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every message sent so far is stored."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close the producer. Idempotent."""


class Consumer(AsyncClosable):
    """Receives messages of one subscription (all partitions of a partitioned topic)."""

    @property
    @abc.abstractmethod
    def topic(self) -> str:
        """The fully qualified topic name subscribed to."""

    @property
    @abc.abstractmethod
    def subscription(self) -> str:
        """The subscription name."""

    @property
    @abc.abstractmethod
    def consumer_name(self) -> str:
        """This consumer's name (unique names are recommended)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`unsubscribe` has begun.

        From then on the broker may hand this consumer's keys to other consumers, and messages
        it handed out earlier can no longer be acknowledged here: whoever runs handlers for it
        (lanes) must start no new one.
        """

    @abc.abstractmethod
    async def receive(self, timeout: Duration | None = None) -> Message:
        """Return the next message, waiting at most ``timeout`` seconds (forever if None).

        Raises:
            TimeoutError: nothing arrived in time.
            AlreadyClosedError: the consumer is closed.
        """

    async def receive_many(
        self, max_messages: int, timeout: Duration | None = None
    ) -> list[Message]:
        """Return the messages already received, at least one and at most ``max_messages``.

        Waits like :meth:`receive` (at most ``timeout`` seconds, forever if None) only while
        nothing has arrived, and never for more than the first: it hands out whatever is there,
        in receive order. The backends take everything from one wake-up of the event loop, so
        a busy consumer costs one wake-up per burst of messages rather than one per message.
        Cancelling it loses no message. Each message is acknowledged as if :meth:`receive` had
        returned it.

        This default returns one message from :meth:`receive`; the backends override it.

        Raises:
            InvalidArgumentError: ``max_messages`` is not an int from 1 to
                :data:`MAX_RECEIVE_MANY`, or a bad timeout.
            TimeoutError: nothing arrived in time.
            AlreadyClosedError: the consumer is closed.
        """
        check_max_messages(max_messages)
        return [await self.receive(timeout)]

    @abc.abstractmethod
    async def acknowledge(self, message: Message | MessageId) -> None:
        """Acknowledge one message. Allowed on every subscription type."""

    @abc.abstractmethod
    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        """Acknowledge every message up to and including this one (Exclusive and Failover only).

        Raises:
            CumulativeAckNotAllowedError: on Shared and Key_Shared; nothing is acked.
        """

    @abc.abstractmethod
    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        """Ask for redelivery after ``negative_ack_redelivery_delay``.

        Shared and Key_Shared redeliver just this message (to the key's owner on Key_Shared);
        Exclusive and Failover redeliver every unacked message from the first one.
        """

    @abc.abstractmethod
    async def redeliver_unacknowledged_messages(self) -> None:
        """Ask the broker to redeliver every message this consumer holds unacked."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Leave the subscription; unacked messages follow the subscription type's rules."""

    @abc.abstractmethod
    async def unsubscribe(self) -> None:
        """Delete the subscription (and its cursor) and close this consumer.

        Raises:
            ConsumerBusyError: other consumers are still connected.
        """


class Broker(AsyncClosable):
    """A connection to a message broker: the factory of producers and consumers.

    Use as ``async with``; closing the broker closes everything it created.
    """

    @abc.abstractmethod
    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        """Create a topic; ``partitions=0`` makes a non-partitioned one.

        Topics are also created implicitly (non-partitioned) by producers and consumers.

        Raises:
            InvalidArgumentError: bad name or negative partition count.
        """

    @abc.abstractmethod
    async def topic_partitions(self, topic: str) -> list[str]:
        """Names of the topic's partitions, or ``[topic]`` for a non-partitioned topic."""

    @abc.abstractmethod
    async def create_producer(
        self,
        topic: str,
        *,
        batching: BatchingType | None = BatchingType.KEY_BASED,
        batching_max_messages: int = 1000,
        batching_max_publish_delay: Duration = 0.01,
        producer_name: str | None = None,
    ) -> Producer:
        """Create a producer.

        Args:
            batching: ``None`` disables batching. The default, KEY_BASED, is the only batching
                that is safe for Key_Shared (keylane's choice; pulsar-client's asyncio default is
                DEFAULT batching, which mixes keys in one batch).
            batching_max_messages: messages per batch.
            batching_max_publish_delay: how long a batch may wait to fill.
            producer_name: unique producer name.
        """

    @abc.abstractmethod
    async def subscribe(
        self,
        topic: str,
        subscription: str,
        *,
        subscription_type: SubscriptionType = SubscriptionType.EXCLUSIVE,
        consumer_name: str | None = None,
        receiver_queue_size: int = 1000,
        ack_timeout: Duration | None = None,
        negative_ack_redelivery_delay: Duration = 60.0,
        dead_letter_policy: DeadLetterPolicy | None = None,
        key_shared_policy: KeySharedPolicy | None = None,
        priority_level: int = 0,
        initial_position: InitialPosition = InitialPosition.LATEST,
        batch_index_ack_enabled: bool = False,
    ) -> Consumer:
        """Subscribe a new consumer.

        Args:
            receiver_queue_size: prefetch (flow-control permits), at least 1.
            ack_timeout: redeliver messages not acked in this time; None disables it, otherwise
                at least 10 s (the C++/Python client's minimum).
            negative_ack_redelivery_delay: delay of a negative ack's redelivery, >= 0.1 s.
            priority_level: 0 is the highest priority (Shared and Failover).
            batch_index_ack_enabled: the client switch of batch-index acknowledgement
                (pulsar-client's ``batch_index_ack_enabled``). Off (the default, as in Pulsar):
                a batch entry is acknowledged once every message of it is, and any redelivery
                (nack, ack timeout, consumer close, ``redeliver_unacknowledged_messages``, the
                dead letter path) brings back the *whole* batch, acked messages included, with
                the entry's redelivery count. On, and with the broker's
                ``acknowledgmentAtBatchIndexLevelEnabled`` (``MemoryBrokerConfig.
                acknowledgment_at_batch_index_level_enabled``), acked messages of a batch are
                not delivered again. See ``docs/backends.md``.

        Raises:
            ConsumerBusyError: Exclusive subscription already has a consumer.
            SubscriptionTypeMismatchError: the subscription has connected consumers of another
                type or Key_Shared policy.
            StickyRangeConflictError: STICKY ranges overlap another consumer's.
            InvalidArgumentError: any argument out of range.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every producer and consumer, then the connection. Idempotent."""
