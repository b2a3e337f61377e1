"""Test doubles for the strategies: a consumer fed by hand, a producer, a broker making both.

The fake consumer records acks and nacks and redelivers a nacked message (redelivery_count + 1)
after the subscription's ``negative_ack_redelivery_delay`` on the loop clock.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from datetime import datetime

from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedPolicy,
    Message,
    MessageId,
    Producer,
    SubscriptionType,
    to_seconds,
)
from keylane.errors import AlreadyClosedError

_ids = itertools.count(1)


def make_message(key: str, seq: int, *, redelivery_count: int = 0) -> Message:
    """A message of ``key`` with the ``seq`` property."""
    return Message(
        data=b"x",
        key=key,
        ordering_key=None,
        properties={"seq": str(seq), "published_at": "0"},
        message_id=MessageId(-1, 1, next(_ids)),
        topic="persistent://public/default/t",
        publish_time=0.0,
        redelivery_count=redelivery_count,
    )


class FakeConsumer(Consumer):
    def __init__(self, name: str, subscription_type: SubscriptionType, nack_delay: float) -> None:
        self._name = name
        self.subscription_type = subscription_type
        self.nack_delay = nack_delay
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.acked: list[Message] = []
        self.nacked: list[Message] = []
        self._closed = False
        self.redeliver_calls = 0

    def push(self, *messages: Message) -> None:
        for message in messages:
            self.queue.put_nowait(message)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def topic(self) -> str:
        return "persistent://public/default/t"

    @property
    def subscription(self) -> str:
        return "sub"

    @property
    def consumer_name(self) -> str:
        return self._name

    async def receive(self, timeout: Duration | None = None) -> Message:
        if self._closed:
            raise AlreadyClosedError("closed")
        if timeout is None:
            return await self.queue.get()
        async with asyncio.timeout(to_seconds(timeout, "timeout")):
            return await self.queue.get()

    async def acknowledge(self, message: Message | MessageId) -> None:
        assert isinstance(message, Message)
        self.acked.append(message)

    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        raise NotImplementedError

    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        assert isinstance(message, Message)
        self.nacked.append(message)
        again = Message(
            data=message.data,
            key=message.key,
            ordering_key=message.ordering_key,
            properties=message.properties,
            message_id=message.message_id,
            topic=message.topic,
            publish_time=message.publish_time,
            redelivery_count=message.redelivery_count + 1,
        )
        asyncio.get_running_loop().call_later(self.nack_delay, self.queue.put_nowait, again)

    async def redeliver_unacknowledged_messages(self) -> None:
        self.redeliver_calls += 1

    async def close(self) -> None:
        self._closed = True

    async def unsubscribe(self) -> None:
        self._closed = True


class FakeProducer(Producer):
    def __init__(self, topic: str) -> None:
        self._topic = topic
        self.sent: list[tuple[bytes, str | None, dict[str, str]]] = []
        self.closed = False

    @property
    def topic(self) -> str:
        return self._topic

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
        self.sent.append((data, key, dict(properties or {})))
        return MessageId(-1, 1, next(_ids))

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class FakeBroker(Broker):
    def __init__(self) -> None:
        self.consumers: list[FakeConsumer] = []
        self.producers: list[FakeProducer] = []
        self.topics: dict[str, int] = {}
        self.subscribe_calls: list[dict[str, object]] = []

    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        self.topics[topic] = partitions

    async def topic_partitions(self, topic: str) -> list[str]:
        return [topic]

    async def create_producer(
        self,
        topic: str,
        *,
        batching: BatchingType | None = BatchingType.KEY_BASED,
        batching_max_messages: int = 1000,
        batching_max_publish_delay: Duration = 0.01,
        producer_name: str | None = None,
    ) -> Producer:
        producer = FakeProducer(topic)
        self.producers.append(producer)
        return producer

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
        self.subscribe_calls.append(
            {
                "topic": topic,
                "subscription": subscription,
                "subscription_type": subscription_type,
                "consumer_name": consumer_name,
                "receiver_queue_size": receiver_queue_size,
                "nack_delay": negative_ack_redelivery_delay,
                "initial_position": initial_position,
            }
        )
        consumer = FakeConsumer(
            consumer_name or f"c{len(self.consumers)}",
            subscription_type,
            to_seconds(negative_ack_redelivery_delay, "delay"),
        )
        self.consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.close()
