"""open_store: URL schemes, options and the errors for bad ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from keylane.errors import InvalidArgumentError
from keylane.state import MemoryStateStore, open_store
from keylane.state.postgres import PostgresStateStore
from keylane.state.sqlite import SqliteStateStore


def test_memory() -> None:
    assert isinstance(open_store("memory://"), MemoryStateStore)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/keylane/state.db", "/var/lib/keylane/state.db"),
        ("sqlite://.keylane/state.db", ".keylane/state.db"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite:///tmp/with%20space.db", "/tmp/with space.db"),
    ],
)
def test_sqlite_paths(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStateStore)
    assert store.path == path
    assert store.synchronous == "NORMAL"


def test_sqlite_options_from_the_url_and_keywords() -> None:
    store = open_store("sqlite:///tmp/x.db?synchronous=FULL&busy_timeout=0.5", busy_timeout=3)
    assert isinstance(store, SqliteStateStore)
    assert (store.synchronous, store.busy_timeout) == ("FULL", 3.0)


def test_postgres_url_and_schema() -> None:
    store = open_store("postgresql://keylane:secret@db.example:5440/keylane?schema=tenant_1")
    assert isinstance(store, PostgresStateStore)
    assert store.schema == "tenant_1"
    assert "secret" not in store.url
    assert "secret" not in store.description
    assert store.url == "postgresql://keylane@db.example:5440/keylane?schema=tenant_1"
    assert isinstance(open_store("postgres://h/db"), PostgresStateStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "unknown state store URL ''"),
        ("redis://localhost", "unknown state store URL 'redis://localhost'"),
        ("state.db", "unknown state store URL 'state.db'"),
        ("memory://x", "bad memory store URL"),
        ("sqlite://", "no file path"),
        ("sqlite://?synchronous=FULL", "no file path"),
        ("sqlite:///x.db?synchronous=OFF", "synchronous"),
        ("sqlite:///x.db?fsync=1", "unknown option 'fsync'"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout"),
        ("postgresql:///db", "bad PostgreSQL URL"),
        ("postgresql://h/db?schema=1abc", "schema must be a plain identifier"),
        ("postgresql://h/db?schema=a;drop", "schema must be a plain identifier"),
    ],
)
def test_bad_urls_name_the_url(url: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("?", r"\?")):
        open_store(url)


def test_bad_options() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown SqliteStateStore option"):
        open_store("sqlite:///x.db", pool_size=3)
    with pytest.raises(InvalidArgumentError, match="max_size"):
        open_store("postgresql://h/db", max_size=0)
    with pytest.raises(InvalidArgumentError, match="dedupe_retention"):
        open_store("memory://", dedupe_retention=0)
    with pytest.raises(InvalidArgumentError, match="store URL must be a str"):
        open_store(None)  # type: ignore[arg-type]


def test_missing_asyncpg_names_the_install_command() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["asyncpg"] = None
        from keylane.errors import MissingExtraError
        from keylane.state import open_store
        open_store("memory://"); open_store("sqlite:///tmp/x.db")  # need no driver
        try:
            open_store("postgresql://localhost/db")
        except MissingExtraError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'keylane[postgres]'" in result.stdout
