"""MemoryBroker: topics, partitions, subscribe-time validation, lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from keylane.bench.broker import bench_broker
from keylane.brokers import connect
from keylane.brokers.base import (
    BatchingType,
    InitialPosition,
    KeySharedMode,
    KeySharedPolicy,
    SubscriptionType,
)
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from tests.unit.memory.conftest import drain, send, subscribe, texts

pytestmark = pytest.mark.looptime


async def test_connect_gives_a_memory_broker() -> None:
    broker = connect("memory://")
    assert isinstance(broker, MemoryBroker)
    async with broker:
        assert await broker.topic_partitions("x") == ["persistent://public/default/x"]


async def test_partitioned_topic_names(broker: MemoryBroker) -> None:
    await broker.create_topic("tenant/ns/orders", partitions=3)
    assert await broker.topic_partitions("persistent://tenant/ns/orders") == [
        f"persistent://tenant/ns/orders-partition-{i}" for i in range(3)
    ]
    await broker.create_topic("tenant/ns/orders", partitions=3)  # idempotent
    with pytest.raises(InvalidArgumentError, match="already exists with 3 partitions"):
        await broker.create_topic("tenant/ns/orders", partitions=2)
    with pytest.raises(InvalidArgumentError, match="partitions must be"):
        await broker.create_topic("y", partitions=-1)
    await broker.create_topic("plain")
    with pytest.raises(InvalidArgumentError, match="not partitioned"):
        await broker.create_topic("plain", partitions=2)


async def test_consumer_of_a_partitioned_topic_reads_every_partition(broker: MemoryBroker) -> None:
    await broker.create_topic("p", partitions=3)
    consumer = await subscribe(broker, "p", SubscriptionType.SHARED, "c")
    producer = await broker.create_producer("p", batching=None)
    await send(producer, *(f"m{i}" for i in range(12)))
    got = await drain(consumer)
    assert sorted(texts(got)) == sorted(f"m{i}" for i in range(12))
    assert {m.message_id.partition for m in got} == {0, 1, 2}
    assert consumer.topic == "persistent://public/default/p"


async def test_a_single_partition_can_be_consumed_directly(broker: MemoryBroker) -> None:
    await broker.create_topic("p", partitions=2)
    consumer = await subscribe(broker, "p-partition-1", SubscriptionType.EXCLUSIVE, "c")
    producer = await broker.create_producer("p", batching=None)
    await send(producer, *(f"m{i}" for i in range(6)))
    got = await drain(consumer)
    assert len(got) == 3
    assert {m.message_id.partition for m in got} == {1}


async def test_implicit_topic_creation(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "implicit", SubscriptionType.EXCLUSIVE, "c")
    producer = await broker.create_producer("implicit", batching=None)
    await send(producer, "m1")
    assert texts(await drain(consumer)) == ["m1"]


async def test_earliest_sees_messages_from_before_the_subscription(broker: MemoryBroker) -> None:
    producer = await broker.create_producer("early", batching=None)
    await send(producer, "m1", "m2")
    consumer = await broker.subscribe(
        "early", "s", initial_position=InitialPosition.EARLIEST, consumer_name="c"
    )
    assert texts(await drain(consumer)) == ["m1", "m2"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"receiver_queue_size": 0}, InvalidArgumentError, "receiver_queue_size"),
        ({"priority_level": -1}, InvalidArgumentError, "priority_level"),
        ({"ack_timeout": 9.9}, InvalidArgumentError, "greater than 10 seconds"),
        ({"negative_ack_redelivery_delay": 0.05}, InvalidArgumentError, "at least 0.1"),
        ({"subscription_type": "Shared"}, InvalidArgumentError, "unknown subscription_type"),
        ({"consumer_name": ""}, InvalidArgumentError, "consumer_name"),
        ({"initial_position": "Earliest"}, InvalidArgumentError, "initial_position"),
        ({"dead_letter_policy": 3}, InvalidArgumentError, "dead_letter_policy"),
        ({"key_shared_policy": "sticky"}, InvalidArgumentError, "key_shared_policy"),
    ],
)
async def test_bad_subscribe_arguments_change_nothing(
    broker: MemoryBroker, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    first = await subscribe(broker, "t", SubscriptionType.SHARED, "first")
    options: dict[str, object] = {"subscription_type": SubscriptionType.SHARED}
    options.update(kwargs)
    with pytest.raises(error, match=match):
        await broker.subscribe("t", "sub", **options)  # type: ignore[arg-type]
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    assert texts(await drain(first)) == ["m1"]
    log = broker._logs["persistent://public/default/t"]
    assert [c.name for c in log.subscriptions["sub"].consumers] == ["first"]


async def test_bad_topic_and_subscription_names(broker: MemoryBroker) -> None:
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        await broker.subscribe("", "s")
    with pytest.raises(InvalidArgumentError, match="unknown topic domain"):
        await broker.subscribe("http://x/y/z", "s")
    with pytest.raises(InvalidArgumentError, match="subscription name"):
        await broker.subscribe("t", " ")
    assert broker._logs == {}


async def test_rejected_sticky_consumer_leaves_no_subscription_behind(
    broker: MemoryBroker,
) -> None:
    await broker.create_topic("p", partitions=2)
    # A partition-level consumer already holds the whole range on partition 1 only.
    holder = await broker.subscribe(
        "p-partition-1",
        "s",
        subscription_type=SubscriptionType.KEY_SHARED,
        key_shared_policy=KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 65535)]),
    )
    with pytest.raises(Exception, match="Range conflict"):
        await broker.subscribe(
            "p",
            "s",
            subscription_type=SubscriptionType.KEY_SHARED,
            key_shared_policy=KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 9)]),
        )
    # Partition 0 got no subscription (it was created for the attempt and removed again).
    assert "s" not in broker._logs["persistent://public/default/p-partition-0"].subscriptions
    assert [
        c.name
        for c in broker._logs["persistent://public/default/p-partition-1"]
        .subscriptions["s"]
        .consumers
    ] == [holder.consumer_name]


async def test_closed_broker_refuses_work() -> None:
    broker = MemoryBroker()
    async with broker:
        consumer = await broker.subscribe("t", "s")
        producer = await broker.create_producer("t")
    with pytest.raises(AlreadyClosedError):
        await consumer.receive(0)
    with pytest.raises(AlreadyClosedError):
        await producer.send(b"x")
    with pytest.raises(AlreadyClosedError):
        await broker.subscribe("t", "s")
    with pytest.raises(AlreadyClosedError):
        await broker.create_topic("t")
    await broker.close()  # idempotent


def test_config_validation() -> None:
    with pytest.raises(InvalidArgumentError, match="failover_delay"):
        MemoryBrokerConfig(failover_delay=-1)
    with pytest.raises(InvalidArgumentError, match="key_shared_replica_points"):
        MemoryBrokerConfig(key_shared_replica_points=0)
    with pytest.raises(InvalidArgumentError, match="must be a bool"):
        MemoryBrokerConfig(delayed_delivery_strict=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="must be an int"):
        MemoryBrokerConfig(max_unacked_per_consumer=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="config must be"):
        MemoryBroker({"failover_delay": 0})  # type: ignore[arg-type]
    assert MemoryBrokerConfig().failover_delay == 1.0


def test_constructor_does_no_io() -> None:
    # No running loop is needed to build a broker.
    broker = MemoryBroker()
    assert broker._loop is None


async def test_log_is_trimmed_once_everything_is_acknowledged(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "trim", SubscriptionType.SHARED, "c")
    producer = await broker.create_producer("trim", batching=None)
    draining = asyncio.ensure_future(drain(consumer))
    for i in range(10000):
        await producer.send(b"x")
        if i % 100 == 0:
            await asyncio.sleep(0)
    assert len(await draining) == 10000
    log = broker._logs["persistent://public/default/trim"]
    assert log.base >= 4096
    assert len(log.entries) <= 10000 - log.base
    assert log.end == 10000


@pytest.mark.parametrize("sub_type", list(SubscriptionType))
@pytest.mark.parametrize("batching", [BatchingType.KEY_BASED, None])
async def test_bench_runs_on_the_memory_broker(
    sub_type: SubscriptionType, batching: BatchingType | None
) -> None:
    async with MemoryBroker(MemoryBrokerConfig(failover_delay=0)) as broker:
        result = await bench_broker(
            broker,
            subscription_type=sub_type,
            messages=2000,
            keys=50,
            consumers=1 if sub_type is SubscriptionType.EXCLUSIVE else 2,
            batching=batching,
        )
    assert result.messages == 2000
    assert sum(result.per_consumer) == 2000 + result.duplicates
    assert result.duplicates == 0
    assert result.msgs_per_second > 0
    if sub_type in (SubscriptionType.SHARED, SubscriptionType.KEY_SHARED):
        assert all(result.per_consumer)
    assert result.as_dict()["subscription_type"] == sub_type.value
