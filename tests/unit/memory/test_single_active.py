"""Exclusive and Failover dispatching (spec sections 1.1, 1.2; cases 1, 4-15)."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import DeadLetterPolicy, InitialPosition, SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.brokers.memory.failover import ActiveConsumerSelector
from keylane.errors import ConsumerBusyError, SubscriptionTypeMismatchError
from tests.unit.memory.conftest import drain, send, subscribe, texts

pytestmark = pytest.mark.looptime

EXCLUSIVE = SubscriptionType.EXCLUSIVE
FAILOVER = SubscriptionType.FAILOVER


async def test_second_exclusive_consumer_is_busy_and_first_keeps_going(
    broker: MemoryBroker,
) -> None:
    a = await subscribe(broker, "t", EXCLUSIVE, "a")
    with pytest.raises(ConsumerBusyError, match="Exclusive consumer is already connected"):
        await subscribe(broker, "t", EXCLUSIVE, "b")
    with pytest.raises(SubscriptionTypeMismatchError):
        await subscribe(broker, "t", SubscriptionType.SHARED, "b")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2")
    assert texts(await drain(a)) == ["m1", "m2"]


async def test_case_4_redeliver_skips_individually_acked(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", EXCLUSIVE, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5")
    got = await drain(consumer, ack=False)
    await consumer.acknowledge(got[0])
    await consumer.acknowledge(got[2])
    await consumer.redeliver_unacknowledged_messages()
    again = await drain(consumer, ack=False)
    assert texts(again) == ["m2", "m4", "m5"]
    assert all(m.redelivery_count == 0 for m in again)


async def test_case_5_cumulative_ack_then_reconnect(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", EXCLUSIVE, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5")
    got = await drain(consumer, ack=False)
    await consumer.acknowledge_cumulative(got[2])
    await consumer.close()
    again = await subscribe(broker, "t", EXCLUSIVE, "a2")
    assert texts(await drain(again, ack=False)) == ["m4", "m5"]


async def test_case_6_nack_rewinds_everything_after_delay(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", EXCLUSIVE, "a", negative_ack_redelivery_delay=1.0)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5")
    got = [await consumer.receive(1) for _ in range(5)]
    start = loop.time()
    await consumer.negative_acknowledge(got[2])
    first = await consumer.receive(5)
    assert loop.time() - start >= 1.0
    rest = await drain(consumer, ack=False)
    assert texts([first, *rest]) == ["m1", "m2", "m3", "m4", "m5"]


async def test_case_7_and_8_no_delay_no_dead_letters(broker: MemoryBroker) -> None:
    consumer = await subscribe(
        broker,
        "t",
        EXCLUSIVE,
        "a",
        negative_ack_redelivery_delay=0.1,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1),
    )
    dlq = await subscribe(broker, "t-sub-DLQ", EXCLUSIVE, "dlq")
    producer = await broker.create_producer("t", batching=None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await producer.send(b"m1", deliver_after=10)
    message = await consumer.receive(1)
    assert loop.time() - start < 1  # delivered at once on Exclusive
    for _ in range(5):
        assert message.redelivery_count == 0
        await consumer.negative_acknowledge(message)
        message = await consumer.receive(5)
    assert texts([message]) == ["m1"]
    assert await drain(dlq) == []


class Candidate:
    """A consumer as the active-consumer selector sees it."""

    def __init__(self, name: str, priority: int = 0) -> None:
        self.name = name
        self.priority = priority


def test_case_9_failover_ring_vectors() -> None:
    picks = []
    for i in (1, 2, 3, 4):
        selector = ActiveConsumerSelector[Candidate](f"persistent://public/default/t{i}", None)
        for name in ("consumer-a", "consumer-b"):
            selector.add(Candidate(name))
        active = selector.active()
        assert active is not None
        picks.append(active.name)
    assert picks == ["consumer-a", "consumer-b", "consumer-a", "consumer-a"]


async def test_case_9_one_active_on_non_partitioned_topic(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t1", FAILOVER, "consumer-a")
    b = await subscribe(broker, "t1", FAILOVER, "consumer-b")
    producer = await broker.create_producer("t1", batching=None)
    await send(producer, *(f"m{i}" for i in range(10)))
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert len(got_a) == 10
    assert got_b == []


async def test_case_10_switch_over_starts_at_first_unacked(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t1", FAILOVER, "consumer-a")
    b = await subscribe(broker, "t1", FAILOVER, "consumer-b")
    producer = await broker.create_producer("t1", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5")
    got = [await a.receive(1) for _ in range(5)]
    await a.acknowledge(got[0])
    await a.acknowledge(got[1])
    assert await drain(b) == []
    await a.close()
    await send(producer, "m6")
    assert texts(await drain(b)) == ["m3", "m4", "m5", "m6"]


async def test_case_11_partition_assignment(broker: MemoryBroker) -> None:
    await broker.create_topic("p4", partitions=4)
    a = await subscribe(broker, "p4", FAILOVER, "A")
    b = await subscribe(broker, "p4", FAILOVER, "B")
    producer = await broker.create_producer("p4", batching=None)
    await send(producer, *(f"m{i}" for i in range(8)))
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert {m.message_id.partition for m in got_a} == {0, 2}
    assert {m.message_id.partition for m in got_b} == {1, 3}


async def test_case_12_partitions_move_when_actives_leave(broker: MemoryBroker) -> None:
    await broker.create_topic("p2", partitions=2)
    consumers = {n: await subscribe(broker, "p2", FAILOVER, n) for n in "ABCD"}
    producer = await broker.create_producer("p2", batching=None)
    await send(producer, "x0", "x1")
    got = dict(
        zip("ABCD", await asyncio.gather(*(drain(c) for c in consumers.values())), strict=True)
    )
    assert [m.message_id.partition for m in got["A"]] == [0]
    assert [m.message_id.partition for m in got["B"]] == [1]
    await consumers["A"].close()
    await consumers["B"].close()
    await send(producer, "y0", "y1")
    got_c, got_d = await asyncio.gather(drain(consumers["C"]), drain(consumers["D"]))
    assert [m.message_id.partition for m in got_c] == [0]
    assert [m.message_id.partition for m in got_d] == [1]


async def test_case_13_priority_beats_name(broker: MemoryBroker) -> None:
    await broker.create_topic("prio", partitions=2)
    a = await subscribe(broker, "prio", FAILOVER, "A", priority_level=1)
    b = await subscribe(broker, "prio", FAILOVER, "B", priority_level=0)
    producer = await broker.create_producer("prio", batching=None)
    await send(producer, "m0", "m1", "m2", "m3")
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    assert got_a == []
    assert len(got_b) == 4


async def test_case_14_failover_delay() -> None:
    loop = asyncio.get_running_loop()
    async with MemoryBroker(MemoryBrokerConfig(failover_delay=1.0)) as broker:
        producer = await broker.create_producer("t1", batching=None)
        await send(producer, "m1", "m2", "m3")
        start = loop.time()
        a = await subscribe(broker, "t1", FAILOVER, "consumer-a")
        b = await subscribe(broker, "t1", FAILOVER, "consumer-b")
        # The first active consumer also waits for the delay (Pulsar schedules the rewind).
        first = await a.receive(5)
        assert loop.time() - start >= 1.0
        await a.acknowledge(first)
        await a.close()
        switched = loop.time()
        message = await b.receive(5)
        assert loop.time() - switched >= 1.0
        assert texts([message, *await drain(b)]) == ["m2", "m3"]


async def test_case_15_cumulative_ack_on_failover(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", FAILOVER, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4")
    got = await drain(a, ack=False)
    await a.acknowledge_cumulative(got[2])
    await a.redeliver_unacknowledged_messages()
    assert texts(await drain(a, ack=False)) == ["m4"]


async def test_newcomer_with_smaller_name_takes_over(broker: MemoryBroker) -> None:
    await broker.create_topic("take", partitions=1)
    z = await subscribe(broker, "take", FAILOVER, "z")
    producer = await broker.create_producer("take", batching=None)
    await send(producer, "m1")
    assert texts(await drain(z, ack=False)) == ["m1"]
    a = await subscribe(broker, "take", FAILOVER, "a")
    # The unacked m1 is replayed to the new active consumer (a duplicate, as in Pulsar).
    await send(producer, "m2")
    assert texts(await drain(a)) == ["m1", "m2"]
    assert await drain(z) == []


async def test_exclusive_permits_bound_the_prefetch(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", EXCLUSIVE, "a", receiver_queue_size=5)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, *(f"m{i}" for i in range(20)))
    await asyncio.sleep(0.1)
    assert len(consumer._queue) == 5  # type: ignore[attr-defined]
    # The client returns permits once half the queue (5 // 2 = 2) was consumed.
    got = [await consumer.receive(0)]
    await asyncio.sleep(0.1)
    assert len(consumer._queue) == 4  # type: ignore[attr-defined]
    got.append(await consumer.receive(0))
    await asyncio.sleep(0.1)
    assert len(consumer._queue) == 5  # type: ignore[attr-defined]
    got.append(await consumer.receive(0))
    assert texts(got) == ["m0", "m1", "m2"]


async def test_latest_position_skips_older_messages(broker: MemoryBroker) -> None:
    producer = await broker.create_producer("late", batching=None)
    await send(producer, "old")
    consumer = await broker.subscribe(
        "late", "s", consumer_name="c", initial_position=InitialPosition.LATEST
    )
    await send(producer, "new")
    assert texts(await drain(consumer)) == ["new"]


async def test_ack_timeout_on_exclusive_rewinds_everything(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", EXCLUSIVE, "a", ack_timeout=10)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    got = [await consumer.receive(1) for _ in range(3)]
    await consumer.acknowledge(got[1])
    start = loop.time()
    again = [await consumer.receive(30), await consumer.receive(1)]
    assert 10.0 <= loop.time() - start <= 11.0
    assert texts(again) == ["m1", "m3"]
    assert [m.redelivery_count for m in again] == [0, 0]
