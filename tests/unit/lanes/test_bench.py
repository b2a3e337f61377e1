"""Throughput of lanes on the in-memory fake consumer (prints numbers; asserts only correctness).

Run: ``.venv/bin/python -m pytest -m bench -s tests/unit/lanes/test_bench.py``
"""

from __future__ import annotations

import asyncio
import time

import pytest

from keylane.brokers.base import Message
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes
from tests.unit.lanes.fakes import FakeConsumer, make_message

N = 50_000


async def noop(message: Message, context: HandlerContext) -> None:
    return None


async def yielding(message: Message, context: HandlerContext) -> None:
    await asyncio.sleep(0)


def hot_key_mix(n: int, keys: int) -> list[Message]:
    """Every 10th message belongs to one hot key; the rest spread over ``keys`` keys."""
    return [make_message("hot" if i % 10 == 0 else f"k{i % keys}", i, entry=i) for i in range(n)]


@pytest.mark.bench
@pytest.mark.parametrize(
    ("label", "handler", "timeout", "keys"),
    [
        ("noop handler, timeout on, 1000 keys", noop, 30.0, 1000),
        ("noop handler, no timeout, 1000 keys", noop, None, 1000),
        ("handler awaits sleep(0), timeout on, 1000 keys", yielding, 30.0, 1000),
        ("noop handler, timeout on, 10 keys", noop, 30.0, 10),
        ("noop handler, timeout on, 10% hot key + 1000 keys", noop, 30.0, -1000),
    ],
)
async def test_lanes_throughput_on_the_fake_consumer(label, handler, timeout, keys) -> None:
    if keys < 0:
        messages = hot_key_mix(N, -keys)
    else:
        messages = [make_message(f"k{i % keys}", i, entry=i) for i in range(N)]
    consumer = FakeConsumer(messages)
    config = LaneConfig(handler_timeout=timeout, on_exhausted=ExhaustedPolicy.PARK)
    lanes = Lanes(consumer, handler, config)
    started = time.perf_counter()
    await lanes.start()
    while len(consumer.acked) < N:
        await lanes.wait_idle()
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    await lanes.stop()
    print(f"\n[lanes bench] {label}: {N} messages in {elapsed:.2f} s = {N / elapsed:,.0f} msg/s")
    assert lanes.stats().acked == N
