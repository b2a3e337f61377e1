"""GET /v1/stream: Server-Sent Events over real HTTP (httpx reads the stream as a browser would)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.integration.web.conftest import AUTH, TOKEN, Running, subscribed, viewed


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event is not None:
            yield event, json.loads(line.removeprefix("data: "))
            event = None


async def _collect(
    running: Running, params: dict[str, Any], wanted, publish
) -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    async with running.client.stream("GET", "/v1/stream", params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(20):
            async for event, data in _events(response):
                seen.append((event, data))
                if event == "hello":
                    await publish()
                if wanted(seen):
                    return seen
    raise AssertionError(f"the stream ended early: {seen}")


async def test_a_subscriber_stream_delivers_its_decision_and_its_delivery(running: Running):
    async def publish():
        batch = [viewed("other", 1), subscribed("u9")]
        response = await running.client.post("/v1/events", json=batch, headers=AUTH)
        assert response.status_code == 202

    def wanted(seen):
        return any(e == "delivery" for e, _ in seen)

    seen = await _collect(
        running, {"token": TOKEN, "key": "acme:u9", "stats": "0"}, wanted, publish
    )
    assert seen[0][0] == "hello"
    assert seen[0][1]["key"] == "acme:u9"
    entries = [(e, d) for e, d in seen if e in ("decision", "delivery")]
    assert {d["key"] for _, d in entries} == {"acme:u9"}  # the other subscriber is filtered out
    decision = next(d for e, d in entries if e == "decision")
    assert decision["event_id"] == "sub-u9"
    assert decision["outcome"] == "ok"
    assert "sent" in [r["code"] for r in decision["reasons"]]
    delivery = next(d for e, d in entries if e == "delivery")
    assert delivery["outcome"] == "sent"
    assert delivery["channel"] == "sms"
    assert delivery["idempotency_key"] == decision["sends"][0]["idempotency_key"]
    assert all(e != "stats" for e, _ in seen)


async def test_the_dashboard_stream_sends_stats_that_move(running: Running):
    async def publish():
        batch = [viewed(f"s{n}", n) for n in range(5)]
        response = await running.client.post("/v1/events", json=batch, headers=AUTH)
        assert response.status_code == 202

    def wanted(seen):
        stats = [d for e, d in seen if e == "stats"]
        return stats and stats[-1]["decisions"].get("ok", 0) >= 5

    seen = await _collect(running, {"token": TOKEN}, wanted, publish)
    stats = [d for e, d in seen if e == "stats"]
    assert stats[0]["decisions"].get("ok", 0) < 5 <= stats[-1]["decisions"]["ok"]
    last = stats[-1]
    assert {"point", "lanes", "consumers", "outbox", "sends", "dead_letters", "ingest"} <= set(last)
    assert last["ingest"]["accepted"] == 5
    assert {c["name"] for c in last["consumers"]["consumers"]} == {"worker-0", "worker-1"}
    decisions = [d for e, d in seen if e == "decision"]
    assert {d["key"] for d in decisions} == {f"acme:s{n}" for n in range(5)}


async def test_the_stream_needs_the_token(running: Running):
    response = await running.client.get("/v1/stream")
    assert response.status_code == 401
