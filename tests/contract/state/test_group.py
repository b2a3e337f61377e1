"""GroupCommitter on every backend: many concurrent committers, one transaction per batch."""

from __future__ import annotations

import asyncio

import pytest

from keylane.state import (
    CommitResult,
    FencedError,
    GroupCommitter,
    Outcome,
    StateStore,
    StoreClosedError,
)
from tests.contract.state.conftest import StoreFactory
from tests.contract.state.support import commit, send


async def test_200_concurrent_committers(store: StateStore) -> None:
    # Given a group committer and 200 handlers finishing at once, 3% with a send
    async with GroupCommitter(store, max_batch=64) as committer:

        async def handler(i: int) -> CommitResult:
            sends = (send(f"k{i}:s", f"k{i}"),) if i % 33 == 0 else ()
            return await committer.commit(commit(f"k{i}", 0, event_id=f"e{i}", sends=sends))

        results = await asyncio.gather(*(handler(i) for i in range(200)))
        stats = committer.stats()
    # Then every commit landed, in fewer transactions than commits
    assert results == [CommitResult(Outcome.COMMITTED, 1)] * 200
    assert stats.commits == 200
    assert stats.batches < 200
    assert stats.largest_batch <= 64
    assert (await store.load("k199")).state == b"k199@1"
    assert len(await store.sends_for("k33")) == 1


async def test_commits_of_one_key_keep_their_order(store: StateStore) -> None:
    async with GroupCommitter(store) as committer:
        first = asyncio.ensure_future(committer.commit(commit("u", 0, b"first")))
        second = asyncio.ensure_future(committer.commit(commit("u", 1, b"second")))
        assert await first == CommitResult(Outcome.COMMITTED, 1)
        assert await second == CommitResult(Outcome.COMMITTED, 2)
    assert (await store.load("u")).state == b"second"


async def test_a_fenced_commit_fails_only_its_caller(store: StateStore) -> None:
    await store.commit(commit("b", 0))
    async with GroupCommitter(store) as committer:
        good = committer.commit(commit("a", 0))
        stale = committer.commit(commit("b", 0, b"stale"))
        results = await asyncio.gather(good, stale, return_exceptions=True)
    assert results[0] == CommitResult(Outcome.COMMITTED, 1)
    assert isinstance(results[1], FencedError)


async def test_a_failed_transaction_fails_every_waiter(factory: StoreFactory) -> None:
    failing = [True]

    def hook(stage: str) -> None:
        if failing[0] and stage == "timers":
            raise RuntimeError("injected")

    store = await factory.open(fault_hook=hook)
    async with GroupCommitter(store) as committer:
        results = await asyncio.gather(
            *(committer.commit(commit(k, 0)) for k in "abc"), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        assert [(await store.load(k)).version for k in "abc"] == [0, 0, 0]
        # And the committer keeps working afterwards
        failing[0] = False
        assert await committer.commit(commit("a", 0)) == CommitResult(Outcome.COMMITTED, 1)


async def test_a_closed_committer_refuses(store: StateStore) -> None:
    committer = GroupCommitter(store)
    await committer.close()
    with pytest.raises(StoreClosedError):
        await committer.commit(commit("a", 0))


async def test_max_delay_gathers_a_batch(store: StateStore) -> None:
    async with GroupCommitter(store, max_batch=8, max_delay=10.0) as committer:
        first = asyncio.ensure_future(committer.commit(commit("a", 0)))
        await asyncio.sleep(0)  # the flush waits for more (up to 10 s)
        rest = [asyncio.ensure_future(committer.commit(commit(k, 0))) for k in "bcdefgh"]
        await asyncio.gather(first, *rest)
        assert committer.stats().batches == 1  # flushed by the 8th commit, not the delay
