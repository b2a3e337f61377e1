"""WebhookProvider -> GatewayServer over real HTTP on 127.0.0.1: the webhook contract end to end.

No mocks: a real uvicorn server, a real httpx client. Every test's gateway must end with 0
duplicate deliveries (checked when the fixture stops it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from keylane.errors import InvalidArgumentError
from keylane.providers import ChannelRouter, Outcome, Receipt, WebhookProvider
from keylane.web.gateway import FaultPlan, GatewayServer, LedgerProvider
from tests.unit.providers.deliveries import make_delivery

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayServer]:
    server = GatewayServer()
    await server.start()
    yield server
    await server.stop()
    assert server.stats().duplicate_deliveries == 0


@pytest.fixture
async def provider(gateway: GatewayServer) -> AsyncIterator[WebhookProvider]:
    async with WebhookProvider(gateway.messages_url, timeout=5) as webhook:
        yield webhook


@pytest.fixture
async def client(gateway: GatewayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as http:
        yield http


async def until(condition: Callable[[], bool], attempts: int = 500) -> None:
    """Wait (bounded) for something the server does concurrently with the test."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def send_until_sent(provider: WebhookProvider, n: int, attempts: int = 500) -> list[Receipt]:
    """Retry one delivery under its key with a short backoff until SENT (as the relay does)."""
    receipts = []
    for _ in range(attempts):
        receipts.append(await provider.send(make_delivery(n)))
        if receipts[-1].outcome is Outcome.SENT:
            return receipts
        assert receipts[-1].outcome is Outcome.FAILED_RETRYABLE
        await asyncio.sleep(0.02)
    raise AssertionError(f"delivery {n} never went out: {receipts[-1]}")


# -- the happy path, replays and conflicts ----------------------------------------------------


async def test_delivery(gateway, provider, client):
    receipt = await provider.send(make_delivery(1))
    assert (receipt.outcome, receipt.status_code, receipt.replayed) == (Outcome.SENT, 201, False)
    assert receipt.provider_message_id == "msg_00000001"
    view = (await client.get("/v1/messages", params={"to": make_delivery(1).to})).json()
    assert [m["idempotency_key"] for m in view["messages"]] == [make_delivery(1).idempotency_key]
    assert view["messages"][0]["body"] == make_delivery(1).body
    assert view["messages"][0]["status"] == "delivered"
    assert gateway.stats().deliveries == 1


async def test_replay_answers_like_the_first_and_delivers_once(gateway, provider, client):
    first = await provider.send(make_delivery(1))
    again = await provider.send(make_delivery(1))
    assert again.outcome is Outcome.SENT
    assert (again.status_code, again.provider_message_id) == (
        first.status_code,
        first.provider_message_id,
    )
    assert (first.replayed, again.replayed) == (False, True)
    # the raw answers: same status, same bytes, and the replay header on the repeat only
    body = make_delivery(1).to_json()
    headers = {**JSON, "Idempotency-Key": make_delivery(1).idempotency_key}
    raw = await client.post("/v1/messages", content=body, headers=headers)
    raw_again = await client.post("/v1/messages", content=body, headers=headers)
    assert raw.status_code == raw_again.status_code == 201
    assert raw.content == raw_again.content
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert len(gateway.ledger) == 1
    stats = gateway.stats()
    assert (stats.deliveries, stats.repeated_attempts) == (1, 3)


async def test_same_key_different_body_is_409_and_permanent(gateway, provider, caplog):
    await provider.send(make_delivery(1))
    with caplog.at_level(logging.ERROR, logger="keylane.providers.webhook"):
        receipt = await provider.send(make_delivery(1, body="a different text"))
    assert (receipt.outcome, receipt.status_code) == (Outcome.FAILED_PERMANENT, 409)
    assert "differs in: body" in receipt.detail
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 1
    assert make_delivery(1).idempotency_key in logged[0]
    assert make_delivery(1).to not in logged[0]
    assert [r.delivery.body for r in gateway.ledger.deliveries()] == [make_delivery(1).body]
    assert gateway.stats().conflicts == 1


