"""What the dashboard needs from the API, over real HTTP: the page and its files, a subscriber's
timeline, the key search, the snapshot's fields (overview and SSE), and the timeline's grouping.

The service is the embedded pipeline with the API on a free port (``conftest.running``); the
browser itself is in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from importlib import resources
from typing import Any

from keylane.observability import DecisionEntry, DeliveryEntry
from keylane.web.api.activity import timeline
from keylane.web.dashboard import ASSETS, dashboard_url
from tests.integration.web.conftest import AUTH, TOKEN, Running, subscribed, until, viewed


async def _delivered(running: Running, key: str) -> dict[str, Any]:
    """The timeline of ``key`` once a send of it is delivered (ledger status sent)."""

    async def ready() -> dict[str, Any] | None:
        response = await running.client.get("/v1/timeline", params={"key": key}, headers=AUTH)
        assert response.status_code == 200
        view: dict[str, Any] = response.json()
        return view if view["delivered"] >= 1 else None

    result: dict[str, Any] = await until(ready)
    return result


async def test_the_page_and_its_files_are_served_openly_with_a_strict_policy(running: Running):
    root = await running.client.get("/", follow_redirects=False)
    assert root.status_code == 307
    assert root.headers["location"] == "/dashboard"
    page = await running.client.get("/dashboard")  # no token: the page holds no data
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # no inline script: the policy would block it
    referenced = set(re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', page.text))
    assert referenced == {f"/dashboard/static/{n}" for n in ASSETS if n != "index.html"}
    for path in sorted(referenced):
        response = await running.client.get(path)
        assert response.status_code == 200, path
        name = path.rsplit("/", 1)[1]
        assert response.headers["content-type"] == ASSETS[name]
        assert response.content
    for missing in ("/dashboard/static/index.html", "/dashboard/static/secret.txt"):
        response = await running.client.get(missing)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_the_page_files_are_package_data():
    folder = resources.files("keylane.web.dashboard").joinpath("static")
    for name in ASSETS:
        assert folder.joinpath(name).is_file(), name


def test_the_dashboard_url_keeps_the_token_in_the_fragment():
    url = dashboard_url("http://127.0.0.1:8000/", "t0ken-0123456789abcdef")
    assert url == "http://127.0.0.1:8000/dashboard#token=t0ken-0123456789abcdef"


async def test_a_subscriber_timeline_shows_each_event_its_decision_and_the_delivery(
    running: Running,
):
    batch = [subscribed("u1"), viewed("u1", 1)]
    response = await running.client.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 202
    await _delivered(running, "acme:u1")
    view = await until(lambda: _with_events(running, "acme:u1", 2))
    assert view["exists"]
    assert (view["brand_id"], view["subscriber_id"]) == ("acme", "u1")
    assert [e["event_type"] for e in view["events"]] == ["subscribed", "product_viewed"]
    first, second = view["events"]
    assert first["event_id"] == "sub-u1"
    assert first["outcome"] == "ok"
    assert [a["outcome"] for a in first["attempts"]] == ["ok"]
    codes = [r["code"] for r in first["reasons"]]
    assert "sent" in codes
    (send,) = first["sends"]
    assert (send["channel"], send["journey"]) == ("sms", "welcome")
    assert send["delivered"] is True
    assert send["status"] == "sent"
    assert send["ledger"]["status"] == "sent"
    assert "sent" in [d["outcome"] for d in send["deliveries"]]
    assert send["to"].endswith("0123")
    assert "+1415" not in json.dumps(view)
    assert second["sends"] == []
    assert "entered" in [r["code"] for r in second["reasons"]]
    assert view["earlier_sends"] == []
    assert view["delivered"] == 1
    assert view["profile"]["sms_consent"] is True
    assert view["profile"]["opted_out"] is False
    assert [t["timer_id"].split(":")[0] for t in view["timers"]] == ["browse_abandonment"]


async def _with_events(running: Running, key: str, n: int) -> dict[str, Any] | None:
    response = await running.client.get("/v1/timeline", params={"key": key}, headers=AUTH)
    view: dict[str, Any] = response.json()
    return view if len(view["events"]) >= n else None


async def test_the_timeline_refuses_what_is_not_a_key(running: Running):
    assert (await running.client.get("/v1/timeline", params={"key": "acme:u1"})).status_code == 401
    for params in ({}, {"key": "no-colon"}, {"key": ":u1"}, {"key": "acme:"}, {"key": "a:" * 300}):
        response = await running.client.get("/v1/timeline", params=params, headers=AUTH)
        assert response.status_code == 422, params
        assert response.json()["field"] == "key"
        assert response.json()["reason"]
    unknown = await running.client.get(
        "/v1/timeline", params={"key": "acme:nobody", "token": TOKEN}
    )
    assert unknown.status_code == 200
    body = unknown.json()
    assert (body["exists"], body["events"], body["delivered"], body["profile"]) == (
        False,
        [],
        0,
        None,
    )


async def test_the_search_finds_remembered_keys(running: Running):
    batch = [viewed("search-me-1", 1), viewed("search-me-2", 1), viewed("other", 1)]
    assert (await running.client.post("/v1/events", json=batch, headers=AUTH)).status_code == 202
    log = running.service.observability.decisions
    await until(lambda: len(log) >= 3)

    async def search(**params: str) -> Any:
        return await running.client.get("/v1/search", params=params, headers=AUTH)

    found = (await search(q="SEARCH-ME")).json()
    assert sorted(found["keys"]) == ["acme:search-me-1", "acme:search-me-2"]
    assert len((await search(q="search-me", limit="1")).json()["keys"]) == 1
    assert (await search(q="nothing-like-it")).json()["keys"] == []
    for params, status in (
        ({}, 422),
        ({"q": "x" * 600}, 422),
        ({"q": "a", "limit": "0"}, 400),
        ({"q": "a", "limit": "\u00b2"}, 400),
        ({"q": "a", "limit": "101"}, 400),
    ):
        response = await search(**params)
        assert response.status_code == status, params
        assert response.json()["reason"]
    assert (await running.client.get("/v1/search", params={"q": "a"})).status_code == 401


async def test_the_snapshot_carries_what_the_page_shows(running: Running):
    response = await running.client.post("/v1/events", json=subscribed("u5"), headers=AUTH)
    assert response.status_code == 202
    await _delivered(running, "acme:u5")
    overview = (await running.client.get("/v1/overview", headers=AUTH)).json()
    assert datetime.fromisoformat(overview["engine_time"]).tzinfo is not None
    assert overview["events"]["subscribed"] == 1
    assert overview["reasons"]["sent"] == 1
    latest = overview["recent_deliveries"][0]
    assert (latest["key"], latest["outcome"], latest["channel"]) == ("acme:u5", "sent", "sms")
    attached = running.service.observability.attached
    assert attached is not None
    threshold = attached.worker.config.lanes.stall_threshold
    assert overview["stall_threshold_seconds"] == threshold
    assert isinstance(overview["timers_fired"], int)

    params = {"token": TOKEN}
    async with running.client.stream("GET", "/v1/stream", params=params) as stream:
        assert stream.status_code == 200
        event = None
        async with asyncio.timeout(20):
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "stats":
                    stats = json.loads(line.removeprefix("data: "))
                    break
    assert "series" not in stats
    assert stats["engine_time"]
    assert stats["recent_deliveries"][0]["key"] == "acme:u5"
    assert stats["events"]["subscribed"] == 1


def _decision(event_id: str, outcome: str, attempt: int, sends: tuple[str, ...] = ()) -> Any:
    return DecisionEntry(
        key="acme:u1", consumer="worker-0", message_id=f"m-{event_id}", event_id=event_id,
        event_type="subscribed", outcome=outcome, attempt=attempt,
        decided_at="2026-03-02T15:00:00Z", wall_time=float(attempt), duration=0.001,
        version=1 if outcome == "ok" else None,
        reasons=(("sent", "welcome", "welcome_sms", ""),) if outcome == "ok" else (),
        sends=tuple({"idempotency_key": k, "channel": "sms"} for k in sends),
        detail="" if outcome == "ok" else "store down",
    )  # fmt: skip


def test_the_timeline_groups_attempts_and_joins_sends_by_idempotency_key():
    decisions = [
        _decision("e1", "unavailable", 1),
        _decision("e1", "ok", 2, sends=("k1",)),
        _decision("e2", "dedupe", 3),
    ]
    deliveries = [
        DeliveryEntry("acme:u1", "k1", "sms", "deferred_quiet_hours", 1, None, 4.0),
        DeliveryEntry("acme:u1", "k1", "sms", "sent", 2, "2026-03-02T15:00:01Z", 5.0),
    ]
    ledger = [
        {"idempotency_key": "k0", "status": "sent", "channel": "sms"},
        {"idempotency_key": "k1", "status": "sent", "channel": "sms"},
    ]
    view = timeline(decisions, deliveries, ledger)
    first, second = view["events"]
    assert first["event_id"] == "e1"
    assert first["outcome"] == "ok"  # the attempt that counted
    assert [a["outcome"] for a in first["attempts"]] == ["unavailable", "ok"]
    (send,) = first["sends"]
    assert send["delivered"] is True
    assert [d["outcome"] for d in send["deliveries"]] == ["deferred_quiet_hours", "sent"]
    assert second["outcome"] == "dedupe"
    assert second["sends"] == []
    assert [row["idempotency_key"] for row in view["earlier_sends"]] == ["k0"]
    assert view["delivered"] == 2
