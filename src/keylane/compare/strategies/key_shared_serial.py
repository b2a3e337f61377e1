"""``key-shared-serial``: a Key_Shared subscription, one message at a time per consumer.

The naive Key_Shared consumer: the broker keeps each user on one consumer, and the consumer
handles one message at a time. Correct, but a consumer's throughput is one handler's latency,
and a slow message holds up every user of that consumer.

Imports no backend.
"""

from __future__ import annotations

from typing import ClassVar

from keylane.brokers.base import SubscriptionType
from keylane.compare.strategies.loop import LoopStrategy

__all__ = ["KeySharedSerialStrategy"]


class KeySharedSerialStrategy(LoopStrategy):
    """Key_Shared (auto-split, consistent hashing); serial per consumer."""

    name: ClassVar[str] = "key-shared-serial"
    summary: ClassVar[str] = "Key_Shared, one message at a time per consumer (naive)"
    subscription_type: ClassVar[SubscriptionType] = SubscriptionType.KEY_SHARED
