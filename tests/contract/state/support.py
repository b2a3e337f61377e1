"""Builders shared by the state contract tests."""

from __future__ import annotations

from typing import Any

import pytest

from keylane.state import Commit, Position, SendIntent, Timer

#: ``@DURABLE_ONLY`` on a test: run it on SQLite and PostgreSQL only (the memory store keeps
#: nothing across reopening and has no schema).
DURABLE_ONLY = pytest.mark.parametrize(
    "store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
#: ``@POSTGRES_ONLY`` on a test: behaviour only PostgreSQL has (several concurrent relays).
POSTGRES_ONLY = pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def commit(key: str, version: int, state: bytes | None = None, **fields: Any) -> Commit:
    """A commit of ``key`` at ``version`` with ``state`` (default: ``b"<key>@<version+1>"``)."""
    body = state if state is not None else f"{key}@{version + 1}".encode()
    return Commit(key, version, body, **fields)


def send(name: str, key: str, not_before: float = 0.0, **fields: Any) -> SendIntent:
    """A send intent ``name`` of ``key`` on the sms channel."""
    fields.setdefault("channel", "sms")
    fields.setdefault("payload", f"payload of {name}".encode())
    return SendIntent(name, key, not_before=not_before, **fields)


def timer(key: str, timer_id: str, due_at: float) -> Timer:
    return Timer(key, timer_id, due_at)


def pos(entry: int, ledger: int = 7, partition: int = 0, batch: int = -1) -> Position:
    return Position(partition, ledger, entry, batch)
