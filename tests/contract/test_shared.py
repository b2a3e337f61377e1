"""Shared subscriptions: distribution, permits, redelivery and priorities (spec 1.3, 16-24, 28)."""

from __future__ import annotations

import pytest

from keylane.brokers.base import SubscriptionType
from keylane.errors import CumulativeAckNotAllowedError, InvalidArgumentError
from tests.contract.support import Backend, text, texts

SHARED = SubscriptionType.SHARED


async def test_c16_each_message_to_exactly_one_consumer(backend: Backend) -> None:
    # Given two Shared consumers with receiver_queue_size=1000
    topic = backend.topic()
    consumers = {
        name: await backend.subscribe(
            topic, "sub", SHARED, consumer_name=name, receiver_queue_size=1000
        )
        for name in ("A", "B")
    }
    producer = await backend.producer(topic)
    # When 200 messages are produced
    sent = await backend.send_all(producer, [f"m{i}" for i in range(200)])
    got = await backend.collect(consumers)
    # Then every message is received by exactly one consumer
    received = texts(got["A"]) + texts(got["B"])
    assert sorted(received) == sorted(sent)
    assert len(received) == len(set(received))
    # And both consumers receive some, neither more than its permits allow
    assert got["A"]
    assert got["B"]
    assert all(len(messages) <= 1000 for messages in got.values())


async def test_c17_cumulative_ack_rejected_on_shared(backend: Backend) -> None:
    # Given a Shared consumer holding m1
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", SHARED, consumer_name="A")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1"])
    message = await backend.receive(consumer)
    # When it calls acknowledge_cumulative(m1)
    # Then it raises CumulativeAcknowledgementNotAllowed
    with pytest.raises(CumulativeAckNotAllowedError):
        await consumer.acknowledge_cumulative(message)
    # And m1 stays unacked: a fresh consumer gets it again
    await backend.flush_acks()
    await consumer.close()
    again = await backend.subscribe(topic, "sub", SHARED, consumer_name="A2")
    assert texts(await backend.drain(again)) == ["m1"]


async def test_c18_consumer_without_receive_holds_only_its_permits(backend: Backend) -> None:
    # Given Shared consumer A with receiver_queue_size=5 that never calls receive()
    # and consumer B with receiver_queue_size=1000
    topic = backend.topic()
    a = await backend.subscribe(topic, "sub", SHARED, consumer_name="A", receiver_queue_size=5)
    b = await backend.subscribe(topic, "sub", SHARED, consumer_name="B", receiver_queue_size=1000)
    producer = await backend.producer(topic)
    # When 100 messages are produced
    sent = await backend.send_all(producer, [f"m{i}" for i in range(100)])
    # Then B receives the remaining >= 95
    at_b = await backend.drain(b)
    assert len(at_b) >= 95
    # And A's connection holds at most 5 messages; none is lost or duplicated
    at_a = await backend.drain(a)
    assert len(at_a) <= 5
    assert sorted(texts(at_a) + texts(at_b)) == sorted(sent)


async def test_c19_closing_consumer_hands_unacked_to_others(backend: Backend) -> None:
    # Given Shared consumers A and B where A holds 3 unacked messages
    topic = backend.topic()
    a = await backend.subscribe(topic, "sub", SHARED, consumer_name="A")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"])
    held = await backend.receive_n(a, 3)
    assert sorted(texts(held)) == ["m1", "m2", "m3"]
    b = await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    await backend.assert_silent(b)
    # When A closes
    await a.close()
    # Then B receives those 3 messages with redelivery_count unchanged (0)
    at_b = await backend.drain(b)
    assert sorted(texts(at_b)) == ["m1", "m2", "m3"]
    assert [m.redelivery_count for m in at_b] == [0, 0, 0]


async def test_c20_nack_redelivers_only_that_message_after_delay(backend: Backend) -> None:
    # Given a Shared consumer with a 1 s negative-ack delay that received m1 and m2
    topic = backend.topic()
    delay = 1.0
    consumer = await backend.subscribe(
        topic, "sub", SHARED, consumer_name="A", negative_ack_redelivery_delay=delay
    )
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2"])
    m1, m2 = await backend.receive_n(consumer, 2)
    assert texts([m1, m2]) == ["m1", "m2"]
    # When it nacks m1 only (and acks m2)
    nacked_at = backend.now()
    await consumer.negative_acknowledge(m1)
    await consumer.acknowledge(m2)
    # Then m1 is redelivered after >= 1 s with redelivery_count 1
    again = await backend.receive(consumer, delay + backend.wait)
    assert text(again) == "m1"
    assert again.redelivery_count == 1
    assert backend.now() - nacked_at >= delay - 0.05
    await consumer.acknowledge(again)
    # And m2 is not redelivered
    assert await backend.drain(consumer) == []


