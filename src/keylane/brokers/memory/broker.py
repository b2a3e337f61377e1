"""``MemoryBroker``: the embedded in-process broker with Pulsar 4.0.x consumer semantics.

It owns the topics (partitioned or not), creates producers and consumers, and enforces the
subscribe-time rules (argument ranges from :mod:`keylane.brokers.validation`, subscription type
binding, Exclusive busy, STICKY range conflicts) atomically: a rejected subscribe changes nothing.
All work happens on the event loop that first uses the broker; time is that loop's clock, so
tests can run it on virtual time.

Imports the other modules of this package and the shared argument rules; no other backend.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from keylane._validate import is_int
from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedPolicy,
    Producer,
    SubscriptionType,
    normalize_topic,
)
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.consumer import MemoryConsumer
from keylane.brokers.memory.key_shared import KeySharedDispatcher
from keylane.brokers.memory.producer import MemoryProducer
from keylane.brokers.memory.storage import TopicLog, partition_index
from keylane.brokers.memory.subscription import BrokerConsumer, Subscription
from keylane.brokers.validation import (
    check_partitions,
    check_producer_args,
    check_subscribe_args,
)
from keylane.errors import AlreadyClosedError, BrokerError, InvalidArgumentError

__all__ = ["MemoryBroker"]

#: C++ ``maxTotalReceiverQueueSizeAcrossPartitions`` default.
_MAX_TOTAL_RECEIVER_QUEUE = 50000


class MemoryBroker(Broker):
    """An in-process broker with Apache Pulsar 4.0.x consumer-side semantics.

    Example:
        >>> async with MemoryBroker() as broker:  # doctest: +SKIP
        ...     producer = await broker.create_producer("orders")
        ...     consumer = await broker.subscribe("orders", "svc",
        ...                                       subscription_type=SubscriptionType.KEY_SHARED)

    Args:
        config: broker knobs (Pulsar defaults when omitted).
        wall_clock: epoch seconds for publish times and ``deliver_at`` (``time.time`` by
            default); inject one to make a run repeat exactly. Delays and timeouts use the
            event loop's clock.
        seed: seeds the broker's only random choice (a keyless round-robin producer's first
            partition), so that close and redelivery order repeat run to run; random if None.
    """

    def __init__(
        self,
        config: MemoryBrokerConfig | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        if config is not None and not isinstance(config, MemoryBrokerConfig):
            raise InvalidArgumentError(f"config must be a MemoryBrokerConfig, not {config!r}")
        if not callable(wall_clock):
            raise InvalidArgumentError(f"wall_clock must be callable, not {wall_clock!r}")
        if seed is not None and not is_int(seed):
            raise InvalidArgumentError(f"seed must be an int or None, not {seed!r}")
        self.config = config or MemoryBrokerConfig()
        self._wall_clock = wall_clock
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logs: dict[str, TopicLog] = {}
        self._partitioned: dict[str, int] = {}
        self._ledger_ids = itertools.count(1)
        self._names = itertools.count(1)
        # Insertion-ordered (dicts, not sets): closing and redelivery happen in creation order.
        self._producers: dict[MemoryProducer, None] = {}
        self._consumers: dict[MemoryConsumer, None] = {}
        self._dlq_producers: dict[str, MemoryProducer] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryBroker topics={len(self._logs)} closed={self._closed}>"

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise AlreadyClosedError("the broker is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise BrokerError("this MemoryBroker is bound to another event loop")
        return loop

    # ------------------------------------------------------------------ topics

    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        self._bind()
        full = normalize_topic(topic)
        check_partitions(partitions)
        existing = self._partitioned.get(full)
        if existing is not None:
            if existing != partitions:
                raise InvalidArgumentError(
                    f"topic {full} already exists with {existing} partitions"
                )
            return
        if full in self._logs:
            if partitions:
                raise InvalidArgumentError(f"topic {full} already exists, not partitioned")
            return
        if partitions == 0:
            self._new_log(full)
            return
        if partition_index(full) >= 0:
            raise InvalidArgumentError(
                f"a partitioned topic name must not contain '-partition-': {full}"
            )
        self._partitioned[full] = partitions
        for i in range(partitions):
            self._new_log(f"{full}-partition-{i}")

    async def topic_partitions(self, topic: str) -> list[str]:
        self._bind()
        full = normalize_topic(topic)
        n = self._partitioned.get(full)
        if n is None:
            return [full]
        return [f"{full}-partition-{i}" for i in range(n)]

    def _new_log(self, name: str) -> TopicLog:
        log = TopicLog(name, partition_index(name), next(self._ledger_ids))
        self._logs[name] = log
        return log

    def _resolve(self, topic: str) -> tuple[str, list[TopicLog], bool]:
        """Fully qualified name, logs (one per partition) and whether it is partitioned."""
        full = normalize_topic(topic)
        n = self._partitioned.get(full)
        if n is not None:
            return full, [self._logs[f"{full}-partition-{i}"] for i in range(n)], True
        log = self._logs.get(full)
        if log is None:
            log = self._new_log(full)
        return full, [log], False

    # ------------------------------------------------------------------ producers

    async def create_producer(
        self,
        topic: str,
        *,
        batching: BatchingType | None = BatchingType.KEY_BASED,
        batching_max_messages: int = 1000,
        batching_max_publish_delay: Duration = 0.01,
        producer_name: str | None = None,
    ) -> Producer:
        loop = self._bind()
        delay = check_producer_args(
            batching, batching_max_messages, batching_max_publish_delay, producer_name
        )
        full, logs, partitioned = self._resolve(topic)
        producer = MemoryProducer(
            loop=loop,
            topic=full,
            logs=logs,
            partitioned=partitioned,
            batching=batching,
            batching_max_messages=batching_max_messages,
            batching_max_publish_delay=delay,
            name=producer_name or f"memory-producer-{next(self._names)}",
            on_close=lambda p: self._producers.pop(p, None),
            wall_clock=self._wall_clock,
            rng=self._rng,
        )
        self._producers[producer] = None
        return producer

    def _publish_dead_letter(
        self,
        topic: str,
        initial_subscription: str | None,
        data: bytes,
        key: str | None,
        ordering_key: str | None,
        properties: Mapping[str, str],
        event_time: float | None,
    ) -> None:
        producer = self._dlq_producers.get(topic)
        if producer is None:
            loop = self._loop
            assert loop is not None
            full, logs, partitioned = self._resolve(topic)
            if initial_subscription:
                for log in logs:
                    self._subscription(log, initial_subscription, InitialPosition.EARLIEST, loop)
            producer = MemoryProducer(
                loop=loop,
                topic=full,
                logs=logs,
                partitioned=partitioned,
                batching=None,
                batching_max_messages=1,
                batching_max_publish_delay=0.0,
                name=f"memory-dlq-producer-{next(self._names)}",
                on_close=lambda p: None,
                wall_clock=self._wall_clock,
                rng=self._rng,
            )
            self._dlq_producers[topic] = producer
        producer._publish_now(data, key, ordering_key, properties, event_time)

    # ------------------------------------------------------------------ consumers

    def _subscription(
        self,
        log: TopicLog,
        name: str,
        initial_position: InitialPosition,
        loop: asyncio.AbstractEventLoop,
    ) -> Subscription:
        sub = log.subscriptions.get(name)
        if sub is None:
            cursor = log.new_cursor(earliest=initial_position is InitialPosition.EARLIEST)
            sub = Subscription(log, name, cursor, loop, self.config)
            log.subscriptions[name] = sub
        return sub

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
        loop = self._bind()
        full = normalize_topic(topic)
        timeout, nack_delay = check_subscribe_args(
            subscription=subscription,
            subscription_type=subscription_type,
            consumer_name=consumer_name,
            receiver_queue_size=receiver_queue_size,
            ack_timeout=ack_timeout,
            negative_ack_redelivery_delay=negative_ack_redelivery_delay,
            dead_letter_policy=dead_letter_policy,
            key_shared_policy=key_shared_policy,
            priority_level=priority_level,
            initial_position=initial_position,
        )
        if not isinstance(batch_index_ack_enabled, bool):
            raise InvalidArgumentError(
                "batch_index_ack_enabled must be True or False, not "
                f"{type(batch_index_ack_enabled).__name__}"
            )
        policy = None
        if subscription_type is SubscriptionType.KEY_SHARED:
            policy = key_shared_policy or KeySharedPolicy()

        full, logs, _ = self._resolve(full)
        name = consumer_name or f"consumer-{next(self._names)}"
        queue_size = receiver_queue_size
        if len(logs) > 1:
            queue_size = max(min(queue_size, _MAX_TOTAL_RECEIVER_QUEUE // len(logs)), 1)
        consumer = MemoryConsumer(
            loop=loop,
            topic=full,
            subscription=subscription,
            name=name,
            sub_type=subscription_type,
            ack_timeout=timeout,
            nack_delay=nack_delay,
            dead_letter_policy=dead_letter_policy,
            publish_dead_letter=self._publish_dead_letter,
            on_close=lambda c: self._consumers.pop(c, None),
            batch_index_ack_enabled=batch_index_ack_enabled,
        )
        created: list[Subscription] = []
        parts: list[BrokerConsumer] = []
        for log in logs:
            existed = subscription in log.subscriptions
            sub = self._subscription(log, subscription, initial_position, loop)
            if not existed:
                created.append(sub)
            parts.append(
                BrokerConsumer(
                    consumer, sub, name, subscription_type, queue_size, priority_level, policy
                )
            )
        try:
            for part in parts:
                part.sub.check(part)
        except BaseException:
            for sub in created:
                sub.delete()
            raise
        consumer._attach(parts)
        for part in parts:
            part.sub.add(part)
        self._consumers[consumer] = None
        return consumer

    # ------------------------------------------------------------------ introspection

    async def subscription_stats(self, topic: str, subscription: str) -> dict[str, Any] | None:
        """A subscription's consumers as Pulsar's admin API reports them, or None if absent.

        The same shape (a subset) as ``GET /admin/v2/.../stats`` -> ``subscriptions[name]``:
        ``type``, ``unackedMessages`` and, per consumer, ``consumerName``, ``unackedMessages``,
        ``availablePermits``, ``keyHashRangeArrays`` (inclusive slot ranges, Key_Shared only)
        and ``drainingHashes`` (``hash``, ``unackedMessages``, ``blockedAttempts``). Of
        partition 0 on a partitioned topic, as the Pulsar backend's admin client does.
        """
        self._bind()
        full = normalize_topic(topic)
        if full in self._partitioned:
            full = f"{full}-partition-0"
        log = self._logs.get(full)
        sub = None if log is None else log.subscriptions.get(subscription)
        if sub is None:
            return None
        dispatcher = sub.dispatcher
        consumers = []
        for consumer in sub.consumers:
            stats: dict[str, Any] = {
                "consumerName": consumer.name,
                "unackedMessages": consumer.unacked,
                "availablePermits": consumer.permits,
            }
            if isinstance(dispatcher, KeySharedDispatcher):
                stats["keyHashRangeArrays"] = [
                    [start, end] for start, end in dispatcher.selector.ranges_of(consumer)
                ]
                stats["drainingHashes"] = [
                    {"hash": slot, "unackedMessages": d.ref_count, "blockedAttempts": d.blocked}
                    for slot, d in sorted(dispatcher.draining.items())
                    if d.consumer is consumer
                ]
            consumers.append(stats)
        kind = None if dispatcher is None else dispatcher.sub_type.value
        return {
            "type": kind,
            "unackedMessages": sum(c.unacked for c in sub.consumers),
            "consumers": consumers,
        }

    # ------------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        if self._closed:
            return
        for consumer in list(self._consumers):
            await consumer.close()
        for producer in list(self._producers):
            await producer.close()
        for log in self._logs.values():
            for sub in log.subscriptions.values():
                if sub.dispatcher is not None:
                    sub.dispatcher.close()
        self._closed = True
