"""GroupCommitter: batches concurrent commits of many handlers into one ``commit_many``.

Store-agnostic: it only calls :meth:`StateStore.commit_many`. There is no fixed sleep on the
hot path. The first ``commit()`` while the committer is idle starts a flush at once (on the
next turn of the event loop, so handlers finishing in the same turn share it); commits that
arrive while a flush is in flight wait and go together in the next one. The batch size
therefore follows the load by itself: one commit per transaction when idle, up to
``max_batch`` when the store is the bottleneck. ``max_delay`` > 0 additionally holds an idle
flush back until that many seconds passed or ``max_batch`` commits are waiting, trading
latency for fewer transactions.

A batch holds one commit per key; a second commit of a key waits for the next batch, so a
key's commits keep their order.

Imports only the state contract and the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from keylane.errors import InvalidArgumentError
from keylane.resource import AsyncClosable
from keylane.state.base import StateStore
from keylane.state.errors import StateError, StoreClosedError
from keylane.state.values import Commit, CommitResult

__all__ = ["GroupCommitStats", "GroupCommitter"]


@dataclass(frozen=True, slots=True)
class GroupCommitStats:
    """Counters of a :class:`GroupCommitter`.

    Attributes:
        commits: commits handed to the store.
        batches: ``commit_many`` calls (transactions).
        largest_batch: the most commits in one batch.
        waiting: commits queued now.
    """

    commits: int
    batches: int
    largest_batch: int
    waiting: int

    @property
    def mean_batch(self) -> float:
        """Commits per transaction."""
        return self.commits / self.batches if self.batches else 0.0


@dataclass(slots=True)
class _Waiter:
    commit: Commit
    future: asyncio.Future[CommitResult]


class GroupCommitter(AsyncClosable):
    """Group commit in front of any :class:`StateStore`.

    Args:
        store: an open store; the committer does not close it.
        max_batch: most commits per transaction.
        max_delay: seconds an idle flush may wait for more commits (0: flush at once).
    """

    def __init__(self, store: StateStore, *, max_batch: int = 256, max_delay: float = 0.0) -> None:
        if not isinstance(store, StateStore):
            raise InvalidArgumentError(f"store must be a StateStore, not {type(store).__name__}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or not max_batch >= 1:
            raise InvalidArgumentError(f"max_batch must be an int >= 1, got {max_batch!r}")
        if (
            isinstance(max_delay, bool)
            or not isinstance(max_delay, int | float)
            or not 0 <= max_delay <= 10
        ):
            raise InvalidArgumentError(f"max_delay must be seconds in [0, 10], got {max_delay!r}")
        self.store = store
        self.max_batch = max_batch
        self.max_delay = float(max_delay)
        self._queue: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._more = asyncio.Event()
        self._closed = False
        self._commits = 0
        self._batches = 0
        self._largest = 0

    def stats(self) -> GroupCommitStats:
        """A snapshot of the counters."""
        return GroupCommitStats(self._commits, self._batches, self._largest, len(self._queue))

    async def commit(self, commit: Commit) -> CommitResult:
        """Commit through the next batch; same result and errors as :meth:`StateStore.commit`.

        Cancelling the caller before its batch is formed withdraws the commit; once the batch
        is in flight the commit may still land (the caller then sees it as a duplicate or is
        fenced when it retries).
        """
        if not isinstance(commit, Commit):
            raise InvalidArgumentError(f"commit must be a Commit, not {type(commit).__name__}")
        if self._closed:
            raise StoreClosedError("the group committer is closed")
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiter(commit, future))
        if len(self._queue) >= self.max_batch:
            self._more.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="keylane-group-commit")
        return await future

    def _take_batch(self) -> list[_Waiter]:
        batch: list[_Waiter] = []
        keys: set[str] = set()
        rest: list[_Waiter] = []
        for waiter in self._queue:
            if waiter.future.done():  # cancelled before its batch formed
                continue
            if len(batch) < self.max_batch and waiter.commit.key not in keys:
                keys.add(waiter.commit.key)
                batch.append(waiter)
            else:
                rest.append(waiter)
        self._queue = rest
        return batch

    async def _flush_loop(self) -> None:
        try:
            while self._queue:
                if self.max_delay > 0 and not self._closed and len(self._queue) < self.max_batch:
                    self._more.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._more.wait(), self.max_delay)
                batch = self._take_batch()
                if batch:
                    await self._flush(batch)
        finally:
            self._flusher = None

    async def _flush(self, batch: list[_Waiter]) -> None:
        self._batches += 1
        self._commits += len(batch)
        self._largest = max(self._largest, len(batch))
        try:
            results = await self.store.commit_many([w.commit for w in batch])
        except asyncio.CancelledError:
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(StoreClosedError("group commit cancelled"))
            raise
        except Exception as exc:  # the whole transaction failed: every waiter gets it
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            return
        for waiter, result in zip(batch, results, strict=True):
            if waiter.future.done():
                continue
            if isinstance(result, StateError):
                waiter.future.set_exception(result)
            else:
                waiter.future.set_result(result)

    async def close(self) -> None:
        """Stop taking commits and wait for the queued ones to be flushed. Idempotent."""
        self._closed = True
        self._more.set()
        flusher = self._flusher
        if flusher is not None:
            await asyncio.shield(flusher)