async def test_fifty_concurrent_posts_of_one_key_deliver_once(gateway, provider):
    receipts = await asyncio.gather(*(provider.send(make_delivery(1)) for _ in range(50)))
    assert all(r.outcome is Outcome.SENT for r in receipts)
    assert sum(not r.replayed for r in receipts) == 1
    assert {r.provider_message_id for r in receipts} == {"msg_00000001"}
    assert len(gateway.ledger) == 1
    assert gateway.stats().repeated_attempts == 49


async def test_channel_router_over_two_webhooks(gateway):
    sms = WebhookProvider(gateway.messages_url)
    email = WebhookProvider(gateway.messages_url)
    async with ChannelRouter({"sms": sms, "email": email}) as router:
        await router.send(make_delivery(1))
        await router.send(make_delivery(2, channel="email", to="shopper@example.com"))
    assert gateway.stats().by_channel["email"].deliveries == 1
    assert gateway.stats().by_channel["sms"].deliveries == 1


# -- status mapping and injected faults -------------------------------------------------------


async def test_4xx_is_permanent(gateway):
    async with WebhookProvider(f"{gateway.url}/v1/nowhere") as wrong_path:
        receipt = await wrong_path.send(make_delivery(1))
    assert (receipt.outcome, receipt.status_code) == (Outcome.FAILED_PERMANENT, 404)
    small = GatewayServer(max_body_bytes=1024)
    await small.start()
    try:
        async with WebhookProvider(small.messages_url) as webhook:
            receipt = await webhook.send(make_delivery(1, body="x" * 2000))
        assert (receipt.outcome, receipt.status_code) == (Outcome.FAILED_PERMANENT, 413)
        assert "larger than 1024 bytes" in receipt.detail
        assert len(small.ledger) == 0
    finally:
        await small.stop()


async def test_injected_5xx_is_retryable_and_the_retry_goes_out_once(gateway, provider):
    gateway.set_faults(FaultPlan(error_rate=1.0, error_status=502))
    failed = await provider.send(make_delivery(1))
    assert (failed.outcome, failed.status_code) == (Outcome.FAILED_RETRYABLE, 502)
    assert len(gateway.ledger) == 0
    gateway.clear_faults()
    retried = await provider.send(make_delivery(1))
    assert (retried.outcome, retried.replayed) == (Outcome.SENT, False)
    assert len(gateway.ledger) == 1
    assert gateway.stats().injected_failures["error"] == 1


async def test_a_share_of_5xx_with_retries_delivers_each_key_once(gateway, provider):
    gateway.set_faults(FaultPlan(error_rate=0.3, seed=11))
    all_receipts = [await send_until_sent(provider, n) for n in range(1, 41)]
    failed = sum(r.outcome is Outcome.FAILED_RETRYABLE for rs in all_receipts for r in rs)
    assert failed == gateway.stats().injected_failures["error"]
    assert failed > 0
    assert len(gateway.ledger) == 40
    assert gateway.stats().repeated_attempts == 0


async def test_timeout_after_delivery_then_retry_is_a_replay(gateway, provider):
    # Given a gateway that delivers, then answers later than the client waits
    gateway.set_faults(FaultPlan(timeout_rate=1.0, timeout_mode="after_delivery", timeout_delay=30))
    async with WebhookProvider(gateway.messages_url, timeout=0.3) as impatient:
        lost = await impatient.send(make_delivery(1))
    # Then the client cannot tell, and may retry
    assert (lost.outcome, lost.status_code) == (Outcome.FAILED_RETRYABLE, None)
    assert "timeout" in lost.detail
    await until(lambda: len(gateway.ledger) == 1)  # it did go out
    gateway.clear_faults()
    retried = await provider.send(make_delivery(1))
    # And the retry is answered from the ledger: one delivery
    assert (retried.outcome, retried.replayed) == (Outcome.SENT, True)
    assert len(gateway.ledger) == 1
    assert gateway.stats().injected_failures["timeout_after_delivery"] == 1


