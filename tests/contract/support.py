"""Helpers of the broker contract suite: the :class:`Backend` wrapper, broker knobs, payloads.

Tests import from here; ``conftest.py`` holds only hooks and fixtures. Imports no backend module
at import time (the memory broker is imported lazily by :func:`memory_broker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    InitialPosition,
    Message,
    Producer,
    SubscriptionType,
)

#: activeConsumerFailoverDelayTimeMillis of the real standalone (Pulsar default), in seconds.
FAILOVER_DELAY = 1.0
#: delayedDeliveryTickTimeMillis of the real standalone (scripts/services.py: 100 ms).
DELAYED_DELIVERY_TICK = 0.1
#: isDelayedDeliveryDeliverAtTimeStrict of the real standalone (scripts/services.py: true).
DELAYED_DELIVERY_STRICT = True
#: acknowledgmentAtBatchIndexLevelEnabled of the real standalone (scripts/services.py: true), so
#: each consumer's batch_index_ack_enabled decides (Pulsar's default is false).
BATCH_INDEX_ACK_AT_BROKER = True

#: MemoryBrokerConfig knobs equal to the real standalone's broker settings.
STANDALONE_KNOBS: dict[str, Any] = {
    "failover_delay": FAILOVER_DELAY,
    "failover_consistent_hashing": False,
    "key_shared_use_consistent_hashing": True,
    "key_shared_replica_points": 100,
    "key_shared_look_ahead_per_consumer": 2000,
    "key_shared_look_ahead_per_subscription": 20000,
    "dispatcher_max_round_robin_batch_size": 20,
    "max_unacked_per_consumer": 50000,
    "max_unacked_per_subscription": 200000,
    "delayed_delivery_tick": DELAYED_DELIVERY_TICK,
    "delayed_delivery_strict": DELAYED_DELIVERY_STRICT,
    "acknowledgment_at_batch_index_level_enabled": BATCH_INDEX_ACK_AT_BROKER,
}

#: Most messages a drain accepts before failing (runaway redelivery guard).
DRAIN_LIMIT = 2000

#: Features a backend cannot offer, with the reason (the test is skipped there).
UNSUPPORTED: dict[str, dict[str, str]] = {
    "memory": {},
    "pulsar": {
        "priority_level": "the Python Pulsar client cannot set a consumer priority level",
    },
}


def unique(prefix: str = "kl") -> str:
    """A name no other test (or earlier run against the same Pulsar) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def text(message: Message) -> str:
    """The payload as text (tests publish UTF-8 payloads such as ``m1``)."""
    return message.data.decode()


def texts(messages: Sequence[Message]) -> list[str]:
    """Payloads as text, in order."""
    return [text(m) for m in messages]


