"""Dead-letter topics and delayed delivery on Shared and Key_Shared (spec 2.6-2.7, 25-27, 47-48)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from keylane.brokers.base import Consumer, DeadLetterPolicy, Message, SubscriptionType
from tests.contract.reference import ConsistentHashRing, key_owned_by
from tests.contract.support import Backend, text, texts

SHARED = SubscriptionType.SHARED
KEY_SHARED = SubscriptionType.KEY_SHARED
EXCLUSIVE = SubscriptionType.EXCLUSIVE
NACK_DELAY = 0.2
MAX_DELIVERIES = 30


async def nack_everything(
    backend: Backend, consumer: Consumer, seen: dict[str, list[tuple[str, int]]], label: str
) -> None:
    """Receive and nack until quiet, recording ``(consumer, redelivery_count)`` per payload.

    Gives up after ``MAX_DELIVERIES`` (a broker that never dead-letters must fail, not hang).
    """
    for _ in range(MAX_DELIVERIES):
        try:
            message = await consumer.receive(timeout=backend.quiet)
        except TimeoutError:
            return
        seen[text(message)].append((label, message.redelivery_count))
        await consumer.negative_acknowledge(message)


async def test_c25_shared_dead_letter_after_max_redeliveries(backend: Backend) -> None:
    # Given a Shared consumer with dead_letter_policy(max_redeliver_count=2) nacking everything
    topic = backend.topic()
    dlq = await backend.subscribe(backend.dlq(topic, "sub"), "watch", EXCLUSIVE)
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="A",
        negative_ack_redelivery_delay=NACK_DELAY,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=2),
    )
    producer = await backend.producer(topic)
    original_id = await producer.send(b"m1", key="k1", properties={"app": "x"})
    # When it nacks every delivery
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    await nack_everything(backend, consumer, seen, "A")
    # Then the application saw m1 three times, with redelivery_count 0, 1, 2
    assert seen == {"m1": [("A", 0), ("A", 1), ("A", 2)]}
    # And m1 appears once in <topic>-<sub>-DLQ with ORIGIN_MESSAGE_ID and REAL_TOPIC
    dead = await backend.drain(dlq)
    assert texts(dead) == ["m1"]
    assert dead[0].properties["REAL_TOPIC"] == topic
    assert dead[0].properties["ORIGIN_MESSAGE_ID"] == str(original_id)
    assert dead[0].properties["app"] == "x"
    assert dead[0].key == "k1"
    # And m1 is acked on the original subscription: a fresh consumer gets nothing
    await consumer.close()
    fresh = await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    await backend.assert_silent(fresh)


async def test_c26_custom_dead_letter_topic(backend: Backend) -> None:
    # Given dead_letter_policy(max_redeliver_count=1, dead_letter_topic="my-dlq")
    topic = backend.topic()
    my_dlq = backend.topic("my-dlq")
    custom = await backend.subscribe(my_dlq, "watch", EXCLUSIVE)
    default = await backend.subscribe(backend.dlq(topic, "sub"), "watch", EXCLUSIVE)
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="A",
        negative_ack_redelivery_delay=NACK_DELAY,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1, dead_letter_topic=my_dlq),
    )
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1"])
    # When the message fails twice
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    await nack_everything(backend, consumer, seen, "A")
    assert seen == {"m1": [("A", 0), ("A", 1)]}
    # Then it is published to "my-dlq" instead of the default name
    assert texts(await backend.drain(custom)) == ["m1"]
    await backend.assert_silent(default)


async def test_c27_shared_delayed_message_waits(backend: Backend) -> None:
    # Given a Shared subscription
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", SHARED, consumer_name="A")
    producer = await backend.producer(topic)
    # When m1 is sent with deliver_after=3 s and m2 without delay
    sent_at = backend.now()
    await producer.send(b"m1", deliver_after=3.0)
    await producer.send(b"m2")
    # Then m2 is received first
    first = await backend.receive(consumer)
    assert text(first) == "m2"
    # And m1 is not received before the delay (less one tick when not strict)
    second = await backend.receive(consumer)
    assert text(second) == "m1"
    early = 0.0 if backend.delayed_delivery_strict else backend.delayed_delivery_tick
    assert backend.now() - sent_at >= 3.0 - early - 0.05


async def test_c47_key_shared_delayed_message_to_key_owner(backend: Backend) -> None:
    # Given a Key_Shared subscription with consumers c1 and c2
    topic = backend.topic()
    names = ["c1", "c2"]
    consumers = {
        n: await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name=n) for n in names
    }
    key = "key-1"
    owner = ConsistentHashRing.of(names).select(key)
    producer = await backend.producer(topic)
    # When m1 (key K, deliver_after=3 s) and m2 (key K, no delay) are sent
    sent_at = backend.now()
    await producer.send(b"m1", key=key, deliver_after=3.0)
    await producer.send(b"m2", key=key)
    # Then m2 is delivered first and m1 after ~3 s, to the same consumer
    first = await backend.receive(consumers[owner])
    assert text(first) == "m2"
    await consumers[owner].acknowledge(first)
    second = await backend.receive(consumers[owner])
    assert text(second) == "m1"
    early = 0.0 if backend.delayed_delivery_strict else backend.delayed_delivery_tick
    assert backend.now() - sent_at >= 3.0 - early - 0.05
    await consumers[owner].acknowledge(second)
    other = next(n for n in names if n != owner)
    await backend.assert_silent(consumers[other])


async def test_c48_key_shared_dead_letters(backend: Backend) -> None:
    # Given Key_Shared consumers each with dead_letter_policy(max_redeliver_count=1) nacking all
    topic = backend.topic()
    dlq = await backend.subscribe(backend.dlq(topic, "sub"), "watch", EXCLUSIVE)
    names = ["c1", "c2"]
    consumers = {
        n: await backend.subscribe(
            topic,
            "sub",
            KEY_SHARED,
            consumer_name=n,
            negative_ack_redelivery_delay=NACK_DELAY,
            dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1),
        )
        for n in names
    }
    ring = ConsistentHashRing.of(names)
    keys = [key_owned_by(ring.select, n, prefix=f"{n}{i}-") for i in range(2) for n in names]
    producer = await backend.producer(topic)
    sent = await backend.send_all(producer, [f"m-{k}" for k in keys], keys=keys)
    # When every delivery is nacked
    seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
    await asyncio.gather(*(nack_everything(backend, c, seen, n) for n, c in consumers.items()))
    # Then each message was seen twice (counts 0, 1), by its key's owner only...
    for payload, key in zip(sent, keys, strict=True):
        assert seen[payload] == [(ring.select(key), 0), (ring.select(key), 1)], payload
    # ...and then reached the DLQ
    dead: list[Message] = await backend.drain(dlq)
    assert sorted(texts(dead)) == sorted(sent)
