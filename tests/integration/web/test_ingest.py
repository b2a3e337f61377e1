"""POST /v1/events over real HTTP: every status code, the token rules and the limits.

The service runs the embedded pipeline (memory broker, SQLite, the real gateway); the API is a
real uvicorn server on a free port. Whatever is published is decided by the real worker.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from keylane.web.api import ApiConfig
from tests.integration.web.conftest import (
    AUTH,
    TOKEN,
    Running,
    start_service,
    stop_service,
    subscribed,
    until,
    viewed,
)


def _decisions(running: Running, key: str) -> list[dict[str, Any]]:
    return [d.to_dict() for d in running.service.observability.decisions.decisions_of(key)]


async def test_one_event_is_published_decided_and_delivered(running: Running):
    response = await running.client.post("/v1/events", json=subscribed("u1"), headers=AUTH)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 1
    (result,) = body["results"]
    assert (result["index"], result["event_id"], result["key"]) == (0, "sub-u1", "acme:u1")
    assert result["status"] == "accepted"
    assert result["message_id"]
    decided = await until(lambda: _decisions(running, "acme:u1") or None)
    assert decided[0]["message_id"] == result["message_id"]
    assert decided[0]["outcome"] == "ok"
    gateway = running.pipeline.gateway
    assert gateway is not None
    await until(lambda: gateway.stats().deliveries == 1)


async def test_a_batch_gets_one_result_per_event_in_order(running: Running):
    batch = [subscribed("u1"), viewed("u2", 1), viewed("u3", 1)]
    response = await running.client.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["key"] for r in results] == ["acme:u1", "acme:u2", "acme:u3"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert len({r["message_id"] for r in results}) == 3
    for key in ("acme:u1", "acme:u2", "acme:u3"):
        await until(functools.partial(_decisions, running, key))


async def test_a_repeated_event_id_is_accepted_and_decided_once(running: Running):
    event = subscribed("u7", event_id="same-id")
    first = await running.client.post("/v1/events", json=event, headers=AUTH)
    second = await running.client.post("/v1/events", json=event, headers=AUTH)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["results"][0]["message_id"] != second.json()["results"][0]["message_id"]
    attempts = await until(lambda: (d := _decisions(running, "acme:u7")) and len(d) == 2 and d)
    assert sorted(a["outcome"] for a in attempts) == ["dedupe", "ok"]
    assert {a["event_id"] for a in attempts} == {"same-id"}
    gateway = running.pipeline.gateway
    assert gateway is not None
    await until(lambda: gateway.stats().deliveries == 1)
    view = (await running.client.get("/v1/subscribers/acme/u7", headers=AUTH)).json()
    assert view["version"] == 1
    assert len(view["ledger"]) == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"occurred_at": "2026-03-02T15:00:00"}, "occurred_at", "timezone-aware"),
        ({"type": "teleported"}, "type", "teleported"),
        ({"event_id": None}, "event_id", ""),
        ({"brand_id": "a:b"}, "brand_id", "letters"),
        ({"properties": {"phone": "+1305", "consent": {"sms": True}}}, "properties.phone", "phone"),
    ],
)
async def test_an_invalid_event_is_422_with_its_field_and_reason(
    running: Running, change: dict[str, Any], field: str, words: str
):
    event = {**subscribed("u1"), **change}
    if change.get("event_id", "x") is None:
        del event["event_id"]
    response = await running.client.post("/v1/events", json=event, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_event"
    assert body["field"] == field
    assert words in body["reason"]
    assert running.service.publisher is not None
    assert running.service.publisher.published == 0


async def test_one_invalid_event_in_a_batch_refuses_the_whole_batch(running: Running):
    bad = {**viewed("u2", 1), "occurred_at": "yesterday"}
    batch = [viewed("u1", 1), bad, {**viewed("u3", 1), "type": "nope"}]
    response = await running.client.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "[1].occurred_at"),
        (2, "[2].type"),
    ]
    assert body["field"] == "[1].occurred_at"
    assert running.service.publisher is not None
    assert running.service.publisher.published == 0
    assert running.service.observability.metrics.ingest_counts["invalid"] == 3


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[1, 2", 400, "malformed_json"),
        (b"42", 422, "invalid_body"),
        (b'"an event"', 422, "invalid_body"),
        (b"[]", 422, "invalid_body"),
        (b"[42]", 422, "invalid_event"),
        (b"", 422, "invalid_body"),
    ],
)
async def test_bodies_that_are_not_events(running: Running, body: bytes, status: int, error: str):
    headers = {**AUTH, "Content-Type": "application/json"}
    response = await running.client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["reason"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_wrong_content_type_is_415(running: Running, content_type: str | None):
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = json.dumps(subscribed("u1")).encode()
    response = await running.client.post("/v1/events", content=data, headers=headers)
    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


async def test_json_with_a_charset_is_fine(running: Running):
    headers = {**AUTH, "Content-Type": "application/json; charset=utf-8"}
    data = json.dumps(subscribed("u1")).encode()
    response = await running.client.post("/v1/events", content=data, headers=headers)
    assert response.status_code == 202


async def test_the_batch_limit_and_the_body_limit(tmp_path: Path):
    running = await start_service(
        tmp_path, api=ApiConfig(port=0, token=TOKEN, max_batch=3, max_body_bytes=4096)
    )
    try:
        client = running.client
        three = [viewed("u1", n) for n in range(3)]
        assert (await client.post("/v1/events", json=three, headers=AUTH)).status_code == 202
        four = [viewed("u1", n) for n in range(4)]
        response = await client.post("/v1/events", json=four, headers=AUTH)
        assert response.status_code == 413
        assert response.json()["error"] == "batch_too_large"
        assert "at most 3" in response.json()["reason"]
        big = {**viewed("u1", 9), "properties": {"note": "x" * 5000}}
        response = await client.post("/v1/events", json=big, headers=AUTH)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"

        async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b" " * 1000

        headers = {**AUTH, "Content-Type": "application/json"}
        response = await client.post("/v1/events", content=chunks(), headers=headers)
        assert response.status_code == 413
    finally:
        await stop_service(running)


async def test_the_token_rules(running: Running):
    client = running.client
    event = subscribed("u1")
    missing = await client.post("/v1/events", json=event)
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.post("/v1/events", json=event, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_token")
    basic = await client.post("/v1/events", json=event, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    in_query = await client.post("/v1/events", json=event, params={"token": TOKEN})
    assert in_query.status_code == 401  # only GET (the EventSource stream) takes ?token=
    for path in ("/v1/subscribers/acme/u1", "/v1/keys/acme:u1", "/v1/overview", "/v1/lanes"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=AUTH)).status_code == 200
        assert (await client.get(path, params={"token": TOKEN})).status_code == 200
        assert (await client.get(path, params={"token": "x" * 20})).status_code == 401
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status_code == 200
    assert running.service.publisher is not None
    assert running.service.publisher.published == 0


async def test_unknown_routes_and_methods_answer_in_the_error_shape(running: Running):
    missing = await running.client.get("/v1/nothing", headers=AUTH)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    method = await running.client.put("/v1/events", headers=AUTH)
    assert (method.status_code, method.json()["error"]) == (405, "method_not_allowed")


async def test_the_server_listens_on_the_loopback_by_default():
    assert ApiConfig().host == "127.0.0.1"
