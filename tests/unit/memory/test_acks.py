"""Acknowledgement paths, dead letters and redelivery timers of the embedded broker."""

from __future__ import annotations

import asyncio
import time

import pytest

from keylane.brokers.base import (
    DeadLetterPolicy,
    InitialPosition,
    MessageId,
    SubscriptionType,
)
from keylane.brokers.memory import MemoryBroker
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from tests.unit.memory.conftest import drain, send, subscribe, texts

pytestmark = pytest.mark.looptime

SHARED = SubscriptionType.SHARED


async def test_virtual_time_makes_long_timeouts_free(broker: MemoryBroker) -> None:
    # looptime fast-forwards the loop clock the broker runs on: 30 s of ack timeouts in no time.
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", SHARED, "a", ack_timeout=10)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    wall, virtual = time.monotonic(), loop.time()
    counts = []
    for _ in range(3):
        counts.append((await consumer.receive(60)).redelivery_count)
    assert counts == [0, 1, 2]
    assert loop.time() - virtual >= 20
    assert time.monotonic() - wall < 10


async def test_case_25_dead_letter_after_max_redeliveries(broker: MemoryBroker) -> None:
    consumer = await subscribe(
        broker,
        "t",
        SHARED,
        "a",
        negative_ack_redelivery_delay=0.1,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=2),
    )
    producer = await broker.create_producer("t", batching=None)
    original = await producer.send(b"m1", key="k1", properties={"app": "x"})
    counts = []
    while True:
        try:
            message = await consumer.receive(2)
        except TimeoutError:
            break
        counts.append(message.redelivery_count)
        await consumer.negative_acknowledge(message)
    assert counts == [0, 1, 2]
    dlq = await subscribe(broker, "t-sub-DLQ", SHARED, "d")
    [dead] = await drain(dlq)
    assert dead.data == b"m1"
    assert dead.key == "k1"
    assert dead.properties["app"] == "x"
    assert dead.properties["ORIGIN_MESSAGE_ID"] == str(original)
    assert dead.properties["REAL_TOPIC"] == "persistent://public/default/t"
    # The original is acknowledged: nothing comes back, even after a reconnect.
    await consumer.close()
    again = await subscribe(broker, "t", SHARED, "b")
    assert await drain(again) == []


async def test_case_26_custom_dead_letter_topic_and_initial_subscription(
    broker: MemoryBroker,
) -> None:
    policy = DeadLetterPolicy(
        max_redeliver_count=1, dead_letter_topic="my-dlq", initial_subscription_name="keep"
    )
    consumer = await subscribe(
        broker, "t", SHARED, "a", negative_ack_redelivery_delay=0.1, dead_letter_policy=policy
    )
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2")
    for _ in range(4):
        await consumer.negative_acknowledge(await consumer.receive(2))
    assert await drain(consumer, quiet=1) == []
    # The initial subscription existed before the first dead letter, so none was lost.
    keeper = await broker.subscribe(
        "my-dlq", "keep", subscription_type=SHARED, initial_position=InitialPosition.LATEST
    )
    assert sorted(texts(await drain(keeper))) == ["m1", "m2"]
    assert await broker.topic_partitions("t-sub-DLQ") == ["persistent://public/default/t-sub-DLQ"]


async def test_dead_letter_topic_is_per_partition(broker: MemoryBroker) -> None:
    await broker.create_topic("pt", partitions=2)
    consumer = await subscribe(
        broker,
        "pt",
        SHARED,
        "a",
        negative_ack_redelivery_delay=0.1,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1),
    )
    producer = await broker.create_producer("pt", batching=None)
    mid = await producer.send(b"m1", key="key-1")
    for _ in range(2):
        await consumer.negative_acknowledge(await consumer.receive(2))
    await asyncio.sleep(1)
    dlq_topic = f"pt-partition-{mid.partition}-sub-DLQ"
    dlq = await subscribe(broker, dlq_topic, SHARED, "d")
    assert texts(await drain(dlq)) == ["m1"]


async def test_ack_by_message_id(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a", negative_ack_redelivery_delay=0.1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2")
    m1, m2 = await consumer.receive(1), await consumer.receive(1)
    await consumer.acknowledge(m1.message_id)
    await consumer.negative_acknowledge(m2.message_id)
    assert texts(await drain(consumer, quiet=1)) == ["m2"]


