"""The receive side of lanes: the buffer gate (backpressure) and the loop that feeds the lanes.

Responsible for receiving only while there is room under ``max_buffered_total``, and for
surviving receive errors. It asks with ``consumer.receive_many(room)``, so a backend hands over a
whole burst per wake-up (one message per call from a consumer that only has ``receive()``: the
contract's default). Imports no backend: only the broker contract and :mod:`keylane.errors`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from keylane.brokers.base import Consumer, Message
from keylane.errors import AlreadyClosedError
from keylane.lanes.stats import LaneCounters

__all__ = ["BufferGate", "receive_loop", "resolve_key"]

logger = logging.getLogger("keylane.lanes")

#: The receive loop yields to the workers after this many messages received without suspending.
RECEIVE_BATCH = 64
#: Backoff after a failing ``receive()`` call: first delay and maximum, in seconds.
RECEIVE_RETRY_MIN = 0.05
RECEIVE_RETRY_MAX = 5.0


class BufferGate:
    """Counts buffered messages (received, not finished) against a hard cap."""

    __slots__ = ("_room", "buffered", "cap")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buffered = 0
        self._room = asyncio.Event()

    def take(self) -> None:
        """Count one more buffered message."""
        self.buffered += 1

    def release(self) -> None:
        """One buffered message finished; wake the receive loop if it waits for room."""
        self.buffered -= 1
        if not self._room.is_set() and self.buffered < self.cap:
            self._room.set()

    async def wait_for_room(self) -> None:
        """Return once fewer than ``cap`` messages are buffered."""
        while self.buffered >= self.cap:
            self._room.clear()
            await self._room.wait()


async def receive_loop(
    consumer: Consumer,
    gate: BufferGate,
    admit: Callable[[Message], None],
    counters: LaneCounters,
) -> None:
    """Receive messages while the gate has room and hand each to ``admit``; runs until cancelled.

    Each call asks for at most the room left under the gate's cap, so the cap is never passed.

    Returns when the consumer reports it is closed (``AlreadyClosedError``). Any other receive
    error is logged, counted and retried with a doubling delay.
    """
    since_yield = 0
    delay = RECEIVE_RETRY_MIN
    while True:
        if gate.buffered >= gate.cap:
            await gate.wait_for_room()
        try:
            messages = await consumer.receive_many(gate.cap - gate.buffered)
        except AlreadyClosedError:
            logger.warning("consumer %s is closed; lanes stop receiving", consumer.consumer_name)
            return
        except Exception:
            counters.receive_errors += 1
            logger.warning("receive() failed; retrying in %gs", delay, exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECEIVE_RETRY_MAX)
            continue
        delay = RECEIVE_RETRY_MIN
        for message in messages:
            admit(message)
        since_yield += len(messages)
        if since_yield >= RECEIVE_BATCH:
            since_yield = 0
            await asyncio.sleep(0)


def resolve_key(key_of: Callable[[Message], str], message: Message) -> str:
    """``key_of(message)``; if it raises or returns a non-str, log and use the sticky key."""
    try:
        key = key_of(message)
        if type(key) is not str:
            raise TypeError(f"key_of returned {type(key).__name__}, not str")
    except Exception:
        logger.exception("key_of failed for %s; using its sticky_key", message.message_id)
        return message.sticky_key
    return key
