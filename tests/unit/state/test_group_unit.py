"""GroupCommitter and the read coalescer against a fake store: batching rules."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from keylane.errors import InvalidArgumentError
from keylane.state import Commit, CommitResult, GroupCommitter, MemoryStateStore, Outcome
from keylane.state._coalesce import Coalescer
from keylane.state.errors import StateError


class RecordingStore(MemoryStateStore):
    """The memory store, recording each commit_many batch and able to hold it."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult | StateError]:
        self.batches.append([c.key for c in commits])
        await self.gate.wait()
        return await super().commit_many(commits)


async def test_commits_arriving_during_a_flush_go_in_the_next_batch() -> None:
    store = RecordingStore()
    await store.open()
    committer = GroupCommitter(store, max_batch=3)
    store.gate.clear()
    first = asyncio.ensure_future(committer.commit(Commit("a", 0, b"")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the flush of [a] is in flight and held
    rest = [asyncio.ensure_future(committer.commit(Commit(k, 0, b""))) for k in "bcdef"]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(first, *rest)
    # the five that waited went in batches of at most 3, in arrival order
    assert store.batches == [["a"], ["b", "c", "d"], ["e", "f"]]
    await committer.close()


async def test_a_key_twice_waits_for_the_next_batch() -> None:
    store = RecordingStore()
    await store.open()
    async with GroupCommitter(store) as committer:
        results = await asyncio.gather(
            committer.commit(Commit("a", 0, b"1")),
            committer.commit(Commit("b", 0, b"")),
            committer.commit(Commit("a", 1, b"2")),
        )
    assert store.batches == [["a", "b"], ["a"]]
    assert results[2] == CommitResult(Outcome.COMMITTED, 2)


async def test_a_caller_cancelled_before_its_batch_withdraws_its_commit() -> None:
    store = RecordingStore()
    await store.open()
    committer = GroupCommitter(store)
    store.gate.clear()
    held = asyncio.ensure_future(committer.commit(Commit("a", 0, b"")))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    withdrawn = asyncio.ensure_future(committer.commit(Commit("b", 0, b"")))
    await asyncio.sleep(0)
    withdrawn.cancel()
    store.gate.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await withdrawn
    await committer.close()
    assert store.batches == [["a"]]
    assert (await store.load("b")).version == 0


def test_bad_arguments() -> None:
    store = MemoryStateStore()
    with pytest.raises(InvalidArgumentError, match="max_batch"):
        GroupCommitter(store, max_batch=0)
    with pytest.raises(InvalidArgumentError, match="max_delay"):
        GroupCommitter(store, max_delay=-1)
    with pytest.raises(InvalidArgumentError, match="store"):
        GroupCommitter(object())  # type: ignore[arg-type]


async def test_the_coalescer_reads_waiting_keys_together() -> None:
    reads: list[list[str]] = []

    async def read(keys: list[str]) -> dict[str, str]:
        reads.append(keys)
        await asyncio.sleep(0)
        return {k: k.upper() for k in keys}

    coalescer: Coalescer[str, str] = Coalescer(read, max_batch=2)
    values = await asyncio.gather(*(coalescer.get(k) for k in ["a", "b", "a", "c"]))
    assert values == ["A", "B", "A", "C"]
    assert reads == [["a", "b"], ["c"]]


async def test_the_coalescer_hands_a_failure_to_every_reader_of_the_batch() -> None:
    async def read(keys: list[str]) -> dict[str, str]:
        raise RuntimeError("down")

    coalescer: Coalescer[str, str] = Coalescer(read, max_batch=10)
    results = await asyncio.gather(coalescer.get("a"), coalescer.get("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
