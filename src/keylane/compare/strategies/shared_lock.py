"""``shared-lock``: a Shared subscription plus a per-user distributed lock (the Redis baseline).

Before running the handler, take the user's lock (``SET key token NX PX ttl``); release it with a
compare-and-delete afterwards. When the lock is held elsewhere the message is negative-acked and
comes back after ``nack_delay`` (:attr:`ContentionPolicy.NACK`, the common pattern), or the
handler slot polls the lock with backoff for up to ``lock_wait`` (:attr:`ContentionPolicy.WAIT`).

Costs: two lock round trips per message, redelivery delays under contention, no per-user order
(whichever event grabs the lock runs first), and split brain again if a handler outlives the
lease TTL (``docs/baseline.md``).

Imports no backend: the lock is any :class:`~keylane.locks.base.KeyLock`.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from keylane.brokers.base import Consumer, Message, SubscriptionType
from keylane.compare.strategies.base import ContentionPolicy, StrategyConfig
from keylane.compare.strategies.loop import LoopStrategy
from keylane.locks.base import KeyLock

__all__ = ["SharedLockStrategy"]


class SharedLockStrategy(LoopStrategy):
    """Shared subscription, ``max_in_flight`` handlers per consumer, each under the user's lock.

    Args:
        config: strategy knobs (``lock_ttl``, ``contention``, ``nack_delay``, ``lock_wait``...).
        lock: the lock store shared by all consumers (a connected
            :class:`~keylane.locks.redis.RedisKeyLock` for the real baseline).
    """

    name: ClassVar[str] = "shared-lock"
    summary: ClassVar[str] = "Shared + per-user Redis lock, nack on contention"
    subscription_type: ClassVar[SubscriptionType] = SubscriptionType.SHARED

    def __init__(self, config: StrategyConfig | None = None, *, lock: KeyLock) -> None:
        super().__init__(config)
        self.lock = lock

    def concurrency(self) -> int:
        return self.config.max_in_flight

    async def _process(self, consumer: Consumer, message: Message) -> None:
        cfg = self.config
        key = message.sticky_key
        if cfg.contention is ContentionPolicy.WAIT:
            lease = await self.lock.acquire_wait(
                key,
                cfg.lock_ttl,
                timeout=cfg.lock_wait,
                poll_initial=cfg.lock_poll_initial,
                poll_max=cfg.lock_poll_max,
            )
        else:
            lease = await self.lock.acquire(key, cfg.lock_ttl)
        if lease is None:
            self.stats.lock_contended += 1
            await consumer.negative_acknowledge(message)
            self.stats.nacked += 1
            return
        try:
            await super()._process(consumer, message)
        finally:
            # Shielded so a shutdown cancellation cannot leave the lock held until its TTL.
            released = await asyncio.shield(self.lock.release(lease))
            if not released:
                self.stats.leases_expired += 1
