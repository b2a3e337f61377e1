"""``shared``: a Shared subscription, concurrent handlers per consumer, no lock.

The split-brain baseline. Shared dispatches round robin, so one user's burst is spread over the
consumers and handled concurrently: handlers overlap on the same user (exclusivity violations)
and their read-modify-writes lose updates. Fast, and wrong.

Imports no backend.
"""

from __future__ import annotations

from typing import ClassVar

from keylane.brokers.base import SubscriptionType
from keylane.compare.strategies.loop import LoopStrategy

__all__ = ["SharedStrategy"]


class SharedStrategy(LoopStrategy):
    """Shared subscription; up to ``max_in_flight`` concurrent handlers per consumer."""

    name: ClassVar[str] = "shared"
    summary: ClassVar[str] = "Shared, concurrent handlers, no lock (split-brain baseline)"
    subscription_type: ClassVar[SubscriptionType] = SubscriptionType.SHARED

    def concurrency(self) -> int:
        return self.config.max_in_flight
