"""Key_Shared dispatching, Pulsar 4.x (spec 1.4; cases 3, 29-31, 37-39, 41-48)."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import (
    BatchingType,
    Consumer,
    DeadLetterPolicy,
    KeySharedMode,
    KeySharedPolicy,
    SubscriptionType,
)
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.brokers.memory.selectors import ConsistentHashingSelector
from keylane.errors import (
    CumulativeAckNotAllowedError,
    StickyRangeConflictError,
    SubscriptionTypeMismatchError,
)
from keylane.hashing import slot_consistent, slot_range
from tests.unit.memory.conftest import drain, send, subscribe, texts

pytestmark = pytest.mark.looptime

KS = SubscriptionType.KEY_SHARED


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


def keys_moving(to: str, among: list[str], n: int, *, moving: bool = True) -> list[str]:
    """Keys owned by ``among[0]`` alone that move (or not) to ``to`` when it joins."""
    selector = ConsistentHashingSelector[_Named](100)
    for name in among:
        selector.add(_Named(name))
    newcomer = _Named(to)
    selector.add(newcomer)
    out = []
    for i in range(1000):
        key = f"k{i}"
        if (selector.select(slot_consistent(key)) is newcomer) == moving:
            out.append(key)
            if len(out) == n:
                return out
    raise AssertionError("not enough keys")


async def test_case_29_each_key_to_one_consumer_in_order(broker: MemoryBroker) -> None:
    a = await subscribe(broker, "t", KS, "c1")
    b = await subscribe(broker, "t", KS, "c2")
    producer = await broker.create_producer("t", batching=BatchingType.KEY_BASED)
    await asyncio.gather(
        *(producer.send(f"{k}:{i}".encode(), key=f"key-{k}") for i in range(20) for k in range(10))
    )
    got_a, got_b = await asyncio.gather(drain(a), drain(b))
    owners: dict[str, set[str]] = {}
    order: dict[str, list[int]] = {}
    for label, messages in (("a", got_a), ("b", got_b)):
        for m in messages:
            k, i = m.data.decode().split(":")
            owners.setdefault(k, set()).add(label)
            order.setdefault(k, []).append(int(i))
    assert all(len(o) == 1 for o in owners.values())
    assert all(seq == list(range(20)) for seq in order.values())
    assert len(order) == 10


async def test_case_30_keyless_messages_spread_by_producer_sequence(broker: MemoryBroker) -> None:
    # Pulsar 4.x (checked on 4.0.8): a keyless entry's sticky key is "<producer>-<sequence id>".
    consumers = [await subscribe(broker, "t", KS, f"c{i}") for i in range(3)]
    producer = await broker.create_producer("t", batching=None, producer_name="p")
    await send(producer, *(f"m{i}" for i in range(30)))
    results = await asyncio.gather(*(drain(c) for c in consumers))
    assert sum(len(r) for r in results) == 30
    assert sum(1 for r in results if r) > 1
    # A keyless batch follows its first message's sequence id: one batch, one consumer.
    batching = await broker.create_producer("t", batching=BatchingType.KEY_BASED)
    await asyncio.gather(*(batching.send(f"b{i}".encode()) for i in range(10)))
    results = await asyncio.gather(*(drain(c) for c in consumers))
    assert sorted(len(r) for r in results) == [0, 0, 10]


async def test_case_31_ordering_key_wins(broker: MemoryBroker) -> None:
    consumers = [await subscribe(broker, "t", KS, f"c{i}") for i in range(4)]
    producer = await broker.create_producer("t", batching=None)
    for i in range(20):
        await producer.send(f"m{i}".encode(), key=f"p{i}", ordering_key="o")
    results = await asyncio.gather(*(drain(c) for c in consumers))
    assert sorted(len(r) for r in results) == [0, 0, 0, 20]
    [winner] = [r for r in results if r]
    assert all(m.sticky_key == "o" for m in winner)


async def test_case_3_policy_mismatch(broker: MemoryBroker) -> None:
    await subscribe(broker, "t", KS, "c1")
    sticky = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 100)])
    with pytest.raises(SubscriptionTypeMismatchError, match="key_shared mode of 'AUTO_SPLIT'"):
        await subscribe(broker, "t", KS, "c2", key_shared_policy=sticky)
    ooo = KeySharedPolicy(allow_out_of_order_delivery=True)
    with pytest.raises(SubscriptionTypeMismatchError, match="does not allow out of order"):
        await subscribe(broker, "t", KS, "c3", key_shared_policy=ooo)


async def test_case_38_cumulative_ack_refused(broker: MemoryBroker) -> None:
    consumer = await subscribe(broker, "t", KS, "c1")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1")
    message = await consumer.receive(1)
    with pytest.raises(CumulativeAckNotAllowedError):
        await consumer.acknowledge_cumulative(message)


async def test_case_39_draining_hash(broker: MemoryBroker) -> None:
    key_k, key_j = keys_moving("c2", ["c1"], 2)
    c1 = await subscribe(broker, "t", KS, "c1")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", key=key_k)
    held = [await c1.receive(1) for _ in range(3)]
    # When c2 joins (K and J move to c2) and m4 (K), m5 (J) are produced
    c2 = await subscribe(broker, "t", KS, "c2")
    await producer.send(b"m4", key=key_k)
    await producer.send(b"m5", key=key_j)
    # Then c2 gets m5 at once but not m4, and c1 never gets m4
    assert texts(await drain(c2)) == ["m5"]
    assert await drain(c1, ack=False) == []
    for message in held[:2]:
        await c1.acknowledge(message)
    assert await drain(c2) == []
    await c1.acknowledge(held[2])
    assert texts(await drain(c2)) == ["m4"]
    assert await drain(c1) == []


async def test_draining_ends_when_the_old_owner_leaves(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1)
    c1 = await subscribe(broker, "t", KS, "c1")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", key=key_k)
    [await c1.receive(1) for _ in range(2)]
    c2 = await subscribe(broker, "t", KS, "c2")
    await producer.send(b"m3", key=key_k)
    assert await drain(c2) == []
    await c1.close()
    # The departed owner's unacked messages come first, then the newer one.
    assert texts(await drain(c2)) == ["m1", "m2", "m3"]


async def test_case_41_departing_owner_replays_before_newer(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1, moving=False)
    c1 = await subscribe(broker, "t", KS, "c1", receiver_queue_size=3)
    c2 = await subscribe(broker, "t", KS, "c2")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5", key=key_k)
    held = [await c1.receive(1) for _ in range(3)]
    assert texts(held) == ["m1", "m2", "m3"]
    await c1.close()
    assert texts(await drain(c2)) == ["m1", "m2", "m3", "m4", "m5"]


async def test_case_42_out_of_order_delivery_skips_draining(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1)
    policy = KeySharedPolicy(allow_out_of_order_delivery=True)
    c1 = await subscribe(broker, "t", KS, "c1", key_shared_policy=policy)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", key=key_k)
    [await c1.receive(1) for _ in range(3)]
    c2 = await subscribe(broker, "t", KS, "c2", key_shared_policy=policy)
    await producer.send(b"m4", key=key_k)
    assert texts(await drain(c2)) == ["m4"]


async def test_case_43_look_ahead_limit() -> None:
    config = MemoryBrokerConfig(
        key_shared_look_ahead_per_consumer=20, key_shared_look_ahead_per_subscription=1000
    )
    async with MemoryBroker(config) as broker:
        stay = keys_moving("b", ["a"], 5, moving=False)
        move = keys_moving("b", ["a"], 5)
        a = await subscribe(broker, "t", KS, "a", receiver_queue_size=10)
        b = await subscribe(broker, "t", KS, "b")
        producer = await broker.create_producer("t", batching=None)
        for i in range(500):
            key = stay[i % 5] if i % 2 == 0 else move[i % 5]
            await producer.send(f"{key}:{i}".encode(), key=key)
        got_b = await drain(b)
        dispatcher = b._parts[0].sub.dispatcher  # type: ignore[attr-defined]
        # B stalls once the replay queue reaches L = min(20 * 2, 1000) = 40 entries of A's keys.
        assert len(dispatcher.replay) == 40
        assert 0 < len(got_b) < 250
        assert len(a._queue) == 10  # type: ignore[attr-defined]
        # When A frees permits, everything flows again.
        got_a = await drain(a)
        got_b += await drain(b)
        assert len(got_a) == 250
        assert len(got_b) == 250


async def test_case_44_replayed_key_blocks_newer_entries(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1, moving=False)
    [key_j] = keys_moving("c2", ["c1"], 1)
    c1 = await subscribe(broker, "t", KS, "c1", receiver_queue_size=1)
    c2 = await subscribe(broker, "t", KS, "c2")
    producer = await broker.create_producer("t", batching=None)
    # c2's permits keep normal reads going; m2 (K) goes to replay since c1 has no permits
    await send(producer, "m1", "m2", key=key_k)
    await send(producer, "j1", key=key_j)
    await asyncio.sleep(0.1)
    dispatcher = c1._parts[0].sub.dispatcher  # type: ignore[attr-defined]
    assert len(dispatcher.replay) == 1
    # A newer K entry read normally is blocked behind the replayed one
    await send(producer, "m3", key=key_k)
    await send(producer, "j2", key=key_j)
    await asyncio.sleep(0.1)
    assert len(dispatcher.replay) == 2
    assert texts(await drain(c2)) == ["j1", "j2"]
    assert texts(await drain(c1)) == ["m1", "m2", "m3"]


async def test_case_45_nack_goes_back_to_the_same_consumer(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1, moving=False)
    c1 = await subscribe(broker, "t", KS, "c1", negative_ack_redelivery_delay=1.0)
    c2 = await subscribe(broker, "t", KS, "c2")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", "m3", "m4", "m5", key=key_k)
    got = [await c1.receive(1) for _ in range(5)]
    await c1.negative_acknowledge(got[1])
    for message in got[2:] + got[:1]:
        await c1.acknowledge(message)
    again = await drain(c1, quiet=2)
    assert texts(again) == ["m2"]
    assert again[0].redelivery_count == 1
    assert await drain(c2) == []


async def test_case_46_default_batching_sends_the_batch_to_the_first_key(
    broker: MemoryBroker,
) -> None:
    consumers = [await subscribe(broker, "t", KS, f"c{i}") for i in range(4)]
    keys = ["key-0", "key-1", "key-2", "key-3", "key-5"]
    producer = await broker.create_producer("t", batching=BatchingType.DEFAULT)
    await asyncio.gather(*(producer.send(k.encode(), key=k) for k in keys))
    results = await asyncio.gather(*(drain(c) for c in consumers))
    assert sorted(len(r) for r in results) == [0, 0, 0, 5]
    keyed = await broker.create_producer("t2", batching=BatchingType.KEY_BASED)
    consumers2 = [await subscribe(broker, "t2", KS, f"c{i}") for i in range(4)]
    await asyncio.gather(*(keyed.send(k.encode(), key=k) for k in keys))
    results2 = await asyncio.gather(*(drain(c) for c in consumers2))
    assert sum(1 for r in results2 if r) > 1


async def test_case_47_delayed_message_does_not_block_its_key() -> None:
    loop = asyncio.get_running_loop()
    async with MemoryBroker(MemoryBrokerConfig(delayed_delivery_tick=0.1)) as broker:
        consumers = [await subscribe(broker, "t", KS, f"c{i}") for i in range(3)]
        producer = await broker.create_producer("t", batching=None)
        start = loop.time()
        await producer.send(b"m1", key="K", deliver_after=3)
        await producer.send(b"m2", key="K")
        received: list[tuple[str, str, float]] = []

        async def collect(c: Consumer) -> None:
            while True:
                try:
                    m = await c.receive(5)
                except TimeoutError:
                    return
                received.append((c.consumer_name, m.data.decode(), loop.time() - start))
                await c.acknowledge(m)

        await asyncio.gather(*(collect(c) for c in consumers))
        assert [r[1] for r in received] == ["m2", "m1"]
        assert received[0][0] == received[1][0]
        assert received[0][2] < 0.5
        assert 2.9 <= received[1][2] <= 3.1


async def test_case_48_dead_letters_on_key_shared(broker: MemoryBroker) -> None:
    policy = DeadLetterPolicy(max_redeliver_count=1)
    consumers = [
        await subscribe(
            broker,
            "t",
            KS,
            f"c{i}",
            dead_letter_policy=policy,
            negative_ack_redelivery_delay=0.1,
        )
        for i in range(2)
    ]
    dlq = await subscribe(broker, "persistent://public/default/t-sub-DLQ", KS, "d")
    producer = await broker.create_producer("t", batching=None)
    for i in range(4):
        await producer.send(f"m{i}".encode(), key=f"key-{i}")
    seen: dict[str, list[int]] = {}

    async def fail_all(c: Consumer) -> None:
        while True:
            try:
                m = await c.receive(2)
            except TimeoutError:
                return
            seen.setdefault(m.data.decode(), []).append(m.redelivery_count)
            await c.negative_acknowledge(m)

    await asyncio.gather(*(fail_all(c) for c in consumers))
    assert seen == {f"m{i}": [0, 1] for i in range(4)}
    assert sorted(texts(await drain(dlq))) == ["m0", "m1", "m2", "m3"]


async def test_case_37_sticky_uncovered_slot_waits_for_an_owner(broker: MemoryBroker) -> None:
    assert slot_range("Order-3459134") == 6067
    s1 = await subscribe(
        broker,
        "t",
        KS,
        "s1",
        key_shared_policy=KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 1000)]),
    )
    producer = await broker.create_producer("t", batching=None)
    await producer.send(b"m1", key="Order-3459134")
    assert await drain(s1) == []
    s2 = await subscribe(
        broker,
        "t",
        KS,
        "s2",
        key_shared_policy=KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(1001, 65535)]),
    )
    assert texts(await drain(s2)) == ["m1"]


async def test_case_36_sticky_conflict_leaves_the_subscription_intact(
    broker: MemoryBroker,
) -> None:
    policy = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 65535)])
    s1 = await subscribe(broker, "t", KS, "s1", key_shared_policy=policy)
    clash = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(50, 200)])
    with pytest.raises(StickyRangeConflictError, match="Range conflict"):
        await subscribe(broker, "t", KS, "s2", key_shared_policy=clash)
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", "m2", key="x")
    assert texts(await drain(s1)) == ["m1", "m2"]


async def test_full_receiver_queue_holds_its_keys(broker: MemoryBroker) -> None:
    [key_k] = keys_moving("c2", ["c1"], 1, moving=False)
    [key_j] = keys_moving("c2", ["c1"], 1)
    c1 = await subscribe(broker, "t", KS, "c1", receiver_queue_size=2)
    c2 = await subscribe(broker, "t", KS, "c2")
    producer = await broker.create_producer("t", batching=None)
    for i in range(6):
        await producer.send(f"k{i}".encode(), key=key_k)
        await producer.send(f"j{i}".encode(), key=key_j)
    # c2 gets its keys while c1 (queue full) keeps its own; nobody else takes them.
    assert texts(await drain(c2)) == [f"j{i}" for i in range(6)]
    assert texts(await drain(c1)) == [f"k{i}" for i in range(6)]


async def test_hash_range_auto_split_mode() -> None:
    config = MemoryBrokerConfig(key_shared_use_consistent_hashing=False)
    async with MemoryBroker(config) as broker:
        consumers = [await subscribe(broker, "t", KS, f"C{i}") for i in range(1, 5)]
        producer = await broker.create_producer("t", batching=None)
        await producer.send(b"x", key="Order-3459134")  # slot 6067 -> C3's [0, 16384]
        results = await asyncio.gather(*(drain(c) for c in consumers))
        assert [len(r) for r in results] == [0, 0, 1, 0]


async def test_normal_read_defers_to_a_queued_entry_of_the_same_slot(
    broker: MemoryBroker,
) -> None:
    # White box: the rule holds even when the owner has permits (Pulsar reads asynchronously,
    # so a normal read can see an entry whose older sibling waits in the replay queue).
    c1 = await subscribe(broker, "t", KS, "c1")
    producer = await broker.create_producer("t", batching=None)
    await send(producer, "m1", key="K")
    await drain(c1, ack=False)
    dispatcher = c1._parts[0].sub.dispatcher  # type: ignore[attr-defined]
    log = c1._parts[0].sub.log  # type: ignore[attr-defined]
    older = log.get(0)
    dispatcher.replay.add(older.entry_id, dispatcher.slot(older))
    newer = log.append_single(b"m2", "K", None, older.messages[0][3], 0.0, None)
    assert dispatcher.dispatch([newer], normal=True) == 0
    assert newer.entry_id in dispatcher.replay
    # A replay read is not subject to the rule and delivers both, oldest first.
    assert dispatcher.dispatch([older, newer], normal=False) == 2
