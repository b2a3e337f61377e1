"""Fixtures of the effectively-once suite: one pipeline per test, on each state store.

Every test takes ``make_pipeline`` (or ``pipeline``: one made with the defaults), parametrised
over the state stores ``memory``, ``sqlite`` (a file in the test's tmp directory) and
``postgres`` (the real server of ``scripts/services.py``, marked ``postgres``; each test gets a
schema of its own, dropped afterwards). The broker is always the embedded one with strict
delayed delivery; the gateway is the real HTTP server on a free port, reached through one
``WebhookProvider`` per channel behind a ``ChannelRouter``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from keylane.brokers.memory import MemoryBrokerConfig
from keylane.clock import ScaledClock
from keylane.journeys import load_default_journeys
from keylane.providers import ChannelRouter, WebhookProvider
from keylane.state import StateStore, open_store
from keylane.web.gateway import GatewayServer
from tests.integration.runtime.pipeline import Pipeline
from tests.integration.runtime.wrappers import TrackingBroker

#: 17:00 UTC on Black Friday: 12:00 in New York, 09:00 in San Francisco (SMS windows open).
NOON = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
#: Engine seconds per real second: a 30-minute timer takes 3 s.
SPEED = 600.0

MakePipeline = Callable[..., Awaitable[Pipeline]]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which state store the test runs on."""
    return str(request.param)


@pytest.fixture
async def store_url(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh database of ``store_kind``: a memory store, a new file, or a new schema."""
    if store_kind == "memory":
        yield "memory://"
    elif store_kind == "sqlite":
        yield f"sqlite://{tmp_path / 'state.db'}"
    else:
        server: str = request.getfixturevalue("postgres_url")
        schema = f"rt_{uuid.uuid4().hex[:16]}"
        try:
            yield f"{server}?schema={schema}"
        finally:
            conn = await asyncpg.connect(server)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()


@pytest.fixture
async def make_pipeline(
    store_kind: str, store_url: str, tmp_path: Path
) -> AsyncIterator[MakePipeline]:
    """``await make_pipeline(speed=..., start=..., store_url=..., **store_options)``.

    Everything made is torn down at the end of the test, workers first, then the publisher,
    the providers, the gateway, the store and the broker.
    """
    async with AsyncExitStack() as stack:
        made: list[Pipeline] = []

        async def make(
            *,
            speed: float = SPEED,
            start: datetime = NOON,
            url: str | None = None,
            provider_timeout: float = 5.0,
            **store_options: Any,
        ) -> Pipeline:
            clock = ScaledClock(start, speed)
            broker = TrackingBroker(
                MemoryBrokerConfig(delayed_delivery_strict=True, delayed_delivery_tick=0.02)
            )
            stack.push_async_callback(broker.close)
            store: StateStore = open_store(
                url or store_url, clock=lambda: clock.now().timestamp(), **store_options
            )
            await store.open()
            stack.push_async_callback(store.close)
            gateway = GatewayServer(log_path=tmp_path / f"gateway-{len(made)}.jsonl")
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            provider = ChannelRouter(
                {
                    "sms": WebhookProvider(gateway.messages_url, timeout=provider_timeout),
                    "email": WebhookProvider(gateway.messages_url, timeout=provider_timeout),
                }
            )
            stack.push_async_callback(provider.close)
            pipeline = Pipeline(
                kind=store_kind,
                store=store,
                broker=broker,
                gateway=gateway,
                provider=provider,
                clock=clock,
                journeys=load_default_journeys(),
            )
            stack.push_async_callback(pipeline.close)
            made.append(pipeline)
            return pipeline

        yield make


@pytest.fixture
async def pipeline(make_pipeline: MakePipeline) -> Pipeline:
    """A pipeline with the defaults: noon on Black Friday, 600 engine seconds per second."""
    return await make_pipeline()