async def test_timeout_before_delivery_then_retry_delivers(gateway, provider):
    gateway.set_faults(
        FaultPlan(timeout_rate=1.0, timeout_mode="before_delivery", timeout_delay=30)
    )
    async with WebhookProvider(gateway.messages_url, timeout=0.3) as impatient:
        lost = await impatient.send(make_delivery(1))
    assert lost.outcome is Outcome.FAILED_RETRYABLE
    assert len(gateway.ledger) == 0  # it did not go out (it is still held)
    gateway.clear_faults()
    retried = await provider.send(make_delivery(1))
    assert (retried.outcome, retried.replayed) == (Outcome.SENT, False)
    assert len(gateway.ledger) == 1
    assert gateway.stats().injected_failures["timeout_before_delivery"] == 1


async def test_timeout_before_delivery_answers_504_to_a_patient_client(gateway, client):
    await client.post(
        "/v1/faults",
        json={"timeout_rate": 1, "timeout_mode": "before_delivery", "timeout_delay": 0.05},
    )
    body = make_delivery(1).to_json()
    headers = {**JSON, "Idempotency-Key": make_delivery(1).idempotency_key}
    answer = await client.post("/v1/messages", content=body, headers=headers)
    assert answer.status_code == 504
    assert answer.json()["error"] == "injected_timeout"
    assert len(gateway.ledger) == 0


async def test_down_for_a_while_then_up_delivers_each_key_once(gateway, provider, client):
    # Given some deliveries that went out before the gateway went down
    for n in (1, 2, 3):
        await provider.send(make_delivery(n))
    down = await client.post("/v1/faults", json={"down_for": 1.0})
    assert down.json()["down_remaining"] > 0
    answer = await client.post(
        "/v1/messages",
        content=make_delivery(9).to_json(),
        headers={**JSON, "Idempotency-Key": make_delivery(9).idempotency_key},
    )
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) >= 1
    # When the sender retries everything (delivered or not) under the same keys until it is up
    receipts = [await send_until_sent(provider, n) for n in range(1, 7)]
    # Then every key went out exactly once
    assert sorted(r.delivery.subscriber_id for r in gateway.ledger.deliveries()) == [
        f"sub-{n}" for n in range(1, 7)
    ]
    assert [rs[-1].replayed for rs in receipts] == [True] * 3 + [False] * 3
    assert gateway.stats().injected_failures["down"] >= 1


async def test_listener_stopped_then_started_on_the_same_port(gateway, provider):
    await provider.send(make_delivery(1))
    url = gateway.url
    await gateway.stop()
    refused = await provider.send(make_delivery(2))
    assert (refused.outcome, refused.status_code) == (Outcome.FAILED_RETRYABLE, None)
    assert "ConnectError" in refused.detail
    assert await gateway.start() == url
    retried = await provider.send(make_delivery(2))
    again = await provider.send(make_delivery(1))
    assert (retried.outcome, retried.replayed) == (Outcome.SENT, False)
    assert again.replayed is True
    assert len(gateway.ledger) == 2


async def test_restart_with_the_log_still_refuses_to_deliver_twice(tmp_path):
    log = tmp_path / "gateway.jsonl"
    async with (
        GatewayServer(log_path=log) as first,
        WebhookProvider(first.messages_url) as webhook,
    ):
        originals = [await webhook.send(make_delivery(n)) for n in (1, 2, 3)]
        await webhook.send(make_delivery(1))
    # A new gateway process (a new object, another port) on the same file
    async with GatewayServer(log_path=log) as second:
        assert len(second.ledger) == 3  # rebuilt before serving
        async with WebhookProvider(second.messages_url) as webhook:
            replays = [await webhook.send(make_delivery(n)) for n in (1, 2, 3)]
            conflict = await webhook.send(make_delivery(2, body="changed"))
            new = await webhook.send(make_delivery(4))
        stats = second.stats()
    assert [r.replayed for r in replays] == [True] * 3
    assert [r.provider_message_id for r in replays] == [r.provider_message_id for r in originals]
    assert conflict.status_code == 409
    assert new.provider_message_id == "msg_00000004"
    assert (stats.deliveries, stats.repeated_attempts, stats.conflicts) == (4, 4, 1)
    assert stats.duplicate_deliveries == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["type"] for r in records].count("delivery") == 4


