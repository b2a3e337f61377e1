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

from typing import ClassVar

from keylane.brokers.base import Broker, SubscriptionType
from keylane.compare.strategies.base import Strategy, StrategyConfig
from keylane.lanes import Handler, LaneConfig, LaneGroup

__all__ = ["KeySharedLanesStrategy"]


class KeySharedLanesStrategy(Strategy):
    """Key_Shared (auto-split, consistent hashing) with one :class:`Lanes` per consumer.

    A thin wrapper around :class:`~keylane.lanes.LaneGroup`, the library's wiring of N
    Key_Shared consumers, their lanes and the dead-letter producer (which the worker uses too).

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
        self.group: LaneGroup | None = None

    async def _subscribe(self, broker: Broker, topic: str, subscription: str) -> None:
        # The lane group subscribes its consumers itself (in _run).
        self._broker, self._topic, self._subscription = broker, topic, subscription

    async def _run(self, handler: Handler) -> None:
        cfg = self.config
        self.group = LaneGroup(
            self._broker,
            self._topic,
            self._subscription,
            handler,
            consumers=cfg.consumers,
            config=self.lane_config,
            name=self.name,
            receiver_queue_size=cfg.receiver_queue_size,
        )
        await self.group.start()

    async def _halt(self, grace: float) -> None:
        if self.group is None:
            return
        try:
            await self.group.stop(grace)
        finally:
            total = self.group.stats().total
            self.stats.acked += total.acked
            self.stats.retries += total.retried
            self.stats.extra["dead_lettered"] = total.dead_lettered
