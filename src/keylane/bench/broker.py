"""Broker throughput benchmark: produce -> receive -> acknowledge, end to end.

:func:`bench_broker` drives any :class:`~keylane.brokers.base.Broker`: it subscribes the
consumers, warms the subscription up with one message (so a Failover start-up delay is not
measured), then times ``messages`` messages over ``keys`` keys from the first send until the last
acknowledgement. Each consumer acknowledges every message it receives. The figure is wall-clock
messages per second on the running event loop, so run it on a real clock.

Imports only the broker contract; no backend.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from keylane.brokers.base import BatchingType, Broker, Consumer, InitialPosition, SubscriptionType
from keylane.errors import InvalidArgumentError

__all__ = [
    "BrokerBenchResult",
    "bench_broker",
    "bench_broker_types",
    "drain_consumer",
]

#: Consumers used for each subscription type by :func:`bench_broker_types`.
DEFAULT_CONSUMERS = {
    SubscriptionType.EXCLUSIVE: 1,
    SubscriptionType.FAILOVER: 2,
    SubscriptionType.SHARED: 4,
    SubscriptionType.KEY_SHARED: 4,
}


@dataclass(frozen=True, slots=True)
class BrokerBenchResult:
    """One measured run.

    Attributes:
        subscription_type: the subscription type measured.
        messages: messages produced (and acknowledged).
        keys: distinct message keys.
        consumers: consumers subscribed.
        batching: producer batching (``None``: off).
        seconds: wall-clock seconds from the first send to the last acknowledgement.
        cpu_seconds: CPU time this process spent meanwhile (all threads); with other load on
            the machine, ``messages / cpu_seconds`` is the steadier figure.
        per_consumer: messages received by each consumer, in subscription order.
        duplicates: messages received more than once (redeliveries).
    """

    subscription_type: SubscriptionType
    messages: int
    keys: int
    consumers: int
    batching: BatchingType | None
    seconds: float
    cpu_seconds: float
    per_consumer: tuple[int, ...]
    duplicates: int

    @property
    def msgs_per_second(self) -> float:
        """End-to-end throughput."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    @property
    def msgs_per_cpu_second(self) -> float:
        """Throughput per CPU second of this process."""
        return self.messages / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "subscription_type": self.subscription_type.value,
            "messages": self.messages,
            "keys": self.keys,
            "consumers": self.consumers,
            "batching": self.batching.value if self.batching else None,
            "seconds": round(self.seconds, 4),
            "msgs_per_second": round(self.msgs_per_second, 1),
            "cpu_seconds": round(self.cpu_seconds, 4),
            "msgs_per_cpu_second": round(self.msgs_per_cpu_second, 1),
            "per_consumer": list(self.per_consumer),
            "duplicates": self.duplicates,
        }


async def drain_consumer(
    consumer: Consumer,
    seen: set[bytes],
    counts: list[int],
    index: int,
    done: asyncio.Event,
    target: int,
    stall: float,
) -> int:
    """Receive and acknowledge until ``target`` distinct messages were seen in total.

    ``seen`` and ``done`` are shared by every consumer of the run; this consumer's messages are
    counted in ``counts[index]``. Returns the duplicates it received.

    Raises:
        TimeoutError: nothing arrived for ``stall`` seconds before the end.
    """
    duplicates = 0
    receive, acknowledge = consumer.receive, consumer.acknowledge
    while not done.is_set():
        try:
            message = await receive(stall)
        except TimeoutError:
            if done.is_set():
                break
            raise
        await acknowledge(message)
        counts[index] += 1
        data = message.data
        if data in seen:
            duplicates += 1
        else:
            seen.add(data)
            if len(seen) >= target:
                done.set()
    return duplicates


async def _send_all(
    broker: Broker,
    topic: str,
    messages: int,
    keys: Sequence[str],
    batching: BatchingType | None,
    senders: int,
    payload: bytes,
) -> None:
    producer = await broker.create_producer(topic, batching=batching)
    try:
        n_keys = len(keys)

        async def sender(start: int) -> None:
            send = producer.send
            for i in range(start, messages, senders):
                await send(payload + i.to_bytes(8, "big"), key=keys[i % n_keys])
                if i & 255 == start & 255:
                    await asyncio.sleep(0)  # let consumers run on backends that never suspend

        await asyncio.gather(*(sender(s) for s in range(min(senders, messages))))
        await producer.flush()
    finally:
        await producer.close()


