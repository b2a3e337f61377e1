"""A handler that records what ran when: concurrency per key and overall, attempts, failures."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from keylane.brokers.base import Message
from keylane.lanes import HandlerContext


class Probe:
    """``async (message, context)`` that sleeps ``delay`` and can fail or hang on demand.

    Args:
        delay: seconds each call takes.
        fail: called with (message, context); returning True makes the call raise.
        hang: called with (message, context); returning True makes the call sleep 3600 s.
    """

    def __init__(
        self,
        delay: float = 0.01,
        *,
        fail: Callable[[Message, HandlerContext], bool] | None = None,
        hang: Callable[[Message, HandlerContext], bool] | None = None,
    ) -> None:
        self.delay = delay
        self.fail = fail
        self.hang = hang
        self.running: dict[str, int] = defaultdict(int)
        self.total_running = 0
        self.max_total = 0
        self.max_per_key: dict[str, int] = defaultdict(int)
        self.calls: list[tuple[str, int, int, str]] = []  # key, seq, attempt, consumer
        self.done: list[tuple[str, int]] = []

    async def __call__(self, message: Message, context: HandlerContext) -> None:
        key = context.key
        self.calls.append(
            (key, int(message.properties["seq"]), context.attempt, context.consumer_name)
        )
        self.running[key] += 1
        self.total_running += 1
        self.max_total = max(self.max_total, self.total_running)
        self.max_per_key[key] = max(self.max_per_key[key], self.running[key])
        try:
            if self.hang is not None and self.hang(message, context):
                await asyncio.sleep(3600)
            await asyncio.sleep(self.delay)
            if self.fail is not None and self.fail(message, context):
                raise RuntimeError(f"planned failure of {key}/{message.properties['seq']}")
            self.done.append((key, int(message.properties["seq"])))
        finally:
            self.running[key] -= 1
            self.total_running -= 1


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the loop clock until it holds (virtual time under looptime)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling state of several objects
            await asyncio.sleep(0.001)
