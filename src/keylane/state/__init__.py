"""Durable per-key state and its outbox, behind one contract (:mod:`keylane.state.base`).

``open_store(url)`` picks the backend:

* ``memory://``: :class:`~keylane.state.memory.MemoryStateStore` (tests, the simulator);
* ``sqlite:///abs/path.db``, ``sqlite://relative/path.db``, ``sqlite://:memory:``:
  :class:`~keylane.state.sqlite.SqliteStateStore` (the text after ``sqlite://`` is the file
  path; ``?synchronous=FULL`` and ``?busy_timeout=SECONDS`` set those options);
* ``postgresql://user@host:port/database`` (or ``postgres://``, ``?schema=name``):
  :class:`~keylane.state.postgres.PostgresStateStore`, which needs the ``postgres`` extra and is
  imported only then, so this package never imports ``asyncpg`` by itself.

Use the store as ``async with open_store(url) as store:`` (that opens it and creates or migrates
the schema). :class:`GroupCommitter` batches concurrent commits into one transaction.
"""

from __future__ import annotations

import inspect
import urllib.parse
from typing import Any

from keylane.errors import InvalidArgumentError
from keylane.state.base import DEFAULT_DEDUPE_RETENTION, SCHEMA_VERSION, StateStore
from keylane.state.errors import (
    FencedError,
    SchemaVersionError,
    StateError,
    StoreClosedError,
    StoreUnavailableError,
)
from keylane.state.group import GroupCommitStats, GroupCommitter
from keylane.state.memory import MemoryStateStore
from keylane.state.values import (
    ClaimedSend,
    Commit,
    CommitResult,
    OutboxStats,
    Outcome,
    Position,
    SendIntent,
    SendRecord,
    SendStatus,
    Snapshot,
    Timer,
)

__all__ = [
    "DEFAULT_DEDUPE_RETENTION",
    "SCHEMA_VERSION",
    "ClaimedSend",
    "Commit",
    "CommitResult",
    "FencedError",
    "GroupCommitStats",
    "GroupCommitter",
    "MemoryStateStore",
    "OutboxStats",
    "Outcome",
    "Position",
    "SchemaVersionError",
    "SendIntent",
    "SendRecord",
    "SendStatus",
    "Snapshot",
    "StateError",
    "StateStore",
    "StoreClosedError",
    "StoreUnavailableError",
    "Timer",
    "open_store",
]

_SQLITE_OPTIONS = {"synchronous": str, "busy_timeout": float}


def _sqlite_options(url: str, query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        convert = _SQLITE_OPTIONS.get(name)
        if convert is None:
            raise InvalidArgumentError(
                f"bad SQLite URL {url!r}: unknown option {name!r} "
                f"(known: {', '.join(_SQLITE_OPTIONS)})"
            )
        try:
            options[name] = convert(value)
        except ValueError:
            raise InvalidArgumentError(f"bad SQLite URL {url!r}: {name}={value!r}") from None
    return options


def open_store(url: str, **options: Any) -> StateStore:
    """An unopened store for ``url``; use it as ``async with open_store(url) as store``.

    ``options`` go to the backend's constructor (``clock``, ``dedupe_retention``, and the
    backend's own, e.g. ``synchronous`` or ``max_size``); they override URL options.

    Raises:
        InvalidArgumentError: not a str, an unknown scheme, an empty path, a bad option.
        MissingExtraError: ``postgresql://`` without the ``postgres`` extra.
    """
    if not isinstance(url, str):
        raise InvalidArgumentError(f"store URL must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme = ""
    if scheme == "memory":
        if rest:
            raise InvalidArgumentError(f"bad memory store URL {url!r}: use 'memory://'")
        return MemoryStateStore(**_options(MemoryStateStore, url, options))
    if scheme == "sqlite":
        path, _, query = rest.partition("?")
        if not path:
            raise InvalidArgumentError(
                f"bad SQLite URL {url!r}: no file path (use sqlite:///abs/path.db)"
            )
        return _sqlite_store(path, url, {**_sqlite_options(url, query), **options})
    if scheme in ("postgresql", "postgres"):
        from keylane.state.postgres import PostgresStateStore

        return PostgresStateStore(url, **_options(PostgresStateStore, url, options))
    raise InvalidArgumentError(
        f"unknown state store URL {url!r}: use 'memory://', 'sqlite:///path/to/file.db' "
        "or 'postgresql://user@host:5432/database'"
    )


def _sqlite_store(path: str, url: str, options: dict[str, Any]) -> StateStore:
    from keylane.state.sqlite import SqliteStateStore

    return SqliteStateStore(urllib.parse.unquote(path), **_options(SqliteStateStore, url, options))


def _options(store: type[StateStore], url: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options``, checked against the backend's keyword-only parameters."""
    known = [
        p.name
        for p in inspect.signature(store).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(known))
    if unknown:
        where = f" for {url!r}"
        raise InvalidArgumentError(
            f"unknown {store.__name__} option(s){where}: {', '.join(unknown)} "
            f"(known: {', '.join(known)})"
        )
    return options
