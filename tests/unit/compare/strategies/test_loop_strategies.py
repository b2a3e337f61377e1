"""shared, failover and key-shared-serial over fake consumers: concurrency, retries, acks, stop."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import InitialPosition, SubscriptionType
from keylane.compare.strategies import (
    FailoverStrategy,
    KeySharedSerialStrategy,
    SharedStrategy,
    StrategyConfig,
)
from keylane.errors import InvalidArgumentError
from tests.unit.compare.strategies.fakes import FakeBroker, make_message
from tests.unit.compare.strategies.probe import Probe, wait_for

pytestmark = pytest.mark.looptime


async def test_subscribes_configured_consumers():
    # Given a failover strategy with 3 consumers and a 0.5 s nack delay
    broker = FakeBroker()
    strategy = FailoverStrategy(StrategyConfig(consumers=3, nack_delay=0.5, receiver_queue_size=7))
    # When it starts
    await strategy.start(broker, "t", "sub", Probe())
    # Then it subscribed 3 named Failover consumers with those settings, from the earliest position
    assert [c["consumer_name"] for c in broker.subscribe_calls] == [
        "failover-0",
        "failover-1",
        "failover-2",
    ]
    assert {c["subscription_type"] for c in broker.subscribe_calls} == {SubscriptionType.FAILOVER}
    assert {c["nack_delay"] for c in broker.subscribe_calls} == {0.5}
    assert {c["receiver_queue_size"] for c in broker.subscribe_calls} == {7}
    assert {c["initial_position"] for c in broker.subscribe_calls} == {InitialPosition.EARLIEST}
    await strategy.stop()
    assert all(c.closed for c in broker.consumers)


@pytest.mark.parametrize("cls", [FailoverStrategy, KeySharedSerialStrategy])
async def test_serial_strategies_run_one_message_at_a_time_in_order(cls):
    # Given a serial strategy with one consumer holding 5 messages of 3 users
    broker = FakeBroker()
    probe = Probe(delay=0.01)
    strategy = cls(StrategyConfig(consumers=1))
    await strategy.start(broker, "t", "sub", probe)
    messages = [make_message(k, s) for k, s in [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2)]]
    broker.consumers[0].push(*messages)
    # When they are processed
    await wait_for(lambda: len(broker.consumers[0].acked) == 5)
    await strategy.stop()
    # Then never two at once, in receive order, each acked once after success
    assert probe.max_total == 1
    assert probe.done == [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2)]
    assert broker.consumers[0].acked == messages
    assert broker.consumers[0].nacked == []
    assert strategy.stats.acked == 5


async def test_shared_runs_a_users_messages_concurrently_up_to_max_in_flight():
    # Given shared with max_in_flight=3 and 10 messages of one user on one consumer
    broker = FakeBroker()
    probe = Probe(delay=0.05)
    strategy = SharedStrategy(StrategyConfig(consumers=1, max_in_flight=3))
    await strategy.start(broker, "t", "sub", probe)
    broker.consumers[0].push(*(make_message("u", seq) for seq in range(1, 11)))
    # When they are processed
    await wait_for(lambda: len(broker.consumers[0].acked) == 10)
    await strategy.stop()
    # Then the user's handlers overlapped (no exclusivity) but never more than 3 at once
    assert probe.max_per_key["u"] == 3
    assert probe.max_total == 3


async def test_failed_attempts_are_retried_in_place_then_acked():
    # Given a handler that fails the first two attempts of every message
    broker = FakeBroker()
    probe = Probe(fail=lambda m, ctx: ctx.attempt < 3)
    strategy = KeySharedSerialStrategy(
        StrategyConfig(consumers=1, max_attempts=3, retry_backoff=0.1)
    )
    await strategy.start(broker, "t", "sub", probe)
    loop = asyncio.get_running_loop()
    start = loop.time()
    broker.consumers[0].push(make_message("u", 1))
    # When it is processed
    await wait_for(lambda: len(broker.consumers[0].acked) == 1)
    elapsed = loop.time() - start
    await strategy.stop()
    # Then attempts 1, 2, 3 ran with 0.1 s and 0.2 s backoffs, then it was acked
    assert [c[2] for c in probe.calls] == [1, 2, 3]
    assert strategy.stats.retries == 2
    assert broker.consumers[0].nacked == []
    assert elapsed == pytest.approx(0.1 + 0.2 + 3 * 0.01, abs=0.01)


async def test_exhausted_message_is_negative_acked_and_redelivered():
    # Given a handler that fails every first delivery (redelivery_count 0)
    broker = FakeBroker()
    probe = Probe(fail=lambda m, ctx: m.redelivery_count == 0)
    strategy = FailoverStrategy(
        StrategyConfig(consumers=1, max_attempts=2, retry_backoff=0, nack_delay=0.5)
    )
    await strategy.start(broker, "t", "sub", probe)
    broker.consumers[0].push(make_message("u", 1))
    # When it is processed
    await wait_for(lambda: len(broker.consumers[0].acked) == 1)
    await strategy.stop()
    # Then two attempts failed, it was nacked once, and the redelivery (attempt 2) succeeded
    assert len(broker.consumers[0].nacked) == 1
    assert [c[2] for c in probe.calls] == [1, 2, 2]
    assert strategy.stats.nacked == 1


async def test_handler_timeout_bounds_a_hanging_attempt():
    # Given a handler whose first attempt hangs and a 2 s handler timeout
    broker = FakeBroker()
    probe = Probe(hang=lambda m, ctx: ctx.key == "u" and ctx.attempt == 1)
    strategy = KeySharedSerialStrategy(
        StrategyConfig(consumers=1, handler_timeout=2.0, retry_backoff=0.1)
    )
    await strategy.start(broker, "t", "sub", probe)
    loop = asyncio.get_running_loop()
    start = loop.time()
    broker.consumers[0].push(make_message("u", 1), make_message("v", 1))
    # When both are processed
    await wait_for(lambda: len(broker.consumers[0].acked) == 2, timeout=60)
    # Then the hung attempt was cut at 2 s and retried; the next message waited behind it
    assert loop.time() - start == pytest.approx(2.0 + 0.1 + 0.02, abs=0.01)
    assert probe.done == [("u", 1), ("v", 1)]
    await strategy.stop()


async def test_stop_leaves_unreceived_messages_and_finishes_running_handlers():
    # Given a serial strategy in the middle of a 1 s handler with two more messages queued
    broker = FakeBroker()
    probe = Probe(delay=1.0)
    strategy = KeySharedSerialStrategy(StrategyConfig(consumers=1))
    await strategy.start(broker, "t", "sub", probe)
    broker.consumers[0].push(make_message("u", 1), make_message("u", 2), make_message("u", 3))
    await wait_for(lambda: probe.total_running == 1)
    # When it is stopped with enough grace
    await strategy.stop(grace=5.0)
    # Then the running message finished and was acked; the rest stayed unacked
    assert [m.properties["seq"] for m in broker.consumers[0].acked] == ["1"]
    assert broker.consumers[0].queue.qsize() == 2
    assert all(c.closed for c in broker.consumers)
    assert strategy.error is None


async def test_stop_cancels_handlers_that_outlive_the_grace():
    broker = FakeBroker()
    probe = Probe(hang=lambda m, ctx: True)
    strategy = SharedStrategy(StrategyConfig(consumers=1, handler_timeout=None))
    await strategy.start(broker, "t", "sub", probe)
    broker.consumers[0].push(make_message("u", 1))
    await wait_for(lambda: probe.total_running == 1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await strategy.stop(grace=1.0)
    assert loop.time() - start == pytest.approx(1.0, abs=0.01)
    assert probe.total_running == 0
    assert broker.consumers[0].acked == []


async def test_start_twice_is_rejected_and_stop_is_idempotent():
    broker = FakeBroker()
    strategy = SharedStrategy(StrategyConfig(consumers=1))
    await strategy.start(broker, "t", "sub", Probe())
    with pytest.raises(InvalidArgumentError, match="only be started once"):
        await strategy.start(broker, "t", "sub", Probe())
    await strategy.stop()
    await strategy.stop()


async def test_failed_start_closes_what_it_subscribed_and_stop_is_a_no_op():
    # Given a broker that refuses the second subscription
    class RefusingBroker(FakeBroker):
        async def subscribe(self, *args, **kwargs):
            if self.consumers:
                raise RuntimeError("refused")
            return await super().subscribe(*args, **kwargs)

    broker = RefusingBroker()
    strategy = SharedStrategy(StrategyConfig(consumers=2))
    # When start fails
    with pytest.raises(RuntimeError, match="refused"):
        await strategy.start(broker, "t", "sub", Probe())
    # Then the first consumer was closed and a later stop() has nothing to do
    assert all(c.closed for c in broker.consumers)
    await strategy.stop()
    assert strategy.error is None
