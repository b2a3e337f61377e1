"""RedisKeyLock against a real redis-server (marker ``redis``; fixture ``redis_url``)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from keylane.errors import InvalidArgumentError, LockError
from keylane.locks import LOCK_KEY_PREFIX
from keylane.locks.redis import RedisKeyLock

pytestmark = pytest.mark.redis


@pytest.fixture
async def lock(redis_url):
    # A fresh prefix per test so runs never see each other's keys.
    prefix = f"{LOCK_KEY_PREFIX}test:{secrets.token_hex(4)}:"
    async with RedisKeyLock(redis_url, prefix=prefix) as lock:
        yield lock


async def test_set_nx_px_and_compare_and_delete(lock):
    lease = await lock.acquire("u", 5.0)
    assert lease is not None
    assert await lock.acquire("u", 5.0) is None
    assert await lock.acquire("v", 5.0) is not None
    assert await lock.release(lease) is True
    assert await lock.release(lease) is False  # already released
    again = await lock.acquire("u", 5.0)
    assert again is not None
    assert again.token != lease.token


async def test_key_layout_and_ttl_in_redis(lock, redis_url):
    import redis.asyncio as aioredis

    lease = await lock.acquire("user-1", 2.0)
    assert lease is not None
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.get(lock.prefix + "user-1") == lease.token.encode()
        ttl_ms = await client.pttl(lock.prefix + "user-1")
        assert 1000 < ttl_ms <= 2000
    finally:
        await client.aclose()


async def test_expired_lease_cannot_release_the_next_holder(lock):
    first = await lock.acquire("u", 0.2)
    assert first is not None
    await asyncio.sleep(0.35)
    second = await lock.acquire("u", 5.0)
    assert second is not None
    assert await lock.release(first) is False
    assert await lock.acquire("u", 5.0) is None  # the second holder still has it
    assert await lock.extend(first, 5.0) is None
    extended = await lock.extend(second, 5.0)
    assert extended is not None
    assert await lock.release(second) is True


async def test_concurrent_acquirers_get_one_lease(lock):
    leases = await asyncio.gather(*(lock.acquire("hot", 5.0) for _ in range(50)))
    assert sum(lease is not None for lease in leases) == 1


async def test_acquire_wait_gets_the_lock_after_release(lock):
    held = await lock.acquire("u", 5.0)
    assert held is not None
    asyncio.get_running_loop().call_later(0.1, asyncio.ensure_future, lock.release(held))
    lease = await lock.acquire_wait("u", 5.0, timeout=2.0)
    assert lease is not None


async def test_bad_ttl(lock):
    with pytest.raises(InvalidArgumentError):
        await lock.acquire("u", 0)


async def test_unreachable_redis_is_a_clear_lock_error():
    # Port 1 on loopback: nothing listens there.
    url = "redis://127.0.0.1:1/0"
    with pytest.raises(LockError, match=r"cannot reach Redis at redis://127\.0\.0\.1:1/0"):
        async with RedisKeyLock(url, connect_timeout=1.0):
            pass


async def test_unconnected_lock_says_so():
    with pytest.raises(LockError, match="not connected"):
        await RedisKeyLock("redis://127.0.0.1:1/0").acquire("u")
