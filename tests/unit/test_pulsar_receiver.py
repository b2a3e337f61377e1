"""``Receiver``: the client's callback receive as ``await receive(timeout)`` and
``receive_many``, losing nothing, waking the loop once per burst.

A fake client consumer behaves as the C++ client does: a message already in its queue is handed
to the callback at once, before ``receive_async`` returns; otherwise it keeps the callback, and
the test completes it later from a separate thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import _pulsar
import pytest

from keylane.brokers.pulsar._receiver import Receiver
from keylane.brokers.pulsar.consumer import to_message
from keylane.errors import AlreadyClosedError, BrokerError

OK = "ok"
FAILED = "failed"


class FakeClient:
    """``receive_async`` that serves its queue at once and parks callbacks when it is empty."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[object, str], None]] = []
        self.queue: list[str] = []
        self.requested = 0

    def receive_async(self, callback: Callable[[object, str], None]) -> None:
        self.requested += 1
        if self.queue:
            callback(OK, self.queue.pop(0))
        else:
            self.callbacks.append(callback)

    async def fire(self, message: str, result: str = OK) -> None:
        callback = self.callbacks.pop(0)
        thread = threading.Thread(target=callback, args=(result, message))
        thread.start()
        thread.join()
        for _ in range(3):  # let call_soon_threadsafe's delivery run
            await asyncio.sleep(0)


def receiver(client: FakeClient) -> Receiver[str]:
    return Receiver(
        client.receive_async,
        ok=OK,
        error=lambda result: BrokerError(f"receive failed: {result}"),
        loop=asyncio.get_running_loop(),
    )


async def test_message_reaches_the_waiting_receiver() -> None:
    client = FakeClient()
    rx = receiver(client)
    task = asyncio.ensure_future(rx.receive(None))
    await asyncio.sleep(0)
    assert client.requested == 1
    await client.fire("m1")
    assert await task == "m1"


async def test_timed_out_receive_keeps_the_late_message_for_the_next_call() -> None:
    client = FakeClient()
    rx = receiver(client)
    with pytest.raises(TimeoutError):
        await rx.receive(0.01)
    # The client receive stays outstanding; a new call does not ask for another one
    task = asyncio.ensure_future(rx.receive(None))
    await asyncio.sleep(0)
    assert client.requested == 1
    await client.fire("m1")
    assert await task == "m1"
    # A message that arrives while nobody waits is kept, then returned first
    with pytest.raises(TimeoutError):
        await rx.receive(0.01)
    await client.fire("m2")
    assert rx.buffered == 1
    assert await rx.receive(0) == "m2"
    assert client.requested == 2


