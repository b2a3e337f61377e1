"""The closed-loop producer: keeps at most ``window`` events outstanding, tracks completions.

Published-but-not-completed events are *outstanding*. The publisher draws sessions from the
workload and publishes a whole session (one user's burst) as soon as it fits in the window, so
every strategy runs saturated (the window, not a fixed rate, drives the load) and the backlog
never grows without bound. After ``duration`` seconds it stops publishing; :meth:`drain` then
waits until every published event has completed, so lost messages can be judged exactly.

A user's events are published in seq order by one publisher task (users are spread over
``publishers`` tasks by hash), so per-user publish order is the seq order even when many sends
are in flight.

Completions arrive through :meth:`on_success`, which the handler calls after its write. The first
completion of an event ends its latency (publish -> success, from the ``published_at``
property); repeated completions (duplicates) are counted but not timed.

Imports no backend (any :class:`~keylane.brokers.base.Producer`).
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Callable

from keylane.brokers.base import Message, Producer
from keylane.check import HistoryRecorder
from keylane.compare.workload import (
    EVENT_TYPE_PROPERTY,
    PUBLISHED_AT_PROPERTY,
    SEQ_PROPERTY,
    Session,
    Workload,
)
from keylane.errors import InvalidArgumentError

__all__ = ["ClosedLoopPublisher"]

_Done = None  # queue sentinel

#: Longest the closed loop fills the window without yielding to the event loop, seconds. Short
#: enough for timers and sends to run; long enough that a window with room fills at once, as if
#: the loop never yielded (which keeps the comparison saturated).
_YIELD_EVERY = 0.005


class ClosedLoopPublisher:
    """Publishes sessions while at most ``window`` events are outstanding.

    Args:
        producer: where events go (key = user id).
        workload: the session stream.
        recorder: every publication is recorded here (for the checker's lost-message count).
        window: most events outstanding at once (>= the workload's ``max_burst``).
        publishers: concurrent publishing tasks (a user always uses the same one).
        clock: wall clock for the ``published_at`` property and latencies (``time.time``).
        stuck_user: if set, one session of this user is published ``stuck_at`` seconds in.
        stuck_at: when to publish the stuck user's session.
    """

    def __init__(
        self,
        producer: Producer,
        workload: Workload,
        recorder: HistoryRecorder,
        *,
        window: int,
        publishers: int = 16,
        clock: Callable[[], float] = time.time,
        stuck_user: str | None = None,
        stuck_at: float = 1.0,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InvalidArgumentError(f"window must be an int >= 1, got {window!r}")
        if window < workload.config.max_burst:
            raise InvalidArgumentError(
                f"window ({window}) must be >= the workload's max_burst "
                f"({workload.config.max_burst}), or a large session could never be published"
            )
        if publishers < 1:
            raise InvalidArgumentError(f"publishers must be >= 1, got {publishers}")
        self.producer = producer
        self.workload = workload
        self.recorder = recorder
        self.window = window
        self.clock = clock
        self.stuck_user = stuck_user
        self.stuck_at = stuck_at
        self._publishers = publishers
        self._pending: set[tuple[str, int]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._need = 0
        self._drained: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._measuring = False
        self.published = 0
        self.completed = 0
        self.measured_completions = 0
        self.repeat_completions = 0
        self.latencies: list[float] = []
        """Seconds from publish to first success, for every user but the stuck one."""
        self.stuck_latencies: list[float] = []
        """The same for the stuck user."""
        self.measured_seconds = 0.0
        self._measure_wall = math.inf  # wall time the measured phase began
        self._measure_start = 0.0

    @property
    def outstanding(self) -> int:
        """Events reserved or published and not completed yet."""
        return len(self._pending)

    # ------------------------------------------------------------------ completions

    def on_success(self, message: Message) -> None:
        """Record a successful handler call (call it once per success)."""
        props = message.properties
        key = message.sticky_key
        entry = (key, int(props[SEQ_PROPERTY]))
        pending = self._pending
        if entry not in pending:
            self.repeat_completions += 1
            return
        pending.remove(entry)
        self.completed += 1
        if self._measuring:
            self.measured_completions += 1
        published_at = float(props[PUBLISHED_AT_PROPERTY])
        if published_at >= self._measure_wall:  # warm-up events are not timed
            latency = self.clock() - published_at
            if key == self.stuck_user:
                self.stuck_latencies.append(latency)
            else:
                self.latencies.append(latency)
        waiter = self._waiter
        if waiter is not None and not waiter.done() and len(pending) + self._need <= self.window:
            waiter.set_result(None)
        drained = self._drained
        if drained is not None and not pending and not drained.done():
            drained.set_result(None)

    # ------------------------------------------------------------------ publishing

    async def _publish_loop(self, queue: asyncio.Queue[Session | None]) -> None:
        send = self.producer.send
        recorder = self.recorder
        clock = self.clock
        while True:
            session = await queue.get()
            if session is None:
                return
            for event in session.events:
                properties = {
                    SEQ_PROPERTY: str(event.seq),
                    PUBLISHED_AT_PROPERTY: repr(clock()),
                    EVENT_TYPE_PROPERTY: event.event_type,
                }
                data = f'{{"user":"{event.user}","seq":{event.seq}}}'.encode()
                message_id = await send(data, key=event.user, properties=properties)
                self.published += 1
                recorder.published(event.user, event.seq, str(message_id))

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                self.abort(error)

    def abort(self, error: BaseException) -> None:
        """Stop publishing and end :meth:`run` and :meth:`drain` early; they raise ``error``."""
        if self._error is None:
            self._error = error
        for future in (self._waiter, self._drained):
            if future is not None and not future.done():
                future.set_result(None)

    def _begin_measuring(self) -> None:
        self._measuring = True
        self._measure_wall = self.clock()
        self._measure_start = asyncio.get_running_loop().time()

    def _next_session(self, now: float, stuck_due: float | None) -> tuple[Session, float | None]:
        """The next session to publish: the stuck user's once it is due, else the workload's."""
        if stuck_due is not None and now >= stuck_due:
            assert self.stuck_user is not None
            size = round(self.workload.config.mean_burst)
            return self.workload.session_for(self.stuck_user, size), None
        return self.workload.next_session(), stuck_due

    async def run(self, duration: float, *, warmup: float = 0.0, rate: float | None = None) -> None:
        """Publish for ``warmup + duration`` seconds, then stop (queued sessions still go out).

        Completions count towards :attr:`measured_completions`, and events towards the latency
        lists, only in the measured phase: the ``duration`` seconds after ``warmup``.

        Args:
            duration: length of the measured phase, seconds.
            warmup: seconds of publishing before it (subscriptions settle, the window fills).
            rate: open loop: offer this many events per second (sessions at their due time;
                the window still caps the backlog). None: closed loop, as fast as the window
                allows.

        Raises:
            InvalidArgumentError: bad duration, warmup or rate.
            Exception: whatever a ``send`` raised (the first one), or the :meth:`abort` error.
        """
        if not duration > 0:
            raise InvalidArgumentError(f"duration must be > 0 seconds, got {duration}")
        if not warmup >= 0:
            raise InvalidArgumentError(f"warmup must be >= 0 seconds, got {warmup}")
        if rate is not None and not rate > 0:
            raise InvalidArgumentError(f"rate must be > 0 events/s, got {rate}")
        loop = asyncio.get_running_loop()
        queues: list[asyncio.Queue[Session | None]] = [
            asyncio.Queue() for _ in range(self._publishers)
        ]
        workers = [asyncio.create_task(self._publish_loop(q)) for q in queues]
        for task in workers:
            task.add_done_callback(self._worker_done)
        start = loop.time()
        measure_from = start + warmup
        end = measure_from + duration
        stuck_due = measure_from + self.stuck_at if self.stuck_user is not None else None
        begin = loop.call_at(measure_from, self._begin_measuring)
        due = start
        yielded = start
        try:
            while self._error is None:
                session, stuck_due = self._next_session(loop.time(), stuck_due)
                if rate is not None:
                    if due >= end:
                        # Nothing more is due in time: the phases still last until ``end``.
                        await asyncio.sleep(max(end - loop.time(), 0.0))
                        break
                    if due > loop.time():
                        await asyncio.sleep(due - loop.time())
                    # After a stall (full window) resume the rate instead of bursting to catch up.
                    due = max(due, loop.time() - 0.1) + len(session.events) / rate
                if not await self._wait_for_room(len(session.events), end):
                    break
                for event in session.events:
                    self._pending.add((event.user, event.seq))
                index = zlib.crc32(session.user.encode()) % len(queues)
                queues[index].put_nowait(session)
                if loop.time() - yielded >= _YIELD_EVERY:
                    # A window that never fills would otherwise keep the loop from running the
                    # sends, the completions and the phase timer until the deadline.
                    await asyncio.sleep(0)
                    yielded = loop.time()
        finally:
            begin.cancel()
            stop = min(loop.time(), end)
            if self._measuring:
                self.measured_seconds = max(stop - self._measure_start, 0.0)
            self._measuring = False
            for queue in queues:
                queue.put_nowait(_Done)
            await asyncio.gather(*workers, return_exceptions=True)
        if self._error is not None:
            raise self._error

    async def _wait_for_room(self, need: int, end: float) -> bool:
        loop = asyncio.get_running_loop()
        while len(self._pending) + need > self.window:
            remaining = end - loop.time()
            if remaining <= 0 or self._error is not None:
                return False
            self._need = need
            self._waiter = loop.create_future()
            try:
                async with asyncio.timeout(remaining):
                    await self._waiter
            except TimeoutError:
                return False
            finally:
                self._waiter = None
        return loop.time() < end and self._error is None

    async def drain(self, timeout: float) -> bool:
        """Wait until every published event completed; False if ``timeout`` passed first.

        Raises:
            Exception: the error given to :meth:`abort`.
        """
        if self._error is not None:
            raise self._error
        if not self._pending:
            return True
        loop = asyncio.get_running_loop()
        self._drained = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._drained
        except TimeoutError:
            return False
        finally:
            self._drained = None
        if self._error is not None:
            raise self._error
        return not self._pending
