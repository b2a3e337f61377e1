"""Handler behaviours that used to wedge their key until ``stop()`` (issue 7, item 3).

Each behaviour must count as a failed attempt; the key then goes on: retried, then parked or
dead-lettered, and its later messages run. ``wait_idle`` must not report idle while a key is
silently stuck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from keylane.brokers.base import Message
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes
from keylane.lanes.deadletter import MAX_ERROR_TEXT, describe_error
from tests.unit.lanes.fakes import FakeConsumer, eventually, make_message, run_until, seq_of

pytestmark = pytest.mark.looptime


class LibraryBase(BaseException):
    """A library's own BaseException subclass (neither KeyboardInterrupt nor SystemExit)."""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class BadStr(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]


async def _cancel_own_task() -> None:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(0)


async def _raise(error: BaseException) -> None:
    raise error


MISBEHAVIOURS: dict[str, Callable[[], Awaitable[None]]] = {
    "cancels its own task": _cancel_own_task,
    "raises a BaseException subclass": lambda: _raise(LibraryBase("lib")),
    "raises GeneratorExit": lambda: _raise(GeneratorExit()),
    "raises an exception whose __str__ fails": lambda: _raise(Unprintable()),
    "raises an exception whose __str__ is not a str": lambda: _raise(BadStr()),
}


def _handler(
    misbehave: Callable[[], Awaitable[None]], ran: list[tuple[str, int, int]]
) -> Callable[[Message, HandlerContext], Awaitable[None]]:
    async def handler(message: Message, context: HandlerContext) -> None:
        ran.append((context.key, seq_of(message), context.attempt))
        if context.key == "bad" and seq_of(message) == 0:
            await misbehave()

    return handler


@pytest.mark.parametrize("behaviour", list(MISBEHAVIOURS))
async def test_misbehaving_handler_fails_the_attempt_and_the_key_goes_on(behaviour: str) -> None:
    # Given key "bad" whose first message always misbehaves, and a healthy key "good"
    consumer = FakeConsumer(
        [make_message("bad", i, entry=i) for i in range(3)]
        + [make_message("good", i, entry=10 + i) for i in range(3)]
    )
    ran: list[tuple[str, int, int]] = []
    sink_calls: list[tuple[Message, str, int]] = []

    async def sink(message: Message, error: BaseException, attempts: int) -> None:
        sink_calls.append((message, describe_error(error), attempts))

    config = LaneConfig(max_attempts=3, retry_backoff=0.5, handler_timeout=5.0)
    async with Lanes(consumer, _handler(MISBEHAVIOURS[behaviour], ran), config, dead_letter=sink):
        # When lanes run it: every message ends acked
        await eventually(lambda: len(consumer.acked) == 6)
    # Then the bad message was tried max_attempts times, then dead-lettered, and the key went on
    assert [a for k, s, a in ran if k == "bad" and s == 0] == [1, 2, 3]
    assert [seq_of(m) for m, _, _ in sink_calls] == [0]
    assert sink_calls[0][2] == 3
    assert [s for k, s, _ in ran if k == "bad" and s > 0] == [1, 2]
    assert [s for k, s, _ in ran if k == "good"] == [0, 1, 2]


@pytest.mark.parametrize("behaviour", list(MISBEHAVIOURS))
async def test_misbehaving_handler_parks_its_key_visibly(behaviour: str) -> None:
    # Given the same misbehaving first message under PARK
    consumer = FakeConsumer([make_message("bad", i, entry=i) for i in range(2)])
    ran: list[tuple[str, int, int]] = []
    config = LaneConfig(max_attempts=2, retry_backoff=0.1, on_exhausted=ExhaustedPolicy.PARK)
    async with Lanes(consumer, _handler(MISBEHAVIOURS[behaviour], ran), config) as lanes:
        await run_until(lanes, lambda: lanes.stats().parked == 1)
        stats = lanes.stats()
    # Then the key is parked (not silently waiting) with a printable error
    assert set(stats.parked_keys) == {"bad"}
    assert stats.parked_keys["bad"]
    assert stats.waiting_keys == frozenset()
    assert stats.failed == 2


def test_describe_error_never_raises() -> None:
    assert describe_error(Unprintable()) == "Unprintable: <unprintable: RuntimeError>"
    assert describe_error(BadStr()) == "BadStr: <unprintable: TypeError>"
    assert describe_error(GeneratorExit()) == "GeneratorExit"
    assert len(describe_error(ValueError("x" * 10 * MAX_ERROR_TEXT))) == MAX_ERROR_TEXT


async def test_stop_still_cancels_a_hanging_handler() -> None:
    # Given a handler that hangs (lanes' own cancellation at stop must still propagate)
    consumer = FakeConsumer([make_message("k", 0, entry=0)])
    started = asyncio.Event()

    async def hang(message: Message, context: HandlerContext) -> None:
        started.set()
        await asyncio.sleep(3600)

    lanes = Lanes(
        consumer, hang, LaneConfig(handler_timeout=None, on_exhausted=ExhaustedPolicy.PARK)
    )
    await lanes.start()
    await started.wait()
    # When stopping with a short grace
    await lanes.stop(grace=1.0)
    # Then the handler was cancelled and its message left unacked
    stats = lanes.stats()
    assert stats.state == "stopped"
    assert stats.in_flight == 0
    assert consumer.acked == []
    assert stats.abandoned == 1
