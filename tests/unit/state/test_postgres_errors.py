"""How the PostgreSQL store maps a connection that asyncpg left in a wrong protocol state.

asyncpg 0.32 can raise ``InternalClientError("cannot switch to state 15; another operation (2)
is in progress")`` on a pooled connection whose server restarted mid-operation (seen once per
worker in ``make chaos`` across a PostgreSQL restart). Before, that surfaced as an unexpected
error; now it is a lost connection: the pool's connections are expired and the store reports
itself unavailable (callers retry), and a read retries once on a fresh connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from keylane.state import StoreUnavailableError
from keylane.state.postgres import PostgresStateStore

BROKEN = "cannot switch to state 15; another operation (2) is in progress"


class _Pool:
    """A pool whose first ``failures`` bodies fail with asyncpg's protocol-state error."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.expired = 0
        self.calls = 0

    @contextlib.asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Any]:
        yield self

    async def expire_connections(self) -> None:
        self.expired += 1

    async def fetchval(self, query: str) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise asyncpg.InternalClientError(BROKEN)
        return 1


def _store(pool: _Pool) -> PostgresStateStore:
    store = PostgresStateStore("postgresql://keylane@127.0.0.1:1/keylane")
    store._pool = pool  # type: ignore[assignment]
    return store


async def test_a_write_on_a_broken_connection_is_store_unavailable() -> None:
    pool = _Pool(failures=1)
    with pytest.raises(StoreUnavailableError, match="another operation"):
        await _store(pool)._run(lambda conn: conn.fetchval("SELECT 1"), transaction=False)
    assert pool.expired == 1
    assert pool.calls == 1


async def test_a_read_retries_once_on_a_fresh_connection() -> None:
    pool = _Pool(failures=1)
    store = _store(pool)
    got = await store._run(
        lambda conn: conn.fetchval("SELECT 1"), transaction=False, read_only=True
    )
    assert got == 1
    assert pool.expired == 1
    assert pool.calls == 2


async def test_a_read_that_fails_twice_is_store_unavailable() -> None:
    pool = _Pool(failures=2)
    with pytest.raises(StoreUnavailableError):
        await _store(pool)._run(
            lambda conn: conn.fetchval("SELECT 1"), transaction=False, read_only=True
        )
    assert pool.expired == 2