async def test_two_gateways_cannot_share_a_log(tmp_path):
    log = tmp_path / "gateway.jsonl"
    async with GatewayServer(log_path=log):
        with pytest.raises(InvalidArgumentError, match="in use by another gateway"):
            await GatewayServer(log_path=log).start()


async def test_port_in_use_is_a_clear_error(gateway):
    with pytest.raises(InvalidArgumentError, match=f"cannot listen on 127.0.0.1:{gateway.port}"):
        await GatewayServer(port=gateway.port).start()


# -- the read side ----------------------------------------------------------------------------


async def test_phone_view(gateway, provider, client):
    phone = make_delivery(1).to
    for step in ("reminder", "last-chance"):
        await provider.send(
            make_delivery(1, step=step, idempotency_key=f"brand-1:sub-1:cart:run-1:{step}")
        )
    await provider.send(make_delivery(2))
    await provider.send(make_delivery(3, channel="email", to="shopper@example.com"))
    encoded = (await client.get(f"/v1/messages?to=%2B{phone[1:]}")).json()
    unencoded = (await client.get(f"/v1/messages?to=+{phone[1:]}")).json()  # "+" reads as " "
    assert encoded == unencoded
    assert encoded["to"] == phone
    assert [m["step"] for m in encoded["messages"]] == ["reminder", "last-chance"]
    inbox = (await client.get("/v1/messages", params={"to": "shopper@example.com"})).json()
    assert [m["channel"] for m in inbox["messages"]] == ["email"]
    missing = await client.get("/v1/messages")
    assert (missing.status_code, missing.json()["field"]) == (400, "to")


async def test_deliveries_are_paged(gateway, provider, client):
    for n in range(1, 6):
        await provider.send(make_delivery(n))
    seen: list[str] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        page = (await client.get("/v1/deliveries", params={"after": after, "limit": 2})).json()
        seen += [d["subscriber_id"] for d in page["deliveries"]]
        after, pages = page["next_after"], pages + 1
    assert seen == [f"sub-{n}" for n in range(1, 6)]
    assert pages == 3
    bad = await client.get("/v1/deliveries", params={"limit": "-1"})
    assert (bad.status_code, bad.json()["field"]) == (400, "limit")


async def test_stats_endpoint(gateway, provider, client):
    await provider.send(make_delivery(1))
    await provider.send(make_delivery(1))
    stats = (await client.get("/v1/stats")).json()
    assert stats["deliveries"] == 1
    assert stats["repeated_attempts"] == 1
    assert stats["duplicate_deliveries"] == 0
    assert stats["by_channel"]["sms"] == {"deliveries": 1, "repeated_attempts": 1, "conflicts": 0}
    assert stats == gateway.stats().to_dict()


async def test_faults_endpoint(gateway, client):
    set_plan = await client.post("/v1/faults", json={"error_rate": 0.5, "seed": 4})
    assert set_plan.json()["error_rate"] == 0.5
    assert gateway.faults == FaultPlan(error_rate=0.5, seed=4)
    assert (await client.get("/v1/faults")).json()["seed"] == 4
    bad = await client.post("/v1/faults", json={"error_rate": 7})
    assert (bad.status_code, bad.json()["field"]) == (422, "error_rate")
    unknown = await client.post("/v1/faults", json={"explode": True})
    assert (unknown.status_code, unknown.json()["field"]) == (422, "explode")
    malformed = await client.post("/v1/faults", content=b"{", headers=JSON)
    assert malformed.status_code == 422
    assert gateway.faults == FaultPlan(error_rate=0.5, seed=4)  # bad plans change nothing
    cleared = await client.delete("/v1/faults")
    assert cleared.json()["error_rate"] == 0
    assert gateway.faults == FaultPlan()


# -- bad input --------------------------------------------------------------------------------


async def post(client: httpx.AsyncClient, body: bytes, **headers: str) -> httpx.Response:
    return await client.post("/v1/messages", content=body, headers=headers)


