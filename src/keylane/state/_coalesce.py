"""Coalesce concurrent point reads into one batched read (used for ``load`` by the SQL stores).

Many handlers loading keys at once would each pay a database round trip (SQLite: a hop to the
database thread; PostgreSQL: a pooled connection). :class:`Coalescer` queues the keys asked for
while a batch is in flight and reads them all in the next one, like the group committer does
for commits; an idle coalescer reads at once (on the next turn of the event loop).

Imports the standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """``await get(key)`` returns ``read([... key ...])[key]``, one ``read`` per batch.

    Args:
        read: reads many keys; must return a value for every key it was given.
        max_batch: most keys per read.
    """

    def __init__(self, read: Callable[[list[K]], Awaitable[dict[K, V]]], max_batch: int) -> None:
        self._read = read
        self._max_batch = max_batch
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keylane-coalesced-read")
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self._max_batch]
                futures = {key: self._waiting.pop(key) for key in keys}
                try:
                    values = await self._read(keys)
                except asyncio.CancelledError:
                    for waiters in [*futures.values(), *self._waiting.values()]:
                        for future in waiters:
                            future.cancel()
                    raise
                except Exception as exc:  # every reader of this batch gets it
                    for waiters in futures.values():
                        for future in waiters:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, waiters in futures.items():
                    for future in waiters:
                        if not future.done():
                            future.set_result(values[key])
        finally:
            self._task = None
