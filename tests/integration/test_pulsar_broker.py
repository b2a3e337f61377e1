"""``PulsarBroker`` against a real Pulsar standalone: what the backend-neutral contract suite
does not cover (admin topic creation, error mapping, routing with batching, receive timeouts,
lifecycle) and the Pulsar 4.0.8 behaviours the backend documents.

Needs ``scripts/services.py up`` (``make test`` runs it); skipped without a broker locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from keylane.brokers import connect
from keylane.brokers.base import BatchingType, InitialPosition, KeySharedPolicy, SubscriptionType
from keylane.brokers.pulsar import PulsarBroker, PulsarProducer
from keylane.errors import (
    AlreadyClosedError,
    BrokerConnectionError,
    BrokerError,
    ConsumerBusyError,
    InvalidArgumentError,
    SubscriptionTypeMismatchError,
    TopicNotFoundError,
)
from keylane.hashing import partition_for_key
from tests.contract.reference import ConsistentHashRing

pytestmark = pytest.mark.pulsar

#: The ``topic`` fixture: call it for a fresh topic name.
Topics = Callable[[], str]

EARLIEST = InitialPosition.EARLIEST
KEY_SHARED = SubscriptionType.KEY_SHARED


@pytest.fixture
async def broker(pulsar_url: str, pulsar_admin_url: str) -> AsyncIterator[PulsarBroker]:
    """A started PulsarBroker."""
    async with PulsarBroker(pulsar_url, admin_url=pulsar_admin_url) as started:
        yield started


@pytest.fixture
async def topic(broker: PulsarBroker) -> AsyncIterator[Topics]:
    """Makes fresh topic names; deletes those topics (and their subscriptions) afterwards."""
    created: list[str] = []

    def make() -> str:
        created.append(f"persistent://public/default/kl-it-{uuid.uuid4().hex[:12]}")
        return created[-1]

    yield make
    for name in created:
        with contextlib.suppress(TopicNotFoundError):
            await broker.admin.delete_topic(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- lifecycle


async def test_connect_returns_an_unstarted_pulsar_broker(pulsar_url: str) -> None:
    broker = connect(pulsar_url)
    assert isinstance(broker, PulsarBroker)
    await broker.close()  # never started: closing is still fine
    with pytest.raises(AlreadyClosedError):
        await broker.create_producer("t")


async def test_unreachable_broker_fails_fast_with_connection_error() -> None:
    broker = PulsarBroker(f"pulsar://127.0.0.1:{free_port()}", connection_timeout=2.0)
    with pytest.raises(BrokerConnectionError, match="cannot reach Pulsar"):
        await broker.start()
    await broker.close()


def test_bad_constructor_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="service_url"):
        PulsarBroker("http://127.0.0.1:6650")
    with pytest.raises(InvalidArgumentError, match="admin_url"):
        PulsarBroker("pulsar://127.0.0.1:6650", admin_url="127.0.0.1:8080")
    with pytest.raises(InvalidArgumentError, match="log_level"):
        PulsarBroker("pulsar://127.0.0.1:6650", log_level="loud")
    with pytest.raises(InvalidArgumentError, match="log_file"):
        PulsarBroker("pulsar://127.0.0.1:6650", log_file="")
    with pytest.raises(InvalidArgumentError, match="log_file"):
        PulsarBroker("pulsar://127.0.0.1:6650", log_file=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="operation_timeout"):
        PulsarBroker("pulsar://127.0.0.1:6650", operation_timeout=0.5)


async def test_log_file_takes_the_client_log_off_standard_output(
    pulsar_url: str,
    pulsar_admin_url: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a broker whose client logs to a file
    log = tmp_path / "client.log"
    topic = f"kl-it-log-{uuid.uuid4().hex[:12]}"
    # When it creates a producer and a consumer and closes
    async with PulsarBroker(pulsar_url, admin_url=pulsar_admin_url, log_file=log) as broker:
        consumer = await broker.subscribe(topic, "s", subscription_type=KEY_SHARED)
        producer = await broker.create_producer(topic)
        await producer.send(b"m", key="k")
        await consumer.acknowledge(await consumer.receive(timeout=10))
    # Then the client's INFO lines are in the file (at the default "info" level)...
    text = log.read_text()
    assert " INFO " in text
    assert topic in text
    # ...and none reached standard output or standard error
    out, err = capfd.readouterr()
    assert topic not in out + err
    assert " INFO " not in out + err


async def test_close_closes_every_producer_and_consumer(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    producer = await broker.create_producer(name)
    consumer = await broker.subscribe(name, "sub")
    await broker.close()
    await broker.close()  # idempotent
    with pytest.raises(AlreadyClosedError):
        await producer.send(b"x")
    with pytest.raises(AlreadyClosedError):
        await consumer.receive(timeout=1)
    with pytest.raises(AlreadyClosedError):
        await broker.subscribe(name, "other")


# --------------------------------------------------------------------------- topics


async def test_partitioned_topic_is_created_through_the_admin_api(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    await broker.create_topic(name, partitions=4)
    assert await broker.admin.partitions(name) == 4
    assert await broker.topic_partitions(name) == [f"{name}-partition-{i}" for i in range(4)]
    await broker.create_topic(name, partitions=4)  # same count: no-op
    with pytest.raises(InvalidArgumentError, match="already exists"):
        await broker.create_topic(name, partitions=2)
    with pytest.raises(InvalidArgumentError, match="already exists"):
        await broker.create_topic(name)


async def test_non_partitioned_topic(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    await broker.create_topic(name)
    await broker.create_topic(name)  # idempotent
    assert await broker.topic_partitions(name) == [name]
    with pytest.raises(InvalidArgumentError, match="non-partitioned"):
        await broker.create_topic(name, partitions=3)
    with pytest.raises(InvalidArgumentError, match="-partition-"):
        await broker.create_topic(f"{name}-partition-0", partitions=2)


async def test_deleted_topic_is_gone(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    await broker.create_topic(name, partitions=2)
    await broker.admin.delete_topic(name)
    assert await broker.admin.partitions(name) == 0
    with pytest.raises(TopicNotFoundError):
        await broker.admin.delete_topic(name)


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize("batching", [BatchingType.KEY_BASED, BatchingType.DEFAULT, None])
async def test_keys_land_on_their_murmur3_partition(
    broker: PulsarBroker, topic: Topics, batching: BatchingType | None
) -> None:
    name = topic()
    await broker.create_topic(name, partitions=5)
    consumer = await broker.subscribe(name, "sub", initial_position=EARLIEST)
    producer = await broker.create_producer(name, batching=batching)
    keys = [f"user-{i}" for i in range(40)]
    ids = await asyncio.gather(*(producer.send(k.encode(), key=k) for k in keys))
    assert [i.partition for i in ids] == [partition_for_key(k, 5) for k in keys]
    received = {}
    for _ in keys:
        message = await consumer.receive(timeout=10)
        received[message.data.decode()] = message
        await consumer.acknowledge(message)
    for key, message in received.items():
        assert message.topic == f"{name}-partition-{partition_for_key(key, 5)}"
        assert message.key == key


# --------------------------------------------------------------------------- errors


async def test_busy_and_mismatch_are_told_apart(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    await broker.create_topic(name, partitions=2)
    await broker.subscribe(name, "sub", consumer_name="a")
    with pytest.raises(ConsumerBusyError) as busy:
        await broker.subscribe(name, "sub", consumer_name="b")
    assert not isinstance(busy.value, SubscriptionTypeMismatchError)
    with pytest.raises(SubscriptionTypeMismatchError, match=r"'Exclusive'.*'Key_Shared'"):
        await broker.subscribe(name, "sub", subscription_type=KEY_SHARED)


async def test_key_shared_policy_mismatch_names_the_difference(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    await broker.subscribe(name, "sub", subscription_type=KEY_SHARED)
    ooo = KeySharedPolicy(allow_out_of_order_delivery=True)
    with pytest.raises(SubscriptionTypeMismatchError, match="out of order"):
        await broker.subscribe(name, "sub", subscription_type=KEY_SHARED, key_shared_policy=ooo)


async def test_priority_level_is_rejected_before_subscribing(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    with pytest.raises(InvalidArgumentError, match="priority_level"):
        await broker.subscribe(name, "sub", priority_level=1)
    # Nothing was created: an Exclusive consumer can take the subscription
    await broker.subscribe(name, "sub")


async def test_duplicate_producer_name_is_a_broker_error(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    await broker.create_producer(name, producer_name="only-one")
    with pytest.raises(BrokerError, match="ProducerBusy"):
        await broker.create_producer(name, producer_name="only-one")


# --------------------------------------------------------------------------- receive and ack


async def test_receive_timeouts_lose_no_message(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    consumer = await broker.subscribe(name, "sub", initial_position=EARLIEST)
    producer = await broker.create_producer(name, batching=None)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await consumer.receive(timeout=0.05)
    sent = [f"m{i}" for i in range(20)]
    got, timeouts = [], 0
    for payload in sent:
        await producer.send(payload.encode())
        try:  # often times out with the message on its way to the consumer
            got.append(await consumer.receive(timeout=0))
        except TimeoutError:
            timeouts += 1
    while len(got) < len(sent):
        got.append(await consumer.receive(timeout=10))
    assert timeouts > 0
    assert [m.data.decode() for m in got] == sent
    with pytest.raises(TimeoutError):  # and nothing twice
        await consumer.receive(timeout=0.5)


async def test_cancelled_receive_loses_no_message(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    consumer = await broker.subscribe(name, "sub", initial_position=EARLIEST)
    producer = await broker.create_producer(name, batching=None)
    waiting = asyncio.ensure_future(consumer.receive())
    await asyncio.sleep(0.1)
    waiting.cancel()
    await producer.send(b"m1")
    assert (await consumer.receive(timeout=10)).data == b"m1"


async def test_ack_by_message_id_of_a_batched_message(broker: PulsarBroker, topic: Topics) -> None:
    name = topic()
    consumer = await broker.subscribe(
        name, "sub", subscription_type=SubscriptionType.SHARED, initial_position=EARLIEST
    )
    producer = await broker.create_producer(name, batching=BatchingType.DEFAULT)
    ids = await asyncio.gather(*(producer.send(f"m{i}".encode()) for i in range(5)))
    assert {i.batch_index for i in ids} == set(range(5))  # one batch of five
    messages = [await consumer.receive(timeout=10) for _ in ids]
    for message in messages:
        await consumer.acknowledge(message.message_id)
    with pytest.raises(InvalidArgumentError, match="not received"):
        await consumer.acknowledge(messages[0].message_id)  # already acked
    await asyncio.sleep(0.3)  # acks are grouped by the client for up to 100 ms
    await consumer.redeliver_unacknowledged_messages()
    with pytest.raises(TimeoutError):
        await consumer.receive(timeout=1.5)


async def test_burst_larger_than_the_client_queue_is_sent(
    broker: PulsarBroker, topic: Topics
) -> None:
    name = topic()
    producer = await broker.create_producer(name, batching=None)
    # 3000 concurrent sends exceed the client's 1000 pending messages; none may fail
    ids = await asyncio.gather(*(producer.send(b"x", key=f"k{i}") for i in range(3000)))
    assert len(set(ids)) == 3000


# --------------------------------------------------------------------------- Pulsar 4.0.8 facts


async def test_keyless_key_shared_messages_hash_producer_name_and_sequence(
    broker: PulsarBroker,
    topic: Topics,
) -> None:
    """Pulsar 4.0.8's ``Commands.resolveStickyKey``: no ordering or partition key ->
    ``"<producer_name>-<sequence_id>"``; ``NONE_KEY`` only when even those are missing."""
    name = topic()
    names = ["c1", "c2", "c3"]
    consumers = {
        n: await broker.subscribe(
            name, "sub", subscription_type=KEY_SHARED, consumer_name=n, initial_position=EARLIEST
        )
        for n in names
    }
    producer = await broker.create_producer(name, batching=None)
    for i in range(30):
        await producer.send(str(i).encode())
    ring = ConsistentHashRing.of(names)
    assert isinstance(producer, PulsarProducer)
    producer_name = producer.producer_name
    expected = {i: ring.select(f"{producer_name}-{i}") for i in range(30)}
    got: dict[int, str] = {}
    for label, consumer in consumers.items():
        while True:
            try:
                message = await consumer.receive(timeout=1.5)
            except TimeoutError:
                break
            await consumer.acknowledge(message)
            got[int(message.data)] = label
    assert got == expected
    assert len(set(got.values())) > 1  # spread, not one "NONE_KEY" consumer
