"""key-shared-lanes over fake consumers: real Lanes, per-user serial, cross-user concurrent."""

from __future__ import annotations

import pytest

from keylane.brokers.base import SubscriptionType
from keylane.compare.strategies import KeySharedLanesStrategy, StrategyConfig
from tests.unit.compare.strategies.fakes import FakeBroker, make_message
from tests.unit.compare.strategies.probe import Probe, wait_for

pytestmark = pytest.mark.looptime


async def test_users_serial_and_in_order_different_users_concurrent():
    # Given lanes on one Key_Shared consumer holding 3 users x 4 messages, interleaved
    broker = FakeBroker()
    probe = Probe(delay=0.05)
    strategy = KeySharedLanesStrategy(StrategyConfig(consumers=1, max_in_flight=16))
    await strategy.start(broker, "t", "sub", probe)
    assert broker.subscribe_calls[0]["subscription_type"] is SubscriptionType.KEY_SHARED
    consumer = broker.consumers[0]
    consumer.push(*(make_message(user, seq) for seq in range(1, 5) for user in "abc"))
    # When they are processed
    await wait_for(lambda: len(consumer.acked) == 12)
    await strategy.stop()
    # Then each user ran one at a time, in seq order, while the three users overlapped
    assert all(probe.max_per_key[user] == 1 for user in "abc")
    assert probe.max_total == 3
    for user in "abc":
        assert [seq for key, seq in probe.done if key == user] == [1, 2, 3, 4]
    assert strategy.stats.acked == 12


async def test_exhausted_message_goes_to_the_dead_letter_topic():
    # Given a handler that always fails one message and max_attempts=2
    broker = FakeBroker()
    probe = Probe(delay=0.01, fail=lambda m, ctx: m.properties["seq"] == "1")
    strategy = KeySharedLanesStrategy(
        StrategyConfig(consumers=1, max_attempts=2, retry_backoff=0.1)
    )
    await strategy.start(broker, "t", "sub", probe)
    consumer = broker.consumers[0]
    consumer.push(make_message("u", 1), make_message("u", 2))
    # When both are processed
    await wait_for(lambda: len(consumer.acked) == 2)
    await strategy.stop()
    # Then seq 1 was dead-lettered to t-sub-DLQ (and acked), and seq 2 went on
    dlq = [p for p in broker.producers if p.topic == "t-sub-DLQ"]
    assert len(dlq) == 1
    assert len(dlq[0].sent) == 1
    assert dlq[0].closed
    assert strategy.stats.extra["dead_lettered"] == 1
    assert probe.done == [("u", 2)]
