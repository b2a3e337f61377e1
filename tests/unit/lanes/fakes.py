"""In-memory fakes of the broker contract for unit-testing lanes without a broker.

:class:`FakeConsumer` hands out queued messages in order, records every ack / nack / redelivery
request, can be told to fail acks, and tracks how many delivered messages are outstanding
(delivered and not acked), which is what the backpressure tests bound.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from keylane.brokers.base import Consumer, Duration, Message, MessageId, Producer
from keylane.errors import AlreadyClosedError, CumulativeAckNotAllowedError
from keylane.lanes import HandlerContext, Lanes

TOPIC = "persistent://public/default/lanes-test"


def make_message(
    key: str | None,
    seq: int,
    *,
    entry: int | None = None,
    data: bytes | None = None,
    ordering_key: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> Message:
    """A message of ``key`` carrying ``seq`` (also as property ``seq``)."""
    props = {"seq": str(seq)}
    if properties:
        props.update(properties)
    return Message(
        data=data if data is not None else f"{key}:{seq}".encode(),
        key=key,
        ordering_key=ordering_key,
        properties=props,
        message_id=MessageId(-1, 1, seq if entry is None else entry),
        topic=TOPIC,
        publish_time=0.0,
    )


class FakeConsumer(Consumer):
    """A Key_Shared-like consumer over an in-memory FIFO.

    Attributes:
        delivered: every message handed out by ``receive``, in order.
        acked: every successfully acked message, in ack order.
        nacked: every negatively acknowledged message (lanes must never nack).
        outstanding: delivered, not acked message ids.
        max_outstanding: the largest ``len(outstanding)`` ever seen right after a delivery.
        redeliver_calls: how often ``redeliver_unacknowledged_messages`` was called.
        fail_ack: a predicate; an ack of a message it accepts raises ``RuntimeError``.
    """

    def __init__(self, messages: list[Message] | None = None, *, name: str = "fake-1") -> None:
        self._queue: deque[Message] = deque(messages or ())
        self._available = asyncio.Event()
        self._name = name
        self._closed = False
        self.delivered: list[Message] = []
        self.acked: list[Message] = []
        self.ack_times: list[float] = []
        self.nacked: list[Message] = []
        self.outstanding: dict[MessageId, Message] = {}
        self.max_outstanding = 0
        self.redeliver_calls = 0
        self.fail_ack: Callable[[Message], bool] | None = None
        self.receive_error: BaseException | None = None

    # -- test helpers

    def put(self, *messages: Message) -> None:
        """Make ``messages`` available to ``receive``, after those already queued."""
        self._queue.extend(messages)
        self._available.set()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def queued(self) -> int:
        """Messages not handed out yet."""
        return len(self._queue)

    # -- the contract

    @property
    def topic(self) -> str:
        return TOPIC

    @property
    def subscription(self) -> str:
        return "sub"

    @property
    def consumer_name(self) -> str:
        return self._name

    async def receive(self, timeout: Duration | None = None) -> Message:
        if self.receive_error is not None:
            error, self.receive_error = self.receive_error, None
            raise error
        while not self._queue:
            if self._closed:
                raise AlreadyClosedError("consumer is closed")
            self._available.clear()
            await self._available.wait()
        if self._closed:
            raise AlreadyClosedError("consumer is closed")
        message = self._queue.popleft()
        self.delivered.append(message)
        self.outstanding[message.message_id] = message
        self.max_outstanding = max(self.max_outstanding, len(self.outstanding))
        return message

    async def acknowledge(self, message: Message | MessageId) -> None:
        assert isinstance(message, Message)
        if self._closed:
            raise AlreadyClosedError("consumer is closed")
        if self.fail_ack is not None and self.fail_ack(message):
            raise RuntimeError(f"ack of {message.message_id} failed (injected)")
        self.outstanding.pop(message.message_id, None)
        self.acked.append(message)
        self.ack_times.append(asyncio.get_running_loop().time())

    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        raise CumulativeAckNotAllowedError("cumulative ack is not allowed on Key_Shared")

    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        assert isinstance(message, Message)
        self.nacked.append(message)

    async def redeliver_unacknowledged_messages(self) -> None:
        """Put every outstanding message back at the front, in delivery order."""
        self.redeliver_calls += 1
        pending = [m for m in self.delivered if m.message_id in self.outstanding]
        self.outstanding.clear()
        for message in reversed(pending):
            self._queue.appendleft(message)
        if pending:
            self._available.set()

    async def close(self) -> None:
        self._closed = True
        self._available.set()

    async def unsubscribe(self) -> None:
        await self.close()


class FakeProducer(Producer):
    """Records what is sent; ``fail`` makes ``send`` raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict[str, object]]] = []
        self.fail: BaseException | None = None
        self._next = 0

    @property
    def topic(self) -> str:
        return TOPIC + "-DLQ"

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        if self.fail is not None:
            raise self.fail
        self.sent.append(
            (
                data,
                {
                    "key": key,
                    "ordering_key": ordering_key,
                    "properties": dict(properties or {}),
                    "event_time": event_time,
                },
            )
        )
        self._next += 1
        return MessageId(-1, 9, self._next)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def seq_of(message: Message) -> int:
    """The ``seq`` property of a message made by :func:`make_message`."""
    return int(message.properties["seq"])