async def bench_broker(
    broker: Broker,
    *,
    subscription_type: SubscriptionType = SubscriptionType.KEY_SHARED,
    messages: int = 100_000,
    keys: int = 1000,
    consumers: int = 4,
    batching: BatchingType | None = BatchingType.KEY_BASED,
    senders: int | None = None,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    stall_timeout: float = 30.0,
    topic: str | None = None,
) -> BrokerBenchResult:
    """Measure produce -> receive -> acknowledge throughput on ``broker``.

    Args:
        broker: a started broker of any backend.
        subscription_type: the subscription type of every consumer.
        messages: messages to produce; each carries a unique payload.
        keys: distinct partition keys, assigned round robin.
        consumers: consumers on the one subscription.
        batching: producer batching (``None`` disables it).
        senders: concurrent ``send`` calls in flight (default: 1000 with batching, else 64).
        payload_size: payload bytes (at least 8; the last 8 make it unique).
        receiver_queue_size: each consumer's prefetch.
        stall_timeout: fail if a consumer receives nothing for this long before the end.
        topic: topic to use (default: a fresh unique one).

    Raises:
        InvalidArgumentError: a parameter is out of range.
        TimeoutError: the run stalled.
    """
    if messages < 1 or keys < 1 or consumers < 1:
        raise InvalidArgumentError("messages, keys and consumers must be at least 1")
    if subscription_type is SubscriptionType.EXCLUSIVE and consumers != 1:
        raise InvalidArgumentError("an Exclusive subscription takes exactly one consumer")
    if payload_size < 8:
        raise InvalidArgumentError("payload_size must be at least 8")
    senders = senders or (1000 if batching is not None else 64)
    topic = topic or f"keylane-bench-{uuid.uuid4().hex[:12]}"
    key_names = [f"key-{k}" for k in range(keys)]
    subs = [
        await broker.subscribe(
            topic,
            "bench",
            subscription_type=subscription_type,
            consumer_name=f"bench-{i}",
            receiver_queue_size=receiver_queue_size,
            initial_position=InitialPosition.LATEST,
        )
        for i in range(consumers)
    ]
    try:
        await _warm_up(broker, topic, subs, stall_timeout)
        seen: set[bytes] = set()
        counts = [0] * consumers
        done = asyncio.Event()
        started, cpu_started = time.perf_counter(), time.process_time()
        drains = [
            asyncio.ensure_future(drain_consumer(c, seen, counts, i, done, messages, stall_timeout))
            for i, c in enumerate(subs)
        ]
        payload = b"x" * (payload_size - 8)
        await _send_all(broker, topic, messages, key_names, batching, senders, payload)
        await done.wait()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        for task in drains:
            task.cancel()
        results = await asyncio.gather(*drains, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
        duplicates = sum(r for r in results if isinstance(r, int))
    finally:
        for c in subs:
            await c.close()
    return BrokerBenchResult(
        subscription_type=subscription_type,
        messages=messages,
        keys=keys,
        consumers=consumers,
        batching=batching,
        seconds=elapsed,
        cpu_seconds=cpu,
        per_consumer=tuple(counts),
        duplicates=duplicates,
    )


async def _warm_up(broker: Broker, topic: str, subs: Sequence[Consumer], timeout: float) -> None:
    """Send one message and wait until some consumer got (and acked) it."""
    producer = await broker.create_producer(topic, batching=None)
    try:
        await producer.send(b"warm-up")
    finally:
        await producer.close()
    waiters = [asyncio.ensure_future(c.receive(timeout)) for c in subs]
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            message = task.result()
            index = waiters.index(task)
            await subs[index].acknowledge(message)
    finally:
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def bench_broker_types(
    broker: Broker,
    *,
    types: Sequence[SubscriptionType] = tuple(DEFAULT_CONSUMERS),
    messages: int = 100_000,
    keys: int = 1000,
    consumers: int | None = None,
    batching: BatchingType | None = BatchingType.KEY_BASED,
) -> list[BrokerBenchResult]:
    """Run :func:`bench_broker` for each subscription type, one after the other.

    ``consumers`` overrides :data:`DEFAULT_CONSUMERS` for Failover, Shared and Key_Shared
    (Exclusive always has one consumer).
    """
    results = []
    for sub_type in types:
        n = DEFAULT_CONSUMERS[sub_type]
        if consumers is not None and sub_type is not SubscriptionType.EXCLUSIVE:
            n = consumers
        results.append(
            await bench_broker(
                broker,
                subscription_type=sub_type,
                messages=messages,
                keys=keys,
                consumers=n,
                batching=batching,
            )
        )
    return results
