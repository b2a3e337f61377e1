"""Producer routing on partitioned topics: Murmur3_32 keys, round robin (spec 3, cases 49-51).

keylane routes keyed messages with Murmur3_32 (``keylane.hashing.partition_for_key``) on every
backend; case 52 (SinglePartition mode) is not part of the contract (no routing-mode option).
"""

from __future__ import annotations

from keylane.brokers.base import SubscriptionType
from keylane.hashing import partition_for_key
from tests.contract.support import Backend, text

EXCLUSIVE = SubscriptionType.EXCLUSIVE


def partition_of_topic(topic: str, partition_topic: str) -> int:
    prefix = f"{topic}-partition-"
    assert partition_topic.startswith(prefix), partition_topic
    return int(partition_topic[len(prefix) :])


async def test_c49_keys_route_by_murmur3(backend: Backend) -> None:
    # Given a 3-partition topic
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=3)
    assert await backend.broker.topic_partitions(topic) == [
        f"{topic}-partition-{p}" for p in range(3)
    ]
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    producer = await backend.producer(topic)
    # When key "key-1" (and a few more keys) are sent
    keys = ["key-1", *(f"key-{i}" for i in range(2, 12))]
    ids = {k: await producer.send(k.encode(), key=k) for k in keys}
    # Then "key-1" lands on partition 414258592 % 3 = 1, every key on murmur31(key) % 3
    assert ids["key-1"].partition == 1
    assert {k: i.partition for k, i in ids.items()} == {k: partition_for_key(k, 3) for k in keys}
    received = await backend.drain(consumer)
    assert sorted(text(m) for m in received) == sorted(keys)
    for m in received:
        assert partition_of_topic(topic, m.topic) == partition_for_key(text(m), 3)
        assert m.message_id == ids[text(m)]


async def test_c50_ordering_key_never_routes(backend: Backend) -> None:
    # Given a 4-partition topic
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=4)
    producer = await backend.producer(topic)
    # When messages share an ordering key but have different partition keys
    keys = [f"user-{i}" for i in range(12)]
    keyed = [await producer.send(b"x", key=k, ordering_key="same") for k in keys]
    # Then routing follows the partition key
    assert [i.partition for i in keyed] == [partition_for_key(k, 4) for k in keys]
    assert len({i.partition for i in keyed}) > 1
    # When messages have only the ordering key
    unkeyed = [await producer.send(b"y", ordering_key="same") for _ in range(8)]
    # Then they are spread round robin, not pinned by the ordering key
    assert len({i.partition for i in unkeyed}) == 4


async def test_c51_round_robin_without_keys(backend: Backend) -> None:
    # Given a 4-partition topic, round robin, batching disabled and no keys
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=4)
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    producer = await backend.producer(topic, batching=None)
    # When 8 consecutive messages are sent
    ids = [await producer.send(f"m{i}".encode()) for i in range(8)]
    # Then each partition is hit exactly twice, in cyclic order from some start
    start = ids[0].partition
    assert [i.partition for i in ids] == [(start + n) % 4 for n in range(8)]
    received = await backend.drain(consumer)
    assert sorted(text(m) for m in received) == [f"m{i}" for i in range(8)]
