"""MemoryKeyLock: the KeyLock contract inside one process, for tests and simulation.

Leases expire on the running event loop's clock (``loop.time()``), so TTL behaviour can be
tested in virtual time. Imports no backend.
"""

from __future__ import annotations

import asyncio
import secrets

from keylane.locks.base import DEFAULT_LOCK_TTL, KeyLock, Lease, check_ttl

__all__ = ["MemoryKeyLock"]


class MemoryKeyLock(KeyLock):
    """An in-process lock table: ``key -> (token, expiry)``.

    Only tasks of one process (one event loop) are excluded from each other; use
    :class:`~keylane.locks.redis.RedisKeyLock` across processes.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self.acquired = 0
        """Number of successful acquisitions (for tests and stats)."""
        self.contended = 0
        """Number of acquisitions refused because the key was held."""

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _holder(self, key: str) -> str | None:
        entry = self._held.get(key)
        if entry is None:
            return None
        token, expires = entry
        if expires <= self._now():
            del self._held[key]
            return None
        return token

    async def acquire(self, key: str, ttl: float = DEFAULT_LOCK_TTL) -> Lease | None:
        ttl = check_ttl(ttl)
        if self._holder(key) is not None:
            self.contended += 1
            return None
        token = secrets.token_hex(16)
        self._held[key] = (token, self._now() + ttl)
        self.acquired += 1
        return Lease(key, token, ttl)

    async def release(self, lease: Lease) -> bool:
        if self._holder(lease.key) != lease.token:
            return False
        del self._held[lease.key]
        return True

    async def extend(self, lease: Lease, ttl: float) -> Lease | None:
        ttl = check_ttl(ttl)
        if self._holder(lease.key) != lease.token:
            return None
        self._held[lease.key] = (lease.token, self._now() + ttl)
        return Lease(lease.key, lease.token, ttl)

    def held(self, key: str) -> bool:
        """Whether ``key`` has an unexpired lease (call from inside the event loop)."""
        return self._holder(key) is not None

    async def close(self) -> None:
        self._held.clear()