@dataclass(frozen=True)
class Start:
    """One handler attempt as the probe saw it begin."""

    key: str
    seq: int
    attempt: int
    time: float


class Probe:
    """A handler that records what lanes do with it.

    Args:
        duration: seconds an attempt sleeps, by (message, attempt); 0 by default.
        fail: whether an attempt raises ``RuntimeError`` (after sleeping), by (message, attempt).
        gate: if given, every attempt of a key in ``gated`` waits for this event first.
    """

    def __init__(
        self,
        *,
        duration: Callable[[Message, int], float] | None = None,
        fail: Callable[[Message, int], bool] | None = None,
        gate: asyncio.Event | None = None,
        gated: frozenset[str] = frozenset(),
    ) -> None:
        self._duration = duration
        self._fail = fail
        self._gate = gate
        self._gated = gated
        self.running: dict[str, int] = defaultdict(int)
        self.concurrent = 0
        self.max_concurrent = 0
        self.violations: list[tuple[str, int]] = []
        self.starts: list[Start] = []
        self.completions: list[tuple[str, int]] = []
        self.contexts: list[HandlerContext] = []

    async def __call__(self, message: Message, context: HandlerContext) -> object:
        key = context.key
        seq = seq_of(message)
        loop = asyncio.get_running_loop()
        self.running[key] += 1
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        if self.running[key] > 1:
            self.violations.append((key, seq))
        self.starts.append(Start(key, seq, context.attempt, loop.time()))
        self.contexts.append(context)
        try:
            if self._gate is not None and key in self._gated:
                await self._gate.wait()
            delay = self._duration(message, context.attempt) if self._duration else 0.0
            if delay:
                await asyncio.sleep(delay)
            if self._fail is not None and self._fail(message, context.attempt):
                raise RuntimeError(f"injected failure of {key}:{seq} attempt {context.attempt}")
            self.completions.append((key, seq))
            return "ignored return value"
        finally:
            self.running[key] -= 1
            self.concurrent -= 1

    def completed_seqs(self, key: str) -> list[int]:
        """Sequence numbers of ``key`` whose handler succeeded, in completion order."""
        return [seq for k, seq in self.completions if k == key]


async def run_until(lanes: Lanes, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until lanes are idle and ``condition()`` holds (``timeout`` in loop seconds)."""
    async with asyncio.timeout(timeout):
        while True:
            await lanes.wait_idle()
            if condition():
                return
            await asyncio.sleep(0.01)


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition()`` every 10 ms (loop time) until it holds."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)
