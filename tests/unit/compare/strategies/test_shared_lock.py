"""shared-lock over fake consumers and MemoryKeyLock: exclusivity, nack or wait on contention."""

from __future__ import annotations

import asyncio

import pytest

from keylane.compare.strategies import ContentionPolicy, SharedLockStrategy, StrategyConfig
from keylane.locks import MemoryKeyLock
from tests.unit.compare.strategies.fakes import FakeBroker, make_message
from tests.unit.compare.strategies.probe import Probe, wait_for

pytestmark = pytest.mark.looptime


async def test_one_users_messages_never_overlap_and_contention_is_nacked():
    # Given shared-lock with 2 consumers and a user's 6 messages spread over both
    broker = FakeBroker()
    lock = MemoryKeyLock()
    probe = Probe(delay=0.05)
    strategy = SharedLockStrategy(StrategyConfig(consumers=2, nack_delay=0.2), lock=lock)
    await strategy.start(broker, "t", "sub", probe)
    first, second = broker.consumers
    first.push(*(make_message("u", s) for s in (1, 3, 5)))
    second.push(*(make_message("u", s) for s in (2, 4, 6)))
    # When all are processed
    await wait_for(lambda: len(first.acked) + len(second.acked) == 6, timeout=60)
    await strategy.stop()
    # Then the user's handlers never overlapped, contended messages were nacked and came back,
    # and every lease was released in time
    assert probe.max_per_key["u"] == 1
    assert sorted(seq for _, seq in probe.done) == [1, 2, 3, 4, 5, 6]
    assert strategy.stats.lock_contended > 0
    assert strategy.stats.nacked == len(first.nacked) + len(second.nacked) > 0
    assert strategy.stats.leases_expired == 0
    assert not lock.held("u")


async def test_different_users_run_concurrently():
    broker = FakeBroker()
    probe = Probe(delay=0.05)
    strategy = SharedLockStrategy(StrategyConfig(consumers=1), lock=MemoryKeyLock())
    await strategy.start(broker, "t", "sub", probe)
    broker.consumers[0].push(*(make_message(f"u{i}", 1) for i in range(5)))
    await wait_for(lambda: len(broker.consumers[0].acked) == 5)
    await strategy.stop()
    assert probe.max_total == 5
    assert strategy.stats.lock_contended == 0


async def test_held_lock_nacks_without_running_the_handler():
    # Given the user's lock is held by someone else
    broker = FakeBroker()
    lock = MemoryKeyLock()
    other = await lock.acquire("u", 30.0)
    assert other is not None
    probe = Probe()
    strategy = SharedLockStrategy(StrategyConfig(consumers=1, nack_delay=10.0), lock=lock)
    await strategy.start(broker, "t", "sub", probe)
    # When a message of the user arrives
    broker.consumers[0].push(make_message("u", 1))
    await wait_for(lambda: len(broker.consumers[0].nacked) == 1)
    await strategy.stop()
    # Then it is nacked, the handler never ran and the other holder's lease is untouched
    assert probe.calls == []
    assert strategy.stats.lock_contended == 1
    assert lock.held("u")


async def test_wait_policy_polls_until_the_lock_is_free():
    # Given the user's lock is held for another 0.3 s and the WAIT policy
    broker = FakeBroker()
    lock = MemoryKeyLock()
    other = await lock.acquire("u", 30.0)
    assert other is not None
    asyncio.get_running_loop().call_later(0.3, asyncio.ensure_future, lock.release(other))
    probe = Probe()
    config = StrategyConfig(consumers=1, contention=ContentionPolicy.WAIT, lock_wait=5.0)
    strategy = SharedLockStrategy(config, lock=lock)
    await strategy.start(broker, "t", "sub", probe)
    # When a message of the user arrives
    broker.consumers[0].push(make_message("u", 1))
    await wait_for(lambda: len(broker.consumers[0].acked) == 1)
    await strategy.stop()
    # Then it waited for the lock instead of being nacked
    assert broker.consumers[0].nacked == []
    assert probe.done == [("u", 1)]


async def test_wait_policy_gives_up_after_lock_wait_and_nacks():
    broker = FakeBroker()
    lock = MemoryKeyLock()
    assert await lock.acquire("u", 30.0) is not None
    config = StrategyConfig(
        consumers=1, contention=ContentionPolicy.WAIT, lock_wait=0.5, nack_delay=60.0
    )
    strategy = SharedLockStrategy(config, lock=lock)
    await strategy.start(broker, "t", "sub", Probe())
    loop = asyncio.get_running_loop()
    start = loop.time()
    broker.consumers[0].push(make_message("u", 1))
    await wait_for(lambda: len(broker.consumers[0].nacked) == 1)
    assert loop.time() - start == pytest.approx(0.5, abs=0.02)
    await strategy.stop()


async def test_lock_is_released_when_the_handler_fails():
    broker = FakeBroker()
    lock = MemoryKeyLock()
    strategy = SharedLockStrategy(
        StrategyConfig(consumers=1, max_attempts=1, nack_delay=100.0), lock=lock
    )
    await strategy.start(broker, "t", "sub", Probe(fail=lambda m, ctx: True))
    broker.consumers[0].push(make_message("u", 1))
    await wait_for(lambda: len(broker.consumers[0].nacked) == 1)
    await strategy.stop()
    assert not lock.held("u")
    assert strategy.stats.lock_contended == 0


async def test_handler_outliving_the_ttl_is_reported_as_expired_lease():
    # Given a lock TTL (0.1 s) shorter than the handler (0.3 s): the documented split-brain risk
    broker = FakeBroker()
    lock = MemoryKeyLock()
    probe = Probe(delay=0.3)
    strategy = SharedLockStrategy(StrategyConfig(consumers=2, lock_ttl=0.1), lock=lock)
    await strategy.start(broker, "t", "sub", probe)
    first, second = broker.consumers
    first.push(make_message("u", 1))
    await wait_for(lambda: probe.total_running == 1)
    await asyncio.sleep(0.15)
    # When a second message of the user arrives after the lease expired
    second.push(make_message("u", 2))
    await wait_for(lambda: len(first.acked) + len(second.acked) == 2)
    await strategy.stop()
    # Then both handlers of the user ran at once, and both leases had expired at release
    assert probe.max_per_key["u"] == 2
    assert strategy.stats.leases_expired == 2
