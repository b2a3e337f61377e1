"""The admin views after a few events: a subscriber, a key (held, queued, its range owner)."""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

import httpx

from keylane.brokers.base import Message
from keylane.hashing import slot_consistent
from keylane.journeys import load_default_journeys
from keylane.lanes import Handler, HandlerContext
from keylane.runtime import WorkerConfig
from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.service.serve import Service
from keylane.web.api import ApiConfig
from tests.integration.web.conftest import AUTH, TOKEN, Running, subscribed, until, viewed


async def test_a_subscriber_after_a_few_events(running: Running):
    batch = [subscribed("u1"), viewed("u1", 1), viewed("u1", 2)]
    response = await running.client.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 202
    gateway = running.pipeline.gateway
    assert gateway is not None
    await until(lambda: gateway.stats().deliveries == 1)

    async def settled():
        view = (await running.client.get("/v1/subscribers/acme/u1", headers=AUTH)).json()
        return view if len(view["decisions"]) == 3 and view["deliveries"] else None

    view = await until(settled)
    assert view["exists"]
    assert view["version"] == 3
    assert view["consent"] == {"sms": True, "email": False, "sms_ever": True}
    assert view["suppression"] == {"opted_out": False}
    assert view["state"]["phone"].endswith("0123")
    assert "+1415" not in view["state"]["phone"]
    # The first view arms browse_abandonment's 1 h timer (the second is a re-entry).
    assert [t["timer_id"].split(":")[0] for t in view["timers"]] == ["browse_abandonment"]
    first = view["decisions"][0]
    assert first["event_id"] == "sub-u1"
    assert first["outcome"] == "ok"
    codes = [r["code"] for r in first["reasons"]]
    assert "sent" in codes
    assert "entered" in codes
    assert [r["journey"] for r in first["reasons"] if r["code"] == "sent"] == ["welcome"]
    (row,) = view["ledger"]
    assert row["journey"] == "welcome"
    assert row["channel"] == "sms"
    assert row["to"].endswith("0123")
    assert "+1415" not in row["to"]

    async def sent():
        ledger = (await running.client.get("/v1/subscribers/acme/u1", headers=AUTH)).json()
        return ledger if ledger["ledger"][0]["status"] == "sent" else None

    done = await until(sent)
    assert done["deliveries"][0]["outcome"] == "sent"
    kinds = [e["kind"] for e in done["timeline"]]
    assert kinds.count("decision") == 3
    assert kinds.count("delivery") == 1
    times = [e["wall_time"] for e in done["timeline"]]
    assert times == sorted(times)
    unknown = (await running.client.get("/v1/subscribers/acme/nobody", headers=AUTH)).json()
    assert (unknown["exists"], unknown["state"], unknown["ledger"]) == (False, None, [])


async def test_a_key_names_its_slot_and_the_consumer_that_decided_it(running: Running):
    batch = [viewed(f"u{n}", n) for n in range(6)]
    response = await running.client.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 202
    log = running.service.observability.decisions
    for n in range(6):
        await until(functools.partial(log.decisions_of, f"acme:u{n}"))
    consumers = set()
    for n in range(6):
        key = f"acme:u{n}"
        view = (await running.client.get(f"/v1/keys/{key}", headers=AUTH)).json()
        assert view["slot"] == slot_consistent(key)
        decided_by = log.decisions_of(key)[-1].consumer
        assert view["range_owner"]["consumer"] == decided_by  # Key_Shared sent it there
        assert view["range_owner"]["in_this_process"] is True
        assert view["holder"]["status"] == "idle"
        assert view["last_decision"]["consumer"] == decided_by
        consumers.add(decided_by)
    consumers_view = (await running.client.get("/v1/consumers", headers=AUTH)).json()
    names = {c["name"] for c in consumers_view["consumers"]}
    assert consumers <= names == {"worker-0", "worker-1"}
    assert sum(c["slots"] for c in consumers_view["consumers"]) == 65535


