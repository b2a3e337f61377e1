"""Scenario 7 of the design note: STOP arrives while a send is pending.

Two ways a pending send meets a STOP, both judged by the gateway's phone view:

- the send is PENDING, deferred by quiet hours (a cart SMS whose timer fires at 07:10 in San
  Francisco, before the 08:00 opening): the STOP's commit cancels it in the same transaction;
  the clock then runs past the opening and it never goes, while another shopper's identical
  cart SMS does;
- the send is already claimed by the relay (DISPATCHING, which a commit does not touch) when the
  STOP commits: the relay's dispatch-time re-check sees the opt-out and skips it.

Either way it is never delivered, and the shopper gets exactly one STOP confirmation (a second
STOP is answered by nothing).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from keylane.runtime.codec import decode_intent
from keylane.state import ClaimedSend, SendRecord, SendStatus, StateStore
from tests.integration.runtime.conftest import MakePipeline
from tests.integration.runtime.pipeline import WAIT, Pipeline, eventually
from tests.integration.runtime.wrappers import StoreProxy

#: 06:40 in San Francisco (PST): a cart's 30-minute timer fires in quiet hours, at 07:10.
EARLY = datetime(2026, 11, 27, 14, 40, tzinfo=UTC)
#: 08:00 in San Francisco: the SMS window opens.
OPENING = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


async def _row(pipeline: Pipeline, subscriber: str, step: str) -> SendRecord | None:
    for row in await pipeline.store.sends_for(pipeline.key(subscriber)):
        if decode_intent(row.payload).step == step:
            return row
    return None


async def test_stop_cancels_a_send_deferred_by_quiet_hours(make_pipeline: MakePipeline) -> None:
    # Given two shoppers who subscribed and added to the cart at 06:40 local time
    pipeline = await make_pipeline(speed=1800.0, start=EARLY)
    worker = await pipeline.start_worker("w")
    for u in ("ann", "bob"):
        await pipeline.publish(pipeline.subscribed(u), pipeline.event(u, "added_to_cart", sku="s1"))
    # When their cart timers fire at 07:10, in quiet hours: the cart SMS is deferred, PENDING
    rows: dict[str, SendRecord] = {}

    async def deferred() -> bool:
        for u in ("ann", "bob"):
            row = await _row(pipeline, u, "cart_sms")
            if row is not None:
                rows[u] = row
        # (the store shows a commit a moment before the worker has counted its reasons)
        return len(rows) == 2 and "deferred_quiet_hours" in worker.stats().reasons

    await eventually(deferred, "both cart SMS to be planned")
    for row in rows.values():
        assert row.status is SendStatus.PENDING
        assert row.not_before >= OPENING.timestamp()
    await eventually(
        lambda: worker.stats().reasons.get("deferred_quiet_hours", 0) >= 2, "both deferrals"
    )
    assert worker.stats().reasons["deferred_quiet_hours"] == 2
    # And ann replies STOP (twice) while hers is pending
    await pipeline.publish(
        pipeline.sms("ann", "STOP", "stop-1"), pipeline.sms("ann", "STOP", "stop-2")
    )
    await pipeline.wait_committed("stop-1", "stop-2")
    # Then the STOP's commit cancelled it
    cancelled = await _row(pipeline, "ann", "cart_sms")
    assert cancelled is not None
    assert cancelled.status is SendStatus.CANCELLED
    # And once the window is open and past ann's planned time, bob's goes out and ann's never
    await eventually(lambda: "cart_sms" in pipeline.steps_to("bob"), "bob's cart SMS")
    await eventually(
        lambda: pipeline.clock.now().timestamp() > rows["ann"].not_before + 60, "ann's slot"
    )
    await pipeline.settle()
    assert pipeline.steps_to("ann") == ["welcome_sms", "stop_confirmation"]
    assert pipeline.steps_to("bob") == ["welcome_sms", "cart_sms"]
    final = await _row(pipeline, "ann", "cart_sms")
    assert final is not None
    assert (final.status, final.attempts) == (SendStatus.CANCELLED, 0)
    await pipeline.assert_effectively_once()


class HoldClaim(StoreProxy):
    """Holds the relay's first claim of a row of ``key`` (DISPATCHING) until :attr:`release`."""

    def __init__(self, inner: StateStore, key: str) -> None:
        super().__init__(inner)
        self.key = key
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        claims = await self.inner.claim_sends(now=now, limit=limit, lease=lease, owner=owner)
        if not self.held.is_set() and any(c.key == self.key for c in claims):
            self.held.set()
            await asyncio.wait_for(self.release.wait(), WAIT)
        return claims


async def test_stop_while_the_relay_holds_the_send(pipeline: Pipeline) -> None:
    # Given a relay that has just claimed ann's welcome SMS (DISPATCHING)
    proxy = HoldClaim(pipeline.store, pipeline.key("ann"))
    await pipeline.start_worker("w", store=proxy)
    await pipeline.publish(pipeline.subscribed("ann"), pipeline.subscribed("bob"))
    await asyncio.wait_for(proxy.held.wait(), WAIT)
    welcome = await _row(pipeline, "ann", "welcome_sms")
    assert welcome is not None
    assert welcome.status is SendStatus.DISPATCHING
    # When ann's STOP (twice) commits before the relay gets to it
    await pipeline.publish(
        pipeline.sms("ann", "STOP", "stop-1"), pipeline.sms("ann", "STOP", "stop-2")
    )
    await pipeline.wait_committed("stop-1", "stop-2")
    after_stop = await _row(pipeline, "ann", "welcome_sms")
    assert after_stop is not None
    assert after_stop.status is SendStatus.DISPATCHING  # a commit does not touch a claimed row
    proxy.release.set()
    await pipeline.settle()
    # Then the dispatch re-check skipped it: never delivered, one STOP confirmation
    skipped = await _row(pipeline, "ann", "welcome_sms")
    assert skipped is not None
    assert (skipped.status, skipped.detail) == (SendStatus.SKIPPED, "skipped_suppressed")
    assert pipeline.steps_to("ann") == ["stop_confirmation"]
    assert pipeline.steps_to("bob") == ["welcome_sms"]
    await pipeline.assert_effectively_once()
