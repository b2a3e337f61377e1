"""Helpers for the embedded broker's unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from keylane.brokers.base import Consumer, InitialPosition, Message, Producer, SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    """A broker with Pulsar defaults except an immediate Failover switch-over."""
    async with MemoryBroker(MemoryBrokerConfig(failover_delay=0)) as b:
        yield b


def texts(messages: Sequence[Message]) -> list[str]:
    return [m.data.decode() for m in messages]


async def send(producer: Producer, *payloads: str, **options: Any) -> None:
    for payload in payloads:
        await producer.send(payload.encode(), **options)


async def drain(consumer: Consumer, *, ack: bool = True, quiet: float = 0.2) -> list[Message]:
    """Receive until nothing arrives for ``quiet`` seconds."""
    out: list[Message] = []
    while True:
        try:
            message = await consumer.receive(quiet)
        except TimeoutError:
            return out
        if ack:
            await consumer.acknowledge(message)
        out.append(message)


async def subscribe(
    broker: MemoryBroker,
    topic: str,
    sub_type: SubscriptionType,
    name: str,
    subscription: str = "sub",
    **options: Any,
) -> Consumer:
    options.setdefault("initial_position", InitialPosition.EARLIEST)
    return await broker.subscribe(
        topic, subscription, subscription_type=sub_type, consumer_name=name, **options
    )
