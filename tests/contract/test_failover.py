"""Failover subscriptions: active-consumer selection and switch-over (spec 1.2, cases 9-15).

Expected active consumers are computed with ``reference.py`` (the consistent-hash ring for
non-partitioned topics, ``partition % consumers`` for partitioned ones), never taken from the
broker under test.
"""

from __future__ import annotations

from keylane.brokers.base import Consumer, Producer, SubscriptionType
from keylane.hashing import partition_for_key
from tests.contract.reference import failover_active_for_partition, failover_ring_pick, find_key
from tests.contract.support import Backend, texts

FAILOVER = SubscriptionType.FAILOVER


def partition_key(partition: int, partitions: int) -> str:
    """A partition key that routes to ``partition`` (Murmur3_32 routing)."""
    return find_key(lambda k: partition_for_key(k, partitions) == partition, prefix="p")


async def send_to_partitions(
    backend: Backend, producer: Producer, partitions: int, tag: str
) -> dict[int, str]:
    """Send one message per partition; payload ``f"{tag}-p{n}"``; returns partition -> payload."""
    sent = {}
    for p in range(partitions):
        payload = f"{tag}-p{p}"
        await producer.send(payload.encode(), key=partition_key(p, partitions))
        sent[p] = payload
    return sent


async def partitions_served(
    backend: Backend, consumers: dict[str, Consumer], topic: str
) -> dict[str, set[int]]:
    """Drain the consumers and return, per consumer, the partitions it received from."""
    got = await backend.collect(consumers)
    served: dict[str, set[int]] = {}
    for name, messages in got.items():
        served[name] = set()
        for m in messages:
            assert m.topic.startswith(f"{topic}-partition-"), m.topic
            partition = int(m.topic.rsplit("-", 1)[1])
            assert m.message_id.partition == partition
            served[name].add(partition)
    return served


def topic_where_ring_picks(backend: Backend, names: list[str], winner: str) -> str:
    """A fresh topic name whose section 1.2 ring picks ``winner`` among ``names``."""
    for i in range(1000):
        topic = backend.topic(f"t{i}")
        if failover_ring_pick(names, topic) == winner:
            return topic
    raise LookupError(f"no topic picks {winner}")


async def two_consumers(backend: Backend) -> tuple[str, Consumer, Consumer]:
    """Failover consumers "A" then "B" on a topic whose ring picks B: (topic, active, standby).

    The active consumer is the one that subscribed *second*, so a broker that simply keeps the
    first subscriber active fails.
    """
    topic = topic_where_ring_picks(backend, ["A", "B"], "B")
    a = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="A")
    b = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="B")
    await backend.settle(backend.failover_delay + 0.5)  # let the switch-over to B complete
    return topic, b, a


async def test_c09_ring_picks_one_active_consumer(backend: Backend) -> None:
    names = ["consumer-a", "consumer-b"]
    for winner in names:  # one topic where the ring picks each consumer
        # Given a non-partitioned topic and Failover consumers "consumer-a" and "consumer-b"
        topic = topic_where_ring_picks(backend, names, winner)
        consumers = {
            name: await backend.subscribe(topic, "sub", FAILOVER, consumer_name=name)
            for name in names
        }
        await backend.settle(backend.failover_delay + 0.5)
        producer = await backend.producer(topic)
        # When 10 messages are produced
        sent = await backend.send_all(producer, [f"m{i}" for i in range(10)])
        # Then exactly one consumer, the one the section 1.2 ring picks, receives all 10
        got = await backend.collect(consumers)
        assert texts(got[winner]) == sent, topic
        assert all(not got[name] for name in names if name != winner), topic


async def test_c10_standby_takes_over_from_first_unacked(backend: Backend) -> None:
    # Given Failover consumers A (active) and B on a non-partitioned topic
    topic, active, standby = await two_consumers(backend)
    producer = await backend.producer(topic)
    # And A received m1..m5 and acked m1..m2
    await backend.send_all(producer, ["m1", "m2", "m3", "m4", "m5"])
    received = await backend.receive_n(active, 5)
    assert texts(received) == ["m1", "m2", "m3", "m4", "m5"]
    await active.acknowledge(received[0])
    await active.acknowledge(received[1])
    await backend.flush_acks()
    # Then B receives nothing before A closed
    await backend.assert_silent(standby)
    # When A closes
    await active.close()
    # Then B receives m3, m4, m5, ... in order
    await backend.send_all(producer, ["m6"])
    timeout = backend.failover_delay + backend.wait
    assert texts(await backend.receive_n(standby, 4, ack=True, timeout=timeout)) == [
        "m3",
        "m4",
        "m5",
        "m6",
    ]
    assert await backend.drain(standby) == []


