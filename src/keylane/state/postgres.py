"""PostgresStateStore: the contract on PostgreSQL (asyncpg), for several workers and hosts.

The only module that imports ``asyncpg`` at run time (:mod:`._pg_commit`, the group commit's
statements, only for types). A connection pool serves all calls; after a server
restart the pool's dead connections are expired on the first failure, so the next call
reconnects. Connection loss, a server that is down or starting, too many connections and
timeouts raise :class:`StoreUnavailableError`; reads are retried once on a fresh connection
first. Deadlocks and serialisation failures roll the whole transaction back and are retried.

Group commit is one transaction of five statements whatever the batch size
(:mod:`._pg_commit`): lock the batch's existing state rows in key order (``SELECT ... ORDER BY key
FOR UPDATE``, so two processes' batches cannot deadlock on each other), read their dedupe marks,
classify each commit in Python (duplicate, fenced, or write), insert new keys (``INSERT ... ON
CONFLICT DO NOTHING``: a key created concurrently by another process is re-read and classified),
then one statement of data-modifying CTEs over ``unnest``-ed arrays writes everything else.

Claims let several relays work at once without blocking each other: candidate rows are taken
``FOR UPDATE SKIP LOCKED``; per key a transaction-scoped advisory lock
(``pg_try_advisory_xact_lock``, skipped when taken) serialises claims of the same key, and the
claiming ``UPDATE`` re-checks, in a snapshot taken after that lock, that the key has no other
DISPATCHING row. So at most one row per key is DISPATCHING across all relays.

Imports the state contract, :mod:`asyncpg` and the standard library.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from keylane.errors import InvalidArgumentError, MissingExtraError
from keylane.state import _sql_postgres as sql
from keylane.state._coalesce import Coalescer
from keylane.state._pg_commit import Conn, commit_batch
from keylane.state._rows import (
    RECORD_COLUMNS,
    claimed_of,
    record_of,
    snapshot_of,
)
from keylane.state._schema import POSTGRES_MIGRATIONS
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

try:
    import asyncpg
    import asyncpg.exceptions as pgerr
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError("PostgresStateStore", "postgres", "asyncpg") from exc

__all__ = ["PostgresStateStore"]

T = TypeVar("T")

#: First key of keylane's advisory locks (``pg_try_advisory_xact_lock(int, int)``): "kl".
ADVISORY_CLASS = 0x6B6C

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    pgerr.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    pgerr.OperatorInterventionError,  # class 57: admin/crash shutdown, cannot connect now
    pgerr.InsufficientResourcesError,  # class 53: too many connections, disk full
    OSError,  # refused, reset
    TimeoutError,
)
_RETRY_TX = (pgerr.DeadlockDetectedError, pgerr.SerializationError)
_CLOSE_FAILED: tuple[type[BaseException], ...] = (*_UNAVAILABLE, asyncpg.InterfaceError)
_TX_RETRIES = 3


def _split_url(url: str) -> tuple[str, str | None, str]:
    """``(dsn for asyncpg, schema or None, description without password)``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise InvalidArgumentError(
            f"bad PostgreSQL URL {url!r}: use postgresql://user@host:port/database"
        )
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    rest = []
    for name, value in query:
        if name == "schema":
            if not value or not value.replace("_", "").isalnum() or not value[0].isalpha():
                raise InvalidArgumentError(
                    f"bad PostgreSQL URL {url!r}: schema must be a plain identifier, got {value!r}"
                )
            schema = value.lower()
        else:
            rest.append((name, value))
    dsn = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    shown = urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=""))
    return dsn, schema, shown + (f"?schema={schema}" if schema else "")


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise InvalidArgumentError(f"{name} must be seconds in (0, 3600], got {value!r}")
    return float(value)


