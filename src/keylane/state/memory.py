"""MemoryStateStore: the contract in dictionaries, for unit tests and the simulator.

One process, not durable. No method suspends: every operation runs to completion in one step of
the event loop, which is what makes a commit atomic here. A commit first computes all of its
writes, calling the fault hook at each stage, and applies them only when none failed.

Imports only the state contract and the standard library.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

from keylane.state.base import (
    DEFAULT_DEDUPE_RETENTION,
    PRUNE_LIMIT,
    Clock,
    FaultHook,
    StateStore,
    classify,
    ready_at,
)
from keylane.state.errors import StateError
from keylane.state.values import (
    ClaimedSend,
    Commit,
    CommitResult,
    OutboxStats,
    Outcome,
    Position,
    SendRecord,
    SendStatus,
    Snapshot,
    Timer,
)

__all__ = ["MemoryStateStore"]

_WAITING = (SendStatus.PENDING, SendStatus.RETRY)
_ACTIVE = (*_WAITING, SendStatus.DISPATCHING)


@dataclass(slots=True)
class _Row:
    """A mutable outbox row (the SQL backends' columns)."""

    seq: int
    idempotency_key: str
    key: str
    channel: str
    payload: bytes
    status: SendStatus
    not_before: float
    expires_at: float | None
    created_at: float
    ready_at: float
    attempts: int = 0
    owner: str | None = None
    lease_until: float | None = None
    retry_at: float | None = None
    dispatched_at: float | None = None
    finished_at: float | None = None
    detail: str = ""

    def record(self) -> SendRecord:
        return SendRecord(
            self.idempotency_key,
            self.key,
            self.channel,
            self.payload,
            self.status,
            self.attempts,
            self.created_at,
            self.not_before,
            self.expires_at,
            self.owner,
            self.lease_until,
            self.retry_at,
            self.dispatched_at,
            self.finished_at,
            self.detail,
        )


class MemoryStateStore(StateStore):
    """The state store contract in memory (``memory://``)."""

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        dedupe_retention: float = DEFAULT_DEDUPE_RETENTION,
        fault_hook: FaultHook | None = None,
    ) -> None:
        super().__init__(clock=clock, dedupe_retention=dedupe_retention, fault_hook=fault_hook)
        self._states: dict[str, tuple[int, bytes, Position | None]] = {}
        self._marks: dict[tuple[str, str], float] = {}  # insertion (= commit-time) order
        self._outbox: dict[str, _Row] = {}
        self._outbox_by_key: dict[str, list[_Row]] = {}
        self._timers: dict[str, dict[str, float]] = {}
        self._seq = 0

    @property
    def description(self) -> str:
        return "memory:// state store"

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None

    async def _load(self, key: str) -> Snapshot:
        row = self._states.get(key)
        if row is None:
            return Snapshot(key, 0, None, None)
        return Snapshot(key, row[0], row[1], row[2])

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        now = self._clock()
        results: list[CommitResult | StateError] = []
        writes: list[Callable[[], None]] = []
        for commit in commits:
            version, _, position = self._states.get(commit.key, (0, b"", None))
            marked = commit.event_id is not None and (commit.key, commit.event_id) in self._marks
            verdict = classify(commit, version, position, marked)
            if verdict is not None:
                results.append(verdict)
                continue
            results.append(CommitResult(Outcome.COMMITTED, version + 1))
            writes.extend(self._writes(commit, version + 1, position, now))
        for stage in ("state", "dedupe", "cancel", "outbox", "timers"):
            self._stage(stage)
        for write in writes:
            write()
        if prune_before is not None:
            self._prune_now(prune_before, PRUNE_LIMIT)
        return results

    def _writes(
        self, commit: Commit, version: int, stored: Position | None, now: float
    ) -> list[Callable[[], None]]:
        key = commit.key
        position = commit.position if commit.position is not None else stored
        writes: list[Callable[[], None]] = [
            lambda: self._states.__setitem__(key, (version, commit.state, position))
        ]
        if commit.event_id is not None:
            mark = (key, commit.event_id)
            writes.append(lambda: self._marks.__setitem__(mark, now))
        if commit.cancel_sends or commit.cancel_all_sends:
            writes.append(lambda: self._cancel(commit, now))
        if commit.sends:
            writes.append(lambda: self._insert_sends(commit, now))
        if commit.arm or commit.disarm:
            writes.append(lambda: self._set_timers(commit))
        return writes

    def _cancel(self, commit: Commit, now: float) -> None:
        names = set(commit.cancel_sends)
        for row in self._outbox_by_key.get(commit.key, ()):
            wanted = commit.cancel_all_sends or row.idempotency_key in names
            if wanted and row.status in _WAITING:
                row.status = SendStatus.CANCELLED
                row.finished_at = now
                row.detail = "cancelled by a commit"

    def _insert_sends(self, commit: Commit, now: float) -> None:
        for send in commit.sends:
            if send.idempotency_key in self._outbox:
                continue  # a replayed step: the unique idempotency key makes it a no-op
            self._seq += 1
            row = _Row(
                self._seq,
                send.idempotency_key,
                send.key,
                send.channel,
                send.payload,
                SendStatus.PENDING,
                send.not_before,
                send.expires_at,
                now,
                send.not_before,
            )
            self._outbox[send.idempotency_key] = row
            self._outbox_by_key.setdefault(send.key, []).append(row)

    def _set_timers(self, commit: Commit) -> None:
        timers = self._timers.setdefault(commit.key, {})
        for timer_id in commit.disarm:
            timers.pop(timer_id, None)
        for timer in commit.arm:
            timers[timer.timer_id] = timer.due_at
        if not timers:
            del self._timers[commit.key]

    async def _prune(self, before: float, limit: int) -> int:
        return self._prune_now(before, limit)

    def _prune_now(self, before: float, limit: int) -> int:
        expired: list[tuple[str, str]] = []
        for mark, created in self._marks.items():
            if created >= before or len(expired) >= limit:
                break
            expired.append(mark)
        for mark in expired:
            del self._marks[mark]
        return len(expired)

    # ------------------------------------------------------------------ outbox

    def _dispatching_keys(self) -> dict[str, _Row]:
        return {
            row.key: row for row in self._outbox.values() if row.status is SendStatus.DISPATCHING
        }

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        dispatching = self._dispatching_keys()
        due = sorted(
            (row for row in self._outbox.values() if row.status in _ACTIVE and row.ready_at <= now),
            key=lambda row: (row.ready_at, row.seq),
        )
        claimed: list[ClaimedSend] = []
        taken: set[str] = set()
        for row in due:
            if len(claimed) >= limit:
                break
            holder = dispatching.get(row.key)
            if row.key in taken or (holder is not None and holder is not row):
                continue
            taken.add(row.key)
            row.status = SendStatus.DISPATCHING
            row.owner = owner
            row.attempts += 1
            row.lease_until = row.ready_at = now + lease
            row.retry_at = None
            row.dispatched_at = now
            claimed.append(
                ClaimedSend(
                    row.idempotency_key,
                    row.key,
                    row.channel,
                    row.payload,
                    row.not_before,
                    row.expires_at,
                    row.created_at,
                    row.attempts,
                    owner,
                    row.lease_until,
                )
            )
        return claimed

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
        row = self._outbox.get(idempotency_key)
        if (
            row is None
            or row.status is not SendStatus.DISPATCHING
            or row.owner != owner
            or row.attempts != attempt
        ):
            return False
        row.lease_until = None
        row.detail = detail
        if status is SendStatus.RETRY:
            row.status, row.retry_at = SendStatus.RETRY, retry_at
        elif status is SendStatus.DEFERRED:
            row.status, row.not_before = SendStatus.PENDING, not_before  # type: ignore[assignment]
        else:
            row.status, row.finished_at = status, now
        row.ready_at = ready_at(row.status, row.not_before, row.retry_at)
        return True

    async def _sends_for(self, key: str) -> list[SendRecord]:
        return [row.record() for row in self._outbox_by_key.get(key, ())]

    async def _outbox_stats(self, now: float) -> OutboxStats:
        counts = dict.fromkeys(SendStatus, 0)
        oldest = None
        for row in self._outbox.values():
            counts[row.status] += 1
            if row.status in _WAITING and row.ready_at <= now:
                oldest = row.ready_at if oldest is None else min(oldest, row.ready_at)
        del counts[SendStatus.DEFERRED]
        return OutboxStats(
            counts[SendStatus.PENDING] + counts[SendStatus.RETRY],
            counts[SendStatus.DISPATCHING],
            0.0 if oldest is None else max(0.0, now - oldest),
            counts,
        )

    # ------------------------------------------------------------------ timers

    async def _due_timers(self, now: float, limit: int) -> list[Timer]:
        due = (
            (due_at, key, timer_id)
            for key, timers in self._timers.items()
            for timer_id, due_at in timers.items()
            if due_at <= now
        )
        return [
            Timer(key, timer_id, due_at) for due_at, key, timer_id in heapq.nsmallest(limit, due)
        ]

    async def _timers_for(self, key: str) -> list[Timer]:
        timers = self._timers.get(key, {})
        return sorted(
            (Timer(key, timer_id, due_at) for timer_id, due_at in timers.items()),
            key=lambda t: (t.due_at, t.timer_id),
        )

    async def _armed_timers_count(self) -> int:
        return sum(len(timers) for timers in self._timers.values())
