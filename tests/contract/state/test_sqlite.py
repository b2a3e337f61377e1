"""What only the SQLite store promises: its own thread, WAL, the synchronous setting."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from keylane.state import open_store
from keylane.state.sqlite import SqliteStateStore
from tests.contract.state.support import commit


async def test_database_work_runs_on_its_own_thread(tmp_path: Path) -> None:
    # Given a store whose fault hook records where the transaction runs
    threads: list[str] = []
    hook = lambda stage: threads.append(threading.current_thread().name)  # noqa: E731
    async with SqliteStateStore(str(tmp_path / "s.db"), fault_hook=hook) as store:
        await store.commit(commit("u", 0))
    # Then it never ran on the event loop's thread
    assert threads
    assert all(name.startswith("keylane-sqlite") for name in threads)
    assert threading.current_thread().name not in threads


async def test_wal_and_synchronous_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with open_store(f"sqlite://{path}?synchronous=full&busy_timeout=2") as store:
        assert isinstance(store, SqliteStateStore)
        assert (store.synchronous, store.busy_timeout) == ("FULL", 2.0)
        await store.commit(commit("u", 0))
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM keylane_state").fetchone()[0] == 1


async def test_an_in_memory_database(tmp_path: Path) -> None:
    async with open_store("sqlite://:memory:") as store:
        await store.commit(commit("u", 0, b"x"))
        assert (await store.load("u")).state == b"x"
