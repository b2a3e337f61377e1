"""Scenarios 1 and 2 of the design note: a worker crashes after its commit, or before it.

One worker with two Key_Shared consumers. A store proxy "crashes" the consumer that owns the
chosen subscriber at the chosen event by closing it, either right after the commit returned
(before lanes can ack: the ack fails) or right before the commit (the commit never happens).
The broker redelivers the message to the group's other consumer. The HELPs are published
unbatched, or batched (KEY_BASED, a subscriber's HELPs in one entry): then the redelivery also
brings back the entry's messages that were already acked, each a dedupe no-op.

Judged by the history checker and the gateway's log: 0 duplicate deliveries, 0 lost decisions,
decisions in publish order, and the scenario's own expectation.
"""

from __future__ import annotations

import pytest

from keylane.brokers.base import Consumer
from keylane.check import DEDUPE, OK
from keylane.state import Commit, CommitResult, StateError
from tests.integration.runtime.pipeline import Pipeline, eventually
from tests.integration.runtime.wrappers import SimulatedCrash, StoreProxy

USERS = ("ann", "bob", "cyd")


class CrashAtCommit(StoreProxy):
    """Closes ``victim`` (a consumer) at the commit of ``event_id``: before or after it lands."""

    def __init__(self, inner: Pipeline, event_id: str, *, after: bool) -> None:
        super().__init__(inner.store)
        self.event_id = event_id
        self.after = after
        self.victim: Consumer | None = None
        self.crashed = False

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        hit = not self.crashed and any(c.event_id == self.event_id for c in commits)
        if not hit:
            return await self.inner.commit_many(commits)
        self.crashed = True
        assert self.victim is not None
        if self.after:
            results = await self.inner.commit_many(commits)
            await self.victim.close()  # the ack that follows fails: the message is redelivered
            return results
        await self.victim.close()  # the process dies before its transaction
        others = [c for c in commits if c.event_id != self.event_id]
        landed = iter(await self.inner.commit_many(others))
        return [
            SimulatedCrash(f"crashed before committing {c.event_id}")
            if c.event_id == self.event_id
            else next(landed)
            for c in commits
        ]


async def _owner_of(pipeline: Pipeline, event_id: str) -> str:
    await pipeline.wait_committed(event_id)
    attempts = pipeline.recorder.history().attempts
    return next(a.consumer for a in attempts if a.event_id == event_id and a.outcome == OK)


async def _run(pipeline: Pipeline, *, after: bool, batched: bool) -> tuple[CrashAtCommit, str]:
    # Given a worker with two consumers, every subscriber subscribed (a welcome SMS each)
    proxy = CrashAtCommit(pipeline, "ann-help-2", after=after)
    worker = await pipeline.start_worker("w", store=proxy, consumers=2)
    await pipeline.publish(*(pipeline.subscribed(u, f"{u}-sub") for u in USERS))
    owner = await _owner_of(pipeline, "ann-sub")
    proxy.victim = pipeline.broker.consumers[owner]
    # When each sends HELP three times and ann's owner crashes at the commit of her second
    helps = [pipeline.sms(u, "HELP", f"{u}-help-{n}") for n in (1, 2, 3) for u in USERS]
    ids = await pipeline.publish(*helps, batched=batched)
    ann = [i for e, i in zip(helps, ids, strict=True) if e.subscriber_id == "ann"]
    if batched:  # they share a batch entry
        assert len({(i.ledger_id, i.entry_id) for i in ann}) < len(ann), ann
    await pipeline.settle()
    await eventually(lambda: proxy.crashed, "the crash")
    assert worker.stats().lanes.total.consumer_closed
    return proxy, owner


BATCHING = pytest.mark.parametrize("batched", [False, True], ids=["unbatched", "batched"])


@BATCHING
async def test_crash_after_commit_before_ack(pipeline: Pipeline, batched: bool) -> None:
    _, owner = await _run(pipeline, after=True, batched=batched)
    # Then the message is redelivered to the other consumer and is a dedupe no-op there
    attempts = [a for a in pipeline.recorder.history().attempts if a.event_id == "ann-help-2"]
    assert [(a.consumer == owner, a.outcome) for a in attempts] == [(True, OK), (False, DEDUPE)]
    # And ann got one welcome and one HELP reply per HELP: one decision, one delivery each
    assert pipeline.steps_to("ann") == ["welcome_sms"] + ["help_reply"] * 3
    for u in USERS:
        assert len(pipeline.steps_to(u)) == 4
    report = await pipeline.assert_effectively_once()
    assert report.decisions is not None
    assert report.decisions.committed == len(USERS) * 4
    assert report.decisions.dedupes >= 1  # batch-mates of the crashed commit come back too


@BATCHING
async def test_crash_before_commit(pipeline: Pipeline, batched: bool) -> None:
    _, owner = await _run(pipeline, after=False, batched=batched)
    # Then the event is decided once, by the next owner (the crashed attempt left no record)
    attempts = [a for a in pipeline.recorder.history().attempts if a.event_id == "ann-help-2"]
    assert [(a.consumer != owner, a.outcome) for a in attempts] == [(True, OK)]
    assert pipeline.steps_to("ann") == ["welcome_sms"] + ["help_reply"] * 3
    report = await pipeline.assert_effectively_once()
    assert report.decisions is not None
    assert report.decisions.committed == len(USERS) * 4


async def test_no_fault_baseline(pipeline: Pipeline) -> None:
    # Given a worker; when every subscriber subscribes and sends HELP twice
    await pipeline.start_worker("w")
    await pipeline.publish(*(pipeline.subscribed(u) for u in USERS))
    for _ in range(2):
        await pipeline.publish(*(pipeline.sms(u, "HELP") for u in USERS))
    await pipeline.settle()
    # Then every decision committed once and every send went out once
    for u in USERS:
        assert pipeline.steps_to(u) == ["welcome_sms", "help_reply", "help_reply"]
    report = await pipeline.assert_effectively_once()
    assert report.clean
    assert report.decisions is not None
    assert report.decisions.counts()["committed"] == len(USERS) * 3
