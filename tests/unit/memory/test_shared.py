"""Shared dispatching (spec section 1.3; cases 16-24, 27, 28) and redelivery bookkeeping."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.errors import CumulativeAckNotAllowedError, InvalidArgumentError
from tests.unit.memory.conftest import drain, send, subscribe, texts

pytestmark = pytest.mark.looptime

SHARED = SubscriptionType.SHARED


async def test_case_16_each_message_to_one_consumer(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a")
    b = await subscribe(broker, "t", SHARED, "b")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, *(f"m{i}" for i in range(200)))
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert sorted(texts(got_a) + texts(got_b)) == sorted(f"m{i}" for i in range(200))
    assert got_a
    assert got_b


async def test_round_robin_in_chunks_of_twenty(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a")
    b = await subscribe(broker, "t", SHARED, "b")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, *(f"m{i}" for i in range(100)))
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    nums_a = [int(t[1:]) for t in texts(got_a)]
    # Consecutive runs of 20 entries alternate between the consumers.
    assert {n // 20 % 2 for n in nums_a} == {nums_a[0] // 20 % 2}
    assert len(got_a) + len(got_b) == 100


async def test_case_17_cumulative_ack_refused(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    message = await consumer.receive(1)
    with pytest.raises(CumulativeAckNotAllowedError):
        await consumer.acknowledge_cumulative(message)
    await consumer.redeliver_unacknowledged_messages()
    again = await consumer.receive(1)
    assert texts([again]) == ["m1"]


async def test_case_18_prefetch_bounded_by_permits(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", receiver_queue_size=5)
    b = await subscribe(broker, "t", SHARED, "b")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, *(f"m{i}" for i in range(100)))
    got_b = await drain(b)
    assert len(a._queue) <= 5  # type: ignore[attr-defined]
    assert len(got_b) >= 95
    assert len(got_b) + len(a._queue) == 100  # type: ignore[attr-defined]


async def test_case_19_departing_consumer_hands_over_unacked(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", receiver_queue_size=3)
    b = await subscribe(broker, "t", SHARED, "b", receiver_queue_size=1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4")
    held = [await a.receive(1) for _ in range(3)]
    first_b = await b.receive(1)
    await b.acknowledge(first_b)
    await a.close()
    again = await drain(b)
    assert sorted(texts(again)) == sorted(texts(held))
    assert all(m.redelivery_count == 0 for m in again)


async def test_case_20_nack_redelivers_only_that_message(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", SHARED, "a", negative_ack_redelivery_delay=1.0)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2")
    m1, m2 = await consumer.receive(1), await consumer.receive(1)
    start = loop.time()
    await consumer.negative_acknowledge(m1)
    again = await consumer.receive(5)
    assert loop.time() - start >= 1.0
    assert texts([again]) == ["m1"]
    assert again.redelivery_count == 1
    assert await drain(consumer) == []
    await consumer.acknowledge(m2)


async def test_case_21_ack_timeout(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", SHARED, "a", ack_timeout=10)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    first = await consumer.receive(1)
    received = loop.time()
    again = await consumer.receive(30)
    assert 10.0 <= loop.time() - received <= 11.0
    assert texts([again]) == ["m1"]
    assert again.redelivery_count == 1
    assert first.message_id == again.message_id
    with pytest.raises(InvalidArgumentError, match="greater than 10 seconds"):
        await subscribe(broker, "t", SHARED, "b", ack_timeout=5)


async def test_acked_message_does_not_time_out(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a", ack_timeout=10)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    await consumer.acknowledge(await consumer.receive(1))
    with pytest.raises(TimeoutError):
        await consumer.receive(30)


async def test_case_22_redeliver_bumps_counts(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", receiver_queue_size=3)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    [await a.receive(1) for _ in range(3)]
    b = await subscribe(broker, "t", SHARED, "b")
    await a.redeliver_unacknowledged_messages()
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    again = got_a + got_b
    assert sorted(texts(again)) == ["m1", "m2", "m3"]
    assert all(m.redelivery_count == 1 for m in again)


async def test_case_23_unacked_limit_per_consumer() -> None:
    async with MemoryBroker(MemoryBrokerConfig(max_unacked_per_consumer=10)) as broker:
        consumer = await subscribe(broker, "t", SHARED, "a")
        producer = await broker.create_producer("t", batching=None)
        await send(producer, *(f"m{i}" for i in range(30)))
        held = await drain(consumer, ack=False)
        assert len(held) == 10
        for message in held[:4]:
            await consumer.acknowledge(message)
        assert await drain(consumer, ack=False) == []  # 6 unacked > 10 / 2
        await consumer.acknowledge(held[4])
        more = await drain(consumer, ack=False)
        assert len(more) == 5  # back up to the limit
        assert texts(more) == [f"m{i}" for i in range(10, 15)]


async def test_unacked_limit_per_subscription() -> None:
    async with MemoryBroker(MemoryBrokerConfig(max_unacked_per_subscription=8)) as broker:
        a = await subscribe(broker, "t", SHARED, "a")
        b = await subscribe(broker, "t", SHARED, "b")
        producer = await broker.create_producer("t", batching=None)
        await send(producer, *(f"m{i}" for i in range(30)))
        got = await drain(a, ack=False) + await drain(b, ack=False)
        assert len(got) == 8
        for message in got[:4]:
            consumer = a if message.handle.owner is a else b  # type: ignore[attr-defined]
            await consumer.acknowledge(message)
        more = await drain(a, ack=False) + await drain(b, ack=False)
        assert len(more) == 4


async def test_case_24_priority_levels(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", priority_level=0, receiver_queue_size=10)
    b = await subscribe(broker, "t", SHARED, "b", priority_level=1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, *(f"m{i}" for i in range(25)))
    await asyncio.sleep(0.1)
    # A gets everything its permits allow, B only the rest.
    assert texts(list(a._queue)) == [f"m{i}" for i in range(10)]  # type: ignore[attr-defined]
    assert texts(await drain(b)) == [f"m{i}" for i in range(10, 25)]


async def test_case_27_delayed_delivery_on_shared() -> None:
    loop = asyncio.get_running_loop()
    config = MemoryBrokerConfig(delayed_delivery_tick=1.0, delayed_delivery_strict=False)
    async with MemoryBroker(config) as broker:
        consumer = await subscribe(broker, "t", SHARED, "a")
        producer = await broker.create_producer("t", batching=None)
        start = loop.time()
        await producer.send(b"m1", deliver_after=3)
        await producer.send(b"m2")
        first = await consumer.receive(1)
        second = await consumer.receive(10)
        assert texts([first, second]) == ["m2", "m1"]
        # Non-strict: up to one tick early, never earlier.
        assert 2.0 <= loop.time() - start <= 3.0


async def test_strict_delayed_delivery_is_never_early() -> None:
    loop = asyncio.get_running_loop()
    config = MemoryBrokerConfig(delayed_delivery_tick=0.1, delayed_delivery_strict=True)
    async with MemoryBroker(config) as broker:
        consumer = await subscribe(broker, "t", SHARED, "a")
        producer = await broker.create_producer("t", batching=None)
        start = loop.time()
        await producer.send(b"m1", deliver_after=3)
        await consumer.receive(10)
        assert 3.0 <= loop.time() - start <= 3.2


async def test_case_28_counts_reset_after_last_consumer_left(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a", negative_ack_redelivery_delay=0.1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    for _ in range(2):
        for message in [await consumer.receive(1) for _ in range(3)]:
            await consumer.negative_acknowledge(message)
    held = [await consumer.receive(1) for _ in range(3)]
    assert all(m.redelivery_count == 2 for m in held)
    await consumer.close()
    fresh = await subscribe(broker, "t", SHARED, "b")
    again = await drain(fresh)
    assert sorted(texts(again)) == ["m1", "m2", "m3"]
    assert all(m.redelivery_count == 0 for m in again)


async def test_consumer_without_permits_gets_nothing(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", receiver_queue_size=1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    await asyncio.sleep(0.1)
    assert len(a._queue) == 1  # type: ignore[attr-defined]
    await asyncio.sleep(1)
    assert len(a._queue) == 1  # type: ignore[attr-defined]
    assert texts(await drain(a)) == ["m1", "m2", "m3"]