async def test_ack_of_another_subscription_or_topic_is_refused(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a", subscription="one")
    b = await subscribe(broker, "t", SHARED, "b", subscription="two")
    other = await subscribe(broker, "u", SHARED, "c", subscription="one")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    message = await a.receive(1)
    with pytest.raises(InvalidArgumentError, match="was not received on subscription 'two'"):
        await b.acknowledge(message)
    with pytest.raises(InvalidArgumentError, match="does not belong to"):
        await other.acknowledge(message.message_id)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        await a.acknowledge(MessageId(-1, message.message_id.ledger_id, 99))
    with pytest.raises(InvalidArgumentError, match="expected a Message or MessageId"):
        await a.acknowledge("m1")  # type: ignore[arg-type]
    # Subscription "two" still has its own copy, unacknowledged.
    assert texts(await drain(b)) == ["m1"]
    await a.acknowledge(message)


async def test_ack_through_another_consumer_of_the_subscription(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a")
    b = await subscribe(broker, "t", SHARED, "b")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    await asyncio.sleep(0.01)
    holder, other = (a, b) if a._queue else (b, a)  # type: ignore[attr-defined]
    message = await holder.receive(1)
    await other.acknowledge(message)
    await holder.close()
    assert await drain(other) == []


async def test_operations_after_close(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    message = await consumer.receive(1)
    await consumer.close()
    await consumer.close()  # idempotent
    for call in (
        consumer.receive(1),
        consumer.acknowledge(message),
        consumer.negative_acknowledge(message),
        consumer.redeliver_unacknowledged_messages(),
        consumer.unsubscribe(),
    ):
        with pytest.raises(AlreadyClosedError):
            await call


async def test_close_wakes_a_waiting_receive(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a")
    waiting = asyncio.ensure_future(consumer.receive())
    await asyncio.sleep(0.1)
    await consumer.close()
    with pytest.raises(AlreadyClosedError):
        await waiting


async def test_close_discards_prefetched_messages(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    first = await a.receive(1)
    assert texts([first]) == ["m1"]
    await a.close()
    b = await subscribe(broker, "t", SHARED, "b")
    # The received m1 and the prefetched m2, m3 were all unacknowledged at the broker.
    assert sorted(texts(await drain(b))) == ["m1", "m2", "m3"]


async def test_receive_timeouts(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    consumer = await subscribe(broker, "t", SHARED, "a")
    with pytest.raises(TimeoutError):
        await consumer.receive(0)
    start = loop.time()
    with pytest.raises(TimeoutError):
        await consumer.receive(2.5)
    assert loop.time() - start == pytest.approx(2.5, abs=0.01)
    with pytest.raises(InvalidArgumentError, match="must not be negative"):
        await consumer.receive(-1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    await asyncio.sleep(0.01)
    assert texts([await consumer.receive(0)]) == ["m1"]


async def test_concurrent_receivers_each_get_a_message(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a")
    waiters = [asyncio.ensure_future(consumer.receive(5)) for _ in range(3)]
    await asyncio.sleep(0.1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3")
    got = await asyncio.gather(*waiters)
    assert sorted(texts(got)) == ["m1", "m2", "m3"]


async def test_cancelled_receive_passes_the_message_on(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", SHARED, "a")
    first = asyncio.ensure_future(consumer.receive())
    second = asyncio.ensure_future(consumer.receive(5))
    await asyncio.sleep(0.1)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    first.cancel()
    assert texts([await second]) == ["m1"]


async def test_unsubscribe(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", SHARED, "a")
    b = await subscribe(broker, "t", SHARED, "b")
    with pytest.raises(Exception, match="other connected consumers"):
        await a.unsubscribe()
    await b.close()
    await a.unsubscribe()
    log = broker._logs["persistent://public/default/t"]
    assert "sub" not in log.subscriptions


async def test_ack_timeout_of_a_whole_batch(broker: MemoryBroker) -> None:
    from keylane.brokers.base import BatchingType

    consumer = await subscribe(broker, "t", SHARED, "a", ack_timeout=10)
    producer = await broker.create_producer("t", batching=BatchingType.DEFAULT)
    await asyncio.gather(*(producer.send(f"m{i}".encode()) for i in range(3)))
    first = [await consumer.receive(1) for _ in range(3)]
    assert [m.redelivery_count for m in first] == [0, 0, 0]
    # All three time out together; the entry is redelivered once, as a whole.
    again = [await consumer.receive(30) for _ in range(3)]
    assert texts(again) == ["m0", "m1", "m2"]
    assert [m.redelivery_count for m in again] == [1, 1, 1]
