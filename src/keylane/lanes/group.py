"""A :class:`LaneGroup`: N Key_Shared consumers on one subscription, one :class:`Lanes` each.

The wiring a service needs around lanes: subscribe the consumers, give each its lanes, publish
exhausted messages to the dead-letter topic, stop in the safe order (lanes first, then the
consumers, then the dead-letter producer) and merge the stats. Consumers can be added and removed
while it runs (scale out and in within one process). Imports no backend: only the broker contract.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from keylane.brokers.base import (
    Broker,
    Consumer,
    InitialPosition,
    KeySharedPolicy,
    Message,
    Producer,
    SubscriptionType,
)
from keylane.errors import InvalidArgumentError
from keylane.lanes.config import ExhaustedPolicy, LaneConfig
from keylane.lanes.deadletter import producer_dead_letter_sink
from keylane.lanes.handler import Handler
from keylane.lanes.scheduler import DropCallback, Lanes
from keylane.lanes.stats import LaneStats
from keylane.resource import Startable

__all__ = ["GroupStats", "LaneGroup", "merge_stats"]

logger = logging.getLogger("keylane.lanes")


@dataclass(frozen=True, slots=True)
class GroupStats:
    """A snapshot of a :class:`LaneGroup`.

    Attributes:
        total: every consumer's :class:`LaneStats` merged (sums, unions; ``state`` and
            ``receiving`` describe the group).
        by_consumer: each consumer's own snapshot, by consumer name.
    """

    total: LaneStats
    by_consumer: Mapping[str, LaneStats]


class LaneGroup(Startable):
    """Consume one topic with ``consumers`` Key_Shared consumers, each through its own lanes.

    Args:
        broker: where to subscribe.
        topic: the topic to consume.
        subscription: the Key_Shared subscription name (shared by every consumer).
        handler: the lanes handler, ``async (message, context)``.
        consumers: how many consumers to start with (>= 1).
        config: the lanes configuration of every consumer.
        name: consumer names are ``<name>-<n>``; pick one per process (host, pod) so names
            stay unique across processes.
        receiver_queue_size: prefetch per consumer; keep it small so rebalances drain fast.
        dead_letter_topic: where exhausted messages go (with ``ExhaustedPolicy.DEAD_LETTER``);
            ``<topic>-<subscription>-DLQ`` by default, as in Pulsar.
        initial_position: where a new subscription starts.
        key_shared_policy: the Key_Shared policy (consistent hashing by default).
        key_of, on_dropped: passed to every :class:`Lanes`.

    Raises:
        InvalidArgumentError: a bad argument.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str,
        subscription: str,
        handler: Handler,
        *,
        consumers: int = 1,
        config: LaneConfig | None = None,
        name: str = "lanes",
        receiver_queue_size: int = 100,
        dead_letter_topic: str | None = None,
        initial_position: InitialPosition = InitialPosition.EARLIEST,
        key_shared_policy: KeySharedPolicy | None = None,
        key_of: Callable[[Message], str] | None = None,
        on_dropped: DropCallback | None = None,
    ) -> None:
        if not isinstance(broker, Broker):
            raise InvalidArgumentError(f"broker must be a keylane Broker, not {broker!r}")
        if isinstance(consumers, bool) or not isinstance(consumers, int) or consumers < 1:
            raise InvalidArgumentError(f"consumers must be an int >= 1, got {consumers!r}")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"name must be a non-empty string, got {name!r}")
        self._broker = broker
        self._topic = topic
        self._subscription = subscription
        self._handler = handler
        self._initial = consumers
        self._config = LaneConfig() if config is None else config
        if not isinstance(self._config, LaneConfig):
            raise InvalidArgumentError(f"config must be a LaneConfig, not {config!r}")
        self._name = name
        self._queue = receiver_queue_size
        self._dlq_topic = dead_letter_topic or f"{topic}-{subscription}-DLQ"
        self._initial_position = initial_position
        self._policy = key_shared_policy
        self._key_of = key_of
        self._on_dropped = on_dropped
        self._numbers = itertools.count()
        self._members: dict[str, Lanes] = {}
        self._consumers: dict[str, Consumer] = {}
        self._retired: list[LaneStats] = []
        self._dead_letters: Producer | None = None
        self._state = "new"
        self._lock = asyncio.Lock()

    @property
    def consumer_names(self) -> tuple[str, ...]:
        """Names of the consumers currently in the group, in the order they joined."""
        return tuple(self._members)

    @property
    def dead_letter_topic(self) -> str:
        """Where exhausted messages are published."""
        return self._dlq_topic

    async def start(self) -> None:
        """Create the dead-letter producer (if needed), subscribe and start every consumer.

        Raises:
            RuntimeError: already started.
            BrokerError: subscribing failed; whatever was started is stopped again.
        """
        if self._state != "new":
            raise RuntimeError(f"LaneGroup already {self._state}; create a new one")
        self._state = "running"
        try:
            if self._config.on_exhausted is ExhaustedPolicy.DEAD_LETTER:
                self._dead_letters = await self._broker.create_producer(
                    self._dlq_topic, batching=None
                )
            for _ in range(self._initial):
                await self._add()
        except BaseException:
            await self.stop(grace=0)
            raise

    async def add_consumer(self) -> str:
        """Subscribe one more consumer with its own lanes (scale out); returns its name.

        Raises:
            RuntimeError: the group is not running.
        """
        async with self._lock:
            if self._state != "running":
                raise RuntimeError(f"cannot add a consumer: LaneGroup is {self._state}")
            return await self._add()

    async def _add(self) -> str:
        name = f"{self._name}-{next(self._numbers)}"
        consumer = await self._broker.subscribe(
            self._topic,
            self._subscription,
            subscription_type=SubscriptionType.KEY_SHARED,
            consumer_name=name,
            receiver_queue_size=self._queue,
            initial_position=self._initial_position,
            key_shared_policy=self._policy,
        )
        sink = None if self._dead_letters is None else producer_dead_letter_sink(self._dead_letters)
        lanes = Lanes(
            consumer,
            self._handler,
            self._config,
            dead_letter=sink,
            key_of=self._key_of,
            on_dropped=self._on_dropped,
        )
        self._consumers[name] = consumer
        self._members[name] = lanes
        try:
            await lanes.start()
        except BaseException:
            del self._members[name], self._consumers[name]
            await consumer.close()
            raise
        return name

    async def remove_consumer(self, name: str | None = None, grace: float | None = None) -> str:
        """Stop one consumer's lanes, then close it (scale in); the newest one by default.

        Its unfinished messages are redelivered to the keys' new owners in the group.

        Raises:
            InvalidArgumentError: no such consumer, or it is the last one.
            RuntimeError: the group is not running.
        """
        async with self._lock:
            if self._state != "running":
                raise RuntimeError(f"cannot remove a consumer: LaneGroup is {self._state}")
            if name is None:
                name = next(reversed(self._members), None)
            if name not in self._members:
                raise InvalidArgumentError(f"no consumer {name!r} in this group")
            if len(self._members) == 1:
                raise InvalidArgumentError("cannot remove the last consumer; stop the group")
            await self._retire(name, grace)
            return name

    async def _retire(self, name: str, grace: float | None) -> None:
        lanes = self._members.pop(name)
        consumer = self._consumers.pop(name)
        try:
            await lanes.stop(grace, close_consumer=False)
        finally:
            self._retired.append(lanes.stats())
            try:
                await consumer.close()
            except Exception:
                logger.warning("closing consumer %s failed", name, exc_info=True)

    async def stop(self, grace: float | None = None) -> None:
        """Stop every consumer's lanes (in parallel), then close the consumers, then the DLQ.

        Lanes stop before their consumer closes, so no key is handed to another consumer while
        a handler still runs here. Idempotent.
        """
        async with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
            names = list(self._members)
            results = await asyncio.gather(
                *(self._members[n].stop(grace) for n in names), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    logger.warning("stopping lanes failed", exc_info=result)
            for name in names:
                self._retired.append(self._members.pop(name).stats())
                try:
                    await self._consumers.pop(name).close()
                except Exception:
                    logger.warning("closing consumer %s failed", name, exc_info=True)
            if self._dead_letters is not None:
                try:
                    await self._dead_letters.close()
                except Exception:
                    logger.warning("closing the dead-letter producer failed", exc_info=True)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until every consumer's lanes are idle (see :meth:`Lanes.wait_idle`)."""
        async with asyncio.timeout(timeout):
            for lanes in list(self._members.values()):
                await lanes.wait_idle()

    def stats(self) -> GroupStats:
        """Every live consumer's snapshot and their merge (retired consumers' counters included)."""
        live = {name: lanes.stats() for name, lanes in self._members.items()}
        total = merge_stats([*live.values(), *self._retired], state=self._state)
        return GroupStats(total=total, by_consumer=MappingProxyType(live))


def merge_stats(snapshots: Iterable[LaneStats], *, state: str = "running") -> LaneStats:
    """Merge per-consumer snapshots into one: counters summed, key sets and maps joined.

    Counters add up over every snapshot given (stopped consumers included); the live view
    (buffered, keys in flight, parked, ...) comes from the running ones only.
    """
    items = list(snapshots)
    live = [s for s in items if s.state in ("running", "stopping")]

    def total(name: str) -> int:
        return sum(int(getattr(s, name)) for s in items)

    return LaneStats(
        time=max((s.time for s in items), default=0.0),
        state=state,
        receiving=any(s.receiving for s in live),
        consumer_closed=any(s.consumer_closed for s in live),
        buffered=sum(s.buffered for s in live),
        in_flight_keys=frozenset().union(*(s.in_flight_keys for s in live)),
        retrying_keys=frozenset().union(*(s.retrying_keys for s in live)),
        waiting_keys=frozenset().union(*(s.waiting_keys for s in live)),
        queue_depths=_join(s.queue_depths for s in live),
        in_flight_age=_join(s.in_flight_age for s in live),
        stalled_keys=frozenset().union(*(s.stalled_keys for s in live)),
        parked_keys=_join(s.parked_keys for s in live),
        full_keys=frozenset().union(*(s.full_keys for s in live)),
        overflow=sum(s.overflow for s in live),
        received=total("received"),
        completed=total("completed"),
        failed=total("failed"),
        timed_out=total("timed_out"),
        retried=total("retried"),
        dead_lettered=total("dead_lettered"),
        dead_letter_failures=total("dead_letter_failures"),
        parked=total("parked"),
        acked=total("acked"),
        ack_failures=total("ack_failures"),
        abandoned=total("abandoned"),
        receive_errors=total("receive_errors"),
        dropped=total("dropped"),
        postponed=total("postponed"),
    )


V = TypeVar("V")


def _join(maps: Iterable[Mapping[str, V]]) -> Mapping[str, V]:
    joined: dict[str, V] = {}
    for m in maps:
        joined.update(m)
    return MappingProxyType(joined)
