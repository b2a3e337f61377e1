"""``keylane demo``: Key_Shared consumers joining and leaving under load, on the embedded broker.

Four phases of equal length: two consumers; two more join; one leaves; another leaves. A producer
sends events of a few hundred users the whole time. Each consumer checks, for every event it
processes, that no other consumer is processing the same user (exclusivity) and that the user's
events arrive in publish order. Each phase reports which consumer handled how many users and
events, and the throughput.

The producer stops at the end of the last phase and never lets more than ``max_backlog`` events
wait unacknowledged: when the consumers cannot keep up with ``rate``, it holds back instead of
queueing without bound (the report says how many events the rate asked for). The demo is OK
only if every produced event was acknowledged, in order, by one consumer at a time.

Uses only the broker contract plus :class:`~keylane.brokers.memory.MemoryBroker`; no CLI code.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from keylane.brokers.base import Broker, Consumer, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.errors import AlreadyClosedError, InvalidArgumentError

__all__ = ["DEFAULT_BACKLOG", "DemoReport", "PhaseReport", "run_demo"]

_TOPIC = "keylane-demo-events"
#: The producer's pacing tick, seconds.
_TICK = 0.01
#: Sends between two yields to the event loop while the producer catches up.
_SENDS_PER_YIELD = 256
#: Longest wait for the backlog after the last phase, seconds.
_DRAIN_TIMEOUT = 5.0

#: Most unacknowledged events the producer allows by default: five times what the consumers
#: prefetch (4 x 100), so they never starve, and little enough to drain in the drain timeout
#: even on a slow machine.
DEFAULT_BACKLOG = 2_000


@dataclass(frozen=True, slots=True)
class PhaseReport:
    """What happened during one phase.

    Attributes:
        title: what changed at the start of the phase.
        seconds: its length on the event loop's clock.
        events: events acknowledged during the phase, per consumer.
        users: distinct users handled during the phase, per consumer.
    """

    title: str
    seconds: float
    events: dict[str, int]
    users: dict[str, int]

    @property
    def throughput(self) -> float:
        """Acknowledged events per second."""
        return sum(self.events.values()) / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class DemoReport:
    """The whole run.

    Attributes:
        phases: one report per phase, in order.
        produced: events sent.
        acknowledged: events processed and acknowledged.
        requested: events ``rate`` asked for while producing; more than ``produced`` when the
            producer held back because ``max_backlog`` events were unacknowledged.
        max_backlog: the bound on unacknowledged events.
        peak_backlog: the most events ever unacknowledged at a send.
        order_violations: events that arrived before an earlier event of their user.
        overlap_violations: events started while another consumer held their user.
    """

    phases: list[PhaseReport] = field(default_factory=list)
    produced: int = 0
    acknowledged: int = 0
    requested: int = 0
    max_backlog: int = 0
    peak_backlog: int = 0
    order_violations: int = 0
    overlap_violations: int = 0

    @property
    def unprocessed(self) -> int:
        """Produced events never acknowledged."""
        return max(self.produced - self.acknowledged, 0)

    @property
    def ok(self) -> bool:
        """Every event processed, in order, one consumer at a time per user."""
        return (
            self.order_violations == 0
            and self.overlap_violations == 0
            and self.acknowledged == self.produced
        )


class _Observer:
    """Shared bookkeeping of the consumers: per-phase counts and the two invariants."""

    def __init__(self, report: DemoReport) -> None:
        self.report = report
        self.in_hand: dict[str, str] = {}
        self.last_seq: dict[str, int] = {}
        self.events: dict[str, int] = defaultdict(int)
        self.users: dict[str, set[str]] = defaultdict(set)
        self.done = asyncio.Event()
        #: Set once the producer has stopped; ``done`` fires when everything produced is acked.
        self.done_producing = False

    def start(self, consumer: str, user: str, seq: int) -> None:
        holder = self.in_hand.get(user)
        if holder is not None and holder != consumer:
            self.report.overlap_violations += 1
        self.in_hand[user] = consumer
        if seq <= self.last_seq.get(user, -1):
            self.report.order_violations += 1

    def finish(self, consumer: str, user: str, seq: int) -> None:
        self.in_hand.pop(user, None)
        self.last_seq[user] = seq
        self.events[consumer] += 1
        self.users[consumer].add(user)
        self.report.acknowledged += 1
        if self.report.acknowledged >= self.report.produced and self.done_producing:
            self.done.set()

    def abandon(self, consumer: str) -> None:
        for user in [u for u, c in self.in_hand.items() if c == consumer]:
            del self.in_hand[user]

    def close_phase(self, title: str, seconds: float) -> PhaseReport:
        phase = PhaseReport(
            title=title,
            seconds=seconds,
            events=dict(self.events),
            users={name: len(users) for name, users in self.users.items()},
        )
        self.events.clear()
        self.users.clear()
        return phase


async def _consume(name: str, consumer: Consumer, observer: _Observer, handler_time: float) -> None:
    try:
        while True:
            message = await consumer.receive()
            user = message.key or ""
            seq = int(message.data)
            observer.start(name, user, seq)
            await asyncio.sleep(handler_time)  # "work": the others run while this user is held
            await consumer.acknowledge(message)
            observer.finish(name, user, seq)
    except AlreadyClosedError:
        observer.abandon(name)


async def _produce(
    broker: Broker,
    users: int,
    rate: int,
    deadline: float,
    stop: asyncio.Event,
    report: DemoReport,
) -> None:
    """Send events at ``rate`` per second (paced every 10 ms) until ``stop`` or ``deadline``.

    Never more than ``report.max_backlog`` events are unacknowledged at a send: behind that,
    the producer waits for the next tick instead of queueing more.
    """
    loop = asyncio.get_running_loop()
    producer = await broker.create_producer(_TOPIC, batching=None)
    started = loop.time()
    seq = 0
    try:
        while not stop.is_set() and loop.time() < deadline:
            due = int((min(loop.time(), deadline) - started) * rate)
            report.requested = max(report.requested, due)
            sent = 0
            while seq < due and not stop.is_set() and loop.time() < deadline:
                backlog = seq - report.acknowledged
                if backlog >= report.max_backlog:
                    break  # the consumers are behind: hold back until the next tick
                await producer.send(str(seq).encode(), key=f"user-{seq % users}")
                seq += 1
                report.produced = seq
                report.peak_backlog = max(report.peak_backlog, backlog + 1)
                sent += 1
                if sent % _SENDS_PER_YIELD == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(_TICK)
    finally:
        await producer.close()


async def run_demo(
    *,
    seconds: float = 10.0,
    users: int = 300,
    rate: int = 10_000,
    on_phase: Callable[[PhaseReport], None] | None = None,
    max_backlog: int = DEFAULT_BACKLOG,
    handler_time: float = 0.0,
) -> DemoReport:
    """Run the demonstration on a fresh :class:`MemoryBroker` and return what happened.

    Args:
        seconds: total length of the four phases.
        users: distinct message keys.
        rate: events produced per second.
        on_phase: called with each phase's report as soon as the phase ends.
        max_backlog: most unacknowledged events the producer allows.
        handler_time: seconds each consumer spends on an event (0: it only yields).

    Raises:
        InvalidArgumentError: a parameter is out of range.
    """
    if not (isinstance(seconds, int | float) and 0 < seconds < math.inf):
        raise InvalidArgumentError(f"seconds must be > 0 and finite, got {seconds!r}")
    for name, value in (("users", users), ("rate", rate), ("max_backlog", max_backlog)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
    if not (isinstance(handler_time, int | float) and 0 <= handler_time < math.inf):
        raise InvalidArgumentError(f"handler_time must be >= 0 and finite, got {handler_time!r}")
    loop = asyncio.get_running_loop()
    report = DemoReport(max_backlog=max_backlog)
    observer = _Observer(report)
    phase_length = seconds / 4
    async with MemoryBroker() as broker:
        live: dict[str, tuple[Consumer, asyncio.Task[None]]] = {}

        async def join(name: str) -> None:
            consumer = await broker.subscribe(
                _TOPIC,
                "demo",
                subscription_type=SubscriptionType.KEY_SHARED,
                consumer_name=name,
                receiver_queue_size=100,
            )
            task = asyncio.ensure_future(_consume(name, consumer, observer, handler_time))
            live[name] = (consumer, task)

        async def leave(name: str) -> None:
            consumer, task = live.pop(name)
            await consumer.close()
            await task

        await join("consumer-1")
        await join("consumer-2")
        stop = asyncio.Event()
        deadline = loop.time() + seconds
        producing = asyncio.ensure_future(_produce(broker, users, rate, deadline, stop, report))
        steps: list[tuple[str, list[str], list[str]]] = [
            ("consumer-1 and consumer-2 start", [], []),
            ("consumer-3 and consumer-4 join", ["consumer-3", "consumer-4"], []),
            ("consumer-2 leaves", [], ["consumer-2"]),
            ("consumer-4 leaves", [], ["consumer-4"]),
        ]
        for title, joining, leaving in steps:
            for name in joining:
                await join(name)
            for name in leaving:
                await leave(name)
            started = loop.time()
            await asyncio.sleep(phase_length)
            phase = observer.close_phase(title, loop.time() - started)
            report.phases.append(phase)
            if on_phase is not None:
                on_phase(phase)
        stop.set()
        await producing
        observer.done_producing = True
        if report.acknowledged < report.produced:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(observer.done.wait(), _DRAIN_TIMEOUT)
        for name in list(live):
            await leave(name)
    return report
