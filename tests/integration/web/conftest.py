"""A running service for the API tests: the embedded pipeline (memory broker, SQLite in a tmp
directory, the real embedded gateway) with the API on a free port, and an httpx client.

No mocks: real uvicorn, real HTTP. Events are real schema events; the welcome SMS is
transactional, so it goes out at once whatever the hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keylane.clock import Clock, SystemClock
from keylane.journeys import JourneySet, load_default_journeys
from keylane.observability import Tracing
from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.service.serve import Service
from keylane.web.api import ApiConfig

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Running:
    pipeline: Pipeline
    service: Service
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.service.url


def subscribed(
    subscriber: str, *, event_id: str | None = None, phone: str = "+14155550123"
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"sub-{subscriber}",
        "brand_id": "acme",
        "subscriber_id": subscriber,
        "type": "subscribed",
        "occurred_at": "2026-03-02T15:00:00Z",
        "properties": {
            "phone": phone,
            "timezone": "America/New_York",
            "consent": {"sms": True},
        },
    }


def viewed(subscriber: str, n: int) -> dict[str, Any]:
    return {
        "event_id": f"view-{subscriber}-{n}",
        "brand_id": "acme",
        "subscriber_id": subscriber,
        "type": "product_viewed",
        "occurred_at": "2026-03-02T15:00:01Z",
        "properties": {"sku": f"sku-{n}", "price": 30},
    }


async def until(condition: Callable[[], Any], *, attempts: int = 1000, pause: float = 0.01) -> Any:
    """Wait (bounded) for something the service does concurrently with the test."""
    for _ in range(attempts):
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(pause)
    raise AssertionError("the condition never held")


async def start_service(
    tmp_path: Path,
    *,
    api: ApiConfig | None = None,
    journeys: JourneySet | None = None,
    clock: Clock | None = None,
    tracing: Tracing | None = None,
    speed: float = 1.0,
    wrap: Callable[[Any], Any] | None = None,
) -> Running:
    journeys = journeys or load_default_journeys()
    service = Service(api or ApiConfig(port=0, token=TOKEN), journeys, tracing=tracing)
    wrappers = service.wrappers()
    if wrap is not None:
        inner = wrappers["wrap_handler"]
        wrappers["wrap_handler"] = lambda handler, config: wrap(inner(handler, config))
    pipeline = Pipeline(
        PipelineConfig(data_dir=tmp_path, consumers=2, history=False, speed=speed),
        journeys,
        clock or SystemClock(),
        **wrappers,
    )
    await pipeline.start()
    try:
        await service.start(pipeline)
    except BaseException:
        await pipeline.stop()
        raise
    client = httpx.AsyncClient(base_url=service.url, timeout=10)
    return Running(pipeline, service, client)


async def stop_service(running: Running) -> None:
    await running.client.aclose()
    await running.service.stop()
    await running.pipeline.stop()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    service = await start_service(tmp_path)
    try:
        yield service
    finally:
        await stop_service(service)
        gateway = service.pipeline.gateway
        assert gateway is None or gateway.stats().duplicate_deliveries == 0
