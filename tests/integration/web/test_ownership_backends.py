"""The range owner of a key, read from the broker, is the consumer Key_Shared delivers it to:
on the embedded broker (its selector) and on a real Pulsar (its admin API's consumer stats)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keylane.brokers.base import Broker, InitialPosition, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.observability.ownership import read_subscription


@pytest.fixture(params=["memory", pytest.param("pulsar", marks=pytest.mark.pulsar)])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    if request.param == "memory":
        async with MemoryBroker() as memory:
            yield memory
        return
    pulsar_url = request.getfixturevalue("pulsar_url")
    admin_url = request.getfixturevalue("pulsar_admin_url")
    from keylane.brokers.pulsar import PulsarBroker

    log = str(tmp_path / "pulsar-client.log")
    async with PulsarBroker(pulsar_url, admin_url=admin_url, log_file=log) as pulsar:
        yield pulsar


async def test_the_range_owner_is_the_consumer_that_receives_the_key(broker: Broker):
    topic = f"persistent://public/default/ownership-{uuid.uuid4().hex[:8]}"
    consumers = [
        await broker.subscribe(
            topic,
            "owners",
            subscription_type=SubscriptionType.KEY_SHARED,
            consumer_name=f"c-{n}",
            initial_position=InitialPosition.EARLIEST,
        )
        for n in range(3)
    ]
    view = await read_subscription(broker, topic, "owners")
    assert sorted(c.name for c in view.consumers) == ["c-0", "c-1", "c-2"]
    assert sum(c.slots for c in view.consumers) == 65535
    assert view.consistent
    keys = [f"acme:user-{n}" for n in range(12)]
    producer = await broker.create_producer(topic, batching=None)
    for key in keys:
        await producer.send(key.encode(), key=key)
    received: dict[str, str] = {}
    for consumer in consumers:
        while True:
            try:
                message = await consumer.receive(timeout=1.0)
            except TimeoutError:
                break
            received[message.data.decode()] = consumer.consumer_name
            await consumer.acknowledge(message)
    assert set(received) == set(keys)
    for key in keys:
        assert view.owner_of(view.slot_of(key)) == received[key], key
    await producer.close()
    for consumer in consumers:
        await consumer.close()
