"""The keyed scheduler: :class:`Lanes` runs one handler at a time per key, many keys at once.

Responsible for the lifecycle, per-key FIFO lanes, the ``max_in_flight`` worker pool, retries with
backoff, the exhausted-message policies, individual acks and shutdown (the receive loop and the
buffer gate live in :mod:`keylane.lanes.receiver`, the snapshot in :mod:`keylane.lanes.stats`). The
guarantees are stated in ``docs/lanes.md``. Imports no backend: only the broker contract
(:mod:`keylane.brokers.base`) and :mod:`keylane.errors`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

from keylane.brokers.base import Consumer, Message
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from keylane.lanes.config import ExhaustedPolicy, LaneConfig
from keylane.lanes.deadletter import DeadLetterSink, describe_error, store_dead_letter
from keylane.lanes.handler import (
    Handler,
    HandlerContext,
    HandlerTimeoutError,
    NoRetryError,
    RetryLater,
    run_attempt,
)
from keylane.lanes.lane import Lane, LaneState
from keylane.lanes.receiver import BufferGate, receive_loop, resolve_key
from keylane.lanes.stats import LaneCounters, LaneStats, snapshot
from keylane.lanes.watchdog import AttemptWatchdog

__all__ = ["DropCallback", "Lanes"]

#: ``(message, context, reason)``: told about each buffered message lanes gave up without running
#: it because the consumer closed (it stays unacked, so the broker hands it to the key's new
#: owner). ``context.attempt`` is the attempt that did not start. Must not raise.
DropCallback = Callable[[Message, HandlerContext, str], None]

logger = logging.getLogger("keylane.lanes")

#: How long ``stop`` waits for cancelled workers before it gives up on them.
_CANCEL_WAIT = 1.0


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Lanes:
    """Consume a subscription with one handler at a time per key and many keys concurrently.

    Within this instance: handlers of one key never overlap and run in receive order, a message
    is acked as soon as its handler succeeds, and a failed message is retried (or dead-lettered,
    or parks its key) before any later message of its key runs. Across processes the same holds
    only with a Key_Shared subscription (see ``docs/lanes.md``).

    Args:
        consumer: where messages come from; lanes ack on it and never nack.
        handler: ``async def handler(message, context)``; its return value is ignored.
        config: the knobs; ``LaneConfig()`` by default.
        dead_letter: sink for exhausted messages; required with ``ExhaustedPolicy.DEAD_LETTER``.
        key_of: the key of a message; ``message.sticky_key`` by default (the Key_Shared key).
        on_dropped: told about every message dropped because the consumer closed (for example
            :func:`keylane.check.recorded_drops`, which records it in the history).

    Raises:
        InvalidArgumentError: a bad argument, or DEAD_LETTER without a ``dead_letter`` sink.
    """

    def __init__(
        self,
        consumer: Consumer,
        handler: Handler,
        config: LaneConfig | None = None,
        *,
        dead_letter: DeadLetterSink | None = None,
        key_of: Callable[[Message], str] | None = None,
        on_dropped: DropCallback | None = None,
    ) -> None:
        if not isinstance(consumer, Consumer):
            raise InvalidArgumentError(
                f"consumer must be a keylane Consumer, not {type(consumer).__name__}"
            )
        if not callable(handler):
            raise InvalidArgumentError(f"handler must be an async callable, not {handler!r}")
        config = LaneConfig() if config is None else config
        if not isinstance(config, LaneConfig):
            raise InvalidArgumentError(f"config must be a LaneConfig, not {config!r}")
        if dead_letter is not None and not callable(dead_letter):
            raise InvalidArgumentError(
                f"dead_letter must be an async callable, not {dead_letter!r}"
            )
        if key_of is not None and not callable(key_of):
            raise InvalidArgumentError(f"key_of must be callable, not {key_of!r}")
        if on_dropped is not None and not callable(on_dropped):
            raise InvalidArgumentError(f"on_dropped must be callable, not {on_dropped!r}")
        if config.on_exhausted is ExhaustedPolicy.DEAD_LETTER and dead_letter is None:
            raise InvalidArgumentError(
                "on_exhausted=ExhaustedPolicy.DEAD_LETTER needs a dead_letter sink: pass "
                "dead_letter=producer_dead_letter_sink(producer) (or your own async sink), "
                "or choose LaneConfig(on_exhausted=ExhaustedPolicy.PARK)"
            )
        self._consumer = consumer
        self._consumer_name = consumer.consumer_name
        self._handler = handler
        self._config = config
        self._sink = dead_letter
        self._key_of = key_of
        self._on_dropped = on_dropped
        self._phase = _Phase.NEW
        #: The consumer closed under us: no handler starts any more (see _consumer_gone).
        self._consumer_lost = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Bounds every attempt by ``handler_timeout`` (None without one); made by start().
        self._watchdog: AttemptWatchdog | None = None
        self._lanes: dict[str, Lane] = {}
        self._ready: deque[Lane] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._active = 0  # running workers (one handler slot each)
        self._retry_pending = 0
        self._gate = BufferGate(config.max_buffered_total)
        self._counters = LaneCounters()
        self._receiver: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def config(self) -> LaneConfig:
        """The configuration in use."""
        return self._config

    async def start(self) -> None:
        """Start the receive loop in a background task; handlers run in worker tasks.

        Raises:
            RuntimeError: already started (a stopped instance cannot be restarted).
        """
        if self._phase is not _Phase.NEW:
            raise RuntimeError(f"Lanes already {self._phase.value}; create a new instance")
        self._loop = asyncio.get_running_loop()
        if self._config.handler_timeout is not None:
            self._watchdog = AttemptWatchdog(self._loop, self._config.handler_timeout)
        self._phase = _Phase.RUNNING
        self._receiver = self._loop.create_task(
            receive_loop(self._consumer, self._gate, self._admit, self._counters),
            name=f"keylane-lanes-receive[{self._consumer_name}]",
        )
        self._receiver.add_done_callback(self._receiver_done)

    async def stop(self, grace: float | None = None, *, close_consumer: bool = False) -> None:
        """Stop receiving, let running handlers finish, leave everything else unacked.

        Handlers still running after ``grace`` seconds (``config.shutdown_grace`` if None) are
        cancelled. Messages that did not complete (waiting, parked, retrying, cancelled) are
        neither acked nor nacked; with ``config.redeliver_on_stop`` lanes then call
        ``consumer.redeliver_unacknowledged_messages()`` so the broker hands them out again.
        With ``close_consumer`` the consumer is closed afterwards, in that order: closing it
        first would hand its keys to other consumers while handlers still run here. Idempotent;
        a concurrent call waits for the first one.

        Raises:
            InvalidArgumentError: ``grace`` is negative.
        """
        grace = self._config.shutdown_grace if grace is None else grace
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not grace >= 0:
            raise InvalidArgumentError(f"grace must be a non-negative number, got {grace!r}")
        if self._phase is _Phase.NEW:
            self._phase = _Phase.STOPPED
            self._stopped.set()
        elif self._phase is not _Phase.RUNNING:
            await self._stopped.wait()
        else:
            self._phase = _Phase.STOPPING
            try:
                await self._shut_down(float(grace))
            finally:
                self._phase = _Phase.STOPPED
                self._idle.set()
                self._stopped.set()
        if close_consumer:
            await self._consumer.close()

    async def _shut_down(self, grace: float) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.wait([self._receiver])
        for lane in self._lanes.values():
            if lane.state is LaneState.RETRY and lane.retry_handle is not None:
                lane.retry_handle.cancel()
                lane.retry_handle = None
                lane.state = LaneState.WAITING
        self._retry_pending = 0
        self._ready.clear()
        # A handler may call stop() itself; it must not wait for (or cancel) its own task.
        workers = self._workers - {asyncio.current_task()}
        if workers:
            _, pending = await asyncio.wait(workers, timeout=grace)
            if pending:
                logger.warning(
                    "cancelling %d handler(s) still running after %gs", len(pending), grace
                )
                for task in pending:
                    task.cancel()
                _, stuck = await asyncio.wait(pending, timeout=_CANCEL_WAIT)
                if stuck:
                    logger.error("%d handler(s) ignore cancellation; abandoning them", len(stuck))
        if self._watchdog is not None:
            self._watchdog.close()
        self._counters.abandoned = self._gate.buffered
        unacked = self._gate.buffered + self._counters.ack_failures
        if unacked and self._config.redeliver_on_stop and not self._consumer.closed:
            try:
                await self._consumer.redeliver_unacknowledged_messages()
            except Exception:
                logger.warning("redeliver_unacknowledged_messages failed at stop", exc_info=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no handler runs, no key waits for a slot and no retry is pending.

        Parked keys do not count (they need :meth:`resume`); messages the consumer has not handed
        out yet are invisible here, so tests wait for their expected counts as well.

        Raises:
            TimeoutError: still busy after ``timeout`` seconds.
        """
        if timeout is None:
            await self._idle.wait()
            return
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    def resume(self, key: str) -> None:
        """Un-park ``key``: its stopped message gets a fresh ``max_attempts`` attempts.

        Raises:
            InvalidArgumentError: ``key`` is not parked.
            RuntimeError: the lanes are not running.
        """
        if self._phase is not _Phase.RUNNING:
            raise RuntimeError(f"cannot resume {key!r}: Lanes are {self._phase.value}")
        if self._consumer_lost:
            raise RuntimeError(f"cannot resume {key!r}: the consumer is closed")
        lane = self._lanes.get(key)
        if lane is None or lane.state is not LaneState.PARKED:
            raise InvalidArgumentError(f"key {key!r} is not parked")
        lane.attempt = 0
        lane.last_error = ""
        self._schedule(lane)

    # ------------------------------------------------------------------ receiving

    def _receiver_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            logger.error("lanes receive loop crashed", exc_info=task.exception())
        elif self._phase is _Phase.RUNNING:
            self._consumer_gone("receive() reported the consumer closed")

    def _consumer_gone(self, why: str) -> None:
        """The consumer closed while lanes run: start no new handler, drop what is buffered.

        Its keys may already belong to other consumers, so a handler started now could overlap
        with the key's new owner. Every buffered message that is not running is dropped: left
        unacked, so the broker redelivers it to the new owner, and reported to ``on_dropped``.
        Handlers already running finish (their acks fail); see ``docs/lanes.md``, "When the
        consumer goes away".
        """
        if self._consumer_lost:
            return
        self._consumer_lost = True
        self._ready.clear()
        dropped = 0
        for lane in list(self._lanes.values()):
            if lane.retry_handle is not None:
                lane.retry_handle.cancel()
                lane.retry_handle = None
                self._retry_pending -= 1
            # A running lane keeps its head (the handler is under way); the rest goes.
            dropped += self._drop(lane, keep_head=lane.state is LaneState.RUNNING)
        logger.warning(
            "consumer %s is closed (%s): no new handler starts; %d buffered message(s) dropped "
            "for redelivery to the keys' new owners",
            self._consumer_name,
            why,
            dropped,
        )
        self._check_idle()

    def _drop(self, lane: Lane, *, keep_head: bool) -> int:
        """Drop ``lane``'s messages (all, or all but the head); returns how many."""
        queue = lane.queue
        keep = 1 if keep_head and queue else 0
        count = len(queue) - keep
        callback = self._on_dropped
        for index in range(keep, len(queue)):
            message = queue[index]
            self._gate.release()
            if callback is not None:
                attempt = lane.attempt + 1 if index == 0 else 1
                context = HandlerContext(lane.key, attempt, self._consumer_name)
                try:
                    callback(message, context, "consumer closed")
                except Exception:
                    logger.exception("on_dropped raised for %s", message.message_id)
        self._counters.dropped += count
        if keep:
            while len(queue) > 1:
                queue.pop()
        else:
            queue.clear()
            self._lanes.pop(lane.key, None)
            lane.state = LaneState.WAITING
        return count

    def _admit(self, message: Message) -> None:
        self._counters.received += 1
        key = message.sticky_key if self._key_of is None else resolve_key(self._key_of, message)
        self._gate.take()
        lane = self._lanes.get(key)
        if lane is None:
            lane = Lane(key)
            lane.queue.append(message)
            self._lanes[key] = lane
            self._schedule(lane)
        else:
            lane.queue.append(message)

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, lane: Lane) -> None:
        """Make ``lane``'s head runnable: start a worker for it or queue it for a free slot."""
        if self._phase is not _Phase.RUNNING:
            lane.state = LaneState.WAITING
            return
        if self._consumer_lost:
            self._drop(lane, keep_head=False)
            return
        if self._active < self._config.max_in_flight:
            lane.state = LaneState.RUNNING
            self._active += 1
            self._idle.clear()
            assert self._loop is not None
            task = self._loop.create_task(self._work(lane))
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        else:
            lane.state = LaneState.WAITING
            self._ready.append(lane)

    async def _work(self, lane: Lane) -> None:
        """A worker: process heads of ``lane`` and then of ready lanes until none is left.

        When other keys wait for a slot the worker rotates to them after each message, so a
        busy key cannot monopolise a slot.
        """
        current: Lane | None = lane
        try:
            while current is not None:
                runnable = await self._process(current)
                ready = self._ready
                if self._phase is not _Phase.RUNNING:
                    if current.state is LaneState.RUNNING:
                        current.state = LaneState.WAITING
                    return
                if runnable:
                    if ready:
                        current.state = LaneState.WAITING
                        ready.append(current)
                        current = ready.popleft()
                        current.state = LaneState.RUNNING
                elif ready:
                    current = ready.popleft()
                    current.state = LaneState.RUNNING
                else:
                    current = None
        finally:
            self._active -= 1
            if current is not None and current.state is LaneState.RUNNING:
                current.state = LaneState.WAITING  # cancelled at shutdown (or a bug)
            if self._phase is _Phase.RUNNING and self._ready:
                # Only reached if a worker died unexpectedly: hand its slot on.
                self._schedule(self._ready.popleft())
            self._check_idle()

    def _check_idle(self) -> None:
        if self._active == 0 and self._retry_pending == 0:
            self._idle.set()

    def _lost(self) -> bool:
        # A method, not the attribute, where an await may have changed it since the last check.
        return self._consumer_lost

    def _cancel_requested(self) -> bool:
        # Lanes cancel workers only while stopping; any other cancellation of a worker (a
        # handler cancelling its own task) is a failed attempt, not an order to stop.
        return self._phase is not _Phase.RUNNING

    async def _process(self, lane: Lane) -> bool:
        """One attempt at ``lane``'s head; returns whether the lane can run again right away."""
        if self._consumer_lost or self._consumer.closed:
            # Checked right before every handler start: the broker may already have given this
            # key to another consumer.
            self._drop(lane, keep_head=False)
            self._consumer_gone("the consumer reports closed")
            return False
        message = lane.queue[0]
        assert self._loop is not None
        if lane.attempt == 0:
            lane.first_start = self._loop.time()
        lane.attempt += 1
        config = self._config
        context = HandlerContext(lane.key, lane.attempt, self._consumer_name)
        error = await run_attempt(
            self._handler,
            message,
            context,
            config.handler_timeout,
            cancel_requested=self._cancel_requested,
            watchdog=self._watchdog,
        )
        counters = self._counters
        if error is None:
            counters.completed += 1
            await self._ack(message)
            return self._finish_head(lane)
        if isinstance(error, RetryLater):
            return self._retry_later(lane, error)
        counters.failed += 1
        if isinstance(error, HandlerTimeoutError):
            counters.timed_out += 1
        lane.last_error = describe_error(error)
        if self._phase is not _Phase.RUNNING:
            return False  # shutting down: no retry, the message stays unacked
        if self._lost():
            self._drop(lane, keep_head=False)  # no retry here: the key's new owner has it
            return False
        if lane.attempt < config.max_attempts and not isinstance(error, NoRetryError):
            logger.debug("key %r attempt %d failed: %s", lane.key, lane.attempt, lane.last_error)
            counters.retried += 1
            self._retry_pending += 1
            lane.state = LaneState.RETRY
            lane.retry_handle = self._loop.call_later(
                config.backoff(lane.attempt), self._retry_due, lane
            )
            return False
        if config.on_exhausted is ExhaustedPolicy.PARK:
            self._park(lane, f"failed {lane.attempt} attempt(s)")
            return False
        if not await self._dead_letter(lane, message, error):
            self._park(lane, "dead-letter sink failed")
            return False
        await self._ack(message)
        return self._finish_head(lane)

    def _retry_later(self, lane: Lane, signal: RetryLater) -> bool:
        """The handler asked to run the head again later: no attempt is consumed."""
        lane.attempt -= 1
        if self._phase is not _Phase.RUNNING:
            return False
        if self._lost():
            self._drop(lane, keep_head=False)
            return False
        self._counters.postponed += 1
        lane.last_error = describe_error(signal)
        assert self._loop is not None
        self._retry_pending += 1
        lane.state = LaneState.RETRY
        lane.retry_handle = self._loop.call_later(signal.delay, self._retry_due, lane)
        return False

    def _finish_head(self, lane: Lane) -> bool:
        """Drop the finished head; returns whether the lane has another message."""
        lane.queue.popleft()
        lane.attempt = 0
        self._gate.release()
        if lane.queue:
            return True
        self._lanes.pop(lane.key, None)
        return False

    def _retry_due(self, lane: Lane) -> None:  # only while running: stop cancels the handles
        lane.retry_handle = None
        self._retry_pending -= 1
        self._schedule(lane)
        self._check_idle()

    def _park(self, lane: Lane, why: str) -> None:
        lane.state = LaneState.PARKED
        self._counters.parked += 1
        logger.warning(
            "key %r parked (%s; last error: %s); %d message(s) held",
            lane.key,
            why,
            lane.last_error,
            len(lane.queue),
        )

    async def _ack(self, message: Message) -> None:
        try:
            await self._consumer.acknowledge(message)
        except Exception as exc:
            self._counters.ack_failures += 1
            if isinstance(exc, AlreadyClosedError) or self._consumer.closed:
                logger.warning("acknowledge(%s) failed: consumer closed", message.message_id)
                if self._phase is _Phase.RUNNING:
                    self._consumer_gone("acknowledge() reported the consumer closed")
                return
            logger.warning(
                "acknowledge(%s) failed; left for redelivery", message.message_id, exc_info=True
            )
        else:
            self._counters.acked += 1

    async def _dead_letter(self, lane: Lane, message: Message, error: BaseException) -> bool:
        assert self._sink is not None
        logger.warning(
            "key %r: dead-lettering %s after %d attempt(s): %s",
            lane.key,
            message.message_id,
            lane.attempt,
            lane.last_error,
        )
        failure = await store_dead_letter(
            self._sink, message, error, lane.attempt, self._config.handler_timeout
        )
        if failure is None:
            self._counters.dead_lettered += 1
            return True
        self._counters.dead_letter_failures += 1
        lane.last_error = f"dead-letter sink: {describe_error(failure)}"
        logger.warning("dead-letter sink failed for %s: %s", message.message_id, lane.last_error)
        return False

    # ------------------------------------------------------------------ introspection

    def stats(self) -> LaneStats:
        """A frozen snapshot of the current state and counters (O(number of buffered keys))."""
        receiver = self._receiver
        receiving = self._phase is _Phase.RUNNING and receiver is not None and not receiver.done()
        return snapshot(
            now=self._loop.time() if self._loop is not None else time.monotonic(),
            state=self._phase.value,
            receiving=receiving,
            consumer_closed=self._consumer_lost,
            buffered=self._gate.buffered,
            lanes=self._lanes.values(),
            config=self._config,
            counters=self._counters,
        )
