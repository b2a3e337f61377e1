"""Key_Shared throughput with the contract's pipelined calls, on any backend.

- :func:`pipelined_end_to_end`: one producer publishing with ``enqueue`` while ``consumers``
  Key_Shared consumers receive with ``receive_many`` and acknowledge each message, from the
  first send to the last acknowledgement;
- :func:`lanes_end_to_end`: the same, with a :class:`~keylane.lanes.LaneGroup` of ``consumers``
  consumers running a handler that does nothing, to the last handled message (its ack follows at
  once);
- :func:`produce_then_drain`: pulsar-perf's two phases, produce a backlog and then drain it with
  Key_Shared consumers, each timed on its own.

All return :class:`~keylane.bench.broker.BrokerBenchResult` or
:class:`~keylane.bench.pulsar_perf.PerfRate`. The caller opens and closes the broker.

Imports the broker contract, the lanes and the benchmark result types; no backend.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from keylane.bench.broker import BrokerBenchResult
from keylane.bench.pulsar_perf import PerfRate
from keylane.brokers.base import (
    BatchingType,
    Broker,
    Consumer,
    InitialPosition,
    Message,
    Producer,
    SubscriptionType,
)
from keylane.errors import InvalidArgumentError
from keylane.lanes import HandlerContext, LaneConfig, LaneGroup

__all__ = ["RECEIVE_MANY", "lanes_end_to_end", "pipelined_end_to_end", "produce_then_drain"]

KEY_SHARED = SubscriptionType.KEY_SHARED
#: Most messages one ``receive_many`` call takes.
RECEIVE_MANY = 1000


def _check(messages: int, keys: int, consumers: int, payload_size: int) -> None:
    if min(messages, keys, consumers) < 1 or payload_size < 8:
        raise InvalidArgumentError(
            "messages, keys and consumers must be at least 1, payload_size at least 8"
        )


async def _publish(producer: Producer, messages: int, keys: int, payload_size: int) -> None:
    """Enqueue ``messages`` unique payloads over ``keys`` keys; wait until all are stored."""
    names = [f"key-{k}" for k in range(keys)]
    pad = b"x" * (payload_size - 8)
    enqueue = producer.enqueue
    futures = [
        await enqueue(pad + i.to_bytes(8, "big"), key=names[i % keys]) for i in range(messages)
    ]
    await producer.flush()
    for future in futures:
        await future


async def _drain(
    consumer: Consumer,
    seen: set[bytes],
    counts: list[int],
    index: int,
    done: asyncio.Event,
    target: int,
    stall: float,
) -> None:
    """Receive (``receive_many``) and acknowledge until ``target`` distinct messages were seen
    by all drains together; counts this one's messages in ``counts[index]``.

    Raises:
        TimeoutError: nothing arrived for ``stall`` seconds before the end.
    """
    receive_many, acknowledge = consumer.receive_many, consumer.acknowledge
    while not done.is_set():
        try:
            batch = await receive_many(RECEIVE_MANY, stall)
        except TimeoutError:
            if done.is_set():
                break
            raise
        for message in batch:
            await acknowledge(message)
            seen.add(message.data)
        counts[index] += len(batch)
        if len(seen) >= target:
            done.set()


async def _finish(
    tasks: list[asyncio.Task[None]],
    done: asyncio.Event,
    watch: Sequence[asyncio.Future[None]] = (),
) -> None:
    """Wait for ``done`` (or raise the first failure of ``tasks`` or ``watch``); then cancel
    ``tasks`` (``watch`` is left to run)."""
    waiter = asyncio.ensure_future(done.wait())
    try:
        pending: set[asyncio.Future[Any]] = {waiter, *tasks, *watch}
        while not done.is_set():
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
    finally:
        waiter.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def pipelined_end_to_end(
    broker: Broker,
    *,
    messages: int = 50_000,
    keys: int = 1000,
    consumers: int = 4,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    stall_timeout: float = 30.0,
) -> BrokerBenchResult:
    """Publish with ``enqueue`` while Key_Shared consumers drain with ``receive_many``.

    Raises:
        InvalidArgumentError: a parameter is out of range.
        TimeoutError: a consumer got nothing for ``stall_timeout`` seconds before the end.
    """
    _check(messages, keys, consumers, payload_size)
    topic = f"keylane-e2e-{uuid.uuid4().hex[:12]}"
    subs = [
        await broker.subscribe(
            topic,
            "bench",
            subscription_type=KEY_SHARED,
            consumer_name=f"bench-{i}",
            receiver_queue_size=receiver_queue_size,
            initial_position=InitialPosition.EARLIEST,
        )
        for i in range(consumers)
    ]
    producer = await broker.create_producer(topic, batching=BatchingType.KEY_BASED)
    try:
        seen: set[bytes] = set()
        counts = [0] * consumers
        done = asyncio.Event()
        started, cpu = time.perf_counter(), time.process_time()
        drains = [
            asyncio.ensure_future(_drain(c, seen, counts, i, done, messages, stall_timeout))
            for i, c in enumerate(subs)
        ]
        publishing = asyncio.ensure_future(_publish(producer, messages, keys, payload_size))
        await _finish(drains, done, watch=(publishing,))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await publishing
    finally:
        await producer.close()
        for c in subs:
            await c.close()
    return BrokerBenchResult(
        subscription_type=KEY_SHARED,
        messages=messages,
        keys=keys,
        consumers=consumers,
        batching=BatchingType.KEY_BASED,
        seconds=elapsed,
        cpu_seconds=cpu,
        per_consumer=tuple(counts),
        duplicates=sum(counts) - len(seen),
    )


async def lanes_end_to_end(
    broker: Broker,
    *,
    messages: int = 50_000,
    keys: int = 1000,
    consumers: int = 4,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    timeout: float = 300.0,
) -> BrokerBenchResult:
    """Publish with ``enqueue`` into a :class:`LaneGroup` of Key_Shared consumers.

    The handler only counts; lanes run with their defaults (256 handlers in flight per consumer,
    a 30 s handler timeout, individual acks).

    Raises:
        InvalidArgumentError: a parameter is out of range.
        TimeoutError: not every message was handled within ``timeout`` seconds.
    """
    _check(messages, keys, consumers, payload_size)
    topic = f"keylane-lanes-{uuid.uuid4().hex[:12]}"
    seen: set[bytes] = set()
    done = asyncio.Event()

    async def handle(message: Message, context: HandlerContext) -> None:
        seen.add(message.data)
        if len(seen) >= messages:
            done.set()

    group = LaneGroup(
        broker,
        topic,
        "bench",
        handle,
        consumers=consumers,
        config=LaneConfig(),
        name="bench-lanes",
        receiver_queue_size=receiver_queue_size,
    )
    await group.start()
    producer = await broker.create_producer(topic, batching=BatchingType.KEY_BASED)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        publishing = asyncio.ensure_future(_publish(producer, messages, keys, payload_size))
        async with asyncio.timeout(timeout):
            await _finish([], done, watch=(publishing,))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await publishing
        stats = group.stats()
    finally:
        await producer.close()
        await group.stop()
    per_consumer = tuple(s.received for s in stats.by_consumer.values())
    return BrokerBenchResult(
        subscription_type=KEY_SHARED,
        messages=messages,
        keys=keys,
        consumers=consumers,
        batching=BatchingType.KEY_BASED,
        seconds=elapsed,
        cpu_seconds=cpu,
        per_consumer=per_consumer,
        duplicates=sum(per_consumer) - len(seen),
    )


async def produce_then_drain(
    broker: Broker,
    *,
    messages: int = 50_000,
    keys: int = 1000,
    consumers: int = 4,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    stall_timeout: float = 30.0,
) -> tuple[PerfRate, PerfRate]:
    """Produce a backlog with ``enqueue``, then drain it with Key_Shared consumers.

    The subscription exists (and retains) before the first send. The produce figure runs from
    the first send to the last receipt; the consume figure from subscribing the consumers to the
    last acknowledgement.

    Raises:
        InvalidArgumentError: a parameter is out of range.
        TimeoutError: a consumer got nothing for ``stall_timeout`` seconds before the end.
    """
    _check(messages, keys, consumers, payload_size)
    topic = f"keylane-phases-{uuid.uuid4().hex[:12]}"
    holder = await broker.subscribe(
        topic, "perf", subscription_type=KEY_SHARED, initial_position=InitialPosition.EARLIEST
    )
    await holder.close()  # the durable subscription stays and retains the backlog
    producer = await broker.create_producer(topic, batching=BatchingType.KEY_BASED)
    try:
        started = time.perf_counter()
        await _publish(producer, messages, keys, payload_size)
        produce_seconds = time.perf_counter() - started
    finally:
        await producer.close()
    seen: set[bytes] = set()
    counts = [0] * consumers
    done = asyncio.Event()
    started = time.perf_counter()
    subs = [
        await broker.subscribe(
            topic,
            "perf",
            subscription_type=KEY_SHARED,
            consumer_name=f"perf-{i}",
            receiver_queue_size=receiver_queue_size,
        )
        for i in range(consumers)
    ]
    try:
        drains = [
            asyncio.ensure_future(_drain(c, seen, counts, i, done, messages, stall_timeout))
            for i, c in enumerate(subs)
        ]
        await _finish(drains, done)
        consume_seconds = time.perf_counter() - started
    finally:
        for c in subs:
            await c.close()
    return (
        PerfRate("keylane", "produce", messages, messages / produce_seconds),
        PerfRate("keylane", "consume", messages, messages / consume_seconds),
    )
