"""Per-key distributed locks: the baseline keylane replaces.

:class:`KeyLock` is the contract, :class:`MemoryKeyLock` the in-process implementation used by
tests; ``keylane.locks.redis.RedisKeyLock`` (the ``redis`` extra) is the real baseline and is
imported lazily so this package never imports ``redis`` by itself.
"""

from __future__ import annotations

from keylane.locks.base import DEFAULT_LOCK_TTL, LOCK_KEY_PREFIX, KeyLock, Lease
from keylane.locks.memory import MemoryKeyLock

__all__ = ["DEFAULT_LOCK_TTL", "LOCK_KEY_PREFIX", "KeyLock", "Lease", "MemoryKeyLock"]
