"""Scenario 6 of the design note and the issue's provider faults: the gateway fails for a while.

The embedded gateway's fault switch (down for a while, every request a 5xx, every request timing
out before or after delivering) and its listener stopped and started again (refused
connections). Meanwhile the relay retries under the same keys with backoff; nothing is marked
SENT. When the gateway is back every send goes out once. A 4xx is the contract's permanent
failure: never retried, never delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keylane.providers import ChannelRouter, WebhookProvider
from keylane.state import SendStatus
from keylane.web.gateway import FaultPlan
from tests.integration.runtime.conftest import MakePipeline
from tests.integration.runtime.pipeline import Pipeline, eventually

USERS = ("ann", "bob", "cyd")
#: How long the ``down_for`` fault would last, real seconds (the test ends it sooner).
DOWN = 60.0
#: The providers' timeout in the timeout scenarios (the gateway holds requests longer).
CLIENT_TIMEOUT = 0.3

FAULTS = {
    "down_for": FaultPlan(down_for=DOWN),
    "error_500": FaultPlan(error_rate=1.0, error_status=500),
    "error_503": FaultPlan(error_rate=1.0, error_status=503),
    "timeout_before_delivery": FaultPlan(
        timeout_rate=1.0, timeout_mode="before_delivery", timeout_delay=1.0
    ),
    "timeout_after_delivery": FaultPlan(
        timeout_rate=1.0, timeout_mode="after_delivery", timeout_delay=1.0
    ),
}


async def _publish_all(pipeline: Pipeline) -> None:
    await pipeline.publish(*(pipeline.subscribed(u) for u in USERS))
    await pipeline.publish(*(pipeline.sms(u, "HELP") for u in USERS))


async def _rows(pipeline: Pipeline) -> list[SendStatus]:
    return [r.status for u in USERS for r in await pipeline.store.sends_for(pipeline.key(u))]


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_gateway_fault_then_back(make_pipeline: MakePipeline, fault: str) -> None:
    # Given a pipeline whose gateway fails every request
    pipeline = await make_pipeline(provider_timeout=CLIENT_TIMEOUT)
    worker = await pipeline.start_worker("w")
    assert worker.relay is not None
    relay = worker.relay
    pipeline.gateway.set_faults(FAULTS[fault])
    # When every subscriber subscribes and sends HELP (six sends)
    await _publish_all(pipeline)
    # Then every send is retried under its key, and none is marked SENT
    await eventually(
        lambda: relay.stats().outcomes.get("retry", 0) >= 2 * len(USERS), "a retry of every send"
    )
    statuses = await _rows(pipeline)
    assert len(statuses) == 2 * len(USERS)
    assert SendStatus.SENT not in statuses
    assert set(statuses) <= {SendStatus.PENDING, SendStatus.RETRY, SendStatus.DISPATCHING}
    if fault != "timeout_after_delivery":
        assert pipeline.gateway.stats().deliveries == 0
    # When the gateway is back
    back_at = datetime.now(UTC)
    pipeline.gateway.clear_faults()
    await pipeline.settle()
    # Then every send went out exactly once
    for u in USERS:
        # (in either order: after retries a subscriber's sends need not arrive in creation order)
        assert sorted(pipeline.steps_to(u)) == ["help_reply", "welcome_sms"]
    assert set(await _rows(pipeline)) == {SendStatus.SENT}
    stats = pipeline.gateway.stats()
    assert stats.injected_failures, stats
    if fault != "timeout_after_delivery":  # nothing was delivered before it was back
        assert min(r.received_at for r in pipeline.gateway.ledger.deliveries()) >= back_at
    if fault == "timeout_after_delivery":
        assert stats.repeated_attempts >= 1  # the lost answers' retries were replays
    await pipeline.assert_effectively_once()


async def test_gateway_listener_stopped_and_restarted(pipeline: Pipeline) -> None:
    # Given a pipeline whose gateway is not listening (connections refused)
    worker = await pipeline.start_worker("w")
    assert worker.relay is not None
    relay = worker.relay
    await pipeline.gateway.stop()
    # When every subscriber subscribes and sends HELP
    await _publish_all(pipeline)
    await eventually(
        lambda: relay.stats().outcomes.get("retry", 0) >= 2 * len(USERS), "a retry of every send"
    )
    # Then the sends wait, retried, none delivered
    assert SendStatus.SENT not in await _rows(pipeline)
    assert pipeline.gateway.stats().deliveries == 0
    # When it listens again on the same port, then everything goes out once
    await pipeline.gateway.start()
    await pipeline.settle()
    for u in USERS:
        # (in either order: after retries a subscriber's sends need not arrive in creation order)
        assert sorted(pipeline.steps_to(u)) == ["help_reply", "welcome_sms"]
    await pipeline.assert_effectively_once()


async def test_provider_4xx_is_permanent(pipeline: Pipeline) -> None:
    # Given an SMS webhook that answers 404 (a wrong URL: the contract's permanent failure)
    wrong = ChannelRouter({"sms": WebhookProvider(f"{pipeline.gateway.url}/v1/nowhere")})
    try:
        worker = await pipeline.start_worker("w", provider=wrong)
        assert worker.relay is not None
        relay = worker.relay
        # When every subscriber subscribes and sends HELP
        await _publish_all(pipeline)
        await pipeline.settle()
    finally:
        for w in pipeline.workers:
            await w.stop(2.0)
        await wrong.close()
    # Then each send failed once, permanently, and was neither retried nor delivered
    rows = [r for u in USERS for r in await pipeline.store.sends_for(pipeline.key(u))]
    assert len(rows) == 2 * len(USERS)
    assert {(r.status, r.attempts) for r in rows} == {(SendStatus.FAILED_PERMANENT, 1)}
    assert all("404" in r.detail for r in rows), [r.detail for r in rows]
    assert relay.stats().outcomes == {"failed_permanent": 2 * len(USERS)}
    assert pipeline.gateway.stats().deliveries == 0
    # And every decision was still committed once, in order
    await pipeline.assert_effectively_once()


@pytest.mark.parametrize("mode", ["after_delivery", "before_delivery"])
async def test_a_provider_that_does_not_honour_keys_gives_unknown(
    make_pipeline: MakePipeline, mode: str
) -> None:
    # Given a webhook declared not to honour idempotency keys, and a gateway whose answers time
    # out (after delivering, or before)
    pipeline = await make_pipeline()
    unsafe = WebhookProvider(
        pipeline.gateway.messages_url, timeout=CLIENT_TIMEOUT, honours_idempotency=False
    )
    pipeline.gateway.set_faults(FaultPlan(timeout_rate=1.0, timeout_mode=mode, timeout_delay=1.0))
    try:
        worker = await pipeline.start_worker("w", provider=ChannelRouter({"sms": unsafe}))
        assert worker.relay is not None
        relay = worker.relay
        await pipeline.publish(*(pipeline.subscribed(u) for u in USERS))
        await pipeline.settle()
    finally:
        for w in pipeline.workers:
            await w.stop(2.0)
        await unsafe.close()
    # Then each send is UNKNOWN after one attempt: counted, never retried (a retry could
    # deliver it twice), so delivered at most once
    rows = [r for u in USERS for r in await pipeline.store.sends_for(pipeline.key(u))]
    assert {(r.status, r.attempts) for r in rows} == {(SendStatus.UNKNOWN, 1)}
    assert relay.stats().outcomes == {"unknown": len(USERS)}
    delivered = pipeline.gateway.stats().deliveries
    assert delivered == (len(USERS) if mode == "after_delivery" else 0)
    await pipeline.assert_effectively_once(outbox_matches=False)
