"""Fixtures of the state store contract suite: one test body, three backends.

Every test takes ``factory`` (or ``store``, the factory's first store), parametrised over
``memory`` (``memory://``), ``sqlite`` (a file in the test's tmp directory) and ``postgres`` (the
real server of ``scripts/services.py``, marked ``postgres``; each test gets a schema of its own,
dropped afterwards). Tests talk only to the public contract of :mod:`keylane.state`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from keylane.state import StateStore, open_store

DURABLE = ("sqlite", "postgres")


class StoreFactory:
    """Opens stores of one backend on one database; closes them all at teardown."""

    def __init__(self, kind: str, url: str, admin_url: str | None) -> None:
        self.kind = kind
        self.url = url
        self.admin_url = admin_url  # postgres: the server URL without the test's schema
        self._stores: list[StateStore] = []
        self._memory: StateStore | None = None

    @property
    def durable(self) -> bool:
        return self.kind in DURABLE

    async def open(self, **options: Any) -> StateStore:
        """A new open store on the test's database (memory: the same one store)."""
        if self.kind == "memory" and not options and self._memory is not None:
            return self._memory
        store = open_store(self.url, **options)
        await store.open()
        self._stores.append(store)
        if self.kind == "memory" and not options:
            self._memory = store
        return store

    async def close_all(self) -> None:
        for store in self._stores:
            await store.close()

    async def set_schema_version(self, version: int) -> None:
        """Tamper with the recorded schema version (as a newer keylane would leave it)."""
        if self.kind == "sqlite":
            import sqlite3
            from contextlib import closing

            with closing(sqlite3.connect(self.url.removeprefix("sqlite://"))) as db, db:
                db.execute("UPDATE keylane_schema SET version = ?", (version,))
        elif self.kind == "postgres":
            conn = await asyncpg.connect(self.admin_url)
            try:
                await conn.execute(f"UPDATE {self.schema}.keylane_schema SET version = $1", version)
            finally:
                await conn.close()
        else:
            raise AssertionError("the memory store has no schema")

    @property
    def schema(self) -> str:
        return self.url.rpartition("schema=")[2]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which backend the test runs on."""
    return str(request.param)


@pytest.fixture
async def factory(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StoreFactory]:
    """Opens stores of ``store_kind`` on a fresh database."""
    schema = None
    admin_url = None
    if store_kind == "memory":
        url = "memory://"
    elif store_kind == "sqlite":
        url = f"sqlite://{tmp_path / 'state.db'}"
    else:
        admin_url = request.getfixturevalue("postgres_url")
        schema = f"t_{uuid.uuid4().hex[:16]}"
        url = f"{admin_url}?schema={schema}"
    made = StoreFactory(store_kind, url, admin_url)
    try:
        yield made
    finally:
        await made.close_all()
        if schema is not None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()


@pytest.fixture
async def store(factory: StoreFactory) -> StateStore:
    """An open store on a fresh database."""
    return await factory.open()
