"""503 + Retry-After when the broker does not take the events; nothing unpublished is acked.

Two brokers that fail: a fake whose producer raises BrokerError after a number of sends (a unit
fake of our own publisher's logic), and a real Pulsar URL where nothing answers.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import pytest

from keylane.brokers.base import Broker, Consumer, Duration, MessageId, Producer
from keylane.errors import BrokerConnectionError
from keylane.observability import Observability
from keylane.web.api import ApiConfig, ApiServer, ApiState, IngestPublisher
from tests.integration.web.conftest import AUTH, TOKEN, subscribed, viewed


class _FlakyProducer(Producer):
    def __init__(self, works: int) -> None:
        self.works = works
        self.sent: list[bytes] = []

    @property
    def topic(self) -> str:
        return "persistent://public/default/events"

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        if len(self.sent) >= self.works:
            raise BrokerConnectionError("connection to the broker lost")
        self.sent.append(data)
        return MessageId(0, 1, len(self.sent))

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass


class _FlakyBroker(Broker):
    """Producers that publish ``works`` messages, then fail; or no producer at all."""

    def __init__(self, works: int, *, refuse: bool = False) -> None:
        self.works = works
        self.refuse = refuse
        self.producers: list[_FlakyProducer] = []

    async def create_topic(self, topic: str, partitions: int = 0) -> None:
        pass

    async def topic_partitions(self, topic: str) -> list[str]:
        return [topic]

    async def create_producer(self, topic: str, **options: Any) -> Producer:
        if self.refuse:
            raise BrokerConnectionError("cannot reach the broker")
        self.producers.append(_FlakyProducer(self.works))
        return self.producers[-1]

    async def subscribe(self, topic: str, subscription: str, **options: Any) -> Consumer:
        raise NotImplementedError

    async def close(self) -> None:
        pass


async def _serve(broker: Broker) -> AsyncIterator[tuple[httpx.AsyncClient, IngestPublisher]]:
    config = ApiConfig(port=0, token=TOKEN, publish_timeout=3.0, retry_after=7)
    publisher = IngestPublisher(broker, "events", timeout=config.publish_timeout)
    server = ApiServer(ApiState(config, TOKEN, publisher, Observability()))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
            yield client, publisher
    finally:
        await server.stop()


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[httpx.AsyncClient, IngestPublisher]]:
    async for pair in _serve(_FlakyBroker(0, refuse=True)):
        yield pair


async def test_a_broker_that_cannot_be_reached_is_503_with_retry_after(refusing):
    client, publisher = refusing
    response = await client.post("/v1/events", json=[viewed("u1", 1)], headers=AUTH)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    body = response.json()
    assert body["error"] == "broker_unavailable"
    assert body["accepted"] == 0
    assert [r["status"] for r in body["results"]] == ["not_published"]
    assert "cannot reach" in body["results"][0]["reason"]
    assert publisher.published == 0
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "broker" in ready.json()["reason"] or "worker" in ready.json()["reason"]


async def test_a_broker_lost_mid_batch_acks_only_what_was_stored():
    broker = _FlakyBroker(2)
    async for client, publisher in _serve(broker):
        batch = [viewed(f"u{n}", n) for n in range(4)]
        response = await client.post("/v1/events", json=batch, headers=AUTH)
        assert response.status_code == 503
        body = response.json()
        statuses = [r["status"] for r in body["results"]]
        assert statuses.count("accepted") == 2 == body["accepted"]
        stored = {msg for producer in broker.producers for msg in producer.sent}
        for result, event in zip(body["results"], batch, strict=True):
            assert result["event_id"] == event["event_id"]
            published = any(event["event_id"].encode() in msg for msg in stored)
            assert (result["status"] == "accepted") == published
        assert publisher.published == 2
        # The producer was dropped after the failure: the next request gets a fresh one.
        again = await client.post("/v1/events", json=[viewed("u9", 9)], headers=AUTH)
        assert again.status_code == 202
        assert len(broker.producers) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_real_pulsar_url_that_does_not_answer_is_503():
    pytest.importorskip("pulsar")
    from keylane.brokers.pulsar import PulsarBroker

    port = _closed_port()
    broker = PulsarBroker(
        f"pulsar://127.0.0.1:{port}",
        admin_url=f"http://127.0.0.1:{port}",
        connection_timeout=1.0,
    )
    try:
        async for client, publisher in _serve(broker):
            response = await client.post("/v1/events", json=subscribed("u1"), headers=AUTH)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "7"
            assert response.json()["results"][0]["status"] == "not_published"
            assert publisher.published == 0
    finally:
        await broker.close()
