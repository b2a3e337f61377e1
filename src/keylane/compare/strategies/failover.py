"""``failover``: a Failover subscription on a partitioned topic, partition key = user id.

Each partition has one active consumer, and each consumer handles its messages one at a time,
so a user's events are serial and in order. Parallelism is capped by the partition count, and a
slow message holds up every user of its partition (head-of-line blocking).

Imports no backend.
"""

from __future__ import annotations

from typing import ClassVar

from keylane.brokers.base import SubscriptionType
from keylane.compare.strategies.loop import LoopStrategy

__all__ = ["FailoverStrategy"]


class FailoverStrategy(LoopStrategy):
    """Failover on ``partitions`` partitions (default: one per consumer); serial per consumer."""

    name: ClassVar[str] = "failover"
    summary: ClassVar[str] = "Failover on a partitioned topic, serial per consumer"
    subscription_type: ClassVar[SubscriptionType] = SubscriptionType.FAILOVER

    def partitions(self) -> int:
        cfg = self.config
        return cfg.partitions if cfg.partitions is not None else cfg.consumers
