"""LoopStrategy: a receive loop per consumer with a bounded number of handlers at once.

The machinery under ``shared``, ``shared-lock``, ``failover`` and ``key-shared-serial``: each
consumer's loop receives a message, runs the handler (bounded by ``handler_timeout``, retried in
place up to ``max_attempts``), acks on success and negative-acks after the last failure. With a
concurrency of 1 a consumer handles one message at a time (the serial strategies); with more, it
starts a task per message without any per-key coordination (the Shared strategies).

Imports no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from keylane.brokers.base import Consumer, Message
from keylane.compare.strategies.base import Strategy, StrategyConfig
from keylane.lanes import Handler, HandlerContext
from keylane.lanes.handler import run_attempt

__all__ = ["LoopStrategy"]


class LoopStrategy(Strategy):
    """A strategy made of one receive loop per consumer; subclasses set the concurrency."""

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        # Set here, not in _run, so that stop() after a failed start() finds nothing to halt.
        self._stopping = False
        self._idle: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    def concurrency(self) -> int:
        """Handlers one consumer runs at once."""
        return 1

    async def _run(self, handler: Handler) -> None:
        self._handler = handler
        self._loops = [
            asyncio.create_task(self._consume(consumer), name=f"{consumer.consumer_name}-loop")
            for consumer in self.consumers
        ]

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` has begun (loops take no new message)."""
        return self._stopping

    async def _receive(self, consumer: Consumer) -> Message:
        # While a loop waits here it may be cancelled by stop() without losing work.
        task = asyncio.current_task()
        assert task is not None
        self._idle.add(task)
        try:
            return await consumer.receive()
        finally:
            self._idle.discard(task)

    async def _consume(self, consumer: Consumer) -> None:
        limit = self.concurrency()
        slots = asyncio.Semaphore(limit)
        try:
            while not self._stopping:
                await slots.acquire()
                if self.stopping:
                    slots.release()
                    return
                try:
                    message = await self._receive(consumer)
                except BaseException:
                    slots.release()
                    raise
                if limit == 1:
                    try:
                        await self._process(consumer, message)
                    finally:
                        slots.release()
                else:
                    task = asyncio.create_task(self._process_released(consumer, message, slots))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    async def _process_released(
        self, consumer: Consumer, message: Message, slots: asyncio.Semaphore
    ) -> None:
        try:
            await self._process(consumer, message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            slots.release()

    async def _process(self, consumer: Consumer, message: Message) -> None:
        """Handle one delivery: run the handler, then ack or negative-ack."""
        if await self._handle(consumer, message):
            await consumer.acknowledge(message)
            self.stats.acked += 1
        else:
            await consumer.negative_acknowledge(message)
            self.stats.nacked += 1

    async def _handle(self, consumer: Consumer, message: Message) -> bool:
        """Run the handler with timeout and in-place retries; True once an attempt succeeded."""
        cfg = self.config
        key = message.sticky_key
        for attempt in range(1, cfg.max_attempts + 1):
            context = HandlerContext(
                key=key,
                attempt=message.redelivery_count + attempt,
                consumer_name=consumer.consumer_name,
            )
            if await run_attempt(self._handler, message, context, cfg.handler_timeout) is None:
                return True
            # Timeouts and handler errors alike: retry in place, then give up.
            if attempt == cfg.max_attempts:
                return False
            self.stats.retries += 1
            await asyncio.sleep(cfg.backoff(attempt))
        return False

    async def _halt(self, grace: float) -> None:
        self._stopping = True
        # Loops waiting in receive() hold no message: cancel them at once.
        for task in list(self._idle):
            task.cancel()
        pending = [t for t in (*self._loops, *self._tasks) if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            for task in still:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in self._loops:
            if task.done() and not task.cancelled():
                error = task.exception()
                if error is not None:
                    self._fail(error)
