"""MemoryProvider: records deliveries in-process, with the embedded gateway's idempotency.

For unit tests and the simulator. The same key with the same content is a replay (no second
delivery); the same key with different content is ``FAILED_PERMANENT``, exactly as the gateway
answers 409. Failures can be scripted for the next attempts, including the "delivered, but the
answer was lost" case.

This module imports no backend.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from keylane.errors import InvalidArgumentError
from keylane.providers.base import Delivery, Outcome, Provider, Receipt

__all__ = ["MemoryProvider", "ScriptedFailure"]


@dataclass(frozen=True, slots=True)
class ScriptedFailure:
    """One scripted failed attempt.

    Attributes:
        outcome: what the attempt reports (any outcome but SENT).
        delivered: the attempt is delivered (recorded, once per key) before it reports the
            failure: the timed-out request that did go out.
        detail: the receipt's detail.
    """

    outcome: Outcome = Outcome.FAILED_RETRYABLE
    delivered: bool = False
    detail: str = "scripted failure"

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, Outcome) or self.outcome is Outcome.SENT:
            raise InvalidArgumentError(
                f"ScriptedFailure outcome must be a failing Outcome, not {self.outcome!r}"
            )


class MemoryProvider(Provider):
    """Keeps every delivery in a list; one delivery per idempotency key.

    Not thread-safe; safe for concurrent sends on one event loop (a send never awaits).
    """

    def __init__(self) -> None:
        self._deliveries: list[Delivery] = []
        self._by_key: dict[str, tuple[int, Delivery]] = {}
        self._script: collections.deque[ScriptedFailure] = collections.deque()
        self.attempts = 0
        """Every :meth:`send` call with a valid delivery."""
        self.replays = 0
        """Attempts answered from the ledger (same key, same content)."""
        self.conflicts = 0
        """Attempts refused because the key was used with different content."""
        self.injected_failures = 0
        """Attempts that reported a scripted failure."""

    @property
    def deliveries(self) -> tuple[Delivery, ...]:
        """Every delivery, in order: exactly one per delivered key."""
        return tuple(self._deliveries)

    def delivered_to(self, to: str) -> tuple[Delivery, ...]:
        """The deliveries to one recipient, in order (a phone's view)."""
        return tuple(d for d in self._deliveries if d.to == to)

    def fail_next(self, *failures: ScriptedFailure) -> None:
        """Make the next attempts (whatever their key) fail, one failure per attempt, in order.

        Raises:
            InvalidArgumentError: an argument is not a ScriptedFailure.
        """
        for failure in failures:
            if not isinstance(failure, ScriptedFailure):
                raise InvalidArgumentError(
                    f"fail_next takes ScriptedFailure values, not {type(failure).__name__}"
                )
        self._script.extend(failures)

    async def _send(self, delivery: Delivery) -> Receipt:
        self.attempts += 1
        failure = self._script.popleft() if self._script else None
        if failure is not None and not failure.delivered:
            self.injected_failures += 1
            return Receipt(failure.outcome, None, None, failure.detail)
        receipt = self._deliver(delivery)
        if failure is not None:
            self.injected_failures += 1
            return Receipt(failure.outcome, None, None, failure.detail)
        return receipt

    def _deliver(self, delivery: Delivery) -> Receipt:
        known = self._by_key.get(delivery.idempotency_key)
        if known is None:
            self._deliveries.append(delivery)
            self._by_key[delivery.idempotency_key] = (len(self._deliveries), delivery)
            return Receipt(Outcome.SENT, None, _message_id(len(self._deliveries)), "delivered")
        index, first = known
        differing = first.differing_fields(delivery)
        if differing:
            self.conflicts += 1
            return Receipt(
                Outcome.FAILED_PERMANENT,
                None,
                None,
                "idempotency key reused with a different body "
                f"(differs in: {', '.join(differing)})",
            )
        self.replays += 1
        return Receipt(Outcome.SENT, None, _message_id(index), "delivered", replayed=True)

    async def close(self) -> None:
        """Nothing to release; the recorded deliveries stay readable."""


def _message_id(index: int) -> str:
    return f"mem_{index:08d}"
