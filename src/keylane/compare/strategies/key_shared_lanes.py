"""``key-shared-lanes``: a Key_Shared subscription consumed through :class:`keylane.lanes.Lanes`.

The keylane way: the broker keeps each user on one consumer (and, with Pulsar 4's draining
hashes, outstanding at one consumer at a time); inside the consumer, lanes run different users
concurrently (up to ``max_in_flight``) and each user's events one at a time, in order, each
attempt bounded by ``handler_timeout``. No lock, no extra round trip, no head-of-line blocking
across users. A message that fails ``max_attempts`` times in place goes to the dead-letter topic
``<topic>-<subscription>-DLQ`` and is acked, so its user moves on.

Imports no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from keylane.brokers.base import Broker, Producer, SubscriptionType
from keylane.compare.strategies.base import Strategy, StrategyConfig
from keylane.lanes import Handler, LaneConfig, Lanes, producer_dead_letter_sink

__all__ = ["KeySharedLanesStrategy"]


class KeySharedLanesStrategy(Strategy):
    """Key_Shared (auto-split, consistent hashing) with one :class:`Lanes` per consumer.

    Args:
        config: strategy knobs; ``max_in_flight``, ``handler_timeout``, ``max_attempts`` and
            ``retry_backoff`` become the :class:`~keylane.lanes.LaneConfig`.
    """

    name: ClassVar[str] = "key-shared-lanes"
    summary: ClassVar[str] = "Key_Shared + keylane lanes (per-user serial, cross-user concurrent)"
    subscription_type: ClassVar[SubscriptionType] = SubscriptionType.KEY_SHARED

    def __init__(self, config: StrategyConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.lane_config = LaneConfig(
            max_in_flight=cfg.max_in_flight,
            handler_timeout=cfg.handler_timeout,
            max_attempts=cfg.max_attempts,
            retry_backoff=cfg.retry_backoff,
            # Lanes keep receiving while they buffer fewer than this; a bound near the prefetch
            # keeps unacked messages (and rebalance drains) small instead of pulling the whole
            # backlog into the process.
            max_buffered_total=max(cfg.receiver_queue_size * 2, 1000),
            shutdown_grace=cfg.shutdown_grace,
        )
        self.lanes: list[Lanes] = []
        self._dead_letters: Producer | None = None

    async def start(self, broker: Broker, topic: str, subscription: str, handler: Handler) -> None:
        self._broker = broker
        self._topic = topic
        self._subscription = subscription
        await super().start(broker, topic, subscription, handler)

    async def _run(self, handler: Handler) -> None:
        dlq = f"{self._topic}-{self._subscription}-DLQ"
        self._dead_letters = await self._broker.create_producer(dlq, batching=None)
        sink = producer_dead_letter_sink(self._dead_letters)
        self.lanes = [
            Lanes(consumer, handler, self.lane_config, dead_letter=sink)
            for consumer in self.consumers
        ]
        for lanes in self.lanes:
            await lanes.start()

    async def _halt(self, grace: float) -> None:
        try:
            await asyncio.gather(*(lanes.stop(grace) for lanes in self.lanes))
        finally:
            dead_lettered = 0
            for lanes in self.lanes:
                snapshot = lanes.stats()
                self.stats.acked += snapshot.acked
                self.stats.retries += snapshot.retried
                dead_lettered += snapshot.dead_lettered
            self.stats.extra["dead_lettered"] = dead_lettered
            if self._dead_letters is not None:
                with contextlib.suppress(Exception):
                    await self._dead_letters.close()