class _Gate:
    """Holds the handler of one key until opened (to look at a key while it is in flight)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.open = asyncio.Event()
        self.entered = asyncio.Event()

    def wrap(self, inner: Handler) -> Handler:
        async def gated(message: Message, context: HandlerContext) -> None:
            if context.key == self.key:
                self.entered.set()
                await self.open.wait()
            await inner(message, context)

        return gated


async def test_a_key_in_flight_with_messages_queued_behind_it(tmp_path: Path):
    journeys = load_default_journeys()
    service = Service(ApiConfig(port=0, token=TOKEN), journeys)
    gate = _Gate("acme:slow")
    wrappers = service.wrappers()
    inner_wrap = wrappers["wrap_handler"]

    def wrap(handler: Handler, config: WorkerConfig) -> Handler:
        return gate.wrap(inner_wrap(handler, config))

    wrappers["wrap_handler"] = wrap
    from keylane.clock import SystemClock

    pipeline = Pipeline(
        PipelineConfig(data_dir=tmp_path, consumers=2, history=False),
        journeys,
        SystemClock(),
        **wrappers,
    )
    async with pipeline:
        await service.start(pipeline)
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                batch = [viewed("slow", n) for n in range(3)]
                posted = await client.post("/v1/events", json=batch, headers=AUTH)
                assert posted.status_code == 202
                await asyncio.wait_for(gate.entered.wait(), 10)

                async def held():
                    view = (await client.get("/v1/keys/acme:slow", headers=AUTH)).json()
                    return view if view["holder"]["queued"] == 3 else None

                view = await until(held)
                holder = view["holder"]
                assert holder["status"] == "running"
                assert holder["in_flight"] is True
                assert holder["consumer"] == view["range_owner"]["consumer"]
                assert holder["since"] is not None
                assert holder["in_flight_seconds"] >= 0
                lanes = (await client.get("/v1/lanes", headers=AUTH)).json()
                assert [k["key"] for k in lanes["in_flight_keys"]] == ["acme:slow"]
                assert lanes["deepest_queues"][0] == {"key": "acme:slow", "queued": 3}
                gate.open.set()

                async def idle():
                    view = (await client.get("/v1/keys/acme:slow", headers=AUTH)).json()
                    return view["holder"]["status"] == "idle"

                await until(idle)
        finally:
            gate.open.set()
            await service.stop()


async def test_logs_hold_no_token_and_no_phone_number(tmp_path: Path, caplog):
    from keylane.clock import SystemClock

    caplog.set_level(logging.DEBUG)
    journeys = load_default_journeys()
    service = Service(ApiConfig(port=0, token=TOKEN), journeys, access_log=True)
    pipeline = Pipeline(
        PipelineConfig(data_dir=tmp_path, consumers=1, history=False),
        journeys,
        SystemClock(),
        **service.wrappers(),
    )
    phone = "+14155550123"
    async with pipeline:
        await service.start(pipeline)
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                await client.post("/v1/events", json=subscribed("u1", phone=phone), headers=AUTH)
                bad = {**subscribed("u2"), "properties": {"phone": "+1305", "consent": {}}}
                await client.post("/v1/events", json=bad, headers=AUTH)
                await client.get(f"/v1/subscribers/acme/{phone}", params={"token": TOKEN})
                await client.get("/v1/overview", headers={"Authorization": f"Bearer {TOKEN}x"})
                await client.get("/v1/stream", params={"token": "wrong-" + TOKEN})
                logging.getLogger("keylane.test").warning(
                    "sending to %s with Bearer %s", phone, TOKEN
                )
                gateway = pipeline.gateway
                assert gateway is not None
                await until(lambda: gateway.stats().deliveries == 1)
        finally:
            await service.stop()
    text = caplog.text
    assert "GET /v1/subscribers/acme/" in text  # the access log was captured ...
    assert TOKEN not in text  # ... without the token
    assert phone not in text
    assert phone[1:] not in text
    assert "********0123" in text or "+*******0123" in text
