"""Producer processes against the real standalone: every message of every process is stored.

Starts a few Python processes (``python -m keylane.bench.pulsar_ingest``); small counts only.
"""

from __future__ import annotations

import uuid

import pytest

from keylane.bench.pulsar_ingest import ProducePath, run_producers
from keylane.brokers import connect
from keylane.brokers.base import InitialPosition, Message, SubscriptionType

pytestmark = pytest.mark.pulsar


@pytest.mark.parametrize(
    ("path", "processes"),
    [
        (ProducePath.KEYLANE_ENQUEUE, 2),
        (ProducePath.KEYLANE_SEND_IN_TURN, 1),
        (ProducePath.CLIENT_SEND_ASYNC, 1),
        (ProducePath.CLIENT_ASYNCIO_GATHER, 1),
    ],
)
async def test_every_process_publishes_all_its_messages(
    pulsar_url: str, pulsar_admin_url: str, path: ProducePath, processes: int
) -> None:
    # Given a durable subscription on a fresh topic
    topic = f"persistent://public/default/kl-ingest-{uuid.uuid4().hex[:12]}"
    async with connect(pulsar_url, admin_url=pulsar_admin_url, log_level="error") as broker:
        holder = await broker.subscribe(topic, "count", initial_position=InitialPosition.EARLIEST)
        await holder.close()
        # When the producer processes publish 300 messages each
        result = await run_producers(
            path, processes, service_url=pulsar_url, topic=topic, messages=300, keys=20
        )
        # Then each reported its run, and the topic holds every message once
        assert result.processes == len(result.runs) == processes
        assert result.messages == 300 * processes
        assert all(r.finished >= r.started for r in result.runs)
        assert result.msgs_per_second > 0
        consumer = await broker.subscribe(topic, "count", subscription_type=SubscriptionType.SHARED)
        got: list[Message] = []
        while len(got) < result.messages:
            batch = await consumer.receive_many(500, 10.0)
            for message in batch:
                await consumer.acknowledge(message)
            got.extend(batch)
        assert len(got) == result.messages
        assert {m.key for m in got} == {f"key-{k}" for k in range(20)}
        await consumer.close()
