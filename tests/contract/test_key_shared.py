"""Key_Shared with the default consistent-hashing selector (spec 1.4.1-1.4.3 A, 1.4.9).

Cases 29-31, 34, 38, 46. Owners are computed with ``reference.ConsistentHashRing``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from keylane.brokers.base import BatchingType, Consumer, Message, SubscriptionType
from keylane.errors import CumulativeAckNotAllowedError
from tests.contract.reference import ConsistentHashRing, find_key, key_owned_by
from tests.contract.support import Backend, text, texts

KEY_SHARED = SubscriptionType.KEY_SHARED


async def key_shared(
    backend: Backend, topic: str, names: list[str], **kw: Any
) -> dict[str, Consumer]:
    """Key_Shared consumers named ``names`` (joined in that order) on subscription "sub"."""
    return {
        n: await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name=n, **kw) for n in names
    }


def owners_of(got: dict[str, list[Message]]) -> dict[str, set[str]]:
    """Sticky key -> the consumers that received it."""
    owners: dict[str, set[str]] = defaultdict(set)
    for name, messages in got.items():
        for m in messages:
            owners[m.sticky_key].add(name)
    return owners


async def test_c29_each_key_to_one_consumer_in_order(backend: Backend) -> None:
    # Given 2 Key_Shared consumers and 10 keys x 20 messages each (keys interleaved)
    topic = backend.topic()
    names = ["c1", "c2"]
    consumers = await key_shared(backend, topic, names)
    producer = await backend.producer(topic)
    keys = [f"key-{i}" for i in range(10)]
    order = [(k, n) for n in range(20) for k in keys]
    for k, n in order:
        await producer.send(f"{k}/{n}".encode(), key=k)
    # When both consumers receive (and ack)
    got = await backend.collect(consumers)
    # Then every key's messages are received by exactly one consumer, the ring's choice...
    ring = ConsistentHashRing.of(names)
    assert owners_of(got) == {k: {ring.select(k)} for k in keys}
    assert {ring.select(k) for k in keys} == set(names)  # both consumers own keys
    # ...and in publish order
    for name, messages in got.items():
        per_key: dict[str, list[str]] = defaultdict(list)
        for m in messages:
            per_key[m.sticky_key].append(text(m))
        for k, payloads in per_key.items():
            assert payloads == [f"{k}/{n}" for n in range(20)], (name, k)


async def test_c30_keyless_messages_use_producer_sequence_key(backend: Backend) -> None:
    """Case 30 as real Pulsar 4.0.8 behaves (checked with pulsar-client 3.13 on the standalone).

    The spec (1.4.1, case 30) says every keyless message has sticky key ``NONE_KEY`` and so goes
    to one consumer. Pulsar 4.0.8's broker (``Commands.resolveStickyKey``) instead falls back to
    ``"<producer name>-<sequence id>"`` when the entry has no ordering or partition key, so keyless
    messages spread over the consumers; only an explicit key ``"NONE_KEY"`` pins one consumer.
    """
    # Given Key_Shared consumers and a producer with a known name (sequence ids 0, 1, 2, ...)
    topic = backend.topic()
    names = ["c1", "c2", "c3"]
    consumers = await key_shared(backend, topic, names)
    producer_name = f"{backend.prefix}-producer"
    producer = await backend.producer(topic, producer_name=producer_name)
    # When messages without any key are produced
    sent = await backend.send_all(producer, [f"m{i}" for i in range(20)])
    got = await backend.collect(consumers)
    # Then message i goes to the owner of "<producer name>-<i>", so not all to one consumer
    ring = ConsistentHashRing.of(names)
    owner = {p: ring.select(f"{producer_name}-{i}") for i, p in enumerate(sent)}
    assert {n: texts(got[n]) for n in names} == {
        n: [p for p in sent if owner[p] == n] for n in names
    }
    assert len(set(owner.values())) > 1
    assert all(m.key is None and m.ordering_key is None for v in got.values() for m in v)
    # When messages carry the literal key "NONE_KEY"
    await backend.send_all(producer, [f"n{i}" for i in range(5)], key="NONE_KEY")
    # Then they all go to that key's single owner, in order
    got = await backend.collect(consumers)
    assert {n: texts(v) for n, v in got.items() if v} == {
        ring.select("NONE_KEY"): [f"n{i}" for i in range(5)]
    }


async def test_c31_ordering_key_takes_precedence(backend: Backend) -> None:
    # Given Key_Shared consumers where keys "p" and o have different owners
    topic = backend.topic()
    names = ["c1", "c2"]
    consumers = await key_shared(backend, topic, names)
    ring = ConsistentHashRing.of(names)
    o = find_key(lambda k: ring.select(k) != ring.select("p"), prefix="o")
    producer = await backend.producer(topic)
    # When messages with partition_key="p" and ordering_key=o are sent
    for i in range(5):
        await producer.send(f"m{i}".encode(), key="p", ordering_key=o)
    # Then their consumer is the one selected for the ordering key
    got = await backend.collect(consumers)
    assert texts(got[ring.select(o)]) == [f"m{i}" for i in range(5)]
    assert got[ring.select("p")] == []
    assert all(m.key == "p" and m.ordering_key == o for m in got[ring.select(o)])


async def test_c34_consistent_hashing_moves_keys_only_to_newcomer(backend: Backend) -> None:
    # Given the default consistent-hashing selector and consumers "c1", "c2"
    topic = backend.topic()
    consumers = await key_shared(backend, topic, ["c1", "c2"])
    producer = await backend.producer(topic)
    keys = [f"key-{i}" for i in range(10)]
    await backend.send_all(producer, keys, keys=keys)
    before = owners_of(await backend.collect(consumers))
    # Then key-0,2,4,6 -> c1 and key-1,3,5,7,8,9 -> c2 (reference vectors)
    c1_keys = {"key-0", "key-2", "key-4", "key-6"}
    assert before == {k: {"c1"} if k in c1_keys else {"c2"} for k in keys}
    assert before == {k: {ConsistentHashRing.of(["c1", "c2"]).select(k)} for k in keys}
    # When "c3" joins
    consumers |= await key_shared(backend, topic, ["c3"])
    await backend.settle(0.5)
    await backend.send_all(producer, keys, keys=keys)
    after = owners_of(await backend.collect(consumers))
    # Then key-0,2,6 move to c3 and no key moves between c1 and c2
    moved = {"key-0", "key-2", "key-6"}
    assert after == {k: {"c3"} if k in moved else before[k] for k in keys}


async def test_c38_cumulative_ack_rejected_on_key_shared(backend: Backend) -> None:
    # Given a Key_Shared consumer holding m1, m2
    topic = backend.topic()
    consumer = (await key_shared(backend, topic, ["c1"]))["c1"]
    producer = await backend.producer(topic)
    await backend.send_all(producer, ["m1", "m2"], key="k")
    held = await backend.receive_n(consumer, 2)
    # When it calls acknowledge_cumulative
    # Then it raises CumulativeAcknowledgementNotAllowed and acks nothing
    with pytest.raises(CumulativeAckNotAllowedError):
        await consumer.acknowledge_cumulative(held[1])
    await consumer.close()
    again = (await key_shared(backend, topic, ["c2"]))["c2"]
    assert texts(await backend.drain(again)) == ["m1", "m2"]


async def test_c46_default_batching_mixes_keys_key_based_does_not(backend: Backend) -> None:
    # Given Key_Shared consumers and three keys owned by three different consumers
    topic = backend.topic()
    names = ["c1", "c2", "c3"]
    consumers = await key_shared(backend, topic, names)
    ring = ConsistentHashRing.of(names)
    ka, kb, kc = (key_owned_by(ring.select, n, prefix=f"{n}-") for n in names)
    # When a DEFAULT-batching producer sends keys A, B, C in one batch
    default = await backend.producer(
        topic,
        batching=BatchingType.DEFAULT,
        batching_max_messages=3,
        batching_max_publish_delay=0.5,
    )
    ids = await asyncio.gather(*(default.send(f"d-{k}".encode(), key=k) for k in (ka, kb, kc)))
    # Then they share one entry and all three arrive at the consumer of key A
    assert len({(i.ledger_id, i.entry_id) for i in ids}) == 1
    got = await backend.collect(consumers)
    assert texts(got[ring.select(ka)]) == [f"d-{ka}", f"d-{kb}", f"d-{kc}"]
    assert sum(len(v) for v in got.values()) == 3
    # When a KEY_BASED-batching producer sends the same keys
    key_based = await backend.producer(
        topic,
        batching=BatchingType.KEY_BASED,
        batching_max_messages=3,
        batching_max_publish_delay=0.5,
    )
    await asyncio.gather(*(key_based.send(f"k-{k}".encode(), key=k) for k in (ka, kb, kc)))
    # Then each key arrives at its own consumer
    got = await backend.collect(consumers)
    assert {n: texts(v) for n, v in got.items()} == {
        ring.select(k): [f"k-{k}"] for k in (ka, kb, kc)
    }
