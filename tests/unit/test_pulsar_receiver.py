"""``Receiver``: the client's callback receive as ``await receive(timeout)``, losing nothing.

A fake client consumer records the callbacks it was given; the test completes them from a
separate thread, as the C++ client does.
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
    """``receive_async`` that parks callbacks until the test fires them from a thread."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[object, str], None]] = []
        self.requested = 0

    def receive_async(self, callback: Callable[[object, str], None]) -> None:
        self.requested += 1
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
    assert client.requested == 3
    for m in ("m1", "m2", "m3"):
        await client.fire(m)
    assert [await t for t in tasks] == ["m1", "m2", "m3"]


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
