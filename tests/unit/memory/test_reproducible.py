"""The embedded broker repeats itself: an injected wall clock and seed give the same run twice."""

from __future__ import annotations

import pytest

from keylane.brokers import connect
from keylane.brokers.base import InitialPosition, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.errors import InvalidArgumentError

pytestmark = pytest.mark.looptime


async def _run(seed: int) -> list[tuple[int, str, float]]:
    ticks = iter(range(1_000_000))
    async with MemoryBroker(wall_clock=lambda: 1_700_000_000.0 + next(ticks), seed=seed) as b:
        await b.create_topic("t", 4)
        consumer = await b.subscribe(
            "t", "s", subscription_type=SubscriptionType.SHARED,
            initial_position=InitialPosition.EARLIEST,
        )  # fmt: skip
        async with await b.create_producer("t", batching=None) as producer:
            for i in range(12):
                await producer.send(str(i).encode())  # keyless: round robin from a seeded start
        seen = []
        for _ in range(12):
            m = await consumer.receive(timeout=5)
            seen.append((m.message_id.partition, m.data.decode(), m.publish_time))
            await consumer.acknowledge(m)
        return seen


async def test_same_seed_and_clock_give_the_same_partitions_and_times() -> None:
    first, second = await _run(7), await _run(7)
    assert first == second
    assert {t for _, _, t in first} >= {1_700_000_000.0}
    # the seed chooses the first partition of a keyless round robin
    starts = {next(p for p, data, _ in await _run(seed) if data == "0") for seed in range(8)}
    assert len(starts) > 1


def test_bad_clock_and_seed_are_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="wall_clock"):
        MemoryBroker(wall_clock=3.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="seed"):
        MemoryBroker(seed="x")  # type: ignore[arg-type]
    assert isinstance(connect("memory://", seed=1), MemoryBroker)
