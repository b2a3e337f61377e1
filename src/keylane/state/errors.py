"""The state stores' errors: the :class:`StateError` family.

Imports only :mod:`keylane.errors`.
"""

from __future__ import annotations

from keylane.errors import KeylaneError

__all__ = [
    "FencedError",
    "SchemaVersionError",
    "StateError",
    "StoreClosedError",
    "StoreUnavailableError",
]


class StateError(KeylaneError):
    """Base class of the errors a state store raises on purpose."""


class FencedError(StateError):
    """A commit's expected version is stale: another writer committed the key first.

    The caller must not ack the message (the key's new owner has it) and should forget the
    key's lane. Nothing of the commit was written.

    Attributes:
        key: the key.
        expected: the version the commit expected.
        stored: the version the store holds.
    """

    def __init__(self, key: str, expected: int, stored: int) -> None:
        super().__init__(
            f"commit of key {key!r} fenced: expected version {expected}, stored version {stored}"
        )
        self.key = key
        self.expected = expected
        self.stored = stored

    def __reduce__(self) -> tuple[type[FencedError], tuple[str, int, int]]:
        return (FencedError, (self.key, self.expected, self.stored))


class StoreUnavailableError(StateError):
    """The store cannot be reached or is busy right now; retry with backoff.

    SQLite: the database stayed locked past the busy timeout. PostgreSQL: the connection was
    lost, the server is down or refuses connections. Nothing of the failed operation was
    written (a transaction that may have committed before the connection dropped is retried
    as a duplicate or fenced commit, which the store detects).
    """


class SchemaVersionError(StateError):
    """The store was created by a newer keylane schema than this code knows."""

    def __init__(self, where: str, found: int, supported: int) -> None:
        super().__init__(
            f"the state store at {where} has schema version {found}, but this keylane supports "
            f"schema version {supported} at most: upgrade keylane (or use another store)"
        )
        self.found = found
        self.supported = supported


class StoreClosedError(StateError):
    """The store (or group committer) is not open: it was closed, or never opened."""
