"""SqliteStateStore: the contract in one SQLite file (stdlib ``sqlite3``), the embedded default.

Every ``sqlite3`` call runs on one dedicated thread (a single-worker executor that owns the
connection), so the event loop never blocks on the database; a whole commit batch, claim or
query is one hop to that thread. Writes run in ``BEGIN IMMEDIATE`` transactions: the database's
write lock is taken up front, so the duplicate checks, the compare-and-set and the writes of a
batch see no other writer (check-then-write is safe, and a group commit needs no savepoints).

Durability: WAL journal mode with ``synchronous=NORMAL`` by default. A committed transaction
survives a crash of the process (the case redeliveries and zombies are about); after a power
loss or OS crash the last transactions before the crash may be rolled back, never corrupted.
``synchronous=FULL`` also fsyncs the WAL on every commit, which makes commits survive power loss
at the cost of one fsync per transaction (group commit amortises it).

Concurrency: many processes may open one file; SQLite lets one write at a time, and a writer
waits up to ``busy_timeout`` seconds for the lock before :class:`StoreUnavailableError`.
Readers never wait for writers (WAL). Claims run in a write transaction, so several relays on
one database are serialised rather than concurrent: one relay per database is the intended use.

Imports the state contract, :mod:`sqlite3` and the standard library.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from keylane.errors import InvalidArgumentError
from keylane.state import _sql_sqlite as sql
from keylane.state._coalesce import Coalescer
from keylane.state._rows import (
    RECORD_COLUMNS,
    claimed_of,
    record_of,
    snapshot_of,
)
from keylane.state._schema import SQLITE_MIGRATIONS
from keylane.state._sqlite_commit import BATCH, commit_batch, prune
from keylane.state.base import (
    DEFAULT_DEDUPE_RETENTION,
    SCHEMA_VERSION,
    Clock,
    FaultHook,
    StateStore,
)
from keylane.state.errors import (
    SchemaVersionError,
    StateError,
    StoreClosedError,
    StoreUnavailableError,
)
from keylane.state.values import (
    ClaimedSend,
    Commit,
    CommitResult,
    OutboxStats,
    SendRecord,
    SendStatus,
    Snapshot,
    Timer,
)

__all__ = ["SYNCHRONOUS_MODES", "SqliteStateStore"]

T = TypeVar("T")

#: Accepted ``synchronous`` settings (OFF is refused: it can corrupt the file on power loss).
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return True
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteStateStore(StateStore):
    """The state store contract on a SQLite file (``sqlite:///path/to/file.db``).

    Args:
        path: the database file (created if missing; its directory must exist), or
            ``":memory:"`` for a private in-memory database (not durable).
        synchronous: ``"NORMAL"`` (default), ``"FULL"`` or ``"EXTRA"`` (see the module doc).
        busy_timeout: seconds a write waits for another connection's lock before
            :class:`StoreUnavailableError`.
        clock, dedupe_retention, fault_hook: see :class:`StateStore`.
    """

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 5.0,
        clock: Clock = time.time,
        dedupe_retention: float = DEFAULT_DEDUPE_RETENTION,
        fault_hook: FaultHook | None = None,
    ) -> None:
        super().__init__(clock=clock, dedupe_retention=dedupe_retention, fault_hook=fault_hook)
        if not isinstance(path, str) or not path or "\x00" in path:
            raise InvalidArgumentError(f"path must be a non-empty file path, got {path!r}")
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in SYNCHRONOUS_MODES:
            raise InvalidArgumentError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}"
            )
        if (
            isinstance(busy_timeout, bool)
            or not isinstance(busy_timeout, int | float)
            or not 0 <= busy_timeout <= 3600
        ):
            raise InvalidArgumentError(
                f"busy_timeout must be seconds in [0, 3600], got {busy_timeout!r}"
            )
        self.path = path
        self.synchronous = str(mode)
        self.busy_timeout = float(busy_timeout)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._loads: Coalescer[str, Snapshot] = Coalescer(self._load_many, BATCH)

    @property
    def description(self) -> str:
        return f"SQLite state store sqlite://{self.path}"

    # ------------------------------------------------------------------ thread plumbing

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the database thread; map SQLite errors to state errors."""
        if self._executor is None:  # closed while this call was queued (a coalesced load)
            raise StoreClosedError(f"{self.description} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise StoreUnavailableError(
                    f"{self.description} is locked by another connection "
                    f"(waited {self.busy_timeout:g}s): {exc}"
                ) from exc
            raise StateError(f"{self.description} failed: {exc}") from exc

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body(conn)`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error."""
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keylane-sqlite")
        try:
            await self._call(self._open_sync)
        except BaseException:
            await self._close()
            raise

    def _open_sync(self) -> None:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=True
        )
        self._conn = conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() not in ("wal", "memory"):
            raise StateError(f"{self.description}: cannot switch to WAL (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        self._transaction(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS keylane_schema "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        row = conn.execute("SELECT version FROM keylane_schema WHERE id = 1").fetchone()
        found = 0 if row is None else int(row[0])
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(f"sqlite://{self.path}", found, SCHEMA_VERSION)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in SQLITE_MIGRATIONS[version]:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO keylane_schema (id, version) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )

    async def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=False)  # its last job (close) is done: the thread just exits

    # ------------------------------------------------------------------ state

    async def _load(self, key: str) -> Snapshot:
        return await self._loads.get(key)  # concurrent loads share one hop to the thread

    async def _load_many(self, keys: list[str]) -> dict[str, Snapshot]:
        return await self._call(self._load_many_sync, keys)

    def _load_many_sync(self, keys: list[str]) -> dict[str, Snapshot]:
        assert self._conn is not None
        marks = ", ".join("?" * len(keys))
        rows = self._conn.execute(
            "SELECT key, version, state, pos_partition, pos_ledger, pos_entry, pos_batch "
            f"FROM keylane_state WHERE key IN ({marks})",
            keys,
        ).fetchall()
        found = {row[0]: row[1:] for row in rows}
        return {key: snapshot_of(key, found.get(key)) for key in keys}

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        now = self._clock()
        return await self._call(
            self._transaction,
            lambda conn: commit_batch(conn, commits, now, prune_before, self._stage),
        )

    async def _prune(self, before: float, limit: int) -> int:
        return await self._call(self._transaction, lambda conn: prune(conn, before, limit))

    # ------------------------------------------------------------------ outbox

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        def body(conn: sqlite3.Connection) -> list[ClaimedSend]:
            chosen: list[str] = []
            keys: set[str] = set()
            for idempotency_key, key in conn.execute(sql.CLAIM_CANDIDATES, (now,)):
                if key not in keys:
                    keys.add(key)
                    chosen.append(idempotency_key)
                    if len(chosen) >= limit:
                        break
            until = now + lease
            return [
                claimed_of(conn.execute(sql.CLAIM_ONE, (owner, until, until, now, name)).fetchone())
                for name in chosen
            ]

        return await self._call(self._transaction, body)

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
        stored = SendStatus.PENDING if status is SendStatus.DEFERRED else status
        args = {
            "status": stored.value,
            "not_before": not_before,
            "retry_at": retry_at,
            "finished_at": None if stored in (SendStatus.PENDING, SendStatus.RETRY) else now,
            "detail": detail,
            "name": idempotency_key,
            "owner": owner,
            "attempt": attempt,
        }

        def update() -> bool:
            assert self._conn is not None  # one statement: atomic without BEGIN
            return self._conn.execute(sql.FINISH, args).rowcount == 1

        return await self._call(update)

    async def _sends_for(self, key: str) -> list[SendRecord]:
        def query() -> list[SendRecord]:
            assert self._conn is not None
            rows = self._conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM keylane_outbox WHERE key = ? ORDER BY seq", (key,)
            ).fetchall()
            return [record_of(row) for row in rows]

        return await self._call(query)

    async def _outbox_stats(self, now: float) -> OutboxStats:
        def query() -> OutboxStats:
            assert self._conn is not None
            counts = dict.fromkeys(SendStatus, 0)
            del counts[SendStatus.DEFERRED]
            for status, count in self._conn.execute(
                "SELECT status, count(*) FROM keylane_outbox GROUP BY status"
            ):
                counts[SendStatus(status)] = int(count)
            (oldest,) = self._conn.execute(
                "SELECT min(ready_at) FROM keylane_outbox "
                "WHERE status IN ('PENDING', 'RETRY') AND ready_at <= ?",
                (now,),
            ).fetchone()
            return OutboxStats(
                counts[SendStatus.PENDING] + counts[SendStatus.RETRY],
                counts[SendStatus.DISPATCHING],
                0.0 if oldest is None else max(0.0, now - float(oldest)),
                counts,
            )

        return await self._call(query)

    # ------------------------------------------------------------------ timers

    async def _due_timers(self, now: float, limit: int) -> list[Timer]:
        return await self._timers(
            "SELECT key, timer_id, due_at FROM keylane_timers WHERE due_at <= ? "
            "ORDER BY due_at, key, timer_id LIMIT ?",
            (now, limit),
        )

    async def _timers_for(self, key: str) -> list[Timer]:
        return await self._timers(
            "SELECT key, timer_id, due_at FROM keylane_timers WHERE key = ? "
            "ORDER BY due_at, timer_id",
            (key,),
        )

    async def _timers(self, sql: str, args: tuple[Any, ...]) -> list[Timer]:
        def query() -> list[Timer]:
            assert self._conn is not None
            return [Timer(*row) for row in self._conn.execute(sql, args).fetchall()]

        return await self._call(query)

    async def _armed_timers_count(self) -> int:
        def query() -> int:
            assert self._conn is not None
            return int(self._conn.execute("SELECT count(*) FROM keylane_timers").fetchone()[0])

        return await self._call(query)