async def test_c11_partitions_alternate_between_consumers(backend: Backend) -> None:
    # Given a 4-partition topic and Failover consumers "A" and "B"
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=4)
    consumers = {
        name: await backend.subscribe(topic, "sub", FAILOVER, consumer_name=name)
        for name in ("A", "B")
    }
    await backend.settle(backend.failover_delay + 0.5)
    # When one message is sent to each partition
    producer = await backend.producer(topic)
    await send_to_partitions(backend, producer, 4, "x")
    # Then A is active for partitions 0 and 2 and B for 1 and 3
    expected = {
        name: {p for p in range(4) if failover_active_for_partition(["A", "B"], p) == name}
        for name in consumers
    }
    assert expected == {"A": {0, 2}, "B": {1, 3}}
    assert await partitions_served(backend, consumers, topic) == expected


async def test_c12_partition_owners_move_when_consumers_leave(backend: Backend) -> None:
    # Given a 2-partition topic and Failover consumers A, B, C, D
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=2)
    names = ["A", "B", "C", "D"]
    consumers = {n: await backend.subscribe(topic, "sub", FAILOVER, consumer_name=n) for n in names}
    await backend.settle(backend.failover_delay + 0.5)
    producer = await backend.producer(topic)
    # Then P0 -> A and P1 -> B
    await send_to_partitions(backend, producer, 2, "before")
    served = await partitions_served(backend, consumers, topic)
    assert served == {"A": {0}, "B": {1}, "C": set(), "D": set()}
    assert [failover_active_for_partition(names, p) for p in (0, 1)] == ["A", "B"]
    # When A and B close
    await consumers.pop("A").close()
    await consumers.pop("B").close()
    await backend.settle(backend.failover_delay + 0.5)
    # Then P0 -> C and P1 -> D
    await send_to_partitions(backend, producer, 2, "after")
    assert await partitions_served(backend, consumers, topic) == {"C": {0}, "D": {1}}
    assert [failover_active_for_partition(["C", "D"], p) for p in (0, 1)] == ["C", "D"]


async def test_c13_highest_priority_consumer_is_active_everywhere(backend: Backend) -> None:
    backend.require("priority_level")
    # Given a 2-partition topic with Failover consumer A at priority 1 and B at priority 0
    topic = backend.topic()
    await backend.broker.create_topic(topic, partitions=2)
    a = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="A", priority_level=1)
    b = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="B", priority_level=0)
    await backend.settle(backend.failover_delay + 0.5)
    # When messages are sent to both partitions
    producer = await backend.producer(topic)
    await send_to_partitions(backend, producer, 2, "x")
    await send_to_partitions(backend, producer, 2, "y")
    # Then B is active for both partitions and A receives nothing
    served = await partitions_served(backend, {"A": a, "B": b}, topic)
    assert served == {"A": set(), "B": {0, 1}}


async def test_c14_switch_over_waits_failover_delay(backend: Backend) -> None:
    # Given the standalone's failover delay and active consumer A with standby B
    topic, active, standby = await two_consumers(backend)
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3"])
    received = await backend.receive_n(active, 3)
    await active.acknowledge(received[0])
    await backend.flush_acks()
    # When A closes and B becomes active
    closed_at = backend.now()
    await active.close()
    first = await backend.receive(standby, backend.failover_delay + backend.wait)
    # Then B receives no message earlier than the delay after the switch...
    assert backend.now() - closed_at >= backend.failover_delay - 0.05
    # ...and starts from the first unacked message
    rest = await backend.drain(standby)
    assert texts([first, *rest]) == ["m2", "m3"]


async def test_c15_failover_cumulative_ack_is_final(backend: Backend) -> None:
    # Given a Failover consumer that received m1..m5
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="A")
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2", "m3", "m4", "m5"])
    received = await backend.receive_n(consumer, 5, timeout=backend.failover_delay + backend.wait)
    # When it calls acknowledge_cumulative(m3)
    await consumer.acknowledge_cumulative(received[2])  # succeeds
    await backend.flush_acks()
    # Then m1..m3 are never redelivered: not on redelivery request...
    await consumer.redeliver_unacknowledged_messages()
    assert texts(await backend.drain(consumer, ack=False)) == ["m4", "m5"]
    # ...nor after a reconnect
    await consumer.close()
    consumer = await backend.subscribe(topic, "sub", FAILOVER, consumer_name="A")
    timeout = backend.failover_delay + backend.quiet
    assert texts(await backend.drain(consumer, quiet=timeout)) == ["m4", "m5"]
