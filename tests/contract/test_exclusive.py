"""Exclusive subscriptions: rewind-based redelivery, cumulative acks, no delay, no DLQ (4-8)."""

from __future__ import annotations

from keylane.brokers.base import DeadLetterPolicy, SubscriptionType
from tests.contract.support import Backend, text, texts

EXCLUSIVE = SubscriptionType.EXCLUSIVE
FIVE = ["m1", "m2", "m3", "m4", "m5"]


async def test_c04_redeliver_unacked_rewinds_skipping_individual_acks(backend: Backend) -> None:
    # Given an Exclusive consumer that received m1..m5 and individually acked m1 and m3
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    producer = await backend.producer(topic)
    await backend.send_all(producer, FIVE)
    received = await backend.receive_n(consumer, 5)
    assert texts(received) == FIVE
    await consumer.acknowledge(received[0])
    await consumer.acknowledge(received[2])
    await backend.flush_acks()
    # When it calls redeliver_unacknowledged_messages()
    await consumer.redeliver_unacknowledged_messages()
    # Then it receives m2, m4, m5 in that order, each with redelivery_count 0
    again = await backend.drain(consumer)
    assert texts(again) == ["m2", "m4", "m5"]
    assert [m.redelivery_count for m in again] == [0, 0, 0]


async def test_c05_cumulative_ack_then_reconnect_resumes_after_it(backend: Backend) -> None:
    # Given an Exclusive consumer that received m1..m5
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    producer = await backend.producer(topic)
    await backend.send_all(producer, FIVE)
    received = await backend.receive_n(consumer, 5)
    # When it acknowledge_cumulative(m3) and reconnects
    await consumer.acknowledge_cumulative(received[2])
    await backend.flush_acks()
    await consumer.close()
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    # Then the first message received is m4 (and m5 follows)
    assert texts(await backend.drain(consumer)) == ["m4", "m5"]


async def test_c06_nack_on_exclusive_rewinds_everything(backend: Backend) -> None:
    # Given an Exclusive consumer with m1..m5 received and none acked
    topic = backend.topic()
    delay = 1.0
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE, negative_ack_redelivery_delay=delay)
    producer = await backend.producer(topic)
    await backend.send_all(producer, FIVE)
    received = await backend.receive_n(consumer, 5)
    # When it negative_acknowledge(m3) and the nack delay elapses
    await consumer.negative_acknowledge(received[2])
    # Then m1..m5 are all redelivered, from m1, in order (count stays 0)
    again = await backend.receive_n(consumer, 5, ack=True, timeout=delay * 2 + backend.wait)
    assert texts(again) == FIVE
    assert all(m.redelivery_count == 0 for m in again)
    assert await backend.drain(consumer) == []


async def test_c07_delayed_message_is_immediate_on_exclusive(backend: Backend) -> None:
    # Given an Exclusive subscription
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", EXCLUSIVE)
    producer = await backend.producer(topic)
    # When a message is sent with deliver_after=10 s
    sent_at = backend.now()
    await producer.send(b"late", deliver_after=10.0)
    # Then it is delivered immediately (well before 10 s)
    message = await consumer.receive(timeout=5.0)
    assert text(message) == "late"
    assert backend.now() - sent_at < 10.0


async def test_c08_exclusive_never_dead_letters(backend: Backend) -> None:
    # Given an Exclusive consumer with dead_letter_policy(max_redeliver_count=1) nacking everything
    topic = backend.topic()
    dlq = await backend.subscribe(backend.dlq(topic, "sub"), "watch", EXCLUSIVE)
    consumer = await backend.subscribe(
        topic,
        "sub",
        EXCLUSIVE,
        negative_ack_redelivery_delay=0.2,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1),
    )
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1"])
    # When m1 has been delivered and nacked 6 times (redelivered 5 times)
    counts = []
    for _ in range(6):
        message = await backend.receive(consumer)
        assert text(message) == "m1"
        counts.append(message.redelivery_count)
        await consumer.negative_acknowledge(message)
    # Then redelivery_count is still 0 and nothing was published to <topic>-<sub>-DLQ
    assert counts == [0] * 6
    await backend.assert_silent(dlq)
    # And m1 is still pending on the subscription
    assert text(await backend.receive(consumer)) == "m1"
