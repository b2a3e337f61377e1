"""The consumption-strategy contract and its shared configuration.

A strategy is one way of consuming a keyed topic with several consumers in one process: which
subscription type, how many handlers run at once, and what (if anything) keeps one user's events
from being handled concurrently. Every strategy runs the same handler
(``async (message, HandlerContext)``) over any :class:`~keylane.brokers.base.Broker`, acks each
message individually after its handler succeeded, and is started and stopped the same way, so
``keylane compare`` can put them side by side.

This module imports no backend (no ``keylane.brokers.memory``/``pulsar``, no ``redis``).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from keylane._validate import check_int, check_seconds
from keylane.brokers.base import Broker, Consumer, InitialPosition, SubscriptionType
from keylane.brokers.validation import MIN_NACK_DELAY
from keylane.errors import InvalidArgumentError
from keylane.lanes import Handler
from keylane.locks.base import DEFAULT_LOCK_TTL

__all__ = ["ContentionPolicy", "Strategy", "StrategyConfig", "StrategyStats"]


class ContentionPolicy(enum.Enum):
    """What ``shared-lock`` does with a message whose user's lock is held elsewhere."""

    #: Negative-ack it; the broker redelivers it after ``nack_delay`` (the common pattern).
    NACK = "nack"
    #: Poll the lock with backoff for up to ``lock_wait`` seconds (blocking a handler slot),
    #: then negative-ack it.
    WAIT = "wait"


def _int_at_least(name: str, value: object, minimum: int) -> None:
    check_int(name, value, minimum)


