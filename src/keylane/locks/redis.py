"""RedisKeyLock: the Redis-lock baseline, ``SET key token NX PX ttl`` + Lua compare-and-delete.

This is the usual distributed-lock pattern that teams put in front of a Shared subscription
(see ``docs/baseline.md``). It is the only keylane module that imports ``redis``.

Every operation costs one round trip to Redis. Leases are random tokens; release and extend run
as Lua scripts so they only touch the lock while it still holds the caller's token. There is no
fencing token: a holder whose lease expired cannot tell, so a handler that outlives the TTL runs
concurrently with the next holder.
"""

from __future__ import annotations

import secrets
from typing import Any, Self

from keylane.errors import LockError, MissingExtraError
from keylane.locks.base import (
    DEFAULT_LOCK_TTL,
    DEFAULT_REDIS_URL,
    LOCK_KEY_PREFIX,
    KeyLock,
    Lease,
    check_ttl,
)

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingExtraError("RedisKeyLock", "redis", "redis") from exc

__all__ = ["RedisKeyLock"]

# Delete the key only if it still holds our token.
_RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Reset the TTL only if the key still holds our token.
_EXTEND_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


def _millis(ttl: float) -> int:
    return max(1, round(ttl * 1000))


class RedisKeyLock(KeyLock):
    """Per-key leases in Redis, shared by every process using the same Redis and prefix.

    Use as ``async with RedisKeyLock(url) as lock``; entering checks that Redis answers.

    Args:
        url: ``redis://host:port/db`` (anything ``redis.asyncio.Redis.from_url`` accepts).
        prefix: prepended to every key; defaults to :data:`LOCK_KEY_PREFIX`.
        connect_timeout: seconds to wait for a connection before raising :class:`LockError`.
        command_timeout: seconds to wait for one command's answer.
        max_connections: size of the connection pool (concurrent commands); further commands
            wait for a free connection.
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        prefix: str = LOCK_KEY_PREFIX,
        connect_timeout: float = 2.0,
        command_timeout: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._max_connections = max_connections
        self._client: aioredis.Redis | None = None
        self._release: Any = None
        self._extend: Any = None

    def _fail(self, action: str, exc: BaseException) -> LockError:
        return LockError(f"Redis lock store at {self.url} failed to {action}: {exc}")

    async def connect(self) -> None:
        """Open the connection pool and check that Redis answers.

        Raises:
            LockError: Redis is unreachable or refuses the connection (the message has the URL).
        """
        if self._client is not None:
            return
        try:
            # A blocking pool: with many handlers at once, a command waits for a free connection
            # (up to command_timeout) instead of failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self._max_connections,
                timeout=self._command_timeout,
                socket_connect_timeout=self._connect_timeout,
                socket_timeout=self._command_timeout,
            )
        except (ValueError, RedisError) as exc:
            raise LockError(f"bad Redis URL {self.url!r}: {exc}") from exc
        client = aioredis.Redis.from_pool(pool)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise LockError(f"cannot reach Redis at {self.url}: {exc}") from exc
        self._client = client
        self._release = client.register_script(_RELEASE_LUA)
        self._extend = client.register_script(_EXTEND_LUA)

    def _require(self) -> aioredis.Redis:
        if self._client is None:
            raise LockError(f"RedisKeyLock({self.url}) is not connected: call connect() first")
        return self._client

    async def acquire(self, key: str, ttl: float = DEFAULT_LOCK_TTL) -> Lease | None:
        ttl = check_ttl(ttl)
        client = self._require()
        token = secrets.token_hex(16)
        try:
            ok = await client.set(self.prefix + key, token, nx=True, px=_millis(ttl))
        except (RedisError, OSError) as exc:
            raise self._fail(f"acquire {key!r}", exc) from exc
        return Lease(key, token, ttl) if ok else None

    async def release(self, lease: Lease) -> bool:
        self._require()
        try:
            deleted = await self._release(keys=[self.prefix + lease.key], args=[lease.token])
        except (RedisError, OSError) as exc:
            raise self._fail(f"release {lease.key!r}", exc) from exc
        return bool(deleted)

    async def extend(self, lease: Lease, ttl: float) -> Lease | None:
        ttl = check_ttl(ttl)
        self._require()
        try:
            done = await self._extend(
                keys=[self.prefix + lease.key], args=[lease.token, _millis(ttl)]
            )
        except (RedisError, OSError) as exc:
            raise self._fail(f"extend {lease.key!r}", exc) from exc
        return Lease(lease.key, lease.token, ttl) if done else None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self