async def test_bad_input_is_refused_with_reasons_and_not_saved(gateway, client):
    key = make_delivery(1).idempotency_key
    good = make_delivery(1).to_json()
    cases = [
        (
            await post(client, good, **{"Idempotency-Key": key, "Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
            "",
        ),
        (await post(client, good, **{"Idempotency-Key": key}), 415, "unsupported_media_type", ""),
        (await post(client, good, **JSON), 400, "missing_idempotency_key", "Idempotency-Key"),
        (
            await post(client, good, **JSON, **{"Idempotency-Key": "other"}),
            422,
            "idempotency_key_mismatch",
            "idempotency_key",
        ),
        (
            await post(client, b"{not json", **JSON, **{"Idempotency-Key": key}),
            422,
            "invalid_field",
            "",
        ),
        (
            await post(
                client, good.replace(b'"sms"', b'"fax"'), **JSON, **{"Idempotency-Key": key}
            ),
            422,
            "invalid_field",
            "channel",
        ),
        (
            await post(client, good.replace(b'"+1', b'"1'), **JSON, **{"Idempotency-Key": key}),
            422,
            "invalid_field",
            "to",
        ),
        (
            await post(client, good[:-1] + b',"extra":1}', **JSON, **{"Idempotency-Key": key}),
            422,
            "invalid_field",
            "extra",
        ),
        (
            await post(client, b"{" + b" " * 300_000 + b"}", **JSON, **{"Idempotency-Key": key}),
            413,
            "payload_too_large",
            "",
        ),
    ]
    for answer, status, error, field in cases:
        body = answer.json()
        assert (answer.status_code, body["error"], body["field"]) == (status, error, field)
        assert body["reason"]
    assert len(gateway.ledger) == 0
    assert gateway.stats().rejected == len(cases)
    # a key refused as bad input is not saved: the corrected request goes out
    accepted = await post(client, good, **JSON, **{"Idempotency-Key": key})
    assert (accepted.status_code, len(gateway.ledger)) == (201, 1)


async def test_chunked_body_over_the_limit_is_413(gateway, client):
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 10_000

    answer = await client.post(
        "/v1/messages",
        content=chunks(),
        headers={**JSON, "Idempotency-Key": "k"},
    )
    assert answer.status_code == 413
    assert "larger than" in answer.json()["reason"]


# -- the program ------------------------------------------------------------------------------


def test_python_m_gateway_serves_until_sigterm(tmp_path):
    log = tmp_path / "gateway.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "keylane.web.gateway", "--port", "0", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("keylane gateway listening on http://127.0.0.1:"), line
        url = line.split()[4]
        delivery = make_delivery(1)
        headers = {**JSON, "Idempotency-Key": delivery.idempotency_key}
        answer = httpx.post(f"{url}/v1/messages", content=delivery.to_json(), headers=headers)
        assert answer.status_code == 201
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped: 1 deliveries, 0 repeated attempts, 0 duplicate deliveries" in out
    assert json.loads(log.read_text().splitlines()[0])["type"] == "delivery"


def test_python_m_gateway_bad_options():
    result = subprocess.run(
        [sys.executable, "-m", "keylane.web.gateway", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "gateway port must be 0..65535" in result.stderr


# -- in-process submits -----------------------------------------------------------------------


async def test_ledger_provider_shares_the_servers_ledger_across_restarts(tmp_path):
    server = GatewayServer(log_path=tmp_path / "gateway.jsonl")
    direct = LedgerProvider(server.ledger)
    await server.start()
    try:
        assert (await direct.send(make_delivery(1))).outcome is Outcome.SENT
        async with httpx.AsyncClient(base_url=server.url) as http:
            view = (await http.get("/v1/messages", params={"to": make_delivery(1).to})).json()
        assert len(view["messages"]) == 1
        await server.stop()
        stopped = await direct.send(make_delivery(2))
        assert stopped.outcome is Outcome.FAILED_RETRYABLE
        await server.start()
        replay = await direct.send(make_delivery(1))
        second = await direct.send(make_delivery(2))
    finally:
        await server.stop()
    assert replay.replayed is True
    assert (second.outcome, second.replayed) == (Outcome.SENT, False)
    assert server.stats().deliveries == 2
    assert server.stats().duplicate_deliveries == 0
