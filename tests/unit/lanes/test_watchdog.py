"""run_attempt under an AttemptWatchdog: the same outcomes as ``asyncio.timeout``, one timer."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import Message
from keylane.lanes import HandlerContext, HandlerTimeoutError
from keylane.lanes.handler import Handler, run_attempt
from keylane.lanes.watchdog import AttemptWatchdog
from tests.unit.lanes.fakes import make_message

CONTEXT = HandlerContext("k", 1, "c")


async def _attempt(handler: Handler, watchdog: AttemptWatchdog) -> BaseException | None:
    return await run_attempt(handler, make_message("k", 0), CONTEXT, 5.0, watchdog=watchdog)


async def hang(message: Message, context: HandlerContext) -> None:
    await asyncio.sleep(3600)


@pytest.mark.looptime
async def test_each_overlapping_attempt_times_out_at_its_own_deadline() -> None:
    # Given a watchdog of 5 s and hanging attempts started at t=0, t=1 and t=3
    loop = asyncio.get_running_loop()
    watchdog = AttemptWatchdog(loop, 5.0)
    ended: dict[str, float] = {}

    async def started_at(name: str, delay: float) -> BaseException | None:
        await asyncio.sleep(delay)
        error = await _attempt(hang, watchdog)
        ended[name] = loop.time()
        return error

    start = loop.time()
    results = await asyncio.gather(started_at("a", 0.0), started_at("b", 1.0), started_at("c", 3.0))
    # Then each timed out exactly 5 s after it started, as a HandlerTimeoutError
    assert {name: t - start for name, t in ended.items()} == {"a": 5.0, "b": 6.0, "c": 8.0}
    assert all(isinstance(error, HandlerTimeoutError) for error in results)
    assert "within 5 s" in str(results[0])


@pytest.mark.looptime
async def test_a_stale_timer_re_arms_for_a_later_attempt() -> None:
    # Given an attempt at t=0 that finishes at once (its deadline t=5 stays armed)
    loop = asyncio.get_running_loop()
    watchdog = AttemptWatchdog(loop, 5.0)
    start = loop.time()

    async def quick(message: Message, context: HandlerContext) -> None:
        return None

    assert await _attempt(quick, watchdog) is None
    # When a hanging attempt starts at t=3
    await asyncio.sleep(3.0)
    error = await _attempt(hang, watchdog)
    # Then it is cancelled at t=8, not at the stale t=5
    assert loop.time() - start == 8.0
    assert isinstance(error, HandlerTimeoutError)


@pytest.mark.looptime
async def test_a_handler_that_swallows_the_expiry_and_returns_succeeds() -> None:
    # Given a handler that catches the cancellation and returns normally (as with asyncio.timeout)
    watchdog = AttemptWatchdog(asyncio.get_running_loop(), 5.0)

    async def stubborn(message: Message, context: HandlerContext) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return

    error = await _attempt(stubborn, watchdog)
    # Then the attempt succeeded and the expiry was taken back from the task
    assert error is None
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


@pytest.mark.looptime
async def test_an_expiry_turned_into_a_timeout_error_is_a_handler_timeout() -> None:
    watchdog = AttemptWatchdog(asyncio.get_running_loop(), 5.0)

    async def converts(message: Message, context: HandlerContext) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TimeoutError("the handler's own words") from None

    error = await _attempt(converts, watchdog)
    assert isinstance(error, HandlerTimeoutError)


async def test_a_timeout_error_the_handler_raises_itself_is_passed_on() -> None:
    watchdog = AttemptWatchdog(asyncio.get_running_loop(), 5.0)

    async def raises(message: Message, context: HandlerContext) -> None:
        raise TimeoutError("upstream timed out")

    error = await _attempt(raises, watchdog)
    assert type(error) is TimeoutError
    assert str(error) == "upstream timed out"


@pytest.mark.looptime
async def test_a_cancellation_from_outside_is_not_taken_for_a_timeout() -> None:
    # Given a hanging attempt whose task is cancelled from outside at t=1
    watchdog = AttemptWatchdog(asyncio.get_running_loop(), 5.0)
    task = asyncio.create_task(_attempt(hang, watchdog))
    await asyncio.sleep(1.0)
    task.cancel()
    # Then the cancellation propagates (no cancel_requested given) and the watchdog lets go
    with pytest.raises(asyncio.CancelledError):
        await task
    watchdog.close()
    assert watchdog._handle is None
