"""Scenario 3 of the design note: a zombie.

Worker ``z`` (one consumer) pauses in the middle of deciding ann's first HELP: a store proxy
blocks the handler on an :class:`asyncio.Event`, either at the commit (the zombie read the
state before the new owner wrote: a stale version) or at the load (it will read the state the new
owner wrote: fresh). While it is paused its consumer is closed, so the broker moves its keys to
worker ``h``, which decides the same event and later ones. Then the zombie resumes.

Expected: the zombie's attempt is recorded ``fenced`` or ``dedupe`` and commits nothing; its
attempt overlaps the new owner's (``exclusivity_count > 0``) but no two *commits* overlap; 0
duplicate deliveries; decisions in publish order.
"""

from __future__ import annotations

import asyncio

import pytest

from keylane.check import DEDUPE, FENCED, OK
from keylane.state import Commit, CommitResult, Snapshot, StateError, StateStore
from tests.integration.runtime.pipeline import WAIT, Pipeline, eventually
from tests.integration.runtime.wrappers import StoreProxy

USERS = ("ann", "bob")


class PauseOnce(StoreProxy):
    """Blocks the first load of ``key`` (``at="load"``) or the first commit of ``event_id``
    (``at="commit"``) after :meth:`arm`, until :attr:`release` is set."""

    def __init__(self, inner: StateStore, *, key: str, event_id: str, at: str) -> None:
        super().__init__(inner)
        self.key = key
        self.event_id = event_id
        self.at = at
        self.armed = False
        self.paused = asyncio.Event()
        self.release = asyncio.Event()

    def arm(self) -> None:
        self.armed = True

    async def _pause(self) -> None:
        self.armed = False
        self.paused.set()
        await asyncio.wait_for(self.release.wait(), WAIT)

    async def _load(self, key: str) -> Snapshot:
        if self.armed and self.at == "load" and key == self.key:
            await self._pause()
        return await self.inner.load(key)

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        if self.armed and self.at == "commit" and any(c.event_id == self.event_id for c in commits):
            await self._pause()
        return await self.inner.commit_many(commits)


@pytest.mark.parametrize("at", ["commit", "load"])
async def test_zombie_resumes_after_its_keys_moved(pipeline: Pipeline, at: str) -> None:
    # Given worker z alone on the subscription, every subscriber subscribed through it
    proxy = PauseOnce(pipeline.store, key=pipeline.key("ann"), event_id="ann-help-1", at=at)
    await pipeline.start_worker("z", store=proxy, consumers=1, relay=None)
    await pipeline.publish(*(pipeline.subscribed(u, f"{u}-sub") for u in USERS))
    await pipeline.wait_committed(*(f"{u}-sub" for u in USERS))
    # When z's handler pauses in ann's first HELP ...
    proxy.arm()
    await pipeline.publish(*(pipeline.sms(u, "HELP", f"{u}-help-1") for u in USERS))
    await asyncio.wait_for(proxy.paused.wait(), WAIT)
    # ... worker h joins, z's consumer is closed and its keys move to h ...
    await pipeline.start_worker("h", consumers=1)
    await pipeline.broker.consumers["z-0"].close()
    for n in (2, 3):
        await pipeline.publish(*(pipeline.sms(u, "HELP", f"{u}-help-{n}") for u in USERS))
    # ... which decides the same event and the later ones while z is still paused
    await pipeline.wait_committed(*(f"{u}-help-{n}" for u in USERS for n in (1, 2, 3)))
    assert not proxy.release.is_set()
    # And then the zombie resumes
    proxy.release.set()
    await eventually(lambda: len(pipeline.outcomes("ann-help-1")) >= 2, "the zombie's attempt")
    await pipeline.settle()

    # Then the zombie's attempt is a fenced commit or a dedupe no-op, never a commit
    attempts = [a for a in pipeline.recorder.history().attempts if a.event_id == "ann-help-1"]
    by_zombie = [a.outcome for a in attempts if a.consumer == "z-0"]
    by_owner = [a.outcome for a in attempts if a.consumer == "h-0"]
    assert by_owner == [OK]
    assert by_zombie, "the zombie's attempt was not recorded"
    assert set(by_zombie) <= {FENCED, DEDUPE}
    if at == "commit":
        # it read version 1, before h's commits, and its stale commit lost to them
        assert 1 in {a.read_version for a in attempts if a.consumer == "z-0"}
    # And the zombie committed nothing of ann's after it paused
    history = pipeline.recorder.history().attempts
    ann = pipeline.key("ann")
    assert [
        a.event_id for a in history if a.consumer == "z-0" and a.key == ann and a.outcome == OK
    ] == ["ann-sub"]
    # And attempts overlapped (the zombie ran alongside h) while no two commits did
    report = await pipeline.assert_effectively_once()
    assert report.exclusivity_count > 0
    assert report.decisions is not None
    assert report.decisions.committed_overlaps == 0
    # And ann's phone got one welcome and one reply per HELP: no duplicate delivery
    assert pipeline.steps_to("ann") == ["welcome_sms"] + ["help_reply"] * 3
    assert pipeline.steps_to("bob") == ["welcome_sms"] + ["help_reply"] * 3
