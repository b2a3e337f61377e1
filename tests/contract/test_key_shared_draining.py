"""Key_Shared 4.x dispatch: draining hashes, replay order, look-ahead, nacks (1.4.4-1.4.8).

Cases 39, 41-45. Owners come from ``reference.ConsistentHashRing`` (default selector).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from keylane.brokers.base import Consumer, KeySharedPolicy, SubscriptionType
from tests.contract.reference import ConsistentHashRing, key_owned_by
from tests.contract.support import Backend, text, texts

KEY_SHARED = SubscriptionType.KEY_SHARED


async def join(backend: Backend, topic: str, name: str, **options: Any) -> Consumer:
    return await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name=name, **options)


def moving_keys() -> tuple[str, str]:
    """Keys K and J that c1 owns alone and that move to c2 when c2 joins."""
    ring = ConsistentHashRing.of(["c1", "c2"])
    k = key_owned_by(ring.select, "c2", prefix="K")
    j = key_owned_by(ring.select, "c2", prefix="J")
    return k, j


async def test_c39_moved_key_waits_until_old_owner_drains(backend: Backend) -> None:
    # Given c1 holding unacked m1..m3 of key K
    topic = backend.topic()
    k, j = moving_keys()
    c1 = await join(backend, topic, "c1")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"], key=k)
    held = await backend.receive_n(c1, 3)
    assert texts(held) == ["m1", "m2", "m3"]
    # And c2 joining so that K's slot (and J's) moves to c2
    c2 = await join(backend, topic, "c2")
    await backend.settle(0.5)
    # When m4 (key K) and m5 (key J, no unacked at c1) are produced
    await producer.send(b"m4", key=k)
    await producer.send(b"m5", key=j)
    # Then c2 receives m5 immediately, but not m4
    m5 = await backend.receive(c2)
    assert text(m5) == "m5"
    await c2.acknowledge(m5)
    await backend.assert_silent(c2)
    # When c1 acks m1..m3
    for message in held:
        await c1.acknowledge(message)
    # Then c2 receives m4; c1 never receives it
    m4 = await backend.receive(c2)
    assert text(m4) == "m4"
    await c2.acknowledge(m4)
    await backend.assert_silent(c1)


async def test_c41_departed_owner_unacked_go_first(backend: Backend) -> None:
    # Given c1 and c2, c1 owning key K and holding unacked m1..m3 (and prefetched m4, m5)
    topic = backend.topic()
    ring = ConsistentHashRing.of(["c1", "c2"])
    k = key_owned_by(ring.select, "c1", prefix="K")
    c1 = await join(backend, topic, "c1")
    c2 = await join(backend, topic, "c2")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"], key=k)
    assert texts(await backend.receive_n(c1, 3)) == ["m1", "m2", "m3"]
    await backend.send_all(producer, ["m4", "m5"], key=k)
    await backend.settle(0.5)
    # When c1 closes (and a newer K message follows)
    await c1.close()
    await backend.send_all(producer, ["m6"], key=k)
    # Then the new owner receives m1, m2, m3 before any newer K message, all in order
    assert texts(await backend.drain(c2)) == ["m1", "m2", "m3", "m4", "m5", "m6"]


async def test_c42_out_of_order_delivery_skips_draining(backend: Backend) -> None:
    # Given allow_out_of_order_delivery=True on all consumers and the setup of case 39
    topic = backend.topic()
    policy = KeySharedPolicy(allow_out_of_order_delivery=True)
    k, j = moving_keys()
    c1 = await join(backend, topic, "c1", key_shared_policy=policy)
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"], key=k)
    held = await backend.receive_n(c1, 3)
    c2 = await join(backend, topic, "c2", key_shared_policy=policy)
    await backend.settle(0.5)
    # When m4 (key K) and m5 (key J) are produced while c1 still holds m1..m3
    await producer.send(b"m4", key=k)
    await producer.send(b"m5", key=j)
    # Then c2 receives m4 without waiting for c1's acks
    assert sorted(texts(await backend.drain(c2))) == ["m4", "m5"]
    for message in held:
        await c1.acknowledge(message)
    await backend.assert_silent(c1)


async def test_c43_look_ahead_limit_stalls_normal_reads(backend: Backend) -> None:
    """Memory only (broker knobs). Checked once by hand on the Pulsar 4.0.8 standalone with the
    defaults (L = 4000, 5000 messages, 90% for the slow consumer's key): B stalled after 446 of
    its 500 messages, with 4005 <= 10 + L entries of K read up to B's last one.
    """
    # Given a small look-ahead limit L = min(10 * 2 consumers, 1000) = 20
    per_consumer, permits_a = 10, 10
    limit = min(per_consumer * 2, 1000)
    broker = await backend.broker_with(
        key_shared_look_ahead_per_consumer=per_consumer,
        key_shared_look_ahead_per_subscription=1000,
    )
    # And slow consumer A (receiver_queue_size=10, not receiving) owning key K, B owning others
    topic = backend.topic()
    ring = ConsistentHashRing.of(["A", "B"])
    k = key_owned_by(ring.select, "A", prefix="K")
    js = [key_owned_by(ring.select, "B", prefix=f"J{i}-") for i in range(5)]
    a = await backend.subscribe(
        topic, "sub", KEY_SHARED, broker=broker, consumer_name="A", receiver_queue_size=permits_a
    )
    b = await backend.subscribe(topic, "sub", KEY_SHARED, broker=broker, consumer_name="B")
    producer = await backend.producer(topic, broker=broker)
    # When 200 messages alternating K and B's keys are produced
    keys = [k if i % 2 == 0 else js[i // 2 % 5] for i in range(200)]
    sent = [f"m{i:03d}" for i in range(200)]
    await backend.send_all(producer, sent, keys=keys)
    # Then B keeps receiving its keys until the replay queue holds about L entries...
    at_b = await backend.drain(b)
    assert 0 < len(at_b) < len(keys) - keys.count(k), len(at_b)
    last = sent.index(text(at_b[-1]))
    k_read = keys[: last + 1].count(k)  # every entry up to B's last one was read
    assert k_read <= permits_a + limit, k_read
    assert k_read >= permits_a + limit // 2, k_read
    # ...then stalls too, until A frees permits
    await backend.assert_silent(b)
    at_a = await backend.drain(a)
    rest_b = await backend.drain(b)
    # And finally every message arrived once, each key in order at its owner
    assert texts(at_a) == [p for p, key in zip(sent, keys, strict=True) if key == k]
    assert texts(at_b + rest_b) == [p for p, key in zip(sent, keys, strict=True) if key != k]


async def test_c44_newer_entry_waits_behind_replayed_one(backend: Backend) -> None:
    # Given key K whose consumer A has a single permit, and B owning key J
    topic = backend.topic()
    ring = ConsistentHashRing.of(["A", "B"])
    k = key_owned_by(ring.select, "A", prefix="K")
    j = key_owned_by(ring.select, "B", prefix="J")
    a = await join(backend, topic, "A", receiver_queue_size=1)
    b = await join(backend, topic, "B")
    producer = await backend.producer(topic)
    # When m1 (K) fills A's permit, m2 (K) goes to the replay queue, and newer m3 (K) is read
    keys = [k, k, j, k, j]
    await backend.send_all(producer, ["m1", "m2", "j1", "m3", "j2"], keys=keys)
    # Then other keys keep flowing...
    assert texts(await backend.drain(b)) == ["j1", "j2"]
    # ...and m3 is not dispatched before the replayed m2
    assert texts(await backend.drain(a)) == ["m1", "m2", "m3"]


async def test_c45_nacked_message_returns_to_same_consumer(backend: Backend) -> None:
    # Given Key_Shared consumers A (owning key K) and B, A received m1..m5 of K
    topic = backend.topic()
    ring = ConsistentHashRing.of(["A", "B"])
    k = key_owned_by(ring.select, "A", prefix="K")
    a = await join(backend, topic, "A", negative_ack_redelivery_delay=0.5)
    b = await join(backend, topic, "B")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3", "m4", "m5"], key=k)
    held = await backend.receive_n(a, 5)
    # When A nacks m2 (and acks the others)
    await a.negative_acknowledge(held[1])
    for i in (0, 2, 3, 4):
        await a.acknowledge(held[i])
    # Then m2 is redelivered to A after the delay, and never to B while pending
    got = await backend.collect({"A": a, "B": b})
    assert texts(got["A"]) == ["m2"]
    assert got["A"][0].redelivery_count == 1
    assert got["B"] == []
    seen: dict[str, int] = defaultdict(int)
    for m in held + got["A"]:
        seen[text(m)] += 1
    assert seen == {"m1": 1, "m2": 2, "m3": 1, "m4": 1, "m5": 1}
