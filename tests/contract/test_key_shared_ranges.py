"""Key_Shared hash-range selectors: AUTO_SPLIT ranges and STICKY (spec 1.4.3 B-C, cases 32-37)."""

from __future__ import annotations

import pytest

from keylane.brokers.base import Broker, Consumer, KeySharedMode, KeySharedPolicy, SubscriptionType
from keylane.errors import InvalidArgumentError, StickyRangeConflictError
from keylane.hashing import slot_range
from tests.contract.reference import HashRangeAutoSplit, key_with_range_slot, sticky_owner
from tests.contract.support import Backend, texts

KEY_SHARED = SubscriptionType.KEY_SHARED
ORDER_KEY = "Order-3459134"  # hash-range slot 6067


def sticky(*ranges: tuple[int, int]) -> KeySharedPolicy:
    return KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=list(ranges))


async def deliveries(
    backend: Backend, broker: Broker, topic: str, consumers: dict[str, Consumer], keys: list[str]
) -> dict[str, str]:
    """Send one message per key; return key -> the consumer that received it."""
    producer = await backend.producer(topic, broker=broker)
    await backend.send_all(producer, keys, keys=keys)
    got = await backend.collect(consumers)
    where: dict[str, str] = {}
    for name, messages in got.items():
        for m in messages:
            assert m.sticky_key not in where, f"{m.sticky_key} delivered twice"
            where[m.sticky_key] = name
    return where


async def auto_split_layout(backend: Backend) -> tuple[Broker, str, dict[str, Consumer]]:
    broker = await backend.broker_with(key_shared_use_consistent_hashing=False)
    topic = backend.topic()
    consumers = {
        n: await backend.subscribe(topic, "sub", KEY_SHARED, broker=broker, consumer_name=n)
        for n in ("C1", "C2", "C3", "C4")
    }
    return broker, topic, consumers


async def test_c32_hash_range_auto_split_layout(backend: Backend) -> None:
    # Given consistent hashing off and AUTO_SPLIT consumers C1, C2, C3, C4 joining in order
    broker, topic, consumers = await auto_split_layout(backend)
    reference = HashRangeAutoSplit()
    for name in consumers:
        reference.add(name)
    # Then C3 owns [0,16384], C2 (16384,32768], C4 (32768,49152], C1 (49152,65536]
    probes = {
        ORDER_KEY: "C3",  # slot 6067
        key_with_range_slot(16384): "C3",
        key_with_range_slot(16385): "C2",
        key_with_range_slot(32768): "C2",
        key_with_range_slot(32769): "C4",
        key_with_range_slot(49152): "C4",
        key_with_range_slot(49153): "C1",
        key_with_range_slot(65535): "C1",
    }
    assert {k: reference.select(k) for k in probes} == probes
    assert await deliveries(backend, broker, topic, consumers, list(probes)) == probes


async def test_c33_hash_range_auto_split_removal(backend: Backend) -> None:
    # Given the hash-range layout of case 32
    broker, topic, consumers = await auto_split_layout(backend)
    probes = [ORDER_KEY, *(key_with_range_slot(s) for s in (20000, 40000, 60000))]
    before = await deliveries(backend, broker, topic, consumers, probes)
    assert [before[k] for k in probes] == ["C3", "C2", "C4", "C1"]
    # When C4 closes
    await consumers.pop("C4").close()
    await backend.settle(0.5)
    # Then C1 owns (32768,65536]
    after_c4 = await deliveries(backend, broker, topic, consumers, probes)
    assert [after_c4[k] for k in probes] == ["C3", "C2", "C1", "C1"]
    # When C1 then closes
    await consumers.pop("C1").close()
    await backend.settle(0.5)
    # Then C2 owns (16384,65536]
    after_c1 = await deliveries(backend, broker, topic, consumers, probes)
    assert [after_c1[k] for k in probes] == ["C3", "C2", "C2", "C2"]


async def test_c35_sticky_ranges_route_by_slot(backend: Backend) -> None:
    # Given STICKY consumer S1 with [(0,32767)] and S2 with [(32768,65535)]
    topic = backend.topic()
    ranges = {"S1": [(0, 32767)], "S2": [(32768, 65535)]}
    consumers = {
        n: await backend.subscribe(
            topic, "sub", KEY_SHARED, consumer_name=n, key_shared_policy=sticky(*r)
        )
        for n, r in ranges.items()
    }
    # When key "Order-3459134" (slot 6067) and keys at the range edges are produced
    keys = [ORDER_KEY, *(key_with_range_slot(s) for s in (32767, 32768, 65535))]
    where = await deliveries(backend, backend.broker, topic, consumers, keys)
    # Then each goes to the consumer whose range holds its slot ("Order-3459134" -> S1)
    assert where == {k: sticky_owner(ranges, k) for k in keys}
    assert where[ORDER_KEY] == "S1"


async def test_c36_overlapping_sticky_ranges_rejected(backend: Backend) -> None:
    # Given STICKY consumer S1 with [(0,100)]
    topic = backend.topic()
    s1 = await backend.subscribe(
        topic, "sub", KEY_SHARED, consumer_name="S1", key_shared_policy=sticky((0, 100))
    )
    # When S2 subscribes with [(50,200)]
    # Then S2 is rejected (range conflict)
    with pytest.raises(StickyRangeConflictError):
        await backend.subscribe(
            topic, "sub", KEY_SHARED, consumer_name="S2", key_shared_policy=sticky((50, 200))
        )
    # And a STICKY policy without ranges is a ValueError
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        KeySharedPolicy(mode=KeySharedMode.STICKY)
    with pytest.raises(ValueError, match="must not be empty"):
        KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[])
    # And S1 keeps receiving its keys
    keys = [key_with_range_slot(s) for s in (1, 60, 100)]
    producer = await backend.producer(topic)
    await backend.send_all(producer, keys, keys=keys)
    assert texts(await backend.drain(s1)) == keys


async def test_c37_uncovered_slot_waits_for_a_covering_consumer(backend: Backend) -> None:
    # Given a single STICKY consumer with range [(0,1000)]
    topic = backend.topic()
    first = await backend.subscribe(
        topic, "sub", KEY_SHARED, consumer_name="S1", key_shared_policy=sticky((0, 1000))
    )
    producer = await backend.producer(topic)
    # When a key with slot 6067 is produced
    assert slot_range(ORDER_KEY) == 6067
    await backend.send_all(producer, ["lost?"], key=ORDER_KEY)
    # Then it is not delivered (but S1's own keys still are)
    own = key_with_range_slot(500)
    await backend.send_all(producer, ["own"], key=own)
    assert texts(await backend.drain(first)) == ["own"]
    # When a second consumer with [(1001,65535)] joins
    second = await backend.subscribe(
        topic, "sub", KEY_SHARED, consumer_name="S2", key_shared_policy=sticky((1001, 65535))
    )
    # Then it receives that message
    assert texts(await backend.drain(second)) == ["lost?"]
    await backend.assert_silent(first)