async def test_c21_ack_timeout_redelivers_and_minimum_is_10s(backend: Backend) -> None:
    # Given a Shared consumer with a 10 s ack timeout that never acks m1
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", SHARED, consumer_name="A", ack_timeout=10.0)
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1"])
    first = await backend.receive(consumer)
    received_at = backend.now()
    # Then m1 is redelivered after 10-11 s (client tick 1 s) with redelivery_count 1
    again = await backend.receive(consumer, 15.0)
    elapsed = backend.now() - received_at
    assert text(again) == text(first) == "m1"
    assert again.redelivery_count == 1
    assert 10.0 - 0.05 <= elapsed <= 13.0, elapsed
    await consumer.acknowledge(again)
    # And an ack timeout of 5 s raises at subscribe time
    with pytest.raises(InvalidArgumentError, match="10"):
        await backend.subscribe(topic, "sub", SHARED, consumer_name="B", ack_timeout=5.0)


async def test_c22_redeliver_unacked_bumps_count_and_may_move(backend: Backend) -> None:
    # Given Shared consumers A and B and A holding m1..m3 unacked
    topic = backend.topic()
    a = await backend.subscribe(topic, "sub", SHARED, consumer_name="A")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"])
    held = await backend.receive_n(a, 3)
    b = await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    # When A calls redeliver_unacknowledged_messages()
    await a.redeliver_unacknowledged_messages()
    # Then m1..m3 are dispatched again (possibly to B), each once, with redelivery_count 1
    got = await backend.collect({"A": a, "B": b})
    again = got["A"] + got["B"]
    assert sorted(texts(again)) == sorted(texts(held)) == ["m1", "m2", "m3"]
    assert [m.redelivery_count for m in again] == [1, 1, 1]


async def test_c23_max_unacked_per_consumer_blocks_and_resumes(backend: Backend) -> None:
    # Given maxUnackedMessagesPerConsumer=10 and a Shared consumer that never acks
    topic = backend.topic()
    broker = await backend.with_max_unacked_per_consumer(topic, 10)
    consumer = await backend.subscribe(topic, "sub", SHARED, broker=broker, consumer_name="A")
    producer = await backend.producer(topic, broker=broker)
    sent = await backend.send_all(producer, [f"m{i}" for i in range(30)])
    # Then it stops getting messages after 10 unacked
    first = await backend.drain(consumer, ack=False)
    assert len(first) == 10
    # When it acks 5 (unacked drops to limit/2)
    for message in first[:5]:
        await consumer.acknowledge(message)
    # Then it receives again, up to the limit
    second = await backend.drain(consumer, ack=False)
    assert len(second) == 5
    # And acking everything releases the rest, none lost
    for message in first[5:] + second:
        await consumer.acknowledge(message)
    rest = texts(await backend.drain(consumer))
    assert sorted(texts(first) + texts(second) + rest) == sorted(sent)


async def test_c24_higher_priority_consumer_served_first(backend: Backend) -> None:
    backend.require("priority_level")
    # Given Shared consumer A at priority 0 (10 permits, not receiving) and B at priority 1
    topic = backend.topic()
    a = await backend.subscribe(
        topic, "sub", SHARED, consumer_name="A", priority_level=0, receiver_queue_size=10
    )
    b = await backend.subscribe(topic, "sub", SHARED, consumer_name="B", priority_level=1)
    producer = await backend.producer(topic)
    # When 25 messages are produced
    sent = await backend.send_all(producer, [f"m{i:02d}" for i in range(25)])
    # Then they all go to A until A's permits are exhausted, after which B receives
    at_b = await backend.drain(b)
    at_a = await backend.drain(a)
    assert sorted(texts(at_a)) == sent[:10]
    assert sorted(texts(at_b)) == sent[10:]


async def test_c28_last_consumer_leaving_resets_redelivery_counts(backend: Backend) -> None:
    # Given a Shared subscription whose only consumer holds m1..m3 with redelivery_count 2
    topic = backend.topic()
    consumer = await backend.subscribe(
        topic, "sub", SHARED, consumer_name="A", negative_ack_redelivery_delay=0.2
    )
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"])
    for count in (0, 1, 2):
        held = await backend.receive_n(consumer, 3)
        assert [m.redelivery_count for m in held] == [count] * 3
        if count < 2:
            for message in held:
                await consumer.negative_acknowledge(message)
    assert sorted(texts(held)) == ["m1", "m2", "m3"]
    # When the consumer closes and a new one subscribes
    await consumer.close()
    fresh = await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    # Then m1..m3 are redelivered with redelivery_count 0 (state reset)
    again = await backend.drain(fresh)
    assert sorted(texts(again)) == ["m1", "m2", "m3"]
    assert [m.redelivery_count for m in again] == [0, 0, 0]
