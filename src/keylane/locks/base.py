"""The KeyLock contract: a per-key mutual-exclusion lease with a time-to-live.

This is the contract of the Redis-lock baseline (``shared-lock`` strategy): take the key's lock
before handling an event, release it afterwards. It is the pattern keylane exists to replace, so
its limits are part of the contract:

* A lease expires after its TTL even if the holder is still working. A handler that outlives the
  TTL runs concurrently with the next holder: the split brain the lock was meant to prevent.
  Keep the TTL well above the handler timeout, or extend the lease while working.
* A lock gives exclusivity, not order: whichever event of a key grabs the lock first runs first.

Every lock key is ``LOCK_KEY_PREFIX + key``; that prefix is defined here and nowhere else.

This module imports no backend (no ``redis``).
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass

from keylane.errors import InvalidArgumentError
from keylane.resource import AsyncClosable

__all__ = [
    "DEFAULT_LOCK_TTL",
    "DEFAULT_REDIS_URL",
    "LOCK_KEY_PREFIX",
    "REDIS_URL_ENV",
    "KeyLock",
    "Lease",
    "check_ttl",
]

#: Prefix of every lock key in the lock store (the Redis key space).
LOCK_KEY_PREFIX = "keylane:lock:"

#: Where ``keylane compare`` looks for Redis unless told otherwise (``scripts/services.py``'s).
DEFAULT_REDIS_URL = "redis://127.0.0.1:6390/0"

#: Environment variable that overrides :data:`DEFAULT_REDIS_URL` (read by the CLI and tests).
REDIS_URL_ENV = "KEYLANE_REDIS_URL"

#: Default lease time-to-live in seconds.
DEFAULT_LOCK_TTL = 30.0


def check_ttl(ttl: float) -> float:
    """Validate a lease TTL: a positive number of seconds of at least 1 ms.

    Raises:
        InvalidArgumentError: not a number, NaN, or below 0.001 s.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidArgumentError(f"lock ttl must be seconds (float), not {ttl!r}")
    if not ttl >= 0.001:  # also rejects NaN
        raise InvalidArgumentError(f"lock ttl must be at least 0.001 s, got {ttl}")
    return float(ttl)


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof of holding a key's lock.

    Attributes:
        key: the application key (not prefixed).
        token: random value that identifies this holder; release and extend only act while the
            stored token is still this one (compare-and-delete).
        ttl: the time-to-live the lease was taken or last extended with, seconds.
    """

    key: str
    token: str
    ttl: float


class KeyLock(AsyncClosable):
    """Per-key leases with a TTL, shared by every process that uses the same store.

    Guarantee: while a lease for a key is unexpired, no other ``acquire`` of that key succeeds.
    Nothing holds once the TTL has passed (see the module docstring).
    """

    @abc.abstractmethod
    async def acquire(self, key: str, ttl: float = DEFAULT_LOCK_TTL) -> Lease | None:
        """Try once to take ``key``'s lock for ``ttl`` seconds.

        Returns:
            The lease, or None if someone else holds an unexpired lease.

        Raises:
            InvalidArgumentError: bad ttl.
            LockError: the store cannot be reached.
        """

    @abc.abstractmethod
    async def release(self, lease: Lease) -> bool:
        """Release a lease if it is still the holder (compare-and-delete).

        Returns:
            True if the lease was still held and is now released; False if it had expired (and
            maybe been taken by someone else, whose lease is left alone).
        """

    @abc.abstractmethod
    async def extend(self, lease: Lease, ttl: float) -> Lease | None:
        """Reset a held lease's TTL to ``ttl`` seconds.

        Returns:
            The extended lease, or None if it was no longer held.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection to the store. Idempotent; leases are left to expire."""

    async def acquire_wait(
        self,
        key: str,
        ttl: float = DEFAULT_LOCK_TTL,
        *,
        timeout: float,
        poll_initial: float = 0.005,
        poll_max: float = 0.1,
    ) -> Lease | None:
        """Poll :meth:`acquire` with exponential backoff until it succeeds or ``timeout`` passes.

        The caller's task is blocked while it waits: this is the "spin" variant of the lock
        pattern, which holds a worker slot for the whole wait.

        Args:
            timeout: give up after this many seconds (0 = try once).
            poll_initial: first pause between tries, doubled after each failed try.
            poll_max: longest pause between tries.

        Returns:
            The lease, or None if the lock stayed busy until ``timeout``.
        """
        if not timeout >= 0:
            raise InvalidArgumentError(f"timeout must not be negative, got {timeout}")
        if not 0 < poll_initial <= poll_max:
            raise InvalidArgumentError(
                f"need 0 < poll_initial <= poll_max, got {poll_initial} and {poll_max}"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause = poll_initial
        while True:
            lease = await self.acquire(key, ttl)
            if lease is not None:
                return lease
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, poll_max)
