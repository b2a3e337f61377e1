"""Per-user state for the simulation: a counter each handler reads, awaits on, and writes back.

The handler's read-modify-write with an ``await`` in the middle is what turns concurrent
handling of one user into *lost updates*: two handlers read the same value and both write
value + 1. After a run, ``counter(user) < successful completions(user)`` counts them (the
checker's ``counters=`` argument).

Imports no backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["MemoryStateStore"]


@dataclass
class MemoryStateStore:
    """In-memory per-user counters; one store per run.

    ``get`` and ``put`` are coroutines so a real store could replace this one without changing the
    handler, but they never suspend: the only interleaving point is the handler's own I/O await.
    """

    _values: dict[str, int] = field(default_factory=dict)

    async def get(self, key: str) -> int:
        """The user's counter (0 if never written)."""
        return self._values.get(key, 0)

    async def put(self, key: str, value: int) -> None:
        """Overwrite the user's counter."""
        self._values[key] = value

    def snapshot(self) -> Mapping[str, int]:
        """A copy of every counter, for the checker."""
        return dict(self._values)
