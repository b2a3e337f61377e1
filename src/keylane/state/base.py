"""The state store contract: per-key state and its outbox, committed in one transaction.

A :class:`StateStore` keeps, per key, the domain's state bytes at a version, the key's high-water
broker position, the event ids it has committed (dedupe marks), its armed timers and its outbox
(send intents and their delivery ledger). One :class:`~keylane.state.values.Commit` writes all of
them atomically, under a compare-and-set on the version:

1. **Duplicate checks first.** If the commit's ``event_id`` is already marked for the key, or its
   ``position`` is at or below the key's high-water position, the result is ``DUPLICATE``:
   nothing is written and the current version is returned (the caller acks).
2. **Then the compare-and-set.** If the stored version is not ``expected_version``,
   :class:`~keylane.state.errors.FencedError`: nothing is written (the caller does not ack).
3. **Then the writes:** the state at ``v+1``; the high-water position (the commit's, when given);
   the dedupe mark; the cancels (PENDING or RETRY rows of this key only); the outbox rows (an
   existing idempotency key anywhere in the store is a no-op, never a second row); the timer
   arms (upsert) and disarms. A crash or error mid-way leaves none of it.

:meth:`StateStore.commit_many` commits many keys in one database transaction (group commit),
each still checked on its own: a fenced or duplicate commit does not fail the others, while a
store failure fails them all.

The relay side: :meth:`~StateStore.claim_sends` leases due rows (at most one DISPATCHING row per
key at any time, across all relays) and :meth:`~StateStore.finish_send` records the outcome,
fenced by owner and attempt. Dedupe marks are kept ``dedupe_retention`` seconds and pruned
incrementally inside commit transactions (:data:`PRUNE_EVERY`, :data:`PRUNE_LIMIT`).

The public methods here check their arguments and the open/closed state, then call the
backend's ``_``-prefixed implementation, so every backend rejects bad input the same way.

Imports only :mod:`keylane.errors`, :mod:`keylane.resource`, this package's values and errors,
and the standard library.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import Self

from keylane.errors import InvalidArgumentError
from keylane.resource import AsyncClosable
from keylane.state.errors import FencedError, StateError, StoreClosedError
from keylane.state.values import (
    TERMINAL_STATUSES,
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
    check_text,
    check_time,
)

__all__ = [
    "DEFAULT_DEDUPE_RETENTION",
    "PRUNE_EVERY",
    "PRUNE_LIMIT",
    "SCHEMA_VERSION",
    "Clock",
    "FaultHook",
    "StateStore",
    "classify",
    "ready_at",
]

#: The schema version this code creates and reads. A store with a higher one is refused.
SCHEMA_VERSION = 1
#: Dedupe marks are kept this long (seconds): 7 days.
DEFAULT_DEDUPE_RETENTION = 7 * 86_400.0
#: A commit transaction prunes expired dedupe marks once every this many commits ...
PRUNE_EVERY = 64
#: ... deleting at most this many (8 per commit: more than the one a commit adds).
PRUNE_LIMIT = 512

#: Wall-clock seconds since the epoch (``time.time``), or a simulator's scaled clock.
Clock = Callable[[], float]
#: Fault injection for tests: called with a stage name inside the commit transaction
#: (``"state"``, ``"dedupe"``, ``"cancel"``, ``"outbox"``, ``"timers"``); raising rolls back.
FaultHook = Callable[[str], None]


def classify(
    commit: Commit, stored_version: int, stored_position: Position | None, event_marked: bool
) -> CommitResult | FencedError | None:
    """The contract's order of checks for one commit; ``None`` means "write it".

    Args:
        commit: the commit.
        stored_version: the key's stored version (0 if absent), read inside the transaction
            with the key's row locked (or the database's single writer held).
        stored_position: the key's stored high-water position.
        event_marked: whether ``commit.event_id`` is marked for the key.
    """
    if event_marked or (
        commit.position is not None
        and stored_position is not None
        and commit.position <= stored_position
    ):
        return CommitResult(Outcome.DUPLICATE, stored_version)
    if stored_version != commit.expected_version:
        return FencedError(commit.key, commit.expected_version, stored_version)
    return None


def _positive(name: str, value: object) -> float:
    seconds = check_time(name, value)
    if seconds <= 0:
        raise InvalidArgumentError(f"{name} must be > 0 seconds, got {value!r}")
    return seconds


def _limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise InvalidArgumentError(f"limit must be an int in [1, 100000], got {value!r}")
    return value


class StateStore(AsyncClosable):
    """Durable per-key state and outbox. Open it with ``async with store:`` or :meth:`open`.

    All methods are coroutines and safe to call concurrently from many tasks; commits of
    different keys proceed independently, commits of one key are serialised by the
    compare-and-set. Backends: ``memory://`` (one process, not durable), SQLite (one file; many
    processes, one writer at a time) and PostgreSQL (many processes and hosts).

    Args:
        clock: the store's time source for the times it records itself (commit and row
            creation times, dedupe-mark ages); the relay's ``now`` arguments are its own.
        dedupe_retention: seconds an event id stays marked (default 7 days). A redelivery of
            an older event is still caught by the position mark when it carries a position.
        fault_hook: for fault-injection tests only (see :data:`FaultHook`).
    """

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        dedupe_retention: float = DEFAULT_DEDUPE_RETENTION,
        fault_hook: FaultHook | None = None,
    ) -> None:
        if not callable(clock):
            raise InvalidArgumentError("clock must be a callable returning epoch seconds")
        self._clock = clock
        self.dedupe_retention = _positive("dedupe_retention", dedupe_retention)
        self._fault_hook = fault_hook
        self._is_open = False
        self._closed = False
        self._commits_since_prune = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def description(self) -> str:
        """Where the store lives, for messages (a URL without credentials)."""
        return type(self).__name__

    async def open(self) -> None:
        """Connect, create or migrate the schema. Idempotent.

        Raises:
            SchemaVersionError: the store was created by a newer schema.
            StoreUnavailableError: the database cannot be reached now.
            StoreClosedError: the store was closed.
        """
        if self._closed:
            raise StoreClosedError(f"{self.description} is closed")
        if not self._is_open:
            await self._open()
            self._is_open = True

    async def close(self) -> None:
        """Close connections and threads. Idempotent; the store cannot be reopened."""
        if self._closed:
            return
        self._closed = True
        was_open, self._is_open = self._is_open, False
        if was_open:
            await self._close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    def _check_open(self) -> None:
        if not self._is_open:
            state = "closed" if self._closed else "not open (use `async with` or open())"
            raise StoreClosedError(f"{self.description} is {state}")

    def _stage(self, name: str) -> None:
        if self._fault_hook is not None:
            self._fault_hook(name)

    # ------------------------------------------------------------------ state

    async def load(self, key: str) -> Snapshot:
        """The key's committed state; version 0 and no state for a key never committed."""
        check_text("key", key)
        self._check_open()
        return await self._load(key)

    async def commit(self, commit: Commit) -> CommitResult:
        """Commit one decision in one transaction (see the module docstring for the order).

        Returns:
            ``COMMITTED`` with the new version, or ``DUPLICATE`` with the current one.

        Raises:
            FencedError: the stored version is not ``commit.expected_version``.
            StoreUnavailableError: the store is busy or unreachable; nothing was written,
                retry (a retry of a commit that did land is reported as ``DUPLICATE`` when it
                carries an event id or position, else fenced).
        """
        (result,) = await self.commit_many([commit])
        if isinstance(result, StateError):
            raise result
        return result

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult | StateError]:
        """Group commit: many keys' commits in one database transaction, in input order.

        Each commit is checked on its own row: a duplicate or fenced one gets its
        ``CommitResult``/``FencedError`` in its slot and the others still commit. A store
        failure (raised) fails the whole batch and writes nothing.

        Raises:
            InvalidArgumentError: not a sequence of :class:`Commit`, or two commits of one key.
            StoreUnavailableError: the store is busy or unreachable; nothing was written.
        """
        try:
            batch = list(commits)
        except TypeError:
            batch = None
        if batch is None or not all(isinstance(c, Commit) for c in batch):
            raise InvalidArgumentError("commits must be a sequence of Commit values")
        keys = [c.key for c in batch]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise InvalidArgumentError(f"commits: one commit per key per batch; repeated: {dup}")
        self._check_open()
        if not batch:
            return []
        prune_before = None
        self._commits_since_prune += len(batch)
        if self._commits_since_prune >= PRUNE_EVERY:
            self._commits_since_prune = 0
            prune_before = self._clock() - self.dedupe_retention
        return await self._commit_batch(batch, prune_before)

    async def prune_dedupe(self, *, limit: int = PRUNE_LIMIT) -> int:
        """Delete up to ``limit`` dedupe marks older than ``dedupe_retention``; how many went.

        Commits already do this incrementally; call it to catch up after a long pause.
        """
        limit = _limit(limit)
        self._check_open()
        return await self._prune(self._clock() - self.dedupe_retention, limit)

    # ------------------------------------------------------------------ outbox

    async def claim_sends(
        self, *, now: float, limit: int, lease: float, owner: str
    ) -> list[ClaimedSend]:
        """Lease up to ``limit`` due sends to ``owner``, oldest due first.

        Claimable: PENDING rows with ``not_before <= now``, RETRY rows with ``retry_at <= now``,
        and DISPATCHING rows whose lease expired (a crashed or stalled relay's). Each becomes
        DISPATCHING(``owner``, ``lease_until = now + lease``, ``attempt + 1``). At most one row
        per key is DISPATCHING at any time across all relays, so a relay's dispatch-time checks
        (caps, quiet hours) never race another relay's for the same key. May return fewer than
        ``limit`` rows while more are due (keys with several due rows); call again.
        """
        now = check_time("now", now)
        limit = _limit(limit)
        lease = _positive("lease", lease)
        owner = check_text("owner", owner)
        self._check_open()
        return await self._claim(now, limit, lease, owner)

    async def finish_send(
        self,
        idempotency_key: str,
        *,
        owner: str,
        attempt: int,
        status: SendStatus,
        now: float,
        detail: str = "",
        retry_at: float | None = None,
        not_before: float | None = None,
    ) -> bool:
        """Record a claimed send's outcome; False (nothing changed) if this claim was fenced.

        Applies only while the row is DISPATCHING under ``owner`` at ``attempt`` (the values of
        the :class:`ClaimedSend`); a relay whose lease expired and whose row was claimed again
        gets False. Statuses: a final one (SENT, FAILED_PERMANENT, UNKNOWN, SKIPPED with the
        reason in ``detail``, CANCELLED) sets ``finished_at``; RETRY needs ``retry_at``;
        DEFERRED needs ``not_before`` and puts the row back to PENDING.

        Raises:
            InvalidArgumentError: an unknown or non-final status, a missing or extra
                ``retry_at``/``not_before``, SKIPPED without a reason.
        """
        check_text("idempotency_key", idempotency_key)
        check_text("owner", owner)
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise InvalidArgumentError(f"attempt must be an int >= 1, got {attempt!r}")
        now = check_time("now", now)
        try:
            status = SendStatus(status)
        except ValueError:
            raise InvalidArgumentError(f"status: unknown send status {status!r}") from None
        if not isinstance(detail, str) or "\x00" in detail:
            raise InvalidArgumentError("detail must be a str without NUL characters")
        allowed = {*TERMINAL_STATUSES, SendStatus.RETRY, SendStatus.DEFERRED}
        if status not in allowed:
            raise InvalidArgumentError(
                f"status must be one of {sorted(allowed)} to finish a send, got {status}"
            )
        if (retry_at is None) != (status is not SendStatus.RETRY):
            raise InvalidArgumentError("retry_at is required for RETRY and only for RETRY")
        if (not_before is None) != (status is not SendStatus.DEFERRED):
            raise InvalidArgumentError("not_before is required for DEFERRED and only for DEFERRED")
        if status is SendStatus.SKIPPED and not detail:
            raise InvalidArgumentError("detail must give the reason of a SKIPPED send")
        retry = check_time("retry_at", retry_at) if retry_at is not None else None
        later = check_time("not_before", not_before) if not_before is not None else None
        self._check_open()
        return await self._finish(
            idempotency_key, owner, attempt, status, now, detail, retry, later
        )

    async def sends_for(self, key: str) -> list[SendRecord]:
        """The key's delivery ledger: every outbox row of the key, in insertion order."""
        check_text("key", key)
        self._check_open()
        return await self._sends_for(key)

    async def outbox_stats(self, now: float) -> OutboxStats:
        """Counts per status and the age of the oldest due, undispatched send at ``now``."""
        now = check_time("now", now)
        self._check_open()
        return await self._outbox_stats(now)

    # ------------------------------------------------------------------ timers

    async def due_timers(self, *, now: float, limit: int) -> list[Timer]:
        """Up to ``limit`` armed timers with ``due_at <= now``, earliest first.

        Timers stay armed until a commit disarms them, so a sweeper sees a timer again until
        the key's decision fires it.
        """
        now = check_time("now", now)
        limit = _limit(limit)
        self._check_open()
        return await self._due_timers(now, limit)

    async def timers_for(self, key: str) -> list[Timer]:
        """The key's armed timers, earliest first."""
        check_text("key", key)
        self._check_open()
        return await self._timers_for(key)

    async def armed_timers_count(self) -> int:
        """How many timers are armed in the whole store."""
        self._check_open()
        return await self._armed_timers_count()

    # ------------------------------------------------------------------ backend hooks

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _load(self, key: str) -> Snapshot: ...

    @abc.abstractmethod
    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]: ...

    @abc.abstractmethod
    async def _prune(self, before: float, limit: int) -> int: ...

    @abc.abstractmethod
    async def _claim(
        self, now: float, limit: int, lease: float, owner: str
    ) -> list[ClaimedSend]: ...

    @abc.abstractmethod
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
    ) -> bool: ...

    @abc.abstractmethod
    async def _sends_for(self, key: str) -> list[SendRecord]: ...

    @abc.abstractmethod
    async def _outbox_stats(self, now: float) -> OutboxStats: ...

    @abc.abstractmethod
    async def _due_timers(self, now: float, limit: int) -> list[Timer]: ...

    @abc.abstractmethod
    async def _timers_for(self, key: str) -> list[Timer]: ...

    @abc.abstractmethod
    async def _armed_timers_count(self) -> int: ...


def ready_at(status: SendStatus, not_before: float, retry_at: float | None) -> float:
    """When an active row becomes claimable (the outbox's claim index orders by it)."""
    if status is SendStatus.RETRY and retry_at is not None:
        return max(not_before, retry_at)
    return not_before
