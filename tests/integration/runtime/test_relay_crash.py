"""Scenario 5 of the design note: the relay crashes after the provider call, before mark-sent.

The first relay's provider is the real webhook behind a wrapper that, for ann's HELP reply,
lets the request reach the gateway (delivered) and then "crashes": it raises (the dispatch task
dies) or hangs until the relay is stopped (the process dies). The row is left DISPATCHING under
the first relay's lease. A second relay claims it once the lease has expired and sends it again
under the same idempotency key: the gateway answers from its ledger and delivers nothing twice.

And the same without a crash: a provider call slower than the lease. The relay claims the row
again while the first call waits; the first call's late outcome is fenced, the second is recorded.
"""

from __future__ import annotations

import asyncio

import pytest

from keylane.providers import Delivery, Outcome, Provider, Receipt
from keylane.runtime import OutboxRelay
from keylane.state import SendStatus
from keylane.web.gateway import FaultPlan
from tests.integration.runtime.conftest import MakePipeline
from tests.integration.runtime.pipeline import WAIT, Pipeline, eventually

#: The first relay's lease, in real seconds.
LEASE = 1.0


class RelayCrashed(Exception):
    """The relay process died right after the provider call returned."""


class CrashAfterSend(Provider):
    """Sends through ``inner``, then crashes (``mode``: "raise" or "hang") on ``step`` of ``to``."""

    def __init__(self, inner: Provider, *, to: str, step: str, mode: str) -> None:
        self.inner = inner
        self.to = to
        self.step = step
        self.mode = mode
        self.crashed = asyncio.Event()
        self.receipt: Receipt | None = None

    async def _send(self, delivery: Delivery) -> Receipt:
        receipt = await self.inner.send(delivery)
        if self.crashed.is_set() or (delivery.to, delivery.step) != (self.to, self.step):
            return receipt
        self.receipt = receipt
        self.crashed.set()
        if self.mode == "raise":
            raise RelayCrashed(f"relay died after sending {delivery.idempotency_key}")
        await asyncio.Event().wait()  # frozen until the relay is stopped (cancelled)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        return None  # the pipeline closes the real providers


@pytest.mark.parametrize("mode", ["raise", "hang"])
async def test_relay_crash_after_the_provider_call(pipeline: Pipeline, mode: str) -> None:
    # Given a worker whose relay dies right after the gateway accepted ann's HELP reply
    crashing = CrashAfterSend(
        pipeline.provider, to=pipeline.phone("ann"), step="help_reply", mode=mode
    )
    config = pipeline.relay_config(lease=LEASE * pipeline.speed)
    worker = await pipeline.start_worker("w", provider=crashing, relay=config)
    assert worker.relay is not None
    await pipeline.publish(pipeline.subscribed("ann", "ann-sub"), pipeline.subscribed("bob"))
    await pipeline.publish(pipeline.sms("ann", "HELP", "ann-help"))
    # When the provider call has delivered it and the relay crashed before recording it
    await asyncio.wait_for(crashing.crashed.wait(), WAIT)
    assert crashing.receipt is not None
    assert crashing.receipt.outcome is Outcome.SENT
    await worker.relay.stop(grace=0.1)  # the dead relay's process is gone
    key = pipeline.key("ann")
    rows = await pipeline.store.sends_for(key)
    [row] = [r for r in rows if r.status is SendStatus.DISPATCHING]
    assert (row.owner, row.attempts) == ("w-relay", 1)
    assert row.lease_until is not None
    assert pipeline.delivered()[row.idempotency_key] == 1
    # And a second relay starts
    second = OutboxRelay(
        pipeline.store, pipeline.provider, pipeline.journeys, pipeline.clock,
        pipeline.relay_config(), owner="relay-2",
    )  # fmt: skip
    await second.start()
    try:
        await eventually(lambda: second.stats().outcomes.get("sent", 0) >= 1, "the retry")
        await pipeline.publish(pipeline.sms("ann", "HELP"), pipeline.sms("bob", "HELP"))
        await pipeline.settle()
    finally:
        await second.stop(2.0)

    # Then the second relay claimed it only after the lease and sent it under the same key
    rows = await pipeline.store.sends_for(key)
    [after] = [r for r in rows if r.idempotency_key == row.idempotency_key]
    assert after.status is SendStatus.SENT
    assert (after.owner, after.attempts) == ("relay-2", 2)
    assert after.dispatched_at is not None
    assert after.dispatched_at >= row.lease_until
    # And the gateway delivered it once: the retry was answered from its ledger
    stats = pipeline.gateway.stats()
    assert stats.repeated_attempts >= 1
    assert pipeline.delivered()[row.idempotency_key] == 1
    assert pipeline.steps_to("ann") == ["welcome_sms", "help_reply", "help_reply"]
    await pipeline.assert_effectively_once()


async def test_a_send_that_outlives_its_lease(make_pipeline: MakePipeline) -> None:
    # Given a gateway that delivers, then answers only after 1.5 s, and a relay whose lease is
    # 0.3 s: the relay claims the row again while its first call is still waiting
    pipeline = await make_pipeline(provider_timeout=5.0)
    pipeline.gateway.set_faults(
        FaultPlan(timeout_rate=1.0, timeout_mode="after_delivery", timeout_delay=1.5)
    )
    worker = await pipeline.start_worker(
        "w", relay=pipeline.relay_config(lease=0.3 * pipeline.speed)
    )
    assert worker.relay is not None
    relay = worker.relay
    await pipeline.publish(pipeline.subscribed("ann"))
    await eventually(lambda: relay.stats().claimed >= 2, "the claim after the lease")
    pipeline.gateway.clear_faults()
    await pipeline.settle()
    await eventually(lambda: relay.stats().in_flight == 0, "the first call's late answer")
    # Then the late first answer was fenced (not recorded) and the row is SENT once
    assert relay.stats().fenced >= 1
    [row] = await pipeline.store.sends_for(pipeline.key("ann"))
    assert row.status is SendStatus.SENT
    assert row.attempts >= 2
    assert pipeline.gateway.stats().repeated_attempts >= 1
    assert pipeline.steps_to("ann") == ["welcome_sms"]
    await pipeline.assert_effectively_once()