class PostgresStateStore(StateStore):
    """The state store contract on PostgreSQL (``postgresql://user@host:port/database``).

    Args:
        url: a libpq-style URL; ``?schema=name`` keeps keylane's tables in that schema
            (created if missing), other query parameters go to asyncpg.
        min_size, max_size: the connection pool's bounds.
        connect_timeout: seconds to open a connection (or wait for a pooled one).
        command_timeout: seconds a statement may take before :class:`StoreUnavailableError`.
        clock, dedupe_retention, fault_hook: see :class:`StateStore`.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        clock: Clock = time.time,
        dedupe_retention: float = DEFAULT_DEDUPE_RETENTION,
        fault_hook: FaultHook | None = None,
    ) -> None:
        super().__init__(clock=clock, dedupe_retention=dedupe_retention, fault_hook=fault_hook)
        if not isinstance(url, str):
            raise InvalidArgumentError(f"url must be a str, not {type(url).__name__}")
        self._dsn, self.schema, self.url = _split_url(url)
        for name, size in (("min_size", min_size), ("max_size", max_size)):
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 1000:
                raise InvalidArgumentError(f"{name} must be an int in [0, 1000], got {size!r}")
        if max_size < max(1, min_size):
            raise InvalidArgumentError(f"max_size ({max_size}) must be >= max(1, min_size)")
        self._min_size, self._max_size = min_size, max_size
        self._connect_timeout = _seconds("connect_timeout", connect_timeout)
        self._command_timeout = _seconds("command_timeout", command_timeout)
        self._pool: asyncpg.Pool | None = None
        self._loads: Coalescer[str, Snapshot] = Coalescer(self._load_many, 1000)

    @property
    def description(self) -> str:
        return f"PostgreSQL state store {self.url}"

    # ------------------------------------------------------------------ plumbing

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        reason = str(exc) or type(exc).__name__
        return StoreUnavailableError(f"{self.description} is unavailable: {reason}")

    async def _run(
        self,
        body: Callable[[Conn], Awaitable[T]],
        *,
        transaction: bool = True,
        read_only: bool = False,
    ) -> T:
        """``body(conn)`` on a pooled connection (in a transaction), errors mapped, retried.

        A deadlock or serialisation failure retries the whole transaction (it was rolled
        back); a lost connection expires the pool's connections and, for reads, retries once.
        """
        pool = self._pool
        if pool is None:  # closed while this call was queued (a coalesced load)
            raise StoreClosedError(f"{self.description} is closed")
        attempt = 0
        while True:
            attempt += 1
            try:
                async with pool.acquire(timeout=self._connect_timeout) as conn:
                    if not transaction:
                        return await body(conn)
                    async with conn.transaction():
                        return await body(conn)
            except _RETRY_TX as exc:
                if attempt > _TX_RETRIES:
                    raise self._unavailable(exc) from exc
            except _UNAVAILABLE as exc:
                await pool.expire_connections()
                if not (read_only and attempt == 1):
                    raise self._unavailable(exc) from exc
            except asyncpg.InternalClientError as exc:
                # asyncpg leaves a connection whose server went away mid-operation in a wrong
                # protocol state ("cannot switch to state 15; another operation (2) is in
                # progress", MagicStack/asyncpg#784): seen once per worker across a PostgreSQL
                # restart. The connection is unusable, the server may be back: like a lost
                # connection, drop the pool's connections and report the store unavailable.
                await pool.expire_connections()
                if not (read_only and attempt == 1):
                    raise self._unavailable(exc) from exc
            except asyncpg.InterfaceError as exc:
                if "closed" not in str(exc):
                    raise StateError(f"{self.description} failed: {exc}") from exc
                await pool.expire_connections()
                if not (read_only and attempt == 1):
                    raise self._unavailable(exc) from exc
            except asyncpg.PostgresError as exc:
                raise StateError(f"{self.description} failed: {exc}") from exc

    async def _open(self) -> None:
        settings = {"search_path": self.schema} if self.schema else None
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=settings,
            )
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StateError(f"{self.description}: cannot connect: {exc}") from exc
        try:
            await self._run(self._migrate)
        except BaseException:
            await self._close()
            raise

    async def _migrate(self, conn: Conn) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock($1::int, 0)", ADVISORY_CLASS)
        if self.schema:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS keylane_schema "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        found = await conn.fetchval("SELECT version FROM keylane_schema WHERE id = 1") or 0
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(self.url, found, SCHEMA_VERSION)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in POSTGRES_MIGRATIONS[version]:
                await conn.execute(statement)
        await conn.execute(
            "INSERT INTO keylane_schema (id, version) VALUES (1, $1) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            SCHEMA_VERSION,
        )

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._connect_timeout)
        except _CLOSE_FAILED:
            pool.terminate()

    # ------------------------------------------------------------------ state

    async def _load(self, key: str) -> Snapshot:
        return await self._loads.get(key)  # concurrent loads share one query

    async def _load_many(self, keys: list[str]) -> dict[str, Snapshot]:
        async def body(conn: Conn) -> dict[str, Snapshot]:
            rows = await conn.fetch(
                "SELECT key, version, state, pos_partition, pos_ledger, pos_entry, pos_batch "
                "FROM keylane_state WHERE key = ANY($1::text[])",
                keys,
            )
            found = {row[0]: row[1:] for row in rows}
            return {key: snapshot_of(key, found.get(key)) for key in keys}

        return await self._run(body, transaction=False, read_only=True)

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        now = self._clock()

        async def body(conn: Conn) -> list[CommitResult | StateError]:
            return await commit_batch(conn, commits, now, prune_before, self._stage)

        return await self._run(body)

    async def _prune(self, before: float, limit: int) -> int:
        async def body(conn: Conn) -> int:
            status = await conn.execute(sql.PRUNE, before, limit)
            return int(status.rsplit(" ", 1)[-1])

        return await self._run(body)

    # ------------------------------------------------------------------ outbox

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        async def body(conn: Conn) -> list[ClaimedSend]:
            candidates = await conn.fetch(sql.CLAIM_CANDIDATES, now, limit * 4)
            chosen: dict[str, str] = {}
            for name, key in candidates:
                if key not in chosen and len(chosen) < limit:
                    chosen[key] = name
            if not chosen:
                return []
            locked = await conn.fetch(sql.LOCK_KEYS, list(chosen), ADVISORY_CLASS)
            names = [chosen[r[0]] for r in locked]
            if not names:
                return []
            rows = await conn.fetch(sql.CLAIM, names, owner, now + lease, now)
            order = {name: i for i, name in enumerate(names)}
            return sorted((claimed_of(r) for r in rows), key=lambda c: order[c.idempotency_key])

        return await self._run(body)

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
        finished = None if stored in (SendStatus.PENDING, SendStatus.RETRY) else now

        async def body(conn: Conn) -> bool:
            result = await conn.execute(
                sql.FINISH,
                stored.value,
                not_before,
                retry_at,
                finished,
                detail,
                idempotency_key,
                owner,
                attempt,
            )
            return bool(result == "UPDATE 1")

        return await self._run(body, transaction=False)

    async def _sends_for(self, key: str) -> list[SendRecord]:
        async def body(conn: Conn) -> list[SendRecord]:
            rows = await conn.fetch(
                f"SELECT {RECORD_COLUMNS} FROM keylane_outbox WHERE key = $1 ORDER BY seq", key
            )
            return [record_of(r) for r in rows]

        return await self._run(body, transaction=False, read_only=True)

    async def _outbox_stats(self, now: float) -> OutboxStats:
        async def body(conn: Conn) -> OutboxStats:
            counts = dict.fromkeys(SendStatus, 0)
            del counts[SendStatus.DEFERRED]
            for status, count in await conn.fetch(
                "SELECT status, count(*) FROM keylane_outbox GROUP BY status"
            ):
                counts[SendStatus(status)] = int(count)
            oldest = await conn.fetchval(
                "SELECT min(ready_at) FROM keylane_outbox "
                "WHERE status IN ('PENDING', 'RETRY') AND ready_at <= $1",
                now,
            )
            return OutboxStats(
                counts[SendStatus.PENDING] + counts[SendStatus.RETRY],
                counts[SendStatus.DISPATCHING],
                0.0 if oldest is None else max(0.0, now - float(oldest)),
                counts,
            )

        return await self._run(body, read_only=True)

    # ------------------------------------------------------------------ timers

    async def _timers(self, sql: str, *args: Any) -> list[Timer]:
        async def body(conn: Conn) -> list[Timer]:
            return [Timer(r[0], r[1], r[2]) for r in await conn.fetch(sql, *args)]

        return await self._run(body, transaction=False, read_only=True)

    async def _due_timers(self, now: float, limit: int) -> list[Timer]:
        return await self._timers(
            "SELECT key, timer_id, due_at FROM keylane_timers WHERE due_at <= $1 "
            "ORDER BY due_at, key, timer_id LIMIT $2",
            now,
            limit,
        )

    async def _timers_for(self, key: str) -> list[Timer]:
        return await self._timers(
            "SELECT key, timer_id, due_at FROM keylane_timers WHERE key = $1 "
            "ORDER BY due_at, timer_id",
            key,
        )

    async def _armed_timers_count(self) -> int:
        async def body(conn: Conn) -> int:
            return int(await conn.fetchval("SELECT count(*) FROM keylane_timers"))

        return await self._run(body, transaction=False, read_only=True)
