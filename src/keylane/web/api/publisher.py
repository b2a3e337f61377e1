"""The ingest publisher: events onto the events topic, answered only once the broker stored them.

:meth:`IngestPublisher.publish` sends a batch concurrently (so key-based batching fills) and
waits for every receipt, within ``timeout``. It reports, per event, the message id it got or why
it did not. Nothing is reported published that the broker did not acknowledge; an event whose
receipt did not come in time is reported *not* published, although the broker may still store
it: the client's retry is then a repeated ``event_id``, which the engine de-duplicates.

The producer is created on first use and dropped after a broker error, so an API started while
the broker is down serves 503 until the broker is back, then publishes again.

Imports the broker contract, the runtime's codec and the journeys' events; no web framework.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from keylane.brokers.base import Broker, MessageId, Producer
from keylane.errors import BrokerError
from keylane.journeys import Event
from keylane.runtime.codec import encode_event

__all__ = ["IngestPublisher", "Published"]

logger = logging.getLogger("keylane.web.api")


@dataclass(frozen=True, slots=True)
class Published:
    """One event's publication: its message id, or the error that stopped it."""

    message_id: MessageId | None
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether the broker acknowledged it."""
        return self.message_id is not None


class IngestPublisher:
    """Publishes events with key ``<brand_id>:<subscriber_id>`` on ``topic``.

    Args:
        broker: where to publish.
        topic: the events topic.
        timeout: real seconds to wait for a batch's receipts.
    """

    def __init__(self, broker: Broker, topic: str, *, timeout: float = 5.0) -> None:
        self._broker = broker
        self.topic = topic
        self.timeout = timeout
        self._producer: Producer | None = None
        self._lock = asyncio.Lock()
        self.published = 0
        self.failed = 0

    @property
    def connected(self) -> bool:
        """Whether a producer is open (the last publication or connection worked)."""
        return self._producer is not None

    async def connect(self) -> Producer:
        """The producer, created if needed.

        Raises:
            BrokerError: the broker cannot be reached or refused the producer.
        """
        async with self._lock:
            if self._producer is None:
                self._producer = await self._broker.create_producer(self.topic)
            return self._producer

    async def publish(self, events: Sequence[Event]) -> list[Published]:
        """Publish ``events``; one :class:`Published` per event, in order.

        Never raises for a broker failure: each event says whether it was stored.
        """
        try:
            async with asyncio.timeout(self.timeout):
                producer = await self.connect()
        except (BrokerError, TimeoutError, OSError) as exc:
            reason = _reason(exc, "the broker did not answer in time")
            logger.warning("ingest: broker unavailable: %s", reason)
            self.failed += len(events)
            return [Published(None, reason) for _ in events]
        tasks = [
            asyncio.ensure_future(producer.send(encode_event(event), key=event.key))
            for event in events
        ]
        _, pending = await asyncio.wait(tasks, timeout=self.timeout)
        for task in pending:
            task.cancel()
        results: list[Published] = []
        broken = bool(pending)
        for task in tasks:
            if task in pending:
                results.append(Published(None, "the broker did not acknowledge it in time"))
                continue
            failure = task.exception()
            if failure is None:
                results.append(Published(task.result()))
                continue
            broken = broken or isinstance(failure, BrokerError | OSError)
            results.append(Published(None, _reason(failure, type(failure).__name__)))
        ok = sum(r.ok for r in results)
        self.published += ok
        self.failed += len(results) - ok
        if broken:
            await self._drop(producer)
        return results

    async def _drop(self, producer: Producer) -> None:
        """Forget a producer that failed; the next publication makes a new one."""
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        try:
            await asyncio.wait_for(producer.close(), 1.0)
        except Exception as exc:
            logger.debug("ingest: closing a failed producer: %s", exc)

    async def close(self) -> None:
        """Close the producer (after flushing it)."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.close()
            except BrokerError as exc:
                logger.warning("ingest: closing the producer failed: %s", exc)


def _reason(exc: BaseException, default: str) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else default
