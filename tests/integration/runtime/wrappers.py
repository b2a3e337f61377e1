"""Test doubles that wrap the real components: a store proxy and a broker that names consumers.

Both delegate to the real thing (the fixture's store, the embedded broker) and only add what a
fault scenario needs: a hook around one commit, load or claim, or the consumer a test closes to
"crash" a worker. Nothing here fakes a component's behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keylane.brokers.base import Consumer
from keylane.brokers.memory import MemoryBroker
from keylane.state import (
    ClaimedSend,
    Commit,
    CommitResult,
    OutboxStats,
    SendRecord,
    SendStatus,
    Snapshot,
    StateError,
    StateStore,
    Timer,
)

__all__ = ["SimulatedCrash", "StoreProxy", "TrackingBroker"]


class SimulatedCrash(StateError):
    """The process "died" in the middle of a commit: the handler sees an unexpected error."""


class TrackingBroker(MemoryBroker):
    """The embedded broker, remembering every consumer by name (to close one mid-decision)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumers: dict[str, Consumer] = {}

    async def subscribe(self, *args: Any, **kwargs: Any) -> Consumer:
        consumer = await super().subscribe(*args, **kwargs)
        self.consumers[consumer.consumer_name] = consumer
        return consumer


class StoreProxy(StateStore):
    """A :class:`StateStore` that forwards every call to ``inner`` (an open store).

    Subclasses override the ``_``-prefixed hooks to pause, fail or observe one call. Closing the
    proxy leaves ``inner`` open: it belongs to the test's fixture.
    """

    def __init__(self, inner: StateStore) -> None:
        super().__init__()
        self.inner = inner

    @property
    def description(self) -> str:
        return f"proxy of {self.inner.description}"

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def _load(self, key: str) -> Snapshot:
        return await self.inner.load(key)

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        return await self.inner.commit_many(commits)

    async def _prune(self, before: float, limit: int) -> int:
        return await self.inner.prune_dedupe(limit=limit)

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        return await self.inner.claim_sends(now=now, limit=limit, lease=lease, owner=owner)

    async def _finish(
        self,
        idempotency_key: str,
        owner: str,
        attempt: int,
        status: SendStatus,
        now: float,
        detail: str,
        retry_at: float | None,
        not_before: float | None,
    ) -> bool:
        return await self.inner.finish_send(
            idempotency_key,
            owner=owner,
            attempt=attempt,
            status=status,
            now=now,
            detail=detail,
            retry_at=retry_at,
            not_before=not_before,
        )

    async def _sends_for(self, key: str) -> list[SendRecord]:
        return await self.inner.sends_for(key)

    async def _outbox_stats(self, now: float) -> OutboxStats:
        return await self.inner.outbox_stats(now)

    async def _due_timers(self, now: float, limit: int) -> list[Timer]:
        return await self.inner.due_timers(now=now, limit=limit)

    async def _timers_for(self, key: str) -> list[Timer]:
        return await self.inner.timers_for(key)

    async def _armed_timers_count(self) -> int:
        return await self.inner.armed_timers_count()


def event_ids(commits: Sequence[Commit]) -> set[str]:
    """The event ids of a batch of commits."""
    return {c.event_id for c in commits if c.event_id is not None}