def _seconds(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> None:
    """A duration >= ``minimum`` (> ``minimum`` when ``strict``)."""
    seconds = check_seconds(name, value, minimum=minimum)
    if strict and seconds <= minimum:
        raise InvalidArgumentError(f"{name} must be > {minimum:g} s, got {seconds}")


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Knobs shared by the strategies (each uses the ones that apply to it).

    Args:
        consumers: consumers on the subscription, all in this process (>= 1).
        max_in_flight: handlers running at once per consumer for ``shared``, ``shared-lock`` and
            ``key-shared-lanes`` (>= 1). The serial strategies run one.
        handler_timeout: seconds one handler attempt may take before it is cancelled and counted
            as failed (> 0), or None for no limit. Applied to every strategy alike.
        max_attempts: handler attempts per delivery, in place, before the message is
            negative-acked (or, for lanes, dead-lettered) (>= 1).
        retry_backoff: pause before the first in-place retry, doubled per retry (>= 0).
        receiver_queue_size: prefetch per consumer (>= 1).
        partitions: partitions of the ``failover`` topic; None means one per consumer.
        nack_delay: negative-ack redelivery delay in seconds (>= 0.1, the client's minimum).
        lock_ttl: ``shared-lock`` lease TTL in seconds. Keep it above ``handler_timeout``: a
            handler outliving its lease runs concurrently with the next holder.
        contention: ``shared-lock``'s reaction to a held lock.
        lock_wait: with ``ContentionPolicy.WAIT``, how long to poll before negative-acking.
        lock_poll_initial: with WAIT, the first pause between polls (doubled up to
            ``lock_poll_max``).
        lock_poll_max: with WAIT, the longest pause between polls.
        shutdown_grace: seconds :meth:`Strategy.stop` lets running handlers finish by default.
    """

    consumers: int = 4
    max_in_flight: int = 256
    handler_timeout: float | None = 5.0
    max_attempts: int = 3
    retry_backoff: float = 0.1
    receiver_queue_size: int = 1000
    partitions: int | None = None
    nack_delay: float = 1.0
    lock_ttl: float = DEFAULT_LOCK_TTL
    contention: ContentionPolicy = ContentionPolicy.NACK
    lock_wait: float = 5.0
    lock_poll_initial: float = 0.005
    lock_poll_max: float = 0.1
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        _int_at_least("consumers", self.consumers, 1)
        _int_at_least("max_in_flight", self.max_in_flight, 1)
        if self.handler_timeout is not None:
            _seconds("handler_timeout", self.handler_timeout, strict=True)
        _int_at_least("max_attempts", self.max_attempts, 1)
        _seconds("retry_backoff", self.retry_backoff)
        _int_at_least("receiver_queue_size", self.receiver_queue_size, 1)
        if self.partitions is not None:
            _int_at_least("partitions", self.partitions, 1)
        _seconds("nack_delay", self.nack_delay, minimum=MIN_NACK_DELAY)
        _seconds("lock_ttl", self.lock_ttl, minimum=0.001)
        if not isinstance(self.contention, ContentionPolicy):
            raise InvalidArgumentError(
                f"contention must be a ContentionPolicy, not {self.contention!r}"
            )
        _seconds("lock_wait", self.lock_wait)
        _seconds("lock_poll_initial", self.lock_poll_initial, strict=True)
        _seconds("lock_poll_max", self.lock_poll_max, strict=True)
        if self.lock_poll_max < self.lock_poll_initial:
            raise InvalidArgumentError(
                f"lock_poll_max ({self.lock_poll_max}) must be >= "
                f"lock_poll_initial ({self.lock_poll_initial})"
            )
        _seconds("shutdown_grace", self.shutdown_grace)

    def backoff(self, failed_attempt: int) -> float:
        """Pause before the in-place retry that follows attempt ``failed_attempt`` (1-based)."""
        return self.retry_backoff * 2.0 ** min(failed_attempt - 1, 30)


@dataclass
class StrategyStats:
    """Counters a strategy keeps while it runs (a live object; read it, don't write it)."""

    acked: int = 0
    nacked: int = 0
    retries: int = 0
    #: shared-lock: acquisitions refused because another handler held the user's lock.
    lock_contended: int = 0
    #: shared-lock: leases that had expired by the time the handler finished (TTL split brain).
    leases_expired: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, int]:
        """The counters as a flat dict."""
        return {
            "acked": self.acked,
            "nacked": self.nacked,
            "retries": self.retries,
            "lock_contended": self.lock_contended,
            "leases_expired": self.leases_expired,
            **self.extra,
        }


class Strategy(abc.ABC):
    """One way of consuming a keyed topic with ``config.consumers`` consumers.

    Lifecycle: create the topic with :meth:`partitions` partitions, :meth:`start` (subscribes and
    starts consuming in background tasks), publish, :meth:`stop`. A strategy object runs once.

    Attributes:
        name: the registry name (``shared``, ``key-shared-lanes``, ...).
        summary: one line for tables and ``--help``.
        subscription_type: the Pulsar subscription type it subscribes with.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    subscription_type: ClassVar[SubscriptionType]

    def __init__(self, config: StrategyConfig | None = None) -> None:
        self.config = config if config is not None else StrategyConfig()
        self.stats = StrategyStats()
        self.consumers: list[Consumer] = []
        self._error: BaseException | None = None
        self._state = "new"
        self.on_error: Callable[[BaseException], None] | None = None
        """Called once with the first unexpected error (e.g. to abort a benchmark early)."""

    def partitions(self) -> int:
        """Partitions the topic should have (0 = non-partitioned)."""
        return 0

    @property
    def error(self) -> BaseException | None:
        """The first unexpected error that stopped a consumer loop, if any."""
        return self._error

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            if self.on_error is not None:
                self.on_error(exc)

    async def _subscribe(self, broker: Broker, topic: str, subscription: str) -> None:
        cfg = self.config
        for index in range(cfg.consumers):
            consumer = await broker.subscribe(
                topic,
                subscription,
                subscription_type=self.subscription_type,
                consumer_name=f"{self.name}-{index}",
                receiver_queue_size=cfg.receiver_queue_size,
                negative_ack_redelivery_delay=cfg.nack_delay,
                initial_position=InitialPosition.EARLIEST,
            )
            self.consumers.append(consumer)

    async def start(self, broker: Broker, topic: str, subscription: str, handler: Handler) -> None:
        """Subscribe ``config.consumers`` consumers and start consuming in the background.

        Raises:
            InvalidArgumentError: the strategy was already started.
            BrokerError: subscribing failed (consumers subscribed so far are closed).
        """
        if self._state != "new":
            raise InvalidArgumentError(f"strategy {self.name!r} can only be started once")
        self._state = "running"
        try:
            await self._subscribe(broker, topic, subscription)
            await self._run(handler)
        except BaseException:
            await self._close_consumers()
            raise

    @abc.abstractmethod
    async def _run(self, handler: Handler) -> None:
        """Start consuming from :attr:`consumers` (background tasks; returns at once)."""

    @abc.abstractmethod
    async def _halt(self, grace: float) -> None:
        """Stop receiving and let running handlers finish for at most ``grace`` seconds."""

    async def stop(self, grace: float | None = None) -> None:
        """Stop receiving, let running handlers finish (bounded), close the consumers.

        Messages not acked by then stay unacked at the broker. Idempotent.
        """
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        try:
            await self._halt(self.config.shutdown_grace if grace is None else grace)
        finally:
            await self._close_consumers()

    async def _close_consumers(self) -> None:
        consumers, self.consumers = self.consumers, []
        for consumer in consumers:
            try:
                await consumer.close()
            except Exception as exc:  # closing is best effort; keep the first failure visible
                self._fail(exc)
