"""The Pulsar producer's plumbing without a broker: the send window, receipts delivered in bursts
(one loop wake-up for many receipts, from the client's threads), and the coalescing flusher."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import pytest

from keylane.brokers.base import MessageId
from keylane.brokers.pulsar._sending import Flusher, Receipts, SendWindow


async def test_send_window_hands_slots_to_waiters_in_order() -> None:
    window = SendWindow(2)
    assert window.try_acquire()
    assert window.try_acquire()
    assert not window.try_acquire()
    order: list[int] = []

    async def take(n: int) -> None:
        await window.acquire()
        order.append(n)

    waiters = [asyncio.ensure_future(take(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert window.used == 2
    # One release of two slots wakes the two oldest waiters; the third still waits
    window.release(2)
    await asyncio.sleep(0)
    assert order == [0, 1]
    assert not waiters[2].done()
    window.release()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    # Handed-over slots stay taken until released
    assert window.used == 2
    window.release(2)
    assert window.used == 0


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    window = SendWindow(1)
    await window.acquire()
    waiter = asyncio.ensure_future(window.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    window.release()
    assert window.used == 0
    assert window.try_acquire()


async def test_receipts_from_a_client_thread_arrive_in_one_burst() -> None:
    # Given receipts whose deliveries are recorded
    loop = asyncio.get_running_loop()
    bursts: list[list[object]] = []

    def deliver(queue: deque[tuple[asyncio.Future[MessageId], object, object]]) -> None:
        burst = []
        while queue:
            future, result, message_id = queue.popleft()
            future.set_result(message_id)  # type: ignore[arg-type]
            burst.append(result)
        bursts.append(burst)

    receipts = Receipts(loop, deliver)
    futures: list[asyncio.Future[MessageId]] = [loop.create_future() for _ in range(100)]
    callbacks = [receipts.callback(f) for f in futures]

    # When a client thread completes all 100 sends at once
    def client() -> None:
        for n, callback in enumerate(callbacks):
            callback("ok", MessageId(-1, 1, n))

    thread = threading.Thread(target=client)
    thread.start()
    thread.join()
    ids = await asyncio.gather(*futures)
    # Then every future has its id, delivered in one burst (one loop wake-up)
    assert [i.entry_id for i in ids] == list(range(100))
    assert len(bursts) == 1
    assert bursts[0] == ["ok"] * 100


async def test_a_receipt_after_a_drain_schedules_the_next() -> None:
    loop = asyncio.get_running_loop()
    drained: list[int] = []
    receipts = Receipts(loop, lambda q: drained.append(len(q)) or q.clear())  # type: ignore[func-returns-value]
    first = receipts.callback(loop.create_future())
    second = receipts.callback(loop.create_future())
    await asyncio.to_thread(first, "ok", None)
    await asyncio.sleep(0)
    await asyncio.to_thread(second, "ok", None)
    await asyncio.sleep(0)
    assert drained == [1, 1]


async def test_flusher_runs_one_flush_at_a_time_and_coalesces_requests() -> None:
    loop = asyncio.get_running_loop()
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def flush() -> None:
        calls.append(len(calls))
        started.set()
        release.wait(5)

    with ThreadPoolExecutor(max_workers=4) as executor:
        flusher = Flusher(flush, loop, executor)
        flusher.request()
        await asyncio.to_thread(started.wait, 5)
        # Three requests while the first flush runs become one more flush after it
        for _ in range(3):
            flusher.request()
        release.set()
        for _ in range(200):
            if len(calls) == 2 and not flusher._running:
                break
            await asyncio.sleep(0.01)
    assert calls == [0, 1]
