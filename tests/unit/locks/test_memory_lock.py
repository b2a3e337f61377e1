"""MemoryKeyLock and the KeyLock base helpers (acquire_wait, TTL validation), in virtual time."""

from __future__ import annotations

import asyncio

import pytest

from keylane.errors import InvalidArgumentError
from keylane.locks import LOCK_KEY_PREFIX, MemoryKeyLock

pytestmark = pytest.mark.looptime


async def test_prefix_constant():
    # (async like the rest: looptime on a sync test would leak an event loop)
    assert LOCK_KEY_PREFIX == "keylane:lock:"


async def test_one_holder_at_a_time():
    lock = MemoryKeyLock()
    lease = await lock.acquire("u", 10.0)
    assert lease is not None
    assert lease.key == "u"
    assert await lock.acquire("u", 10.0) is None
    assert await lock.acquire("v", 10.0) is not None  # other keys are independent
    assert lock.contended == 1
    assert await lock.release(lease) is True
    assert await lock.acquire("u", 10.0) is not None


async def test_tokens_differ_and_release_is_compare_and_delete():
    lock = MemoryKeyLock()
    first = await lock.acquire("u", 1.0)
    assert first is not None
    await asyncio.sleep(1.5)  # the lease expires while its holder still "works"
    second = await lock.acquire("u", 10.0)
    assert second is not None
    assert second.token != first.token
    # The late release of the expired lease must not free the new holder's lock
    assert await lock.release(first) is False
    assert lock.held("u")
    assert await lock.release(second) is True
    assert not lock.held("u")


async def test_extend_keeps_the_lease_alive():
    lock = MemoryKeyLock()
    lease = await lock.acquire("u", 1.0)
    assert lease is not None
    await asyncio.sleep(0.8)
    extended = await lock.extend(lease, 1.0)
    assert extended is not None
    assert extended.token == lease.token
    await asyncio.sleep(0.8)  # 1.6 s after acquire, still held thanks to the extension
    assert await lock.acquire("u", 1.0) is None
    await asyncio.sleep(0.3)
    assert await lock.extend(lease, 1.0) is None  # expired: cannot be extended any more


async def test_acquire_wait_polls_with_backoff_until_free():
    lock = MemoryKeyLock()
    held = await lock.acquire("u", 0.25)
    assert held is not None
    loop = asyncio.get_running_loop()
    start = loop.time()
    lease = await lock.acquire_wait("u", 5.0, timeout=2.0, poll_initial=0.01, poll_max=0.08)
    assert lease is not None
    # Polls at 0, .01, .03, .07, .15, .23, .31: the first try after expiry (0.25) wins
    assert loop.time() - start == pytest.approx(0.31, abs=0.001)


async def test_acquire_wait_gives_up_at_timeout():
    lock = MemoryKeyLock()
    assert await lock.acquire("u", 60.0) is not None
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await lock.acquire_wait("u", 5.0, timeout=0.5, poll_initial=0.01, poll_max=0.1) is None
    assert loop.time() - start == pytest.approx(0.5, abs=0.001)


@pytest.mark.parametrize("ttl", [0, -1, 0.0001, float("nan"), "1", True])
async def test_bad_ttl_is_rejected(ttl):
    with pytest.raises(InvalidArgumentError, match="lock ttl"):
        await MemoryKeyLock().acquire("u", ttl)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": -1.0}, "timeout must not be negative"),
        ({"timeout": 1.0, "poll_initial": 0.0}, "poll_initial"),
        ({"timeout": 1.0, "poll_initial": 0.5, "poll_max": 0.1}, "poll_initial <= poll_max"),
    ],
)
async def test_bad_wait_arguments_are_rejected(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        await MemoryKeyLock().acquire_wait("u", 1.0, **kwargs)


async def test_async_context_manager_clears_on_close():
    async with MemoryKeyLock() as lock:
        assert await lock.acquire("u") is not None
    assert not lock.held("u")
