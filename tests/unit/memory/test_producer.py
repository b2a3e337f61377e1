"""Producer: batching containers, partition routing, delayed messages, bad input."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from keylane.brokers.base import BatchingType, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from keylane.hashing import partition_for_key
from tests.unit.memory.conftest import drain, subscribe, texts

pytestmark = pytest.mark.looptime


def entries_of(broker: MemoryBroker, topic: str) -> list[list[str]]:
    """Payloads per stored entry of a non-partitioned topic."""
    log = broker._logs[f"persistent://public/default/{topic}"]
    return [[m[0].decode() for m in e.messages] for e in log.entries]


async def test_key_based_batching_keeps_one_batch_per_key(broker: MemoryBroker) -> None:
    # Given a KEY_BASED producer whose batches fill at 6 messages
    producer = await broker.create_producer(
        "kb", batching=BatchingType.KEY_BASED, batching_max_messages=6
    )
    keys = ["a", "b", "a", "c", "b", "a"]
    # When 6 messages are sent concurrently
    ids = await asyncio.gather(
        *(producer.send(f"m{i}".encode(), key=k) for i, k in enumerate(keys))
    )
    # Then each key became its own entry, in order of first appearance
    assert entries_of(broker, "kb") == [["m0", "m2", "m5"], ["m1", "m4"], ["m3"]]
    assert [(i.entry_id, i.batch_index) for i in ids] == [
        (0, 0),
        (1, 0),
        (0, 1),
        (2, 0),
        (1, 1),
        (0, 2),
    ]


async def test_key_based_batches_by_ordering_key_first(broker: MemoryBroker) -> None:
    producer = await broker.create_producer(
        "kbo", batching=BatchingType.KEY_BASED, batching_max_messages=3
    )
    await asyncio.gather(
        producer.send(b"m0", key="p1", ordering_key="o"),
        producer.send(b"m1", key="p2", ordering_key="o"),
        producer.send(b"m2", key="p1"),
    )
    assert entries_of(broker, "kbo") == [["m0", "m1"], ["m2"]]
    log = broker._logs["persistent://public/default/kbo"]
    assert log.entries[0].sticky_key == "o"


async def test_default_batching_mixes_keys_in_one_entry(broker: MemoryBroker) -> None:
    producer = await broker.create_producer(
        "def", batching=BatchingType.DEFAULT, batching_max_messages=3
    )
    await asyncio.gather(*(producer.send(f"m{i}".encode(), key=k) for i, k in enumerate("ABC")))
    assert entries_of(broker, "def") == [["m0", "m1", "m2"]]
    # The whole batch routes by its first message's key.
    assert broker._logs["persistent://public/default/def"].entries[0].sticky_key == "A"


async def test_enqueued_batch_flushes_after_publish_delay(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    producer = await broker.create_producer(
        "delay", batching=BatchingType.DEFAULT, batching_max_publish_delay=0.5
    )
    start = loop.time()
    future = await producer.enqueue(b"m0")
    await asyncio.sleep(0.4)
    assert not future.done()
    assert entries_of(broker, "delay") == []
    mid = await future
    assert loop.time() - start == pytest.approx(0.5, abs=0.01)
    assert (mid.entry_id, mid.batch_index) == (0, 0)


async def test_awaited_send_closes_its_batch_at_the_end_of_the_iteration(
    broker: MemoryBroker,
) -> None:
    # Given a batching producer with a long publish delay
    loop = asyncio.get_running_loop()
    producer = await broker.create_producer(
        "now", batching=BatchingType.DEFAULT, batching_max_publish_delay=60
    )
    start = loop.time()
    # When two sends start in the same iteration and a third after them
    first = await asyncio.gather(producer.send(b"m0"), producer.send(b"m1"))
    third = await producer.send(b"m2")
    # Then no send waited for the delay, and the concurrent two shared one batch
    assert loop.time() == start
    assert entries_of(broker, "now") == [["m0", "m1"], ["m2"]]
    assert [(i.entry_id, i.batch_index) for i in (*first, third)] == [(0, 0), (0, 1), (1, 0)]


async def test_flush_and_close_store_open_batches(broker: MemoryBroker) -> None:
    producer = await broker.create_producer("fl", batching=BatchingType.KEY_BASED)
    t1 = asyncio.ensure_future(producer.send(b"m0", key="a"))
    t2 = asyncio.ensure_future(producer.send(b"m1", key="b"))
    await asyncio.sleep(0)
    await producer.flush()
    await asyncio.gather(t1, t2)
    assert entries_of(broker, "fl") == [["m0"], ["m1"]]
    t3 = asyncio.ensure_future(producer.send(b"m2", key="a"))
    await asyncio.sleep(0)
    await producer.close()
    assert (await t3).entry_id == 2
    with pytest.raises(AlreadyClosedError):
        await producer.send(b"late")


async def test_delayed_message_is_never_batched(broker: MemoryBroker) -> None:
    producer = await broker.create_producer("dl", batching=BatchingType.DEFAULT)
    first = asyncio.ensure_future(producer.send(b"m0"))
    await asyncio.sleep(0)
    # The delayed send flushes the open batch first, so order on the partition is kept.
    delayed = await producer.send(b"m1", deliver_after=5)
    await first
    assert entries_of(broker, "dl") == [["m0"], ["m1"]]
    assert delayed.batch_index == -1


async def test_key_routing_follows_partition_key_only(broker: MemoryBroker) -> None:
    await broker.create_topic("routed", partitions=3)
    producer = await broker.create_producer("routed", batching=None)
    mid = await producer.send(b"x", key="key-1")
    assert mid.partition == partition_for_key("key-1", 3) == 1
    # Case 50: the ordering key never influences routing.
    for i in range(6):
        mid = await producer.send(b"y", key=f"p{i}", ordering_key="same")
        assert mid.partition == partition_for_key(f"p{i}", 3)


async def test_round_robin_without_key_and_without_batching(broker: MemoryBroker) -> None:
    # Case 51: 8 sends over 4 partitions hit each twice, cyclically.
    await broker.create_topic("rr", partitions=4)
    producer = await broker.create_producer("rr", batching=None)
    parts = [(await producer.send(b"x")).partition for _ in range(8)]
    assert Counter(parts) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert all(parts[i + 1] == (parts[i] + 1) % 4 for i in range(7))


async def test_round_robin_with_batching_stays_until_batch_boundary(broker: MemoryBroker) -> None:
    await broker.create_topic("rrb", partitions=4)
    producer = await broker.create_producer(
        "rrb", batching=BatchingType.DEFAULT, batching_max_messages=5
    )
    ids = await asyncio.gather(*(producer.send(f"m{i}".encode()) for i in range(10)))
    parts = [i.partition for i in ids]
    # Five messages per partition: one full batch each.
    assert parts[:5] == [parts[0]] * 5
    assert parts[5:] == [parts[5]] * 5
    assert parts[0] != parts[5]


async def test_message_topic_and_ids_on_partitions(broker: MemoryBroker) -> None:
    await broker.create_topic("parts", partitions=2)
    consumer = await subscribe(broker, "parts", SubscriptionType.EXCLUSIVE, "c")
    producer = await broker.create_producer("parts", batching=None)
    await producer.send(b"a", key="key-1")
    [message] = await drain(consumer)
    index = partition_for_key("key-1", 2)
    assert message.topic == f"persistent://public/default/parts-partition-{index}"
    assert message.message_id.partition == index


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"key": 3}, "key must be a str"),
        ({"ordering_key": b"x"}, "ordering_key must be a str"),
        ({"properties": {"a": 1}}, "properties must map str to str"),
        ({"properties": ["a"]}, "properties must be a mapping"),
        ({"deliver_after": -1}, "must not be negative"),
        ({"deliver_after": 1, "deliver_at": 5.0}, "not both"),
        ({"deliver_at": "soon"}, "deliver_at must be a datetime"),
        ({"deliver_at": -5.0}, "must not be negative"),
        ({"event_time": "now"}, "event_time must be seconds"),
    ],
)
async def test_bad_send_arguments(
    broker: MemoryBroker, kwargs: dict[str, object], match: str
) -> None:
    producer = await broker.create_producer("bad", batching=None)
    with pytest.raises(InvalidArgumentError, match=match):
        await producer.send(b"x", **kwargs)  # type: ignore[arg-type]
    # Nothing was stored, and the producer still works.
    assert entries_of(broker, "bad") == []
    await producer.send(b"ok")
    assert entries_of(broker, "bad") == [["ok"]]


@pytest.mark.parametrize("data", ["text", bytearray(b"x"), None, 5])
async def test_payload_must_be_bytes(broker: MemoryBroker, data: object) -> None:
    producer = await broker.create_producer("payload", batching=None)
    with pytest.raises(InvalidArgumentError, match="data must be bytes"):
        await producer.send(data)  # type: ignore[arg-type]


async def test_deliver_at_forms(broker: MemoryBroker) -> None:
    loop = asyncio.get_running_loop()
    producer = await broker.create_producer("when", batching=None)
    now = datetime.now(UTC)
    await producer.send(b"a", deliver_at=now + timedelta(seconds=30))
    await producer.send(b"b", deliver_at=now.timestamp() + 60)
    await producer.send(b"c", deliver_after=timedelta(seconds=5))
    entries = broker._logs["persistent://public/default/when"].entries
    delays = [e.deliver_at - loop.time() for e in entries if e.deliver_at is not None]
    assert [math.floor(d + 0.5) for d in delays] == [30, 60, 5]


async def test_bad_producer_options(broker: MemoryBroker) -> None:
    with pytest.raises(InvalidArgumentError, match="batching_max_messages"):
        await broker.create_producer("x", batching_max_messages=0)
    with pytest.raises(InvalidArgumentError, match="batching_max_publish_delay"):
        await broker.create_producer("x", batching_max_publish_delay=-1)
    with pytest.raises(InvalidArgumentError, match="batching must be"):
        await broker.create_producer("x", batching="KeyBased")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="topic name must not be empty"):
        await broker.create_producer("  ")
    with pytest.raises(InvalidArgumentError, match="malformed topic"):
        await broker.create_producer("a/b")


async def test_send_resolves_for_every_message_of_a_batch(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "all", SubscriptionType.EXCLUSIVE, "c")
    producer = await broker.create_producer("all", batching=BatchingType.KEY_BASED)
    ids = await asyncio.gather(
        *(producer.send(f"m{i}".encode(), key=f"k{i % 3}") for i in range(30))
    )
    assert len(set(ids)) == 30
    received = await drain(consumer)
    assert sorted(texts(received)) == sorted(f"m{i}" for i in range(30))
    assert {m.message_id for m in received} == set(ids)