@dataclass
class Backend:
    """One backend under test, with helpers that keep tests short and backend-neutral.

    Attributes:
        name: ``"memory"`` or ``"pulsar"``.
        broker: the started broker (closed after the test).
        failover_delay: the broker's Failover switch-over delay, seconds.
        delayed_delivery_tick: the broker's delayed-delivery tick, seconds.
        wait: how long to wait for a message that must arrive.
        quiet: how long a consumer must stay silent to count as drained.
        ack_flush: how long until acks and nacks have surely reached the broker.
        virtual: whether time is virtual (looptime).
        admin_url: the Pulsar admin REST URL (pulsar only).
    """

    name: str
    broker: Broker
    stack: contextlib.AsyncExitStack
    virtual: bool
    failover_delay: float = FAILOVER_DELAY
    delayed_delivery_tick: float = DELAYED_DELIVERY_TICK
    delayed_delivery_strict: bool = DELAYED_DELIVERY_STRICT
    wait: float = 10.0
    quiet: float = 1.5
    ack_flush: float = 0.3
    prefix: str = field(default_factory=unique)
    admin_url: str | None = None

    # ------------------------------------------------------------------ names and time

    def topic(self, name: str = "t") -> str:
        """A fresh fully qualified topic name, unique to this test."""
        return f"persistent://public/default/{self.prefix}-{name}"

    def dlq(self, topic: str, subscription: str) -> str:
        """The default dead letter topic of ``topic``/``subscription``."""
        return f"{topic}-{subscription}-DLQ"

    def now(self) -> float:
        """The event loop's clock (virtual on memory)."""
        return asyncio.get_running_loop().time()

    async def settle(self, seconds: float) -> None:
        """Let asynchronous dispatch happen for ``seconds`` (virtual time on memory)."""
        await asyncio.sleep(seconds)

    async def flush_acks(self) -> None:
        """Wait until acks/nacks sent so far have reached the broker."""
        await self.settle(self.ack_flush)

    def require(self, feature: str) -> None:
        """Skip the test if this backend cannot offer ``feature``."""
        reason = UNSUPPORTED[self.name].get(feature)
        if reason:
            pytest.skip(f"{self.name}: {reason}")

    async def broker_with(self, **knobs: Any) -> Broker:
        """A started broker with these knobs changed from the standalone's settings.

        Memory only: the shared real standalone runs with fixed settings, so the test is
        skipped on ``pulsar`` unless every knob equals the standalone's value.
        """
        unknown = set(knobs) - set(STANDALONE_KNOBS)
        if unknown:
            raise AssertionError(f"unknown broker knobs {sorted(unknown)}")
        changed = {k: v for k, v in knobs.items() if STANDALONE_KNOBS[k] != v}
        if not changed:
            return self.broker
        if self.name != "memory":
            pytest.skip(
                f"needs broker config {changed}; the real Pulsar standalone runs with defaults"
            )
        broker = memory_broker(**changed)
        return await self.stack.enter_async_context(broker)

    async def with_max_unacked_per_consumer(self, topic: str, limit: int) -> Broker:
        """A broker on which consumers of ``topic`` stop at ``limit`` unacked messages.

        Memory: a broker with ``max_unacked_per_consumer=limit``. Pulsar: the topic policy
        ``maxUnackedMessagesOnConsumer`` set through the admin REST API on the shared
        standalone (topic-level policies are on by default in 4.x).
        """
        if self.name == "memory":
            return await self.broker_with(max_unacked_per_consumer=limit)
        assert self.admin_url is not None
        await self.broker.create_topic(topic)
        url = f"{self.admin_url}/admin/v2/{topic.replace('://', '/')}/maxUnackedMessagesOnConsumer"
        await asyncio.to_thread(_http, "POST", url, str(limit).encode())
        for _ in range(50):  # the policy propagates through a system topic
            if (await asyncio.to_thread(_http, "GET", url)).strip() == str(limit).encode():
                return self.broker
            await asyncio.sleep(0.2)
        raise AssertionError(f"topic policy maxUnackedMessagesOnConsumer={limit} never applied")

    # ------------------------------------------------------------------ clients

    async def producer(
        self,
        topic: str,
        *,
        broker: Broker | None = None,
        batching: BatchingType | None = None,
        **options: Any,
    ) -> Producer:
        """A producer (unbatched unless asked), closed after the test."""
        producer = await (broker or self.broker).create_producer(
            topic, batching=batching, **options
        )
        self.stack.push_async_callback(producer.close)
        return producer

    async def subscribe(
        self,
        topic: str,
        subscription: str = "sub",
        subscription_type: SubscriptionType = SubscriptionType.EXCLUSIVE,
        *,
        broker: Broker | None = None,
        initial_position: InitialPosition = InitialPosition.EARLIEST,
        **options: Any,
    ) -> Consumer:
        """Subscribe a consumer (from the earliest message by default), closed after the test."""
        consumer = await (broker or self.broker).subscribe(
            topic,
            subscription,
            subscription_type=subscription_type,
            initial_position=initial_position,
            **options,
        )
        self.stack.push_async_callback(consumer.close)
        return consumer

    async def send_all(
        self,
        producer: Producer,
        payloads: Sequence[str],
        *,
        key: str | None = None,
        keys: Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[str]:
        """Send UTF-8 payloads one by one (each stored before the next), return them."""
        for i, payload in enumerate(payloads):
            k = keys[i] if keys is not None else key
            await producer.send(payload.encode(), key=k, **options)
        return list(payloads)

    # ------------------------------------------------------------------ receiving

    async def receive(self, consumer: Consumer, timeout: float | None = None) -> Message:
        """The next message; fails the test with TimeoutError if none arrives in ``wait``."""
        return await consumer.receive(timeout=self.wait if timeout is None else timeout)

    async def receive_n(
        self, consumer: Consumer, n: int, *, ack: bool = False, timeout: float | None = None
    ) -> list[Message]:
        """Exactly the next ``n`` messages (each must arrive within ``wait``)."""
        out = []
        for _ in range(n):
            message = await self.receive(consumer, timeout)
            if ack:
                await consumer.acknowledge(message)
            out.append(message)
        return out

    async def drain(
        self,
        consumer: Consumer,
        *,
        ack: bool = True,
        quiet: float | None = None,
        limit: int = DRAIN_LIMIT,
    ) -> list[Message]:
        """Receive until the consumer stays silent for ``quiet`` seconds.

        Fails after ``limit`` messages, so a broker that redelivers forever fails the test
        instead of hanging it.
        """
        out: list[Message] = []
        while len(out) < limit:
            try:
                message = await consumer.receive(timeout=self.quiet if quiet is None else quiet)
            except TimeoutError:
                return out
            if ack:
                await consumer.acknowledge(message)
            out.append(message)
        raise AssertionError(f"{consumer.consumer_name}: still receiving after {limit} messages")

    async def collect(
        self,
        consumers: Mapping[str, Consumer],
        *,
        ack: bool = True,
        quiet: float | None = None,
    ) -> dict[str, list[Message]]:
        """Drain several consumers concurrently; messages per consumer label."""
        labels = list(consumers)
        results = await asyncio.gather(
            *(self.drain(consumers[label], ack=ack, quiet=quiet) for label in labels)
        )
        return dict(zip(labels, results, strict=True))

    async def assert_silent(self, consumer: Consumer, quiet: float | None = None) -> None:
        """Assert that nothing arrives at ``consumer`` within ``quiet`` seconds."""
        try:
            message = await consumer.receive(timeout=self.quiet if quiet is None else quiet)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {text(message)!r} ({message.message_id})")


def _http(method: str, url: str, body: bytes | None = None) -> bytes:
    """One admin REST call (blocking; run it in a thread)."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: bytes = response.read()
        return data


def memory_broker(**knobs: Any) -> Broker:
    """An unstarted MemoryBroker with the standalone's knobs, ``knobs`` changed."""
    from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig

    return MemoryBroker(MemoryBrokerConfig(**(STANDALONE_KNOBS | knobs)))
