"""A store that is unavailable for a while: SQLite locked by another process, PostgreSQL down.

The caller sees :class:`StoreUnavailableError` (so it does not ack and retries later), nothing is
half-written, and once the store is back the same commit succeeds and nothing is lost.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from keylane.state import (
    CommitResult,
    GroupCommitter,
    Outcome,
    Snapshot,
    StoreUnavailableError,
    open_store,
)
from tests.contract.state.conftest import StoreFactory
from tests.contract.state.support import commit, send

ROOT = Path(__file__).resolve().parents[3]

_LOCKER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    """
)


@asynccontextmanager
async def locked_by_another_process(path: str) -> AsyncIterator[None]:
    """Hold ``BEGIN EXCLUSIVE`` on the SQLite file from a second process until exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCKER, path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"locked"
        yield
    finally:
        proc.stdin.write(b"\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.wait(), 30) == 0


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
async def test_sqlite_locked_by_another_process(factory: StoreFactory) -> None:
    # Given a committed key, and a store that waits at most 0.2 s for the write lock
    store = await factory.open(busy_timeout=0.2)
    await store.commit(commit("u", 0, b"before"))
    doomed = commit("u", 1, b"after", event_id="e2", sends=(send("u:1", "u"),))
    path = factory.url.removeprefix("sqlite://")
    async with locked_by_another_process(path):
        # When another process holds the write lock, commits fail as unavailable ...
        with pytest.raises(StoreUnavailableError, match="locked"):
            await store.commit(doomed)
        async with GroupCommitter(store) as committer:
            with pytest.raises(StoreUnavailableError):
                await committer.commit(doomed)
        # ... while reads still work (WAL) and show nothing of the failed commit
        assert await store.load("u") == Snapshot("u", 1, b"before", None)
        assert await store.sends_for("u") == []
    # Then once the lock is released the same commit succeeds
    assert await store.commit(doomed) == CommitResult(Outcome.COMMITTED, 2)
    assert len(await store.sends_for("u")) == 1


class PrivatePostgres:
    """A PostgreSQL server of its own (``scripts/services.py`` on another port and directory).

    Stopping the shared server would break whatever else is using it at the time, so the
    restart test runs against this one. Its directory is world-traversable, as the server runs
    as the ``postgres`` user when the tests run as root.
    """

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="keylane-pg-"))
        self.home.chmod(0o755)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"postgresql://keylane@127.0.0.1:{self.port}/keylane"
        self.env = {
            **os.environ,
            "KEYLANE_SERVICES_DIR": str(self.home),
            "KEYLANE_POSTGRES_PORT": str(self.port),
        }

    async def run(self, action: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "scripts" / "services.py"), "postgres", action,
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()


@pytest.fixture
async def private_postgres(postgres_url: str) -> AsyncIterator[PrivatePostgres]:
    """A private server, started and finally stopped and deleted (needs the shared one's
    installation: ``postgres_url`` fails in CI, or skips locally, when there is none)."""
    server = PrivatePostgres()
    try:
        await server.run("start")
        yield server
    finally:
        await server.run("stop")
        shutil.rmtree(server.home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_stopped_and_restarted(private_postgres: PrivatePostgres) -> None:
    # Given committed state and a pool of live connections
    server = private_postgres
    async with open_store(server.url, max_size=3, connect_timeout=2.0) as store:
        await store.commit(commit("u", 0, b"before", sends=(send("u:1", "u"),)))
        doomed = commit("u", 1, b"after", event_id="e2")
        try:
            # When the server is stopped
            await server.run("stop")
            # Then reads and commits fail as unavailable (no ack), on every try
            for _ in range(3):
                with pytest.raises(StoreUnavailableError):
                    await store.commit(doomed)
                with pytest.raises(StoreUnavailableError):
                    await store.load("u")
        finally:
            await server.run("start")
        # And after the restart the same pool works again and nothing was lost
        assert await store.load("u") == Snapshot("u", 1, b"before", None)
        assert await store.commit(doomed) == CommitResult(Outcome.COMMITTED, 2)
        assert [r.idempotency_key for r in await store.sends_for("u")] == ["u:1"]