async def test_cancelled_receive_loses_nothing() -> None:
    client = FakeClient()
    rx = receiver(client)
    task = asyncio.ensure_future(rx.receive(None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.fire("m1")
    assert await rx.receive(1.0) == "m1"


async def test_concurrent_receivers_get_distinct_messages_in_order() -> None:
    client = FakeClient()
    rx = receiver(client)
    tasks = [asyncio.ensure_future(rx.receive(None)) for _ in range(3)]
    await asyncio.sleep(0)
    # One client receive is outstanding at a time, whoever waits
    assert client.requested == 1
    for m in ("m1", "m2", "m3"):
        await client.fire(m)
    assert [await t for t in tasks] == ["m1", "m2", "m3"]


async def test_waiting_messages_are_taken_without_a_wake_up() -> None:
    # Given 5 messages already in the client's queue
    client = FakeClient()
    client.queue = [f"m{i}" for i in range(5)]
    rx = receiver(client)
    # When receive_many asks for up to 3, then up to 10
    first = await rx.receive_many(3, None)
    rest = await rx.receive_many(10, None)
    # Then it got them in order, pulled synchronously: no wake-up by a client thread
    assert (first, rest) == (["m0", "m1", "m2"], ["m3", "m4"])
    assert rx.wakeups == 0
    # and asked the client only as far as needed: 5 messages and one receive left waiting
    assert client.requested == 6
    assert len(client.callbacks) == 1


async def test_one_wake_up_hands_over_the_whole_burst() -> None:
    # Given a receiver waiting on an empty client
    client = FakeClient()
    rx = receiver(client)
    task = asyncio.ensure_future(rx.receive_many(100, None))
    await asyncio.sleep(0)
    # When one message arrives on a client thread while 49 more pile up in the client
    client.queue = [f"m{i}" for i in range(1, 50)]
    await client.fire("m0")
    # Then the one wake-up returns all 50, in order
    assert await task == [f"m{i}" for i in range(50)]
    assert rx.wakeups == 1


async def test_receive_many_takes_at_most_its_maximum_and_serves_the_next_waiter() -> None:
    client = FakeClient()
    rx = receiver(client)
    a = asyncio.ensure_future(rx.receive_many(2, None))
    b = asyncio.ensure_future(rx.receive_many(2, None))
    await asyncio.sleep(0)
    client.queue = ["m1", "m2", "m3"]
    await client.fire("m0")
    assert await a == ["m0", "m1"]
    assert await b == ["m2", "m3"]


async def test_receive_many_times_out_when_nothing_arrives() -> None:
    client = FakeClient()
    rx = receiver(client)
    with pytest.raises(TimeoutError):
        await rx.receive_many(10, 0.01)
    await client.fire("late")
    assert await rx.receive_many(10, 0) == ["late"]


async def test_failed_client_receive_raises_the_mapped_error() -> None:
    client = FakeClient()
    rx = receiver(client)
    task = asyncio.ensure_future(rx.receive(None))
    await asyncio.sleep(0)
    await client.fire("", result=FAILED)
    with pytest.raises(BrokerError, match="receive failed: failed"):
        await task


async def test_close_fails_waiters_and_later_calls_and_drops_late_messages() -> None:
    client = FakeClient()
    rx = receiver(client)
    waiting = asyncio.ensure_future(rx.receive(None))
    await asyncio.sleep(0)
    rx.close(lambda: AlreadyClosedError("closed"))
    with pytest.raises(AlreadyClosedError):
        await waiting
    with pytest.raises(AlreadyClosedError):
        await rx.receive(1.0)
    await client.fire("late")  # the client's pending receive completes after close
    assert rx.buffered == 0


def test_callback_after_the_loop_closed_is_ignored() -> None:
    client = FakeClient()
    loop = asyncio.new_event_loop()
    try:
        rx: Receiver[str] = Receiver(
            client.receive_async, ok=OK, error=lambda r: BrokerError(str(r)), loop=loop
        )
        with pytest.raises(TimeoutError):
            loop.run_until_complete(rx.receive(0.001))
    finally:
        loop.close()
    client.callbacks.pop()(OK, "late")  # must not raise on the client's thread


def test_to_message_maps_every_field() -> None:
    builder = _pulsar.MessageBuilder()
    builder.content(b"payload")
    builder.partition_key("user-1")
    builder.property("a", "b")
    builder.event_timestamp(1_500)
    message = to_message(builder.build())
    assert message.data == b"payload"
    assert message.key == "user-1"
    assert message.ordering_key is None
    assert dict(message.properties) == {"a": "b"}
    assert message.event_time == 1.5
    assert message.redelivery_count == 0
    assert message.sticky_key == "user-1"
    assert isinstance(message.handle, _pulsar.Message)


def test_to_message_without_keys_or_event_time() -> None:
    builder = _pulsar.MessageBuilder()
    builder.content(b"")
    builder.ordering_key("o")
    message = to_message(builder.build())
    assert message.key is None
    assert message.ordering_key == "o"
    assert message.event_time is None
    with pytest.raises(TypeError):
        message.properties["x"] = "y"  # type: ignore[index]
