"""The simulated decision handler and its state store: lost updates, latency, the stuck user."""

from __future__ import annotations

import asyncio

import pytest

from keylane.compare.handler import DecisionHandler, HandlerConfig
from keylane.errors import InvalidArgumentError
from keylane.lanes import HandlerContext
from keylane.state import MemoryStateStore
from tests.unit.compare.strategies.fakes import make_message

pytestmark = pytest.mark.looptime


def ctx(key: str, attempt: int = 1) -> HandlerContext:
    return HandlerContext(key=key, attempt=attempt, consumer_name="c")


async def test_serial_calls_count_every_event():
    store = await MemoryStateStore().__aenter__()
    done: list[object] = []
    handler = DecisionHandler(store, HandlerConfig(latency_sigma=0), on_success=done.append)
    for seq in (1, 2, 3):
        await handler(make_message("u", seq), ctx("u"))
    assert await handler.counters() == {"u": 3}
    assert len(done) == 3


async def test_concurrent_calls_for_one_user_lose_updates():
    # Two handlers of one user at once: both read 0, both write 1.
    store = await MemoryStateStore().__aenter__()
    handler = DecisionHandler(store, HandlerConfig(latency_sigma=0))
    await asyncio.gather(
        handler(make_message("u", 1), ctx("u")), handler(make_message("u", 2), ctx("u"))
    )
    assert await handler.counters() == {"u": 1}


async def test_latency_is_lognormal_around_the_median():
    handler = DecisionHandler(MemoryStateStore(), HandlerConfig(latency_median=0.005, seed=3))
    draws = sorted(handler.latency() for _ in range(4001))
    assert draws[2000] == pytest.approx(0.005, rel=0.05)
    assert draws[0] > 0
    fixed = DecisionHandler(MemoryStateStore(), HandlerConfig(latency_sigma=0))
    assert fixed.latency() == 0.005


async def test_stuck_user_hangs_once():
    store = await MemoryStateStore().__aenter__()
    handler = DecisionHandler(store, HandlerConfig(latency_sigma=0, stuck_user="s", stuck_for=30.0))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await handler(make_message("other", 1), ctx("other"))
    assert loop.time() - start == pytest.approx(0.005)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.0):
            await handler(make_message("s", 1), ctx("s"))
    assert handler.stuck_fired
    # The retry is normal, and the cancelled attempt wrote nothing
    start = loop.time()
    await handler(make_message("s", 1), ctx("s", attempt=2))
    assert loop.time() - start == pytest.approx(0.005)
    assert await handler.counters() == {"other": 1, "s": 1}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latency_median": 0}, "latency_median"),
        ({"latency_sigma": -1}, "latency_sigma"),
        ({"stuck_for": 0}, "stuck_for"),
        ({"latency_median": float("nan")}, "latency_median"),
    ],
)
async def test_bad_handler_config(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        HandlerConfig(**kwargs)
